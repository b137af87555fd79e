/**
 * `cachette/otel`: OpenTelemetry spans for cache operations, built on the
 * `cachette:operation` diagnostics_channel TracingChannel (as
 * @bentocache/otel is): every backend operation of a traced cache, including
 * those of the memoize and view engines, becomes a span `cache <operation>`.
 *
 * `@opentelemetry/api` is an optional peer dependency, loaded when tracing is
 * enabled (a missing one is a `MissingDependencyError` naming it).
 * {@link observeAllCaches} and {@link operationChannel} need nothing: they
 * are for APM agents that subscribe to the channel themselves.
 *
 * @module cachette/otel
 */
import { createHash } from 'node:crypto'
import type { Attributes, Span, SpanKind, Tracer } from '@opentelemetry/api'
import type { Cache } from '../cache.js'
import {
  type CacheObservation,
  OPERATION_CHANNEL,
  type OperationEvent,
  ORIGIN,
  observeAllCaches,
  operationChannel,
} from '../core/events.js'
import { loadOptional } from '../core/optional.js'

export type {
  BackendOperation,
  OperationChannel,
  OperationChannelHandlers,
  OperationEvent,
  OperationStatus,
  OperationSubChannel,
} from '../core/events.js'
export { OPERATION_CHANNEL, observeAllCaches, operationChannel }

type OtelApi = typeof import('@opentelemetry/api')

/** How keys appear on spans (keys may hold user data: ids, emails, paths). */
export type KeyAttributeMode = 'raw' | 'hash' | 'omit' | ((key: string) => string | undefined)

/** Options of {@link instrumentCache} and {@link enableCacheTracing}. */
export interface CacheTracingOptions {
  /** The tracer spans come from. @default trace.getTracer('cachette') */
  tracer?: Tracer
  /**
   * `cache.key` (and `cache.keys`) attributes: the key as it is (`'raw'`),
   * its SHA-256 truncated to 16 hex digits (`'hash'`), none (`'omit'`), or
   * what a function returns (`undefined` leaves it out).
   * @default 'raw'
   */
  keys?: KeyAttributeMode
  /** Only trace operations inside an active span (skips startup and background work). @default false */
  requireParentSpan?: boolean
  /** The spans' kind. @default SpanKind.INTERNAL */
  spanKind?: SpanKind
}

/** What {@link instrumentCache} and {@link enableCacheTracing} return. */
export interface CacheTracing {
  /** Stops creating spans (and stops observing the cache, unless something else does). */
  disable(): void
}

/** Multi-key operations list at most this many keys in `cache.keys`. */
const MAX_KEYS_ATTRIBUTE = 50

/** Events some instrumentation already made a span for: a cache traced twice gets one span per operation. */
const claimed = new WeakSet<OperationEvent>()

/**
 * Traces one cache: a span per backend operation of `cache` (every app's
 * backend), named `cache <operation>` (`cache get`, `cache getMany`, ...),
 * with `cache.operation`, `cache.backend`, `cache.key` or `cache.keys` and
 * `cache.key_count`, and when it ends `cache.hit` (`get`, `has`) or
 * `cache.hits`/`cache.misses` (`getMany`). A failed operation records the
 * exception and sets the status to ERROR. Spans are children of the span
 * active at the call.
 *
 * @example
 * import { instrumentCache } from 'cachette/otel'
 * instrumentCache(cache, { keys: 'hash' })
 */
export function instrumentCache(cache: Cache, options: CacheTracingOptions = {}): CacheTracing {
  const api = loadOptional<OtelApi>('@opentelemetry/api', 'cachette/otel')
  const observation: CacheObservation = cache.observation
  const unsubscribe = subscribe(api, options, (e) => origin(e) === observation)
  const release = observation.trace()
  return once(() => {
    unsubscribe()
    release()
  })
}

/**
 * Traces every Cache of the process, existing and future; see
 * {@link instrumentCache} for the spans. Call it where the OpenTelemetry SDK
 * is set up.
 */
export function enableCacheTracing(options: CacheTracingOptions = {}): CacheTracing {
  const api = loadOptional<OtelApi>('@opentelemetry/api', 'cachette/otel')
  const unsubscribe = subscribe(api, options, () => true)
  const release = observeAllCaches()
  return once(() => {
    unsubscribe()
    release()
  })
}

function once(fn: () => void): CacheTracing {
  let done = false
  return {
    disable() {
      if (done) return
      done = true
      fn()
    },
  }
}

function origin(e: OperationEvent): unknown {
  return (e as { [ORIGIN]?: unknown })[ORIGIN]
}

/** Subscribes span-making handlers to the channel; returns the unsubscribe. */
function subscribe(
  api: OtelApi,
  options: CacheTracingOptions,
  accept: (e: OperationEvent) => boolean,
): () => void {
  const tracer = options.tracer ?? api.trace.getTracer('cachette')
  const keyOf = keyAttribute(options.keys ?? 'raw')
  const kind = options.spanKind ?? api.SpanKind.INTERNAL
  const spans = new WeakMap<OperationEvent, Span>()
  const handlers = {
    start(e: OperationEvent) {
      if (claimed.has(e) || !accept(e)) return
      const parent = api.context.active()
      if (options.requireParentSpan && api.trace.getSpan(parent) === undefined) return
      claimed.add(e)
      const attributes: Attributes = {
        'cache.operation': e.operation,
        'cache.backend': e.backend,
      }
      if (e.key !== undefined) {
        const k = keyOf(e.key)
        if (k !== undefined) attributes['cache.key'] = k
      }
      if (e.keys !== undefined) {
        attributes['cache.key_count'] = e.keys.length
        const ks: string[] = []
        for (const key of e.keys.slice(0, MAX_KEYS_ATTRIBUTE)) {
          const k = keyOf(key)
          if (k !== undefined) ks.push(k)
        }
        if (ks.length > 0) attributes['cache.keys'] = ks
      }
      spans.set(e, tracer.startSpan(`cache ${e.operation}`, { kind, attributes }, parent))
    },
    end() {},
    asyncStart() {},
    error(e: OperationEvent) {
      const span = spans.get(e)
      if (span === undefined) return
      const error = e.error
      span.recordException(
        error instanceof Error ? error : { name: 'Error', message: String(error) },
      )
      span.setStatus({
        code: api.SpanStatusCode.ERROR,
        message: error instanceof Error ? error.message : String(error),
      })
    },
    asyncEnd(e: OperationEvent) {
      const span = spans.get(e)
      if (span === undefined) return
      spans.delete(e)
      if (e.operation === 'get' || e.operation === 'has') {
        if (e.status !== 'error') span.setAttribute('cache.hit', e.status === 'hit')
      } else if (e.operation === 'getMany' && e.status !== 'error') {
        span.setAttribute('cache.hits', e.hits)
        span.setAttribute('cache.misses', e.misses)
      }
      span.end()
    },
  }
  operationChannel.subscribe(handlers)
  return () => {
    operationChannel.unsubscribe(handlers)
  }
}

function keyAttribute(mode: KeyAttributeMode): (key: string) => string | undefined {
  if (typeof mode === 'function') return mode
  if (mode === 'raw') return (key) => key
  if (mode === 'omit') return () => undefined
  if (mode === 'hash') {
    return (key) => createHash('sha256').update(key).digest('hex').slice(0, 16)
  }
  throw new TypeError(
    `cachette/otel: keys must be 'raw', 'hash', 'omit' or a function, got ${JSON.stringify(mode)}`,
  )
}
