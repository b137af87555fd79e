/**
 * Headers that middleware in front of the shared cache set (a request id):
 * kept on every response, never stored. The scenario Express and Fastify run
 * in their own files (Koa's and Hono's own tests check it their way), each
 * building the app its way.
 */
import assert from 'node:assert/strict'
import type { HttpCache } from '../../src/http/index.js'
import { get, type Listening } from '../helpers.js'
import { counter, newEngine } from './driver.js'

/** What the app under test must do: see {@link checkOuterHeadersKept}. */
export interface OuterHeadersApp {
  engine: HttpCache
  /** Counts route calls. */
  count: (path: string) => number
  /** The next request id, for the outer middleware's `X-Request-Id`. */
  nextId: () => string
}

/**
 * `start(app)` builds a server with: middleware setting `X-Request-Id:
 * nextId()` in front of `httpCache(engine)` and `validation()`, and a route
 * `GET /page` with `cacheFor({ minutes: 1 })` that sets `X-Route: yes` and
 * answers `page <count>`. Checks the id is this request's on a hit (and on a
 * 304 when `notModified`), and absent from the stored response.
 */
export async function checkOuterHeadersKept(
  start: (app: OuterHeadersApp) => Promise<Listening>,
  options: { notModified: boolean },
): Promise<void> {
  const engine = newEngine()
  const { count } = counter()
  let requestId = 0
  const s = await start({ engine, count, nextId: () => String(++requestId) })
  try {
    assert.equal((await get(s.port, '/page')).headers['x-request-id'], '1')
    const hit = await get(s.port, '/page')
    assert.equal(hit.headers['x-cache'], 'hit')
    assert.equal(hit.headers['x-request-id'], '2', "the stored response has no request's id")
    assert.equal(hit.headers['x-route'], 'yes')
    const stored = await engine.lookup({
      method: 'GET',
      url: '/page',
      host: `127.0.0.1:${s.port}`,
      headers: {},
    })
    assert.ok(
      stored.kind === 'hit' &&
        !stored.response.headers.some(([n]) => n.toLowerCase() === 'x-request-id'),
    )
    if (options.notModified) {
      const notModified = await get(s.port, '/page', {
        'if-none-match': hit.headers.etag as string,
      })
      assert.equal(notModified.status, 304)
      assert.equal(notModified.headers['x-request-id'], '3')
    }
  } finally {
    await s.close()
  }
}
