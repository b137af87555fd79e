/**
 * `cachette/http`: framework-neutral HTTP caching. RFC 9111 (caching) and
 * RFC 9110 (conditional requests) as pure functions, the header modifiers
 * behind `cacheFor`/`cacheControl`/`noStore`/`vary`, and `HttpCache`, the
 * shared response cache the framework adapters put in front of an app.
 * The framework middlewares are in `cachette/express`, `cachette/fastify`,
 * `cachette/koa` and `cachette/hono`.
 * @packageDocumentation
 *
 * @module cachette/http
 */
export {
  type CacheControlDirectives,
  cacheControlModifier,
  cacheForModifier,
  type Duration,
  durationSeconds,
  type HeaderModifier,
  type MutableHeaders,
  noStoreModifier,
  varyModifier,
} from './directives.js'
export {
  DELTA_MAX,
  type Directives,
  deltaSeconds,
  type EntityTag,
  formatCacheControl,
  formatHttpDate,
  type HeaderBag,
  headerBag,
  headerValue,
  lowerCaseHeaders,
  parseAge,
  parseCacheControl,
  parseETag,
  parseETagList,
  parseHttpDate,
  parseVary,
  splitList,
  strongMatch,
  weakMatch,
} from './headers.js'
export {
  type ByteRange,
  ifRangeAllows,
  parseRange,
  type RangeValidators,
  rangeAnswer,
} from './range.js'
export {
  type CacheRules,
  currentAge,
  evaluatePreconditions,
  freshnessLifetime,
  HEURISTIC_STATUSES,
  initialAge,
  notModifiedHeaders,
  type PreconditionResult,
  type RequestControls,
  type RequestInfo,
  type ResponseDirectives,
  type ResponseInfo,
  requestControls,
  responseDirectives,
  type StaleRules,
  staleRules,
  storableStatus,
  UNDERSTOOD_STATUSES,
  type Validators,
  whyNotStorable,
} from './semantics.js'
export {
  type CompleteOptions,
  type DeferredCompletion,
  type HeaderList,
  HttpCache,
  type HttpCacheOptions,
  type HttpRequest,
  type HttpResponse,
  type Lookup,
  ORIGIN_REQUEST_DROPS,
  REFRESH_HEADER,
  REFRESH_HOST_HEADER,
  type StoredResponse,
} from './shared-cache.js'
export { parseTargetedField, targetedDirectives } from './targeted.js'
export { bodyETag, checkPreconditions, preconditionFailed, validateResponse } from './validate.js'
export { variantValue } from './vary.js'
