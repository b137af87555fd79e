/**
 * The compute-on-miss engine itself: single flight per key and slot, stale
 * hits refreshed in the background, the lock, the factory call and the store.
 */
import type { CacheBackend } from '../backend.js'
import type { OutcomeKind } from '../events/types.js'
import type { Slot } from '../slot.js'
import { entryFor, isEntry, readEntry } from './entry.js'
import { type Held, lockOrWait, releaseLock } from './lock.js'
import type { Policy } from './policy.js'
import { snapshotTags } from './tags.js'

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
