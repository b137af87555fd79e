/**
 * The Cache's side of observability (`CacheObservation`, one per Cache): its
 * listeners, whether it is observed, and its slots, adopted as the Cache
 * builds them.
 */
import { isThenable } from '../promise.js'
import { DELETES, type ObservedSlot, type Sink, WRITES, written } from './instrument.js'
import type { SlotObserver } from './observer.js'
import { forget, state } from './state.js'
import type { CacheEventName, CacheStats, KeyEvent, OperationEvent } from './types.js'

/** A slot as a Cache hands it to its {@link CacheObservation}: core/slot.ts's `Slot`. */
export interface ObservationSlot extends ObservedSlot {
  readonly observer: SlotObserver
}

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
  readonly #slots: Set<ObservationSlot>
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
  constructor(slots: Set<ObservationSlot>) {
    this.#slots = slots
    for (const slot of slots) this.adopt(slot)
    const ref = new WeakRef(this)
    state.caches.add(ref)
    forget.register(this, ref)
  }

  /** Brings a new slot under this Cache's observation state. */
  adopt(slot: ObservationSlot): void {
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
  dispatch(event: OperationEvent, slot: ObservedSlot, value: unknown): void {
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
  #perKey(event: OperationEvent, slot: ObservedSlot, values: readonly unknown[]): void {
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

  #emit(list: readonly AnyListener[], event: OperationEvent, slot: ObservedSlot): void {
    for (const listener of list) {
      try {
        const r = listener(event)
        if (isThenable(r)) r.then(undefined, (error: unknown) => listenerFailed(slot, error))
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

function listenerFailed(slot: ObservedSlot, error: unknown): void {
  slot.settings.reporter.report('cache event listener', error, 'the listener error was ignored')
}
