/**
 * Interim (1xx) responses through the shared cache and validation, on every
 * framework adapter, over real sockets: a `103 Early Hints` the route sends
 * and the `100 Continue` Node sends for `Expect: 100-continue` pass through
 * to the client before the final response, are never stored, and none of
 * their fields enters the stored final response. Each framework's driver
 * (test/http-matrix/<name>.ts) sends the 103 the way that framework's users
 * do (`RouteResponse.earlyHints`). `MATRIX=koa,hono` runs a subset, as in
 * test/http-matrix.test.ts.
 */
import assert from 'node:assert/strict'
import { type IncomingHttpHeaders, request } from 'node:http'
import { describe, test } from 'node:test'
import express from 'express'
import { createProxyMiddleware } from 'http-proxy-middleware'
import { httpCache, validation } from '../src/frameworks/express/index.js'
import { listen } from './helpers.js'
import { counter, newEngine, type RouteSpec, storedIn } from './http-matrix/driver.js'
import { describeMatrix, GET } from './http-matrix/drivers.js'

/** An interim response as the client saw it. */
interface Interim {
  status: number
  headers: IncomingHttpHeaders
}

/** One exchange as the client saw it: the interim responses, then the final one. */
interface Exchange {
  /** The 1xx responses reported by `'information'`, in the order they came. */
  interim: Interim[]
  /** How many of {@link Exchange.interim} came before the final response's head. */
  interimBeforeFinal: number
  /** Whether the client heard `100 Continue` (`'continue'`). */
  continued: boolean
  status: number
  headers: IncomingHttpHeaders
  body: string
}

/**
 * One GET with node:http and exactly these headers. With `Expect:
 * 100-continue`, the request is ended only once `100 Continue` came (Node
 * sends the head at once for such a request), as a client with a body would
 * do; it is ended on the final response too, so a missing 100 fails the
 * test's assertion instead of leaving the socket open.
 */
function exchange(port: number, path: string, headers: Record<string, string> = {}) {
  const expects = Object.entries(headers).some(
    ([n, v]) => n.toLowerCase() === 'expect' && /100-continue/i.test(v),
  )
  return new Promise<Exchange>((resolve, reject) => {
    const interim: Interim[] = []
    let continued = false
    let ended = false
    const end = () => {
      if (ended) return
      ended = true
      req.end()
    }
    const req = request(
      { host: '127.0.0.1', port, path, method: 'GET', headers, agent: false },
      (res) => {
        const interimBeforeFinal = interim.length
        end()
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () =>
          resolve({
            interim,
            interimBeforeFinal,
            continued,
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        )
        res.on('error', reject)
      },
    )
    req.on('information', (info) =>
      interim.push({ status: info.statusCode, headers: info.headers }),
    )
    req.on('continue', () => {
      continued = true
      end()
    })
    req.on('error', reject)
    if (!expects) end()
  })
}

/** A GET (and HEAD) route without header helpers. */

const LINK = '</style.css>; rel=preload; as=style'
/** A 103's fields: the Link the RFC 8297 example sends, and one more the final response never has. */
const HINTS = { link: LINK, 'x-early-hint': 'only-in-103' }

const ETAG = '"v1"'

/**
 * A route at `path`: a 103, then a 200 with its own ETag ({@link ETAG}) and
 * max-age=60; `count`s its calls.
 */
const validatedRoute = (path: string, count: (path: string) => number): RouteSpec =>
  GET(path, [], () => {
    count(path)
    return {
      earlyHints: HINTS,
      headers: { ETag: ETAG, 'Cache-Control': 'max-age=60', 'Content-Type': 'text/plain' },
      body: 'validated body',
    }
  })

/** The 103s among `interim`. */
const earlyHints = (interim: Interim[]) => interim.filter((i) => i.status === 103)

describeMatrix(
  'HTTP interim responses (1xx) through httpCache + validation()',
  (_driver, { cached }) => {
    test('RFC 8297, RFC 9110 §15.2: a 103 Early Hints passes through before the final 200; RFC 9111 §3: a cache MUST NOT store a 1xx, the stored final response has none of its fields', async () => {
      const { calls, count } = counter()
      const s = await cached([
        GET('/page', [], () => ({
          earlyHints: HINTS,
          headers: { 'Cache-Control': 'max-age=60' },
          body: `page ${count('/page')}`,
        })),
      ])
      const first = await exchange(s.port, '/page')
      const hints = earlyHints(first.interim)
      assert.equal(hints.length, 1, `one 103 reached the client: ${JSON.stringify(first.interim)}`)
      assert.equal(hints[0]?.headers.link, LINK)
      assert.equal(hints[0]?.headers['x-early-hint'], 'only-in-103')
      assert.equal(first.interimBeforeFinal, first.interim.length, 'the 103 came first')
      assert.equal(first.status, 200)
      assert.equal(first.body, 'page 1')
      assert.equal(first.headers['x-cache'], 'miss')
      assert.equal(first.headers.link, undefined, "the 103's Link is not on the final response")
      assert.equal(first.headers['x-early-hint'], undefined)
      await storedIn(s.engine, s.port, '/page')

      const hit = await exchange(s.port, '/page')
      assert.equal(hit.status, 200)
      assert.equal(hit.headers['x-cache'], 'hit')
      assert.equal(hit.body, first.body)
      assert.deepEqual(hit.interim, [], 'no 103 was stored to be replayed')
      assert.equal(hit.headers.link, undefined, "the stored response has no field of the 103's")
      assert.equal(hit.headers['x-early-hint'], undefined)
      assert.equal(calls.get('/page'), 1)
    })

    test('RFC 9110 §10.1.1, §15.2.1: Expect: 100-continue on a GET gets 100 Continue and the final response; RFC 9111 §3: only the final response is stored', async () => {
      const { calls, count } = counter()
      const s = await cached([
        GET('/c', [], () => ({
          headers: { 'Cache-Control': 'max-age=60' },
          body: `c ${count('/c')}`,
        })),
      ])
      const first = await exchange(s.port, '/c', { expect: '100-continue' })
      assert.equal(first.continued, true, 'the client heard 100 Continue')
      assert.deepEqual(
        first.interim.map((i) => i.status),
        [100],
        'before the final response',
      )
      assert.equal(first.interimBeforeFinal, 1)
      assert.equal(first.status, 200)
      assert.equal(first.body, 'c 1')
      assert.equal(first.headers['x-cache'], 'miss')
      await storedIn(s.engine, s.port, '/c')

      const hit = await exchange(s.port, '/c')
      assert.equal(hit.status, 200)
      assert.equal(hit.headers['x-cache'], 'hit')
      assert.equal(hit.body, first.body)
      assert.equal(hit.continued, false)
      assert.deepEqual(hit.interim, [], 'no 1xx was stored to be replayed')
      for (const [name, value] of Object.entries(hit.headers)) {
        assert.doesNotMatch(`${name}: ${value}`, /expect|100-continue/i, 'no trace of the 100')
      }
      assert.equal(hit.headers['content-length'], String(first.body.length))

      // A hit answered to a request with Expect still gets its 100 Continue (Node sends it).
      const again = await exchange(s.port, '/c', { expect: '100-continue' })
      assert.equal(again.continued, true)
      assert.equal(again.status, 200)
      assert.equal(again.headers['x-cache'], 'hit')
      assert.equal(again.body, first.body)
      assert.equal(calls.get('/c'), 1)
    })

    // With the cache in front, validation() sees a client's conditional headers only where the
    // cache passes the request through (here an exempt path): on a miss or a revalidation the
    // cache asks the route without them (the next test).
    test("RFC 8297, RFC 9110 §15.4.5: a 103 on a response validation() turns into a 304 (If-None-Match: the route's ETag) still passes through, and the 304 is correct", async () => {
      const { calls, count } = counter()
      const s = await cached([validatedRoute('/exempt/v', count)], {
        resourceExemptions: ['/exempt/'],
      })
      const r = await exchange(s.port, '/exempt/v', { 'if-none-match': ETAG })
      const hints = earlyHints(r.interim)
      assert.equal(hints.length, 1, `the 103 reached the client: ${JSON.stringify(r.interim)}`)
      assert.equal(hints[0]?.headers.link, LINK)
      assert.equal(hints[0]?.headers['x-early-hint'], 'only-in-103')
      assert.equal(r.interimBeforeFinal, r.interim.length, 'the 103 came first')
      assert.equal(r.status, 304)
      assert.equal(r.body, '')
      assert.equal(r.headers.etag, ETAG)
      assert.equal(r.headers['cache-control'], 'max-age=60')
      assert.equal(r.headers['content-type'], undefined, 'only the §15.4.5 fields on a 304')
      assert.equal(r.headers.link, undefined, "the 103's Link is not on the 304")
      assert.equal(r.headers['x-early-hint'], undefined)
      assert.equal(calls.get('/exempt/v'), 1)
    })

    // A revalidation runs the route with the cache's own If-None-Match (the stored ETag, which
    // is the route's): the route's 103 goes to the client, validation() answers the cache (a
    // 304 to merge, or the full 200 that replaces the entry), and the entry keeps no 103 field.
    test("RFC 8297, RFC 9111 §3, §4.3: a 103 sent while the cache revalidates passes through; the revalidated entry has none of the 103's fields", async () => {
      const { calls, count } = counter()
      const s = await cached([validatedRoute('/v', count)])
      const first = await exchange(s.port, '/v')
      assert.equal(first.status, 200)
      assert.equal(first.headers.etag, ETAG)
      assert.equal(earlyHints(first.interim).length, 1)
      await storedIn(s.engine, s.port, '/v')

      const r = await exchange(s.port, '/v', { 'cache-control': 'no-cache' })
      assert.equal(calls.get('/v'), 2, 'the cache revalidated with the route')
      const hints = earlyHints(r.interim)
      assert.equal(hints.length, 1, `the 103 reached the client: ${JSON.stringify(r.interim)}`)
      assert.equal(hints[0]?.headers.link, LINK)
      assert.equal(r.interimBeforeFinal, r.interim.length, 'the 103 came first')
      assert.equal(r.status, 200)
      assert.equal(r.body, 'validated body')
      assert.equal(r.headers.etag, ETAG)
      assert.equal(r.headers.link, undefined, "the 103's Link is not on the final response")
      assert.equal(r.headers['x-early-hint'], undefined)
      await storedIn(s.engine, s.port, '/v')

      const hit = await exchange(s.port, '/v')
      assert.equal(hit.status, 200)
      assert.equal(hit.headers['x-cache'], 'hit')
      assert.equal(hit.body, 'validated body')
      assert.equal(hit.headers.etag, ETAG)
      assert.deepEqual(hit.interim, [])
      assert.equal(hit.headers.link, undefined, "the revalidated entry has no field of the 103's")
      assert.equal(hit.headers['x-early-hint'], undefined)
      assert.equal(calls.get('/v'), 2)
    })
  },
)

describe('Interim responses through the caching reverse proxy (README recipe)', () => {
  test("RFC 8297: an upstream's 103 reaches the client through httpCache, validation() and http-proxy-middleware relaying it; the stored response has none of it", async () => {
    let calls = 0
    const origin = await listen((_req, res) => {
      calls++
      res.writeEarlyHints(HINTS)
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'public, max-age=60' })
      res.end('proxied page')
    })
    const app = express()
    const engine = newEngine()
    app.use(httpCache(engine))
    app.use(validation())
    app.use(
      createProxyMiddleware({
        target: `http://127.0.0.1:${origin.port}`,
        on: {
          // http-proxy does not relay 1xx: the recipe passes a 103 on as it arrives.
          proxyReq: (proxyReq, _req, res) => {
            proxyReq.on('information', (info) => {
              if (info.statusCode === 103 && 'writeEarlyHints' in res)
                res.writeEarlyHints(info.headers as Record<string, string | string[]>)
            })
          },
        },
      }),
    )
    const front = await listen(app)
    try {
      const first = await exchange(front.port, '/page')
      assert.equal(first.status, 200)
      assert.equal(first.body, 'proxied page')
      const hints = earlyHints(first.interim)
      assert.equal(hints.length, 1, 'the 103 reached the client')
      assert.equal(hints[0]?.headers.link, LINK)
      assert.equal(first.interimBeforeFinal, first.interim.length, 'before the final response')
      await storedIn(engine, front.port, '/page')
      const second = await exchange(front.port, '/page')
      assert.equal(second.headers['x-cache'], 'hit')
      assert.equal(second.headers.link, undefined, 'no field of the 103 in the stored response')
      assert.equal(earlyHints(second.interim).length, 0, 'a hit replays no 103')
      assert.equal(calls, 1)
    } finally {
      await front.close()
      await origin.close()
    }
  })
})
