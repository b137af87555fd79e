/**
 * The Express/Connect adapter of the view-caching engine (`src/core/view/`).
 * It works on plain `node:http` objects and never imports `express`, so it
 * serves Connect and anything else with `(req, res, next)` middleware.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { appContext } from '../../core/context.js'
import type { Slot } from '../../core/slot.js'
import {
  type CachedMiddleware,
  createViewCache,
  exposeView,
  type RequestView,
  requestViewOf,
  routedTarget,
  stubRequestFor,
  unsafeInvalidation,
  type ViewCacheOptions,
} from '../../core/view/index.js'
import {
  captureResponse,
  endAfter,
  notModifiedByExpress,
  replayHit,
  replayNotModified,
} from '../shared/capture.js'

export type { CachedMiddleware, DeleteCachedTarget, ViewKeyArgs } from '../../core/view/index.js'

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

/** Express's view of `req` beyond `node:http`; every field optional so Connect works too. */
interface ExpressRequest extends IncomingMessage {
  originalUrl?: string
  baseUrl?: string
  app?: unknown
  route?: { stack?: unknown }
}

interface Layer {
  handle?: unknown
}

const ORIGINAL = Symbol('cachette.original')
const guardedLayers = new WeakSet<object>()
const routeSources = new WeakMap<object, Map<Function, string>>()
const erroredResponses = new WeakSet<object>()

/** The {@link RequestView} of a node:http request: keyed on what the router routed ({@link routedTarget}; a mounted router's prefix kept). */
function viewOf(
  req: ExpressRequest,
  source?: () => string | undefined,
): RequestView<IncomingMessage> {
  const url = req.url ?? '/'
  return requestViewOf(
    req.method ?? 'GET',
    routedTarget(req.originalUrl ?? url, url, req.baseUrl),
    req.headers,
    req,
    source,
    req.socket,
  )
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

/**
 * The source of the route's handlers after this middleware (computed once
 * per route), for `sourceCheck`: the code the cache stands in for. With
 * `app.use(cached())` no route is known when the cache runs: `undefined`,
 * and the engine keys without the digest and warns once.
 */
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

/**
 * Wraps the app's error-handling middleware (four arguments), once per
 * layer, so that a response an error handler answers is marked failed: with
 * the cache mounted by `app.use`, the route's handlers are not known, but an
 * error still reaches an error handler, which may answer with a status the
 * cache would store. Walks the app's router and the routers mounted in it.
 */
export function guardErrorHandlers(req: IncomingMessage): void {
  const app = (req as ExpressRequest).app as { router?: unknown; _router?: unknown } | undefined
  if (typeof app !== 'function' && (typeof app !== 'object' || app === null)) return
  let router: unknown
  try {
    router = app._router ?? app.router
  } catch {
    return
  }
  guardErrorLayers(router, 0)
}

function guardErrorLayers(router: unknown, depth: number): void {
  const stack = (router as { stack?: unknown } | null)?.stack
  if (!Array.isArray(stack) || depth > 8) return
  for (const layer of stack as Layer[]) {
    if (typeof layer !== 'object' || layer === null) continue
    const handle = layer.handle
    if (typeof handle !== 'function') continue
    if (handle.length !== 4) {
      // A mounted router (its own stack), or a route (its handlers' stack).
      guardErrorLayers(handle, depth + 1)
      guardErrorLayers((layer as { route?: unknown }).route, depth + 1)
      continue
    }
    if (guardedLayers.has(layer)) continue
    guardedLayers.add(layer)
    const guarded = function cachetteErrorGuard(
      this: unknown,
      err: unknown,
      rq: IncomingMessage,
      rs: ServerResponse,
      next: NextFunction,
    ): unknown {
      erroredResponses.add(rs)
      return handle.call(this, err, rq, rs, next)
    }
    Object.defineProperty(guarded, ORIGINAL, { value: handle })
    Object.defineProperty(guarded, 'name', { value: handle.name, configurable: true })
    layer.handle = guarded
  }
}

/** Whether an error handler answered `res` (see {@link guardErrorHandlers}), or a cached route's handler failed. */
export function answeredByErrorHandler(res: ServerResponse): boolean {
  return erroredResponses.has(res)
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
 * @param slotOf - resolves the slot (backend and settings) of the current app
 * @param options - validated now; a bad option throws a TypeError naming it
 */
export function createCachedMiddleware<Req extends IncomingMessage = IncomingMessage>(
  slotOf: () => Slot,
  options?: CachedOptions<Req>,
): CachedMiddleware {
  const engine = createViewCache<IncomingMessage, Req>(options)
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
    const view = viewOf(req, source)
    engine.lookup(view, slot).then(
      (result) => {
        if (result.kind === 'hit') {
          // Express's own 304 for a matching If-None-Match, as without the cache.
          if (notModifiedByExpress(req, result)) replayNotModified(res, result)
          else replayHit(res, result)
          return
        }
        if (result.kind === 'miss') {
          guardRoute(req, cachedMiddleware)
          guardErrorHandlers(req)
          captureResponse(engine, res, result, slot, () => erroredResponses.has(res))
        } else {
          const invalidate = unsafeInvalidation(cachedMiddleware, view, slot)
          if (invalidate !== undefined) endAfter(res, invalidate)
        }
        next()
      },
      (error: unknown) => next(error),
    )
  }

  const cachedMiddleware = exposeView(
    function cachedMiddleware(req: IncomingMessage, res: ServerResponse, next: NextFunction): void {
      const app = (req as ExpressRequest).app
      if ((typeof app === 'object' || typeof app === 'function') && app !== null) {
        appContext.run(app, serve, req, res, next)
      } else serve(req, res, next)
    },
    engine,
    slotOf,
    stubRequestFor,
    sources,
  )
  return cachedMiddleware
}

/**
 * `initApp` on an Express (or Connect-style) app: a first middleware that runs
 * the rest of each request with the app as the current app. The `cachette`
 * entry (src/index.ts) registers it, so `initApp` binds Express apps with
 * nothing else imported, and this module has no import-time side effect.
 */
export function bindExpress(app: object): boolean {
  const a = app as Record<string, unknown>
  if (
    typeof a.use !== 'function' ||
    typeof a.handle !== 'function' ||
    typeof a.set !== 'function'
  ) {
    return false
  }
  ;(a.use as (fn: (req: unknown, res: unknown, next: () => void) => void) => void)(
    function cachetteAppContext(_req, _res, next) {
      appContext.run(app, next)
    },
  )
  return true
}
