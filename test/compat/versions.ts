/**
 * Run first in every compatibility run (test/compat.test.ts): proves that the
 * packages named in CACHETTE_EXPECT (`{"fastify":"4"}`) really load as that
 * major through test/compat/alias-loader.mjs, from an ES module import, from
 * `require()`, and from inside node_modules, so a run cannot silently test the
 * installed major instead.
 */
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const expected = JSON.parse(process.env.CACHETTE_EXPECT ?? '{}') as Record<string, string>
const require = createRequire(import.meta.url)

/** The name and version of the package that `file` belongs to. */
function packageOf(file: string): { name: string; version: string; dir: string } {
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    const manifest = join(dir, 'package.json')
    if (!existsSync(manifest)) continue
    const { name, version } = JSON.parse(readFileSync(manifest, 'utf8'))
    // Build folders carry a package.json with only `"type"`: keep walking up.
    if (typeof name === 'string' && typeof version === 'string') return { name, version, dir }
  }
  throw new Error(`no package.json above ${file}`)
}

test('CACHETTE_EXPECT names the packages and majors to check', () => {
  assert.ok(Object.keys(expected).length > 0, 'CACHETTE_EXPECT is set')
})

// A package in node_modules that imports none of these itself: resolving from
// its folder is what a dependency of the app sees.
const insideNodeModules = createRequire(require.resolve('fastify-plugin'))

for (const [name, major] of Object.entries(expected)) {
  test(`${name} resolves to ${major}.x`, () => {
    const seen: [string, string][] = [
      ['import', fileURLToPath(import.meta.resolve(name))],
      ['require', require.resolve(name)],
      ['require from node_modules', insideNodeModules.resolve(name)],
    ]
    for (const [how, file] of seen) {
      const pkg = packageOf(file)
      assert.equal(pkg.name, name, `${how} ${name}: ${file}`)
      assert.equal(pkg.version.split('.')[0], major, `${how} ${name}: ${pkg.version} at ${pkg.dir}`)
    }
    // And each mapped package sees the others at the same major
    // (@nestjs/core 11 must load @nestjs/common 11).
    for (const importer of Object.keys(expected)) {
      const file = createRequire(require.resolve(importer)).resolve(name)
      assert.equal(
        packageOf(file).version.split('.')[0],
        major,
        `${name} from ${importer}: ${file}`,
      )
    }
  })
}
