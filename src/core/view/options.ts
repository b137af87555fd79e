/**
 * Checking what `cached()` is given, once, when the middleware is created:
 * its options (names, types, timeouts; {@link validateViewOptions}) and its
 * cache ({@link assertCachedProvider}); the options' defaults; and a
 * response's own timeout (`setCacheTimeout`), which overrides the route's.
 */
import { parseTimeout, type Timeout } from '../duration.js'
import { checkTags, policyOf } from '../getorset.js'
import { resolveHashMethod } from '../hash.js'
import { isToken } from '../headers.js'
import { VIEW_SLOT } from '../slot.js'
import type { CachedProvider, ViewCacheOptions } from './types.js'

/** `maxBodySize` by default: 8 MiB. */
export const DEFAULT_MAX_BODY_SIZE = 8 * 1024 * 1024

/** The default `keyPrefix` (Flask-Caching's `'view/%s'`). */
export const DEFAULT_VIEW_KEY_PREFIX = 'view/%s'

/** The default hit header name (Flask-Caching's `hit_cache`). */
export const HIT_HEADER = 'hit_cache'

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
  'invalidateOnUnsafe',
  'maxBodySize',
  'grace',
  'graceBackoff',
  'tags',
  'lock',
  'name',
])

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

/** Whether a status is stored by default: 2xx except 206. */
export function isDefaultCacheableStatus(status: number): boolean {
  return status >= 200 && status < 300 && status !== 206
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
  for (const k of [
    'queryString',
    'cacheNone',
    'sourceCheck',
    'allowAuthorized',
    'invalidateOnUnsafe',
  ] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') fail(what, `${k} must be a boolean`)
  }
  const kp = o.keyPrefix
  if (kp !== undefined && typeof kp !== 'function' && (typeof kp !== 'string' || kp === '')) {
    fail(what, 'keyPrefix must be a non-empty string or a function')
  }
  const hit = o.responseHitIndication
  if (hit !== undefined && typeof hit !== 'boolean' && !(typeof hit === 'string' && isToken(hit))) {
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
    !(Array.isArray(vh) && vh.every((h) => typeof h === 'string' && isToken(h)))
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
 * Checks that `cache`, what an adapter's `cached()` was given, is a
 * cachette `Cache` (see {@link CachedProvider}), else throws a TypeError:
 * `<what> needs a cachette Cache <where>, got <what it got>`. The one check
 * of every adapter.
 *
 * @param what - the call, as errors name it (`cachette/koa: cached(cache, options)`)
 * @param where - where the Cache was expected
 */
export function assertCachedProvider(
  cache: unknown,
  what: string,
  where = 'as its first argument',
): asserts cache is CachedProvider {
  if (
    (typeof cache === 'object' || typeof cache === 'function') &&
    cache !== null &&
    typeof (cache as { [VIEW_SLOT]?: unknown })[VIEW_SLOT] === 'function'
  ) {
    return
  }
  throw new TypeError(`${what} needs a cachette Cache ${where}, got ${kindOf(cache)}`)
}

/** What a wrong argument is, for messages: `null`, its `typeof`, or its class's name. */
function kindOf(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value !== 'object') return typeof value
  return (value as object).constructor?.name ?? 'object'
}
