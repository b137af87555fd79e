/**
 * The adapters on the previous major of their framework or client: the
 * existing test files, unchanged, run in a child `node --test` with
 * test/compat/alias-loader.mjs mapping the package to a devDependency alias
 * of the older major (`"fastify-4": "npm:fastify@^4.29.1"`). Each run starts
 * with test/compat/versions.ts, which fails unless the mapped packages really
 * load as that major, and must report tests passed and none failed, cancelled
 * or skipped.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
/** A run that has not finished by then is killed and fails. */
const RUN_DEADLINE_MS = 5 * 60_000

interface CompatRun {
  /** What runs, e.g. "Fastify 4". */
  name: string
  /** Package name -> alias installed as a devDependency. */
  aliases: Record<string, string>
  /** The major every mapped package must load as. */
  major: string
  /** The existing test files to run, relative to the repository root. */
  files: string[]
  /** Tests that fail on this major for a reason outside cachette: name -> reason. Must fail. */
  knownFailures?: Record<string, string>
}

const RUNS: CompatRun[] = [
  {
    name: 'Fastify 4',
    aliases: { fastify: 'fastify-4' },
    major: '4',
    files: ['test/fastify.test.ts', 'test/http-fastify.test.ts'],
  },
  {
    name: 'NestJS 11',
    aliases: {
      '@nestjs/common': 'nestjs-common-11',
      '@nestjs/core': 'nestjs-core-11',
      '@nestjs/platform-express': 'nestjs-platform-express-11',
      '@nestjs/platform-fastify': 'nestjs-platform-fastify-11',
    },
    major: '11',
    files: ['test/nestjs.test.ts'],
    knownFailures: {
      // The handler itself returns a web Response: NestJS 11 on Express sends it as JSON ({})
      // on the miss already; sending one is a NestJS 12 feature.
      'a web Response the handler returns is cached with its own headers':
        'NestJS 11 cannot send a web Response on Express',
    },
  },
  {
    name: '@google-cloud/storage 8',
    aliases: { '@google-cloud/storage': 'gcs-8' },
    major: '8',
    files: ['test/gcs.test.ts'],
  },
]

interface Finished {
  code: number | null
  signal: NodeJS.Signals | null
  out: string
}

/** Runs `files` under the alias loader; resolves when the child exits. */
function runWithAliases(run: CompatRun): Promise<Finished> {
  const expect = Object.fromEntries(Object.keys(run.aliases).map((name) => [name, run.major]))
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CACHETTE_ALIASES: JSON.stringify(run.aliases),
    CACHETTE_EXPECT: JSON.stringify(expect),
  }
  // Set by the outer test runner: the child would report to it instead of writing TAP.
  delete env.NODE_TEST_CONTEXT
  const args = [
    '--import',
    'tsx',
    '--import',
    './test/compat/alias-loader.mjs',
    '--test',
    '--test-reporter=tap',
    '--test-concurrency=1',
    'test/compat/versions.ts',
    ...run.files,
  ]
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk
    })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk
    })
    const deadline = setTimeout(() => child.kill('SIGKILL'), RUN_DEADLINE_MS)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(deadline)
      resolve({ code, signal, out })
    })
  })
}

/** A count from the TAP summary (`# pass 12`), or undefined when it is missing. */
function summary(out: string, field: string): number | undefined {
  const match = new RegExp(`^# ${field} (\\d+)$`, 'm').exec(out)
  return match ? Number(match[1]) : undefined
}

/** The names of the tests that failed themselves (not the suites around them). */
function failedTests(out: string): string[] {
  const lines = out.split('\n')
  const names: string[] = []
  lines.forEach((line, i) => {
    const match = /^\s*not ok \d+ - (.*)$/.exec(line)
    if (!match) return
    const block = lines.slice(i + 1, i + 12).join('\n')
    if (!/failureType: 'subtestsFailed'/.test(block)) names.push(match[1]!)
  })
  return names
}

/** The failing tests and the end of the output, for the assertion messages. */
function failures(out: string): string {
  const failing = out.split('\n').filter((line) => /^\s*not ok /.test(line))
  return `${failing.join('\n')}\n--- last output ---\n${out.slice(-4000)}`
}

describe('adapters on the previous majors (test/compat/alias-loader.mjs)', () => {
  for (const run of RUNS) {
    test(`${run.name}: ${run.files.join(', ')}`, async () => {
      const { code, signal, out } = await runWithAliases(run)
      for (const name of Object.keys(run.aliases)) {
        assert.match(
          out,
          new RegExp(
            `^ok \\d+ - ${name.replace(/[/.]/g, '\\$&')} resolves to ${run.major}\\.x$`,
            'm',
          ),
          `${name} loaded as ${run.major}.x\n${failures(out)}`,
        )
      }
      assert.equal(signal, null, `killed (${signal}) after ${RUN_DEADLINE_MS} ms\n${failures(out)}`)
      const known = Object.keys(run.knownFailures ?? {})
      assert.deepEqual(failedTests(out).sort(), [...known].sort(), failures(out))
      assert.equal(summary(out, 'fail'), known.length, failures(out))
      assert.equal(summary(out, 'cancelled'), 0, failures(out))
      assert.equal(summary(out, 'skipped'), 0, failures(out))
      assert.equal(summary(out, 'todo'), 0, failures(out))
      // More than versions.ts's own tests: the adapter files ran.
      assert.ok((summary(out, 'pass') ?? 0) > 1 + Object.keys(run.aliases).length, failures(out))
      assert.equal(code, known.length > 0 ? 1 : 0, failures(out))
    })
  }
})
