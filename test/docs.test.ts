/**
 * The API reference (`npm run docs`, typedoc.json): TypeDoc documents every
 * subpath export (the entry points tsup builds) without a single warning, so
 * a missing doc comment on an export or a broken {@link} fails CI.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, it } from 'node:test'
import { promisify } from 'node:util'
import { ROOT, subpathSources } from '../scripts/readme-blocks.js'

const out = await mkdtemp(join(tmpdir(), 'cachette-docs-'))
after(() => rm(out, { recursive: true, force: true }))

it('typedoc.json documents every subpath export, from the files tsup builds', async () => {
  const config = JSON.parse(await readFile(join(ROOT, 'typedoc.json'), 'utf8')) as {
    entryPoints: string[]
    treatWarningsAsErrors: boolean
  }
  assert.equal(config.treatWarningsAsErrors, true)
  const sources = Object.values(subpathSources()).map((f) => f.slice(ROOT.length + 1))
  assert.deepEqual([...config.entryPoints].sort(), sources.sort())
})

it('TypeDoc builds the API reference with no warnings', async () => {
  const typedoc = join(ROOT, 'node_modules', 'typedoc', 'bin', 'typedoc')
  const result = await promisify(execFile)(
    process.execPath,
    [typedoc, '--out', out, '--treatWarningsAsErrors', '--logLevel', 'Warn'],
    { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 },
  ).catch((error: { code?: number; stdout?: string; stderr?: string }) => error)
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`
  assert.ok(!('code' in result) || result.code === undefined, `typedoc failed:\n${output}`)
  assert.doesNotMatch(output, /warning|error/i)
  const index = await readFile(join(out, 'index.html'), 'utf8')
  for (const module of ['cachette', 'cachette/express', 'cachette/nunjucks', 'cachette/otel']) {
    assert.ok(index.includes(module), `the reference lists ${module}`)
  }
})
