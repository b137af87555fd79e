/**
 * One cache for every worker of a node:cluster, with no cache server:
 * ClusterCache keeps the entries in the primary process. Run it with
 *
 *   npx tsx examples/cluster/server.ts          # http://localhost:3000, 4 workers
 *
 * and reload http://localhost:3000/report a few times: the cluster hands each
 * connection to another worker, yet the page says it was rendered once, by
 * one worker, and every worker serves that copy. /visits counts across all
 * workers (inc is atomic in the primary); /square/12 is memoized for all of
 * them; POST /square/12/forget forgets it everywhere. Kill a worker
 * (`kill <pid>` with a pid from the page): the primary forks a new one, and
 * the entries are still there. Environment: PORT (default 3000), WORKERS
 * (default 4).
 */
import cluster from 'node:cluster'
import express from 'express'
import { Cache, ClusterCache } from '../../src/index.js'

const port = Number(process.env.PORT ?? 3000)

if (cluster.isPrimary) {
  // The store lives here; workers reach it over the cluster's IPC channel.
  ClusterCache.serve()
  const workers = Number(process.env.WORKERS ?? 4)
  for (let i = 0; i < workers; i++) cluster.fork()
  // A worker that dies is replaced; the cache keeps its entries.
  cluster.on('exit', (worker) => {
    console.log(`worker ${worker.process.pid} exited; forking another`)
    cluster.fork()
  })
  console.log(`primary ${process.pid}: ${workers} workers on http://localhost:${port}`)
} else {
  const cache = new Cache({
    CACHE_TYPE: 'ClusterCache',
    CACHE_THRESHOLD: 10_000,
    CACHE_DEFAULT_TIMEOUT: 300,
    // How long a worker waits for the primary before treating a call as a miss.
    CACHE_OPTIONS: { requestTimeout: 0.5 },
  })

  const square = cache.memoize(
    async function square(n: number) {
      await new Promise((resolve) => setTimeout(resolve, 300)) // slow work
      return { n, square: n * n, computedBy: process.pid }
    },
    { timeout: 60 },
  )

  const app = express()
  app.get('/', (_req, res) => {
    res.type('html').send(`<p>worker ${process.pid}</p><ul>
      <li><a href="/report">/report</a>: a cached view (30 s), rendered once for all workers</li>
      <li><a href="/visits">/visits</a>: a counter shared by all workers</li>
      <li><a href="/square/12">/square/12</a>: a memoized function</li></ul>`)
  })
  app.get('/report', cache.cached({ timeout: 30 }), async (_req, res) => {
    await new Promise((resolve) => setTimeout(resolve, 500)) // an expensive page
    res
      .type('text/plain')
      .send(`report rendered at ${new Date().toISOString()} by worker ${process.pid}\n`)
  })
  app.get('/visits', async (_req, res) => {
    res.json({ visits: await cache.inc('visits'), servedBy: process.pid })
  })
  app.get('/square/:n', async (req, res) => {
    res.json({ ...(await square(Number(req.params.n))), servedBy: process.pid })
  })
  app.post('/square/:n/forget', async (req, res) => {
    await cache.deleteMemoized(square, Number(req.params.n))
    res.json({ forgotten: true })
  })
  app.listen(port)
}
