/**
 * The compute-on-miss engine behind `cache.getOrSet`, `memoize` and the
 * stampede protection of cached views: single flight per key, an optional
 * distributed lock, grace periods with background refresh (stale while
 * revalidate) and tag invalidation.
 *
 * Entries that need more than a value (a freshness deadline inside a longer
 * backend lifetime, or tags) are stored as an {@link Entry}: a plain object
 * with a marker key, so every serializer and backend can hold it. Entries
 * without grace or tags are stored as the bare value, as Flask-Caching does.
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { CacheBackend } from './backend.js'
import { parseTimeout, type Timeout } from './duration.js'
import type { OutcomeKind } from './events.js'
import type { Slot } from './slot.js'

/** The marker key of an {@link Entry}. */
export const ENTRY_MARK = '\u0000cachette'

/** A stored value with its freshness deadline and tag snapshot. @internal */
export interface Entry {
  readonly [ENTRY_MARK]: 1
  /** The value. */
  readonly v: unknown
  /** Epoch milliseconds until which the value is fresh; `0` = always fresh. */
  readonly f: number
  /** `[tag, token]` pairs: the tags' tokens when the value was computed. */
  readonly t?: readonly (readonly [string, string])[]
}

/** Whether a backend value is an {@link Entry}. */
export function isEntry(value: unknown): value is Entry {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Record<string, unknown>)[ENTRY_MARK] === 1
  )
}

/** How a distributed lock behaves (`lock: true` takes every default). */
export interface LockOptions {
  /**
   * How long a lock lives if its holder never releases it (it crashed, or the
   * factory hangs): seconds or a duration string.
   * @default 10
   */
  ttl?: Timeout
  /**
   * How long another process waits for the holder's value before it runs
   * the factory itself: seconds or a duration string.
   * @default 5
   */
  wait?: Timeout
}

/** Options of `cache.getOrSet()`; `memoize` and `cached` take the same ones. */
export interface GetOrSetOptions {
  /** Seconds (or a duration string) the value is fresh; `undefined` = the default timeout, `0` = forever. */
  timeout?: Timeout
  /**
   * Seconds (or a duration string) the value is kept after it stops being
   * fresh. In that time a read returns it at once while one background call
   * of the factory refreshes it (stale-while-revalidate); if the factory
   * fails, the stale value keeps being served.
   * @default 0
   */
  grace?: Timeout
  /**
   * After the factory failed while a stale value was served, how long to
   * wait before calling it again: seconds or a duration string.
   * @default 10
   */
  graceBackoff?: Timeout
  /**
   * Tags of the entry: `cache.invalidateTags(tags)` makes it a miss. A tag is
   * a non-empty string of at most 200 characters without control characters.
   */
  tags?: readonly string[]
  /**
   * A lock through the backend (Redis `SET NX PX` with a token; `add()`
   * elsewhere) so that one process in the whole deployment runs the factory
   * for a missing key; the others wait for its value, at most
   * {@link LockOptions.wait}, then run it themselves.
   * @default false
   */
  lock?: boolean | LockOptions
  /**
   * The call's name in `cache.stats()` and metrics (hits, misses, stale).
   * @default the key up to its first `:` (`user:42` → `user`)
   */
  name?: string
}

/**
 * What the engine needs to know about one call. A caller on a hot path
 * (memoize) implements it as a class, so that a call allocates one object
 * and no closures. @internal
 */
export interface Computation<T> {
  /** The backend key. */
  readonly key: string
  /** Computes the value on a miss. */
  factory(): T | Promise<T>
  /** Seconds fresh; `undefined` = the backend's default, `0` = forever. */
  readonly timeout: number | undefined
  readonly policy: Policy
  /** Tags of the entry (checked). */
  readonly tags: readonly string[]
  /** Skips the read (Flask-Caching's `forcedUpdate`). */
  readonly forced?: boolean
  /** Whether a stored value may be used (memoize: `cacheNone`, `isStale`). */
  accept?(value: unknown): boolean | Promise<boolean>
  /** Whether a computed value is stored. `undefined` never is. */
  storable?(value: T): boolean | Promise<boolean>
  /**
   * Runs after a successful store with the entry's backend timeout (its
   * freshness plus grace): memoize extends its version keys to it.
   */
  afterStore?(backend: CacheBackend, ttl: number | undefined): Promise<void>
  /** Where logged errors come from. */
  readonly site: string
  /** Which counters of `cache.stats()` count the call's hit, stale hit or miss. */
  readonly counted: OutcomeKind
  /** The call's name in those counters (a memoized function's name, a getOrSet `name`). */
  readonly name: string
}

/** The parsed grace and lock options, shared by every call of one memoized function or route. @internal */
export interface Policy {
  /** Seconds kept after freshness ends. */
  readonly grace: number
  /** Milliseconds without factory calls after a failure while serving stale. */
  readonly backoffMs: number
  /** Lock lifetime and wait, in milliseconds; `undefined` = no lock. */
  readonly lock: { readonly ttlMs: number; readonly waitMs: number } | undefined
}

/** The policy of calls without grace or lock. @internal */
export const PLAIN_POLICY: Policy = Object.freeze({ grace: 0, backoffMs: 10_000, lock: undefined })

/** Checks `grace`, `graceBackoff` and `lock`; throws a TypeError naming `what`'s option. @internal */
export function policyOf(
  options: Pick<GetOrSetOptions, 'grace' | 'graceBackoff' | 'lock'>,
  what: string,
): Policy {
  const grace = parseTimeout(options.grace, `${what} grace`) ?? 0
  const backoff = parseTimeout(options.graceBackoff, `${what} graceBackoff`) ?? 10
  const lock = options.lock
  if (
    lock !== undefined &&
    typeof lock !== 'boolean' &&
    (typeof lock !== 'object' || lock === null)
  ) {
    throw new TypeError(`${what}: lock must be true, false or { ttl, wait }`)
  }
  let resolved: Policy['lock']
  if (lock === true || (typeof lock === 'object' && lock !== null)) {
    const o: LockOptions = lock === true ? {} : lock
    for (const k of Object.keys(o)) {
      if (k !== 'ttl' && k !== 'wait')
        throw new TypeError(`${what}: unknown lock option ${JSON.stringify(k)}`)
    }
    const ttl = parseTimeout(o.ttl, `${what} lock.ttl`) ?? 10
    const wait = parseTimeout(o.wait, `${what} lock.wait`) ?? 5
    if (!(ttl > 0))
      throw new TypeError(`${what}: lock.ttl must be more than 0 (a lock must expire)`)
    resolved = { ttlMs: Math.ceil(ttl * 1000), waitMs: Math.ceil(wait * 1000) }
  }
  if (grace === 0 && resolved === undefined && backoff === 10) return PLAIN_POLICY
  return { grace, backoffMs: Math.ceil(backoff * 1000), lock: resolved }
}

const MAX_TAG_LENGTH = 200
const MAX_TAGS = 64

/**
 * Checks a tag list; returns it without duplicates. Throws a TypeError
 * naming the bad tag.
 */
export function checkTags(tags: unknown, what: string): readonly string[] {
  if (tags === undefined) return []
  if (!Array.isArray(tags)) throw new TypeError(`${what}: tags must be an array of strings`)
  if (tags.length > MAX_TAGS) throw new TypeError(`${what}: at most ${MAX_TAGS} tags per entry`)
  for (const t of tags) {
    if (typeof t !== 'string' || t === '' || t.length > MAX_TAG_LENGTH) {
      throw new TypeError(
        `${what}: a tag must be a non-empty string of at most ${MAX_TAG_LENGTH} characters, got ${typeof t === 'string' ? JSON.stringify(t.slice(0, 40)) : typeof t}`,
      )
    }
    // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting them is the point
    if (/[\u0000-\u001f\u007f]/.test(t)) {
      throw new TypeError(`${what}: the tag ${JSON.stringify(t)} contains a control character`)
    }
  }
  return tags.length < 2 ? tags : [...new Set(tags as string[])]
}

/**
 * The tags of one call: a list, or a function of the call's arguments
 * (memoize) or request (views), checked.
 */
export function resolveTags(
  tags: readonly string[] | ((...args: never[]) => readonly string[]) | undefined,
  args: readonly unknown[],
  what: string,
): readonly string[] {
  if (tags === undefined) return []
  return checkTags(typeof tags === 'function' ? tags(...(args as never[])) : tags, what)
}

/** The backend key of a tag's token. */
export function tagKey(tag: string): string {
  return `_cachette_tag_${tag}`
}

function lockKey(key: string): string {
  return `_cachette_lock_${key}`
}

/**
 * A new random token (a tag's, a memoized function's version, a lock's):
 * six base64 characters, the length of Flask-Caching's memoize versions.
 */
export function newToken(): string {
  return randomBytes(6).toString('base64').slice(0, 6)
}

/**
 * The current tokens at `keys`, creating missing ones. `add()` makes two
 * processes creating one at once agree on a single token. Tokens never
 * expire; a token that is lost (evicted) reads as a new one, which makes the
 * entries that recorded the old one misses: losing a token can never bring
 * an invalidated entry back.
 */
export async function tokensFor(backend: CacheBackend, keys: readonly string[]): Promise<string[]> {
  const got = await readMany(backend, keys)
  const tokens: string[] = []
  for (let i = 0; i < keys.length; i++) {
    const v = got[i]
    if (typeof v === 'string') tokens.push(v)
    else {
      const fresh = newToken()
      const k = keys[i] as string
      tokens.push((await backend.add(k, fresh, 0)) ? fresh : String(await backend.get(k)))
    }
  }
  return tokens
}

/** The `[tag, token]` snapshot of `tags` now. */
export async function snapshotTags(
  backend: CacheBackend,
  tags: readonly string[],
): Promise<[string, string][]> {
  const tokens = await tokensFor(backend, tags.map(tagKey))
  return tags.map((t, i) => [t, tokens[i] as string])
}

/** Makes every entry tagged with one of `tags` a miss: each tag gets a new token. */
export async function invalidateTags(
  backend: CacheBackend,
  tags: readonly string[],
): Promise<void> {
  if (tags.length === 0) return
  await backend.setMany(
    tags.map((t) => [tagKey(t), newToken()] as const),
    0,
  )
}

/** Whether a tag snapshot still holds (no tag was invalidated since). */
export async function tagsHold(
  backend: CacheBackend,
  snapshot: readonly (readonly [string, string])[] | undefined,
): Promise<boolean> {
  if (snapshot === undefined || snapshot.length === 0) return true
  const now = await readMany(
    backend,
    snapshot.map(([t]) => tagKey(t)),
  )
  return snapshot.every(([, token], i) => now[i] === token)
}

/** `getMany`, or a plain `get` for one key (backends without a native multi-get answer it faster). */
function readMany(backend: CacheBackend, keys: readonly string[]): Promise<unknown[]> {
  return keys.length === 1 ? backend.get(keys[0] as string).then((v) => [v]) : backend.getMany(keys)
}

/** How a stored value reads now. */
export type Freshness = 'fresh' | 'stale' | 'gone'

/**
 * The value of a backend read and whether it is fresh, stale (inside its
 * grace period) or gone (expired, or a tag was invalidated: never served,
 * even in grace). A bare value (not an {@link Entry}) is fresh.
 */
export async function readEntry(
  backend: CacheBackend,
  raw: unknown,
): Promise<{ value: unknown; freshness: Freshness }> {
  if (!isEntry(raw)) return { value: raw, freshness: raw === undefined ? 'gone' : 'fresh' }
  if (!(await tagsHold(backend, raw.t))) return { value: undefined, freshness: 'gone' }
  return { value: raw.v, freshness: raw.f === 0 || Date.now() < raw.f ? 'fresh' : 'stale' }
}

/**
 * What a plain read (`cache.get`) returns for a backend value: the value of
 * a fresh entry, `undefined` for a stale or invalidated one.
 */
export async function freshValue(backend: CacheBackend, raw: unknown): Promise<unknown> {
  if (!isEntry(raw)) return raw
  const { value, freshness } = await readEntry(backend, raw)
  return freshness === 'fresh' ? value : undefined
}

/**
 * The value to store and the backend timeout for a value computed now:
 * an {@link Entry} when there is grace or tags, else the bare value.
 */
export function entryFor(
  value: unknown,
  timeout: number | undefined,
  defaultTimeout: number,
  grace: number,
  snapshot: readonly (readonly [string, string])[] | undefined,
): { stored: unknown; ttl: number | undefined } {
  const tagged = snapshot !== undefined && snapshot.length > 0
  if (grace === 0 && !tagged) return { stored: value, ttl: timeout }
  const fresh = timeout ?? defaultTimeout
  const entry: Record<string, unknown> = {
    [ENTRY_MARK]: 1,
    v: value,
    f: fresh === 0 ? 0 : Date.now() + fresh * 1000,
  }
  if (tagged) entry.t = snapshot
  return { stored: entry, ttl: fresh === 0 ? 0 : fresh + grace }
}

/** A lock held: its key and token. */
export interface Held {
  readonly key: string
  readonly token: string
}

/** Takes the lock of `key`; resolves it, or `undefined` when someone else holds it. */
export async function takeLock(
  backend: CacheBackend,
  key: string,
  ttlMs: number,
): Promise<Held | undefined> {
  const k = lockKey(key)
  const token = newToken()
  const taken = backend.acquireLock
    ? await backend.acquireLock(k, token, ttlMs)
    : await backend.add(k, token, ttlMs / 1000)
  return taken ? { key: k, token } : undefined
}

/**
 * Takes the lock of `key`, or waits for its holder's result: polls `recheck`
 * (after 10 ms, doubling to 100 ms) and tries the lock again after each
 * poll, until `waitMs` runs out. Resolves `{ held }` once taken, `{ found }`
 * when `recheck` found a result, `{}` when the wait ran out. A backend
 * error rejects at once: the caller goes on without the lock rather than
 * wait on a store that is down.
 */
export async function lockOrWait<R>(
  backend: CacheBackend,
  key: string,
  ttlMs: number,
  waitMs: number,
  recheck: () => Promise<R | undefined>,
): Promise<{ held?: Held; found?: R }> {
  const deadline = Date.now() + waitMs
  let pause = 10
  for (;;) {
    const held = await takeLock(backend, key, ttlMs)
    if (held !== undefined) return { held }
    if (Date.now() >= deadline) return {}
    await sleep(Math.min(pause, Math.max(1, deadline - Date.now())))
    pause = Math.min(pause * 2, 100)
    const found = await recheck()
    if (found !== undefined) return { found }
  }
}

/** Releases a lock, only if it still holds our token. */
export async function releaseLock(backend: CacheBackend, held: Held): Promise<void> {
  if (backend.releaseLock) {
    await backend.releaseLock(held.key, held.token)
    return
  }
  // Not atomic: the lock may expire and be taken between the read and the
  // delete. The window is one round trip, far shorter than a lock's lifetime.
  if ((await backend.get(held.key)) === held.token) await backend.delete(held.key)
}

/**
 * Per-slot state: the calls in flight (a read, then the factory on a miss),
 * the background refreshes, and the keys in back-off after a failed refresh.
 */
interface Flights {
  readonly running: Map<string, Promise<Settled>>
  readonly refreshing: Set<string>
  readonly backoff: Map<string, number>
}

/** What a call in flight resolved: the value and how it was found, for every caller sharing it. */
interface Settled {
  readonly value: unknown
  readonly outcome: 'hit' | 'stale' | 'miss'
}

const FLIGHTS = new WeakMap<object, Flights>()

function flightsOf(owner: object): Flights {
  let f = FLIGHTS.get(owner)
  if (f === undefined) {
    f = { running: new Map(), refreshing: new Set(), backoff: new Map() }
    FLIGHTS.set(owner, f)
  }
  return f
}

/** A usable read: the value and whether it is stale. */
interface Found {
  readonly value: unknown
  readonly stale: boolean
}

/** Reads `c.key`; `undefined` on a miss, a gone entry, a refused value or a backend error (logged). */
async function lookup<T>(
  slot: Slot,
  backend: CacheBackend,
  c: Computation<T>,
): Promise<Found | undefined> {
  try {
    const raw = await backend.get(c.key)
    if (raw === undefined) return undefined
    // A bare value (the common case) needs no further await.
    let value: unknown = raw
    let stale = false
    if (isEntry(raw)) {
      const read = await readEntry(backend, raw)
      if (read.freshness === 'gone') return undefined
      stale = read.freshness === 'stale'
      if (stale && c.policy.grace === 0) return undefined
      value = read.value
    }
    if (c.accept !== undefined) {
      const ok = c.accept(value)
      if (!(typeof ok === 'boolean' ? ok : await ok)) return undefined
    }
    return { value, stale }
  } catch (error) {
    if (slot.mustRaise(error)) throw error
    slot.report(c.site, error, c.key)
    return undefined
  }
}

/**
 * Returns the cached value of `c.key`, or computes, stores and returns it.
 *
 * - A fresh entry is returned.
 * - A stale entry (inside its grace period) is returned at once, and one
 *   background call of the factory refreshes it, unless the factory failed
 *   less than `graceBackoff` ago.
 * - On a miss, concurrent calls for the key in this process share one
 *   factory call; with a lock, so do calls in other processes.
 * - A factory error reaches every caller sharing the call and is never
 *   stored, except that a stale value is served instead when there is one.
 * - Backend errors are logged and treated as misses (they propagate when
 *   the slot says they must).
 */
export async function getOrCompute<T>(slot: Slot, c: Computation<T>): Promise<T> {
  const flights = flightsOf(slot)
  // Concurrent calls for a key share one read and, on a miss, one factory
  // call: a burst of N calls costs one backend read, not N.
  // A forced call (memoize's forcedUpdate) never takes a shared read's value.
  let flight = c.forced ? undefined : flights.running.get(c.key)
  if (flight === undefined) {
    const started = resolve(slot, flights, c)
    flight = started
    flights.running.set(c.key, started)
    started.then(
      () => landed(flights, c.key, started),
      () => landed(flights, c.key, started),
    )
  }
  const { value, outcome } = await flight
  slot.observer.outcome(c.counted, c.name, outcome)
  return value as T
}

/** Forgets a call in flight once it settled (unless another took its place). */
function landed(flights: Flights, key: string, flight: Promise<Settled>): void {
  if (flights.running.get(key) === flight) flights.running.delete(key)
}

/** One call in flight: read, serve a fresh or stale entry, else compute. */
async function resolve<T>(slot: Slot, flights: Flights, c: Computation<T>): Promise<Settled> {
  const backend = slot.backend ?? (await slot.ready)
  if (!c.forced) {
    const found = await lookup(slot, backend, c)
    if (found !== undefined) {
      if (!found.stale) return { value: found.value, outcome: 'hit' }
      refreshInBackground(slot, backend, flights, c, found)
      return { value: found.value, outcome: 'stale' }
    }
  }
  return { value: await compute(slot, backend, flights, c, undefined, false), outcome: 'miss' }
}

function refreshInBackground<T>(
  slot: Slot,
  backend: CacheBackend,
  flights: Flights,
  c: Computation<T>,
  stale: Found,
): void {
  if (flights.refreshing.has(c.key)) return
  const until = flights.backoff.get(c.key)
  if (until !== undefined) {
    if (Date.now() < until) return
    flights.backoff.delete(c.key)
  }
  flights.refreshing.add(c.key)
  compute(slot, backend, flights, c, stale, true)
    .catch((error: unknown) => slot.report(c.site, error, c.key))
    .finally(() => flights.refreshing.delete(c.key))
}

/**
 * Runs the factory for a miss (or a stale entry, in the background) and
 * stores the result. With a lock: takes it, or waits for the holder's value
 * (polling the backend) and takes it when it frees, until `wait` runs out;
 * then runs the factory anyway. A background refresh that finds the lock
 * taken leaves the refresh to its holder.
 */
async function compute<T>(
  slot: Slot,
  backend: CacheBackend,
  flights: Flights,
  c: Computation<T>,
  stale: Found | undefined,
  background: boolean,
): Promise<T> {
  const lock = c.policy.lock
  let held: Held | undefined
  if (lock !== undefined) {
    // A background refresh does not wait: the lock's holder is refreshing.
    const got: { held?: Held; found?: Found } = await absorb(
      slot,
      c.site,
      c.key,
      () =>
        lockOrWait(backend, c.key, lock.ttlMs, background ? 0 : lock.waitMs, async () => {
          const now = await lookup(slot, backend, c)
          return now !== undefined && !now.stale ? now : undefined
        }),
      {},
    )
    if (got.found !== undefined) return got.found.value as T
    held = got.held
    if (held === undefined && background) return stale?.value as T
    if (held !== undefined && !c.forced && !background) {
      // The previous holder may have stored the value just before releasing.
      const now = await lookup(slot, backend, c)
      if (now !== undefined && !now.stale) {
        await absorb(slot, c.site, c.key, () => releaseLock(backend, held as Held), undefined)
        return now.value as T
      }
    }
  }
  try {
    const snapshot =
      c.tags.length === 0
        ? undefined
        : await absorb(slot, c.site, c.key, () => snapshotTags(backend, c.tags), null)
    let result: T
    try {
      result = await c.factory()
    } catch (error) {
      if (stale === undefined) throw error
      flights.backoff.set(c.key, Date.now() + c.policy.backoffMs)
      slot.report(`${c.site} (the factory failed; serving the stale value)`, error, c.key)
      return stale.value as T
    }
    // A tagged value whose tags could not be read is not stored: it could
    // not be invalidated.
    if (
      snapshot !== null &&
      result !== undefined &&
      (c.storable === undefined || (await c.storable(result)))
    ) {
      const { stored, ttl } = entryFor(
        result,
        c.timeout,
        backend.defaultTimeout,
        c.policy.grace,
        snapshot,
      )
      try {
        if (await backend.set(c.key, stored, ttl)) await c.afterStore?.(backend, ttl)
      } catch (error) {
        if (slot.settings.raiseErrors) throw error
        slot.report(c.site, error, c.key)
      }
    }
    return result
  } finally {
    if (held !== undefined) {
      const h = held
      await absorb(slot, c.site, c.key, () => releaseLock(backend, h), undefined)
    }
  }
}

/** Runs a backend call, logging an error and returning `fallback` (unless the slot says it must propagate). */
async function absorb<R, F>(
  slot: Slot,
  site: string,
  subject: string,
  call: () => Promise<R>,
  fallback: F,
): Promise<R | F> {
  try {
    return await call()
  } catch (error) {
    if (slot.mustRaise(error)) throw error
    slot.report(site, error, subject)
    return fallback
  }
}
