/**
 * An Express app caching in a Google Cloud Storage bucket: views, a memoized
 * function and a counter. `npx tsx examples/gcs/server.ts`. Environment:
 * - GCS_BUCKET: the bucket (it must exist; default `cachette-example`);
 * - GCS_ENDPOINT: another endpoint, e.g. an emulator
 *   (`http://127.0.0.1:4443`), used without credentials; without it the
 *   client library's Application Default Credentials reach the real GCS;
 * - PORT: the HTTP port (default 3000).
 */
import express from 'express'
import { GoogleCloudStorageCache } from '../../src/backends/gcs/index.js'
import { Cache } from '../../src/index.js'

const endpoint = process.env.GCS_ENDPOINT
const cache = new Cache({
  CACHE_TYPE: GoogleCloudStorageCache,
  CACHE_GCS_BUCKET: process.env.GCS_BUCKET ?? 'cachette-example',
  // clear() deletes exactly the objects under this prefix.
  CACHE_KEY_PREFIX: 'example/',
  CACHE_DEFAULT_TIMEOUT: 300,
  CACHE_OPTIONS: endpoint ? { api_endpoint: endpoint, anonymous: true } : {},
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

// Atomic across processes (compare-and-swap on the object's generation).
app.get('/visits', async (_req, res) => {
  res.json({ visits: await cache.inc('visits') })
})

// A large body: objects have no practical size limit.
app.get('/report', cache.cached({ timeout: 60 }), (_req, res) => {
  res.type('text/plain').send('x'.repeat(3 * 1024 * 1024))
})

app.get('/clear', async (_req, res) => {
  res.json({ cleared: await cache.clear() })
})

// Once, at deploy time: let the bucket delete expired entries by itself.
app.post('/lifecycle', async (_req, res) => {
  const backend = (await cache.ready()) as GoogleCloudStorageCache
  res.json({ added: await backend.applyLifecycleRule(), rule: backend.lifecycleRule() })
})

const port = Number(process.env.PORT ?? 3000)
app.listen(port, () => {
  console.log(`Google Cloud Storage example on http://localhost:${port}`)
})
