/**
 * Observability: outcome counters (always on), events and diagnostics_channel
 * publishing (opt-in, paid for only while used).
 *
 * Three pieces, from the bottom up:
 *
 * - {@link SlotObserver} (`slot.observer`): one per slot. Counts the outcomes
 *   the engines report (`outcome('view', name, 'hit')`: a Map lookup and an
 *   increment), and owns the swap of `slot.backend` for an instrumenting
 *   wrapper and back.
 * - The instrumenting wrapper ({@link instrumentBackend}): a Proxy over the
 *   real backend that times every data operation, counts it, publishes it on
 *   the `cachette:operation` TracingChannel when that has subscribers, and
 *   hands it to the Cache's listeners. The engines (memoize, view, getOrSet,
 *   fragments) read `slot.backend` directly, so swapping that one field
 *   covers their calls too. The wrapper hides {@link PEEK}, so view-cache hits
 *   take the async, instrumented path while observed.
 * - {@link CacheObservation}: one per Cache. Holds the listeners and decides
 *   whether the Cache is *observed* (it has a listener, it is traced by
 *   `cachette/otel`, or every cache is, see {@link observeAllCaches}); while
 *   it is, every slot's backend is the wrapper. When it stops being observed
 *   the original backend is put back: zero overhead again.
 */
import diagnosticsChannel from 'node:diagnostics_channel'
import { boundTo, type CacheBackend, PEEK } from './backend.js'
import { appContext } from './context.js'
import { warnOnce } from './log.js'
import type { Slot } from './slot.js'

// ---------------------------------------------------------------- public types

/** The backend methods that are instrumented (`operation` of every event). */
export type BackendOperation =
  | 'get'
  | 'getMany'
  | 'set'
  | 'setMany'
  | 'add'
  | 'delete'
  | 'deleteMany'
  | 'unlink'
  | 'has'
  | 'clear'
  | 'inc'
  | 'acquireLock'
  | 'releaseLock'

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

// ---------------------------------------------------------------- diagnostics_channel

/** The name of the TracingChannel every observed backend operation is published on. */
export const OPERATION_CHANNEL = 'cachette:operation'

/**
 * The `cachette:operation` TracingChannel. Its messages are
 * {@link OperationEvent}s: `start` as the operation is called (in the
 * caller's async context, stores bound with `bindStore` apply to the backend
 * call), `end` when the call returned its promise, then `error` (if it
 * rejected), `asyncStart` and `asyncEnd` when it settled, with `durationMs`,
 * `status`, `hits`, `misses` and `error` filled in. Unlike `tracePromise`,
 * `result` is never set: cached values are not handed to subscribers.
 *
 * Operations are published only from observed caches: subscribe, then make
 * the caches observed with `observeAllCaches()` (or `cachette/otel`).
 */
export const operationChannel: diagnosticsChannel.TracingChannel<unknown, OperationEvent> =
  diagnosticsChannel.tracingChannel<unknown, OperationEvent>(OPERATION_CHANNEL)

/** Whether anyone listens on {@link operationChannel}; `hasSubscribers` of the TracingChannel needs Node 20.13. */
function channelActive(): boolean {
  const ch = operationChannel
  const all = (ch as { hasSubscribers?: boolean }).hasSubscribers
  if (typeof all === 'boolean') return all
  return (
    ch.start.hasSubscribers ||
    ch.end.hasSubscribers ||
    ch.asyncStart.hasSubscribers ||
    ch.asyncEnd.hasSubscribers ||
    ch.error.hasSubscribers
  )
}

// ---------------------------------------------------------------- process-wide state

/**
 * Process-wide state, kept on `globalThis` so that the ESM and CommonJS
 * copies of cachette (the dual-package case) agree: `observeAllCaches()`
 * called through one applies to caches built by the other.
 */
interface GlobalState {
  /** How many `observeAllCaches()` (and `enableCacheTracing()`) calls are in force. */
  observeAll: number
  /** Every live CacheObservation, to refresh when `observeAll` changes. */
  readonly caches: Set<WeakRef<{ refresh(): void }>>
}

const STATE_KEY = Symbol.for('cachette.observability')
const state: GlobalState = ((globalThis as Record<symbol, unknown>)[STATE_KEY] as
  | GlobalState
  | undefined) ?? { observeAll: 0, caches: new Set() }
;(globalThis as Record<symbol, unknown>)[STATE_KEY] = state

const forget = new FinalizationRegistry<WeakRef<{ refresh(): void }>>((ref) => {
  state.caches.delete(ref)
})

function refreshAll(): void {
  for (const ref of state.caches) {
    const observation = ref.deref()
    if (observation === undefined) state.caches.delete(ref)
    else observation.refresh()
  }
}

/**
 * Makes every Cache of the process (existing and future) observed, so that
 * each backend operation is published on `cachette:operation` for
 * subscribers that cannot call anything on the caches themselves (an APM
 * agent). Returns the function that undoes it (calls nest).
 */
export function observeAllCaches(): () => void {
  state.observeAll++
  if (state.observeAll === 1) refreshAll()
  let undone = false
  return () => {
    if (undone) return
    undone = true
    state.observeAll--
    if (state.observeAll === 0) refreshAll()
  }
}

/**
 * The symbol under which an {@link OperationEvent} records the
 * {@link CacheObservation} it came from (for `cachette/otel`'s per-cache
 * tracing). `Symbol.for`, for the dual-package case.
 * @internal
 */
export const ORIGIN: unique symbol = Symbol.for('cachette.origin') as typeof ORIGIN

// ---------------------------------------------------------------- counters

/** Outcome counts as stored: indexed by the outcome itself, so counting is one increment. */
type OutcomeTally = Record<Outcome, number>

/** Per-status call counts of one operation. */
type StatusTally = Record<OperationStatus, number>

/** What one backend class did on one slot while observed. */
interface BackendTally extends BackendTotals {
  readonly backend: string
  readonly ops: Record<BackendOperation, StatusTally>
}

const OPERATIONS: readonly BackendOperation[] = [
  'get',
  'getMany',
  'set',
  'setMany',
  'add',
  'delete',
  'deleteMany',
  'unlink',
  'has',
  'clear',
  'inc',
  'acquireLock',
  'releaseLock',
]

/**
 * Names kept per kind and slot. Past it, outcomes count under
 * {@link OVERFLOW_NAME} (and a warning is logged once): a name built from
 * request data (a key, a path with ids) must not grow memory or the
 * Prometheus series without bound.
 */
export const MAX_OUTCOME_NAMES = 1000

/** The name outcomes are counted under once {@link MAX_OUTCOME_NAMES} is reached. */
export const OVERFLOW_NAME = '(other)'

function newBackendTally(backend: string): BackendTally {
  const ops = {} as Record<BackendOperation, StatusTally>
  for (const op of OPERATIONS) ops[op] = { hit: 0, miss: 0, ok: 0, error: 0 }
  return { backend, ops, hits: 0, misses: 0, sets: 0, deletes: 0, errors: 0 }
}

/** Where a wrapped backend reports its operations: the Cache's {@link CacheObservation}. @internal */
export interface Sink {
  /** `value` is what the operation resolved with (`undefined` after an error); never handed to listeners. */
  dispatch(event: OperationEvent, slot: Slot, value: unknown): void
}

/**
 * The observability of one slot (`slot.observer`): outcome counters, backend
 * tallies, and the swap of `slot.backend` for the instrumenting wrapper.
 */
export class SlotObserver {
  readonly #slot: Slot
  readonly #outcomes: Record<OutcomeKind, Map<string, OutcomeTally>> = {
    view: new Map(),
    memoize: new Map(),
    getOrSet: new Map(),
    fragment: new Map(),
  }
  /** Per backend class name; a slot has one backend, but keying by name keeps tallies honest if it changes. */
  readonly #backends = new Map<string, BackendTally>()
  /** Where the wrapper reports; `undefined` while the slot is not observed. */
  #sink: Sink | undefined
  /** The backend the wrapper wraps, and the wrapper (kept for reuse when observed again). */
  #raw: CacheBackend | undefined
  #wrapped: CacheBackend | undefined
  /** Whether `slot.ready` was chained to apply the swap once a loading backend is built. */
  #readyChained = false

  /** @param slot - the slot observed; only read lazily (this object is built during the slot's construction). */
  constructor(slot: Slot) {
    this.#slot = slot
  }

  /**
   * Counts one outcome of an engine: `kind` says which, `name` identifies the
   * view, memoized function, getOrSet name or fragment. Cheap (a Map lookup
   * and an increment), so engines call it on every request. `name` should
   * have few distinct values (a route, a function name, not a key with ids);
   * past {@link MAX_OUTCOME_NAMES} names they are counted as `(other)`.
   */
  outcome(kind: OutcomeKind, name: string, outcome: Outcome): void {
    const table = this.#outcomes[kind]
    let tally = table.get(name)
    if (tally === undefined) tally = this.#newTally(table, kind, name)
    tally[outcome]++
  }

  #newTally(table: Map<string, OutcomeTally>, kind: OutcomeKind, name: string): OutcomeTally {
    if (table.size >= MAX_OUTCOME_NAMES) {
      const other = table.get(OVERFLOW_NAME)
      if (other !== undefined) return other
      warnOnce(
        this.#slot.settings.logger,
        'CACHETTE_STATS_NAMES',
        `stats: more than ${MAX_OUTCOME_NAMES} ${kind} names; further ones are counted as '${OVERFLOW_NAME}' (names should not contain request data)`,
      )
      name = OVERFLOW_NAME
    }
    const tally: OutcomeTally = { hit: 0, miss: 0, stale: 0, bypass: 0 }
    table.set(name, tally)
    return tally
  }

  /** The tally the wrapper of a `backend` class counts into. @internal */
  tallyFor(backend: string): BackendTally {
    let tally = this.#backends.get(backend)
    if (tally === undefined) {
      tally = newBackendTally(backend)
      this.#backends.set(backend, tally)
    }
    return tally
  }

  /** Adds this slot's counts into `into` (for `cache.stats()`). @internal */
  collect(into: CacheStats): void {
    const sections: [OutcomeKind, Record<string, OutcomeCounts>][] = [
      ['view', into.views],
      ['memoize', into.memoized],
      ['getOrSet', into.getOrSet],
      ['fragment', into.fragments],
    ]
    for (const [kind, out] of sections) {
      for (const [name, t] of this.#outcomes[kind]) {
        let c = out[name]
        if (c === undefined) {
          c = { hits: 0, misses: 0, stale: 0, bypass: 0 }
          out[name] = c
        }
        c.hits += t.hit
        c.misses += t.miss
        c.stale += t.stale
        c.bypass += t.bypass
      }
    }
    const b = into.backend
    for (const tally of this.#backends.values()) {
      b.hits += tally.hits
      b.misses += tally.misses
      b.sets += tally.sets
      b.deletes += tally.deletes
      b.errors += tally.errors
      for (const operation of OPERATIONS) {
        const s = tally.ops[operation]
        for (const status of ['hit', 'miss', 'ok', 'error'] as const) {
          if (s[status] === 0) continue
          const row = into.operations.find(
            (r) => r.operation === operation && r.backend === tally.backend && r.status === status,
          ) as { count: number } | undefined
          if (row !== undefined) row.count += s[status]
          else into.operations.push({ operation, backend: tally.backend, status, count: s[status] })
        }
      }
    }
  }

  /** Zeroes every counter (the tallies stay, so wrappers keep counting into them). @internal */
  reset(): void {
    for (const table of Object.values(this.#outcomes)) table.clear()
    for (const tally of this.#backends.values()) {
      tally.hits = tally.misses = tally.sets = tally.deletes = tally.errors = 0
      for (const op of OPERATIONS) {
        const s = tally.ops[op]
        s.hit = s.miss = s.ok = s.error = 0
      }
    }
  }

  /** Whether `slot.backend` is the instrumenting wrapper now. */
  get instrumented(): boolean {
    return this.#wrapped !== undefined && this.#slot.backend === this.#wrapped
  }

  /**
   * Observes the slot through `sink` (wraps its backend), or stops (`undefined`:
   * puts the original backend back). A backend still loading is swapped once
   * built. @internal
   */
  observe(sink: Sink | undefined): void {
    this.#sink = sink
    if (this.#slot.backend === undefined) this.#chainReady()
    else this.#apply()
  }

  /** Makes `slot.backend` (and what `slot.ready` resolves to) match whether the slot is observed. */
  #apply(): void {
    const slot = this.#slot
    const current = slot.backend
    if (current === undefined) return
    if (this.#sink !== undefined) {
      if (current === this.#wrapped) return
      if (current !== this.#raw || this.#wrapped === undefined) {
        this.#raw = current
        this.#wrapped = instrumentBackend(current, this, this.#sink, slot)
      }
      setBackend(slot, this.#wrapped)
    } else if (current === this.#wrapped && this.#raw !== undefined) {
      setBackend(slot, this.#raw)
    }
  }

  /**
   * For a backend still being built: `slot.ready` resolves to the raw backend,
   * and callers use it (`slot.backend ?? await slot.ready`) while loading. It
   * is replaced by a promise that first applies the swap, so calls made after
   * observation started get the wrapper. Calls that awaited the old promise
   * before that are not observed.
   */
  #chainReady(): void {
    if (this.#readyChained) return
    this.#readyChained = true
    const slot = this.#slot
    const chained = slot.ready.then(() => {
      this.#apply()
      return slot.backend as CacheBackend
    })
    chained.catch(() => {}) // as Slot does: the error surfaces on use
    setReady(slot, chained)
  }
}

/**
 * `Slot.ready` is `readonly` for the engines; observation is the one writer,
 * so that `await slot.ready` (and `cache.ready()`) resolve to the backend in
 * use, wrapped or not.
 */
function setReady(slot: Slot, ready: Promise<CacheBackend>): void {
  ;(slot as { ready: Promise<CacheBackend> }).ready = ready
}

function setBackend(slot: Slot, backend: CacheBackend): void {
  slot.backend = backend
  setReady(slot, Promise.resolve(backend))
}

// ---------------------------------------------------------------- the wrapper

/** The event object as the wrapper fills it in (public type: {@link OperationEvent}). */
interface MutableEvent {
  operation: BackendOperation
  backend: string
  key: string | undefined
  keys: readonly string[] | undefined
  app: object | undefined
  durationMs: number
  status: OperationStatus
  hits: number
  misses: number
  error: unknown
  [ORIGIN]: Sink
}

const WRITES = new Set<BackendOperation>(['set', 'setMany', 'add', 'inc'])
const DELETES = new Set<BackendOperation>(['delete', 'deleteMany', 'unlink'])

/** Fills in `event` from the value `operation` resolved with, and counts it. */
function settle(event: MutableEvent, value: unknown, tally: BackendTally): void {
  const op = event.operation
  if (op === 'get') {
    if (value === undefined) {
      event.status = 'miss'
      event.misses = 1
      tally.misses++
    } else {
      event.status = 'hit'
      event.hits = 1
      tally.hits++
    }
  } else if (op === 'getMany') {
    let hits = 0
    for (const v of value as readonly unknown[]) if (v !== undefined) hits++
    event.hits = hits
    event.misses = (value as readonly unknown[]).length - hits
    tally.hits += hits
    tally.misses += event.misses
  } else if (op === 'has') {
    event.status = value === true ? 'hit' : 'miss'
  } else if (WRITES.has(op)) {
    tally.sets += written(op, value)
  } else if (DELETES.has(op)) {
    tally.deletes += event.keys === undefined ? 1 : event.keys.length
  }
  tally.ops[op][event.status]++
}

/** Entries a write operation stored, from what it resolved with. */
function written(op: BackendOperation, value: unknown): number {
  if (op === 'inc') return 1
  if (op === 'setMany') return Array.isArray(value) ? value.length : 0
  return value === true ? 1 : 0
}

/**
 * Wraps `raw` so every data operation is timed, counted, published on
 * {@link operationChannel} (when it has subscribers) and reported to `sink`.
 *
 * A Proxy rather than a class, so that everything else a backend has
 * (`client`, `serializer`, `keys()`, `stats()`, methods added later to
 * `CacheBackend`, `instanceof`) keeps working on the wrapper. Other methods
 * are bound to the raw backend (private fields), and the instrumented ones
 * call the raw backend's, so a backend's internal calls (`BaseCache.getMany`
 * calling `this.get`) are not counted twice. {@link PEEK} reads as
 * `undefined`, so view-cache hits use `get` (and are observed).
 */
export function instrumentBackend(
  raw: CacheBackend,
  observer: SlotObserver,
  sink: Sink,
  slot: Slot,
): CacheBackend {
  const backend = (raw as { constructor?: { name?: string } }).constructor?.name || 'CacheBackend'
  const tally = observer.tallyFor(backend)

  // The hot path, kept lean (observed SimpleCache gets run at several million
  // per second): one event object, two performance.now() calls, one then().
  // `durationMs` holds the start time until the operation settles.
  const begin = (
    operation: BackendOperation,
    key: string | undefined,
    keys: readonly string[] | undefined,
  ): MutableEvent => ({
    operation,
    backend,
    key,
    keys,
    app: appContext.getStore(),
    durationMs: performance.now(),
    status: 'ok',
    hits: 0,
    misses: 0,
    error: undefined,
    [ORIGIN]: sink,
  })

  const resolved = (event: MutableEvent, value: unknown, publish: boolean): unknown => {
    event.durationMs = performance.now() - event.durationMs
    settle(event, value, tally)
    if (publish) {
      operationChannel.asyncStart.publish(event)
      operationChannel.asyncEnd.publish(event)
    }
    sink.dispatch(event, slot, value)
    return value
  }

  const rejected = (event: MutableEvent, error: unknown, publish: boolean): never => {
    event.durationMs = performance.now() - event.durationMs
    event.status = 'error'
    event.error = error
    tally.errors++
    tally.ops[event.operation].error++
    if (publish) {
      operationChannel.error.publish(event)
      operationChannel.asyncStart.publish(event)
      operationChannel.asyncEnd.publish(event)
    }
    sink.dispatch(event, slot, undefined)
    throw error
  }

  /** Watches the promise `call` returns (a synchronous throw counts as a rejection). */
  const watch = <T>(event: MutableEvent, call: () => Promise<T>, publish: boolean): Promise<T> => {
    let promise: Promise<T>
    try {
      promise = call()
    } catch (error) {
      promise = Promise.reject(error)
    }
    return promise.then(
      (value) => resolved(event, value, publish) as T,
      (error: unknown) => rejected(event, error, publish),
    )
  }

  /** Runs one operation, published on the channel when it has subscribers (as `tracePromise`, without `result`). */
  const run = <T>(event: MutableEvent, call: () => Promise<T>): Promise<T> => {
    if (!channelActive()) return watch(event, call, false)
    return operationChannel.start.runStores(event, () => {
      try {
        return watch(event, call, true)
      } finally {
        operationChannel.end.publish(event)
      }
    })
  }

  const b = raw as Required<CacheBackend>
  // Explicit parameters, not rest arguments: spreading costs on the hot path.
  // A prototype-less record, so the Proxy can index it with any property key.
  const methods: Record<PropertyKey, Function | undefined> = Object.assign(Object.create(null), {
    get: (key: string) => run(begin('get', key, undefined), () => b.get(key)),
    getMany: (keys: readonly string[]) =>
      run(begin('getMany', undefined, keys), () => b.getMany(keys)),
    set: (key: string, value: unknown, timeout?: number) =>
      run(begin('set', key, undefined), () => b.set(key, value, timeout)),
    setMany: (entries: readonly (readonly [string, unknown])[], timeout?: number) =>
      run(
        begin(
          'setMany',
          undefined,
          entries.map(([k]) => k),
        ),
        () => b.setMany(entries, timeout),
      ),
    add: (key: string, value: unknown, timeout?: number) =>
      run(begin('add', key, undefined), () => b.add(key, value, timeout)),
    delete: (key: string) => run(begin('delete', key, undefined), () => b.delete(key)),
    deleteMany: (keys: readonly string[]) =>
      run(begin('deleteMany', undefined, keys), () => b.deleteMany(keys)),
    has: (key: string) => run(begin('has', key, undefined), () => b.has(key)),
    clear: () => run(begin('clear', undefined, undefined), () => b.clear()),
    inc: (key: string, delta: number) => run(begin('inc', key, undefined), () => b.inc(key, delta)),
  })
  // Optional methods: instrumented only where the backend has them, so
  // `backend.unlink ? ... : ...` checks keep their answer.
  if (typeof raw.unlink === 'function') {
    methods.unlink = (keys: readonly string[]) =>
      run(begin('unlink', undefined, keys), () => b.unlink(keys))
  }
  if (typeof raw.acquireLock === 'function') {
    methods.acquireLock = (key: string, token: string, ttlMs: number) =>
      run(begin('acquireLock', key, undefined), () => b.acquireLock(key, token, ttlMs))
  }
  if (typeof raw.releaseLock === 'function') {
    methods.releaseLock = (key: string, token: string) =>
      run(begin('releaseLock', key, undefined), () => b.releaseLock(key, token))
  }

  const bound = new Map<Function, Function>()
  return new Proxy(raw, {
    get(target, prop) {
      const own = methods[prop]
      if (own !== undefined) return own
      if (prop === PEEK) return undefined
      const value: unknown = Reflect.get(target, prop)
      if (typeof value !== 'function' || prop === 'constructor') return value
      return boundTo(target, value, bound)
    },
    has(target, prop) {
      return prop === PEEK ? false : Reflect.has(target, prop)
    },
    // Setters run on the backend itself (its accessors may use private fields).
    set(target, prop, value) {
      return Reflect.set(target, prop, value)
    },
  })
}

// ---------------------------------------------------------------- the Cache's side

type AnyListener = (event: OperationEvent) => unknown

/** A `once` wrapper remembers the listener it wraps, so `off(listener)` finds it. */
interface OnceWrapper extends AnyListener {
  readonly listener: AnyListener
}

/**
 * The observability of one Cache: its listeners, whether it is observed, and
 * its slots (adopted as the Cache builds them).
 */
export class CacheObservation implements Sink {
  readonly #slots: Set<Slot>
  /** Listener arrays, replaced (never mutated) on change, so dispatch can iterate them as they are. */
  readonly #listeners: { [E in CacheEventName]?: readonly AnyListener[] } = {}
  #listenerCount = 0
  /** How many `cachette/otel` instrumentations trace this cache. */
  #traced = 0

  /**
   * @param slots - the Cache's set of slots. The Cache calls {@link adopt}
   * for each slot it builds (now or in a later `initApp`), before any call
   * can use it.
   */
  constructor(slots: Set<Slot>) {
    this.#slots = slots
    for (const slot of slots) this.adopt(slot)
    const ref = new WeakRef(this)
    state.caches.add(ref)
    forget.register(this, ref)
  }

  /** Brings a new slot under this Cache's observation state. */
  adopt(slot: Slot): void {
    if (this.observed) slot.observer.observe(this)
  }

  /** Whether the backends are wrapped: a listener, a tracer, or `observeAllCaches()`. */
  get observed(): boolean {
    return this.#listenerCount > 0 || this.#traced > 0 || state.observeAll > 0
  }

  /** Wraps or unwraps every slot's backend to match {@link observed}. */
  refresh(): void {
    const sink = this.observed ? this : undefined
    for (const slot of this.#slots) slot.observer.observe(sink)
  }

  /** Keeps the cache observed until the returned function is called (`cachette/otel`). */
  trace(): () => void {
    this.#traced++
    if (this.#traced === 1) this.refresh()
    let undone = false
    return () => {
      if (undone) return
      undone = true
      this.#traced--
      if (this.#traced === 0) this.refresh()
    }
  }

  /** See `Cache.on`. */
  on(event: CacheEventName, listener: AnyListener): void {
    checkListener(event, listener)
    this.#listeners[event] = [...(this.#listeners[event] ?? []), listener]
    this.#listenerCount++
    if (this.#listenerCount === 1) this.refresh()
  }

  /** See `Cache.once`. */
  once(event: CacheEventName, listener: AnyListener): void {
    checkListener(event, listener)
    const wrapper = Object.assign(
      (e: OperationEvent) => {
        this.off(event, wrapper)
        return listener(e)
      },
      { listener },
    ) as OnceWrapper
    this.on(event, wrapper)
  }

  /** See `Cache.off`. Removes the most recently added registration of `listener`. */
  off(event: CacheEventName, listener: AnyListener): void {
    const list = this.#listeners[event]
    if (list === undefined) return
    let at = -1
    for (let i = list.length - 1; i >= 0; i--) {
      const l = list[i] as AnyListener | OnceWrapper
      if (l === listener || ('listener' in l && l.listener === listener)) {
        at = i
        break
      }
    }
    if (at < 0) return
    const next = list.filter((_, i) => i !== at)
    if (next.length === 0) delete this.#listeners[event]
    else this.#listeners[event] = next
    this.#listenerCount--
    if (this.#listenerCount === 0) this.refresh()
  }

  /** How many listeners `event` has (all events without one). */
  listenerCount(event?: CacheEventName): number {
    return event === undefined ? this.#listenerCount : (this.#listeners[event]?.length ?? 0)
  }

  /** Hands a settled operation to the listeners. Never throws. @internal */
  dispatch(event: OperationEvent, slot: Slot, value: unknown): void {
    if (this.#listenerCount === 0) return
    const l = this.#listeners
    if (l.operation) this.#emit(l.operation, event, slot)
    const op = event.operation
    if (event.status === 'error') {
      if (l.error) this.#emit(l.error, event, slot)
    } else if (op === 'get') {
      const list = event.status === 'hit' ? l.hit : l.miss
      if (list) this.#emit(list, event, slot)
    } else if (op === 'getMany') {
      if (l.hit || l.miss) this.#perKey(event, slot, value as readonly unknown[])
    } else if (WRITES.has(op)) {
      if (l.set && written(op, value) > 0) this.#emit(l.set, event, slot)
    } else if (DELETES.has(op)) {
      if (l.delete) this.#emit(l.delete, event, slot)
    } else if (op === 'clear') {
      if (l.clear) this.#emit(l.clear, event, slot)
    }
  }

  /** One `hit` or `miss` per key of a `getMany`, in key order. */
  #perKey(event: OperationEvent, slot: Slot, values: readonly unknown[]): void {
    const keys = event.keys ?? []
    for (let i = 0; i < keys.length; i++) {
      const hit = values[i] !== undefined
      const list = hit ? this.#listeners.hit : this.#listeners.miss
      if (list === undefined) continue
      const e: KeyEvent = {
        ...event,
        key: keys[i] as string,
        status: hit ? 'hit' : 'miss',
        hits: hit ? 1 : 0,
        misses: hit ? 0 : 1,
      }
      this.#emit(list, e, slot)
    }
  }

  #emit(list: readonly AnyListener[], event: OperationEvent, slot: Slot): void {
    for (const listener of list) {
      try {
        const r = listener(event)
        if (typeof (r as PromiseLike<unknown> | undefined)?.then === 'function') {
          ;(r as PromiseLike<unknown>).then(undefined, (error: unknown) =>
            listenerFailed(slot, error),
          )
        }
      } catch (error) {
        listenerFailed(slot, error)
      }
    }
  }

  /** See `Cache.stats`. */
  stats(): CacheStats {
    const stats: CacheStats = {
      views: {},
      memoized: {},
      getOrSet: {},
      fragments: {},
      backend: { hits: 0, misses: 0, sets: 0, deletes: 0, errors: 0 },
      operations: [],
    }
    for (const slot of this.#slots) slot.observer.collect(stats)
    return stats
  }

  /** See `Cache.resetStats`. */
  resetStats(): void {
    for (const slot of this.#slots) slot.observer.reset()
  }
}

function checkListener(event: unknown, listener: unknown): void {
  if (typeof listener !== 'function') {
    throw new TypeError(`cache.on(${JSON.stringify(event)}): the listener must be a function`)
  }
  if (!EVENT_NAMES.has(event as CacheEventName)) {
    throw new TypeError(
      `cache.on: unknown event ${JSON.stringify(event)} (one of ${[...EVENT_NAMES].join(', ')})`,
    )
  }
}

const EVENT_NAMES = new Set<CacheEventName>([
  'hit',
  'miss',
  'set',
  'delete',
  'clear',
  'error',
  'operation',
])

function listenerFailed(slot: Slot, error: unknown): void {
  slot.settings.reporter.report('cache event listener', error, 'the listener error was ignored')
}
