/**
 * A caching reverse proxy in a few lines: the scenario the frameworks with a
 * proxy module at hand (Express with http-proxy-middleware, Hono with
 * hono/proxy) run in their own test files, each building the front its way.
 */
import assert from 'node:assert/strict'
import type { HttpCache } from '../../src/http/index.js'
import { get, type Listening, listen } from '../helpers.js'
import { newEngine } from './driver.js'

/**
 * Starts an origin server (`public, max-age=60` text naming the URL and a
 * hit count; POST answers 204), then `front(engine, target)`: a server with
 * `httpCache(engine)` and `validation()` proxying everything to `target`
 * (`http://127.0.0.1:<port>`). Checks that the origin's responses are
 * cached, validated and invalidated.
 */
export async function checkCachingReverseProxy(
  front: (engine: HttpCache, target: string) => Promise<Listening>,
): Promise<void> {
  let hits = 0
  const origin = await listen((req, res) => {
    hits++
    if (req.method === 'POST') {
      res.writeHead(204)
      res.end()
      return
    }
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'public, max-age=60' })
    res.end(`origin ${req.url} #${hits}`)
  })
  const s = await front(newEngine(), `http://127.0.0.1:${origin.port}`)
  try {
    const a = await get(s.port, '/page')
    const b = await get(s.port, '/page')
    assert.equal(a.body, 'origin /page #1')
    assert.equal(b.body, 'origin /page #1')
    assert.equal(b.headers['x-cache'], 'hit')
    assert.ok(b.headers.etag, 'validation added an ETag to the proxied response')
    assert.equal(
      (await get(s.port, '/page', { 'if-none-match': b.headers.etag as string })).status,
      304,
    )
    await get(s.port, '/page', {}, 'POST')
    assert.equal((await get(s.port, '/page')).body, 'origin /page #3', 'POST invalidated it')
    assert.equal(hits, 3)
  } finally {
    await s.close()
    await origin.close()
  }
}
