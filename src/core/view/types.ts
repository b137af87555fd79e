/**
 * The public types of the view engine: what an adapter hands it (a
 * {@link RequestView}, a {@link CapturedResponse}), what it decides
 * ({@link ViewLookup}), what it stores ({@link StoredView}), the options of
 * `cached()`, what `cached()` and `deleteCached()` take, and the
 * Express/Connect middleware `cache.cached()` returns.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Timeout } from '../duration.js'
import type { GetOrSetOptions, Held } from '../getorset.js'
import type { HashMethod } from '../hash.js'
import type { Slot, VIEW_SLOT } from '../slot.js'

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
   * Append a digest of the code the cache stands in for (the route handlers
   * that run after it) to the key, so a deploy that changes a handler does
   * not serve pages it rendered before. Where an adapter cannot know that
   * code (Koa; Fastify's `cached()` hooks), `true` here throws at set-up;
   * `CACHE_SOURCE_CHECK` logs one `CACHETTE_SOURCE_CHECK_UNAVAILABLE` warning
   * there and caches without the digest.
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
   * After a successful (status below 400) `POST`, `PUT`, `PATCH` or `DELETE`
   * that passes through this middleware, deletes the page it caches for the
   * same URL (every encoding; with a per-user `keyPrefix`, that user's), as a
   * shared HTTP cache invalidates a resource after an unsafe method (RFC 9111
   * §4.4). The middleware must see those requests: mount it for every method
   * (`app.use`, `router.all`, Koa and Hono middleware, a Fastify route
   * registered for each method). Otherwise call `cache.deleteCached()` from
   * the handler.
   * @default false
   */
  invalidateOnUnsafe?: boolean
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

/** What {@link ViewCache.lookup} decided. */
export type ViewLookup = ViewBypass | ViewHit | ViewMiss

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

/**
 * What `cache.cached()` and `cached(cache)` of `cachette/express` return:
 * Express/Connect (`node:http`) middleware, plus Flask-Caching's attributes
 * of a cached view.
 */
export interface CachedMiddleware extends ViewAttributes<IncomingMessage> {
  /** Serves the request from the cache, or runs the rest of the route and stores its response. */
  (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void
}

/**
 * What every adapter's `cached()` takes first (and Fastify's plugin as
 * `cache`): a cachette `Cache`. It is spelled out structurally only because
 * `core/` does not import the facade; its one member is keyed by a symbol
 * no public entry exports (`VIEW_SLOT`), so pass a `Cache` rather than
 * implement it. Each adapter exports it under its own name
 * (`CachedProvider`, `ViewSlotProvider`); `assertCachedProvider` is
 * the one check.
 */
export interface CachedProvider {
  /** The backend slot serving the current call; with `app`, the slot of a request of `app`. */
  [VIEW_SLOT](app?: object): Slot
}
