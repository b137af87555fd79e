/**
 * The `cachette:operation` diagnostics_channel, on which observed backend
 * operations are published.
 */
import diagnosticsChannel from 'node:diagnostics_channel'
import type { OperationEvent } from './types.js'

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

/** Whether anyone listens on {@link operationChannel}; `hasSubscribers` of the TracingChannel needs Node 20.13. @internal */
export function channelActive(): boolean {
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
