/**
 * The cachette side of the flask bench group (bench/groups/flask.ts): an
 * Express 5 app with cachette on `node:cluster`, 2 workers sharing one port,
 * the same three routes as bench/flask/app.py answering the same 1 KiB page:
 *
 * - `/uncached`: the view, no caching;
 * - `/cached`: the view behind `cached(cache, { timeout: 300 })` from `cachette/express`
 *   (Flask-Caching's `@cache.cached(timeout=300)`);
 * - `/memoized/:item`: a view answering `render(item)`, a
 *   `cache.memoize(fn, { timeout: 300 })` function (Flask-Caching's `@cache.memoize`).
 *
 * The cached view and the memoized function count their runs in Redis
 * (`bench:calls:cachette:<name>`, on an ioredis connection of their own), as
 * the Flask app does. Forked by the group with child_process.fork:
 * argv `<port> <redis url> <CACHE_TYPE>`; the primary speaks bench/lib/http.ts's
 * `ready`/`exit` protocol (bench/lib/cluster-primary.ts).
 */
import cluster from 'node:cluster'
import express from 'express'
import { Redis as IORedis } from 'ioredis'
import { cached } from '../../src/frameworks/express/index.js'
import { Cache, type CacheType } from '../../src/index.js'
import { exitWithPrimary, runPrimary } from '../lib/cluster-primary.js'
import { flaskPage, WORKERS } from './shared.js'

const [portArg, redisUrl, cacheType] = process.argv.slice(2)
const port = Number(portArg)

async function worker(): Promise<void> {
  exitWithPrimary()
  const body = flaskPage()
  const cache = new Cache({
    // RedisCache: one store for both workers (Flask-Caching's RedisCache); or SimpleCache per worker.
    CACHE_TYPE: (cacheType ?? 'RedisCache') as CacheType,
    CACHE_REDIS_URL: redisUrl,
    // Not Flask-Caching's `flask_cache_` (cachette's default too): the two apps share a redis-server.
    CACHE_KEY_PREFIX: 'cachette_',
    CACHE_DEFAULT_TIMEOUT: 300,
    CACHE_THRESHOLD: 10_000,
  })
  await cache.ready()
  const counts = new IORedis(redisUrl as string)
  const ran = (name: string): Promise<number> => counts.incr(`bench:calls:cachette:${name}`)
  const render = cache.memoize(
    async (_item: number) => {
      await ran('memoized')
      return body
    },
    { timeout: 300 },
  )

  const app = express()
  app.get('/uncached', (_req, res) => {
    res.send(body)
  })
  app.get('/cached', cached(cache, { timeout: 300 }), async (_req, res) => {
    await ran('cached')
    res.send(body)
  })
  app.get('/memoized/:item', async (req, res) => {
    res.send(await render(Number(req.params.item)))
  })
  app.listen(port, '127.0.0.1')
}

if (cluster.isPrimary) await runPrimary(WORKERS, port)
else await worker()
