/**
 * Fails (exit 1) when the import graph of src/**\/*.ts has a cycle, or when a
 * file under src/core/ imports anything outside src/core/ (docs/ARCHITECTURE.md:
 * "core/ depends on nothing else in src/").
 *
 * Every relative specifier counts: `import`, `import type`, `export ... from`,
 * `export type ... from`, `import x = require()`, `import()` calls and
 * `import('...')` types, since a type-only cycle is still a cycle to untangle.
 * `.js` specifiers resolve to the `.ts` file (NodeNext style); package
 * imports are ignored.
 *
 * Run: npx tsx scripts/check-cycles.ts
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const src = join(root, 'src')
const core = join(src, 'core')

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) walk(path, out)
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path)
  }
  return out
}

/** The relative module specifiers of one file. */
function specifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8')
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS)
  const found: string[] = []
  const visit = (node: ts.Node): void => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier !== undefined &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      found.push(node.moduleSpecifier.text)
    } else if (
      ts.isImportEqualsDeclaration(node) &&
      ts.isExternalModuleReference(node.moduleReference) &&
      ts.isStringLiteral(node.moduleReference.expression)
    ) {
      found.push(node.moduleReference.expression.text)
    } else if (
      ts.isImportTypeNode(node) &&
      ts.isLiteralTypeNode(node.argument) &&
      ts.isStringLiteral(node.argument.literal)
    ) {
      found.push(node.argument.literal.text)
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] !== undefined &&
      ts.isStringLiteralLike(node.arguments[0])
    ) {
      found.push(node.arguments[0].text)
    }
    ts.forEachChild(node, visit)
  }
  visit(sf)
  return found.filter((s) => s.startsWith('./') || s.startsWith('../'))
}

/** The `.ts` file a relative specifier names, or `undefined` (reported as unresolved). */
function resolveSpecifier(from: string, spec: string): string | undefined {
  const base = resolve(dirname(from), spec)
  const candidates = [
    base.replace(/\.js$/, '.ts'),
    base.replace(/\.mjs$/, '.mts'),
    base,
    `${base}.ts`,
    join(base, 'index.ts'),
  ]
  return candidates.find((c) => c.endsWith('.ts') && existsSync(c))
}

const rel = (path: string): string => relative(root, path).split(sep).join('/')

const files = walk(src)
const graph = new Map<string, string[]>()
const problems: string[] = []
for (const file of files) {
  const targets: string[] = []
  for (const spec of specifiers(file)) {
    const target = resolveSpecifier(file, spec)
    if (target === undefined) {
      problems.push(`unresolved import: ${rel(file)} -> ${spec}`)
      continue
    }
    if (!targets.includes(target)) targets.push(target)
    if (file.startsWith(core + sep) && !target.startsWith(core + sep)) {
      problems.push(`core imports outside core: ${rel(file)} -> ${rel(target)}`)
    }
  }
  graph.set(file, targets)
}

// Strongly connected components (Tarjan), then the elementary cycles inside
// each (Johnson's idea, simplified: each cycle is found from its smallest node).
const index = new Map<string, number>()
const low = new Map<string, number>()
const onStack = new Set<string>()
const stack: string[] = []
const components: string[][] = []
let counter = 0
function strong(v: string): void {
  index.set(v, counter)
  low.set(v, counter)
  counter++
  stack.push(v)
  onStack.add(v)
  for (const w of graph.get(v) ?? []) {
    if (!index.has(w)) {
      strong(w)
      low.set(v, Math.min(low.get(v) as number, low.get(w) as number))
    } else if (onStack.has(w)) {
      low.set(v, Math.min(low.get(v) as number, index.get(w) as number))
    }
  }
  if (low.get(v) === index.get(v)) {
    const component: string[] = []
    let w: string
    do {
      w = stack.pop() as string
      onStack.delete(w)
      component.push(w)
    } while (w !== v)
    const selfLoop = component.length === 1 && (graph.get(v) ?? []).includes(v)
    if (component.length > 1 || selfLoop) components.push(component.sort())
  }
}
for (const file of files) if (!index.has(file)) strong(file)

const MAX_CYCLES = 500
const cycles: string[][] = []
for (const component of components) {
  const members = new Set(component)
  const order = new Map(component.map((f, i) => [f, i]))
  for (const start of component) {
    const startAt = order.get(start) as number
    const path = [start]
    const onPath = new Set([start])
    const search = (v: string): void => {
      for (const w of graph.get(v) ?? []) {
        if (cycles.length >= MAX_CYCLES) return
        if (!members.has(w) || (order.get(w) as number) < startAt) continue
        if (w === start) cycles.push([...path, start])
        else if (!onPath.has(w)) {
          path.push(w)
          onPath.add(w)
          search(w)
          path.pop()
          onPath.delete(w)
        }
      }
    }
    search(start)
  }
}

for (const problem of problems) console.log(problem)
for (const cycle of cycles) console.log(`cycle: ${cycle.map(rel).join(' -> ')}`)
if (cycles.length >= MAX_CYCLES) console.log(`(stopped after ${MAX_CYCLES} cycles)`)
for (const component of components) {
  console.log(`strongly connected (${component.length} files): ${component.map(rel).join(', ')}`)
}
const failed = problems.length > 0 || cycles.length > 0
console.log(
  failed
    ? `${cycles.length} cycle(s), ${problems.length} other problem(s) in ${files.length} files`
    : `no import cycles in ${files.length} files; core/ imports only core/`,
)
process.exit(failed ? 1 : 0)
