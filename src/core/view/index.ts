/**
 * The framework-neutral view-caching engine behind `cache.cached()` and
 * every adapter's `cached()`.
 *
 * An adapter translates its request into a {@link RequestView}, asks
 * {@link ViewCache.lookup} what to do, and either replays the `ViewHit`,
 * runs the handler uncached (`ViewBypass`), or runs the handler while
 * capturing the response and hands the result to {@link ViewCache.store}
 * (`ViewMiss`). Everything that decides *what* is cached, under which key
 * and for how long lives in this folder; the adapter only moves bytes.
 *
 * One job per module: `types.ts` (the public types), `options.ts` (checking
 * what `cached()` is given), `keys.ts` (Flask-Caching's key encoding),
 * `request.ts` (Node framework requests), `negotiation.ts`
 * (`Accept-Encoding`), `vary.ts` (variants of responses that vary),
 * `stored.ts` (what a stored entry is), `read.ts` (reading entries),
 * `renders.ts` (renders in flight), `refresh.ts` (background refresh),
 * `engine.ts` (`ViewCache`), `registry.ts` (`deleteCached`). This entry
 * exports what the rest of cachette uses.
 */
export { createViewCache, ViewCache } from './engine.js'
export { queryPairs, routedTarget } from './keys.js'
export { assertCachedProvider, responseTimeoutOf, setResponseTimeout } from './options.js'
export {
  exposeView,
  invalidationFor,
  registerView,
  unsafeInvalidation,
  viewKeysFor,
} from './registry.js'
export { viewsSettled } from './renders.js'
export { requestViewOf, stubRequestFor } from './request.js'
export { framedBy, safeHeaderPairs, storedBody } from './stored.js'
export type {
  BackgroundRequest,
  CachedMiddleware,
  CachedProvider,
  CapturedResponse,
  DeleteCachedTarget,
  QueryArgs,
  QueryValue,
  RequestView,
  StoredView,
  ViewAttributes,
  ViewCacheOptions,
  ViewHit,
  ViewKeyArgs,
  ViewLookup,
  ViewMiss,
} from './types.js'
