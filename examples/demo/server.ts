/**
 * The cachette demo: an Express app on the embedded default backend (no server
 * to install). `npm start` runs it; set CACHE_TYPE=FileSystemCache (and
 * optionally CACHE_DIR) to use the filesystem instead of memory, PORT to pick
 * the port.
 */
import express from 'express'
import { Cache } from '../../src/index.js'

const cacheType = process.env.CACHE_TYPE ?? 'SimpleCache'
const cache = new Cache({
  CACHE_TYPE: cacheType,
  CACHE_DEFAULT_TIMEOUT: 300,
  CACHE_DIR: cacheType === 'FileSystemCache' ? (process.env.CACHE_DIR ?? '.cache-demo') : undefined,
})

/** A slow lookup, as a database call would be. */
const slowSquare = cache.memoize(
  async function slowSquare(n: number) {
    await new Promise((resolve) => setTimeout(resolve, 500))
    return { n, square: n * n, computedAt: new Date().toISOString() }
  },
  { timeout: 60 },
)

const app = express()
cache.initApp(app)

const page = (title: string, body: string) => `<!doctype html>
<html><head><meta charset="utf-8"><title>${title}</title>
<style>body{font:16px/1.5 system-ui;margin:2rem auto;max-width:42rem}code{background:#f3f3f3;padding:0 .2em}</style>
</head><body><h1>${title}</h1>${body}</body></html>`

// A cached view: the whole response (status, headers, body) is stored for 30 s.
// The hit_cache header says whether a request was served from the cache.
app.get('/', cache.cached({ timeout: 30, responseHitIndication: true }), (_req, res) => {
  res.send(
    page(
      'cachette demo',
      `<p>Rendered at <b>${new Date().toISOString()}</b> on <code>${cacheType}</code>.
       Reload: the time stays the same for 30 seconds (the view is cached;
       see the <code>hit_cache</code> response header).</p>
       <ul>
         <li><a href="/square/12">/square/12</a>: a memoized 500 ms computation</li>
         <li><a href="/search?q=cache&page=1">/search?q=cache&amp;page=1</a>: cached per query string</li>
         <li><a href="/forget">/forget</a>: invalidate the home page and the memoized squares</li>
         <li><a href="/report">/report</a>: <code>getOrSet</code> with a grace period and a tag
           (fresh 10 s, then served stale while one refresh runs);
           <a href="/report/invalidate">/report/invalidate</a> drops it by tag</li>
         <li><a href="/stats">/stats</a>: hit and miss counters per view, function and call</li>
       </ul>`,
    ),
  )
})

app.get('/square/:n', async (req, res) => {
  const started = performance.now()
  const result = await slowSquare(Number(req.params.n))
  res.json({ ...result, tookMs: Math.round(performance.now() - started) })
})

const searchView = cache.cached({ timeout: 60, queryString: true, responseHitIndication: true })
app.get('/search', searchView, (req, res) => {
  res.json({ query: req.query, renderedAt: new Date().toISOString() })
})

app.get('/forget', async (_req, res) => {
  await cache.deleteCached('/')
  await cache.deleteMemoized(slowSquare)
  res.redirect('/')
})

// getOrSet: one computation for concurrent misses, served stale for up to an
// hour after its 10 s while one background call refreshes it, dropped by tag.
let reportRuns = 0
app.get('/report', async (_req, res) => {
  const report = await cache.getOrSet(
    'report:daily',
    async () => {
      await new Promise((resolve) => setTimeout(resolve, 1000))
      return { run: ++reportRuns, computedAt: new Date().toISOString() }
    },
    { timeout: 10, grace: '1h', tags: ['reports'] },
  )
  res.json(report)
})

app.get('/report/invalidate', async (_req, res) => {
  await cache.invalidateTags(['reports'])
  res.redirect('/report')
})

app.get('/stats', (_req, res) => {
  res.json(cache.stats())
})

const port = Number(process.env.PORT ?? 3000)
const server = app.listen(port, () => {
  const address = server.address()
  const actual = typeof address === 'object' && address ? address.port : port
  console.log(`cachette demo on ${cacheType}: http://localhost:${actual}/`)
})
