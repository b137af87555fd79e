/**
 * `cachette/hono`: view caching for Hono 4, on any Hono runtime and with any
 * cachette backend (Hono's own `cache` middleware needs the Web Cache API),
 * and HTTP caching (`httpCache`, `validation`, `preconditions`, `cacheFor`,
 * `cacheControl`, `noStore`, `vary`; see `cachette/http`).
 *
 * @example
 * import { Hono } from 'hono'
 * import { Cache } from 'cachette'
 * import { cached } from 'cachette/hono'
 *
 * const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
 * const app = new Hono()
 * app.get('/users/:id', cached(cache, { timeout: '5m' }), (c) => c.json(load(c.req.param('id'))))
 *
 * @remarks
 * The module imports only Hono's types; at runtime it uses the Web standard
 * `Response`, `Headers` and `ReadableStream`. Importing it also teaches
 * `cache.initApp(app)` to recognise Hono apps (see {@link cached}).
 * @packageDocumentation
 */
import type { Context, Env, MiddlewareHandler, Next } from 'hono'
import { repeatedHeaders } from '../../core/background.js'
import { appContext, registerAppBinder } from '../../core/context.js'
import type { Timeout } from '../../core/duration.js'
import { type Slot, VIEW_SLOT } from '../../core/slot.js'
import {
  assertCachedProvider,
  type BackgroundRequest,
  type CachedProvider,
  type CapturedResponse,
  createViewCache,
  exposeView,
  type QueryArgs,
  queryPairs,
  type RequestView,
  responseTimeoutOf,
  setResponseTimeout,
  type ViewAttributes,
  type ViewCache,
  type ViewCacheOptions,
  type ViewHit,
  type ViewLookup,
  type ViewMiss,
} from '../../core/view/index.js'
import { BoundedBody } from '../shared/body.js'
import {
  keepAlive,
  originOf,
  pairKey,
  pairKeys,
  pairsOf,
  priorHeaders,
  splitUrl,
  toBytes,
} from './response.js'

export type {
  CachedProvider,
  DeleteCachedTarget,
  QueryArgs,
  QueryValue,
  StoredView,
  ViewCacheOptions,
  ViewKeyArgs,
} from '../../core/view/index.js'
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
 * Options of {@link cached}; see {@link ViewCacheOptions} for each option and
 * its default. Callbacks (`keyPrefix`, `unless`, `forcedUpdate`, `isStale`,
 * `makeCacheKey`) receive the Hono `Context`.
 *
 * @typeParam E - the app's `Env`, to type `c.var` and `c.env` in callbacks:
 * `cached<{ Variables: { user: User } }>(cache, { keyPrefix: (c) => ... })`.
 */
export type CachedOptions<E extends Env = Env> = ViewCacheOptions<Context<E>>

/** What {@link cached} takes: a cachette `Cache` (`CachedProvider`, under the name this module always gave it). */
export type ViewSlotProvider = CachedProvider

/**
 * What {@link cached} returns: Hono middleware, plus Flask-Caching's
 * attributes of a cached view.
 */
export interface CachedHandler<E extends Env = Env>
  extends MiddlewareHandler<E>,
    ViewAttributes<Context<E>> {}

const WHAT = 'cachette/hono: cached(cache, options)'

/** Per-handler `Function.prototype.toString`, for `sourceCheck`. */
const sourceTexts = new WeakMap<Function, string>()

/** Apps already bound by {@link bindHono}. */
const boundApps = new WeakSet<object>()

interface MatchedRoute {
  handler?: unknown
}

/**
 * The source of the handlers matched after this middleware (`sourceCheck`):
 * the code the cache stands in for, mounted on the route or with
 * `app.use()`. `undefined` when Hono does not say (no `matchedRoutes`): the
 * engine then keys without the digest and warns once.
 */
function routeSource(c: Context, index: number, seen: Set<string>): string | undefined {
  const routes = (c.req as { matchedRoutes?: unknown }).matchedRoutes
  if (!Array.isArray(routes)) return undefined
  const parts: string[] = []
  for (const route of routes.slice(index + 1) as MatchedRoute[]) {
    let fn: unknown = route?.handler
    // A sub-app route with its own onError is wrapped; key on the handler itself.
    const inner = (fn as { __COMPOSED_HANDLER?: unknown } | undefined)?.__COMPOSED_HANDLER
    if (typeof inner === 'function') fn = inner
    if (typeof fn !== 'function') continue
    let text = sourceTexts.get(fn)
    if (text === undefined) {
      text = Function.prototype.toString.call(fn)
      sourceTexts.set(fn, text)
    }
    parts.push(text)
  }
  const source = parts.join('\n')
  seen.add(source)
  return source
}

/**
 * The {@link RequestView} of a Hono request: full path from `c.req.url` (so
 * `basePath` and `app.route` prefixes count), raw query string. A class, so
 * that a request costs one object and no closures.
 */
class HonoView implements RequestView<Context> {
  readonly method: string
  readonly path: string
  readonly query: string
  /** The index of this middleware among the matched handlers, for {@link HonoView.source}. */
  readonly #index: number
  /** Where the sources keyed on are collected (`deleteCached` with `sourceCheck`). */
  readonly #sources: Set<string>

  constructor(
    readonly raw: Context,
    sources: Set<string>,
  ) {
    const [path, query] = splitUrl(raw.req.url)
    this.method = raw.req.method
    this.path = path
    this.query = query
    this.#index = raw.req.routeIndex
    this.#sources = sources
  }

  header(name: string): string | undefined {
    return this.raw.req.header(name)
  }

  source(): string | undefined {
    return routeSource(this.raw, this.#index, this.#sources)
  }

  route(): string | undefined {
    return this.raw.req.routePath
  }

  backgroundRequest(): BackgroundRequest {
    const url = new URL(this.raw.req.url)
    return {
      url: originOf(this.raw) + url.pathname + url.search,
      headers: repeatedHeaders(Object.entries(this.raw.req.header())),
    }
  }
}

/** Replays a hit through `c.body`, so headers outer middleware set for this request stay on it. */
function replay(c: Context, hit: ViewHit): Response {
  const headers: Record<string, string | string[]> = {}
  for (const [name, value] of hit.grouped) {
    headers[name.toLowerCase()] = typeof value === 'string' ? value : [...value]
  }
  return (c.body as (data: Uint8Array | null, status: number, h: typeof headers) => Response)(
    hit.body ?? null,
    hit.status,
    headers,
  )
}

/**
 * Captures the response the rest of the chain produced (`c.res`) and stores
 * it once its body has been delivered. A bodiless response is stored at once.
 * Otherwise `c.res` is replaced by a response with the same status and headers
 * whose body passes every chunk through unchanged as the client reads it,
 * keeping a copy up to `maxBodySize`: a stream is not delayed or buffered,
 * backpressure holds, and a client going away cancels the handler's stream
 * (its `onAbort` runs) and nothing is stored. A body that fails is not stored.
 */
function capture(
  engine: ViewCache<Context>,
  c: Context,
  miss: ViewMiss,
  slot: Slot,
  prior: Set<string>,
): void {
  const res = c.res
  const status = res.status
  const headers = pairsOf(res.headers).filter((pair) => !prior.has(pairKey(pair)))
  // The headers' verdict only (the body is not known yet, so neither is its framing).
  const probe: CapturedResponse = {
    status,
    headers: headers.filter(([n]) => n.toLowerCase() !== 'content-length'),
    sent: pairsOf(res.headers),
    body: Buffer.alloc(0),
    complete: true,
    errored: false,
  }
  if (engine.refusal(probe) !== undefined) {
    engine.settle(miss, slot)
    return
  }
  const length = Number(res.headers.get('content-length') ?? Number.NaN)
  if (length > engine.maxBodySize) {
    engine.settle(miss, slot)
    return
  }

  // Only whole bodies get here: a cancelled or failed body is never stored.
  const store = (body: Buffer): void => {
    const response: CapturedResponse = {
      status,
      headers,
      // Once the body is read the chain has finished: `c.res` carries what outer
      // middleware added after `await next()` (a session cookie, `private`).
      sent: pairsOf(c.res.headers),
      body,
      complete: true,
      errored: c.error !== undefined,
    }
    keepAlive(c, engine.store(miss, response, slot, responseTimeoutOf(c)))
  }

  let source: ReadableStream<Uint8Array> | null
  try {
    source = res.body
  } catch {
    engine.settle(miss, slot)
    return // a status no Response may carry a body with (an upgrade): not ours
  }
  if (source === null) {
    store(Buffer.alloc(0))
    return
  }
  let reader: ReadableStreamDefaultReader<unknown>
  try {
    reader = source.getReader()
  } catch {
    engine.settle(miss, slot)
    return // already read or locked by someone else: leave it alone
  }
  const body = new BoundedBody(engine.maxBodySize)
  const tapped = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let result: Awaited<ReturnType<typeof reader.read>>
        try {
          result = await reader.read()
        } catch (error) {
          body.discard()
          // The body failed: nothing is stored, and requests waiting for this render stop waiting.
          engine.settle(miss, slot)
          controller.error(error)
          return
        }
        if (result.done) {
          controller.close()
          // Over maxBodySize or not bytes: nothing is stored, and waiters stop waiting.
          const whole = body.take()
          if (whole !== undefined) store(whole)
          else engine.settle(miss, slot)
          return
        }
        const bytes = toBytes(result.value)
        if (bytes === undefined) {
          body.discard() // not bytes: pass it on, never store it
          controller.enqueue(result.value as Uint8Array)
          return
        }
        body.add(bytes)
        controller.enqueue(bytes)
      },
      cancel(reason) {
        body.discard()
        engine.settle(miss, slot)
        return reader.cancel(reason)
      },
    },
    { highWaterMark: 0 },
  )
  let replacement: Response
  try {
    replacement = new Response(tapped, res)
  } catch {
    reader.releaseLock()
    engine.settle(miss, slot)
    return
  }
  c.res = replacement
}

/** The stand-in Context that key callbacks receive outside of a request (`makeCacheKey`, `deleteCached`). */
function stubContext(path: string, query: QueryArgs | undefined) {
  const pairs = queryPairs(query)
  const qs = new URLSearchParams(pairs).toString()
  const url = `http://localhost${path}${qs ? `?${qs}` : ''}`
  const params = new URLSearchParams(pairs)
  return {
    req: {
      method: 'GET',
      url,
      path,
      header: () => undefined,
      query: (name?: string) =>
        name === undefined ? Object.fromEntries(params) : (params.get(name) ?? undefined),
    },
  }
}

/**
 * Hono middleware caching the route's whole response (Flask-Caching's
 * `@cached`): status, headers and body, replayed byte for byte on a hit
 * without running the handler. Options are resolved and checked now: an
 * unknown option or a bad value throws a TypeError naming it.
 *
 * - **Hit**: answered with `c.body(body, status, headers)`, so headers outer
 *   middleware set for this request (`requestId()`, `cors()`) are added as on
 *   any response. `HEAD` gets the headers and no body.
 * - **Miss**: `await next()`, then the response in `c.res` is captured while it
 *   is sent (streams keep streaming) and stored once its body has been read to
 *   the end. Headers that outer middleware had set before the cache ran are not
 *   stored.
 * - **Errors**: a handler that throws reaches `app.onError` unchanged; with
 *   `c.error` set, the response is never stored. Set `c.error` yourself (for
 *   example in the `onError` callback of `stream()`) to keep a response out.
 *
 * Requests of an app passed to `cache.initApp(app)` use that app's backend
 * (the app binder adds `app.use(...)` middleware, so call `initApp` before
 * registering routes). Hono's `Context` does not name its app, so without
 * `initApp` the backend is that of the last app initialised, else the Cache's own.
 *
 * @param cache - the cachette `Cache`
 * @param options - validated now
 * @throws TypeError when `cache` is not a cachette Cache or an option is unknown or mistyped
 * @throws InvalidTimeoutError for a bad `timeout`
 *
 * @example
 * app.get('/search', cached(cache, { queryString: true, timeout: 60 }), (c) => c.json(search(c.req.query('q'))))
 */
export function cached<E extends Env = Env>(
  cache: CachedProvider,
  options?: CachedOptions<E>,
): CachedHandler<E> {
  // Any app using the adapter binds on initApp, with or without `import 'cachette/hono'`.
  registerAppBinder(bindHono)
  assertCachedProvider(cache, WHAT)
  const engine = createViewCache<Context, Context<E>>(options, WHAT)
  const slotOf = (): Slot => cache[VIEW_SLOT]()
  const sources = new Set<string>()

  /** Serves the request once `known` (the decision, when it was made at once) or the engine has decided. */
  const serve = async (
    c: Context,
    next: Next,
    view: HonoView,
    slot: Slot,
    known: ViewLookup | undefined,
  ): Promise<Response | undefined> => {
    const result = known ?? (await engine.lookup(view, slot))
    if (result.kind === 'hit') return replay(c, result)
    if (result.kind === 'bypass') {
      await next()
      return undefined
    }
    const prior = pairKeys(priorHeaders(c))
    try {
      await next()
    } catch (error) {
      engine.settle(result, slot)
      throw error
    }
    // A failed handler's response is never stored; requests waiting for this render stop waiting.
    if (c.error === undefined) capture(engine, c, result, slot, prior)
    else engine.settle(result, slot)
    return undefined
  }

  const handler = exposeView(
    function cached(c: Context, next: Next): Promise<Response | undefined> {
      let slot: Slot
      let view: HonoView
      let known: ViewLookup | undefined
      try {
        slot = slotOf()
        view = new HonoView(c, sources)
        // Decided at once when no user callback runs (an in-memory backend).
        known = engine.lookupNow(view, slot)
        if (known?.kind === 'hit') return Promise.resolve(replay(c, known))
      } catch (error) {
        return Promise.reject(error)
      }
      return serve(c, next, view, slot, known)
    },
    engine,
    slotOf,
    stubContext,
    sources,
  )
  return handler
}

/**
 * Sets how long the response being built is cached, overriding the route's
 * `timeout` (Flask-Caching's `CachedResponse(response, timeout)`). Call it
 * from the handler. `undefined` or `0` falls back to the route's timeout; the
 * route's `cacheStatuses`, `responseFilter` and the other rules still decide
 * whether it is stored.
 *
 * @param c - the request's Hono `Context`
 * @param timeout - seconds or a duration string (`'30s'`, `'1h'`)
 * @throws InvalidTimeoutError for a bad timeout
 *
 * @example
 * app.get('/feed', cached(cache, { timeout: '1h' }), async (c) => {
 *   const feed = await loadFeed()
 *   setCacheTimeout(c, feed.isLive ? 10 : '1h')
 *   return c.json(feed)
 * })
 */
export function setCacheTimeout(c: Context, timeout: Timeout | undefined): void {
  setResponseTimeout(c, timeout)
}

interface HonoLike {
  use(handler: (c: unknown, next: () => Promise<void>) => Promise<void>): unknown
}

/**
 * `cache.initApp(app)` on a Hono app: adds `app.use(...)` middleware that runs
 * the rest of each request with the app as the current app, so `cached()` and
 * `memoize` inside its requests use the app's backend. Hono runs middleware in
 * registration order, so it covers the routes registered after `initApp`; for a
 * sub-app mounted with `app.route()`, initialise it before mounting it.
 */
function bindHono(app: object): boolean {
  const a = app as Record<string, unknown>
  if (
    typeof a.fetch !== 'function' ||
    typeof a.use !== 'function' ||
    typeof a.route !== 'function' ||
    typeof a.onError !== 'function' ||
    typeof a.notFound !== 'function' ||
    typeof a.basePath !== 'function'
  ) {
    return false
  }
  if (boundApps.has(app)) return true
  boundApps.add(app)
  ;(app as HonoLike).use(async function cachetteAppContext(_c, next) {
    await appContext.run(app, next)
  })
  return true
}

registerAppBinder(bindHono)
