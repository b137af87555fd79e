/**
 * An Express app whose cache is observable: Prometheus metrics at /metrics,
 * cache.stats() at /stats, error events logged, and (with OTEL=1) a span per
 * backend operation printed on the console.
 *
 * Run it with `npx tsx examples/observability/server.ts` (PORT, default
 * 3000; REDIS_URL=redis://127.0.0.1:6379 to use Redis instead of memory),
 * then:
 *
 *   curl localhost:3000/users/1; curl localhost:3000/users/1   # miss, then hit
 *   curl localhost:3000/square/12                               # a memoized call
 *   curl localhost:3000/metrics                                 # cachette_* metrics
 *   curl localhost:3000/stats                                   # the same as JSON
 */
import express from 'express'
import { collectDefaultMetrics, register } from 'prom-client'
import { Cache } from '../../src/index.js'
import { instrumentCache } from '../../src/observability/otel.js'
import { registerCacheMetrics } from '../../src/observability/prometheus.js'

const cache = new Cache(
  process.env.REDIS_URL
    ? { CACHE_TYPE: 'RedisCache', CACHE_REDIS_URL: process.env.REDIS_URL }
    : { CACHE_TYPE: 'SimpleCache' },
)

// Prometheus: cachette_operations_total, cachette_operation_duration_seconds,
// cachette_view_requests_total, cachette_memoize_calls_total, ...
registerCacheMetrics(cache)
collectDefaultMetrics()

// Events: here, backend errors (the request is still served, uncached).
cache.on('error', (e) => {
  console.warn(
    `cache ${e.operation} ${e.key ?? ''} failed after ${e.durationMs.toFixed(1)} ms:`,
    e.error,
  )
})

if (process.env.OTEL) {
  // A real app sets up the OpenTelemetry SDK (NodeSDK, an OTLP exporter) and
  // calls instrumentCache(cache) or enableCacheTracing(); the console exporter
  // keeps this example self-contained.
  const { BasicTracerProvider, ConsoleSpanExporter, SimpleSpanProcessor } = await import(
    '@opentelemetry/sdk-trace-base'
  )
  const provider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(new ConsoleSpanExporter())],
  })
  instrumentCache(cache, { tracer: provider.getTracer('example'), keys: 'hash' })
}

const square = cache.memoize(async (n: number) => {
  await new Promise((r) => setTimeout(r, 50))
  return n * n
})

const app = express()

app.get('/users/:id', cache.cached({ timeout: 30 }), (req, res) => {
  res.json({ id: req.params.id, at: new Date().toISOString() })
})

app.get('/square/:n', async (req, res) => {
  res.json({ n: Number(req.params.n), square: await square(Number(req.params.n)) })
})

app.get('/metrics', async (_req, res) => {
  res.type(register.contentType).send(await register.metrics())
})

app.get('/stats', (_req, res) => {
  res.json(cache.stats())
})

const port = Number(process.env.PORT ?? 3000)
app.listen(port, () => console.log(`http://localhost:${port}/metrics`))
