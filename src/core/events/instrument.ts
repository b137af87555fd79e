/**
 * The instrumenting wrapper: a Proxy over a backend (`wrapBackend`, as the
 * guard) that times every data operation, counts it, publishes it on the
 * `cachette:operation` TracingChannel when that has subscribers, and hands
 * it to the Cache's listeners through a {@link Sink}.
 * @internal
 */
import { BACKEND_OPERATIONS, type BackendOperation, type CacheBackend, PEEK } from '../backend.js'
import { appContext } from '../context.js'
import type { ErrorReporter, Logger } from '../log.js'
import { type BackendMethod, wrapBackend } from '../wrap.js'
import { channelActive, operationChannel } from './channel.js'
import { ORIGIN } from './state.js'
import type { BackendTally, TallySource } from './tally.js'
import type { OperationEvent, OperationStatus } from './types.js'

/**
 * What observability needs of a slot (core/slot.ts's `Slot`, which imports
 * this side, so it is described here rather than imported).
 */
export interface ObservedSlot {
  /** The backend in use (the wrapper, while observed). */
  backend: CacheBackend | undefined
  /** Resolves to the backend in use. */
  readonly ready: Promise<CacheBackend>
  readonly settings: {
    /** Where warnings go. */
    readonly logger: Logger
    /** Rate-limited logging of absorbed errors (a failing listener's). */
    readonly reporter: ErrorReporter
  }
}

/** Where a wrapped backend reports its operations: the Cache's `CacheObservation`. */
export interface Sink {
  /** `value` is what the operation resolved with (`undefined` after an error); never handed to listeners. */
  dispatch(event: OperationEvent, slot: ObservedSlot, value: unknown): void
}

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

/** Operations that write entries. */
export const WRITES = new Set<BackendOperation>(['set', 'setMany', 'add', 'inc'])
/** Operations that remove entries. */
export const DELETES = new Set<BackendOperation>(['delete', 'deleteMany', 'unlink'])

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
export function written(op: BackendOperation, value: unknown): number {
  if (op === 'inc') return 1
  if (op === 'setMany') return Array.isArray(value) ? value.length : 0
  return value === true ? 1 : 0
}

/** Where an operation's first argument names its keys: a key, a list, `[key, value]` entries, or none. */
type KeysIn = 'key' | 'keys' | 'entries' | 'none'

/** How an operation is called: how many arguments it takes, and where its keys are. */
type CallShape = readonly [arity: 0 | 1 | 2 | 3, keys: KeysIn]

/**
 * How each operation is called: the wrapper passes exactly `arity`
 * arguments on, and takes the event's `key` or `keys` from the first.
 */
const CALLS: Readonly<Record<BackendOperation, CallShape>> = {
  get: [1, 'key'],
  getMany: [1, 'keys'],
  set: [3, 'key'],
  setMany: [2, 'entries'],
  add: [3, 'key'],
  delete: [1, 'key'],
  deleteMany: [1, 'keys'],
  unlink: [1, 'keys'],
  has: [1, 'key'],
  clear: [0, 'none'],
  inc: [2, 'key'],
  acquireLock: [3, 'key'],
  releaseLock: [2, 'key'],
}

/** The operations the wrapper replaces: all of {@link BACKEND_OPERATIONS} (optional ones only where the backend has them). */
const INSTRUMENTED: ReadonlySet<PropertyKey> = new Set<PropertyKey>(BACKEND_OPERATIONS)
/** {@link PEEK} is hidden, so view-cache hits take the async, instrumented `get`. */
const HIDDEN: ReadonlySet<PropertyKey> = new Set<PropertyKey>([PEEK])

/**
 * Wraps `raw` so every data operation is timed, counted, published on
 * {@link operationChannel} (when it has subscribers) and reported to `sink`.
 *
 * A Proxy rather than a class (`wrapBackend` of core/wrap.ts, as the
 * guard's), so that everything else a backend has
 * (`client`, `serializer`, `keys()`, `stats()`, methods added later to
 * `CacheBackend`, `instanceof`) keeps working on the wrapper. Other methods
 * are bound to the raw backend (private fields), and the instrumented ones
 * call the raw backend's, so a backend's internal calls (`BaseCache.getMany`
 * calling `this.get`) are not counted twice. {@link PEEK} reads as
 * `undefined`, so view-cache hits use `get` (and are observed).
 */
export function instrumentBackend(
  raw: CacheBackend,
  observer: TallySource,
  sink: Sink,
  slot: ObservedSlot,
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

  const b = raw as unknown as Record<BackendOperation, BackendMethod>
  /**
   * The instrumented `op`, with the operation's own arity. It calls the
   * backend's method as it is at the call (`raw[op]`), so it is built once.
   */
  const instrument = (op: BackendOperation): Function => {
    const [arity, keysIn] = CALLS[op]
    // Explicit parameters, not rest arguments: spreading costs on the hot path.
    const start = (first: unknown): MutableEvent =>
      keysIn === 'key'
        ? begin(op, first as string, undefined)
        : keysIn === 'keys'
          ? begin(op, undefined, first as readonly string[])
          : keysIn === 'entries'
            ? begin(
                op,
                undefined,
                (first as readonly (readonly [string, unknown])[]).map(([k]) => k),
              )
            : begin(op, undefined, undefined)
    switch (arity) {
      case 0:
        return () => run(start(undefined), () => b[op]() as Promise<unknown>)
      case 1:
        return (x: unknown) => run(start(x), () => b[op](x) as Promise<unknown>)
      case 2:
        return (x: unknown, y: unknown) => run(start(x), () => b[op](x, y) as Promise<unknown>)
      default:
        return (x: unknown, y: unknown, z: unknown) =>
          run(start(x), () => b[op](x, y, z) as Promise<unknown>)
    }
  }

  return wrapBackend(raw, {
    // Optional operations are instrumented only where the backend has them,
    // so `backend.unlink ? ... : ...` checks keep their answer.
    replaced: INSTRUMENTED,
    replace: (prop) => instrument(prop as BackendOperation),
    keep: 'forever',
    hidden: HIDDEN,
    // Every other method is bound to the backend, its own function-valued properties included.
    bind: 'bind-all',
  })
}
