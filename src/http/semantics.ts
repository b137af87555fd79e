/**
 * RFC 9111 (caching) and RFC 9110 (conditional requests) as pure functions:
 * storability, freshness, age, and precondition evaluation. Every function
 * takes lower-case header bags and never throws on malformed headers.
 */
import {
  type Directives,
  deltaSeconds,
  type HeaderBag,
  headerValue,
  parseAge,
  parseCacheControl,
  parseETag,
  parseETagList,
  parseHttpDate,
  parseVary,
  strongMatch,
  weakMatch,
} from './headers.js'
import { targetedDirectives } from './targeted.js'

/** A request as the cache sees it. */
export interface RequestInfo {
  method: string
  headers: HeaderBag
}

/** A response as the cache sees it. */
export interface ResponseInfo {
  status: number
  headers: HeaderBag
}

/**
 * Status codes whose semantics this cache understands, for `must-understand`
 * (RFC 9111 §5.2.2.3): a response with that directive is stored only with
 * one of these (206 and 304 are never stored: see {@link storableStatus}).
 */
export const UNDERSTOOD_STATUSES: ReadonlySet<number> = new Set([
  200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 501,
])

/**
 * Whether a response of `status` may be stored at all (RFC 9111 §3): any
 * final status (200 to 599) but 206, whose parts this cache does not
 * combine, and 304, which only updates a stored response. Whether it is
 * stored still depends on its freshness: explicit for any status, heuristic
 * only for {@link HEURISTIC_STATUSES}.
 */
export function storableStatus(status: number): boolean {
  return (
    Number.isInteger(status) && status >= 200 && status <= 599 && status !== 206 && status !== 304
  )
}

/** Heuristically cacheable status codes (RFC 9110 §15.1), less 206 (no range support). */
export const HEURISTIC_STATUSES: ReadonlySet<number> = new Set([
  200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501,
])

/** Options of the shared-cache rules. */
export interface CacheRules {
  /** A shared cache (true: `private`, `s-maxage`, Authorization rules apply). @default true */
  shared?: boolean
  /**
   * Heuristic freshness (RFC 9111 §4.2.2) for responses with `Last-Modified`
   * but no explicit freshness: this fraction of the time since it was last
   * modified, at most `heuristicMax` seconds. `0` turns it off.
   * @default 0.1
   */
  heuristicFraction?: number
  /** Cap of heuristic freshness, seconds. @default 86400 */
  heuristicMax?: number
  /**
   * The targeted cache-control fields this cache obeys (RFC 9213), most
   * specific first (`['ExampleCDN-Cache-Control', 'CDN-Cache-Control']`):
   * the first one a response carries with a valid value replaces its
   * `Cache-Control` and `Expires`. `HttpCache` defaults to
   * `['CDN-Cache-Control']`; these functions to none.
   */
  targetedFields?: readonly string[]
}

/** The directives a response's caching is decided by. */
export interface ResponseDirectives {
  directives: Directives
  /** Whether they come from a targeted field (RFC 9213), so `Expires` does not count. */
  targeted: boolean
}

/**
 * The directives that govern `res` in this cache (RFC 9213 §2.2): those of
 * the first field of `rules.targetedFields` it carries with a valid,
 * non-empty value, else its `Cache-Control`.
 */
export function responseDirectives(res: ResponseInfo, rules: CacheRules = {}): ResponseDirectives {
  const fields = rules.targetedFields
  const targeted =
    fields === undefined || fields.length === 0
      ? undefined
      : targetedDirectives(res.headers, fields)
  return targeted === undefined
    ? { directives: parseCacheControl(headerValue(res.headers, 'cache-control')), targeted: false }
    : { directives: targeted, targeted: true }
}

/** The response's `Expires`, unless a targeted field governs it (RFC 9213 §2.2: then it is ignored). */
function expiresOf(res: ResponseInfo, governing: ResponseDirectives): string | undefined {
  return governing.targeted ? undefined : headerValue(res.headers, 'expires')
}

/** Why a response is not stored, or `undefined` when it may be. */
export function whyNotStorable(
  req: RequestInfo,
  res: ResponseInfo,
  rules: CacheRules = {},
): string | undefined {
  const shared = rules.shared ?? true
  if (req.method !== 'GET') return 'only GET responses are stored'
  const reqCc = parseCacheControl(headerValue(req.headers, 'cache-control'))
  if (reqCc.has('no-store')) return 'request no-store (RFC 9111 §5.2.1.5)'
  const governing = responseDirectives(res, rules)
  const cc = governing.directives
  if (cc.has('must-understand')) {
    if (!UNDERSTOOD_STATUSES.has(res.status))
      return 'must-understand with a status this cache does not understand (§5.2.2.3)'
  } else if (cc.has('no-store')) return 'response no-store (§5.2.2.5)'
  if (!storableStatus(res.status)) return `status ${res.status} is not stored`
  if (shared && cc.get('private') === true) return 'private (§5.2.2.7)'
  if (
    shared &&
    governing.targeted &&
    parseCacheControl(headerValue(res.headers, 'cache-control')).get('private') === true
  ) {
    // RFC 9213 lets the targeted field override it; but `private` says whose the page is.
    return "Cache-Control: private under a targeted field (a cachette choice: a shared cache would hand one user's page to others)"
  }
  if (parseVary(headerValue(res.headers, 'vary'))[0] === '*') return 'Vary: * (§4.1)'
  const explicitShared = cc.has('public') || deltaSeconds(cc.get('s-maxage')) !== undefined
  if (shared && headerValue(req.headers, 'authorization') !== undefined) {
    if (!explicitShared && !cc.has('must-revalidate')) {
      return 'Authorization without public, s-maxage or must-revalidate (§3.5)'
    }
  }
  if (shared && headerValue(res.headers, 'set-cookie') !== undefined && !explicitShared) {
    return "Set-Cookie without public or s-maxage (a shared cache would hand one user's cookie to others)"
  }
  const hasFreshness =
    expiresOf(res, governing) !== undefined ||
    deltaSeconds(cc.get('max-age')) !== undefined ||
    cc.has('public') ||
    (shared && deltaSeconds(cc.get('s-maxage')) !== undefined) ||
    (HEURISTIC_STATUSES.has(res.status) && (cc.has('no-cache') || heuristicApplies(res, rules)))
  if (!hasFreshness) return 'no explicit freshness and no validator for heuristic freshness (§3)'
  return undefined
}

function heuristicApplies(res: ResponseInfo, rules: CacheRules): boolean {
  return (
    (rules.heuristicFraction ?? 0.1) > 0 &&
    parseHttpDate(headerValue(res.headers, 'last-modified')) !== undefined
  )
}

/**
 * The freshness lifetime in seconds (RFC 9111 §4.2.1): `s-maxage` (shared),
 * else `max-age`, else `Expires − Date` (an invalid `Expires` means already
 * expired), else heuristic, else 0. `no-cache` makes it 0. A targeted field
 * (`rules.targetedFields`) replaces `Cache-Control` and `Expires`.
 */
export function freshnessLifetime(
  res: ResponseInfo,
  responseTime: number,
  rules: CacheRules = {},
): number {
  const shared = rules.shared ?? true
  const governing = responseDirectives(res, rules)
  const cc = governing.directives
  if (cc.get('no-cache') === true) return 0
  // An invalid s-maxage makes the response stale in a shared cache (§4.2.1).
  if (shared && cc.has('s-maxage')) return deltaSeconds(cc.get('s-maxage')) ?? 0
  const maxAge = deltaSeconds(cc.get('max-age'))
  if (maxAge !== undefined) return maxAge
  // A max-age present but invalid: treated as stale (conservative).
  if (cc.has('max-age')) return 0
  const expiresRaw = expiresOf(res, governing)
  if (expiresRaw !== undefined) {
    const expires = parseHttpDate(expiresRaw)
    if (expires === undefined) return 0
    const date = parseHttpDate(headerValue(res.headers, 'date')) ?? responseTime
    return Math.max(0, Math.floor((expires - date) / 1000))
  }
  if (HEURISTIC_STATUSES.has(res.status)) {
    const fraction = rules.heuristicFraction ?? 0.1
    const lastModified = parseHttpDate(headerValue(res.headers, 'last-modified'))
    if (fraction > 0 && lastModified !== undefined) {
      const date = parseHttpDate(headerValue(res.headers, 'date')) ?? responseTime
      const since = Math.max(0, (date - lastModified) / 1000)
      return Math.min(rules.heuristicMax ?? 86400, Math.floor(since * fraction))
    }
  }
  return 0
}

/**
 * The age a stored response had when it was received (RFC 9111 §4.2.3):
 * `corrected_initial_age`, in seconds. An invalid `Age` is ignored.
 */
export function initialAge(res: ResponseInfo, requestTime: number, responseTime: number): number {
  const ageValue = parseAge(headerValue(res.headers, 'age')) ?? 0
  const date = parseHttpDate(headerValue(res.headers, 'date'))
  const apparentAge = date === undefined ? 0 : Math.max(0, (responseTime - date) / 1000)
  const responseDelay = Math.max(0, (responseTime - requestTime) / 1000)
  return Math.max(apparentAge, ageValue + responseDelay)
}

/** The current age in whole seconds: the initial age plus the time since it was received. */
export function currentAge(initial: number, responseTime: number, now: number): number {
  return Math.floor(initial + Math.max(0, (now - responseTime) / 1000))
}

/** What the request's own Cache-Control allows (RFC 9111 §5.2.1). */
export interface RequestControls {
  noCache: boolean
  noStore: boolean
  onlyIfCached: boolean
  maxAge?: number
  maxStale?: number
  minFresh?: number
}

/** Reads the request's Cache-Control (and `Pragma: no-cache` when there is no Cache-Control). */
export function requestControls(req: RequestInfo): RequestControls {
  const raw = headerValue(req.headers, 'cache-control')
  const cc = parseCacheControl(raw)
  const pragmaNoCache =
    raw === undefined && /(^|,)\s*no-cache\s*(,|$)/i.test(headerValue(req.headers, 'pragma') ?? '')
  const maxStale = cc.get('max-stale')
  return {
    noCache: cc.has('no-cache') || pragmaNoCache,
    noStore: cc.has('no-store'),
    onlyIfCached: cc.has('only-if-cached'),
    maxAge: deltaSeconds(cc.get('max-age')),
    // A bare max-stale accepts any staleness.
    maxStale: maxStale === true ? Number.POSITIVE_INFINITY : deltaSeconds(maxStale),
    minFresh: deltaSeconds(cc.get('min-fresh')),
  }
}

/** The response directives that limit serving it stale. */
export interface StaleRules {
  /** `must-revalidate`, or `proxy-revalidate`/`s-maxage` in a shared cache: never served stale. */
  mustRevalidate: boolean
  /** `no-cache`: always revalidated. */
  noCache: boolean
  staleWhileRevalidate?: number
  staleIfError?: number
}

/**
 * Reads the stored response's directives about staleness. `rules`: whether
 * the cache is shared (a boolean, as before), or its {@link CacheRules}.
 */
export function staleRules(res: ResponseInfo, rules: boolean | CacheRules = true): StaleRules {
  const options = typeof rules === 'boolean' ? { shared: rules } : rules
  const shared = options.shared ?? true
  const cc = responseDirectives(res, options).directives
  return {
    mustRevalidate:
      cc.has('must-revalidate') || (shared && (cc.has('proxy-revalidate') || cc.has('s-maxage'))),
    noCache: cc.get('no-cache') === true,
    staleWhileRevalidate: deltaSeconds(cc.get('stale-while-revalidate')),
    staleIfError: deltaSeconds(cc.get('stale-if-error')),
  }
}

/** The outcome of evaluating preconditions (RFC 9110 §13.2.2). */
export type PreconditionResult = 'proceed' | 'not-modified' | 'failed'

/** The selected representation's validators, for precondition evaluation. */
export interface Validators {
  etag?: string
  lastModified?: number
  /**
   * For a stored response without `Last-Modified`: its `Date`, or when it was
   * received (ms). `If-Modified-Since` is then evaluated against it
   * (RFC 9111 §4.3.2); `If-Unmodified-Since` never is.
   */
  date?: number
}

/**
 * Evaluates the request's preconditions against the current representation,
 * in RFC 9110 §13.2.2's order: `If-Match`, else `If-Unmodified-Since`; then
 * `If-None-Match`, else (GET/HEAD) `If-Modified-Since`. `failed` means 412;
 * `not-modified` means 304 for GET/HEAD (and 412 for other methods, as the
 * RFC says for If-None-Match). Preconditions are only evaluated when the
 * response would otherwise be 2xx (or 412); callers check that.
 */
export function evaluatePreconditions(req: RequestInfo, current: Validators): PreconditionResult {
  const method = req.method
  const safe = method === 'GET' || method === 'HEAD'
  const etag = parseETag(current.etag)
  // Whole seconds: an HTTP-date has no finer precision.
  const lastModified =
    current.lastModified === undefined ? undefined : Math.floor(current.lastModified / 1000) * 1000
  // Branch on presence, not on the parse: a malformed If-Match is a false condition (§13.1.1).
  const ifMatchRaw = headerValue(req.headers, 'if-match')
  if (ifMatchRaw !== undefined) {
    const ifMatch = parseETagList(ifMatchRaw)
    const ok =
      ifMatch === '*' ||
      (ifMatch !== undefined && etag !== undefined && ifMatch.some((t) => strongMatch(t, etag)))
    if (!ok) return 'failed'
  } else {
    const ius = parseHttpDate(headerValue(req.headers, 'if-unmodified-since'))
    if (ius !== undefined && lastModified !== undefined && lastModified > ius) return 'failed'
  }
  // A present If-None-Match, even malformed, means If-Modified-Since is ignored (§13.1.3).
  const ifNoneMatchRaw = headerValue(req.headers, 'if-none-match')
  if (ifNoneMatchRaw !== undefined) {
    const ifNoneMatch = parseETagList(ifNoneMatchRaw)
    const matched =
      ifNoneMatch === '*' ||
      (ifNoneMatch !== undefined &&
        etag !== undefined &&
        ifNoneMatch.some((t) => weakMatch(t, etag)))
    if (matched) return safe ? 'not-modified' : 'failed'
    return 'proceed'
  }
  if (safe) {
    const ims = parseHttpDate(headerValue(req.headers, 'if-modified-since'))
    const modified =
      lastModified ??
      (current.date === undefined ? undefined : Math.floor(current.date / 1000) * 1000)
    if (ims !== undefined && modified !== undefined && modified <= ims) return 'not-modified'
  }
  return 'proceed'
}

/**
 * The header fields a 304 carries (RFC 9110 §15.4.5): those a 200 would have
 * sent among Cache-Control, Content-Location, Date, ETag, Expires and Vary,
 * plus Last-Modified and Age (allowed, and useful to caches downstream).
 */
export function notModifiedHeaders(headers: HeaderBag): HeaderBag {
  const out: HeaderBag = {}
  for (const name of [
    'cache-control',
    'content-location',
    'date',
    'etag',
    'expires',
    'vary',
    'last-modified',
    'age',
  ]) {
    const v = headers[name]
    if (v !== undefined) out[name] = v
  }
  return out
}
