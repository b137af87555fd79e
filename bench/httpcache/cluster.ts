/**
 * The httpcache group's cluster form: the cached app of
 * bench/httpcache/server.ts (`app.use(httpCache({ cache }))` in front of a
 * route sending the ~2 KB page with `Cache-Control: public, max-age=3600`)
 * on `node:cluster`, 2 workers sharing one port and one store:
 *
 * - `ClusterCache`: the store in the primary (`ClusterCache.serve()` before
 *   forking), reached over the cluster's IPC channel;
 * - `RedisCache`: the store on the group's redis-server;
 * - `TieredCache`: `TieredCache.over(RedisCache, { bus: redisBus(), firstTimeout: 60 })`,
 *   the store on the redis-server with a first tier in each worker, kept
 *   coherent by the Redis invalidation bus (a write or delete in one worker
 *   drops the key from the other's first tier).
 *
 * Every run of the route is reported to the primary (`countCall`), which
 * sums them in its `stats` answer: with a shared store the route runs once
 * over the whole run, whichever worker stored it. Forked by the group with
 * child_process.fork: argv `<port> <CACHE_TYPE> [redis url]`; the primary
 * speaks bench/lib/http.ts's `ready`/`stats`/`exit` protocol
 * (bench/lib/cluster-primary.ts).
 */
import cluster from 'node:cluster'
import express from 'express'
import { RedisCache, redisBus } from '../../src/backends/redis/index.js'
import { httpCache } from '../../src/frameworks/express/index.js'
import { Cache, type CacheConfig, ClusterCache, TieredCache } from '../../src/index.js'
import { countCall, exitWithPrimary, runPrimary } from '../lib/cluster-primary.js'
import { page } from '../lib/page.js'

/** Workers of the cluster form (the machine has 2 cores). */
export const CLUSTER_WORKERS = 2

const [portArg, cacheType, redisUrl] = process.argv.slice(2)
const port = Number(portArg)

/** The cache configuration of each store kind. */
const CONFIGS: Record<string, () => CacheConfig> = {
  ClusterCache: () => ({ CACHE_TYPE: 'ClusterCache', CACHE_THRESHOLD: 10_000 }),
  RedisCache: () => ({
    CACHE_TYPE: 'RedisCache',
    CACHE_REDIS_URL: redisUrl,
    CACHE_KEY_PREFIX: 'httpcache_',
  }),
  TieredCache: () => ({
    CACHE_TYPE: TieredCache.over(RedisCache, { bus: redisBus(), firstTimeout: 60 }),
    CACHE_REDIS_URL: redisUrl,
    CACHE_KEY_PREFIX: 'httpcache_tiered_',
  }),
}
const config = CONFIGS[cacheType as string]
if (config === undefined)
  throw new Error(
    `bench/httpcache/cluster.ts: CACHE_TYPE ${cacheType}, not one of ${Object.keys(CONFIGS).join(', ')}`,
  )

async function worker(): Promise<void> {
  exitWithPrimary()
  const body = page()
  const cache = new Cache((config as () => CacheConfig)())
  await cache.ready()
  const app = express()
  app.use(httpCache({ cache }))
  app.get('/page', (_req, res) => {
    countCall('cached')
    res.set('Cache-Control', 'public, max-age=3600')
    res.send(body)
  })
  app.listen(port, '127.0.0.1')
}

if (cluster.isPrimary) {
  if (cacheType === 'ClusterCache') ClusterCache.serve({ threshold: 10_000 })
  await runPrimary(CLUSTER_WORKERS, port)
} else {
  await worker()
}
