// A namespace import: workerd's node:module has no findSourceMap, and a named import of it would not link.
import * as nodeModule from 'node:module'
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tryNodeBuiltin } from './runtime.js'

/**
 * Where a memoized function or decorated method was defined: the file relative
 * to its package root, line and column, in the source file where the runtime
 * has a source map (so a rebuild of the same source keeps it). Stable across
 * processes running the same code (so they share entries), distinct for
 * different functions (so they never do).
 */
export function definitionSite(skip: Function): string {
  return callerSite(skip).site
}

/** Where `cache.memoize` was called from, and whether the caller is per instance. */
export interface CallerSite {
  /** `file:line:column`, as {@link definitionSite}. */
  readonly site: string
  /** The file alone, relative to its package root. */
  readonly file: string
  /**
   * The call runs in a constructor or a class field initializer, so each
   * instance makes its own function there (`load = cache.memoize(async () =>
   * this.db...)`, `this.load = cache.memoize(this.load.bind(this))`).
   */
  readonly perInstance: boolean
}

/** The first frame of user code above `skip`: see {@link definitionSite}. */
export function callerSite(skip: Function): CallerSite {
  const origPrepare = Error.prepareStackTrace
  const origLimit = Error.stackTraceLimit
  let sites: NodeJS.CallSite[] = []
  try {
    Error.stackTraceLimit = 30
    Error.prepareStackTrace = (_error, callSites) => callSites
    const holder: { stack?: NodeJS.CallSite[] } = {}
    Error.captureStackTrace(holder, skip)
    sites = holder.stack ?? []
  } finally {
    Error.prepareStackTrace = origPrepare
    Error.stackTraceLimit = origLimit
  }
  for (const site of sites) {
    const file = site.getFileName()
    if (!file || file.startsWith('node:') || /node_modules[\\/]tslib[\\/]/.test(file)) continue
    // Decorator helpers emitted by TypeScript, esbuild and Babel.
    const fnName = site.getFunctionName()
    if (fnName?.startsWith('__')) continue
    const [source, line, column] = original(
      file,
      site.getLineNumber() ?? 0,
      site.getColumnNumber() ?? 0,
    )
    const relativeFile = packageRelative(source)
    return {
      site: `${relativeFile}:${line}:${column}`,
      file: relativeFile,
      perInstance: site.isConstructor() || fnName === '<instance_members_initializer>',
    }
  }
  return { site: 'unknown', file: 'unknown', perInstance: false }
}

/**
 * The source position of a position in generated code, where the runtime
 * has the file's source map (Node with `--enable-source-maps`, tsx, a
 * bundle's `.map` loaded that way), so that names stay the same when the
 * same source is built again; the position itself otherwise.
 */
function original(file: string, line: number, column: number): [string, number, number] {
  let entry:
    | ReturnType<NonNullable<ReturnType<typeof nodeModule.findSourceMap>>['findEntry']>
    | undefined
  try {
    entry = nodeModule.findSourceMap?.(file)?.findEntry(line - 1, column - 1)
  } catch {
    return [file, line, column]
  }
  if (entry === undefined || !('originalSource' in entry) || !entry.originalSource) {
    return [file, line, column]
  }
  const sourcePath = entry.originalSource.startsWith('file:')
    ? fileURLToPath(entry.originalSource)
    : isAbsolute(entry.originalSource)
      ? entry.originalSource
      : resolve(
          dirname(file.startsWith('file:') ? fileURLToPath(file) : file),
          entry.originalSource,
        )
  return [sourcePath, entry.originalLine + 1, entry.originalColumn + 1]
}

const roots = new Map<string, string>()

/**
 * A file's path relative to the nearest folder above it with a package.json
 * (its package root), with `/` separators: the same on every machine and in
 * every deploy directory. A `file:` URL is taken as its path.
 */
export function packageRelative(file: string): string {
  const path = file.startsWith('file:') ? fileURLToPath(file) : file
  const dir = dirname(path)
  let root = roots.get(dir)
  if (root === undefined) {
    root = dir
    for (let d = dir; ; d = dirname(d)) {
      // No node:fs (workerd): the file's own directory stands for its package.
      if (
        tryNodeBuiltin<typeof import('node:fs')>('node:fs')?.existsSync(join(d, 'package.json'))
      ) {
        root = d
        break
      }
      if (dirname(d) === d) break
    }
    roots.set(dir, root)
  }
  return relative(root, path).split(sep).join('/')
}

const PROCESS_TOKEN = Math.random().toString(36).slice(2, 10)
let counter = 0
const ids = new WeakMap<object, string>()

/** An identity token unique to `obj` in this process and never equal to one in another process. */
export function objectToken(obj: object): string {
  let id = ids.get(obj)
  if (id === undefined) {
    id = `${PROCESS_TOKEN}.${++counter}`
    ids.set(obj, id)
  }
  return id
}

const symbolIds = new Map<symbol, string>()

/**
 * A stable token for a symbol: `for:` and its registry key as JSON for a
 * registered symbol (the same in every process), else an id unique to it in
 * this process.
 */
export function symbolToken(sym: symbol): string {
  const registered = Symbol.keyFor(sym)
  if (registered !== undefined) return `for:${JSON.stringify(registered)}`
  let id = symbolIds.get(sym)
  if (id === undefined) {
    id = `${PROCESS_TOKEN}.s${++counter}`
    symbolIds.set(sym, id)
  }
  return id
}

/**
 * The identity of the instance a memoized method runs on.
 *
 * - An object with a `cachingId()` method (or Flask-Caching's
 *   `__caching_id__()`) is identified by what it returns, so two processes
 *   (or two objects for the same database row) share entries. Return
 *   something that really identifies the object, such as a primary key.
 * - A class (a static method's `this`) is identified by its name.
 * - Any other object gets a token unique to it in this process. Entries are
 *   never shared between two objects by accident (the Flask-Caching default,
 *   `repr()`, made two users with the same name share entries), at the price
 *   of not being shared across processes.
 */
export function instanceIdentity(instance: unknown): string {
  if (typeof instance === 'function') return `class:${JSON.stringify(instance.name)}`
  if (typeof instance !== 'object' || instance === null) {
    return typeof instance === 'string'
      ? JSON.stringify(instance)
      : `${typeof instance}:${String(instance)}`
  }
  const custom =
    (instance as { cachingId?: unknown }).cachingId ??
    (instance as { __caching_id__?: unknown }).__caching_id__
  if (typeof custom === 'function') return `id:${typedId(custom.call(instance))}`
  return `obj:${objectToken(instance)}`
}

/**
 * What a `cachingId()` returned, as key text that keeps its type: `1` and
 * `'1'` (or `1n`) are different identities, and so are two symbols with the
 * same description.
 */
function typedId(id: unknown): string {
  if (typeof id === 'string') return JSON.stringify(id)
  if (typeof id === 'symbol') return `symbol:${symbolToken(id)}`
  return `${typeof id}:${String(id)}`
}

/**
 * The parameter names of a function, read from its source; `undefined` for
 * destructured parameters. Used to resolve `argsToIgnore` names.
 */
export function parameterNames(fn: Function): (string | undefined)[] {
  const src = Function.prototype.toString.call(fn)
  const start = src.indexOf('(')
  const arrow = src.indexOf('=>')
  if (arrow >= 0 && (start < 0 || arrow < start)) {
    const single = src
      .slice(0, arrow)
      .replace(/^async\s+/, '')
      .trim()
    return /^[\w$]+$/.test(single) ? [single] : []
  }
  if (start < 0) return []
  let depth = 0
  let current = ''
  const parts: string[] = []
  for (let i = start + 1; i < src.length; i++) {
    const c = src[i] as string
    if (c === '(' || c === '[' || c === '{') depth++
    if (c === ')' || c === ']' || c === '}') {
      if (depth === 0) break
      depth--
    }
    if (c === ',' && depth === 0) {
      parts.push(current)
      current = ''
    } else current += c
  }
  if (current.trim()) parts.push(current)
  return parts.map((p) => {
    const m = /^\s*(?:\.\.\.)?\s*([\w$]+)/.exec(p)
    return m ? m[1] : undefined
  })
}
