/**
 * Template fragment caching for Nunjucks: Flask-Caching's Jinja2
 * `{% cache %}` tag. Needs the `nunjucks` package (`npm install nunjucks`).
 *
 * ```ts
 * import nunjucks from 'nunjucks'
 * import { Cache } from 'cachette'
 * import { installCache } from 'cachette/nunjucks'
 *
 * const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
 * const env = nunjucks.configure('views', { autoescape: true, express: app })
 * installCache(env, cache)
 * ```
 *
 * ```jinja
 * {% cache 60*5 %}...{% endcache %}                        {# name: template path + line #}
 * {% cache 300, "sidebar", user.id %}...{% endcache %}     {# _template_fragment_cache_sidebar_42 #}
 * {% cache None, "footer" %}...{% endcache %}              {# never expires #}
 * {% cache 'del', "sidebar", user.id %}...{% endcache %}   {# delete, render uncached #}
 * ```
 *
 * The cache calls are asynchronous, so templates must be rendered
 * asynchronously: with a callback (`env.render(name, ctx, cb)`, which
 * Express's `res.render` does), or with {@link renderAsync}.
 * @packageDocumentation
 *
 * @module cachette/nunjucks
 */
import { isAbsolute } from 'node:path'
import type { Cache } from '../cache.js'
import { packageRelative } from '../core/identity.js'
import { loadOptional } from '../core/optional.js'

/** The parts of a Nunjucks `Environment` cachette uses. */
export interface NunjucksEnvironment {
  /** Adds a tag extension under `name`. */
  addExtension(name: string, extension: object): unknown
  /** Renders the template `name` with `context`, asynchronously when `callback` is given. */
  render(
    name: string,
    context: object | undefined,
    callback: (error: Error | null, result: string | null) => void,
  ): unknown
  /** Renders template `source` text with `context`, asynchronously when `callback` is given. */
  renderString(
    source: string,
    context: object | undefined,
    callback: (error: Error | null, result: string | null) => void,
  ): unknown
}

/** The parts of the `nunjucks` module cachette uses. */
export interface NunjucksModule {
  compiler: {
    /** Compiles a template's source to JavaScript source. */
    compile: (...args: unknown[]) => string
  }
  runtime: { SafeString: new (value: string) => object }
  lib: { TemplateError: new (message: string, lineno?: number, colno?: number) => Error }
}

/** Options of {@link installCache}. */
export interface InstallCacheOptions {
  /** The extension's name in the environment. @default 'CachetteFragmentCache' */
  name?: string
  /**
   * The `nunjucks` module the environment comes from, when it is not the one
   * `require('nunjucks')` finds from cachette (an app bundle with its own
   * copy): the tag's `SafeString` must be that module's, or autoescape would
   * escape cached fragments again.
   */
  nunjucks?: NunjucksModule
}

interface Token {
  value: string
  lineno: number
  colno: number
}

interface NodeLike {
  typename?: string
  value?: unknown
  children?: NodeLike[]
}

interface Parser {
  nextToken(): Token
  parseSignature(tolerant: boolean | null, noParens: boolean): NodeLike & { children: NodeLike[] }
  advanceAfterBlockEnd(name?: string): void
  parseUntilBlocks(...names: string[]): NodeLike
  fail(message: string, lineno?: number, colno?: number): never
}

interface Nodes {
  CallExtensionAsync: new (
    ext: object,
    prop: string,
    args: NodeLike,
    contentArgs: NodeLike[],
  ) => NodeLike
  Literal: new (lineno: number, colno: number, value: unknown) => NodeLike
}

type Body = (callback: (error: Error | null, html: string) => void) => unknown

const PATCHED = Symbol.for('cachette.nunjucks.templateNames')
/** The name of the template being compiled (set around `compiler.compile`). */
let compiling: string | undefined

/**
 * Wraps `compiler.compile` (once per nunjucks module) so the tag's parser
 * knows which template it is in: the default fragment name is the template's
 * path plus the tag's line, as Flask-Caching's, the path relative to the
 * package root the template is in (`views/page.njk`), not absolute.
 */
function trackTemplateNames(nunjucks: NunjucksModule): void {
  const compiler = nunjucks.compiler as NunjucksModule['compiler'] & { [PATCHED]?: true }
  if (compiler[PATCHED]) return
  const compile = compiler.compile
  compiler.compile = function (this: unknown, ...args: unknown[]) {
    const previous = compiling
    // The loader's path, made relative to the templates' package root: an absolute path
    // would put the machine's directory layout into keys (and change them per deploy).
    const path = args[3]
    compiling =
      typeof path !== 'string' ? undefined : isAbsolute(path) ? packageRelative(path) : path
    try {
      return compile.apply(this, args)
    } finally {
      compiling = previous
    }
  }
  compiler[PATCHED] = true
}

const TIMEOUT_FORMS = "a number of seconds, None (never expires) or 'del'"

/**
 * The `{% cache %}` tag. Install it with {@link installCache}; construct it
 * directly only to register it under your own name.
 */
export class FragmentCacheExtension {
  /** The tag names Nunjucks routes to {@link FragmentCacheExtension.parse}. */
  readonly tags = ['cache']
  readonly #cache: Cache
  readonly #nunjucks: NunjucksModule

  constructor(cache: Cache, nunjucks: NunjucksModule) {
    this.#cache = cache
    this.#nunjucks = nunjucks
    trackTemplateNames(nunjucks)
  }

  /** Parses `{% cache timeout[, name[, vary...]] %}...{% endcache %}` (called by Nunjucks). */
  parse(parser: Parser, nodes: Nodes): NodeLike {
    const tag = parser.nextToken()
    const line = tag.lineno + 1
    const column = tag.colno + 1
    const args = parser.parseSignature(null, true)
    parser.advanceAfterBlockEnd(tag.value)
    const first = args.children[0]
    if (first === undefined) {
      parser.fail(`the cache tag needs a timeout (${TIMEOUT_FORMS})`, tag.lineno, tag.colno)
    }
    if (args.children.some((a) => a.typename === 'KeywordArgs')) {
      parser.fail('the cache tag takes no keyword arguments', tag.lineno, tag.colno)
    }
    if (first.typename === 'Literal' && typeof first.value === 'string' && first.value !== 'del') {
      parser.fail(
        `the cache tag's timeout must be ${TIMEOUT_FORMS}, got ${JSON.stringify(first.value)}`,
        tag.lineno,
        tag.colno,
      )
    }
    const body = parser.parseUntilBlocks('endcache')
    parser.advanceAfterBlockEnd()
    const defaultName = `${compiling ?? 'None'}${line}`
    args.children.unshift(
      new nodes.Literal(tag.lineno, tag.colno, defaultName),
      new nodes.Literal(tag.lineno, tag.colno, line),
      new nodes.Literal(tag.lineno, tag.colno, column),
    )
    return new nodes.CallExtensionAsync(this, 'run', args, [body])
  }

  /**
   * Renders one tag (called by the compiled template): the cached fragment,
   * or the body rendered and stored. Arguments: the default name, line and
   * column (added by the parser), then the tag's own, then the body and the
   * callback.
   */
  run(_context: unknown, ...rest: unknown[]): void {
    const callback = rest.pop() as (error: Error | null, result?: object) => void
    const body = rest.pop() as Body
    const [defaultName, line, column, timeout, name, ...varyOn] = rest as [
      string,
      number,
      number,
      unknown,
      unknown,
      ...unknown[],
    ]
    const problem = checkArguments(timeout, name, varyOn)
    if (problem !== undefined) {
      callback(new this.#nunjucks.lib.TemplateError(`cache tag: ${problem}`, line, column))
      return
    }
    // Inline, unnamed closures: the hit path makes no named function per fragment.
    this.#cache
      .fragment(
        (name as string | undefined) ?? defaultName,
        timeout === undefined ? null : (timeout as number | null | 'del'),
        () =>
          new Promise<string>((resolve, reject) => {
            body((error, html) => (error ? reject(error) : resolve(html)))
          }),
        varyOn as (string | number)[],
      )
      .then(
        (html) => callback(null, new this.#nunjucks.runtime.SafeString(html)),
        (error: Error) => callback(error),
      )
  }
}

/** Why the tag's evaluated arguments are unusable, or `undefined` if they are fine. */
function checkArguments(
  timeout: unknown,
  name: unknown,
  varyOn: readonly unknown[],
): string | undefined {
  const timeoutOk =
    timeout === null ||
    timeout === undefined ||
    timeout === 'del' ||
    (typeof timeout === 'number' && timeout >= 0 && Number.isFinite(timeout))
  if (!timeoutOk) return `timeout must be ${TIMEOUT_FORMS}, got ${describe(timeout)}`
  if (name !== undefined && typeof name !== 'string') {
    return `the fragment name must be a string, got ${describe(name)}`
  }
  const bad = varyOn.findIndex((v) => typeof v !== 'string' && typeof v !== 'number')
  if (bad >= 0) return `vary values must be strings or numbers, got ${describe(varyOn[bad])}`
  return undefined
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (value === null) return 'None'
  if (Array.isArray(value)) return 'a list'
  return typeof value
}

/**
 * Adds the `{% cache %}` tag to a Nunjucks environment, caching in `cache`.
 * Call it once per environment.
 * @throws {MissingDependencyError} when `nunjucks` is not installed and no module is passed.
 */
export function installCache(
  env: NunjucksEnvironment,
  cache: Cache,
  options: InstallCacheOptions = {},
): FragmentCacheExtension {
  const nunjucks = options.nunjucks ?? loadOptional<NunjucksModule>('nunjucks', 'installCache')
  const extension = new FragmentCacheExtension(cache, nunjucks)
  env.addExtension(options.name ?? 'CachetteFragmentCache', extension)
  return extension
}

/** `env.render(name, context)` as a promise (the tag needs asynchronous rendering). */
export function renderAsync(
  env: NunjucksEnvironment,
  name: string,
  context?: object,
): Promise<string> {
  return new Promise((resolve, reject) => {
    env.render(name, context, (error, result) => (error ? reject(error) : resolve(result ?? '')))
  })
}

/** `env.renderString(source, context)` as a promise. */
export function renderStringAsync(
  env: NunjucksEnvironment,
  source: string,
  context?: object,
): Promise<string> {
  return new Promise((resolve, reject) => {
    env.renderString(source, context, (error, result) =>
      error ? reject(error) : resolve(result ?? ''),
    )
  })
}
