/**
 * The `cachette:operation` diagnostics_channel, on which observed backend
 * operations are published.
 */
import diagnosticsChannel from 'node:diagnostics_channel'
import type { OperationEvent } from './types.js'

/**
 * The handlers {@link OperationChannel.subscribe} takes, each optional, each
 * given the operation's {@link OperationEvent}.
 */
export interface OperationChannelHandlers {
  /** The operation was called. */
  start?(event: OperationEvent): void
  /** The call returned its promise. */
  end?(event: OperationEvent): void
  /** The promise settled (after `error` when it rejected). */
  asyncStart?(event: OperationEvent): void
  /** The settlement's handlers ran. */
  asyncEnd?(event: OperationEvent): void
  /** The operation failed. */
  error?(event: OperationEvent): void
}

/**
 * One of the five channels of {@link operationChannel}: Node's
 * `diagnostics_channel.Channel`, whose messages are {@link OperationEvent}s.
 */
export interface OperationSubChannel {
  /** Whether anyone subscribed to this channel. */
  readonly hasSubscribers: boolean
  /** Publishes an event to this channel's subscribers. */
  publish(event: OperationEvent): void
  /** Adds a subscriber. */
  subscribe(onMessage: (message: unknown, name: string | symbol) => void): void
  /** Removes a subscriber; resolves whether it was subscribed. */
  unsubscribe(onMessage: (message: unknown, name: string | symbol) => void): boolean | undefined
  /**
   * Makes `store` hold `transform(event)` (or the event) while the operation
   * runs: on the `start` channel, for the backend call's async context.
   */
  bindStore<T>(store: AsyncStorage<T>, transform?: (event: OperationEvent) => T): void
  /** Removes a store bound with {@link OperationSubChannel.bindStore}. */
  unbindStore(store: AsyncStorage<unknown>): boolean | undefined
  /** Runs `fn` with the bound stores set from `event`, publishing it first. @internal */
  runStores<R>(event: OperationEvent, fn: () => R): R
}

/**
 * What {@link OperationSubChannel.bindStore} takes: an `AsyncLocalStorage`
 * (from `node:async_hooks`), typed by the two methods the channel calls.
 */
export interface AsyncStorage<T> {
  /** Runs `callback` with `store` as the current value. */
  run<R>(store: T, callback: () => R): R
  /** The current value, if any. */
  getStore(): T | undefined
}

/**
 * The `cachette:operation` channel's type: the members of Node's
 * `diagnostics_channel.TracingChannel` cachette uses and documents, with
 * {@link OperationEvent} as the message. It is declared here rather than as
 * `TracingChannel<...>` because `@types/node` swapped that type's parameters
 * (context first since version 24), so neither spelling compiles with both.
 */
export interface OperationChannel {
  /** Published as the operation is called. */
  readonly start: OperationSubChannel
  /** Published when the call returned its promise. */
  readonly end: OperationSubChannel
  /** Published when the promise settled. */
  readonly asyncStart: OperationSubChannel
  /** Published after the settlement's handlers. */
  readonly asyncEnd: OperationSubChannel
  /** Published when the operation failed. */
  readonly error: OperationSubChannel
  /** Subscribes the given handlers to their channels. */
  subscribe(handlers: OperationChannelHandlers): void
  /** Unsubscribes handlers given to {@link OperationChannel.subscribe}. */
  unsubscribe(handlers: OperationChannelHandlers): boolean | undefined
}

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
export const operationChannel: OperationChannel = diagnosticsChannel.tracingChannel(
  OPERATION_CHANNEL,
) as unknown as OperationChannel

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
