/**
 * The adapters and the in-process backends on the other supported Node.js
 * majors: the suite runs on the machine's Node (20 or later); this runs each
 * framework adapter's own tests, the view-caching matrix, the HTTP caching
 * tests and the memory and filesystem backends again on Node 22 and 24
 * (installed into .cache/node by scripts/node-versions.sh, which `npm test`
 * runs first). A missing binary is a failure naming the script.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const platform = `${process.platform}-${process.arch}`

/** The test files run on each major: one per adapter, plus what every adapter shares. */
const NODE_VERSION_FILES = [
  'test/express.test.ts',
  'test/fastify.test.ts',
  'test/koa.test.ts',
  'test/hono.test.ts',
  'test/hono-wrap.test.ts',
  'test/nestjs.test.ts',
  'test/nunjucks.test.ts',
  'test/matrix.test.ts',
  'test/http-express.test.ts',
  'test/http-fastify.test.ts',
  'test/http-koa.test.ts',
  'test/http-hono.test.ts',
  'test/memory.test.ts',
  'test/filesystem.test.ts',
  'test/memoize.test.ts',
]

/** This process's environment without node:test's own (a child that sees NODE_TEST_CONTEXT reports to the parent instead of printing). */
function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  delete env.NODE_TEST_CONTEXT
  delete env.NODE_OPTIONS
  return env
}

function nodeBinary(major: number): string {
  return join(root, `.cache/node/${major}/node_modules/node-${platform}/bin/node`)
}

describe('the adapters on Node 22 and 24', { concurrency: 1 }, () => {
  for (const major of [22, 24]) {
    test(`Node ${major}: ${NODE_VERSION_FILES.length} test files pass`, async () => {
      const bin = nodeBinary(major)
      assert.ok(existsSync(bin), `no Node ${major} at ${bin}: run bash scripts/node-versions.sh`)
      const { code, output } = await new Promise<{ code: number | null; output: string }>(
        (resolve) => {
          execFile(
            bin,
            [
              '--import',
              'tsx',
              '--test',
              '--test-reporter=tap',
              '--test-concurrency=1',
              ...NODE_VERSION_FILES,
            ],
            { cwd: root, maxBuffer: 256 * 1024 * 1024, env: childEnv() },
            (error, stdout, stderr) => {
              const exit = error === null ? 0 : typeof error.code === 'number' ? error.code : null
              resolve({ code: exit, output: `${stdout}${stderr}` })
            },
          )
        },
      )
      const count = (name: string) =>
        Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(output)?.[1])
      const version = /^v(\d+)\./.exec(
        await new Promise<string>((resolve, reject) =>
          execFile(bin, ['--version'], (e, out) => (e ? reject(e) : resolve(out))),
        ),
      )?.[1]
      assert.equal(version, String(major))
      const failures = output
        .split('\n')
        .filter((line) => /^\s*not ok /.test(line))
        .slice(0, 20)
      assert.equal(
        code,
        0,
        `Node ${major}: exit ${code}\n${failures.join('\n')}\n${output.slice(-3000)}`,
      )
      assert.equal(count('fail'), 0)
      assert.equal(count('skipped'), 0)
      assert.ok(count('pass') > 300, `only ${count('pass')} tests passed`)
    })
  }
})
