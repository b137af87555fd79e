/**
 * The framework-neutral view-caching engine behind `cache.cached()`.
 *
 * An adapter (Express today; Fastify, Koa and Hono later) translates its
 * request into a {@link RequestView}, asks {@link ViewCache.lookup} what to do,
 * and either replays the {@link ViewHit}, runs the handler uncached
 * ({@link ViewBypass}), or runs the handler while capturing the response and
 * hands the result to {@link ViewCache.store} ({@link ViewMiss}). Everything
 * that decides *what* is cached, under which key and for how long lives here;
 * the adapter only moves bytes.
 */
import { randomBytes } from 'node:crypto'
import { type CacheBackend, PEEK, type PeekableBackend } from './backend.js'
import {
  HOP_BY_HOP_HEADERS,
  type LocalSocket,
  repeatedHeaders,
  requestInBackground,
  socketOrigin,
} from './background.js'
import { parseTimeout, type Timeout } from './duration.js'
import { InvalidKeyError } from './errors.js'
import {
  checkTags,
  type GetOrSetOptions,
  type Held,
  lockOrWait,
  type Policy,
  policyOf,
  releaseLock,
  resolveTags,
  snapshotTags,
  tagsHold,
} from './getorset.js'
import { type DigestFn, type HashMethod, resolveHashMethod } from './hash.js'
import type { Slot, SlotSettings } from './slot.js'

/**
 * A cached response as it is stored in the backend: status, headers in order
 * (a repeated header is several pairs) and the body bytes exactly as they were
 * sent (encoded when a compression layer ran inside the cache).
 */
export interface StoredView {
  /** The HTTP status code. */
  status: number
  /** Header `[name, value]` pairs, names as the handler spelled them. Hop-by-hop headers and `Date` are left out. */
  headers: [string, string][]
  /** The body bytes. */
  body: Buffer
  /** The timeout (seconds) the entry was stored with, when one was given. */
  timeout?: number
  /** With a grace period: epoch milliseconds until which the entry is fresh (it lives `grace` longer). */
  fresh?: number
  /** With tags: the `[tag, token]` snapshot taken when the handler started. */
  tags?: [string, string][]
  /**
   * For a response that varied on request headers (its `Vary`, `Accept-Encoding`
   * aside): the `[lower-case name, normalised value]` pairs of the request it
   * was made for (`''` for an absent header). Served only to requests with
   * the same values.
   */
  vary?: [string, string][]
}

/** A request to the app's own server that repeats a request, for background refreshes. */
export interface BackgroundRequest {
  /** The absolute URL at the app's own server (its local address), path and query as received. */
  readonly url: string
  /** The request's headers to repeat (lower-case names). */
  readonly headers: Readonly<Record<string, string>>
}

/**
 * The query arguments of a request when building a key outside of one
 * (`deleteCached`, `makeCacheKey`): a query string (`'a=1&b=2'`, a leading `?`
 * is ignored), a `URLSearchParams`, a record (an array value means a repeated
 * parameter), or `[name, value]` pairs.
 */
export type QueryArgs =
  | string
  | URLSearchParams
  | Readonly<Record<string, QueryValue | readonly QueryValue[]>>
  | Iterable<readonly [string, QueryValue]>

/** A query parameter value; numbers and booleans are converted with `String()`. */
export type QueryValue = string | number | boolean

/**
 * What the engine needs to know about a request. Adapters build one per
 * request; it must be cheap (everything but `method` may be computed lazily).
 *
 * @typeParam Req - the framework's request object, handed to user callbacks.
 */
export interface RequestView<Req = unknown> {
  /** The HTTP method as received (compared case-insensitively). */
  readonly method: string
  /**
   * The full request path without the query string, as received (percent-escapes
   * kept: routers tell `/a%2Fb` from `/a/b`, so keys must too).
   */
  readonly path: string
  /** The query: the raw query string (without `?`) or any other {@link QueryArgs}. */
  readonly query: QueryArgs
  /** The value of a request header, `name` in lower case; repeated headers joined with `, `. */
  header(name: string): string | undefined
  /** The framework's request, passed to `keyPrefix`, `unless`, `forcedUpdate`, `isStale` and `makeCacheKey`. */
  readonly raw: Req
  /** The source text of the handlers this cache wraps, for `sourceCheck`; `undefined` when unknown. */
  source?(): string | undefined
  /**
   * The same request, addressed to the app's own server, for a background
   * refresh of a stale entry (`grace`); `undefined` when unknown (the entry
   * is then served stale until its grace period ends).
   */
  backgroundRequest?(): BackgroundRequest | undefined
  /** The route pattern that matched (`/users/:id`), naming the view in `cache.stats()`; `undefined` when unknown. */
  route?(): string | undefined
}

/**
 * Options of `cache.cached()`: the camelCase of Flask-Caching's `cached()`
 * parameters, plus cachette's safety options (`cacheStatuses`,
 * `allowAuthorized`, `maxBodySize`). Unknown options and bad values throw a
 * TypeError when the middleware is created, not per request.
 *
 * Boolean callbacks (`unless`, `forcedUpdate`, `isStale`) act only when they
 * return exactly `true` (or a promise of `true`), as in Flask-Caching: a truthy
 * `1` or `'yes'` does nothing.
 *
 * @typeParam Req - the framework's request object.
 */
export interface ViewCacheOptions<Req = unknown> {
  /**
   * How long entries live: seconds, or a duration string (`'10m'`). `0` means
   * forever; `undefined` means the backend's `CACHE_DEFAULT_TIMEOUT`. Parsed
   * once, here; a response can override it (`setCacheTimeout`).
   * @default undefined
   */
  timeout?: Timeout
  /**
   * The key, or where it starts. A string containing `%s` has it replaced by
   * the request path (so the default key of `/users/1` is `view//users/1`); a
   * string without `%s` is a fixed key shared by every request; a function is
   * called per request with the request and returns the key (use it to vary
   * by user: `(req) => 'view/' + req.user.id + req.path`). With `queryString`
   * or `sourceCheck` a hex digest is appended.
   * @default 'view/%s'
   */
  keyPrefix?: string | ((req: Req) => string | Promise<string>)
  /** Bypass the cache entirely (no read, no write, no hit header) when it returns exactly `true`. */
  unless?: (req: Req) => unknown
  /** Skip the read and store a fresh response when it returns exactly `true` (a GET only). */
  forcedUpdate?: (req: Req) => unknown
  /** Called on a hit with the stored entry; exactly `true` makes it a miss (the handler runs and the entry is replaced). */
  isStale?: (entry: StoredView, req: Req) => unknown
  /**
   * Called with a fresh response before it is stored; a falsy result (or a
   * promise of one) keeps it out of the cache. The response is sent either way.
   */
  responseFilter?: (entry: StoredView) => unknown
  /**
   * Key on the query string too: the key is the prefix plus the hex digest of
   * the sorted `(name, value)` pairs, so `?b=2&a=1` and `?a=1&b=2` share an
   * entry, repeated parameters count, and blank values are kept. Without it,
   * the query string is ignored (`/search?q=a` and `/search?q=b` share one entry).
   * @default false
   */
  queryString?: boolean
  /** Hash for `queryString` and `sourceCheck` digests. @default the `CACHE_HASH_METHOD` of the app (`'sha256'`) */
  hashMethod?: HashMethod
  /**
   * Accepted for parity with Flask-Caching. It has no effect on HTTP
   * responses: a response is never `null`, and a stored entry is told apart
   * from a miss without a second round trip.
   * @default false
   */
  cacheNone?: boolean
  /** Builds the whole key from the request, replacing `keyPrefix`, `queryString` and `sourceCheck`. */
  makeCacheKey?: (req: Req) => string | Promise<string>
  /**
   * Append a digest of the route handlers' source to the key, so a deploy that
   * changes a handler does not serve pages it rendered before.
   * @default the `CACHE_SOURCE_CHECK` of the app (`false`)
   */
  sourceCheck?: boolean
  /**
   * Mark hits with a response header: `true` adds `hit_cache: True` (as
   * Flask-Caching); a string names the header instead (`'x-cache'`, value
   * `True`). Misses and bypasses get no header.
   * @default false
   */
  responseHitIndication?: boolean | string
  /**
   * Which statuses are stored. Flask-Caching stores every status, so one bad
   * request could pin a 404 or a 500 for the whole timeout (its issues #91,
   * #98, #180). cachette stores only success: 2xx except 206 (partial
   * content). Give a list (`[200, 301, 404]`) or a predicate.
   * @default 2xx except 206
   */
  cacheStatuses?: readonly number[] | ((status: number) => boolean)
  /**
   * Requests carrying an `Authorization` or `Proxy-Authorization` header bypass the cache entirely (no
   * read, no write), since their responses are usually per user. Set `true`
   * for routes whose response does not depend on who asks, or whose key
   * already varies by user.
   * @default false
   */
  allowAuthorized?: boolean
  /**
   * Request headers whose values are part of the key, for pages that depend
   * on them without saying so in `Vary`: `['host']` for a multi-tenant app
   * serving several hosts from one process. (A response's own `Vary` is
   * honoured without this: one variant per value of the headers it names.)
   * Outside a request (`deleteCached`, `makeCacheKey`) give the values as
   * `headers: { host: 'a.example' }`.
   * @default []
   */
  varyHeaders?: readonly string[]
  /**
   * The largest body (bytes, as sent) that is stored. Larger responses are
   * passed through untouched and not stored, so a big download is never
   * buffered in memory.
   * @default 8 MiB
   */
  maxBodySize?: number
  /**
   * Seconds (or a duration string) a page is kept after its `timeout`. In
   * that time it is served at once (stale) while one background request to
   * the app's own server renders it again; if that fails, the stale page
   * keeps being served (retried after `graceBackoff`).
   * @default 0
   */
  grace?: GetOrSetOptions['grace']
  /** See {@link ViewCacheOptions.grace}. @default 10 */
  graceBackoff?: GetOrSetOptions['graceBackoff']
  /**
   * Tags of the stored page (a list, or a function of the request), for
   * `cache.invalidateTags`.
   */
  tags?: readonly string[] | ((req: Req) => readonly string[])
  /**
   * One render across processes for a missing page: the first process
   * takes a lock through the backend; the others wait for its page (at most
   * `lock.wait`), then render it themselves. Within one process, concurrent
   * misses always share one render.
   * @default false
   */
  lock?: GetOrSetOptions['lock']
  /**
   * The view's name in `cache.stats()` and metrics.
   * @default the route pattern (`/users/:id`), else the request path
   */
  name?: string
}

/** A framework-independent response, captured by an adapter while it passes through. */
export interface CapturedResponse {
  /** The status sent. */
  readonly status: number
  /** The headers sent, set or changed after the cache ran (headers set earlier by outer middleware are per request and left out): what is stored. */
  readonly headers: readonly (readonly [string, string])[]
  /** The body bytes, or `undefined` when it exceeded `maxBodySize`. */
  readonly body: Buffer | undefined
  /**
   * Every header on the response as it left (outer middleware's, and those
   * added while its head was written), when the adapter can see them: any of
   * them can veto storage (`Set-Cookie`, `Cache-Control: private`/`no-store`,
   * `Vary: *`), and its `Vary` selects the variant. Defaults to `headers`.
   */
  readonly sent?: readonly (readonly [string, string])[] | undefined
  /** Whether the whole response was delivered (`false` when the client went away mid-response). */
  readonly complete: boolean
  /** Whether the handler failed (threw, rejected or passed an error on); such responses are never stored. */
  readonly errored: boolean
}

/** Why a request runs uncached. */
export type BypassReason =
  /** Not a GET or HEAD. */
  | 'method'
  /** The request has an `Authorization` header and the route did not opt in. */
  | 'authorization'
  /** `unless` returned `true`. */
  | 'unless'
  /** A HEAD request with nothing stored: answered uncached, nothing stored. */
  | 'head-miss'
  /** The backend or a key callback failed; the error was logged. */
  | 'error'

/** Run the handler without reading or writing the cache. */
export interface ViewBypass {
  readonly kind: 'bypass'
  /** Why. */
  readonly reason: BypassReason
}

/**
 * Replay a stored response. A hit read from a backend that shares its
 * entries ({@link PEEK}) is made once per stored entry and serves every
 * request that finds it: adapters read it and never change it, nor anything
 * in it (copy a grouped header's value list before handing it to a framework
 * that may append to it).
 */
export interface ViewHit {
  readonly kind: 'hit'
  /** The backend key the entry came from (the base key, or a `|encoding` variant). */
  readonly key: string
  /** The stored entry, as found. */
  readonly entry: StoredView
  /** The status to send. */
  readonly status: number
  /** Headers to set, in order: the stored ones, `Content-Length` for the body, the hit header if enabled. */
  readonly headers: readonly (readonly [string, string])[]
  /** {@link ViewHit.headers} grouped by name (see {@link groupHeaders}), as `setHeader`-style APIs take them. */
  readonly grouped: readonly (readonly [string, string | readonly string[]])[]
  /** The body to send; `undefined` for HEAD (and for statuses that have no body). */
  readonly body: Buffer | undefined
}

/** Run the handler, capture its response and pass it to {@link ViewCache.store}. */
export interface ViewMiss {
  readonly kind: 'miss'
  /** The base key (identity representation). */
  readonly key: string
  /** The encoding this client prefers, used to file a response that varies on `Accept-Encoding` but came out unencoded. */
  readonly preferredEncoding: string | undefined
  /** Whether the read was skipped by `forcedUpdate`. */
  readonly forced: boolean
  /** The request's headers, for filing a response that varies on them. @internal */
  readonly request?: Pick<RequestView, 'header'> | undefined
  /** The render other requests for the key wait on, its lock and tag snapshot. @internal */
  readonly pending?: Pending
}

/** A render in progress: requests that miss the same key meanwhile wait for it. @internal */
export interface Pending {
  /** When the render started (epoch ms); waiters give up `lock.wait` (or 10 s) after it. */
  readonly started: number
  /** Resolves once the render was stored or abandoned. */
  readonly done: Promise<void>
  /** Resolves {@link Pending.done}. */
  readonly settle: () => void
  /** The distributed lock, when taken. */
  held?: Held | undefined
  /** The tags' tokens when the render started; `null` when they could not be read (then nothing is stored). */
  snapshot?: Promise<[string, string][] | null> | undefined
}

/**
 * Renders of this process not yet stored or abandoned, each with when
 * requests waiting for it give up (epoch ms): {@link viewsSettled} reads it.
 * One entry per miss, removed when the render settles.
 */
const rendering = new Map<Promise<void>, number>()

/**
 * Resolves once every view render started so far in this process has been
 * stored or abandoned (its response refused, or its client gone): after it, a
 * response's store decision has been made. A render that never settles counts
 * as abandoned once requests waiting for it would give up (`lock.wait`, or
 * 10 s, after it started). For tests and graceful shutdown; not part of the
 * public API.
 */
export function viewsSettled(): Promise<void> {
  if (rendering.size === 0) return Promise.resolve()
  const now = Date.now()
  const waits: Promise<void>[] = []
  for (const [done, until] of rendering) waits.push(within(done, until - now))
  return Promise.all(waits).then(() => undefined)
}

/** The request header that marks a background refresh of a view; its value is the route's secret token. */
export const VIEW_REFRESH_HEADER = 'x-cachette-view-refresh'

/** How long requests wait for another request's render of the same page, by default. */
const DEFAULT_RENDER_WAIT_MS = 10_000

/** What {@link ViewCache.lookup} decided. */
export type ViewLookup = ViewBypass | ViewHit | ViewMiss

/** `maxBodySize` by default: 8 MiB. */
export const DEFAULT_MAX_BODY_SIZE = 8 * 1024 * 1024

/** The default `keyPrefix` (Flask-Caching's `'view/%s'`). */
export const DEFAULT_VIEW_KEY_PREFIX = 'view/%s'

/** The default hit header name (Flask-Caching's `hit_cache`). */
export const HIT_HEADER = 'hit_cache'

/**
 * Content codings the lookup considers, in order of preference for equal
 * q-values. A response encoded with one of them is stored at `key|<coding>`.
 */
export const VIEW_ENCODINGS: readonly string[] = ['br', 'zstd', 'gzip', 'deflate']

const OPTION_NAMES: ReadonlySet<string> = new Set([
  'timeout',
  'varyHeaders',
  'keyPrefix',
  'unless',
  'forcedUpdate',
  'isStale',
  'responseFilter',
  'queryString',
  'hashMethod',
  'cacheNone',
  'makeCacheKey',
  'sourceCheck',
  'responseHitIndication',
  'cacheStatuses',
  'allowAuthorized',
  'maxBodySize',
  'grace',
  'graceBackoff',
  'tags',
  'lock',
  'name',
])

/** Response headers never stored: the connection's, and `Date`. */
const NOT_STORED: ReadonlySet<string> = new Set([...HOP_BY_HOP_HEADERS, 'date'])

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

const responseTimeouts = new WeakMap<object, number>()

/**
 * Sets the timeout of the entry stored for one response (Flask-Caching's
 * `CachedResponse`), overriding the route's `timeout`. `undefined` or `0`
 * clears it, so the route's timeout applies (as in Flask-Caching, where
 * `CachedResponse(timeout=0)` falls back to the decorator's value).
 *
 * @param response - the framework's response object (any object identifying the response)
 */
export function setResponseTimeout(response: object, timeout: Timeout | undefined): void {
  const seconds = parseTimeout(timeout, 'setCacheTimeout')
  if (seconds === undefined || seconds === 0) responseTimeouts.delete(response)
  else responseTimeouts.set(response, seconds)
}

/** The timeout set with {@link setResponseTimeout} for `response`, if any. */
export function responseTimeoutOf(response: object): number | undefined {
  return responseTimeouts.get(response)
}

/** Builds the stand-in request a framework's key callbacks receive outside of a request. */
export type StubRequest = (path: string, query: QueryArgs | undefined) => unknown

/** Where a view key is built outside of a request (`deleteCached`, `makeCacheKey`). */
export interface ViewKeyArgs {
  /** The request path, e.g. `'/users/42'`. */
  path?: string
  /** The query arguments; used only by routes with `queryString: true`. */
  queryArgs?: QueryArgs
  /**
   * The request handed to a `keyPrefix` or `makeCacheKey` function. Without
   * it they receive the framework's minimal stand-in (for Express:
   * `{ method: 'GET', url, originalUrl, path, query, headers: {} }`).
   */
  request?: unknown
  /** Request header values (lower-case names) for routes with `varyHeaders`, e.g. `{ host: 'a.example' }`. */
  headers?: Readonly<Record<string, string>>
}

/** Flask-Caching's attributes of a cached view, which every adapter's middleware carries. */
export interface ViewAttributes<Req = unknown> {
  /** The timeout (seconds) for new entries; assignable (seconds or a duration string), read at store time. */
  cacheTimeout: Timeout | undefined
  /** The options this middleware was created with. */
  readonly options: Readonly<ViewCacheOptions<Req>>
  /** The base cache key for a path and query, as this middleware would build it (encoded variants add `|<coding>`). */
  makeCacheKey(args: ViewKeyArgs): Promise<string>
}

/**
 * What `cache.deleteCached()` accepts: a path (keys built with the default
 * options), a middleware (or, for Fastify, the hooks object) an adapter's
 * `cached()` returned, a NestJS handler decorated with `@Cached()`, or a path
 * with the key options of the route.
 */
export type DeleteCachedTarget =
  | string
  | (object & ViewAttributes<never>)
  /** A controller method decorated with `@Cached()` (`cachette/nestjs`). */
  | ((...args: never[]) => unknown)
  | ({ path: string; queryArgs?: QueryArgs; request?: unknown } & Pick<
      ViewCacheOptions,
      'keyPrefix' | 'queryString' | 'hashMethod' | 'makeCacheKey' | 'sourceCheck'
    >)

/** What `deleteCached(middleware)` needs to know about a middleware an adapter created. */
interface RegisteredView {
  readonly engine: ViewCache<never>
  /** Sources of the routes the middleware has served, for `sourceCheck`. */
  readonly sources: Set<string>
  readonly stubRequest: StubRequest
}

const registeredViews = new WeakMap<object, RegisteredView>()

/**
 * Gives an adapter's middleware the {@link ViewAttributes} and registers it
 * so that `cache.deleteCached(middleware, ...)` finds its options. Every
 * adapter calls it on the middleware it returns. The attributes are
 * enumerable on a function and not on an object (Fastify's hooks object), so
 * spreading the object into route options copies only its hooks.
 *
 * @param sources - the adapter adds the source of each route it keys with `sourceCheck`
 */
export function exposeView<F extends object>(
  middleware: F,
  engine: ViewCache<never>,
  slotOf: () => Slot,
  stubRequest: StubRequest,
  sources: Set<string> = new Set(),
): F & ViewAttributes<never> {
  const enumerable = typeof middleware === 'function'
  Object.defineProperties(middleware, {
    cacheTimeout: {
      get: () => engine.cacheTimeout,
      set: (t: Timeout | undefined) => {
        engine.cacheTimeout = t
      },
      enumerable,
    },
    options: { value: engine.options, enumerable },
    makeCacheKey: {
      value: (args: ViewKeyArgs) =>
        keyOutsideRequest(engine, args, slotOf().settings, undefined, stubRequest),
    },
  })
  registerView(middleware, engine, stubRequest, sources)
  return middleware as F & ViewAttributes<never>
}

/**
 * Registers `target` (a middleware, or a decorated handler such as a NestJS
 * controller method) so that `cache.deleteCached(target, ...)` builds keys
 * with `engine`'s options. Unlike {@link exposeView}, it adds nothing to `target`.
 */
export function registerView(
  target: object,
  engine: ViewCache<never>,
  stubRequest: StubRequest,
  sources: Set<string> = new Set(),
): void {
  registeredViews.set(target, { engine, sources, stubRequest })
}

async function keyOutsideRequest(
  engine: ViewCache<never>,
  args: ViewKeyArgs,
  settings: SlotSettings,
  source: string | undefined,
  stub: StubRequest,
): Promise<string> {
  const given = args?.path
  if (typeof given !== 'string' || given === '') {
    throw new TypeError('a view key needs a path, e.g. { path: "/users/42" }')
  }
  const path = requestTarget(given)
  return engine.keyFor(
    {
      method: 'GET',
      path,
      query: args.queryArgs ?? '',
      header: (name) => args.headers?.[name],
      raw: (args.request ?? stub(path, args.queryArgs)) as never,
      source: () => source,
    },
    settings,
  )
}

/**
 * The target a view is keyed on: the URL as received when the router routed
 * that URL (or that URL with a mount prefix stripped: an Express router's
 * `baseUrl`, koa-mount's `mountPath`), else both, as
 * `<received path>|routed=<routed path>?<routed query>`, so a rewrite
 * (`req.url = '/admin'`) never fills the entry of the URL it came from.
 *
 * @param received - path and query as received (`originalUrl`)
 * @param routed - path and query the router matched (`req.url`, `ctx.url`)
 * @param mount - the prefix a mount stripped from `routed`, when known
 */
export function routedTarget(received: string, routed: string, mount?: string): string {
  if (routed === received) return received
  if (mount) {
    if (received === mount + routed) return received
    // A request for the mount point itself: the router sees `/` (or `/?query`).
    if (routed[0] === '/' && (routed.length === 1 || routed[1] === '?')) {
      if (received === mount + routed.slice(1)) return received
    }
  }
  const q = routed.indexOf('?')
  const routedPath = q < 0 ? routed : routed.slice(0, q)
  const r = received.indexOf('?')
  const receivedPath = r < 0 ? received : received.slice(0, r)
  return `${receivedPath}|routed=${routedPath}${q < 0 ? '' : routed.slice(q)}`
}

/**
 * A path as a client puts it on the request line: characters that may not
 * appear there raw (non-ASCII, white space, controls, `"`, `<`, `>`, `\\`,
 * `^`, backquote, `{`, `|`, `}`) are percent-encoded as UTF-8; existing
 * escapes and everything else stay as they are. Keys are built from the path
 * as received (never decoded: a router tells `/docs%2Fintro` from
 * `/docs/intro`), so a path given outside a request (`deleteCached('/café')`)
 * is put in that form.
 */
export function requestTarget(path: string): string {
  return path.replace(NOT_ON_REQUEST_LINE, encodeChar)
}

const NOT_ON_REQUEST_LINE = /[^\x21-\x7e]|["<>\\^`{|}]/gu

function encodeChar(c: string): string {
  try {
    return encodeURIComponent(c)
  } catch {
    // A lone surrogate has no UTF-8 form: U+FFFD, as a client would send it.
    return '%EF%BF%BD'
  }
}

/**
 * The {@link RequestView} of a request given as its URL (path and query, as
 * on the request line) and Node-style headers (lower-case names, a list for
 * repeated ones), which is how Express, Fastify and Koa hand them over.
 */
export function requestViewOf<Req>(
  method: string,
  url: string,
  headers: Readonly<Record<string, string | string[] | undefined>>,
  raw: Req,
  source?: () => string | undefined,
  socket?: LocalSocket,
): RequestView<Req> {
  return new NodeRequestView(method, url, headers, raw, source, socket)
}

/** {@link requestViewOf}'s view: a class, so that a request costs one object and no closures. */
class NodeRequestView<Req> implements RequestView<Req> {
  readonly path: string
  readonly query: string
  readonly url: string

  constructor(
    readonly method: string,
    url: string,
    private readonly headers: Readonly<Record<string, string | string[] | undefined>>,
    readonly raw: Req,
    readonly source: (() => string | undefined) | undefined,
    private readonly socket: LocalSocket | undefined,
  ) {
    this.url = url
    const q = url.indexOf('?')
    this.path = q < 0 ? url : url.slice(0, q)
    this.query = q < 0 ? '' : url.slice(q + 1)
  }

  header(name: string): string | undefined {
    const v = this.headers[name]
    return Array.isArray(v) ? v.join(', ') : v
  }

  /** Fastify's `routeOptions.url`, Koa's `_matchedRoute` (@koa/router), Express's `req.route.path`. */
  route(): string | undefined {
    const r = this.raw as {
      routeOptions?: { url?: unknown }
      _matchedRoute?: unknown
      route?: { path?: unknown }
    } | null
    const pattern = r?.routeOptions?.url ?? r?._matchedRoute ?? r?.route?.path
    return typeof pattern === 'string' ? pattern : undefined
  }

  backgroundRequest(): BackgroundRequest | undefined {
    if (this.socket?.localPort === undefined) return undefined
    return {
      url: socketOrigin(this.socket) + this.url,
      headers: repeatedHeaders(Object.entries(this.headers)),
    }
  }
}

/**
 * Stored header pairs grouped by name (case-insensitively, first spelling
 * kept), one value or a list, ready for a framework's `setHeader`/`set`.
 */
export function groupHeaders(
  pairs: readonly (readonly [string, string])[],
): [string, string | string[]][] {
  const grouped = new Map<string, [string, string[]]>()
  for (const [name, value] of pairs) {
    const lower = name.toLowerCase()
    const g = grouped.get(lower)
    if (g) g[1].push(value)
    else grouped.set(lower, [name, [value]])
  }
  return [...grouped.values()].map(([name, values]) => [
    name,
    values.length === 1 ? (values[0] as string) : values,
  ])
}

/**
 * The stand-in request that key callbacks (`keyPrefix`, `makeCacheKey`)
 * receive outside of a request (`makeCacheKey`, `deleteCached`): the fields a
 * Node framework's request has, `query` multi-valued as Express parses it.
 */
export function stubRequestFor(
  path: string,
  query: QueryArgs | undefined,
): {
  method: 'GET'
  url: string
  originalUrl: string
  path: string
  query: Record<string, string | string[]>
  params: Record<string, string>
  headers: Record<string, string>
} {
  const pairs = queryPairs(query)
  const qs = new URLSearchParams(pairs).toString()
  const url = qs ? `${path}?${qs}` : path
  const q: Record<string, string | string[]> = {}
  for (const [n, v] of pairs) {
    const prev = q[n]
    q[n] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v]
  }
  return { method: 'GET', url, originalUrl: url, path, query: q, params: {}, headers: {} }
}

let defaultEngine: ViewCache<never> | undefined

/**
 * Every backend key of one cached view: the base key and its encoded
 * variants (`key|br`, `key|gzip`, ...), for `cache.deleteCached()`.
 *
 * - `viewKeysFor('/users/42')`: default options (`view//users/42`).
 * - `viewKeysFor(middleware, { path, queryArgs })`: the options of that
 *   middleware. With `sourceCheck`, keys for every route it has served in
 *   this process.
 * - `viewKeysFor({ path, queryArgs, keyPrefix, queryString, ... })`.
 */
export async function viewKeysFor(
  target: DeleteCachedTarget,
  args: ViewKeyArgs | undefined,
  settings: SlotSettings,
): Promise<string[]> {
  let engine: ViewCache<never>
  let keyArgs: ViewKeyArgs
  let sources: (string | undefined)[] = [undefined]
  let stub: StubRequest = stubRequestFor
  if (typeof target === 'string') {
    defaultEngine ??= new ViewCache<never>({})
    engine = defaultEngine
    keyArgs = { ...args, path: target }
  } else if (
    typeof target === 'function' ||
    (typeof target === 'object' && target !== null && registeredViews.has(target))
  ) {
    const registered = registeredViews.get(target)
    if (registered === undefined) {
      throw new TypeError(
        'deleteCached: pass a path, the middleware a cachette cached() returned, or a handler decorated with @Cached()',
      )
    }
    engine = registered.engine
    stub = registered.stubRequest
    keyArgs = args ?? {}
    if (registered.sources.size > 0) sources = [...registered.sources]
  } else if (typeof target === 'object' && target !== null) {
    const { path, queryArgs, request, ...keyOptions } = target as Exclude<
      DeleteCachedTarget,
      string | ViewAttributes<never> | Function
    >
    engine = new ViewCache<never>(keyOptions as ViewCacheOptions<never>, 'deleteCached')
    keyArgs = { path, queryArgs, request, ...args }
  } else {
    throw new TypeError('deleteCached: pass a path or the middleware a cachette cached() returned')
  }
  const keys: string[] = []
  for (const source of sources) {
    keys.push(
      ...engine.variantKeys(await keyOutsideRequest(engine, keyArgs, settings, source, stub)),
    )
  }
  return keys
}

/** Whether a status is stored by default: 2xx except 206. */
export function isDefaultCacheableStatus(status: number): boolean {
  return status >= 200 && status < 300 && status !== 206
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof (v as PromiseLike<unknown> | null)?.then === 'function'
}

async function isTrue(v: unknown): Promise<boolean> {
  return (isThenable(v) ? await v : v) === true
}

/** Normalises {@link QueryArgs} to `[name, value]` string pairs, in order. */
export function queryPairs(query: QueryArgs | undefined | null): [string, string][] {
  if (query === undefined || query === null) return []
  if (typeof query === 'string') {
    const s = query.startsWith('?') ? query.slice(1) : query
    return s === '' ? [] : [...new URLSearchParams(s)]
  }
  if (query instanceof URLSearchParams) return [...query]
  if (typeof (query as Iterable<unknown>)[Symbol.iterator] === 'function') {
    const out: [string, string][] = []
    for (const pair of query as Iterable<readonly [string, QueryValue]>) {
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw new TypeError('queryArgs: expected [name, value] pairs')
      }
      out.push([String(pair[0]), String(pair[1])])
    }
    return out
  }
  if (typeof query === 'object') {
    const out: [string, string][] = []
    for (const [name, value] of Object.entries(query)) {
      if (Array.isArray(value)) for (const v of value) out.push([name, String(v)])
      else out.push([name, String(value)])
    }
    return out
  }
  throw new TypeError(
    `queryArgs: expected a string, URLSearchParams, record or pairs, got ${typeof query}`,
  )
}

/** Python's `repr()` of a `str`, so query-string keys match Flask-Caching's byte for byte. */
function pyRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'"
  let out = quote
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number
    if (ch === '\\') out += '\\\\'
    else if (ch === quote) out += `\\${quote}`
    else if (ch === '\n') out += '\\n'
    else if (ch === '\r') out += '\\r'
    else if (ch === '\t') out += '\\t'
    else if (ch !== ' ' && /[\p{C}\p{Z}]/u.test(ch)) {
      if (cp <= 0xff) out += `\\x${cp.toString(16).padStart(2, '0')}`
      else if (cp <= 0xffff) out += `\\u${cp.toString(16).padStart(4, '0')}`
      else out += `\\U${cp.toString(16).padStart(8, '0')}`
    } else out += ch
  }
  return out + quote
}

/**
 * The text Flask-Caching hashes for a query-string key: Python's `str()` of
 * the sorted tuple of `(name, value)` tuples, e.g. `(('a', '1'), ('b', '2'))`.
 * Sorted by name only: a repeated parameter's values keep their order
 * (Flask-Caching sorts them too, merging `?a=2&a=1` with `?a=1&a=2`).
 */
export function queryKeyText(pairs: readonly (readonly [string, string])[]): string {
  // By name only (a stable sort): the values of a repeated parameter keep their
  // order, since `?a=2&a=1` and `?a=1&a=2` are different lists to the app.
  const sorted = [...pairs].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0))
  const items = sorted.map(([n, v]) => `(${pyRepr(n)}, ${pyRepr(v)})`)
  return items.length === 1 ? `(${items[0]},)` : `(${items.join(', ')})`
}

/** A parsed `Accept-Encoding`: the acceptable codings of {@link VIEW_ENCODINGS} by preference, and whether identity is acceptable. */
export interface AcceptedEncodings {
  /** Acceptable codings, best first (q-value, then {@link VIEW_ENCODINGS} order). */
  readonly encodings: readonly string[]
  /** Whether an unencoded body is acceptable (false only for `identity;q=0`, or `*;q=0` without identity). */
  readonly identity: boolean
  /** Whether `coding` is acceptable. */
  accepts(coding: string): boolean
}

const IDENTITY_ONLY: AcceptedEncodings = {
  encodings: [],
  identity: true,
  accepts: (c) => c === 'identity',
}

/** Parsed `Accept-Encoding` values: clients send few distinct ones, so a hit need not parse again. */
const acceptCache = new Map<string, AcceptedEncodings>()
const ACCEPT_CACHE_SIZE = 64

/** Parses an `Accept-Encoding` header (RFC 9110 §12.5.3). A missing header accepts identity only. */
export function parseAcceptEncoding(header: string | undefined): AcceptedEncodings {
  if (header === undefined) return IDENTITY_ONLY
  let parsed = acceptCache.get(header)
  if (parsed === undefined) {
    parsed = parseAccept(header)
    if (acceptCache.size >= ACCEPT_CACHE_SIZE) acceptCache.clear()
    acceptCache.set(header, parsed)
  }
  return parsed
}

function parseAccept(header: string): AcceptedEncodings {
  if (header.trim() === '') return IDENTITY_ONLY
  const q = new Map<string, number>()
  for (const part of header.split(',')) {
    const [rawName, ...params] = part.split(';')
    let name = (rawName ?? '').trim().toLowerCase()
    if (name === '') continue
    if (name === 'x-gzip') name = 'gzip'
    let weight = 1
    for (const p of params) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p)
      if (m) weight = Number(m[1])
    }
    if (!Number.isFinite(weight)) weight = 0
    q.set(name, Math.max(q.get(name) ?? 0, weight))
  }
  const star = q.get('*')
  const weightOf = (c: string): number => q.get(c) ?? star ?? 0
  const encodings = VIEW_ENCODINGS.filter((c) => weightOf(c) > 0)
    .map((c, i) => [c, weightOf(c), i] as const)
    .sort((a, b) => b[1] - a[1] || a[2] - b[2])
    .map(([c]) => c)
  const identityQ = q.get('identity')
  const identity = identityQ !== undefined ? identityQ > 0 : star === undefined || star > 0
  return {
    encodings,
    identity,
    accepts: (c) => {
      const coding = c.toLowerCase()
      return coding === 'identity' ? identity : weightOf(coding) > 0
    },
  }
}

function headerValue(
  headers: readonly (readonly [string, string])[],
  name: string,
): string | undefined {
  let out: string | undefined
  for (const [n, v] of headers) {
    if (n.toLowerCase() === name) out = out === undefined ? v : `${out}, ${v}`
  }
  return out
}

function listHas(value: string | undefined, token: string): boolean {
  return value?.split(',').some((t) => t.trim().toLowerCase() === token) === true
}

function contentCoding(headers: readonly (readonly [string, string])[]): string | undefined {
  const ce = headerValue(headers, 'content-encoding')?.trim().toLowerCase()
  return ce === undefined || ce === '' || ce === 'identity' ? undefined : ce
}

function hasNoBody(status: number): boolean {
  return status === 204 || status === 304 || (status >= 100 && status < 200)
}

/** The most header pairs a stored view may have; an entry with more is not one. */
const MAX_STORED_HEADERS = 1024

/** The most tags a stored view may carry. */
const MAX_STORED_TAGS = 1024

/** A header value that can go on the wire: no CR, LF or NUL (Node rejects them, and they would split a response). */
const SAFE_HEADER_VALUE = /^[^\r\n\0]*$/

/** Whether `value` is a dense list of at most `max` `[string, string]` pairs. */
function stringPairs(value: unknown, max: number): value is [string, string][] {
  if (!denseArray(value, max)) return false
  for (const t of value) {
    if (!denseArray(t, 2) || typeof t[0] !== 'string' || typeof t[1] !== 'string') return false
  }
  return true
}

/** Whether `value` is a dense array of at most `max` elements (a sparse or huge one is never walked). */
function denseArray(value: unknown, max: number): value is unknown[] {
  if (!Array.isArray(value) || value.length > max) return false
  for (let i = 0; i < value.length; i++) if (!(i in value)) return false
  return true
}

/**
 * Whether `headers` are `[name, value]` pairs that can be sent as they are:
 * names are tokens, values have no CR, LF or NUL, and there are at most
 * `max` of them. Shared by the view and HTTP caches, which both read
 * entries back from a backend that others may write to.
 */
export function safeHeaderPairs(
  headers: unknown,
  max = MAX_STORED_HEADERS,
): headers is [string, string][] {
  if (!stringPairs(headers, max)) return false
  for (const [name, value] of headers) {
    if (!TOKEN.test(name) || !SAFE_HEADER_VALUE.test(value)) return false
  }
  return true
}

/**
 * Whether a body of `length` bytes is what the `Content-Length` among
 * `headers` says (true without one). A response whose body is not (a source
 * that failed mid-way, an error page after a first chunk) failed, and a hit
 * replaying it would desynchronise the client's connection. Shared by the
 * view and HTTP caches.
 */
export function framedBy(headers: readonly (readonly [string, string])[], length: number): boolean {
  for (const [n, v] of headers) {
    if (n.toLowerCase() === 'content-length' && v.trim() !== String(length)) return false
  }
  return true
}

/** A backend value's body bytes as a Buffer: a Buffer, any `Uint8Array`, or JSON's `{ type: 'Buffer', data }`; `undefined` otherwise or above `max` bytes. */
export function storedBody(b: unknown, max: number): Buffer | undefined {
  let body: Buffer
  if (Buffer.isBuffer(b)) body = b
  else if (b instanceof Uint8Array) body = Buffer.from(b.buffer, b.byteOffset, b.byteLength)
  else if (
    typeof b === 'object' &&
    b !== null &&
    (b as { type?: unknown }).type === 'Buffer' &&
    denseArray((b as { data?: unknown }).data, max)
  ) {
    const data = (b as { data: unknown[] }).data
    if (!data.every((x) => Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 255)) {
      return undefined
    }
    body = Buffer.from(data as number[])
  } else return undefined
  return body.length > max ? undefined : body
}

/**
 * Reads a backend value as a {@link StoredView}, or `undefined` if it is not
 * one. Accepts a body that came back as a `Uint8Array` or as JSON's
 * `{ type: 'Buffer', data }`.
 *
 * A stored entry is data, not trust: anyone who can write to the backend
 * can plant one at a view's key. So everything a hit sends is checked here,
 * once per entry read: the status is an integer from 200 to 599 (what a view
 * may store), header names are tokens and values have no CR, LF or NUL, the
 * arrays are dense and bounded, the body is bytes within `maxBodySize`, and
 * the optional fields have their types. Anything else is not a view (the
 * engine treats it as a miss and deletes it).
 *
 * @param maxBody - the largest body accepted, bytes
 */
export function asStoredView(
  value: unknown,
  maxBody = Number.MAX_SAFE_INTEGER,
): StoredView | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const v = value as Partial<StoredView> & { body?: unknown }
  const status = v.status
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599) {
    return undefined
  }
  if (!safeHeaderPairs(v.headers)) return undefined
  const body = storedBody(v.body, maxBody)
  if (body === undefined) return undefined
  const out: StoredView = { status, headers: v.headers, body }
  if (v.timeout !== undefined) {
    if (typeof v.timeout !== 'number' || !(v.timeout >= 0)) return undefined
    out.timeout = v.timeout
  }
  if (v.fresh !== undefined) {
    if (typeof v.fresh !== 'number' || Number.isNaN(v.fresh)) return undefined
    out.fresh = v.fresh
  }
  if (v.tags !== undefined) {
    if (!stringPairs(v.tags, MAX_STORED_TAGS)) return undefined
    out.tags = v.tags as [string, string][]
  }
  if (v.vary !== undefined) {
    if (!stringPairs(v.vary, MAX_VARY_NAMES)) return undefined
    out.vary = v.vary
  }
  return out
}

function fail(what: string, message: string): never {
  throw new TypeError(`${what}: ${message}`)
}

/**
 * Checks `cached()` options and returns them unchanged. Throws a TypeError
 * naming the option for an unknown name or a value of the wrong type, and an
 * `InvalidTimeoutError` for a bad timeout.
 */
export function validateViewOptions<Req>(options: unknown, what = 'cached'): ViewCacheOptions<Req> {
  if (options === undefined) return {}
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    fail(what, 'options must be an object')
  }
  const o = options as Record<string, unknown>
  for (const k of Object.keys(o)) {
    if (!OPTION_NAMES.has(k)) {
      fail(what, `unknown option ${JSON.stringify(k)} (known: ${[...OPTION_NAMES].join(', ')})`)
    }
  }
  for (const k of [
    'unless',
    'forcedUpdate',
    'isStale',
    'responseFilter',
    'makeCacheKey',
  ] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'function') fail(what, `${k} must be a function`)
  }
  for (const k of ['queryString', 'cacheNone', 'sourceCheck', 'allowAuthorized'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') fail(what, `${k} must be a boolean`)
  }
  const kp = o.keyPrefix
  if (kp !== undefined && typeof kp !== 'function' && (typeof kp !== 'string' || kp === '')) {
    fail(what, 'keyPrefix must be a non-empty string or a function')
  }
  const hit = o.responseHitIndication
  if (
    hit !== undefined &&
    typeof hit !== 'boolean' &&
    !(typeof hit === 'string' && TOKEN.test(hit))
  ) {
    fail(what, 'responseHitIndication must be a boolean or a header name')
  }
  const cs = o.cacheStatuses
  if (cs !== undefined && typeof cs !== 'function') {
    if (!Array.isArray(cs) || !cs.every((s) => Number.isInteger(s) && s >= 100 && s <= 999)) {
      fail(what, 'cacheStatuses must be an array of status codes or a function (status) => boolean')
    }
  }
  const vh = o.varyHeaders
  if (
    vh !== undefined &&
    !(Array.isArray(vh) && vh.every((h) => typeof h === 'string' && TOKEN.test(h)))
  ) {
    fail(what, 'varyHeaders must be an array of header names, e.g. ["host"]')
  }
  const max = o.maxBodySize
  if (max !== undefined && (typeof max !== 'number' || Number.isNaN(max) || max < 0)) {
    fail(what, 'maxBodySize must be a non-negative number of bytes')
  }
  parseTimeout(o.timeout, `${what} timeout`)
  if (o.hashMethod !== undefined) resolveHashMethod(o.hashMethod, 'hashMethod')
  if (o.name !== undefined && (typeof o.name !== 'string' || o.name === '')) {
    fail(what, 'name must be a non-empty string')
  }
  policyOf(o, what)
  if (typeof o.tags !== 'function') checkTags(o.tags, what)
  return o as ViewCacheOptions<Req>
}

/**
 * One `cached()` configuration: options resolved once, key building, the
 * lookup decision and the store decision. Stateless per request, so one
 * instance serves every request of a route (and every app sharing it).
 *
 * @typeParam Req - the framework's request object, handed to user callbacks.
 */
export class ViewCache<Req = unknown> {
  /** The options as given (validated). */
  readonly options: Readonly<ViewCacheOptions<Req>>
  /** The largest body stored, in bytes; adapters stop buffering beyond it. */
  readonly maxBodySize: number
  #timeout: number | undefined
  readonly #digest: DigestFn | undefined
  readonly #statusOk: (status: number) => boolean
  readonly #hitHeader: string | undefined
  /** A string `keyPrefix` up to its `%s` (the whole prefix when it has none). */
  readonly #prefixHead: string
  /** A string `keyPrefix` after its `%s`; `undefined` when it has none. */
  readonly #prefixTail: string | undefined
  /** `varyHeaders`, lower case. */
  readonly #varyHeaders: readonly string[]
  /** Whether a lookup runs no user callback, so it can be decided synchronously. */
  readonly #plain: boolean
  /** Entries read without copying ({@link PEEK}), prepared once: `null` for a value that is not a view. */
  readonly #prepared = new WeakMap<object, Prepared | null>()
  /** Grace, back-off and lock. */
  readonly #policy: Policy
  /** Renders in progress, per slot (each app has its own backend) and key. */
  readonly #pending = new WeakMap<Slot, Map<string, Pending>>()
  /** Base keys with a background refresh under way or failed recently: until when not to start another. */
  readonly #refreshing = new Map<string, number>()
  /** The secret a background refresh request carries ({@link VIEW_REFRESH_HEADER}), so clients cannot force renders. */
  readonly refreshToken = randomBytes(16).toString('hex')

  /**
   * @param options - the `cached()` options; validated here (see {@link validateViewOptions}).
   * @param what - how errors name the caller.
   */
  constructor(options?: ViewCacheOptions<Req>, what = 'cached') {
    const o = validateViewOptions<Req>(options, what)
    this.options = Object.freeze({ ...o })
    this.#timeout = parseTimeout(o.timeout, `${what} timeout`)
    this.#digest =
      o.hashMethod === undefined ? undefined : resolveHashMethod(o.hashMethod, 'hashMethod')
    this.maxBodySize = o.maxBodySize ?? DEFAULT_MAX_BODY_SIZE
    const cs = o.cacheStatuses
    if (cs === undefined) this.#statusOk = isDefaultCacheableStatus
    else if (typeof cs === 'function') this.#statusOk = (s) => cs(s) === true
    else {
      const set = new Set(cs)
      this.#statusOk = (s) => set.has(s)
    }
    const hit = o.responseHitIndication
    this.#varyHeaders = (o.varyHeaders ?? []).map((h) => h.toLowerCase())
    this.#hitHeader = hit === true ? HIT_HEADER : typeof hit === 'string' ? hit : undefined
    const kp = typeof o.keyPrefix === 'string' ? o.keyPrefix : DEFAULT_VIEW_KEY_PREFIX
    const at = kp.indexOf('%s')
    this.#prefixHead = at < 0 ? kp : kp.slice(0, at)
    this.#prefixTail = at < 0 ? undefined : kp.slice(at + 2)
    this.#policy = policyOf(o, what)
    this.#plain =
      !o.makeCacheKey &&
      typeof o.keyPrefix !== 'function' &&
      !o.unless &&
      !o.forcedUpdate &&
      !o.isStale &&
      o.tags === undefined &&
      this.#policy.lock === undefined
  }

  /** The route's timeout in seconds (`undefined` = backend default). Assignable (seconds or a duration string); read at store time. */
  get cacheTimeout(): number | undefined {
    return this.#timeout
  }

  set cacheTimeout(timeout: Timeout | undefined) {
    this.#timeout = parseTimeout(timeout, 'cacheTimeout')
  }

  /** Whether a response with `status` would be stored. */
  isCacheableStatus(status: number): boolean {
    return this.#statusOk(status)
  }

  /**
   * The base key for a request (the identity representation's key). Encoded
   * variants live at `key|<coding>`; see {@link ViewCache.variantKeys}.
   */
  async keyFor(view: RequestView<Req>, settings: SlotSettings): Promise<string> {
    const o = this.options
    if (o.makeCacheKey) return checkKey(await o.makeCacheKey(view.raw), 'makeCacheKey')
    const kp = o.keyPrefix
    if (typeof kp === 'function') {
      return this.#digested(checkKey(await kp(view.raw), 'keyPrefix'), view, settings)
    }
    return this.#plainKey(view, settings)
  }

  /** The key when `keyPrefix` is a string (`%s` is the path, literally) and there is no `makeCacheKey`. */
  #plainKey(view: RequestView<Req>, settings: SlotSettings): string {
    const tail = this.#prefixTail
    const prefix = tail === undefined ? this.#prefixHead : this.#prefixHead + view.path + tail
    return this.#digested(prefix, view, settings)
  }

  /** `prefix` with the digest of the query string and the handlers' source appended, when those are keyed on. */
  #digested(prefix: string, view: RequestView<Req>, settings: SlotSettings): string {
    const o = this.options
    if (this.#varyHeaders.length > 0) {
      prefix = `${prefix}|h:${headerDigest(this.#varyHeaders, view)}`
    }
    const sourceCheck = o.sourceCheck ?? settings.sourceCheck
    const source = sourceCheck ? view.source?.() : undefined
    if (o.queryString) {
      const digest = this.#digest ?? settings.digest
      return prefix + digest(queryKeyText(queryPairs(view.query)) + (source ?? '')).toString('hex')
    }
    return source ? prefix + (this.#digest ?? settings.digest)(source).toString('hex') : prefix
  }

  /** Every backend key a base key's representations may be stored at: the key itself, then `key|<coding>`. */
  variantKeys(key: string): string[] {
    return [key, ...VIEW_ENCODINGS.map((c) => `${key}|${c}`)]
  }

  /**
   * {@link ViewCache.lookup} without waiting, when nothing in it is
   * asynchronous: the route has no `makeCacheKey`, `keyPrefix` function,
   * `unless`, `forcedUpdate` or `isStale`, and the backend reads
   * synchronously ({@link PEEK}, the in-memory SimpleCache). Returns
   * `undefined` otherwise, or when the answer needs waiting after all (a
   * stale or tagged entry, another request rendering the page, a background
   * refresh): call `lookup` then. Throws only what `lookup` rejects with.
   */
  lookupNow(view: RequestView<Req>, slot: Slot): ViewLookup | undefined {
    const result = this.#lookupNow(view, slot)
    if (result !== undefined) this.#count(view, slot, result.kind)
    return result
  }

  /** Counts an outcome under the view's name (`cache.stats()`). */
  #count(view: RequestView<Req>, slot: Slot, outcome: 'hit' | 'miss' | 'stale' | 'bypass'): void {
    slot.observer.outcome('view', this.options.name ?? view.route?.() ?? view.path, outcome)
  }

  #lookupNow(view: RequestView<Req>, slot: Slot): ViewLookup | undefined {
    const peek = this.#plain ? (slot.backend as PeekableBackend | undefined)?.[PEEK] : undefined
    if (peek === undefined) return undefined
    const m = view.method
    const method = m === 'GET' || m === 'HEAD' ? m : m.toUpperCase()
    if (method !== 'GET' && method !== 'HEAD') return BYPASS.method
    if (!this.options.allowAuthorized && isAuthorized(view)) return BYPASS.authorization
    if (this.#policy.grace > 0 && view.header(VIEW_REFRESH_HEADER) !== undefined) return undefined
    let key: string | undefined
    try {
      key = this.#plainKey(view, slot.settings)
      const accept = parseAcceptEncoding(view.header('accept-encoding'))
      const head = method === 'HEAD'
      const found = this.#peek(slot.backend as CacheBackend, peek, key, accept, view)
      if (found !== undefined) {
        const fresh = found.entry.fresh
        if (found.entry.tags !== undefined || (fresh !== undefined && Date.now() >= fresh)) {
          return undefined
        }
        return this.#hit(found, head)
      }
      if (head) return BYPASS['head-miss']
      const pending = this.#pending.get(slot)?.get(key)
      if (pending !== undefined && Date.now() - pending.started < this.#waitMs) return undefined
      return this.#leadRender(slot, key, accept, view)
    } catch (error) {
      return failedLookup(error, slot, key ?? view.path)
    }
  }

  /**
   * Decides how to serve a request. Resolves a {@link ViewLookup}; rejects only
   * with an error that must propagate (`slot.mustRaise`: `CACHE_RAISE_ERRORS`,
   * programming errors). Other backend and callback errors are logged through
   * the slot and answered with a bypass, so the app keeps serving.
   *
   * Order: method (GET and HEAD only) → `Authorization` → `unless` → key →
   * `forcedUpdate` → read → `isStale`.
   */
  async lookup(view: RequestView<Req>, slot: Slot): Promise<ViewLookup> {
    const now = this.#lookupNow(view, slot)
    if (now !== undefined) {
      this.#count(view, slot, now.kind)
      return now
    }
    const result = await this.#lookup(view, slot)
    this.#count(
      view,
      slot,
      result.kind === 'hit' && this.#staleHits.has(result) ? 'stale' : result.kind,
    )
    return result
  }

  /** Hits served from stale entries, told apart for the counters. */
  readonly #staleHits = new WeakSet<ViewHit>()

  async #lookup(view: RequestView<Req>, slot: Slot): Promise<ViewLookup> {
    const method = view.method.toUpperCase()
    if (method !== 'GET' && method !== 'HEAD') return BYPASS.method
    if (!this.options.allowAuthorized && isAuthorized(view)) return BYPASS.authorization
    const o = this.options
    if (o.unless && (await isTrue(o.unless(view.raw)))) return BYPASS.unless
    let key: string | undefined
    try {
      key = await this.keyFor(view, slot.settings)
      const accept = parseAcceptEncoding(view.header('accept-encoding'))
      const head = method === 'HEAD'
      const backend = slot.backend ?? (await slot.ready)
      const refresh =
        this.#policy.grace > 0 && !head && view.header(VIEW_REFRESH_HEADER) === this.refreshToken
      if (refresh || (o.forcedUpdate && (await isTrue(o.forcedUpdate(view.raw))))) {
        if (head) return BYPASS['head-miss']
        return { ...miss(key, accept, true, view), pending: this.#newPending(view, backend) }
      }
      // A render under way before the read: if it ends while the read is out, the read
      // may predate its write, and this request must read again rather than render.
      const rendering = this.#pending.get(slot)?.get(key)
      const found = await this.#find(view, backend, key, accept)
      if (found !== undefined) {
        const hit = this.#hit(found.prepared, head)
        if (found.stale) {
          this.#refresh(view, key, slot)
          this.#staleHits.add(hit)
        }
        return hit
      }
      if (head) return BYPASS['head-miss']
      return await this.#missFor(view, slot, backend, key, accept, rendering)
    } catch (error) {
      return failedLookup(error, slot, key ?? view.path)
    }
  }

  /** How long a request waits for another request's render of its page. */
  get #waitMs(): number {
    return this.#policy.lock?.waitMs ?? DEFAULT_RENDER_WAIT_MS
  }

  /**
   * The usable entry for a request: read, its tags checked, its freshness
   * told (a stale entry is usable only with a grace period), `isStale` asked.
   */
  async #find(
    view: RequestView<Req>,
    backend: CacheBackend,
    key: string,
    accept: AcceptedEncodings,
  ): Promise<{ prepared: Prepared; stale: boolean } | undefined> {
    const o = this.options
    // `isStale` is user code: it gets a copy of the entry, never the backend's own.
    const peek = o.isStale ? undefined : (backend as PeekableBackend)[PEEK]
    const prepared =
      peek === undefined
        ? await this.#read(backend, key, accept, view)
        : this.#peek(backend, peek, key, accept, view)
    if (prepared === undefined) return undefined
    const entry = prepared.entry
    if (entry.tags !== undefined && !(await tagsHold(backend, entry.tags))) return undefined
    const stale = entry.fresh !== undefined && Date.now() >= entry.fresh
    if (stale && this.#policy.grace === 0) return undefined
    if (o.isStale && (await isTrue(o.isStale(entry, view.raw)))) return undefined
    return { prepared, stale }
  }

  /**
   * A miss: waits for another request of this process rendering the same
   * page (then serves its stored page), else becomes the render others wait
   * for; with `lock`, also across processes.
   */
  async #missFor(
    view: RequestView<Req>,
    slot: Slot,
    backend: CacheBackend,
    key: string,
    accept: AcceptedEncodings,
    rendering?: Pending,
  ): Promise<ViewLookup> {
    // The render under way now, else the one under way when the read started (it has
    // ended since: waiting on it returns at once, and the store is read again).
    const other = this.#pending.get(slot)?.get(key) ?? rendering
    const waited = other === undefined ? -1 : Date.now() - other.started
    if (other !== undefined && waited < this.#waitMs) {
      await within(other.done, this.#waitMs - waited)
      const now = await this.#find(view, backend, key, accept)
      if (now !== undefined) return this.#hit(now.prepared, false)
      // That render stored nothing (or took too long): render without waiting again.
      return { ...miss(key, accept, false, view), pending: this.#newPending(view, backend) }
    }
    const lead = this.#leadRender(slot, key, accept, view, backend)
    const lock = this.#policy.lock
    if (lock === undefined) return lead
    let got: { held?: Held; found?: { prepared: Prepared } }
    try {
      got = await lockOrWait(backend, key, lock.ttlMs, lock.waitMs, async () => {
        const now = await this.#find(view, backend, key, accept)
        return now !== undefined && !now.stale ? now : undefined
      })
    } catch (error) {
      slot.report(`cached ${key}`, error, key)
      return lead
    }
    if (got.found !== undefined) {
      this.settle(lead, slot)
      return this.#hit(got.found.prepared, false)
    }
    ;(lead.pending as Pending).held = got.held
    return lead
  }

  /** A miss that other requests for `key` wait on until it is stored or settled. */
  #leadRender(
    slot: Slot,
    key: string,
    accept: AcceptedEncodings,
    view: RequestView<Req>,
    backend?: CacheBackend,
  ): ViewMiss {
    let map = this.#pending.get(slot)
    if (map === undefined) {
      map = new Map()
      this.#pending.set(slot, map)
    }
    const pending = this.#newPending(view, backend)
    map.set(key, pending)
    return { ...miss(key, accept, false, view), pending }
  }

  #newPending(view: RequestView<Req> | undefined, backend: CacheBackend | undefined): Pending {
    let settle!: () => void
    const done = new Promise<void>((resolve) => {
      settle = () => {
        rendering.delete(done)
        resolve()
      }
    })
    const started = Date.now()
    rendering.set(done, started + this.#waitMs)
    const pending: Pending = { started, done, settle }
    const tags = this.options.tags
    if (tags !== undefined && view !== undefined && backend !== undefined) {
      const list = resolveTags(tags, [view.raw], 'cached')
      if (list.length > 0) pending.snapshot = snapshotTags(backend, list).catch(() => null)
    }
    return pending
  }

  /**
   * Ends a miss's render: requests waiting on it read the store again, and
   * its lock is released. {@link ViewCache.store} does it; an adapter calls it
   * for a response that ended without being stored (the client went away).
   */
  settle(result: ViewMiss, slot: Slot): void {
    const pending = result.pending
    if (pending === undefined) return
    const map = this.#pending.get(slot)
    if (map?.get(result.key) === pending) map.delete(result.key)
    pending.settle()
    const held = pending.held
    if (held !== undefined) {
      pending.held = undefined
      const backend = slot.backend
      if (backend !== undefined) {
        releaseLock(backend, held).catch((error: unknown) =>
          slot.report(`cached ${result.key}`, error, result.key),
        )
      }
    }
  }

  /**
   * Starts a background refresh of a stale page: the same request, sent to
   * the app's own server with {@link VIEW_REFRESH_HEADER}, which renders and
   * stores it. One at a time per page; after one that did not store a page,
   * none for `graceBackoff`.
   */
  #refresh(view: RequestView<Req>, key: string, slot: Slot): void {
    const until = this.#refreshing.get(key)
    if (until !== undefined && Date.now() < until) return
    const request = view.backgroundRequest?.()
    if (request === undefined) return
    this.#refreshing.set(key, Date.now() + Math.max(this.#policy.backoffMs, 1000))
    requestInBackground(
      request.url,
      { ...request.headers, [VIEW_REFRESH_HEADER]: this.refreshToken },
      (error) => slot.report(`cached ${key} (background refresh)`, error, key),
    )
  }

  /**
   * Reads the representations this client may receive with one round trip:
   * the encoded variants it accepts, best first, then the identity one. An
   * identity entry whose response varied on `Accept-Encoding` is not used for
   * a client that accepts an encoding: that client gets a miss, so its
   * negotiated variant is created.
   */
  async #read(
    backend: CacheBackend,
    key: string,
    accept: AcceptedEncodings,
    view: Pick<RequestView, 'header'> | undefined,
  ): Promise<Prepared | undefined> {
    const keys = [...accept.encodings.map((c) => `${key}|${c}`), key]
    const values = keys.length === 1 ? [await backend.get(key)] : await backend.getMany(keys)
    const marker = view === undefined ? undefined : asVaryMarker(values[keys.length - 1])
    if (marker !== undefined && view !== undefined) {
      // A response that varied on request headers: the variant this request selects.
      const found = await this.#read(backend, variantBase(key, marker, view), accept, undefined)
      return found !== undefined && variantMatches(found.entry, view) ? found : undefined
    }
    let found: Prepared | undefined
    for (let i = 0; i < keys.length; i++) {
      const value = values[i]
      if (value === undefined) continue
      const prepared = prepare(keys[i] as string, value, this.maxBodySize)
      if (prepared === undefined) dropInvalid(backend, keys[i] as string)
      else if (found === undefined && servable(prepared, i === keys.length - 1, accept)) {
        found = prepared
      }
    }
    return found
  }

  /** {@link ViewCache.#read} on a backend that shares its entries: synchronous, each entry prepared once. */
  #peek(
    backend: CacheBackend,
    peek: (key: string) => unknown,
    key: string,
    accept: AcceptedEncodings,
    view: Pick<RequestView, 'header'> | undefined,
  ): Prepared | undefined {
    const n = accept.encodings.length
    for (let i = 0; i <= n; i++) {
      const k = i === n ? key : `${key}|${accept.encodings[i]}`
      const value = peek.call(backend, k)
      if (value === undefined) continue
      const marker = i === n && view !== undefined ? asVaryMarker(value) : undefined
      if (marker !== undefined && view !== undefined) {
        const found = this.#peek(backend, peek, variantBase(key, marker, view), accept, undefined)
        return found !== undefined && variantMatches(found.entry, view) ? found : undefined
      }
      let found: Prepared | null | undefined
      if (typeof value === 'object' && value !== null) {
        found = this.#prepared.get(value)
        if (found === undefined) {
          found = prepare(k, value, this.maxBodySize) ?? null
          this.#prepared.set(value, found)
        }
      } else found = null // a foreign primitive at the key: a miss
      if (found === null) dropInvalid(backend, k)
      else if (servable(found, i === n, accept)) return found
    }
    return undefined
  }

  /** The hit serving `found`, made once per prepared entry (GET and HEAD each). */
  #hit(found: Prepared, head: boolean): ViewHit {
    const made = head ? found.head : found.get
    if (made !== undefined) return made
    const entry = found.entry
    const bodiless = hasNoBody(entry.status)
    // Framing is the hit's own: a stored Content-Length or Transfer-Encoding never goes out.
    const headers: [string, string][] = entry.headers.filter(([n]) => {
      const lower = n.toLowerCase()
      return lower !== 'content-length' && !NOT_STORED.has(lower)
    })
    if (!bodiless) headers.push(['Content-Length', String(entry.body.length)])
    if (this.#hitHeader !== undefined) headers.push([this.#hitHeader, 'True'])
    const hit: ViewHit = {
      kind: 'hit',
      key: found.key,
      entry,
      status: entry.status,
      headers,
      grouped: groupHeaders(headers),
      body: head || bodiless ? undefined : entry.body,
    }
    if (head) found.head = hit
    else found.get = hit
    return hit
  }

  /**
   * Why a captured response would not be stored, or `undefined` if it would
   * (before `responseFilter`): incomplete or failed responses (and bodies
   * that are not the length their `Content-Length` says), statuses outside
   * `cacheStatuses`, bodies over `maxBodySize`; and, from every header on
   * the response as it left (outer middleware's, and those added while its
   * head was written): any `Set-Cookie`, `Vary: *` (or more than 16 names),
   * `Cache-Control: no-store` or `private`.
   */
  refusal(response: CapturedResponse): string | undefined {
    if (!response.complete) return 'incomplete'
    if (response.errored) return 'errored'
    if (!this.#statusOk(response.status)) return 'status'
    if (response.body === undefined || response.body.length > this.maxBodySize) return 'size'
    // A body that is not what its Content-Length says (a source that failed mid-way,
    // an error page appended to a first chunk) is a failed response.
    if (!framedBy(response.headers, response.body.length)) return 'framing'
    // Every header on the response as it left may veto, whoever set it.
    const sent = response.sent ?? response.headers
    let cacheControl: string | undefined
    for (const [name, value] of sent) {
      const n = name.toLowerCase()
      if (n === 'set-cookie') return 'set-cookie'
      if (n === 'cache-control') cacheControl = cacheControl ? `${cacheControl},${value}` : value
    }
    if (varyNames(sent) === null) return 'vary'
    if (cacheControl !== undefined) {
      const directives = cacheControl.split(',').map((d) => d.trim().toLowerCase().split('=')[0])
      if (directives.includes('no-store') || directives.includes('private')) return 'cache-control'
    }
    return undefined
  }

  /**
   * Stores a response captured on a {@link ViewMiss}, if it may be stored
   * (see {@link ViewCache.refusal}) and `responseFilter` agrees. Its key is
   * `key|<coding>` for an encoded body; `key|<preferred coding>` for an
   * unencoded body that varies on `Accept-Encoding` served to a client that
   * accepts an encoding (the server chose not to compress it); else `key`.
   *
   * The timeout is `responseTimeout` when given and non-zero, else the route's.
   * Resolves whether it stored; never rejects (backend errors are logged, since
   * the response has already been sent).
   */
  async store(
    miss: ViewMiss,
    response: CapturedResponse,
    slot: Slot,
    responseTimeout?: number,
  ): Promise<boolean> {
    let key = miss.key
    try {
      if (this.refusal(response) !== undefined) return false
      const entry: StoredView = {
        status: response.status,
        headers: response.headers
          .filter(([n]) => !NOT_STORED.has(n.toLowerCase()))
          .map(([n, v]) => [n, v] as [string, string]),
        body: response.body as Buffer,
      }
      const filter = this.options.responseFilter
      if (filter) {
        const verdict = filter(entry)
        if (!(isThenable(verdict) ? await verdict : verdict)) return false
      }
      const timeout = responseTimeout || this.#timeout
      if (timeout !== undefined) entry.timeout = timeout
      const backend = slot.backend ?? (await slot.ready)
      let ttl = timeout
      const grace = this.#policy.grace
      const seconds = timeout ?? backend.defaultTimeout
      if (grace > 0 && seconds !== 0) {
        entry.fresh = Date.now() + seconds * 1000
        ttl = seconds + grace
      }
      const snapshot = await miss.pending?.snapshot
      // Tags that could not be read: the page could not be invalidated, so it is not stored.
      if (snapshot === null) return false
      if (snapshot !== undefined) entry.tags = snapshot
      let base = miss.key
      const names = varyNames(response.sent ?? response.headers) ?? []
      if (names.length > 0) {
        // One variant per value of the request headers the response varies on,
        // filed under a marker at the base key that names them.
        const request = miss.request
        if (request === undefined) return false
        const current = asVaryMarker(await backend.get(miss.key))
        const marker: VaryMarker =
          current !== undefined && current.cachetteVary.join() === names.join()
            ? current
            : { cachetteVary: names, gen: randomBytes(6).toString('hex') }
        entry.vary = selecting(names, request)
        base = variantBase(miss.key, marker, request)
        await backend.set(miss.key, marker, ttl)
      }
      key = base
      const coding = contentCoding(entry.headers)
      if (coding !== undefined) key = `${base}|${coding}`
      else if (
        miss.preferredEncoding !== undefined &&
        listHas(headerValue(entry.headers, 'vary')?.toLowerCase(), 'accept-encoding')
      ) {
        key = `${base}|${miss.preferredEncoding}`
      }
      const stored = await backend.set(key, entry, ttl)
      if (stored) this.#refreshing.delete(miss.key)
      return stored
    } catch (error) {
      slot.report(`cached ${key}`, error, key)
      return false
    } finally {
      this.settle(miss, slot)
    }
  }
}

const BYPASS: Readonly<Record<BypassReason, ViewBypass>> = Object.freeze({
  method: { kind: 'bypass', reason: 'method' },
  authorization: { kind: 'bypass', reason: 'authorization' },
  unless: { kind: 'bypass', reason: 'unless' },
  'head-miss': { kind: 'bypass', reason: 'head-miss' },
  error: { kind: 'bypass', reason: 'error' },
})

/** A stored entry as lookups use it: validated, with what they check worked out once. */
interface Prepared {
  /** The backend key it was read from. */
  readonly key: string
  readonly entry: StoredView
  /** Its `Content-Encoding`, lower case; `undefined` for identity. */
  readonly coding: string | undefined
  /** Whether the response varied on `Accept-Encoding`. */
  readonly variesOnEncoding: boolean
  /** The hits made from it (a GET and a HEAD one), kept when the entry is the backend's own. */
  get?: ViewHit
  head?: ViewHit
}

/**
 * A backend value read at `key`, prepared; `undefined` when it is not a
 * valid stored view (see {@link asStoredView}: a foreign or planted value
 * counts as a miss).
 */
function prepare(key: string, value: unknown, maxBody: number): Prepared | undefined {
  const entry = asStoredView(value, maxBody)
  if (entry === undefined) return undefined
  return {
    key,
    entry,
    coding: contentCoding(entry.headers),
    variesOnEncoding: listHas(headerValue(entry.headers, 'vary')?.toLowerCase(), 'accept-encoding'),
  }
}

/**
 * Deletes a value at a view key that is not a valid stored view (planted or
 * corrupted): it is a miss, and never read again. Errors are ignored (the
 * next render overwrites it anyway).
 */
function dropInvalid(backend: CacheBackend, key: string): void {
  try {
    backend.delete(key).catch(() => {})
  } catch {
    // A backend that throws synchronously: the value stays a miss.
  }
}

/**
 * Whether a client may be served `found`: its coding must be acceptable, and
 * an identity entry at the base key whose response varied on
 * `Accept-Encoding` is not used for a client that accepts an encoding (that
 * client gets a miss, so its negotiated variant is created).
 */
function servable(found: Prepared, isBase: boolean, accept: AcceptedEncodings): boolean {
  const coding = found.coding
  if (coding === undefined ? !accept.identity : !accept.accepts(coding)) return false
  return !(isBase && coding === undefined && accept.encodings.length > 0 && found.variesOnEncoding)
}

/**
 * What a view stores at its base key when its response varies on request
 * headers: the names, and a generation that the variants' keys carry (a new
 * marker after `deleteCached` makes the old variants unreachable).
 */
interface VaryMarker {
  readonly cachetteVary: readonly string[]
  readonly gen: string
}

function asVaryMarker(value: unknown): VaryMarker | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const m = value as Partial<VaryMarker>
  const names = m.cachetteVary
  if (!Array.isArray(names) || typeof m.gen !== 'string' || names.length > MAX_VARY_NAMES) {
    return undefined
  }
  return names.every((n) => typeof n === 'string' && TOKEN.test(n)) ? (m as VaryMarker) : undefined
}

/** The most request headers one response may vary on and still be stored. */
const MAX_VARY_NAMES = 16

/** A selecting header's value as compared: surrounding and repeated white space folded. */
function normaliseHeader(value: string | undefined): string {
  return value === undefined ? '' : value.trim().replace(/[ \t]+/g, ' ')
}

/** The `[name, normalised value]` pairs of `names` on a request. */
function selecting(
  names: readonly string[],
  view: Pick<RequestView, 'header'>,
): [string, string][] {
  return names.map((n) => [n, normaliseHeader(view.header(n))])
}

/** A short digest of header values (names given in lower case), for keys. */
function headerDigest(names: readonly string[], view: Pick<RequestView, 'header'>): string {
  const text = selecting(names, view)
    .map(([n, v]) => `${n}:${v}`)
    .join('\n')
  return sha256(text).toString('hex', 0, 16)
}

/** SHA-256, the one-shot form where Node has it (hash.ts). */
const sha256 = resolveHashMethod('sha256')

/** The base key of the variant of `key` that a request selects under `marker`. */
function variantBase(key: string, marker: VaryMarker, view: Pick<RequestView, 'header'>): string {
  return `${key}~${marker.gen}~${headerDigest(marker.cachetteVary, view)}`
}

/** Whether `entry`, a variant, was made for a request with `view`'s values of the headers it varied on. */
function variantMatches(entry: StoredView, view: Pick<RequestView, 'header'>): boolean {
  const vary = entry.vary
  if (vary === undefined) return false
  for (const [n, v] of vary) if (normaliseHeader(view.header(n)) !== v) return false
  return true
}

/**
 * The request headers a response varies on, from every `Vary` on it as it
 * left (outer middleware's too), lower case, sorted; `Accept-Encoding` aside
 * (encoded variants handle it). `null` for `Vary: *` or too many names.
 */
function varyNames(headers: readonly (readonly [string, string])[]): string[] | null {
  const names = new Set<string>()
  for (const [name, value] of headers) {
    if (name.toLowerCase() !== 'vary') continue
    for (const part of value.split(',')) {
      const n = part.trim().toLowerCase()
      if (n === '*') return null
      if (n !== '' && n !== 'accept-encoding') names.add(n)
    }
  }
  if (names.size > MAX_VARY_NAMES) return null
  return [...names].sort()
}

/** Whether the request carries credentials (`Authorization` or `Proxy-Authorization`). */
function isAuthorized(view: Pick<RequestView, 'header'>): boolean {
  return (
    view.header('authorization') !== undefined || view.header('proxy-authorization') !== undefined
  )
}

/** A lookup that failed at `site`: the error thrown again when it must propagate, else logged and answered with a bypass. */
function failedLookup(error: unknown, slot: Slot, site: string): ViewBypass {
  if (slot.mustRaise(error)) throw error
  slot.report(`cached ${site}`, error, site)
  return BYPASS.error
}

/** Resolves when `p` settles or after `ms`, whichever comes first. */
function within(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, ms))
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

function miss(
  key: string,
  accept: AcceptedEncodings,
  forced: boolean,
  request: Pick<RequestView, 'header'>,
): ViewMiss {
  return { kind: 'miss', key, preferredEncoding: accept.encodings[0], forced, request }
}

function checkKey(key: unknown, what: string): string {
  if (typeof key !== 'string' || key === '') {
    // An input error (it has a code): it reaches the caller, as a bad key given to the facade does.
    throw new InvalidKeyError(`cached: ${what} must return a non-empty string, got ${typeof key}`)
  }
  return key
}
