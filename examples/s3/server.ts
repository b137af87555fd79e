/**
 * An Express app caching in an S3 bucket, with an in-memory first tier.
 * `npx tsx examples/s3/server.ts`. Environment:
 * - S3_BUCKET (required), S3_ENDPOINT_URL (an S3-compatible server, e.g.
 *   `npx s3rver -d /tmp/s3 --configure-bucket cache` then
 *   S3_ENDPOINT_URL=http://localhost:4568 with AWS_ACCESS_KEY_ID=S3RVER
 *   AWS_SECRET_ACCESS_KEY=S3RVER);
 * - credentials and region from the usual AWS environment;
 * - PORT: the HTTP port (default 3000).
 */
import express from 'express'
import { S3Cache } from '../../src/backends/s3/index.js'
import { Cache, TieredCache } from '../../src/index.js'

const cache = new Cache({
  // Memory first (10 s at most), then S3.
  CACHE_TYPE: TieredCache.over(S3Cache, { firstTimeout: 10 }),
  CACHE_S3_BUCKET: process.env.S3_BUCKET,
  CACHE_S3_ENDPOINT_URL: process.env.S3_ENDPOINT_URL,
  CACHE_KEY_PREFIX: 'example/',
  CACHE_DEFAULT_TIMEOUT: 3600,
  CACHE_OPTIONS: { purge_expired_on_read: true },
})

/** An expensive report, as a slow query would produce. */
const report = cache.memoize(
  async (year: number) => {
    await new Promise((resolve) => setTimeout(resolve, 1000))
    return { year, rows: Array.from({ length: 1000 }, (_, i) => ({ i, value: Math.sin(i) })) }
  },
  { timeout: '1h' },
)

const app = express()
cache.initApp(app)

app.get('/', cache.cached({ timeout: 60, responseHitIndication: true }), (_req, res) => {
  res.send(`Rendered at ${new Date().toISOString()}; cached in S3 for 60 s.\n`)
})

app.get('/report/:year', async (req, res) => {
  res.json(await report(Number(req.params.year)))
})

app.get('/lifecycle', (_req, res) => {
  // The bucket rule that removes expired cache objects (review, then run it).
  const backend = (cache.backend as TieredCache).second as S3Cache
  res.type('text/plain').send(`${backend.lifecycleCommand()}\n`)
})

const port = Number(process.env.PORT ?? 3000)
app.listen(port, () => console.log(`S3 example on http://localhost:${port}`))
