/**
 * Two tiers and the invalidation bus: an Express app whose cache is an
 * in-process first tier (60 s) in front of Redis, kept coherent across
 * processes by a RedisBus. It needs a redis-server (`redis-server --port 6379`,
 * or `apt-get install redis-server`), then:
 *
 *   npx tsx examples/two-tiers/server.ts              # http://localhost:3000
 *   PORT=3001 npx tsx examples/two-tiers/server.ts    # a second process
 *
 * Open /product/1 on both ports (the second one reads what the first stored),
 * then POST a new price to one of them:
 *
 *   curl -X POST 'localhost:3000/product/1?price=12'
 *
 * and the other shows the new price at once, although its first tier keeps
 * entries for 60 s: the write told it to drop its copy. Stop redis-server
 * while both run: pages already in memory keep being served (for at most
 * busDownTimeout, 5 s), the others are computed, no request fails, and a
 * warning says the circuit breaker opened; start it again and caching
 * resumes. Environment: REDIS_URL (default redis://127.0.0.1:6379/0), PORT.
 */
import express from 'express'
import { RedisCache, redisBus } from '../../src/backends/redis/index.js'
import { Cache, guardOf, TieredCache } from '../../src/index.js'

const cache = new Cache({
  CACHE_TYPE: TieredCache.over(RedisCache, { bus: redisBus(), firstTimeout: 60 }),
  CACHE_REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/0',
  // The bus channel is derived from it: another app with another prefix is not disturbed.
  CACHE_KEY_PREFIX: 'two-tiers-example:',
  CACHE_DEFAULT_TIMEOUT: 300,
  // The defaults, spelled out: see "When a backend is down" in the README.
  CACHE_OPERATION_TIMEOUT: 5,
  CACHE_CIRCUIT_BREAKER: { failures: 10, openFor: '5s' },
})

/** The "database": prices live in Redis too, so every process sees the same ones. */
async function priceOf(id: number): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 200)) // a slow query
  return ((await cache.get<number>(`price:${id}`)) ?? 10) as number
}

const product = cache.memoize(
  async (id: number) => ({ id, price: await priceOf(id), computedBy: process.pid }),
  { timeout: 300 },
)

const app = express()
cache.initApp(app)

app.get('/product/:id', async (req, res) => {
  res.json(await product(Number(req.params.id)))
})

app.post('/product/:id', async (req, res) => {
  const id = Number(req.params.id)
  await cache.set(`price:${id}`, Number(req.query.price ?? 10), 0)
  // Forget the memoized result here, in Redis, and (through the bus) in every other process.
  await cache.deleteMemoized(product, id)
  res.json({ id, price: Number(req.query.price ?? 10) })
})

app.get('/', cache.cached({ timeout: 60, responseHitIndication: true }), (_req, res) => {
  res.type('text/plain').send(`Rendered by process ${process.pid} at ${new Date().toISOString()}\n`)
})

app.get('/status', (_req, res) => {
  const tiered = cache.backend as TieredCache
  res.json({
    pid: process.pid,
    instanceId: tiered.instanceId,
    busConnected: tiered.busConnected,
    firstTierEntries: tiered.first.size,
    circuit: guardOf(tiered.second)?.state,
  })
})

const port = Number(process.env.PORT ?? 3000)
app.listen(port, () => {
  console.log(`two-tiers example (pid ${process.pid}) on http://localhost:${port}`)
})
