/**
 * The public types of cachette's observability: events, their payloads and
 * `cache.stats()`.
 */
import type { BackendOperation } from '../backend.js'

/**
 * The backend methods that are instrumented (`operation` of every event):
 * `BACKEND_OPERATIONS` of core/backend.ts.
 */
export type { BackendOperation }

/**
 * How a backend operation ended: `hit`/`miss` for `get` and `has` (a `get`
 * that found a value, `null` included, is a hit), `error` when it rejected,
 * `ok` for everything else (including `getMany`, whose keys are counted in
 * `hits`/`misses`).
 */
export type OperationStatus = 'hit' | 'miss' | 'ok' | 'error'

/**
 * One backend operation, as given to `operation` listeners and published on
 * the `cachette:operation` TracingChannel (the same object, filled in as the
 * operation settles). The fields never hold cached values.
 */
export interface OperationEvent {
  /** The backend method called. */
  readonly operation: BackendOperation
  /** The backend's class name (`SimpleCache`, `RedisCache`, ...). */
  readonly backend: string
  /** The key of a single-key operation; `undefined` for multi-key ones and `clear`. */
  readonly key: string | undefined
  /** The keys of a multi-key operation (`getMany`, `setMany`, `deleteMany`, `unlink`). */
  readonly keys: readonly string[] | undefined
  /** The app whose request made the call (see `Cache.initApp`); `undefined` outside requests. */
  readonly app: object | undefined
  /** Milliseconds from the call to its settling (`performance.now()`); 0 until settled. */
  readonly durationMs: number
  /** How it ended; `ok` until settled. */
  readonly status: OperationStatus
  /** Keys found: 1 or 0 for `get`, the count for `getMany`, 0 otherwise. */
  readonly hits: number
  /** Keys not found: 1 or 0 for `get`, the count for `getMany`, 0 otherwise. */
  readonly misses: number
  /** The rejection reason when `status` is `error`. */
  readonly error: unknown
}

/** A `hit` or `miss` event: one per key read (`get`, and each key of a `getMany`). */
export interface KeyEvent extends OperationEvent {
  /** The key read. For `getMany`, `keys` holds the whole batch. */
  readonly key: string
}

/** An `error` event: a backend operation rejected (the facade still applies its error policy). */
export interface ErrorEvent extends OperationEvent {
  readonly status: 'error'
}

/**
 * The events of a `Cache` and their payloads. All describe backend
 * operations, including those the memoize engine, the view engine, getOrSet
 * and fragments make, and are emitted after the operation settled, before
 * its caller resumes (so keep listeners fast).
 */
export interface CacheEvents {
  /** A key was found: once per `get` that found a value, once per found key of a `getMany`. */
  hit: KeyEvent
  /** A key was not found: as `hit`, for keys not found. */
  miss: KeyEvent
  /** Something was written: a `set`, `setMany` or `add` that stored, or an `inc`. */
  set: OperationEvent
  /** A `delete`, `deleteMany` or `unlink` completed. */
  delete: OperationEvent
  /** A `clear` completed. */
  clear: OperationEvent
  /** An operation rejected. */
  error: ErrorEvent
  /** Every operation, once, whatever its outcome (what metrics exporters use). */
  operation: OperationEvent
}

/** The name of a {@link CacheEvents} event. */
export type CacheEventName = keyof CacheEvents

/**
 * A listener of event `E`. It may be async; a listener that throws or
 * rejects never breaks the cache call (the error is logged, rate-limited,
 * through the slot's logger).
 */
export type CacheListener<E extends CacheEventName> = (event: CacheEvents[E]) => void

/** What an engine reports for one request, call or render. */
export type Outcome = 'hit' | 'miss' | 'stale' | 'bypass'

/** Which engine reports an {@link Outcome}. */
export type OutcomeKind = 'view' | 'memoize' | 'getOrSet' | 'fragment'

/** Outcome counts of one view, memoized function, getOrSet name or fragment. */
export interface OutcomeCounts {
  hits: number
  misses: number
  stale: number
  bypass: number
}

/**
 * Backend operation totals. Counted while the Cache is observed (an event
 * listener, `cachette/prometheus`, `cachette/otel`): an unobserved backend is
 * not wrapped, so nothing counts its calls.
 */
export interface BackendTotals {
  /** Keys found by `get` and `getMany`. */
  hits: number
  /** Keys not found by `get` and `getMany`. */
  misses: number
  /** Entries written: each `set`/`add` that stored, each key `setMany` stored, each `inc`. */
  sets: number
  /** Keys named by `delete`, `deleteMany` and `unlink`. */
  deletes: number
  /** Operations that rejected. */
  errors: number
}

/** Calls of one backend operation on one backend class that ended with one status. */
export interface OperationCount {
  readonly operation: BackendOperation
  readonly backend: string
  readonly status: OperationStatus
  readonly count: number
}

/** What `cache.stats()` returns; every number counts since creation or `resetStats()`. */
export interface CacheStats {
  /** Per cached view (the name the view engine reports). */
  views: Record<string, OutcomeCounts>
  /** Per memoized function (its `memoizeName`). */
  memoized: Record<string, OutcomeCounts>
  /** Per `getOrSet` name. */
  getOrSet: Record<string, OutcomeCounts>
  /** Per template fragment name. */
  fragments: Record<string, OutcomeCounts>
  /** Backend totals, counted while observed (see {@link BackendTotals}). */
  backend: BackendTotals
  /** Backend calls by operation, backend class and status, counted while observed. */
  operations: OperationCount[]
}
