/**
 * An Express app caching in memcached: views, a memoized function and a
 * counter. Start memcached first (`memcached -p 11211`), then
 * `npx tsx examples/memcached/server.ts`. Environment:
 * - MEMCACHED_SERVERS: comma-separated `host:port` list (default 127.0.0.1:11211);
 * - MEMCACHED_USERNAME / MEMCACHED_PASSWORD: SASL credentials (SASLMemcachedCache);
 * - SPREAD=1: SpreadSASLMemcachedCache, so /report can store its 3 MB body;
 * - PORT: the HTTP port (default 3000).
 */
import express from 'express'
import { Cache } from '../../src/index.js'

const username = process.env.MEMCACHED_USERNAME
const cache = new Cache({
  CACHE_TYPE: process.env.SPREAD
    ? 'SpreadSASLMemcachedCache'
    : username
      ? 'SASLMemcachedCache'
      : 'MemcachedCache',
  CACHE_MEMCACHED_SERVERS: process.env.MEMCACHED_SERVERS ?? '127.0.0.1:11211',
  CACHE_MEMCACHED_USERNAME: username,
  CACHE_MEMCACHED_PASSWORD: process.env.MEMCACHED_PASSWORD,
  // clear() renews this prefix's namespace instead of flushing the servers.
  CACHE_KEY_PREFIX: 'example_',
  CACHE_DEFAULT_TIMEOUT: 300,
})

/** A slow lookup, as a database call would be. */
const slowSquare = cache.memoize(
  async (n: number) => {
    await new Promise((resolve) => setTimeout(resolve, 300))
    return { n, square: n * n, at: new Date().toISOString() }
  },
  { timeout: 60 },
)

const app = express()
cache.initApp(app)

app.get('/', cache.cached({ timeout: 30, responseHitIndication: true }), (_req, res) => {
  res.send(`Rendered at ${new Date().toISOString()}; reload within 30 s for the cached copy.\n`)
})

app.get('/square/:n', async (req, res) => {
  res.json(await slowSquare(Number(req.params.n)))
})

// A shared counter: atomic across every process using these servers.
app.get('/visits', async (_req, res) => {
  res.json({ visits: await cache.inc('visits') })
})

// Over memcached's 1 MiB item limit: cached only with SPREAD=1 (as chunks).
app.get('/report', cache.cached({ timeout: 60 }), (_req, res) => {
  res.type('text/plain').send('x'.repeat(3 * 1024 * 1024))
})

app.get('/clear', async (_req, res) => {
  res.json({ cleared: await cache.clear() })
})

const port = Number(process.env.PORT ?? 3000)
app.listen(port, () => {
  console.log(`memcached example on http://localhost:${port} (${cache.backend.constructor.name})`)
})
