/**
 * `cachette/express`: view caching and HTTP caching (Cache-Control helpers,
 * validation, the RFC 9111 shared response cache) for Express (4 and 5) and Connect.
 *
 * @example
 * import express from 'express'
 * import { Cache } from 'cachette'
 * import { cached, setCacheTimeout } from 'cachette/express'
 *
 * const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
 * const app = express()
 * app.get('/users/:id', cached(cache, { timeout: '5m' }), (req, res) => res.json(load(req.params.id)))
 * @packageDocumentation
 *
 * @module cachette/express
 */
import type { IncomingMessage } from 'node:http'
import type { Timeout } from '../../core/duration.js'
import { VIEW_SLOT } from '../../core/slot.js'
import {
  assertCachedProvider,
  type CachedProvider,
  setResponseTimeout,
} from '../../core/view/index.js'
import { type CachedMiddleware, type CachedOptions, createCachedMiddleware } from './middleware.js'

export type {
  CachedProvider,
  QueryArgs,
  QueryValue,
  StoredView,
  ViewCacheOptions,
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
export type {
  CachedMiddleware,
  CachedOptions,
  DeleteCachedTarget,
  NextFunction,
  ViewKeyArgs,
} from './middleware.js'

/**
 * Express/Connect middleware caching the route's whole response; the same as
 * `cache.cached(options)`. Options are checked now: an unknown option or a bad
 * value throws a TypeError naming it.
 *
 * @example
 * app.get('/search', cached(cache, { queryString: true, timeout: 60 }), search)
 */
export function cached<Req extends IncomingMessage = IncomingMessage>(
  cache: CachedProvider,
  options?: CachedOptions<Req>,
): CachedMiddleware {
  assertCachedProvider(cache, 'cachette/express: cached(cache, options)')
  return createCachedMiddleware<Req>(() => cache[VIEW_SLOT](), options)
}

/**
 * Sets how long the response being built is cached, overriding the route's
 * `timeout` (Flask-Caching's `CachedResponse(response, timeout)`). Call it
 * from the handler before the response ends. `undefined` or `0` falls back to
 * the route's timeout, as in Flask-Caching; the route's `cacheStatuses`,
 * `responseFilter` and the other rules still decide whether it is stored.
 *
 * @param res - the response object (Express `res` or `node:http` `ServerResponse`)
 * @param timeout - seconds or a duration string (`'30s'`, `'1h'`)
 *
 * @example
 * app.get('/feed', cache.cached({ timeout: '1h' }), async (req, res) => {
 *   const feed = await loadFeed()
 *   setCacheTimeout(res, feed.isLive ? 10 : '1h')
 *   res.json(feed)
 * })
 */
export function setCacheTimeout(res: object, timeout: Timeout | undefined): void {
  setResponseTimeout(res, timeout)
}
