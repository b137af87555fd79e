/**
 * The observability of one slot (`slot.observer`): the engines' outcome
 * counters, the backend tallies, and the swap of `slot.backend` for the
 * instrumenting wrapper and back.
 */
import { BACKEND_OPERATIONS, type CacheBackend } from '../backend.js'
import { warnOnce } from '../log.js'
import { instrumentBackend, type ObservedSlot, type Sink } from './instrument.js'
import { type BackendTally, newBackendTally, type OutcomeTally } from './tally.js'
import type { CacheStats, Outcome, OutcomeCounts, OutcomeKind } from './types.js'

/**
 * Names kept per kind and slot. Past it, outcomes count under
 * {@link OVERFLOW_NAME} (and a warning is logged once): a name built from
 * request data (a key, a path with ids) must not grow memory or the
 * Prometheus series without bound.
 */
export const MAX_OUTCOME_NAMES = 1000

/** The name outcomes are counted under once {@link MAX_OUTCOME_NAMES} is reached. */
export const OVERFLOW_NAME = '(other)'

/**
 * The observability of one slot (`slot.observer`): outcome counters, backend
 * tallies, and the swap of `slot.backend` for the instrumenting wrapper.
 */
export class SlotObserver {
  readonly #slot: ObservedSlot
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
  constructor(slot: ObservedSlot) {
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
      for (const operation of BACKEND_OPERATIONS) {
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
      for (const op of BACKEND_OPERATIONS) {
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
function setReady(slot: ObservedSlot, ready: Promise<CacheBackend>): void {
  ;(slot as { ready: Promise<CacheBackend> }).ready = ready
}

function setBackend(slot: ObservedSlot, backend: CacheBackend): void {
  slot.backend = backend
  setReady(slot, Promise.resolve(backend))
}
