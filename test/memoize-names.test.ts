/**
 * Memoize names that survive a rebuild: a decorated method is named by its
 * file, class and method (no line or column), a plain function by its
 * position in the source file when the runtime has the source map (so two
 * builds of one source, however different, give one name), and two different
 * methods that would get one name are refused.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { Cache } from '../src/index.js'

const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))
const esbuild = join(root, 'node_modules/.bin/esbuild')

type Named = { memoizeName: string }

describe('memoize names', () => {
  const dirs: string[] = []
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  })

  test('a decorated method (legacy decorators) is named file:Class.method, without a position', () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    class UsersService {
      async find(id: number) {
        return id
      }
    }
    const d = Object.getOwnPropertyDescriptor(UsersService.prototype, 'find') as PropertyDescriptor
    cache.memoize()(UsersService.prototype, 'find', d)
    assert.equal((d.value as Named).memoizeName, 'test/memoize-names.test.ts:UsersService.find')
  })

  test('two different classes of one name in one file: the second is refused', () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    const make = () =>
      class Repo {
        async load(id: number) {
          return id
        }
      }
    const decorate = (cls: ReturnType<typeof make>) => {
      const d = Object.getOwnPropertyDescriptor(cls.prototype, 'load') as PropertyDescriptor
      cache.memoize()(cls.prototype, 'load', d)
    }
    decorate(make())
    assert.throws(() => decorate(make()), {
      name: 'TypeError',
      message: /test\/memoize-names\.test\.ts:Repo\.load already memoizes a different function/,
    })
  })

  test('a plain function built twice, differently, keeps its source-mapped name', async () => {
    const dir = mkdtempSync(join(root, '.tmp-names-'))
    dirs.push(dir)
    const entry = pathToFileURL(join(root, 'src/index.ts')).href
    const source = [
      `import { Cache } from ${JSON.stringify(entry)}`,
      "const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })",
      '',
      'export const square = cache.memoize(async function computeSquare(n: number) {',
      '  return n * n',
      '})',
      'console.log(square.memoizeName)',
      '',
    ].join('\n')
    writeFileSync(join(dir, 'square.ts'), source)
    const names: string[] = []
    for (const [out, extra] of [
      ['a.mjs', []],
      // Another build: minified, with a banner that moves every generated position.
      ['b.mjs', ['--minify-whitespace', `--banner:js=${'// banner\n'.repeat(5)}`]],
    ] as const) {
      await run(esbuild, [
        join(dir, 'square.ts'),
        `--outfile=${join(dir, out)}`,
        '--format=esm',
        '--sourcemap',
        ...extra,
      ])
      const child = await run(
        process.execPath,
        ['--enable-source-maps', '--import', 'tsx', join(dir, out)],
        { cwd: root },
      )
      names.push(child.stdout.trim())
    }
    const relativeDir = dir.slice(root.length)
    assert.equal(names[0], `${relativeDir}/square.ts:4:29:computeSquare`)
    assert.equal(names[1], names[0], 'the second build gives the same name')
  })
})
