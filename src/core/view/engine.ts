/**
 * The engine: one `cached()` configuration ({@link ViewCache}) deciding, for
 * each request, bypass, hit or miss ({@link ViewCache.lookup}), and which
 * responses are stored where ({@link ViewCache.store}). It puts together
 * the other modules of the folder: the options, the keys, the reading of
 * entries, the renders in flight and the background refreshes.
 */

import { randomBytes } from 'node:crypto'
import { type CacheBackend, PEEK, type PeekableBackend } from '../backend.js'
import { parseTimeout, type Timeout } from '../duration.js'
import { ConfigError } from '../errors.js'
import { type Held, lockOrWait, type Policy, policyOf, tagsHold } from '../getorset.js'
import { type DigestFn, resolveHashMethod } from '../hash.js'
import {
  bodilessStatus,
  cacheControlNames,
  groupHeaders,
  headerValue,
  listHas,
} from '../headers.js'
import { warnOnce } from '../log.js'
import { isThenable } from '../promise.js'
import type { Slot, SlotSettings } from '../slot.js'
import { checkKey, queryKeyText, queryPairs } from './keys.js'
import {
  type AcceptedEncodings,
  contentCoding,
  parseAcceptEncoding,
  VIEW_ENCODINGS,
} from './negotiation.js'
import {
  DEFAULT_MAX_BODY_SIZE,
  DEFAULT_VIEW_KEY_PREFIX,
  HIT_HEADER,
  isDefaultCacheableStatus,
  validateViewOptions,
} from './options.js'
import { EntryReader, type Prepared } from './read.js'
import { Refresher, VIEW_REFRESH_HEADER } from './refresh.js'
import { DEFAULT_RENDER_WAIT_MS, Renders, within } from './renders.js'
import { framedBy, NOT_STORED } from './stored.js'
import type {
  BypassReason,
  CapturedResponse,
  Pending,
  RequestView,
  StoredView,
  ViewBypass,
  ViewCacheOptions,
  ViewHit,
  ViewLookup,
  ViewMiss,
} from './types.js'
import {
  asVaryMarker,
  headerDigest,
  selecting,
  type VaryMarker,
  variantBase,
  varyNames,
} from './vary.js'

/**
 * The code of the one-time warning that a view is keyed without its source
 * digest: `sourceCheck` (or `CACHE_SOURCE_CHECK`) is on, and the adapter
 * cannot see the handlers the cache stands in for.
 */
const SOURCE_CHECK_UNAVAILABLE = 'CACHETTE_SOURCE_CHECK_UNAVAILABLE'

/**
 * One `cached()` configuration: options resolved once, key building, the
 * lookup decision and the store decision. Stateless per request, so one
 * instance serves every request of a route (and every app sharing it).
 *
 * @typeParam Req - the framework's request object, handed to user callbacks.
 */
export class ViewCache<Req = unknown> {
  /** The options as given (validated). */
  readonly options: Readonly<ViewCacheOptions<Req>>
  /** The largest body stored, in bytes; adapters stop buffering beyond it. */
  readonly maxBodySize: number
  #timeout: number | undefined
  readonly #digest: DigestFn | undefined
  readonly #statusOk: (status: number) => boolean
  readonly #hitHeader: string | undefined
  /** A string `keyPrefix` up to its `%s` (the whole prefix when it has none). */
  readonly #prefixHead: string
  /** A string `keyPrefix` after its `%s`; `undefined` when it has none. */
  readonly #prefixTail: string | undefined
  /** `varyHeaders`, lower case. */
  readonly #varyHeaders: readonly string[]
  /** Whether a lookup runs no user callback, so it can be decided synchronously. */
  readonly #plain: boolean
  /** Reads entries (each prepared once). */
  readonly #reader: EntryReader
  /** Grace, back-off and lock. */
  readonly #policy: Policy
  /** Renders in progress, which requests missing the same page wait on. */
  readonly #renders: Renders<Req>
  /** Background refreshes of stale pages. */
  readonly #refresher: Refresher
  /** The secret a background refresh request carries ({@link VIEW_REFRESH_HEADER}), so clients cannot force renders. */
  readonly refreshToken: string

  /**
   * @param options - the `cached()` options; validated here (see {@link validateViewOptions}).
   * @param what - how errors name the caller.
   */
  constructor(options?: ViewCacheOptions<Req>, what = 'cached') {
    const o = validateViewOptions<Req>(options, what)
    this.options = Object.freeze({ ...o })
    this.#timeout = parseTimeout(o.timeout, `${what} timeout`)
    this.#digest =
      o.hashMethod === undefined ? undefined : resolveHashMethod(o.hashMethod, 'hashMethod')
    this.maxBodySize = o.maxBodySize ?? DEFAULT_MAX_BODY_SIZE
    const cs = o.cacheStatuses
    if (cs === undefined) this.#statusOk = isDefaultCacheableStatus
    else if (typeof cs === 'function') this.#statusOk = (s) => cs(s) === true
    else {
      const set = new Set(cs)
      this.#statusOk = (s) => set.has(s)
    }
    const hit = o.responseHitIndication
    this.#varyHeaders = (o.varyHeaders ?? []).map((h) => h.toLowerCase())
    this.#hitHeader = hit === true ? HIT_HEADER : typeof hit === 'string' ? hit : undefined
    const kp = typeof o.keyPrefix === 'string' ? o.keyPrefix : DEFAULT_VIEW_KEY_PREFIX
    const at = kp.indexOf('%s')
    this.#prefixHead = at < 0 ? kp : kp.slice(0, at)
    this.#prefixTail = at < 0 ? undefined : kp.slice(at + 2)
    this.#policy = policyOf(o, what)
    this.#reader = new EntryReader(this.maxBodySize)
    this.#renders = new Renders(this.#policy.lock?.waitMs ?? DEFAULT_RENDER_WAIT_MS, o.tags)
    this.#refresher = new Refresher(this.#policy.backoffMs)
    this.refreshToken = this.#refresher.token
    this.#plain =
      !o.makeCacheKey &&
      typeof o.keyPrefix !== 'function' &&
      !o.unless &&
      !o.forcedUpdate &&
      !o.isStale &&
      o.tags === undefined &&
      this.#policy.lock === undefined
  }

  /** The route's timeout in seconds (`undefined` = backend default). Assignable (seconds or a duration string); read at store time. */
  get cacheTimeout(): number | undefined {
    return this.#timeout
  }

  set cacheTimeout(timeout: Timeout | undefined) {
    this.#timeout = parseTimeout(timeout, 'cacheTimeout')
  }

  /** Whether a response with `status` would be stored. */
  isCacheableStatus(status: number): boolean {
    return this.#statusOk(status)
  }

  /**
   * For an adapter that can never see the handlers it stands in for (Koa,
   * Fastify's `cached()` hooks): refuses `sourceCheck: true` in the options,
   * at set-up, with a {@link ConfigError} saying why. `CACHE_SOURCE_CHECK`
   * is not refused (it applies to every route): such a view is keyed
   * without the digest, with a one-time warning
   * ({@link SOURCE_CHECK_UNAVAILABLE}).
   *
   * @param what - the call, as the error names it (`cachette/koa: cached(cache, options)`)
   * @param why - why the handlers cannot be seen, and what to do instead
   */
  refuseSourceCheck(what: string, why: string): void {
    if (this.options.sourceCheck === true) {
      throw new ConfigError('sourceCheck', `${what} ${why}`)
    }
  }

  /**
   * The base key for a request (the identity representation's key). Encoded
   * variants live at `key|<coding>`; see {@link ViewCache.variantKeys}.
   *
   * @param inRequest - `false` outside of a request (`deleteCached`, `makeCacheKey`),
   *   where an unknown source is expected and not warned about
   */
  async keyFor(view: RequestView<Req>, settings: SlotSettings, inRequest = true): Promise<string> {
    const o = this.options
    if (o.makeCacheKey) return checkKey(await o.makeCacheKey(view.raw), 'makeCacheKey')
    const kp = o.keyPrefix
    if (typeof kp === 'function') {
      return this.#digested(checkKey(await kp(view.raw), 'keyPrefix'), view, settings, inRequest)
    }
    return this.#plainKey(view, settings, inRequest)
  }

  /** The key when `keyPrefix` is a string (`%s` is the path, literally) and there is no `makeCacheKey`. */
  #plainKey(view: RequestView<Req>, settings: SlotSettings, inRequest = true): string {
    const tail = this.#prefixTail
    const prefix = tail === undefined ? this.#prefixHead : this.#prefixHead + view.path + tail
    return this.#digested(prefix, view, settings, inRequest)
  }

  /**
   * The source the key digests (`sourceCheck`, else `CACHE_SOURCE_CHECK`):
   * that of the handlers the cache stands in for, as the adapter found
   * them. In a request whose adapter cannot see them, `undefined`, with a
   * one-time warning: the page is keyed without the digest.
   */
  #sourceOf(
    view: RequestView<Req>,
    settings: SlotSettings,
    inRequest: boolean,
  ): string | undefined {
    if (!(this.options.sourceCheck ?? settings.sourceCheck)) return undefined
    const source = view.source?.()
    if (source === undefined && inRequest) {
      warnOnce(
        settings.logger,
        SOURCE_CHECK_UNAVAILABLE,
        `sourceCheck: the handlers behind the cache at ${view.method} ${view.path} cannot be seen ` +
          "(Koa, Fastify's cached() hooks, Express's cached() mounted with app.use() outside a route, " +
          'a Hono without matchedRoutes), so this view and any like it are cached without the source digest',
      )
    }
    return source
  }

  /** `prefix` with the digest of the query string and the handlers' source appended, when those are keyed on. */
  #digested(
    prefix: string,
    view: RequestView<Req>,
    settings: SlotSettings,
    inRequest: boolean,
  ): string {
    const o = this.options
    if (this.#varyHeaders.length > 0) {
      prefix = `${prefix}|h:${headerDigest(this.#varyHeaders, view)}`
    }
    const source = this.#sourceOf(view, settings, inRequest)
    if (o.queryString) {
      const digest = this.#digest ?? settings.digest
      return prefix + digest(queryKeyText(queryPairs(view.query)) + (source ?? '')).toString('hex')
    }
    return source ? prefix + (this.#digest ?? settings.digest)(source).toString('hex') : prefix
  }

  /** Every backend key a base key's representations may be stored at: the key itself, then `key|<coding>`. */
  variantKeys(key: string): string[] {
    return [key, ...VIEW_ENCODINGS.map((c) => `${key}|${c}`)]
  }

  /**
   * {@link ViewCache.lookup} without waiting, when nothing in it is
   * asynchronous: the route has no `makeCacheKey`, `keyPrefix` function,
   * `unless`, `forcedUpdate` or `isStale`, and the backend reads
   * synchronously ({@link PEEK}, the in-memory SimpleCache). Returns
   * `undefined` otherwise, or when the answer needs waiting after all (a
   * stale or tagged entry, another request rendering the page, a background
   * refresh): call `lookup` then. Throws only what `lookup` rejects with.
   */
  lookupNow(view: RequestView<Req>, slot: Slot): ViewLookup | undefined {
    const result = this.#lookupNow(view, slot)
    if (result !== undefined) this.#count(view, slot, result.kind)
    return result
  }

  /** Counts an outcome under the view's name (`cache.stats()`). */
  #count(view: RequestView<Req>, slot: Slot, outcome: 'hit' | 'miss' | 'stale' | 'bypass'): void {
    slot.observer.outcome('view', this.options.name ?? view.route?.() ?? view.path, outcome)
  }

  #lookupNow(view: RequestView<Req>, slot: Slot): ViewLookup | undefined {
    const peek = this.#plain ? (slot.backend as PeekableBackend | undefined)?.[PEEK] : undefined
    if (peek === undefined) return undefined
    const m = view.method
    const method = m === 'GET' || m === 'HEAD' ? m : m.toUpperCase()
    if (method !== 'GET' && method !== 'HEAD') return BYPASS.method
    if (!this.options.allowAuthorized && isAuthorized(view)) return BYPASS.authorization
    if (this.#policy.grace > 0 && view.header(VIEW_REFRESH_HEADER) !== undefined) return undefined
    let key: string | undefined
    try {
      key = this.#plainKey(view, slot.settings)
      const accept = parseAcceptEncoding(view.header('accept-encoding'))
      const head = method === 'HEAD'
      const found = this.#reader.peek(slot.backend as CacheBackend, peek, key, accept, view)
      if (found !== undefined) {
        const fresh = found.entry.fresh
        if (found.entry.tags !== undefined || (fresh !== undefined && Date.now() >= fresh)) {
          return undefined
        }
        return this.#hit(found, head)
      }
      if (head) return BYPASS['head-miss']
      const pending = this.#renders.current(slot, key)
      if (pending !== undefined && Date.now() - pending.started < this.#renders.waitMs)
        return undefined
      return this.#leadRender(slot, key, accept, view)
    } catch (error) {
      return failedLookup(error, slot, key ?? view.path)
    }
  }

  /**
   * Decides how to serve a request. Resolves a {@link ViewLookup}; rejects only
   * with an error that must propagate (`slot.mustRaise`: `CACHE_RAISE_ERRORS`,
   * programming errors). Other backend and callback errors are logged through
   * the slot and answered with a bypass, so the app keeps serving.
   *
   * Order: method (GET and HEAD only) → `Authorization` → `unless` → key →
   * `forcedUpdate` → read → `isStale`.
   */
  async lookup(view: RequestView<Req>, slot: Slot): Promise<ViewLookup> {
    const now = this.#lookupNow(view, slot)
    if (now !== undefined) {
      this.#count(view, slot, now.kind)
      return now
    }
    const result = await this.#lookup(view, slot)
    this.#count(
      view,
      slot,
      result.kind === 'hit' && this.#staleHits.has(result) ? 'stale' : result.kind,
    )
    return result
  }

  /** Hits served from stale entries, told apart for the counters. */
  readonly #staleHits = new WeakSet<ViewHit>()

  async #lookup(view: RequestView<Req>, slot: Slot): Promise<ViewLookup> {
    const method = view.method.toUpperCase()
    if (method !== 'GET' && method !== 'HEAD') return BYPASS.method
    if (!this.options.allowAuthorized && isAuthorized(view)) return BYPASS.authorization
    const o = this.options
    if (o.unless && (await isTrue(o.unless(view.raw)))) return BYPASS.unless
    let key: string | undefined
    try {
      key = await this.keyFor(view, slot.settings)
      const accept = parseAcceptEncoding(view.header('accept-encoding'))
      const head = method === 'HEAD'
      const backend = slot.backend ?? (await slot.ready)
      const refresh =
        this.#policy.grace > 0 && !head && view.header(VIEW_REFRESH_HEADER) === this.refreshToken
      if (refresh || (o.forcedUpdate && (await isTrue(o.forcedUpdate(view.raw))))) {
        if (head) return BYPASS['head-miss']
        return { ...miss(key, accept, true, view), pending: this.#renders.start(view, backend) }
      }
      // A render under way before the read: if it ends while the read is out, the read
      // may predate its write, and this request must read again rather than render.
      const rendering = this.#renders.current(slot, key)
      const found = await this.#find(view, backend, key, accept)
      if (found !== undefined) {
        const hit = this.#hit(found.prepared, head)
        if (found.stale) {
          this.#refresher.start(view, key, slot)
          this.#staleHits.add(hit)
        }
        return hit
      }
      if (head) return BYPASS['head-miss']
      return await this.#missFor(view, slot, backend, key, accept, rendering)
    } catch (error) {
      return failedLookup(error, slot, key ?? view.path)
    }
  }

  /**
   * The usable entry for a request: read, its tags checked, its freshness
   * told (a stale entry is usable only with a grace period), `isStale` asked.
   */
  async #find(
    view: RequestView<Req>,
    backend: CacheBackend,
    key: string,
    accept: AcceptedEncodings,
  ): Promise<{ prepared: Prepared; stale: boolean } | undefined> {
    const o = this.options
    // `isStale` is user code: it gets a copy of the entry, never the backend's own.
    const peek = o.isStale ? undefined : (backend as PeekableBackend)[PEEK]
    const prepared =
      peek === undefined
        ? await this.#reader.read(backend, key, accept, view)
        : this.#reader.peek(backend, peek, key, accept, view)
    if (prepared === undefined) return undefined
    const entry = prepared.entry
    if (entry.tags !== undefined && !(await tagsHold(backend, entry.tags))) return undefined
    const stale = entry.fresh !== undefined && Date.now() >= entry.fresh
    if (stale && this.#policy.grace === 0) return undefined
    if (o.isStale && (await isTrue(o.isStale(entry, view.raw)))) return undefined
    return { prepared, stale }
  }

  /**
   * A miss: waits for another request of this process rendering the same
   * page (then serves its stored page), else becomes the render others wait
   * for; with `lock`, also across processes.
   */
  async #missFor(
    view: RequestView<Req>,
    slot: Slot,
    backend: CacheBackend,
    key: string,
    accept: AcceptedEncodings,
    rendering?: Pending,
  ): Promise<ViewLookup> {
    // The render under way now, else the one under way when the read started (it has
    // ended since: waiting on it returns at once, and the store is read again).
    const other = this.#renders.current(slot, key) ?? rendering
    const waited = other === undefined ? -1 : Date.now() - other.started
    if (other !== undefined && waited < this.#renders.waitMs) {
      await within(other.done, this.#renders.waitMs - waited)
      const now = await this.#find(view, backend, key, accept)
      if (now !== undefined) return this.#hit(now.prepared, false)
      // That render stored nothing (or took too long): render without waiting again.
      return { ...miss(key, accept, false, view), pending: this.#renders.start(view, backend) }
    }
    const lead = this.#leadRender(slot, key, accept, view, backend)
    const lock = this.#policy.lock
    if (lock === undefined) return lead
    let got: { held?: Held; found?: { prepared: Prepared } }
    try {
      got = await lockOrWait(backend, key, lock.ttlMs, lock.waitMs, async () => {
        const now = await this.#find(view, backend, key, accept)
        return now !== undefined && !now.stale ? now : undefined
      })
    } catch (error) {
      slot.report(`cached ${key}`, error, key)
      return lead
    }
    if (got.found !== undefined) {
      this.settle(lead, slot)
      return this.#hit(got.found.prepared, false)
    }
    ;(lead.pending as Pending).held = got.held
    return lead
  }

  /** A miss that other requests for `key` wait on until it is stored or settled. */
  #leadRender(
    slot: Slot,
    key: string,
    accept: AcceptedEncodings,
    view: RequestView<Req>,
    backend?: CacheBackend,
  ): ViewMiss {
    return {
      ...miss(key, accept, false, view),
      pending: this.#renders.lead(slot, key, view, backend),
    }
  }

  /**
   * Ends a miss's render: requests waiting on it read the store again, and
   * its lock is released. {@link ViewCache.store} does it; an adapter calls it
   * for a response that ended without being stored (the client went away).
   */
  settle(result: ViewMiss, slot: Slot): void {
    const pending = result.pending
    if (pending !== undefined) this.#renders.settle(slot, result.key, pending)
  }

  /** The hit serving `found`, made once per prepared entry (GET and HEAD each). */
  #hit(found: Prepared, head: boolean): ViewHit {
    const made = head ? found.head : found.get
    if (made !== undefined) return made
    const entry = found.entry
    const bodiless = bodilessStatus(entry.status)
    // Framing is the hit's own: a stored Content-Length or Transfer-Encoding never goes out.
    const headers: [string, string][] = entry.headers.filter(([n]) => {
      const lower = n.toLowerCase()
      return lower !== 'content-length' && !NOT_STORED.has(lower)
    })
    // A 205 has no content, framed as `Content-Length: 0` (RFC 9110 §15.3.6); 1xx, 204 and 304 get none.
    if (!bodilessStatus(entry.status, false)) {
      headers.push(['Content-Length', bodiless ? '0' : String(entry.body.length)])
    }
    if (this.#hitHeader !== undefined) headers.push([this.#hitHeader, 'True'])
    const hit: ViewHit = {
      kind: 'hit',
      key: found.key,
      entry,
      status: entry.status,
      headers,
      grouped: groupHeaders(headers),
      body: head || bodiless ? undefined : entry.body,
    }
    if (head) found.head = hit
    else found.get = hit
    return hit
  }

  /**
   * Why a captured response would not be stored, or `undefined` if it would
   * (before `responseFilter`): incomplete or failed responses (and bodies
   * that are not the length their `Content-Length` says), statuses outside
   * `cacheStatuses`, bodies over `maxBodySize`; and, from every header on
   * the response as it left (outer middleware's, and those added while its
   * head was written): any `Set-Cookie`, `Vary: *` (or more than 16 names),
   * `Cache-Control: no-store` or `private`.
   */
  refusal(response: CapturedResponse): string | undefined {
    if (!response.complete) return 'incomplete'
    if (response.errored) return 'errored'
    if (!this.#statusOk(response.status)) return 'status'
    if (response.body === undefined || response.body.length > this.maxBodySize) return 'size'
    // A body that is not what its Content-Length says (a source that failed mid-way,
    // an error page appended to a first chunk) is a failed response.
    if (!framedBy(response.headers, response.body.length)) return 'framing'
    // Every header on the response as it left may veto, whoever set it.
    const sent = response.sent ?? response.headers
    if (headerValue(sent, 'set-cookie') !== undefined) return 'set-cookie'
    if (varyNames(sent) === null) return 'vary'
    // By name: a malformed value (`private=`) must not lift the veto.
    const directives = cacheControlNames(headerValue(sent, 'cache-control'))
    if (directives.has('no-store') || directives.has('private')) return 'cache-control'
    return undefined
  }

  /**
   * Stores a response captured on a {@link ViewMiss}, if it may be stored
   * (see {@link ViewCache.refusal}) and `responseFilter` agrees. Its key is
   * `key|<coding>` for an encoded body; `key|<preferred coding>` for an
   * unencoded body that varies on `Accept-Encoding` served to a client that
   * accepts an encoding (the server chose not to compress it); else `key`.
   *
   * The timeout is `responseTimeout` when given and non-zero, else the route's.
   * Resolves whether it stored; never rejects (backend errors are logged, since
   * the response has already been sent).
   */
  async store(
    miss: ViewMiss,
    response: CapturedResponse,
    slot: Slot,
    responseTimeout?: number,
  ): Promise<boolean> {
    let key = miss.key
    try {
      if (this.refusal(response) !== undefined) return false
      const entry: StoredView = {
        status: response.status,
        headers: response.headers
          .filter(([n]) => !NOT_STORED.has(n.toLowerCase()))
          .map(([n, v]) => [n, v] as [string, string]),
        body: response.body as Buffer,
      }
      const filter = this.options.responseFilter
      if (filter) {
        const verdict = filter(entry)
        if (!(isThenable(verdict) ? await verdict : verdict)) return false
      }
      const timeout = responseTimeout || this.#timeout
      if (timeout !== undefined) entry.timeout = timeout
      const backend = slot.backend ?? (await slot.ready)
      let ttl = timeout
      const grace = this.#policy.grace
      const seconds = timeout ?? backend.defaultTimeout
      if (grace > 0 && seconds !== 0) {
        entry.fresh = Date.now() + seconds * 1000
        ttl = seconds + grace
      }
      const snapshot = await miss.pending?.snapshot
      // Tags that could not be read: the page could not be invalidated, so it is not stored.
      if (snapshot === null) return false
      if (snapshot !== undefined) entry.tags = snapshot
      let base = miss.key
      const names = varyNames(response.sent ?? response.headers) ?? []
      if (names.length > 0) {
        // One variant per value of the request headers the response varies on,
        // filed under a marker at the base key that names them.
        const request = miss.request
        if (request === undefined) return false
        const current = asVaryMarker(await backend.get(miss.key))
        const marker: VaryMarker =
          current !== undefined && current.cachetteVary.join() === names.join()
            ? current
            : { cachetteVary: names, gen: randomBytes(6).toString('hex') }
        entry.vary = selecting(names, request)
        base = variantBase(miss.key, marker, request)
        await backend.set(miss.key, marker, ttl)
      }
      key = base
      const coding = contentCoding(entry.headers)
      if (coding !== undefined) key = `${base}|${coding}`
      else if (
        miss.preferredEncoding !== undefined &&
        listHas(headerValue(entry.headers, 'vary'), 'accept-encoding')
      ) {
        key = `${base}|${miss.preferredEncoding}`
      }
      const stored = await backend.set(key, entry, ttl)
      if (stored) this.#refresher.stored(miss.key)
      return stored
    } catch (error) {
      slot.report(`cached ${key}`, error, key)
      return false
    } finally {
      this.settle(miss, slot)
    }
  }
}

const BYPASS: Readonly<Record<BypassReason, ViewBypass>> = Object.freeze({
  method: { kind: 'bypass', reason: 'method' },
  authorization: { kind: 'bypass', reason: 'authorization' },
  unless: { kind: 'bypass', reason: 'unless' },
  'head-miss': { kind: 'bypass', reason: 'head-miss' },
  error: { kind: 'bypass', reason: 'error' },
})

/** Whether the request carries credentials (`Authorization` or `Proxy-Authorization`). */
function isAuthorized(view: Pick<RequestView, 'header'>): boolean {
  return (
    view.header('authorization') !== undefined || view.header('proxy-authorization') !== undefined
  )
}

/** A lookup that failed at `site`: the error thrown again when it must propagate, else logged and answered with a bypass. */
function failedLookup(error: unknown, slot: Slot, site: string): ViewBypass {
  if (slot.mustRaise(error)) throw error
  slot.report(`cached ${site}`, error, site)
  return BYPASS.error
}

function miss(
  key: string,
  accept: AcceptedEncodings,
  forced: boolean,
  request: Pick<RequestView, 'header'>,
): ViewMiss {
  return { kind: 'miss', key, preferredEncoding: accept.encodings[0], forced, request }
}

async function isTrue(v: unknown): Promise<boolean> {
  return (isThenable(v) ? await v : v) === true
}

/**
 * The engine of a route whose options were written for `Req`, a subtype of
 * `Base`, the request the framework hands the adapter: the caller declared
 * that this route's requests are `Req`s (`cached<MyRequest>(cache, ...)`),
 * which no type can check, so it is taken on trust here, once, for every
 * adapter.
 *
 * @typeParam Base - the framework's request (`IncomingMessage`, `FastifyRequest`, a Koa or Hono context)
 * @typeParam Req - the request type the caller's callbacks take
 * @param what - how option errors name the caller
 */
export function createViewCache<Base, Req extends Base = Base>(
  options: ViewCacheOptions<Req> | undefined,
  what?: string,
): ViewCache<Base> {
  return new ViewCache<Base>(options as ViewCacheOptions<Base> | undefined, what)
}
