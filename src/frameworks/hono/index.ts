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
 *
 * @module cachette/hono
 */
import type { Context, Env, MiddlewareHandler, Next } from 'hono'
import { repeatedHeaders } from '../../core/background.js'
import { appContext, registerAppBinder } from '../../core/context.js'
import type { Timeout } from '../../core/duration.js'
import { isToken } from '../../core/headers.js'
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
  unsafeInvalidation,
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

/**
 * The route handler that the 3-argument {@link cached} wraps: it returns the
 * page's `Response` (`(c) => c.html(page)`).
 */
export type CachedView<E extends Env = Env> = (c: Context<E>) => Response | Promise<Response>

/**
 * What {@link cached} returns when given a handler: one Hono handler, plus
 * Flask-Caching's attributes of a cached view. A hit decided at once is
 * returned as a `Response`, not a Promise.
 */
export interface CachedRouteHandler<E extends Env = Env> extends ViewAttributes<Context<E>> {
  (c: Context<E>, next: Next): Response | Promise<Response>
}

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
    parts.push(sourceText(fn))
  }
  const source = parts.join('\n')
  seen.add(source)
  return source
}

/** `Function.prototype.toString` of `fn`, worked out once. */
function sourceText(fn: Function): string {
  let text = sourceTexts.get(fn)
  if (text === undefined) {
    text = Function.prototype.toString.call(fn)
    sourceTexts.set(fn, text)
  }
  return text
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
  /** The handler the 3-argument `cached` wraps: the code the cache stands in for. */
  readonly #wrapped: Function | undefined

  constructor(
    readonly raw: Context,
    sources: Set<string>,
    wrapped?: Function,
  ) {
    const [path, query] = splitUrl(raw.req.url)
    this.method = raw.req.method
    this.path = path
    this.query = query
    this.#index = raw.req.routeIndex
    this.#sources = sources
    this.#wrapped = wrapped
  }

  header(name: string): string | undefined {
    return this.raw.req.header(name)
  }

  source(): string | undefined {
    if (this.#wrapped !== undefined) {
      const text = sourceText(this.#wrapped)
      this.#sources.add(text)
      return text
    }
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

/** A hit's headers as {@link replay} hands them to `c.body`: names lower case, one value or a list each. */
function headerRecord(hit: ViewHit): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {}
  for (const [name, value] of hit.grouped) {
    headers[name.toLowerCase()] = typeof value === 'string' ? value : [...value]
  }
  return headers
}

/** The HTTP white space `Headers` strips from both ends of a value (CR and LF never reach here). */
const EDGE_WHITESPACE = /^[\t ]+|[\t ]+$/g

/**
 * Values every runtime takes and sends alike: what `Headers` accepts (bytes,
 * no NUL, CR or LF) and Node's `writeHead` does not refuse (no other control
 * character), so a plain record goes out as the `Headers` would.
 */
const PORTABLE_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/

/**
 * A hit's headers as a frozen plain record, exactly as the `Headers` that
 * `c.body` builds from {@link headerRecord} would list them: names lower
 * case and in `Headers`' (sorted) order, each value trimmed as `Headers`
 * trims it, a repeated field's values joined with `, `. A `Response` made
 * with a plain record is one @hono/node-server writes without building a
 * `Headers` and reading it back (its `Response` keeps a plain init as is).
 * With at most one field, a string, `c.body` makes no `Headers` and passes
 * the record on as it is; so does this.
 *
 * `null` when a `Headers` would not list the same fields, or would refuse
 * one: a `Set-Cookie` (a `Headers` keeps each, a record cannot), a name
 * that is not a token, a value a runtime could take differently, or a
 * body without `Content-Type` (@hono/node-server adds its default to a
 * `Headers`, not to a plain record). Such hits go through `c.body`.
 */
function wireRecord(hit: ViewHit): Readonly<Record<string, string>> | null {
  const record = headerRecord(hit)
  const fields = Object.entries(record)
  const only = fields[0]?.[1]
  if (fields.length === 0 || (fields.length === 1 && typeof only === 'string')) {
    return Object.freeze(record as Record<string, string>)
  }
  const out: Record<string, string> = {}
  for (const [name, value] of fields.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (name === 'set-cookie' || !isToken(name)) return null
    const values = typeof value === 'string' ? [value] : value
    if (values.length === 0) continue // `delete` and no `append`: the field is not sent
    const trimmed = values.map((v) => v.replace(EDGE_WHITESPACE, ''))
    if (!trimmed.every((v) => PORTABLE_VALUE.test(v))) return null
    out[name] = trimmed.join(', ')
  }
  if (hit.body !== undefined && out['content-type'] === undefined) return null
  return Object.freeze(out)
}

/** {@link wireRecord} of each hit, worked out once (a hit of a backend that shares its entries serves many requests). */
const wireRecords = new WeakMap<ViewHit, Readonly<Record<string, string>> | null>()

/**
 * Whether a response made now would carry headers that outer middleware set
 * for this request before the cache ran (`c.header()`, or `c.res.headers`
 * as `cors()` sets them), which `c.body` merges in. Read through
 * `c.newResponse(null)`, which leaves the Context untouched; a status set
 * before us that a `Response` refuses counts as yes (`c.body` then decides).
 */
function outerHeaders(c: Context): boolean {
  let headers: Headers
  try {
    headers = c.newResponse(null).headers
  } catch {
    return true
  }
  for (const _ of headers) return true
  return false
}

/**
 * Replays a hit through `c.body`, so headers outer middleware set for this
 * request stay on it. When there are none, the same response is made with
 * its headers as a plain record ({@link wireRecord}) instead: what `c.body`
 * would return then, without the `Headers` it builds.
 */
function replay(c: Context, hit: ViewHit): Response {
  let wire = wireRecords.get(hit)
  if (wire === undefined) {
    wire = wireRecord(hit)
    wireRecords.set(hit, wire)
  }
  if (wire !== null && !outerHeaders(c)) {
    // The same body `c.body` would be given: the hit's own bytes.
    return new Response((hit.body ?? null) as ConstructorParameters<typeof Response>[0], {
      status: hit.status,
      headers: wire,
    })
  }
  const headers = headerRecord(hit)
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

/**
 * Renders a miss, for both forms of {@link cached}: `render` runs the
 * handler (`await next()`, or the wrapped handler with its `Response` put in
 * `c.res` as Hono's compose would) and says whether a response was made;
 * then the response in `c.res` is captured ({@link capture}) unless the
 * handler failed (`c.error`). Headers set before the handler ran are not
 * stored. A handler that throws settles the render and the error propagates.
 */
async function renderMiss(
  engine: ViewCache<Context>,
  c: Context,
  miss: ViewMiss,
  slot: Slot,
  render: () => Promise<boolean>,
): Promise<void> {
  const prior = pairKeys(priorHeaders(c))
  let produced: boolean
  try {
    produced = await render()
  } catch (error) {
    engine.settle(miss, slot)
    throw error
  }
  // A failed handler's response is never stored; requests waiting for this render stop waiting.
  if (produced && c.error === undefined) capture(engine, c, miss, slot, prior)
  else engine.settle(miss, slot)
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
 *   any response (when there are none, with the same response made from a
 *   plain header record, which @hono/node-server sends without a `Headers`).
 *   `HEAD` gets the headers and no body.
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
): CachedHandler<E>
/**
 * Wraps a Hono handler in a view cache (Flask-Caching's `@cached` as a
 * decorator): the same cache as the middleware form, with the same key,
 * bypass rules (method, `Authorization`, `Proxy-Authorization`, `unless`),
 * storage rules, stampede protection and grace, returned as one handler
 * instead of middleware in front of one.
 *
 * - **Hit** decided at once (an in-process backend, no async callbacks): the
 *   `Response` is returned synchronously, so Hono answers a route with no
 *   other middleware through its single-handler path, without `compose` or
 *   a Promise. Other hits are replayed once the engine has decided.
 * - **Miss**: `handler(c)` runs, its `Response` is put in `c.res` as Hono's
 *   compose would, and it is captured and stored exactly as the middleware
 *   form stores what the handler returned. The stored copy is taken once the
 *   body has been read to its end, after every outer `app.use()` middleware
 *   has finished: headers they add after the handler (`Set-Cookie`,
 *   `Cache-Control: private`) still keep the page out.
 * - **Bypass**: `handler(c)` is returned as it is.
 * - **Errors**: a handler that throws (or sets `c.error`) stores nothing; the
 *   error reaches `app.onError` unchanged.
 *
 * With `sourceCheck`, the key digests the wrapped handler's source.
 *
 * @param cache - the cachette `Cache`
 * @param options - validated now (`undefined` for the defaults)
 * @param handler - the route's handler, returning its `Response`
 * @throws TypeError when `cache` is not a cachette Cache, an option is unknown or mistyped, or `handler` is not a function
 * @throws InvalidTimeoutError for a bad `timeout`
 *
 * @example
 * app.get('/about', cached(cache, { timeout: 60 }, (c) => c.html(page)))
 */
export function cached<E extends Env = Env>(
  cache: CachedProvider,
  options: CachedOptions<E> | undefined,
  handler: CachedView<E>,
): CachedRouteHandler<E>
export function cached<E extends Env = Env>(
  cache: CachedProvider,
  options?: CachedOptions<E>,
  view?: CachedView<E>,
): CachedHandler<E> | CachedRouteHandler<E> {
  // Any app using the adapter binds on initApp, with or without `import 'cachette/hono'`.
  registerAppBinder(bindHono)
  assertCachedProvider(cache, WHAT)
  if (view !== undefined && typeof view !== 'function') {
    throw new TypeError(`${WHAT}: the handler (third argument) must be a function`)
  }
  const engine = createViewCache<Context, Context<E>>(options, WHAT)
  const slotOf = (): Slot => cache[VIEW_SLOT]()
  const sources = new Set<string>()
  if (view !== undefined) {
    return wrapView(
      engine,
      slotOf,
      sources,
      view as unknown as CachedView,
    ) as unknown as CachedRouteHandler<E>
  }

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
      // invalidateOnUnsafe: before the response goes out.
      await unsafeInvalidation(handler, view, slot)?.(c.res.status)
      return undefined
    }
    await renderMiss(engine, c, result, slot, async () => {
      await next()
      return true
    })
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
 * The 3-argument {@link cached}: one handler serving hits itself (at once
 * when the engine decides at once) and running `handler` otherwise.
 */
function wrapView(
  engine: ViewCache<Context>,
  slotOf: () => Slot,
  sources: Set<string>,
  handler: CachedView,
): CachedRouteHandler {
  /** Runs the handler on a miss and returns what Hono would send: `c.res` once captured. */
  const render = async (c: Context, miss: ViewMiss, slot: Slot): Promise<Response> => {
    let returned: Response | undefined
    await renderMiss(engine, c, miss, slot, async () => {
      returned = await handler(c)
      // As Hono's compose: the handler's Response becomes `c.res` unless one is already final.
      if (returned !== undefined && returned !== null && !c.finalized) c.res = returned
      return c.finalized
    })
    return c.finalized ? c.res : (returned as Response)
  }

  /** A bypassed request: the handler, then (`invalidateOnUnsafe`) the invalidation, before the response goes out. */
  const bypass = (c: Context, view: HonoView, slot: Slot): Response | Promise<Response> => {
    const invalidate = unsafeInvalidation(wrapped, view, slot)
    if (invalidate === undefined) return handler(c)
    return (async () => {
      const returned = await handler(c)
      await invalidate((c.finalized ? c.res : returned).status)
      return returned
    })()
  }

  /** Serves the request once the engine has decided. */
  const serve = async (c: Context, view: HonoView, slot: Slot): Promise<Response> => {
    const result = await engine.lookup(view, slot)
    if (result.kind === 'hit') return replay(c, result)
    if (result.kind === 'bypass') return bypass(c, view, slot)
    return render(c, result, slot)
  }

  const wrapped = function cached(c: Context, _next: Next): Response | Promise<Response> {
    const slot = slotOf()
    const view = new HonoView(c, sources, handler)
    // Decided at once when no user callback runs (an in-memory backend).
    const known = engine.lookupNow(view, slot)
    if (known === undefined) return serve(c, view, slot)
    if (known.kind === 'hit') return replay(c, known)
    if (known.kind === 'bypass') return bypass(c, view, slot)
    return render(c, known, slot)
  }
  return exposeView(wrapped, engine, slotOf, stubContext, sources)
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
