/**
 * `cachette/koa`: view caching for Koa 3, a thin adapter onto the
 * framework-neutral engine (`src/core/view/`), and HTTP caching
 * (`httpCache`, `validation`, `preconditions`, `cacheFor`, `cacheControl`,
 * `noStore`, `vary`; see `cachette/http`). It never imports `koa`.
 *
 * @example
 * import Koa from 'koa'
 * import { Cache } from 'cachette'
 * import { cached } from 'cachette/koa'
 *
 * const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
 * const app = new Koa()
 * app.use(cached(cache, { timeout: '5m' }))
 * app.use((ctx) => { ctx.body = { now: Date.now() } })
 * @packageDocumentation
 *
 * @module cachette/koa
 */
import type { Readable } from 'node:stream'
import { appContext, registerAppBinder } from '../../core/context.js'
import type { Timeout } from '../../core/duration.js'
import { type Slot, VIEW_SLOT } from '../../core/slot.js'
import {
  assertCachedProvider,
  type CachedProvider,
  type CapturedResponse,
  createViewCache,
  exposeView,
  type QueryArgs,
  queryPairs,
  type RequestView,
  requestViewOf,
  responseTimeoutOf,
  routedTarget,
  setResponseTimeout,
  unsafeInvalidation,
  type ViewAttributes,
  type ViewCache,
  type ViewCacheOptions,
  type ViewHit,
  type ViewLookup,
  type ViewMiss,
} from '../../core/view/index.js'
import { BoundedBody, copyingStream } from '../shared/body.js'
import {
  currentHeaders,
  type HeaderPairs,
  type HeaderSnapshot,
  sentHeaders,
  snapshotHeaders,
  splitHeaders,
} from '../shared/node-response.js'
import { bufferedBody, setStreamBody, streamBody } from './capture.js'
import type { KoaContext, KoaNext } from './context.js'

export type {
  CachedProvider,
  DeleteCachedTarget,
  QueryArgs,
  QueryValue,
  StoredView,
  ViewCacheOptions,
  ViewKeyArgs,
} from '../../core/view/index.js'
export type { KoaContext, KoaNext } from './context.js'
export {
  bodyETag,
  cacheControl,
  cacheFor,
  type HttpMiddleware,
  httpCache,
  noStore,
  preconditions,
  type ValidationOptions,
  validation,
  vary,
} from './http.js'

/**
 * Options of {@link cached}; see {@link ViewCacheOptions} for each option
 * and its default. Callbacks (`keyPrefix`, `unless`, `forcedUpdate`,
 * `isStale`, `makeCacheKey`) receive the Koa context.
 *
 * `sourceCheck` cannot apply with Koa: Koa composes middleware into
 * closures, so the handlers that follow the cache cannot be found to hash
 * their source. `sourceCheck: true` throws a `ConfigError` when the
 * middleware is created; `CACHE_SOURCE_CHECK` logs one warning
 * (`CACHETTE_SOURCE_CHECK_UNAVAILABLE`) and pages are keyed without the digest.
 *
 * @typeParam Ctx - the context type your callbacks receive; give your app's
 * context type to type them: `cached<MyContext>(cache, { keyPrefix: (ctx) => ... })`.
 */
export type CachedOptions<Ctx extends KoaContext = KoaContext> = ViewCacheOptions<Ctx>

/**
 * What {@link cached} returns: Koa middleware, plus Flask-Caching's
 * `cache_timeout` attribute of a cached view.
 */
export interface CachedMiddleware extends ViewAttributes<KoaContext> {
  /** Serves the request from the cache, or runs the rest of the chain and stores its response. */
  (ctx: KoaContext, next: KoaNext): Promise<void>
}

const WHAT = 'cachette/koa: cached(cache, options)'

/** Why Koa refuses `sourceCheck: true`. */
const SOURCE_CHECK_REFUSED =
  "cannot see the handlers after the cache: Koa composes middleware into closures, so their source cannot be found; leave sourceCheck out (to key pages on a deploy, put a version in keyPrefix: 'view/v42/%s')"

/** The {@link RequestView} of a Koa request: keyed on what the router routed ({@link routedTarget}; a koa-mount prefix kept). */
function viewOf(ctx: KoaContext): RequestView<KoaContext> {
  const url = ctx.url ?? ctx.req.url ?? '/'
  return requestViewOf(
    ctx.method,
    routedTarget(ctx.originalUrl ?? url, url, ctx.mountPath),
    ctx.req.headers,
    ctx,
    undefined,
    ctx.req.socket,
  )
}

/** Replays a hit: status, then the stored headers, then the body (so Koa keeps the stored `Content-Type`). */
function replay(ctx: KoaContext, hit: ViewHit): void {
  ctx.status = hit.status
  // A list is copied: the hit is shared, and Node's `appendHeader` appends to a list in place.
  for (const [name, value] of hit.grouped) {
    ctx.set(name, typeof value === 'string' ? value : [...value])
  }
  if (hit.body !== undefined) {
    ctx.body = hit.body
    // Koa types a Buffer body as octet-stream when no Content-Type is set; keep the stored headers exact.
    if (!hit.grouped.some(([n]) => n.toLowerCase() === 'content-type')) ctx.remove('Content-Type')
  }
}

/**
 * Replaces a stream body with a pass-through that collects the chunks (up to
 * `maxBodySize`) on their way to the client. Returns a getter for the
 * collected body: `undefined` unless the source ended without error within
 * `maxBodySize`.
 */
function teeStream(ctx: KoaContext, source: Readable, max: number): () => Buffer | undefined {
  const body = new BoundedBody(max)
  let ended = false
  // A source that fails discards the copy: the truncated body is never stored.
  const tee = copyingStream(
    source,
    body,
    () => {
      ended = true
    },
    () => {},
  )
  setStreamBody(ctx, tee)
  return () => (ended ? body.take() : undefined)
}

/**
 * Captures the response the rest of the chain left on `ctx` (status,
 * headers, body) and stores it once Koa has finished sending it. Runs after
 * `await next()`, before outer middleware post-processes the response, so a
 * compression layer further out compresses after this and the identity
 * bytes are stored.
 */
function capture(
  engine: ViewCache<KoaContext>,
  ctx: KoaContext,
  miss: ViewMiss,
  slot: Slot,
  before: HeaderSnapshot,
): void {
  const res = ctx.res
  // However it ends without a store, requests waiting for this render stop waiting.
  const abandon = () => engine.settle(miss, slot)
  // The app wrote to ctx.res itself (or ended it): nothing Koa-level to capture.
  if (ctx.respond === false || !ctx.writable || res.headersSent) {
    abandon()
    return
  }
  const status = ctx.status
  // Headers outer middleware set before the cache ran are per request and left out.
  const { own } = splitHeaders(currentHeaders(res), before)
  const max = engine.maxBodySize
  let headers: HeaderPairs
  let bodyOf: () => Buffer | undefined
  const stream = streamBody(ctx, status)
  if (stream === null) {
    abandon()
    return
  }
  if (stream !== undefined) {
    headers = own
    bodyOf = teeStream(ctx, stream, max)
  } else {
    const buffered = bufferedBody(ctx, status, own, max)
    if (buffered === undefined) {
      abandon()
      return
    }
    headers = buffered.headers
    bodyOf = () => buffered.body
  }
  // 'finish' means Koa sent the whole response; a client that went away gets no store.
  res.once('finish', () => {
    const response: CapturedResponse = {
      status,
      headers,
      // Outer middleware runs after this one's capture point: what it added
      // (a session cookie, Cache-Control: private) is on the wire only.
      sent: sentHeaders(res),
      body: bodyOf(),
      complete: true,
      errored: false,
    }
    void engine.store(miss, response, slot, responseTimeoutOf(ctx))
  })
  // A response that never finishes (a failed stream, a client gone) stores nothing.
  res.once('close', () => {
    if (!res.writableFinished) abandon()
  })
}

/** What a hit answered at once resolves. */
const DONE: Promise<void> = Promise.resolve()

/**
 * Koa middleware caching the whole response of the requests it sees
 * (Flask-Caching's `@cached`): mount it on a route
 * (`router.get('/x', cached(cache, opts), handler)`) or for the whole app
 * (`app.use(cached(cache, opts))`). Options are checked now: an unknown
 * option or a bad value throws a TypeError naming it.
 *
 * On a hit it sets the stored status, headers and body (a Buffer) on `ctx`
 * and does not call `next`; for `HEAD`, the status and headers only. On a
 * miss it awaits `next()` and captures what the rest of the chain left on
 * `ctx`: a string, Buffer or JSON body as the bytes Koa sends, a stream body
 * by passing it through a collector. The entry is stored once Koa has sent
 * the response. An error thrown downstream propagates unchanged and nothing
 * is stored. Downstream runs with `ctx.app` as the current app, so `memoize`
 * in a multi-app `Cache` uses that app's backend.
 *
 * `sourceCheck: true` throws a `ConfigError`: Koa cannot show the cache the
 * handlers after it (see {@link CachedOptions}).
 *
 * @param cache - the cachette `Cache`
 * @param options - see {@link ViewCacheOptions}; callbacks receive the Koa context
 *
 * @example
 * router.get('/search', cached(cache, { queryString: true, timeout: 60 }), search)
 */
export function cached<Ctx extends KoaContext = KoaContext>(
  cache: CachedProvider,
  options?: CachedOptions<Ctx>,
): CachedMiddleware {
  // Any app using the adapter binds on initApp, with or without `import 'cachette/koa'`.
  registerAppBinder(bindKoa)
  assertCachedProvider(cache, WHAT)
  /** The slot serving a request of `app` (`undefined`: the current app). */
  const slotOf = (app?: object): Slot => cache[VIEW_SLOT](app)
  const engine = createViewCache<KoaContext, Ctx>(options, WHAT)
  engine.refuseSourceCheck(WHAT, SOURCE_CHECK_REFUSED)

  /** Serves the request once `known` (the decision, when it was made at once) or the engine has decided. */
  const serve = async (
    ctx: KoaContext,
    next: KoaNext,
    view: RequestView<KoaContext>,
    slot: Slot,
    known: ViewLookup | undefined,
  ): Promise<void> => {
    const result = known ?? (await engine.lookup(view, slot))
    if (result.kind === 'hit') {
      replay(ctx, result)
      return
    }
    if (result.kind === 'bypass') {
      await next()
      // invalidateOnUnsafe: before the response goes out.
      await unsafeInvalidation(middleware, view, slot)?.(ctx.status)
      return
    }
    const before = snapshotHeaders(ctx.res)
    // A downstream error propagates unchanged; nothing is captured, so nothing is stored
    // (and requests waiting for this render stop waiting).
    try {
      await next()
    } catch (error) {
      engine.settle(result, slot)
      throw error
    }
    capture(engine, ctx, result, slot, before)
  }

  const middleware = exposeView(
    function cachedMiddleware(ctx: KoaContext, next: KoaNext): Promise<void> {
      const app = ctx.app
      const current = (typeof app === 'object' || typeof app === 'function') && app !== null
      let view: RequestView<KoaContext>
      let slot: Slot
      let known: ViewLookup | undefined
      try {
        view = viewOf(ctx)
        slot = slotOf(current ? app : undefined)
        // Decided at once when no user callback runs (an in-memory backend): a
        // hit is answered here, without entering the app's context, which
        // only what runs downstream (or a callback) can observe.
        known = engine.lookupNow(view, slot)
        if (known?.kind === 'hit') {
          replay(ctx, known)
          return DONE
        }
      } catch (error) {
        return Promise.reject(error)
      }
      if (current) return appContext.run(app, serve, ctx, next, view, slot, known)
      return serve(ctx, next, view, slot, known)
    },
    engine,
    slotOf,
    stubContext,
  )
  return middleware
}

/** The stand-in Koa context that key callbacks receive outside of a request (`makeCacheKey`, `deleteCached`). */
function stubContext(path: string, query: QueryArgs | undefined) {
  const pairs = queryPairs(query)
  const qs = new URLSearchParams(pairs).toString()
  const url = qs ? `${path}?${qs}` : path
  return {
    method: 'GET',
    url,
    originalUrl: url,
    path,
    querystring: qs,
    query: Object.fromEntries(pairs),
    headers: {},
    get: () => '',
  }
}

/**
 * Sets how long the response being built is cached, overriding the route's
 * `timeout` (Flask-Caching's `CachedResponse(response, timeout)`). Call it
 * from downstream middleware or the handler before it returns. `undefined` or
 * `0` falls back to the route's timeout, as in Flask-Caching; the route's
 * `cacheStatuses`, `responseFilter` and the other rules still decide whether
 * it is stored.
 *
 * @param ctx - the Koa context of the request
 * @param timeout - seconds or a duration string (`'30s'`, `'1h'`)
 *
 * @example
 * router.get('/feed', cached(cache, { timeout: '1h' }), async (ctx) => {
 *   const feed = await loadFeed()
 *   setCacheTimeout(ctx, feed.isLive ? 10 : '1h')
 *   ctx.body = feed
 * })
 */
export function setCacheTimeout(ctx: object, timeout: Timeout | undefined): void {
  setResponseTimeout(ctx, timeout)
}

/** The shape of a Koa application that {@link bindKoa} recognises. */
interface KoaAppLike {
  use(fn: unknown): unknown
  callback(): unknown
  createContext(req: unknown, res: unknown): unknown
  middleware: unknown[]
  context: object
}

const boundApps = new WeakSet<object>()

function isKoaApp(app: object): app is KoaAppLike {
  const a = app as Partial<KoaAppLike>
  return (
    typeof a.use === 'function' &&
    typeof a.callback === 'function' &&
    typeof a.createContext === 'function' &&
    Array.isArray(a.middleware) &&
    typeof a.context === 'object' &&
    a.context !== null
  )
}

/**
 * `initApp` on a Koa app: a middleware at the front of `app.middleware` that
 * runs each request with the app as the current app. Koa composes its
 * middleware when `app.callback()` (or `app.listen()`) is called, so
 * `cache.initApp(app)` must come before that.
 */
function bindKoa(app: object): boolean {
  if (!isKoaApp(app)) return false
  if (!boundApps.has(app)) {
    boundApps.add(app)
    app.middleware.unshift(function cachetteAppContext(_ctx: unknown, next: KoaNext) {
      return appContext.run(app, next)
    })
  }
  return true
}

registerAppBinder(bindKoa)
