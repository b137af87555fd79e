/**
 * What `npm publish` would ship (`npm pack --dry-run`, after `npm run build`):
 * LICENSE, README and dist/ only; no source maps (they would point at src/,
 * which is not shipped); every file package.json points at (exports, bin,
 * main, module, types, typesVersions) is in it; the `cachette` command is a
 * small file over the library's chunks, not a second copy of the library;
 * and the whole stays within a size budget, so growth is a decision.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))

/** Budgets with room for growth; raise them deliberately, with the reason in the commit. */
const PACKED_BYTES_MAX = 800 * 1024
const UNPACKED_BYTES_MAX = 3 * 1024 * 1024
const CLI_BYTES_MAX = 64 * 1024

interface Packed {
  size: number
  unpackedSize: number
  files: { path: string; size: number }[]
}

/** Every string leaf of a package.json field (conditions and arrays included). */
function pathsIn(value: unknown): string[] {
  if (typeof value === 'string') return [value]
  if (Array.isArray(value)) return value.flatMap(pathsIn)
  if (typeof value === 'object' && value !== null) return Object.values(value).flatMap(pathsIn)
  return []
}

describe('the published package (npm pack --dry-run)', () => {
  let packed: Packed
  let files: Set<string>
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Record<
    string,
    unknown
  >

  before(async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: root,
      maxBuffer: 16 * 1024 * 1024,
    })
    packed = (JSON.parse(stdout) as Packed[])[0] as Packed
    files = new Set(packed.files.map((f) => f.path))
  })

  test('ships LICENSE, README.md, package.json and dist/ only, without source maps', () => {
    for (const file of ['LICENSE', 'README.md', 'package.json']) assert.ok(files.has(file), file)
    const other = [...files].filter(
      (f) => !f.startsWith('dist/') && !['LICENSE', 'README.md', 'package.json'].includes(f),
    )
    assert.deepEqual(other, [])
    assert.deepEqual(
      [...files].filter((f) => f.endsWith('.map')),
      [],
    )
    for (const file of files) {
      if (!file.endsWith('.js') && !file.endsWith('.cjs')) continue
      const text = readFileSync(join(root, file), 'utf8')
      assert.doesNotMatch(text, /sourceMappingURL=/, `${file} points at a map`)
    }
  })

  test('every file package.json names is shipped', () => {
    const named = [
      pkg.main,
      pkg.module,
      pkg.types,
      ...pathsIn(pkg.exports),
      ...pathsIn(pkg.bin),
      ...pathsIn(pkg.typesVersions),
    ]
      .filter((p): p is string => typeof p === 'string')
      .map((p) => p.replace(/^\.\//, ''))
    assert.ok(named.length > 40, `only ${named.length} paths found`)
    const missing = named.filter((p) => p !== 'package.json' && !files.has(p))
    assert.deepEqual(missing, [])
  })

  test('the cachette command is built on the library chunks, not a copy of the library', () => {
    const cli = packed.files.find((f) => f.path === 'dist/cli.js')
    assert.ok(cli !== undefined, 'dist/cli.js is shipped')
    assert.ok(
      cli.size <= CLI_BYTES_MAX,
      `dist/cli.js is ${cli.size} bytes (budget ${CLI_BYTES_MAX})`,
    )
    const text = readFileSync(join(root, 'dist/cli.js'), 'utf8')
    assert.match(text, /^#!\/usr\/bin\/env node\n/)
    assert.match(text, /from "\.\/chunk-[\w-]+\.js"/, 'imports the shared chunks')
  })

  test('the package stays within its size budget', () => {
    assert.ok(
      packed.size <= PACKED_BYTES_MAX,
      `packed ${packed.size} bytes (budget ${PACKED_BYTES_MAX})`,
    )
    assert.ok(
      packed.unpackedSize <= UNPACKED_BYTES_MAX,
      `unpacked ${packed.unpackedSize} bytes (budget ${UNPACKED_BYTES_MAX})`,
    )
  })
})
