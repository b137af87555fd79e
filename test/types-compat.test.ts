/**
 * The published types (dist/*.d.ts, as `npm run build` writes them) compile
 * in a user's project with `skipLibCheck: false` and `strict`, under the
 * oldest and the newest `@types/node` (20 and 26) and TypeScript 5 and 7: a
 * consumer project in a temporary directory imports every subpath export by
 * name, as an installed package, and tsc reports no error in cachette's
 * declaration files. (Errors inside other packages' own declarations are
 * theirs, and are not counted.) One more run with `target`/`lib` ES2021: the
 * types need nothing newer (no `ErrorOptions`). One with node10 resolution
 * (`"module": "commonjs"`), where every subpath resolves through
 * `typesVersions`.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))
const modules = join(root, 'node_modules')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string
  exports: Record<string, unknown>
}

const COMPILERS = {
  'TypeScript 5': join(modules, 'typescript/bin/tsc'),
  'TypeScript 7': join(modules, 'typescript-7/bin/tsc'),
} as const
const NODE_TYPES = {
  '@types/node 20': join(modules, '@types/node'),
  '@types/node 26': join(modules, 'types-node-26'),
} as const

const versionOf = (dir: string) =>
  (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version

/**
 * A consumer project whose node_modules mirrors the repository's (symlinks),
 * with `cachette` holding the repository's package.json and dist/ and
 * `@types/node` pointing at `nodeTypes`.
 * `preserveSymlinks` makes every package resolve its imports from there, so
 * one `@types/node` is in the program.
 */
function consumer(nodeTypes: string, target: string, resolution: 'NodeNext' | 'Node10'): string {
  const dir = mkdtempSync(join(tmpdir(), 'cachette-types-'))
  const nm = join(dir, 'node_modules')
  mkdirSync(join(nm, '@types'), { recursive: true })
  for (const name of readdirSync(modules)) {
    if (name === '@types' || name === '.bin' || name === pkg.name) continue
    symlinkSync(join(modules, name), join(nm, name))
  }
  for (const name of readdirSync(join(modules, '@types'))) {
    if (name !== 'node') symlinkSync(join(modules, '@types', name), join(nm, '@types', name))
  }
  symlinkSync(nodeTypes, join(nm, '@types', 'node'))
  // As installed: the package's own files only (no node_modules of its own to resolve from).
  mkdirSync(join(nm, pkg.name))
  for (const file of ['package.json', 'dist']) {
    symlinkSync(join(root, file), join(nm, pkg.name, file))
  }
  const subpaths = Object.keys(pkg.exports).filter((s) => s !== './package.json')
  const lines = subpaths.map((s, i) => `import * as m${i} from '${pkg.name}${s.slice(1)}'`)
  lines.push(`export const all = [${subpaths.map((_, i) => `m${i}`).join(', ')}]`)
  writeFileSync(join(dir, 'index.ts'), `${lines.join('\n')}\n`)
  const type = resolution === 'Node10' ? 'commonjs' : 'module'
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type, private: true }))
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        skipLibCheck: false,
        noEmit: true,
        target,
        lib: [target],
        // Node10: what `"module": "commonjs"` implies; only `typesVersions` maps subpaths there.
        module: resolution === 'Node10' ? 'CommonJS' : 'NodeNext',
        moduleResolution: resolution,
        types: ['node'],
        preserveSymlinks: true,
        experimentalDecorators: true,
        esModuleInterop: true,
      },
      files: ['index.ts'],
    }),
  )
  return dir
}

describe('the published types in a consumer project (skipLibCheck: false)', () => {
  const dirs: string[] = []
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  })

  test('dist/ holds the declarations of every subpath (npm run build ran)', () => {
    assert.ok(existsSync(join(root, 'dist/index.d.ts')), 'run npm run build first')
  })

  const runs = Object.entries(COMPILERS).flatMap(([compiler, tsc]) =>
    Object.entries(NODE_TYPES).map(([types, dir]) => ({
      compiler,
      tsc,
      types,
      dir,
      target: 'ES2022',
      resolution: 'NodeNext' as 'NodeNext' | 'Node10',
    })),
  )
  const first = runs[0] as (typeof runs)[number]
  runs.push({ ...first, target: 'ES2021' })
  // TypeScript 7 no longer has node10 resolution.
  runs.push({ ...first, resolution: 'Node10' })
  for (const { compiler, tsc, types, dir, target, resolution } of runs) {
    test(`${compiler} (${versionOf(join(tsc, '../..'))}) with ${types} (${versionOf(dir)}), ${target}, ${resolution} resolution`, async () => {
      const project = consumer(dir, target, resolution)
      dirs.push(project)
      const result = await run(process.execPath, [tsc, '-p', project, '--pretty', 'false'], {
        cwd: project,
        maxBuffer: 64 * 1024 * 1024,
      }).then(
        (r) => ({ code: 0, output: r.stdout + r.stderr }),
        (error: { code?: number; stdout?: string; stderr?: string }) => ({
          code: typeof error.code === 'number' ? error.code : -1,
          output: `${error.stdout ?? ''}${error.stderr ?? ''}`,
        }),
      )
      // 0: no errors; 1/2: errors were reported (sorted below). Anything else is a crash.
      assert.ok([0, 1, 2].includes(result.code), `tsc crashed: ${result.output.slice(0, 4000)}`)
      const diagnostics = result.output.split('\n').filter((line) => /error TS\d+/.test(line))
      const ours = diagnostics.filter(
        (line) => line.startsWith('index.ts') || line.includes(`node_modules/${pkg.name}/dist/`),
      )
      assert.deepEqual(ours, [], ours.join('\n'))
    })
  }
})
