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
 *
 * This module is the entry; the pieces live in core/events/: `types.ts`
 * (the public types), `channel.ts` (the TracingChannel), `state.ts`
 * (process-wide state, `observeAllCaches`), `tally.ts` (the counters),
 * `instrument.ts` (the wrapper), `observer.ts` (`SlotObserver`) and
 * `observation.ts` (`CacheObservation`).
 */
export {
  type AsyncStorage,
  OPERATION_CHANNEL,
  type OperationChannel,
  type OperationChannelHandlers,
  type OperationSubChannel,
  operationChannel,
} from './events/channel.js'
export {
  instrumentBackend,
  type ObservedSlot,
  type Sink,
} from './events/instrument.js'
export { CacheObservation, type ObservationSlot } from './events/observation.js'
export { MAX_OUTCOME_NAMES, OVERFLOW_NAME, SlotObserver } from './events/observer.js'
export { ORIGIN, observeAllCaches } from './events/state.js'
export type {
  BackendOperation,
  BackendTotals,
  CacheEventName,
  CacheEvents,
  CacheListener,
  CacheStats,
  ErrorEvent,
  KeyEvent,
  OperationCount,
  OperationEvent,
  OperationStatus,
  Outcome,
  OutcomeCounts,
  OutcomeKind,
} from './events/types.js'
