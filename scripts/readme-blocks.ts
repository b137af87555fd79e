/**
 * Type-checks every TypeScript and JavaScript code block of README.md.
 *
 * Each ```ts, ```typescript or ```js block is its own ES module, compiled in
 * one TypeScript program under `strict` with NodeNext resolution; `cachette`
 * and `cachette/<subpath>` resolve to the sources tsup builds each subpath
 * from. A block that is deliberately a fragment says so with an HTML comment
 * on the line before its fence:
 *
 *   <!-- readme-check: prelude=express,data -->   declares the context it uses
 *   <!-- readme-check: skip (reason) -->          not checked (say why)
 *   <!-- readme-check: run=express -->            also run by test/readme.test.ts
 *
 * A prelude (test/readme/preludes.ts) declares names the block uses but does
 * not define (`app`, `cache`, a `db`, route handlers); a name the block
 * defines itself is left out. A block without a marker must compile as it is.
 *
 *   npx tsx scripts/readme-blocks.ts    # prints each error with its README line; exit 1 if any
 */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { ambient, preludes } from '../test/readme/preludes.js'

/** The repository root. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')

/** One fenced code block of the README. */
export interface ReadmeBlock {
  /** The fence's language tag (`ts`, `typescript`, `js`, ...). */
  lang: string
  /** README line (1-based) of the block's first line of code. */
  line: number
  /** The code, without the fence lines and the indentation of the fence. */
  code: string
  /** Prelude names from the marker. */
  prelude: string[]
  /** The reason given by a `skip` marker. */
  skip?: string
  /** The runner named by a `run=` marker. */
  run?: string
}

const CHECKED = new Set(['ts', 'typescript', 'js', 'javascript'])
const MARKER = /^\s*<!--\s*readme-check:\s*(.*?)\s*-->\s*$/

/** Every fenced block of `markdown` in a checked language, with its marker. */
export function extractBlocks(markdown: string): ReadmeBlock[] {
  const lines = markdown.split('\n')
  const blocks: ReadmeBlock[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\S*)\s*$/.exec(lines[i] ?? '')
    if (!open) continue
    const indent = open[1]!.length
    const lang = open[2]!
    let end = i + 1
    while (end < lines.length && !/^\s*```\s*$/.test(lines[end] ?? '')) end++
    if (end >= lines.length) throw new Error(`README.md:${i + 1}: unterminated code block`)
    const body = lines.slice(i + 1, end).map((l) => l.slice(Math.min(indent, leading(l))))
    const marker = MARKER.exec(lines[i - 1] ?? '')?.[1]
    if (CHECKED.has(lang)) blocks.push({ lang, line: i + 2, code: body.join('\n'), ...parse(marker, i) })
    else if (marker !== undefined) throw new Error(`README.md:${i}: readme-check marker on a ${lang || 'plain'} block`)
    i = end
  }
  return blocks
}

const leading = (line: string) => line.length - line.trimStart().length

function parse(marker: string | undefined, at: number): Pick<ReadmeBlock, 'prelude' | 'skip' | 'run'> {
  const out: Pick<ReadmeBlock, 'prelude' | 'skip' | 'run'> = { prelude: [] }
  if (marker === undefined) return out
  const skip = /^skip\s*\((.+)\)$/.exec(marker)
  if (skip) return { ...out, skip: skip[1]! }
  for (const part of marker.split(/\s+/)) {
    const [key, value = ''] = part.split('=')
    if (key === 'prelude') {
      for (const name of value.split(',')) {
        if (!(name in preludes)) throw new Error(`README.md:${at}: unknown prelude "${name}"`)
        out.prelude.push(name)
      }
    } else if (key === 'run' && value) out.run = value
    else throw new Error(`README.md:${at}: bad readme-check marker "${part}" (prelude=a,b | run=x | skip (reason))`)
  }
  return out
}

/** Top-level names a block declares itself (imports, variables, functions, classes, types). */
export function declaredNames(code: string): Set<string> {
  const file = ts.createSourceFile('block.ts', code, ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS)
  const names = new Set<string>()
  const bind = (name: ts.BindingName) => {
    if (ts.isIdentifier(name)) names.add(name.text)
    else for (const e of name.elements) if (!ts.isOmittedExpression(e)) bind(e.name)
  }
  for (const s of file.statements) {
    if (ts.isImportDeclaration(s) && s.importClause) {
      const c = s.importClause
      if (c.name) names.add(c.name.text)
      const b = c.namedBindings
      if (b && ts.isNamespaceImport(b)) names.add(b.name.text)
      else if (b) for (const e of b.elements) names.add(e.name.text)
    } else if (ts.isVariableStatement(s)) {
      for (const d of s.declarationList.declarations) bind(d.name)
    } else if (
      (ts.isFunctionDeclaration(s) ||
        ts.isClassDeclaration(s) ||
        ts.isInterfaceDeclaration(s) ||
        ts.isTypeAliasDeclaration(s) ||
        ts.isEnumDeclaration(s)) &&
      s.name
    ) {
      names.add(s.name.text)
    }
  }
  return names
}

/** The names of a block's preludes that it uses and does not declare itself. */
export function preludeNames(block: ReadmeBlock): string[] {
  const own = declaredNames(block.code)
  const used = new Set(block.code.match(/[A-Za-z_$][\w$]*/g) ?? [])
  const names: string[] = []
  for (const p of block.prelude) {
    for (const name of Object.keys(preludes[p]!.declare)) {
      if (!own.has(name) && used.has(name) && !names.includes(name)) names.push(name)
    }
  }
  return names
}

/** The module checked for a block: its prelude's declarations on one line, then the code. */
export function moduleText(block: ReadmeBlock): string {
  const decls = preludeNames(block).map((name) => {
    const p = block.prelude.find((p) => name in preludes[p]!.declare)!
    return preludes[p]!.declare[name]!.replace(/\n\s*/g, ' ')
  })
  const imports = block.prelude.map((p) => preludes[p]!.imports ?? '').filter(Boolean)
  // One line, so a README line is the module's line minus one; `export {}` keeps it a module.
  return `${[...imports, ...decls, 'export {}'].join('; ')}\n${block.code}\n`
}

/** The source file tsup builds each package subpath from (tsup.config.ts). */
export function subpathSources(): Record<string, string> {
  const config = readFileSync(join(ROOT, 'tsup.config.ts'), 'utf8')
  const entry = /entry:\s*\{([^}]*)\}/.exec(config)?.[1]
  if (!entry) throw new Error('tsup.config.ts: no entry map')
  const out: Record<string, string> = {}
  for (const m of entry.matchAll(/(\w+):\s*'([^']+)'/g)) {
    out[m[1] === 'index' ? 'cachette' : `cachette/${m[1]}`] = join(ROOT, m[2]!)
  }
  return out
}

/** The compiler options a user's strict NodeNext project would have (plus Nest's legacy decorators). */
export function compilerOptions(): ts.CompilerOptions {
  const paths: Record<string, string[]> = {}
  for (const [spec, file] of Object.entries(subpathSources())) paths[spec] = [file]
  return {
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2023.d.ts'],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    esModuleInterop: true,
    skipLibCheck: true,
    experimentalDecorators: true,
    emitDecoratorMetadata: true,
    allowJs: true,
    checkJs: true,
    types: ['node'],
    noEmit: true,
    paths,
  }
}

/** One compiler error in a README block. */
export interface BlockError {
  /** README line of the error. */
  line: number
  /** `TS2345: ...` */
  message: string
  /** The block it is in (undefined: in no block, such as a missing library). */
  block?: ReadmeBlock
}

/** Compiles every checked block in one program and returns the errors, by README line. */
export function checkBlocks(blocks: readonly ReadmeBlock[]): BlockError[] {
  const dir = join(ROOT, 'test', 'readme')
  const files = new Map<string, { text: string; block: ReadmeBlock }>()
  for (const [i, block] of blocks.entries()) {
    if (block.skip !== undefined) continue
    const ext = block.lang.startsWith('j') ? 'mjs' : 'ts'
    files.set(join(dir, `README.md-${i}-L${block.line}.${ext}`), { text: moduleText(block), block })
  }
  const ambientFile = join(dir, 'README.md-ambient.d.ts')
  const options = compilerOptions()
  const host = ts.createCompilerHost(options)
  const { getSourceFile, fileExists, readFile } = host
  const text = (f: string) => (f === ambientFile ? ambient : files.get(f)?.text)
  host.fileExists = (f) => text(f) !== undefined || fileExists.call(host, f)
  host.readFile = (f) => text(f) ?? readFile.call(host, f)
  host.getSourceFile = (f, lang, ...rest) => {
    const virtual = text(f)
    return virtual !== undefined
      ? ts.createSourceFile(f, virtual, lang, true)
      : getSourceFile.call(host, f, lang, ...rest)
  }
  const program = ts.createProgram([ambientFile, ...files.keys()], options, host)
  const errors: BlockError[] = []
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const text = `TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`
    const file = d.file && files.get(d.file.fileName)
    if (!d.file || d.file.fileName === ambientFile) errors.push({ line: 0, message: text })
    if (!file || d.start === undefined) continue
    const at = d.file!.getLineAndCharacterOfPosition(d.start).line
    const line = at === 0 ? file.block.line - 1 : file.block.line + at - 1
    errors.push({ line, message: text, block: file.block })
  }
  return errors.sort((a, b) => a.line - b.line)
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const blocks = extractBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8'))
  const errors = checkBlocks(blocks)
  for (const e of errors) console.log(`README.md:${e.line}: ${e.message}`)
  console.log(`${blocks.length} blocks, ${errors.length} errors`)
  process.exitCode = errors.length ? 1 : 0
}
