/**
 * `cachette/prometheus`: Prometheus metrics of a Cache with prom-client.
 *
 * Counters are read from `cache.stats()` when the registry is scraped
 * (prom-client `collect` callbacks), so nothing is counted twice; only the
 * duration histogram is fed per operation, from an `operation` listener
 * (which makes the Cache observed, see `Cache.on`).
 *
 * prom-client is an optional peer dependency, loaded by
 * {@link registerCacheMetrics} (a missing one is a `MissingDependencyError`
 * naming it); importing this module loads nothing.
 *
 * @module cachette/prometheus
 */
import type { Cache } from '../cache.js'
import type { BackendOperation, CacheStats, OperationEvent } from '../core/events.js'
import { type CircuitState, guardOf } from '../core/guard.js'
import { loadOptional } from '../core/optional.js'

type PromClient = typeof import('prom-client')
type Registry = import('prom-client').Registry
type Counter = import('prom-client').Counter<string>
type Gauge = import('prom-client').Gauge<string>
type Metric = import('prom-client').Metric<string>

/** What a registered metric's `get()` returns, as prom-client's registry reads it. */
interface MetricSnapshot {
  name: string
  help: string
  type: 'histogram'
  aggregator: 'sum'
  values: { labels: Record<string, string | number>; value: number; metricName: string }[]
}

/** Options of {@link registerCacheMetrics}. */
export interface CacheMetricsOptions {
  /** Where the metrics are registered. @default prom-client's global `register` */
  registry?: Registry
  /** Prepended to every metric name. @default 'cachette_' */
  prefix?: string
  /**
   * Buckets of the duration histogram, in seconds. The default spans 50 µs
   * (a memory hit) to 2.5 s (a backend timing out).
   */
  buckets?: readonly number[]
}

/** What {@link registerCacheMetrics} returns. */
export interface CacheMetrics {
  /**
   * Stops exporting this cache: removes its listener, and the metrics from
   * the registry once no cache registered with the same prefix is left.
   */
  unregister(): void
}

/** Default histogram buckets, seconds. */
export const DEFAULT_DURATION_BUCKETS: readonly number[] = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
]

/** The metrics of one registry and prefix, shared by every cache registered there. */
interface Shared {
  readonly caches: Set<Cache>
  readonly histogram: DurationHistogram
  readonly names: readonly string[]
}

/** One label set of the duration histogram. */
interface Series {
  readonly operation: BackendOperation
  readonly backend: string
  /** Observations per bucket (not cumulative); the last slot is past the largest bucket. */
  readonly counts: number[]
  sum: number
  count: number
}

/**
 * `cachette_operation_duration_seconds`. prom-client's Histogram hashes and
 * validates its labels on every `observe()` (about half a microsecond, more
 * than an observed memory `get` itself), so durations are bucketed here, by
 * operation then backend, and exported in prom-client's metric shape (the
 * `get()` of a registered metric: what `registry.metrics()` and
 * `getMetricsAsJSON()` read, and the same output a prom-client Histogram gives).
 */
class DurationHistogram {
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  readonly labelNames = ['operation', 'backend'] as const
  readonly #series = new Map<BackendOperation, Map<string, Series>>()

  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
  ) {}

  observe(operation: BackendOperation, backend: string, seconds: number): void {
    let byBackend = this.#series.get(operation)
    if (byBackend === undefined) {
      byBackend = new Map()
      this.#series.set(operation, byBackend)
    }
    let series = byBackend.get(backend)
    if (series === undefined) {
      series = { operation, backend, counts: this.buckets.map(() => 0), sum: 0, count: 0 }
      series.counts.push(0)
      byBackend.set(backend, series)
    }
    const buckets = this.buckets
    let i = 0
    while (i < buckets.length && seconds > (buckets[i] as number)) i++
    series.counts[i] = (series.counts[i] ?? 0) + 1
    series.sum += seconds
    series.count++
  }

  async get(): Promise<MetricSnapshot> {
    const values: MetricSnapshot['values'] = []
    for (const byBackend of this.#series.values()) {
      for (const s of byBackend.values()) {
        const labels = { operation: s.operation, backend: s.backend }
        let cumulative = 0
        this.buckets.forEach((le, i) => {
          cumulative += s.counts[i] as number
          values.push({
            labels: { le, ...labels },
            value: cumulative,
            metricName: `${this.name}_bucket`,
          })
        })
        values.push({
          labels: { le: '+Inf', ...labels },
          value: s.count,
          metricName: `${this.name}_bucket`,
        })
        values.push({ labels, value: s.sum, metricName: `${this.name}_sum` })
        values.push({ labels, value: s.count, metricName: `${this.name}_count` })
      }
    }
    return {
      name: this.name,
      help: this.help,
      type: 'histogram',
      values,
      aggregator: 'sum',
    }
  }

  reset(): void {
    this.#series.clear()
  }
}

const shared = new WeakMap<Registry, Map<string, Shared>>()

/** One outcome counter: section of `stats()`, metric suffix, name label, help. */
const OUTCOME_COUNTERS: readonly [
  section: 'views' | 'memoized' | 'getOrSet' | 'fragments',
  suffix: string,
  label: string,
  help: string,
][] = [
  ['views', 'view_requests_total', 'view', 'Requests of cached views by outcome'],
  ['memoized', 'memoize_calls_total', 'function', 'Calls of memoized functions by outcome'],
  ['getOrSet', 'getorset_calls_total', 'name', 'getOrSet calls by outcome'],
  ['fragments', 'fragment_requests_total', 'fragment', 'Cached template fragments by outcome'],
]

const OUTCOMES = [
  ['hits', 'hit'],
  ['misses', 'miss'],
  ['stale', 'stale'],
  ['bypass', 'bypass'],
] as const

/**
 * Registers Prometheus metrics of `cache`:
 *
 * - `cachette_operations_total{operation,backend,result}`: backend calls
 *   (`result`: `hit`, `miss`, `ok`, `error`; see `OperationStatus`);
 * - `cachette_operation_duration_seconds{operation,backend}`: their durations;
 * - `cachette_key_lookups_total{result}`: keys read by `get` and `getMany`,
 *   found (`hit`) or not (`miss`);
 * - `cachette_view_requests_total{view,outcome}`,
 *   `cachette_memoize_calls_total{function,outcome}`,
 *   `cachette_getorset_calls_total{name,outcome}`,
 *   `cachette_fragment_requests_total{fragment,outcome}`: the engines'
 *   outcomes (`hit`, `miss`, `stale`, `bypass`);
 * - `cachette_circuit_breakers{backend,state}`: guarded backends (see
 *   `guardOf`) by circuit state (`closed`, `open`, `half-open`), 1 for the
 *   state each one is in and 0 for the others.
 *
 * Several caches may be registered in one registry: their numbers add up.
 * Backend metrics count from this call on (it makes the cache observed);
 * outcome counters from the cache's creation. `cache.resetStats()` shows as
 * a counter reset, which `rate()` handles.
 *
 * @example
 * import { register } from 'prom-client'
 * registerCacheMetrics(cache)
 * app.get('/metrics', async (_req, res) => res.type(register.contentType).send(await register.metrics()))
 */
export function registerCacheMetrics(
  cache: Cache,
  options: CacheMetricsOptions = {},
): CacheMetrics {
  const client = loadOptional<PromClient>('prom-client', 'cachette/prometheus')
  const registry = options.registry ?? client.register
  const prefix = options.prefix ?? 'cachette_'
  let byPrefix = shared.get(registry)
  if (byPrefix === undefined) {
    byPrefix = new Map()
    shared.set(registry, byPrefix)
  }
  let metrics = byPrefix.get(prefix)
  // Someone cleared the registry (`registry.clear()`): start over.
  if (metrics !== undefined && registry.getSingleMetric(metrics.names[0] as string) === undefined) {
    metrics = undefined
  }
  if (metrics === undefined) {
    metrics = createMetrics(client, registry, prefix, options.buckets ?? DEFAULT_DURATION_BUCKETS)
    byPrefix.set(prefix, metrics)
  }
  const m = metrics
  if (m.caches.has(cache)) throw new Error('registerCacheMetrics: this cache is already registered')
  m.caches.add(cache)

  const listener = (e: OperationEvent): void => {
    m.histogram.observe(e.operation, e.backend, e.durationMs / 1000)
  }
  cache.on('operation', listener)

  let done = false
  return {
    unregister() {
      if (done) return
      done = true
      cache.off('operation', listener)
      m.caches.delete(cache)
      if (m.caches.size === 0) {
        for (const name of m.names) registry.removeSingleMetric(name)
        byPrefix.delete(prefix)
      }
    },
  }
}

function createMetrics(
  client: PromClient,
  registry: Registry,
  prefix: string,
  buckets: readonly number[],
): Shared {
  const caches = new Set<Cache>()
  const statsOf = (): CacheStats[] => [...caches].map((c) => c.stats())
  const names: string[] = []
  const registers = [registry]

  const operations = `${prefix}operations_total`
  names.push(operations)
  new client.Counter({
    name: operations,
    help: 'Backend operations by operation, backend class and result (counted while observed)',
    labelNames: ['operation', 'backend', 'result'],
    registers,
    collect(this: Counter) {
      this.reset()
      for (const stats of statsOf()) {
        for (const o of stats.operations) {
          this.inc({ operation: o.operation, backend: o.backend, result: o.status }, o.count)
        }
      }
    },
  })

  const lookups = `${prefix}key_lookups_total`
  names.push(lookups)
  new client.Counter({
    name: lookups,
    help: 'Keys read by get and getMany, found (hit) or not (miss)',
    labelNames: ['result'],
    registers,
    collect(this: Counter) {
      this.reset()
      for (const stats of statsOf()) {
        this.inc({ result: 'hit' }, stats.backend.hits)
        this.inc({ result: 'miss' }, stats.backend.misses)
      }
    },
  })

  for (const [section, suffix, label, help] of OUTCOME_COUNTERS) {
    const name = prefix + suffix
    names.push(name)
    new client.Counter({
      name,
      help,
      labelNames: [label, 'outcome'],
      registers,
      collect(this: Counter) {
        this.reset()
        for (const stats of statsOf()) {
          for (const [id, counts] of Object.entries(stats[section])) {
            for (const [field, outcome] of OUTCOMES) {
              this.inc({ [label]: id, outcome }, counts[field])
            }
          }
        }
      },
    })
  }

  const breakers = `${prefix}circuit_breakers`
  names.push(breakers)
  new client.Gauge({
    name: breakers,
    help: 'Guarded backends by circuit breaker state (closed, open, half-open)',
    labelNames: ['backend', 'state'],
    registers,
    collect(this: Gauge) {
      this.reset()
      for (const cache of caches) {
        for (const guard of guardsOf(cache)) {
          const now = guard.state
          for (const state of CIRCUIT_STATES) {
            this.inc({ backend: guard.name, state }, state === now ? 1 : 0)
          }
        }
      }
    },
  })

  const duration = `${prefix}operation_duration_seconds`
  names.push(duration)
  const histogram = new DurationHistogram(
    duration,
    'Duration of backend operations, seconds (counted while observed)',
    [...buckets].sort((a, b) => a - b),
  )
  registry.registerMetric(histogram as unknown as Metric)
  return { caches, histogram, names }
}

const CIRCUIT_STATES: readonly CircuitState[] = ['closed', 'open', 'half-open']

/** The guards of a cache's backend: the backend's own, or a TieredCache's second tier's. */
function guardsOf(cache: Cache): NonNullable<ReturnType<typeof guardOf>>[] {
  let backend: unknown
  try {
    backend = cache.backend
  } catch {
    return [] // still loading
  }
  const guard = guardOf(backend) ?? guardOf((backend as { second?: unknown }).second)
  return guard === undefined ? [] : [guard]
}
