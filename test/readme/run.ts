/**
 * Runs a README block as a module, for test/readme.test.ts: the block's code
 * as written, compiled as a Nest project's `tsc` compiles (legacy decorators
 * and their metadata), with `cachette` imports pointing at the sources, the
 * names its preludes declare taken from `fakes` (undefined if missing), and its top-level values
 * exported for the test to start and call.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import ts from 'typescript'
import {
  declaredNames,
  preludeNames,
  type ReadmeBlock,
  ROOT,
  subpathSources,
} from '../../scripts/readme-blocks.js'
import { preludes } from './preludes.js'

const OUT_DIR = join(ROOT, 'node_modules', '.cache', 'cachette-readme')

/** Module specifiers replaced when a block runs (package subpaths → their sources, and the test's shims). */
function specifiers(): Map<string, string> {
  const map = new Map<string, string>()
  for (const [spec, file] of Object.entries(subpathSources()))
    map.set(spec, pathToFileURL(file).href)
  map.set('@hono/node-server', pathToFileURL(join(ROOT, 'test/readme/node-server.ts')).href)
  return map
}

/** The names a block declares at top level as values (what it can export). */
function valueNames(code: string): string[] {
  const file = ts.createSourceFile(
    'block.ts',
    code,
    ts.ScriptTarget.ES2022,
    false,
    ts.ScriptKind.TS,
  )
  const names: string[] = []
  for (const s of file.statements) {
    const exported =
      ts.canHaveModifiers(s) &&
      ts.getModifiers(s)?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)
    if (exported) continue
    if (ts.isVariableStatement(s)) {
      for (const d of s.declarationList.declarations)
        if (ts.isIdentifier(d.name)) names.push(d.name.text)
    } else if ((ts.isFunctionDeclaration(s) || ts.isClassDeclaration(s)) && s.name)
      names.push(s.name.text)
  }
  return names
}

/**
 * Imports `block` as written, but for `replace` (text → text, such as a server
 * URL), and returns its exports: what it exports itself and every top-level value.
 */
export async function runBlock(
  block: ReadmeBlock,
  fakes: Record<string, unknown>,
  replace: Record<string, string> = {},
): Promise<Record<string, unknown>> {
  let code = block.code
  for (const [from, to] of Object.entries(replace)) {
    if (!code.includes(from)) throw new Error(`README.md:${block.line}: the block has no "${from}"`)
    code = code.split(from).join(to)
  }
  const imports: string[] = []
  const faked: string[] = []
  for (const name of preludeNames(block)) {
    const p = block.prelude.find((p) => name in preludes[p]!.declare)!
    const decl = preludes[p]!.declare[name]!
    if (decl.startsWith('import ')) imports.push(decl)
    else if (!decl.startsWith('type ')) faked.push(name)
  }
  const own = declaredNames(code)
  const source = [
    ...imports,
    faked.length ? `const { ${faked.join(', ')} } = globalThis.__readmeFakes` : '',
    code,
    `export { ${valueNames(code)
      .filter((n) => own.has(n))
      .join(', ')} }`,
  ].join('\n')
  let out = ts.transpileModule(source, {
    compilerOptions: {
      experimentalDecorators: true,
      emitDecoratorMetadata: true,
      verbatimModuleSyntax: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
    },
  }).outputText
  const map = specifiers()
  out = out.replace(/(from\s*|import\s*)'([^']+)'/g, (m, head: string, spec: string) =>
    map.has(spec) ? `${head}'${map.get(spec)}'` : m,
  )
  ;(globalThis as { __readmeFakes?: unknown }).__readmeFakes = fakes
  await mkdir(OUT_DIR, { recursive: true })
  const file = join(OUT_DIR, `README.md-L${block.line}.mjs`)
  await writeFile(file, out)
  return (await import(`${pathToFileURL(file).href}?t=${Date.now()}`)) as Record<string, unknown>
}
