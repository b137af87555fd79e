/**
 * `HttpCache`: an RFC 9111 shared response cache (what a caching reverse
 * proxy does) that stores in any cachette `Cache`, so a Redis-backed cache is
 * shared by every instance of the app. Framework-neutral: adapters turn
 * their request into an {@link HttpRequest}, ask {@link HttpCache.lookup},
 * and either send the returned response or run the app (the origin) and
 * hand its response to {@link HttpCache.complete}.
 *
 * Storage follows flask-webcache: one metadata entry per resource (the
 * `Vary` field names of its latest response and a random salt) and one entry
 * per variant, keyed by the salt, the master salt and the request's values of
 * the `Vary` fields. Purging a resource deletes its metadata, which orphans
 * every variant at once; changing `masterSalt` orphans everything.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { Cache } from '../cache.js'
import { HOP_BY_HOP_HEADERS, repeatedHeaders, requestInBackground } from '../core/background.js'
import { PRECONDITION_HEADERS } from '../core/headers.js'
import { framedBy, safeHeaderPairs, storedBody } from '../core/view/index.js'
import {
  bodyETag,
  type Directives,
  type HeaderBag,
  headerBag,
  headerValue,
  isToken,
  parseCacheControl,
  parseHttpDate,
  parseVary,
  splitList,
} from './headers.js'
import { ifRangeAllows, parseRange, rangeAnswer } from './range.js'
import {
  type CacheRules,
  currentAge,
  evaluatePreconditions,
  freshnessLifetime,
  initialAge,
  notModifiedHeaders,
  requestControls,
  responseDirectives,
  type StaleRules,
  staleRules,
  whyNotStorable,
} from './semantics.js'
import { variantValue } from './vary.js'

/** Header fields as ordered `[name, value]` pairs (names as sent). */
export type HeaderList = [string, string][]

/**
 * Fields a shared cache never stores, even on a response it may store: a
 * `Set-Cookie` on a `public` or `s-maxage` response was meant for the client
 * that got it (its session), and replaying it would hand that session to the
 * next client, as Varnish and CDNs also refuse to. That client still gets it.
 */
const PER_CLIENT_FIELDS: readonly string[] = ['set-cookie']

/** A request as adapters describe it. Header names lower-case. */
export interface HttpRequest {
  method: string
  /** Path and query, as received (`/a?b=1`). */
  url: string
  /** The `Host` (authority) the request was sent to. */
  host: string
  headers: HeaderBag
}

/** A response to send, or one the origin sent. `body` undefined: none (HEAD, 304) or not captured. */
export interface HttpResponse {
  status: number
  headers: HeaderList
  body: Buffer | undefined
}

/** A stored response. */
export interface StoredResponse {
  status: number
  headers: HeaderList
  body: Buffer
  /** When the request that produced it was sent / its response received (ms). */
  requestTime: number
  responseTime: number
  /** RFC 9111 §4.2.3 `corrected_initial_age`, seconds. */
  initialAge: number
  /**
   * Its freshness lifetime (seconds) and staleness rules, computed once when
   * stored so a hit parses no headers. Absent on entries from older versions.
   */
  lifetime?: number
  stale?: StaleRules
}

interface Metadata {
  salt: string
  vary: string[]
}

/** The most `Vary` field names a resource's metadata may list; more is not a metadata entry. */
const MAX_VARY_FIELDS = 64

/** Whether `n` is a finite number, at least `min`. */
function finiteAtLeast(n: unknown, min: number): n is number {
  return typeof n === 'number' && Number.isFinite(n) && n >= min
}

/**
 * A metadata entry read back, checked: a salt string and a short dense list
 * of field names. A planted `vary` of a billion holes would otherwise be
 * walked on every request.
 */
function asMetadata(value: unknown): Metadata | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const { salt, vary } = value as { salt?: unknown; vary?: unknown }
  if (typeof salt !== 'string' || salt.length === 0 || salt.length > 128) return undefined
  if (!Array.isArray(vary) || vary.length > MAX_VARY_FIELDS) return undefined
  for (let i = 0; i < vary.length; i++) {
    const name: unknown = vary[i]
    if (typeof name !== 'string' || (name !== '*' && !isToken(name))) return undefined
  }
  return { salt, vary: vary as string[] }
}

/**
 * A stored response read back, checked before anything of it is sent: the
 * status an integer from 200 to 599, header names tokens and values free of
 * CR, LF and NUL (bounded and dense), the body bytes within `maxBody`, its
 * `Content-Length` (if any) equal to the body's length, and the times finite.
 */
function asStoredResponse(value: unknown, maxBody: number): StoredResponse | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const v = value as Record<string, unknown>
  const status = v.status
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599) {
    return undefined
  }
  if (!safeHeaderPairs(v.headers)) return undefined
  const body = storedBody(v.body, maxBody)
  if (body === undefined || !framedBy(v.headers, body.length)) return undefined
  if (
    !finiteAtLeast(v.requestTime, 0) ||
    !finiteAtLeast(v.responseTime, 0) ||
    !finiteAtLeast(v.initialAge, 0)
  ) {
    return undefined
  }
  const out: StoredResponse = {
    status,
    headers: v.headers,
    body,
    requestTime: v.requestTime,
    responseTime: v.responseTime,
    initialAge: v.initialAge,
  }
  if (v.lifetime !== undefined || v.stale !== undefined) {
    const stale = v.stale as Partial<StaleRules> | null
    if (
      !finiteAtLeast(v.lifetime, 0) ||
      typeof stale !== 'object' ||
      stale === null ||
      typeof stale.mustRevalidate !== 'boolean' ||
      typeof stale.noCache !== 'boolean' ||
      (stale.staleWhileRevalidate !== undefined && !finiteAtLeast(stale.staleWhileRevalidate, 0)) ||
      (stale.staleIfError !== undefined && !finiteAtLeast(stale.staleIfError, 0))
    ) {
      return undefined
    }
    out.lifetime = v.lifetime
    out.stale = {
      mustRevalidate: stale.mustRevalidate,
      noCache: stale.noCache,
      ...(stale.staleWhileRevalidate === undefined
        ? {}
        : { staleWhileRevalidate: stale.staleWhileRevalidate }),
      ...(stale.staleIfError === undefined ? {} : { staleIfError: stale.staleIfError }),
    }
  }
  return out
}

/** Framing headers: a response's own are recomputed from its body when it is sent from the cache. */
const FRAMING = ['content-length', 'transfer-encoding']

/**
 * The request header fields a miss or a revalidation does not forward to the
 * origin: the client's preconditions (the cache answers them, and a
 * revalidation sends the stored validators instead) and its `Range` (the
 * cache asks for the whole representation, stores it, and answers the range
 * from it, as Varnish does).
 */
export const ORIGIN_REQUEST_DROPS: readonly string[] = [
  ...PRECONDITION_HEADERS,
  'if-range',
  'range',
]

/** What the cache decided for a request. */
export type Lookup =
  /** Not for the cache (unsafe method, exempt path...): run the origin, then call `complete`. */
  | { kind: 'pass' }
  /**
   * Nothing usable stored: run the origin without the request fields `drop`
   * names, then call `complete`.
   */
  | { kind: 'miss'; drop: readonly string[] }
  /** Send `response`. `refresh`: revalidate in the background (stale-while-revalidate). */
  | { kind: 'hit'; response: HttpResponse; refresh: boolean }
  /**
   * A stored response needs revalidation: run the origin without the request
   * fields `drop` names and with `headers` (conditional headers from the
   * validators the origin issued) added, then call `complete`.
   */
  | {
      kind: 'revalidate'
      drop: readonly string[]
      headers: Record<string, string>
      stored: StoredResponse
    }
  /** `only-if-cached` and nothing usable: send 504. */
  | { kind: 'gateway-timeout'; response: HttpResponse }

/** Options of {@link HttpCache.complete} and {@link HttpCache.completeDeferred}. */
export interface CompleteOptions {
  /**
   * The headers that middleware in front of the cache set on this response
   * (an auth layer's `Cache-Control: private`, a session's `Set-Cookie`,
   * CORS): never stored, but any of them vetoes storage as the response's
   * own would, and their `Vary` names select the variant.
   */
  outer?: HeaderList
}

/** What {@link HttpCache.completeDeferred} decided for a response. */
export interface DeferredCompletion {
  /** What to send the client now (`undefined`: the origin failed and nothing stale answers). */
  readonly response: HttpResponse | undefined
  /** Whether {@link DeferredCompletion.commit} may store anything (else it resolves `false` at once). */
  readonly pending: boolean
  /**
   * Stores the response, once it has gone out: `sent` is every header it
   * carried as it left (outer middleware's, those added as its head was
   * written or after the cache returned); any of them vetoes storage as the
   * response's own would, and their `Vary` names select the variant. Without
   * `sent`, the headers known when it was decided. Only the first call
   * stores. Resolves whether it stored.
   */
  commit(sent?: HeaderList): Promise<boolean>
}

/** A response that may be stored once the headers it went out with are known. */
interface Candidate {
  entry: StoredResponse
  /** The headers evaluated so far: the entry's own, with the outer middleware's under them. */
  evaluated: HeaderList
}

/** Options of {@link HttpCache}. */
export interface HttpCacheOptions extends CacheRules {
  /** Where responses are stored: any cachette `Cache`. */
  cache: Cache
  /** Path prefixes never served from or stored in the cache (`['/static/']`). */
  resourceExemptions?: readonly string[]
  /** Mixed into every key: changing it empties the cache (flask-webcache's `master_salt`). @default '' */
  masterSalt?: string
  /**
   * Honour the request's `Cache-Control` and `Pragma` (`no-cache`,
   * `max-age`, `max-stale`, `min-fresh`, `only-if-cached`, `no-store`).
   * `false` ignores them, which is not RFC-compliant but keeps clients from
   * bypassing the cache. @default true
   */
  requestControlsCache?: boolean
  /** The hit/miss indicator header, `false` for none. @default 'X-Cache' */
  hitHeader?: string | false
  /** The largest body stored, bytes. @default 5 MiB */
  maxBodyBytes?: number
  /** Key prefix in the `Cache`. @default 'http:' */
  keyPrefix?: string
  /** The clock (ms), for tests. @default Date.now */
  clock?: () => number
  /**
   * The targeted cache-control fields obeyed (RFC 9213), most specific first:
   * the first one a response carries with a valid value replaces its
   * `Cache-Control` and `Expires` here (`private`, `no-cache`, `no-store`
   * included). `[]` obeys none. @default ['CDN-Cache-Control']
   */
  targetedFields?: readonly string[]
  /**
   * Whether responses leave with the {@link HttpCacheOptions.targetedFields}
   * they carry. `false` removes them (they were for this cache, not for the
   * caches downstream). @default true
   */
  forwardTargetedFields?: boolean
  /**
   * How `Accept-Language` and `Accept-Encoding` values select a `Vary`
   * variant. Both are always compared case-insensitively, ignoring
   * whitespace, repeated members and the order of members of different
   * weights. `'significant'`: members of the same weight in another order
   * are another variant, because negotiation libraries (Express's
   * `req.acceptsLanguages()`, Koa's `ctx.acceptsLanguages()`) prefer the
   * earlier one. `'ignored'`: they share a variant (`en, fr` and `fr,EN`),
   * for apps whose choice does not depend on that order.
   * @default 'significant'
   */
  acceptOrder?: 'significant' | 'ignored'
  /**
   * Store a POST response for later GETs of the same URI when it has
   * explicit freshness (`max-age`, `s-maxage`, `Expires`) and a
   * `Content-Location` equal to the request's URI (RFC 9111 §4, RFC 9110
   * §9.3.3), under the same rules as a GET's (no `private`, no `Set-Cookie`
   * without `public`/`s-maxage`...). @default false
   */
  storePostResponses?: boolean
}

function hashHex(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

/** The request header that marks a background refresh; its value is the cache's secret token. */
export const REFRESH_HEADER = 'x-cachette-refresh'
/** With {@link REFRESH_HEADER}: the `Host` of the request being refreshed (fetch cannot set `Host`). */
export const REFRESH_HOST_HEADER = 'x-cachette-refresh-host'

/** Whether a request carries any precondition (most hits do not: no work for them). */
function hasConditionals(headers: HeaderBag): boolean {
  return PRECONDITION_HEADERS.some((name) => headers[name] !== undefined)
}

function without(headers: HeaderList, names: ReadonlySet<string>): HeaderList {
  return headers.filter(([n]) => !names.has(n.toLowerCase()))
}

/** Field names a directive qualifies (`no-cache="Set-Cookie, X-Foo"`). */
function qualifiedFields(cc: Directives, name: string): string[] {
  const v = cc.get(name)
  return typeof v === 'string' ? splitList(v).map((s) => s.toLowerCase()) : []
}

/** The shared response cache. */
export class HttpCache {
  readonly #cache: Cache
  readonly #rules: CacheRules
  readonly #exemptions: readonly string[]
  readonly #masterSalt: string
  readonly #requestControls: boolean
  readonly #hitHeader: string | false
  /** {@link HttpCache.#hitHeader} lower-cased, for matching names. */
  readonly #hitName: string | undefined
  /** The stored fields a hit never repeats: recomputed (`Age`, framing) or its own (the hit header). */
  readonly #servedOver: ReadonlySet<string>
  readonly #maxBody: number
  readonly #prefix: string
  readonly #now: () => number
  /** The targeted fields taken off what is sent (lower-case), when they are not forwarded. */
  readonly #unforwarded: ReadonlySet<string>
  readonly #acceptOrder: 'significant' | 'ignored'
  readonly #storePost: boolean
  /** The secret a background refresh request carries, so clients cannot force misses. */
  readonly refreshToken = randomBytes(16).toString('hex')

  constructor(options: HttpCacheOptions) {
    this.#cache = options.cache
    const targeted = (options.targetedFields ?? ['CDN-Cache-Control']).map((n) => n.toLowerCase())
    this.#rules = {
      shared: options.shared ?? true,
      heuristicFraction: options.heuristicFraction,
      heuristicMax: options.heuristicMax,
      targetedFields: targeted,
    }
    this.#unforwarded = new Set(options.forwardTargetedFields === false ? targeted : [])
    this.#acceptOrder = options.acceptOrder ?? 'significant'
    this.#storePost = options.storePostResponses ?? false
    this.#exemptions = [...(options.resourceExemptions ?? [])]
    this.#masterSalt = options.masterSalt ?? ''
    this.#requestControls = options.requestControlsCache ?? true
    this.#hitHeader = options.hitHeader === undefined ? 'X-Cache' : options.hitHeader
    this.#hitName = this.#hitHeader ? this.#hitHeader.toLowerCase() : undefined
    this.#servedOver = new Set([
      'age',
      ...FRAMING,
      ...(this.#hitName ? [this.#hitName] : []),
      ...this.#unforwarded,
    ])
    this.#maxBody = options.maxBodyBytes ?? 5 << 20
    this.#prefix = options.keyPrefix ?? 'http:'
    this.#now = options.clock ?? Date.now
  }

  /** The largest body stored; adapters stop buffering past it. */
  get maxBodyBytes(): number {
    return this.#maxBody
  }

  /** The current time (ms), from the configured clock. */
  now(): number {
    return this.#now()
  }

  #resource(host: string, url: string): string {
    return `${host}${url}`
  }

  #metaKey(resource: string): string {
    return `${this.#prefix}m:${hashHex(`${this.#masterSalt}\u0000${resource}`)}`
  }

  #variantKey(resource: string, meta: Metadata, headers: HeaderBag): string {
    const values = meta.vary.map(
      (name) =>
        `${name}\u0001${variantValue(name, headerValue(headers, name), this.#acceptOrder) ?? '\u0002'}`,
    )
    return `${this.#prefix}r:${hashHex(`${this.#masterSalt}\u0000${resource}\u0000${meta.salt}\u0000${values.join('\u0000')}`)}`
  }

  /**
   * The metadata entry at `key`, validated: anything else there (planted,
   * corrupted, another version's) is a miss, and deleted.
   */
  async #readMeta(key: string): Promise<Metadata | undefined> {
    const value = await this.#cache.get(key)
    if (value === undefined) return undefined
    const meta = asMetadata(value)
    if (meta === undefined) await this.#drop(key)
    return meta
  }

  /** The stored response at `key`, validated as {@link HttpCache.#readMeta} validates metadata. */
  async #readStored(key: string): Promise<StoredResponse | undefined> {
    const value = await this.#cache.get(key)
    if (value === undefined) return undefined
    const stored = asStoredResponse(value, this.#maxBody)
    if (stored === undefined) await this.#drop(key)
    return stored
  }

  /** Deletes an invalid entry; a failure to do so leaves it a miss. */
  async #drop(key: string): Promise<void> {
    try {
      await this.#cache.delete(key)
    } catch {
      // Still a miss on every read.
    }
  }

  #exempt(url: string): boolean {
    return this.#exemptions.some((prefix) => url.startsWith(prefix))
  }

  /** Decides how to answer `req`. Never throws: a failing store is a miss. */
  async lookup(req: HttpRequest): Promise<Lookup> {
    if (req.method === 'POST' && this.#storePost && !this.#exempt(req.url)) {
      // The origin answers it as any POST (its preconditions included); its response may be kept.
      return { kind: 'miss', drop: [] }
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return { kind: 'pass' }
    if (this.#exempt(req.url)) return { kind: 'pass' }
    if (headerValue(req.headers, REFRESH_HEADER) === this.refreshToken) {
      // A background refresh: store under the host the original request named.
      req.host = headerValue(req.headers, REFRESH_HOST_HEADER) ?? req.host
      return { kind: 'miss', drop: ORIGIN_REQUEST_DROPS }
    }
    const controls = this.#requestControls ? requestControls(req) : undefined
    const resource = this.#resource(req.host, req.url)
    const meta = await this.#readMeta(this.#metaKey(resource))
    const stored =
      meta === undefined
        ? undefined
        : await this.#readStored(this.#variantKey(resource, meta, req.headers))
    if (stored === undefined) {
      if (controls?.onlyIfCached)
        return { kind: 'gateway-timeout', response: this.#gatewayTimeout() }
      return { kind: 'miss', drop: ORIGIN_REQUEST_DROPS }
    }
    const now = this.#now()
    const age = currentAge(stored.initialAge, stored.responseTime, now)
    const { lifetime, rules } = this.#freshnessOf(stored)
    const staleness = age - lifetime
    const fresh = staleness < 0
    let usable = fresh && !rules.noCache
    if (controls !== undefined) {
      if (controls.noCache) usable = false
      if (controls.maxAge !== undefined && age > controls.maxAge) usable = false
      if (controls.minFresh !== undefined && lifetime - age < controls.minFresh) usable = false
      if (
        !fresh &&
        !rules.noCache &&
        !rules.mustRevalidate &&
        controls.maxStale !== undefined &&
        staleness <= controls.maxStale &&
        !controls.noCache
      ) {
        usable = true
      }
    }
    if (usable) return { kind: 'hit', response: this.#serve(req, stored, age), refresh: false }
    const swr = rules.staleWhileRevalidate
    if (
      !fresh &&
      !rules.mustRevalidate &&
      !rules.noCache &&
      !controls?.noCache &&
      swr !== undefined &&
      staleness <= swr
    ) {
      return { kind: 'hit', response: this.#serve(req, stored, age), refresh: true }
    }
    if (controls?.onlyIfCached) return { kind: 'gateway-timeout', response: this.#gatewayTimeout() }
    return {
      kind: 'revalidate',
      drop: ORIGIN_REQUEST_DROPS,
      headers: this.#conditionalHeaders(stored),
      stored,
    }
  }

  #gatewayTimeout(): HttpResponse {
    return { status: 504, headers: [['Content-Length', '0']], body: Buffer.alloc(0) }
  }

  /**
   * The validators the origin issued for a stored response, as conditional
   * request headers (RFC 9111 §4.3.1). An ETag that is the body's own hash,
   * as `validation()` makes, is this side's: the origin never issued it and
   * cannot match it, and a 304 for it made on this side would keep the
   * stored headers when the origin has new ones.
   */
  #conditionalHeaders(stored: StoredResponse): Record<string, string> {
    const bag = headerBag(stored.headers)
    const out: Record<string, string> = {}
    const etag = headerValue(bag, 'etag')
    const lastModified = headerValue(bag, 'last-modified')
    if (etag !== undefined && etag !== bodyETag(stored.body)) out['if-none-match'] = etag
    if (lastModified !== undefined) out['if-modified-since'] = lastModified
    return out
  }

  /**
   * The response for a stored entry: its headers with `Age` and the hit
   * indicator; a 304 when the client's own conditional headers match; the
   * requested range of it (206 or 416); no body for HEAD.
   */
  #serve(req: HttpRequest, stored: StoredResponse, age: number, hit = true): HttpResponse {
    const headers = without(stored.headers, this.#servedOver)
    // The framing is the body's own, whatever was stored.
    if (stored.status !== 204) headers.push(['Content-Length', String(stored.body.length)])
    headers.push(['Age', String(age)])
    if (this.#hitHeader) headers.push([this.#hitHeader, hit ? 'hit' : 'miss'])
    const res = { status: stored.status, headers, body: stored.body }
    return this.#ranged(req, this.#conditional(req, res, stored.responseTime))
  }

  /**
   * The client's range of a complete 200 (RFC 9110 §14): a 206 with
   * `Content-Range`, or a 416 for a range past its end; the whole response
   * for a multi-range or malformed `Range`, an `If-Range` that does not
   * match (§13.1.5), and for methods other than GET (§14.2).
   */
  #ranged(req: HttpRequest, res: HttpResponse): HttpResponse {
    if (req.method !== 'GET' || res.status !== 200 || res.body === undefined) return res
    const range = parseRange(headerValue(req.headers, 'range'), res.body.length)
    if (range === undefined) return res
    const bag = headerBag(res.headers)
    const lastModified = parseHttpDate(headerValue(bag, 'last-modified'))
    const date = parseHttpDate(headerValue(bag, 'date'))
    const validators = {
      etag: headerValue(bag, 'etag'),
      lastModified,
      // RFC 9110 §8.8.2.2: a Last-Modified at least a second before the response's Date is strong.
      lastModifiedIsStrong:
        lastModified !== undefined && date !== undefined && date - lastModified >= 1000,
    }
    if (!ifRangeAllows(headerValue(req.headers, 'if-range'), validators)) return res
    return rangeAnswer(range, res.body, res.headers)
  }

  /**
   * Applies the client's If-None-Match / If-Modified-Since to a 200 (RFC 9110
   * §13.2). `receivedAt`: when the stored response arrived, the date
   * If-Modified-Since is compared with when it has neither `Last-Modified`
   * nor `Date` (RFC 9111 §4.3.2).
   */
  #conditional(req: HttpRequest, res: HttpResponse, receivedAt: number): HttpResponse {
    const head = req.method === 'HEAD'
    if (res.status === 200 && (req.method === 'GET' || head) && hasConditionals(req.headers)) {
      const bag = headerBag(res.headers)
      const result = evaluatePreconditions(req, {
        etag: headerValue(bag, 'etag'),
        lastModified: parseHttpDate(headerValue(bag, 'last-modified')),
        date: parseHttpDate(headerValue(bag, 'date')) ?? receivedAt,
      })
      if (result === 'not-modified') {
        const kept = notModifiedHeaders(bag)
        const names = new Set(Object.keys(kept))
        if (this.#hitName) names.add(this.#hitName)
        return {
          status: 304,
          headers: res.headers.filter(([n]) => names.has(n.toLowerCase())),
          body: undefined,
        }
      }
      if (result === 'failed') {
        return { status: 412, headers: [['Content-Length', '0']], body: Buffer.alloc(0) }
      }
    }
    return head ? { ...res, body: undefined } : res
  }

  /**
   * Finishes a request the origin answered: stores or merges its response,
   * invalidates after unsafe methods, and returns what to send the client.
   * `requestTime`/`responseTime` are when the origin was asked and answered.
   * `originResponse` undefined means the origin failed (an exception):
   * stale-if-error may then answer.
   *
   * `originResponse` carries the route's own headers (what is stored);
   * `options.outer`, those outer middleware set, which are never stored but
   * veto storage as the route's would. The store happens before this
   * resolves, so headers added later (as the head is written, or by outer
   * middleware after the cache returned) are not seen: adapters that can see
   * them use {@link HttpCache.completeDeferred}.
   */
  async complete(
    ...args: Parameters<HttpCache['completeDeferred']>
  ): Promise<HttpResponse | undefined> {
    const done = await this.completeDeferred(...args)
    if (done.pending) await done.commit()
    return done.response
  }

  /**
   * {@link HttpCache.complete} in two phases: decides now what to send the
   * client (the answer, never delayed by the store) and what it would store,
   * and stores only when `commit(sent)` is called with every header the
   * response carried as it left (outer middleware's, those added as its head
   * was written, those added after the cache returned). Any of them can veto
   * storage as the response's own would (`Set-Cookie` without `public` or
   * `s-maxage`, `Cache-Control: private` or `no-store`, `Vary: *`), and the
   * `Vary` names among them select the variant; none of them is stored.
   * Invalidations after unsafe methods happen before this resolves.
   */
  async completeDeferred(
    req: HttpRequest,
    lookup: Lookup,
    originResponse: HttpResponse | undefined,
    requestTime: number,
    responseTime = this.#now(),
    options: CompleteOptions = {},
  ): Promise<DeferredCompletion> {
    const outer = options.outer ?? []
    if (lookup.kind === 'revalidate') {
      const stored = lookup.stored
      if (originResponse === undefined || originResponse.status >= 500) {
        const { lifetime, rules } = this.#freshnessOf(stored)
        const sie = rules.staleIfError
        const age = currentAge(stored.initialAge, stored.responseTime, this.#now())
        if (sie !== undefined && age - lifetime <= sie) {
          return this.#deferred(req, this.#serve(req, stored, age))
        }
        return this.#deferred(req, originResponse)
      }
      if (originResponse.status === 304) {
        const merged = this.#merge(stored, originResponse.headers, requestTime, responseTime)
        const answer = this.#serve(
          req,
          merged,
          currentAge(merged.initialAge, merged.responseTime, this.#now()),
        )
        return this.#deferred(req, answer, this.#candidate(req, merged, outer))
      }
    }
    if (originResponse === undefined) return this.#deferred(req, undefined)
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      if (originResponse.status >= 200 && originResponse.status < 400)
        await this.#invalidateAfter(req, originResponse)
      // RFC 9110 §9.3.3: a POST response that says it is the target's representation.
      const asGet = lookup.kind === 'miss' ? this.#postAsGet(req, originResponse) : undefined
      const entry =
        asGet === undefined
          ? undefined
          : this.#storable(asGet, originResponse, requestTime, responseTime)
      return this.#deferred(
        req,
        this.#mark(originResponse),
        entry === undefined || asGet === undefined
          ? undefined
          : this.#candidate(asGet, entry, outer),
        asGet,
      )
    }
    const entry =
      lookup.kind !== 'pass' && req.method === 'GET' && originResponse.body !== undefined
        ? this.#storable(req, originResponse, requestTime, responseTime)
        : undefined
    // The origin was asked without the client's preconditions and Range: they are answered
    // here, from the whole representation it sent (RFC 9111 §4.3.2, RFC 9110 §14).
    const answer = this.#conditional(req, this.#mark(originResponse), responseTime)
    return this.#deferred(
      req,
      this.#ranged(req, answer),
      entry === undefined ? undefined : this.#candidate(req, entry, outer),
    )
  }

  /**
   * For a POST whose response may be stored for later GETs (with
   * `storePostResponses`): the GET it answers, or `undefined`. It needs a
   * `Content-Location` naming the request's own URI on its own host, and
   * explicit freshness (RFC 9110 §9.3.3); the rest is checked as a GET's.
   */
  #postAsGet(req: HttpRequest, res: HttpResponse): HttpRequest | undefined {
    if (!this.#storePost || req.method !== 'POST' || res.body === undefined) return undefined
    const bag = headerBag(res.headers)
    const location = headerValue(bag, 'content-location')
    if (location === undefined) return undefined
    let target: URL
    try {
      target = new URL(location, `http://${req.host}${req.url}`)
    } catch {
      return undefined
    }
    if (target.host !== req.host || `${target.pathname}${target.search}` !== req.url) {
      return undefined
    }
    const { directives, targeted } = responseDirectives(
      { status: res.status, headers: bag },
      this.#rules,
    )
    const explicit =
      directives.has('max-age') ||
      (this.#rules.shared === true && directives.has('s-maxage')) ||
      (!targeted && headerValue(bag, 'expires') !== undefined)
    return explicit ? { ...req, method: 'GET' } : undefined
  }

  /**
   * What may be stored for `req`, checked against the response as it goes
   * out with the outer middleware's headers (`outer`, under the entry's own,
   * as they are sent): `undefined` when they veto it.
   */
  #candidate(req: HttpRequest, entry: StoredResponse, outer: HeaderList): Candidate | undefined {
    const own = new Set(entry.headers.map(([n]) => n.toLowerCase()))
    const evaluated: HeaderList = [
      ...outer.filter(([n]) => !own.has(n.toLowerCase())),
      ...entry.headers,
    ]
    return this.#vetoed(req, entry.status, headerBag(evaluated)) ? undefined : { entry, evaluated }
  }

  /** Whether any of `headers` (a response of `status` as it goes out) keeps it out of the cache. */
  #vetoed(req: HttpRequest, status: number, headers: HeaderBag): boolean {
    return whyNotStorable(req, { status, headers }, this.#rules) !== undefined
  }

  /**
   * The completion answering `response`, whose `commit` stores `candidate`
   * (if any) once, for `storedAs` (the request it answers: `req`, or the GET
   * a POST's response answers).
   */
  #deferred(
    req: HttpRequest,
    response: HttpResponse | undefined,
    candidate?: Candidate,
    storedAs: HttpRequest = req,
  ): DeferredCompletion {
    let pending = candidate
    return {
      response,
      pending: candidate !== undefined,
      commit: async (sent) => {
        const c = pending
        pending = undefined
        if (c === undefined) return false
        let headers = c.evaluated
        if (sent !== undefined) {
          // The response as it left; the entry's headers it did not carry (a 304's) as evaluated.
          const names = new Set(sent.map(([n]) => n.toLowerCase()))
          headers = [...headers.filter(([n]) => !names.has(n.toLowerCase())), ...sent]
        }
        const bag = headerBag(headers)
        if (sent !== undefined && this.#vetoed(storedAs, c.entry.status, bag)) return false
        // Every Vary name on the response as it left selects the variant, the outer ones too.
        return this.#store(storedAs, c.entry, parseVary(headerValue(bag, 'vary')))
      },
    }
  }

  /** The origin's response as it is sent: marked a miss, without the targeted fields not forwarded. */
  #mark(res: HttpResponse): HttpResponse {
    if (!this.#hitHeader && this.#unforwarded.size === 0) return res
    const headers = res.headers.filter(([n]) => {
      const name = n.toLowerCase()
      return name !== this.#hitName && !this.#unforwarded.has(name)
    })
    if (this.#hitHeader) headers.push([this.#hitHeader, 'miss'])
    return { ...res, headers }
  }

  /** Stored headers updated from a 304 (RFC 9111 §3.2), with new times. */
  #merge(
    stored: StoredResponse,
    update: HeaderList,
    requestTime: number,
    responseTime: number,
  ): StoredResponse {
    const skip = new Set([
      'content-length',
      'content-encoding',
      'transfer-encoding',
      'content-range',
      ...HOP_BY_HOP_HEADERS,
      ...(this.#rules.shared ? PER_CLIENT_FIELDS : []),
    ])
    const replaced = new Set(update.map(([n]) => n.toLowerCase()).filter((n) => !skip.has(n)))
    const headers: HeaderList = [
      ...stored.headers.filter(([n]) => !replaced.has(n.toLowerCase())),
      ...update.filter(([n]) => replaced.has(n.toLowerCase())),
    ]
    const bag = headerBag(headers)
    return {
      ...stored,
      headers,
      requestTime,
      responseTime,
      initialAge: initialAge({ status: stored.status, headers: bag }, requestTime, responseTime),
    }
  }

  /** The entry `res` would be stored as, or `undefined` when its own headers (or the request) keep it out. */
  #storable(
    req: HttpRequest,
    res: HttpResponse,
    requestTime: number,
    responseTime: number,
  ): StoredResponse | undefined {
    if (this.#exempt(req.url) || (res.body?.length ?? 0) > this.#maxBody) return undefined
    // A body that is not what its Content-Length says (a source that failed mid-way, an
    // error page after a first chunk) is a failed response: every hit would desynchronise.
    if (res.body === undefined || !framedBy(res.headers, res.body.length)) return undefined
    if (this.#requestControls && requestControls(req).noStore) return undefined
    const bag = headerBag(res.headers)
    if (whyNotStorable(req, { status: res.status, headers: bag }, this.#rules) !== undefined) {
      return undefined
    }
    // Field names `no-cache="..."` and `private="..."` qualify in Cache-Control and in the
    // governing targeted field alike: whichever names a field, it is not stored.
    const governing = responseDirectives({ status: res.status, headers: bag }, this.#rules)
    const plain = governing.targeted
      ? parseCacheControl(headerValue(bag, 'cache-control'))
      : governing.directives
    const qualified = (name: string) => [
      ...qualifiedFields(plain, name),
      ...(governing.targeted ? qualifiedFields(governing.directives, name) : []),
    ]
    const connectionListed = splitList(headerValue(bag, 'connection') ?? '').map((s) =>
      s.toLowerCase(),
    )
    const drop = new Set([
      ...HOP_BY_HOP_HEADERS,
      ...connectionListed,
      'age',
      ...(this.#hitName ? [this.#hitName] : []),
      ...qualified('no-cache'),
      ...(this.#rules.shared ? [...qualified('private'), ...PER_CLIENT_FIELDS] : []),
    ])
    return {
      status: res.status,
      headers: without(res.headers, drop),
      body: res.body,
      requestTime,
      responseTime,
      initialAge: initialAge({ status: res.status, headers: bag }, requestTime, responseTime),
    }
  }

  /** A stored entry's freshness lifetime and staleness rules (computed when it was stored). */
  #freshnessOf(stored: StoredResponse): { lifetime: number; rules: StaleRules } {
    if (stored.lifetime !== undefined && stored.stale !== undefined) {
      return { lifetime: stored.lifetime, rules: stored.stale }
    }
    const res = { status: stored.status, headers: headerBag(stored.headers) }
    return {
      lifetime: freshnessLifetime(res, stored.responseTime, this.#rules),
      rules: staleRules(res, this.#rules),
    }
  }

  /**
   * Writes the entry and its resource's metadata (naming `vary`, the fields
   * that select the variant), with a store timeout covering its useful life.
   * Resolves whether it wrote.
   */
  async #store(req: HttpRequest, fresh: StoredResponse, vary: string[]): Promise<boolean> {
    const bag = headerBag(fresh.headers)
    const res = { status: fresh.status, headers: bag }
    const lifetime = freshnessLifetime(res, fresh.responseTime, this.#rules)
    const rules = staleRules(res, this.#rules)
    const entry: StoredResponse = { ...fresh, lifetime, stale: rules }
    const hasValidator =
      headerValue(bag, 'etag') !== undefined || headerValue(bag, 'last-modified') !== undefined
    const extra = Math.max(
      rules.staleWhileRevalidate ?? 0,
      rules.staleIfError ?? 0,
      hasValidator ? Math.max(lifetime, 3600) : 0,
    )
    const ttl = Math.max(1, Math.ceil(lifetime - entry.initialAge + extra))
    if (lifetime - entry.initialAge + extra <= 0) return false
    const resource = this.#resource(req.host, req.url)
    const metaKey = this.#metaKey(resource)
    let meta = await this.#readMeta(metaKey)
    if (meta === undefined || meta.vary.join(',') !== vary.join(',')) {
      meta = { salt: meta?.salt ?? randomBytes(8).toString('hex'), vary }
    }
    await this.#cache.set(metaKey, meta, ttl)
    await this.#cache.set(this.#variantKey(resource, meta, req.headers), entry, ttl)
    return true
  }

  /** Invalidates the target URI, and Location/Content-Location on the same host (RFC 9111 §4.4). */
  async #invalidateAfter(req: HttpRequest, res: HttpResponse): Promise<void> {
    const targets = new Set([req.url])
    const bag = headerBag(res.headers)
    for (const name of ['location', 'content-location']) {
      const v = headerValue(bag, name)
      if (v === undefined) continue
      try {
        const u = new URL(v, `http://${req.host}${req.url}`)
        if (u.host === req.host) targets.add(u.pathname + u.search)
      } catch {
        // Not a URI: nothing to invalidate.
      }
    }
    for (const url of targets) await this.purge(url, req.host)
  }

  /** Forgets every stored variant of a resource (flask-webcache's per-resource invalidation). */
  async purge(url: string, host: string): Promise<void> {
    await this.#cache.delete(this.#metaKey(this.#resource(host, url)))
  }

  /**
   * Refreshes a resource in the background (stale-while-revalidate): a
   * request to the app's own server carrying {@link REFRESH_HEADER}, which
   * forces a miss and stores the fresh response. Errors are ignored (the
   * stale entry stays until it expires).
   */
  refreshInBackground(req: HttpRequest, origin: string): void {
    const headers = repeatedHeaders(Object.entries(req.headers))
    headers[REFRESH_HEADER] = this.refreshToken
    headers[REFRESH_HOST_HEADER] = req.host
    requestInBackground(`${origin}${req.url}`, headers, () => {})
  }
}
