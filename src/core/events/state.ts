/**
 * Process-wide observability state: `observeAllCaches()` and the registry of
 * live caches it refreshes.
 */

/**
 * Process-wide state, kept on `globalThis` so that the ESM and CommonJS
 * copies of cachette (the dual-package case) agree: `observeAllCaches()`
 * called through one applies to caches built by the other. @internal
 */
export interface GlobalState {
  /** How many `observeAllCaches()` (and `enableCacheTracing()`) calls are in force. */
  observeAll: number
  /** Every live CacheObservation, to refresh when `observeAll` changes. */
  readonly caches: Set<WeakRef<{ refresh(): void }>>
}

const STATE_KEY = Symbol.for('cachette.observability')
/** @internal */
export const state: GlobalState = ((globalThis as Record<symbol, unknown>)[STATE_KEY] as
  | GlobalState
  | undefined) ?? { observeAll: 0, caches: new Set() }
;(globalThis as Record<symbol, unknown>)[STATE_KEY] = state

/** Drops a collected cache's entry from {@link GlobalState.caches}. @internal */
export const forget = new FinalizationRegistry<WeakRef<{ refresh(): void }>>((ref) => {
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
