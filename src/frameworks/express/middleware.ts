/**
 * The Express/Connect adapter of the view-caching engine (`src/core/view.ts`).
 * It works on plain `node:http` objects and never imports `express`, so it
 * serves Connect and anything else with `(req, res, next)` middleware.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import { appContext } from '../../core/context.js'
import type { Timeout } from '../../core/duration.js'
import type { Slot, SlotSettings } from '../../core/slot.js'
import {
  type CapturedResponse,
  type QueryArgs,
  queryPairs,
  type RequestView,
  responseTimeoutOf,
  ViewCache,
  type ViewCacheOptions,
  type ViewHit,
  type ViewMiss,
} from '../../core/view.js'

/**
 * Options of `cache.cached()` for Express and Connect; see
 * {@link ViewCacheOptions} for each option and its default.
 *
 * @typeParam Req - the request type your callbacks receive; give Express's
 * `Request` (or your own subtype with `user`) to type them:
 * `cache.cached<Request>({ keyPrefix: (req) => ... })`.
 */
export type CachedOptions<Req extends IncomingMessage = IncomingMessage> = ViewCacheOptions<Req>

/** `next` as Express and Connect pass it. */
export type NextFunction = (err?: unknown) => void

/** Where a view key is built outside of a request (`deleteCached`, `makeCacheKey`). */
export interface ViewKeyArgs {
  /** The request path, e.g. `'/users/42'`. */
  path?: string
  /** The query arguments; used only by routes with `queryString: true`. */
  queryArgs?: QueryArgs
  /**
   * The request handed to a `keyPrefix` or `makeCacheKey` function. Without
   * it they receive a minimal stand-in: `{ method: 'GET', url, originalUrl,
   * path, query, headers: {} }`.
   */
  request?: unknown
}

/**
 * What `cache.cached()` returns: Express/Connect middleware, plus
 * Flask-Caching's attributes of a cached view.
 */
export interface CachedMiddleware {
  /** Serves the request from the cache, or runs the rest of the route and stores its response. */
  (req: IncomingMessage, res: ServerResponse, next: NextFunction): void
  /** The timeout (seconds) for new entries; assignable (seconds or a duration string), read at store time. */
  cacheTimeout: Timeout | undefined
  /** The options this middleware was created with. */
  readonly options: Readonly<CachedOptions>
  /** The base cache key for a path and query, as this middleware would build it (encoded variants add `|<coding>`). */
  makeCacheKey(args: ViewKeyArgs): Promise<string>
}

/**
 * What `cache.deleteCached()` accepts: a path (keys built with the default
 * options), the middleware `cache.cached()` returned, or a path with the
 * key options of the route.
 */
export type DeleteCachedTarget =
  | string
  | CachedMiddleware
  | ({ path: string; queryArgs?: QueryArgs; request?: unknown } & Pick<
      CachedOptions,
      'keyPrefix' | 'queryString' | 'hashMethod' | 'makeCacheKey' | 'sourceCheck'
    >)

/** Express's view of `req` beyond `node:http`; every field optional so Connect works too. */
interface ExpressRequest extends IncomingMessage {
  originalUrl?: string
  app?: unknown
  route?: { stack?: unknown }
}

interface Layer {
  handle?: unknown
}

interface Registered {
  readonly engine: ViewCache<IncomingMessage>
  /** Sources of the routes this middleware has served, for `sourceCheck` in `deleteCached`. */
  readonly sources: Set<string>
}

const registry = new WeakMap<Function, Registered>()
const defaultEngine = new ViewCache<IncomingMessage>({})

const ORIGINAL = Symbol('cachette.original')
const guardedLayers = new WeakSet<object>()
const routeSources = new WeakMap<object, Map<Function, string>>()
const erroredResponses = new WeakSet<object>()

function decodePath(raw: string): string {
  try {
    return decodeURIComponent(raw)
  } catch {
    return raw
  }
}

function stubRequest(path: string, query: QueryArgs | undefined): IncomingMessage {
  const pairs = queryPairs(query)
  const qs = new URLSearchParams(pairs).toString()
  const url = qs ? `${path}?${qs}` : path
  const q: Record<string, string | string[]> = {}
  for (const [n, v] of pairs) {
    const prev = q[n]
    q[n] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v]
  }
  return {
    method: 'GET',
    url,
    originalUrl: url,
    path,
    query: q,
    headers: {},
  } as unknown as IncomingMessage
}

/** The {@link RequestView} of a node:http request (Express's `originalUrl` when present, so mounted routers key on the full path). */
function viewOf(
  req: ExpressRequest,
  source?: () => string | undefined,
): RequestView<IncomingMessage> {
  const url = req.originalUrl ?? req.url ?? '/'
  const q = url.indexOf('?')
  return {
    method: req.method ?? 'GET',
    path: decodePath(q < 0 ? url : url.slice(0, q)),
    query: q < 0 ? '' : url.slice(q + 1),
    header(name) {
      const v = req.headers[name]
      return Array.isArray(v) ? v.join(', ') : v
    },
    raw: req,
    source,
  }
}

/** The layers of an Express route after `self`, or `undefined` when not on a route. */
function layersAfter(route: ExpressRequest['route'], self: Function): Layer[] | undefined {
  const stack = route?.stack
  if (!Array.isArray(stack)) return undefined
  const i = stack.findIndex((l: Layer) => {
    const h = l?.handle as { [ORIGINAL]?: Function } | undefined
    return h === self || h?.[ORIGINAL] === self
  })
  return i < 0 ? undefined : (stack.slice(i + 1) as Layer[])
}

function originalOf(fn: Function): Function {
  return (fn as { [ORIGINAL]?: Function })[ORIGINAL] ?? fn
}

/** The source of the route's handlers after this middleware (computed once per route). */
function routeSource(req: ExpressRequest, self: Function): string | undefined {
  const route = req.route
  if (typeof route !== 'object' || route === null) return undefined
  let perRoute = routeSources.get(route)
  if (perRoute === undefined) {
    perRoute = new Map()
    routeSources.set(route, perRoute)
  }
  let source = perRoute.get(self)
  if (source === undefined) {
    const layers = layersAfter(route, self)
    if (layers === undefined) return undefined
    source = layers
      .map((l) =>
        typeof l.handle === 'function'
          ? Function.prototype.toString.call(originalOf(l.handle))
          : '',
      )
      .join('\n')
    perRoute.set(self, source)
  }
  return source
}

/**
 * Wraps the handlers that follow the cache on an Express route (once per
 * layer) so that a handler that throws, rejects or calls `next(err)` marks its
 * response as failed; failed responses are never stored, even when an error
 * handler answers with a cacheable status. The error itself is passed on
 * unchanged. Express gives no other hook for this; when the middleware is
 * mounted with `app.use`, errors are only recognised by their status.
 */
function guardRoute(req: ExpressRequest, self: Function): void {
  const layers = layersAfter(req.route, self)
  if (layers === undefined) return
  for (const layer of layers) {
    const handle = layer.handle
    if (guardedLayers.has(layer) || typeof handle !== 'function' || handle.length > 3) continue
    guardedLayers.add(layer)
    const guarded = function cachetteGuard(
      this: unknown,
      rq: IncomingMessage,
      rs: ServerResponse,
      next: NextFunction,
    ): unknown {
      const guardedNext: NextFunction = (err?: unknown) => {
        if (err !== undefined && err !== null && err !== 'route' && err !== 'router')
          erroredResponses.add(rs)
        next(err)
      }
      try {
        const ret = handle.call(this, rq, rs, guardedNext)
        if (typeof (ret as PromiseLike<unknown> | null)?.then === 'function') {
          return (ret as Promise<unknown>).then(undefined, (error: unknown) => {
            erroredResponses.add(rs)
            throw error
          })
        }
        return ret
      } catch (error) {
        erroredResponses.add(rs)
        throw error
      }
    }
    Object.defineProperty(guarded, ORIGINAL, { value: handle })
    Object.defineProperty(guarded, 'name', { value: handle.name, configurable: true })
    layer.handle = guarded
  }
}

type HeaderPairs = [string, string][]

function pushHeader(out: HeaderPairs, name: string, value: unknown): void {
  if (value === undefined || value === null) return
  if (Array.isArray(value)) for (const v of value) out.push([name, String(v)])
  else out.push([name, String(value)])
}

/** The headers currently set on `res`, names as set (`getRawHeaderNames`). */
function currentHeaders(res: ServerResponse): HeaderPairs {
  const out: HeaderPairs = []
  const raw = (res as { getRawHeaderNames?: () => string[] }).getRawHeaderNames
  const names = typeof raw === 'function' ? raw.call(res) : res.getHeaderNames()
  for (const name of names) pushHeader(out, name, res.getHeader(name))
  return out
}

/** `currentHeaders` with the headers passed to `writeHead` applied, as Node applies them. */
function headersWith(res: ServerResponse, extra: unknown): HeaderPairs {
  const out = currentHeaders(res)
  if (extra === undefined || extra === null) return out
  if (Array.isArray(extra)) {
    if (extra.length > 0 && Array.isArray(extra[0])) {
      for (const pair of extra as unknown[][]) pushHeader(out, String(pair[0]), pair[1])
    } else {
      for (let i = 0; i + 1 < extra.length; i += 2) pushHeader(out, String(extra[i]), extra[i + 1])
    }
    return out
  }
  if (typeof extra === 'object') {
    for (const [name, value] of Object.entries(extra as OutgoingHttpHeaders)) {
      const lower = name.toLowerCase()
      const kept = out.filter(([n]) => n.toLowerCase() !== lower)
      out.length = 0
      out.push(...kept)
      pushHeader(out, name, value)
    }
  }
  return out
}

function toBuffer(chunk: unknown, encoding: unknown): Buffer | undefined {
  if (typeof chunk === 'string') {
    return Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
  }
  if (Buffer.isBuffer(chunk)) return chunk
  if (chunk instanceof Uint8Array)
    return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  return undefined
}

/** Replays a hit: stored headers over those already set, then status and body. */
function replay(res: ServerResponse, hit: ViewHit): void {
  const grouped = new Map<string, [string, string[]]>()
  for (const [name, value] of hit.headers) {
    const lower = name.toLowerCase()
    const g = grouped.get(lower)
    if (g) g[1].push(value)
    else grouped.set(lower, [name, [value]])
  }
  for (const [name, values] of grouped.values()) {
    res.setHeader(name, values.length === 1 ? (values[0] as string) : values)
  }
  res.writeHead(hit.status)
  if (hit.body === undefined) res.end()
  else res.end(hit.body)
}

/**
 * Wraps `res.writeHead`/`write`/`end` for one response to capture what the
 * rest of the chain sends, passing every call through unchanged, and stores
 * it once the response has finished. Covers `res.send`, `res.json`,
 * `res.sendFile`, `stream.pipe(res)` and a compression layer on either side.
 */
function capture(
  engine: ViewCache<IncomingMessage>,
  res: ServerResponse,
  miss: ViewMiss,
  slot: Slot,
): void {
  // Headers set before the cache ran (outer middleware such as CORS) are
  // recomputed per request, on hits too; only what the route adds is stored.
  const before = new Map<string, string>()
  for (const [n, v] of currentHeaders(res)) {
    const lower = n.toLowerCase()
    before.set(lower, before.has(lower) ? `${before.get(lower)}\n${v}` : v)
  }
  let status = 0
  let headers: HeaderPairs | undefined
  let chunks: Buffer[] | undefined = []
  let size = 0
  let ended = false
  const max = engine.maxBodySize

  const collect = (chunk: unknown, encoding: unknown): void => {
    if (ended || chunks === undefined || typeof chunk === 'function') return
    const buf = toBuffer(chunk, encoding)
    if (buf === undefined || buf.length === 0) return
    size += buf.length
    if (size > max) chunks = undefined
    else chunks.push(Buffer.from(buf))
  }

  const origWriteHead = res.writeHead
  const origWrite = res.write
  const origEnd = res.end
  res.writeHead = function cachetteWriteHead(this: ServerResponse, ...args: unknown[]) {
    if (headers === undefined) {
      status = Number(args[0])
      headers = headersWith(this, typeof args[1] === 'string' ? args[2] : args[1])
    }
    return (origWriteHead as (...a: unknown[]) => ServerResponse).apply(this, args)
  } as ServerResponse['writeHead']
  res.write = function cachetteWrite(this: ServerResponse, ...args: unknown[]) {
    collect(args[0], args[1])
    return (origWrite as (...a: unknown[]) => boolean).apply(this, args)
  } as ServerResponse['write']
  res.end = function cachetteEnd(this: ServerResponse, ...args: unknown[]) {
    collect(args[0], args[1])
    ended = true
    return (origEnd as (...a: unknown[]) => ServerResponse).apply(this, args)
  } as ServerResponse['end']

  res.once('finish', () => {
    if (headers === undefined) {
      status = res.statusCode
      headers = currentHeaders(res)
    }
    const own = headers.filter(([n, v]) => {
      const prior = before.get(n.toLowerCase())
      return prior === undefined || !prior.split('\n').includes(v)
    })
    const response: CapturedResponse = {
      status,
      headers: own,
      body: chunks === undefined ? undefined : Buffer.concat(chunks, size),
      complete: ended,
      errored: erroredResponses.has(res),
    }
    chunks = undefined
    void engine.store(miss, response, slot, responseTimeoutOf(res))
  })
}

/**
 * Creates the view-caching middleware behind `cache.cached()`.
 *
 * On a hit it replays the stored status, headers and body byte for byte. On a
 * miss it captures the response while passing it through, and stores it after
 * it finished if it may be stored. The rest of the chain runs with the
 * request's app as the current app (`req.app`), so `memoize` inside a cached
 * route of a multi-app `Cache` uses that app's backend.
 *
 * @param _cache - the owning Cache (unused by the middleware itself; keeps the adapter signature uniform)
 * @param slotOf - resolves the slot (backend and settings) of the current app
 * @param options - validated now; a bad option throws a TypeError naming it
 */
export function createCachedMiddleware<Req extends IncomingMessage = IncomingMessage>(
  _cache: object,
  slotOf: () => Slot,
  options?: CachedOptions<Req>,
): CachedMiddleware {
  const engine = new ViewCache<IncomingMessage>(options as ViewCacheOptions<IncomingMessage>)
  const sources = new Set<string>()

  const serve = (req: ExpressRequest, res: ServerResponse, next: NextFunction): void => {
    let slot: Slot
    try {
      slot = slotOf()
    } catch (error) {
      next(error)
      return
    }
    const source = (): string | undefined => {
      const s = routeSource(req, cachedMiddleware)
      if (s !== undefined) sources.add(s)
      return s
    }
    engine.lookup(viewOf(req, source), slot).then(
      (result) => {
        if (result.kind === 'hit') {
          replay(res, result)
          return
        }
        if (result.kind === 'miss') {
          guardRoute(req, cachedMiddleware)
          capture(engine, res, result, slot)
        }
        next()
      },
      (error: unknown) => next(error),
    )
  }

  const cachedMiddleware = function cachedMiddleware(
    req: IncomingMessage,
    res: ServerResponse,
    next: NextFunction,
  ): void {
    const app = (req as ExpressRequest).app
    if ((typeof app === 'object' || typeof app === 'function') && app !== null) {
      appContext.run(app, serve, req, res, next)
    } else serve(req, res, next)
  } as CachedMiddleware

  Object.defineProperties(cachedMiddleware, {
    cacheTimeout: {
      get: () => engine.cacheTimeout,
      set: (t: Timeout | undefined) => {
        engine.cacheTimeout = t
      },
      enumerable: true,
    },
    options: { value: engine.options, enumerable: true },
    makeCacheKey: {
      value: (args: ViewKeyArgs) => keyOf(engine, args, slotOf().settings, undefined),
    },
  })
  registry.set(cachedMiddleware, { engine, sources })
  return cachedMiddleware
}

async function keyOf(
  engine: ViewCache<IncomingMessage>,
  args: ViewKeyArgs,
  settings: SlotSettings,
  source: string | undefined,
): Promise<string> {
  const path = args.path
  if (typeof path !== 'string' || path === '') {
    throw new TypeError('a view key needs a path, e.g. { path: "/users/42" }')
  }
  const raw = (args.request as IncomingMessage | undefined) ?? stubRequest(path, args.queryArgs)
  return engine.keyFor(
    {
      method: 'GET',
      path,
      query: args.queryArgs ?? '',
      header: () => undefined,
      raw,
      source: () => source,
    },
    settings,
  )
}

/**
 * Every backend key of one cached view: the base key and its encoded
 * variants (`key|br`, `key|gzip`, ...), for `cache.deleteCached()`.
 *
 * - `viewKeysFor('/users/42')`: default options (`view//users/42`).
 * - `viewKeysFor(middleware, { path, queryArgs })`: the options of that
 *   `cache.cached()` middleware. With `sourceCheck`, keys for every route it
 *   has served in this process.
 * - `viewKeysFor({ path, queryArgs, keyPrefix, queryString, ... })`.
 */
export async function viewKeysFor(
  target: DeleteCachedTarget,
  args: ViewKeyArgs | undefined,
  settings: SlotSettings,
): Promise<string[]> {
  let engine: ViewCache<IncomingMessage>
  let keyArgs: ViewKeyArgs
  let sources: (string | undefined)[] = [undefined]
  if (typeof target === 'string') {
    engine = defaultEngine
    keyArgs = { ...args, path: target }
  } else if (typeof target === 'function') {
    const registered = registry.get(target)
    if (registered === undefined) {
      throw new TypeError('deleteCached: pass a path or the middleware cache.cached() returned')
    }
    engine = registered.engine
    keyArgs = args ?? {}
    if (registered.sources.size > 0) sources = [...registered.sources]
  } else if (typeof target === 'object' && target !== null) {
    const { path, queryArgs, request, ...keyOptions } = target
    engine = new ViewCache<IncomingMessage>(
      keyOptions as ViewCacheOptions<IncomingMessage>,
      'deleteCached',
    )
    keyArgs = { path, queryArgs, request, ...args }
  } else {
    throw new TypeError('deleteCached: pass a path or the middleware cache.cached() returned')
  }
  const keys: string[] = []
  for (const source of sources) {
    keys.push(...engine.variantKeys(await keyOf(engine, keyArgs, settings, source)))
  }
  return keys
}
