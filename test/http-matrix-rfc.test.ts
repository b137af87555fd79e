/**
 * The HTTP caching matrix, continued (test/http-matrix.test.ts has the first
 * part; the drivers are the same, test/http-matrix/<name>.ts): what the
 * shared cache does where RFC 9111, RFC 9110 and RFC 9213 allow more than
 * storing a 200, run against every framework adapter over real HTTP on
 * loopback. Targeted cache control (CDN-Cache-Control), byte ranges served
 * from a stored response, every final status with explicit freshness,
 * normalised Vary values, case-insensitive dates and If-Modified-Since
 * against Date, and a POST response kept for later GETs. Test names cite
 * the section they check. `MATRIX=koa,hono` runs a subset.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { HttpCacheOptions } from '../src/http/index.js'
import { get, type Listening } from './helpers.js'
import { counter, type HttpDriver, type RouteSpec } from './http-matrix/driver.js'
import { describeMatrix, GET } from './http-matrix/drivers.js'

describeMatrix(
  'HTTP caching matrix: RFC 9213, ranges, statuses, Vary, dates, POST',
  (driver, { cached }) => matrix(driver, cached),
)

function matrix(
  driver: HttpDriver,
  cached: (routes: RouteSpec[], options?: Partial<HttpCacheOptions>) => Promise<Listening>,
): void {
  describe(`${driver.name}: Targeted cache control (RFC 9213)`, () => {
    test('RFC 9213 §2.2: CDN-Cache-Control replaces Cache-Control: stored under no-store, kept out under max-age', async () => {
      const { calls, count } = counter()
      const s = await cached([
        GET('/cdn-only', [], () => ({
          headers: { 'Cache-Control': 'no-store', 'CDN-Cache-Control': 'max-age=60' },
          body: `c${count('/cdn-only')}`,
        })),
        GET('/cdn-no-store', [], () => ({
          headers: { 'Cache-Control': 'max-age=60', 'CDN-Cache-Control': 'no-store' },
          body: `n${count('/cdn-no-store')}`,
        })),
      ])
      await get(s.port, '/cdn-only')
      const hit = await get(s.port, '/cdn-only')
      assert.equal(hit.body, 'c1')
      assert.equal(hit.headers['x-cache'], 'hit')
      assert.equal(hit.headers['cache-control'], 'no-store', 'Cache-Control still goes downstream')
      assert.equal(hit.headers['cdn-cache-control'], 'max-age=60', 'forwarded by default')
      await get(s.port, '/cdn-no-store')
      assert.equal((await get(s.port, '/cdn-no-store')).body, 'n2')
      assert.equal(calls.get('/cdn-only'), 1)
      assert.equal(calls.get('/cdn-no-store'), 2)
    })

    test('RFC 9213 §2.2: private and no-cache in the targeted field apply; Expires is ignored', async () => {
      const { calls, count } = counter()
      const future = new Date(Date.now() + 3_600_000).toUTCString()
      const s = await cached([
        GET('/private', [], () => ({
          headers: { 'Cache-Control': 'public, max-age=60', 'CDN-Cache-Control': 'private' },
          body: `p${count('/private')}`,
        })),
        GET('/no-cache', [], () => ({
          headers: {
            'Cache-Control': 'max-age=60',
            'CDN-Cache-Control': 'no-cache, max-age=60',
            'X-Call': String(count('/no-cache')),
          },
          body: 'same',
        })),
        GET('/expires', [], () => ({
          headers: { Expires: future, 'CDN-Cache-Control': 'max-age=0' },
          body: `e${count('/expires')}`,
        })),
      ])
      await get(s.port, '/private')
      assert.equal((await get(s.port, '/private')).body, 'p2', 'private: not stored')
      await get(s.port, '/no-cache')
      const again = await get(s.port, '/no-cache')
      assert.equal(again.headers['x-call'], '2', 'no-cache: the origin is asked every time')
      await get(s.port, '/expires')
      assert.equal(
        (await get(s.port, '/expires')).body,
        'e2',
        'max-age=0 wins over a future Expires',
      )
      assert.equal(calls.get('/private'), 2)
      assert.equal(calls.get('/no-cache'), 2)
    })

    test('RFC 9213 §2.2: the first field of a configured target list wins; an invalid one falls back', async () => {
      const { calls, count } = counter()
      const targetedFields = ['Example-Cache-Control', 'CDN-Cache-Control']
      const s = await cached(
        [
          GET('/specific', [], () => ({
            headers: { 'Example-Cache-Control': 'no-store', 'CDN-Cache-Control': 'max-age=60' },
            body: `s${count('/specific')}`,
          })),
          GET('/invalid', [], () => ({
            headers: { 'Example-Cache-Control': 'Max-Age=60', 'CDN-Cache-Control': 'max-age=60' },
            body: `i${count('/invalid')}`,
          })),
        ],
        { targetedFields },
      )
      await get(s.port, '/specific')
      assert.equal((await get(s.port, '/specific')).body, 's2', 'the product field said no-store')
      await get(s.port, '/invalid')
      assert.equal(
        (await get(s.port, '/invalid')).headers['x-cache'],
        'hit',
        'an invalid dictionary is ignored: CDN-Cache-Control decides',
      )
      assert.equal(calls.get('/invalid'), 1)
    })

    test('RFC 9213 §2.2: with forwardTargetedFields false, the targeted field is not sent downstream', async () => {
      const s = await cached(
        [
          GET('/strip', [], () => ({
            headers: { 'Cache-Control': 'max-age=5', 'CDN-Cache-Control': 'max-age=60' },
            body: 'strip',
          })),
        ],
        { forwardTargetedFields: false },
      )
      const miss = await get(s.port, '/strip')
      const hit = await get(s.port, '/strip')
      assert.equal(hit.headers['x-cache'], 'hit')
      for (const r of [miss, hit]) {
        assert.equal(r.headers['cdn-cache-control'], undefined)
        assert.equal(r.headers['cache-control'], 'max-age=5')
      }
    })
  })

  describe(`${driver.name}: Ranges from a stored response (RFC 9110 §14, RFC 9111 §3.3)`, () => {
    const BODY = 'abcdefghij'
    const routes = (count: (path: string) => number, seen: (string | undefined)[]) => [
      GET('/r', [], (req) => {
        count('/r')
        seen.push(req.headers.range as string | undefined)
        return {
          headers: { 'Cache-Control': 'max-age=60', ETag: '"r1"', 'Content-Type': 'text/plain' },
          body: BODY,
        }
      }),
    ]

    test('RFC 9110 §14.2: single, open-ended and suffix ranges are 206 with Content-Range; past the end is 416', async () => {
      const { calls, count } = counter()
      const seen: (string | undefined)[] = []
      const s = await cached(routes(count, seen))
      const full = await get(s.port, '/r')
      assert.equal(full.body, BODY)
      const cases: [string, string, string][] = [
        ['bytes=2-4', 'cde', 'bytes 2-4/10'],
        ['bytes=5-', 'fghij', 'bytes 5-9/10'],
        ['bytes=-3', 'hij', 'bytes 7-9/10'],
        ['bytes=8-100', 'ij', 'bytes 8-9/10'],
      ]
      for (const [range, body, contentRange] of cases) {
        const r = await get(s.port, '/r', { range })
        assert.equal(r.status, 206, range)
        assert.equal(r.body, body, range)
        assert.equal(r.headers['content-range'], contentRange, range)
        assert.equal(r.headers['content-length'], String(body.length), range)
        assert.equal(r.headers['x-cache'], 'hit', range)
      }
      const past = await get(s.port, '/r', { range: 'bytes=10-' })
      assert.equal(past.status, 416)
      assert.equal(past.headers['content-range'], 'bytes */10')
      assert.equal(past.body, '')
      assert.equal(calls.get('/r'), 1, 'every range came from the stored response')
    })

    test('RFC 9110 §14.2: a multi-range or malformed Range gets the whole 200; HEAD ignores Range', async () => {
      const { count } = counter()
      const s = await cached(routes(count, []))
      await get(s.port, '/r')
      for (const range of ['bytes=0-1,4-5', 'bytes=x-y', 'items=0-1']) {
        const r = await get(s.port, '/r', { range })
        assert.equal(r.status, 200, range)
        assert.equal(r.body, BODY, range)
      }
      const head = await get(s.port, '/r', { range: 'bytes=0-1' }, 'HEAD')
      assert.equal(head.status, 200)
      assert.equal(head.body, '')
    })

    test('RFC 9110 §13.1.5: If-Range with the current strong ETag gets the range, any other value the whole', async () => {
      const { count } = counter()
      const s = await cached(routes(count, []))
      await get(s.port, '/r')
      const matching = await get(s.port, '/r', { range: 'bytes=0-2', 'if-range': '"r1"' })
      assert.equal(matching.status, 206)
      assert.equal(matching.body, 'abc')
      for (const ifRange of ['"r0"', 'W/"r1"', 'Sat, 21 Nov 2026 00:00:00 GMT']) {
        const r = await get(s.port, '/r', { range: 'bytes=0-2', 'if-range': ifRange })
        assert.equal(r.status, 200, ifRange)
        assert.equal(r.body, BODY, ifRange)
      }
    })

    test('RFC 9111 §3.3: a Range request on a miss asks the origin for the whole, stores it and answers the range', async () => {
      const { calls, count } = counter()
      const seen: (string | undefined)[] = []
      const s = await cached(routes(count, seen))
      const part = await get(s.port, '/r', { range: 'bytes=1-3' })
      assert.equal(part.status, 206)
      assert.equal(part.body, 'bcd')
      assert.equal(part.headers['content-range'], 'bytes 1-3/10')
      assert.deepEqual(seen, [undefined], 'the origin got no Range')
      const whole = await get(s.port, '/r')
      assert.equal(whole.body, BODY)
      assert.equal(whole.headers['x-cache'], 'hit', 'the whole representation was stored')
      assert.equal(calls.get('/r'), 1)
    })
  })

  describe(`${driver.name}: Every final status with explicit freshness is storable (RFC 9111 §3)`, () => {
    test('RFC 9111 §3: 299, 400, 403, 500, 503 and 599 with max-age are stored', async () => {
      const { calls, count } = counter()
      const statuses = [299, 400, 403, 500, 503, 599]
      const s = await cached(
        statuses.map((status) =>
          GET(`/s${status}`, [], () => ({
            status,
            headers: { 'Cache-Control': 'max-age=60' },
            body: `${status}#${count(`/s${status}`)}`,
          })),
        ),
      )
      for (const status of statuses) {
        const first = await get(s.port, `/s${status}`)
        assert.equal(first.status, status)
        const second = await get(s.port, `/s${status}`)
        assert.equal(second.status, status)
        assert.equal(second.body, `${status}#1`, String(status))
        assert.equal(second.headers['x-cache'], 'hit', String(status))
        assert.equal(calls.get(`/s${status}`), 1, String(status))
      }
    })

    test('RFC 9111 §4.2.2: heuristic freshness only for the heuristically cacheable statuses', async () => {
      const { calls, count } = counter()
      const lastModified = new Date(Date.now() - 10 * 86_400_000).toUTCString()
      const s = await cached([
        GET('/h404', [], () => ({
          status: 404,
          headers: { 'Last-Modified': lastModified },
          body: `404#${count('/h404')}`,
        })),
        GET('/h500', [], () => ({
          status: 500,
          headers: { 'Last-Modified': lastModified },
          body: `500#${count('/h500')}`,
        })),
      ])
      for (const path of ['/h404', '/h500']) {
        await get(s.port, path)
        await get(s.port, path)
      }
      assert.equal(calls.get('/h404'), 1, '404 is heuristically cacheable')
      assert.equal(calls.get('/h500'), 2, '500 needs explicit freshness')
    })
  })

  describe(`${driver.name}: Vary normalisation (RFC 9111 §4.1)`, () => {
    const negotiated = (count: (path: string) => number) =>
      GET('/lang', [], () => ({
        headers: { 'Cache-Control': 'max-age=60', Vary: 'Accept-Language' },
        body: `lang#${count('/lang')}`,
      }))

    test('RFC 9111 §4.1: values differing in whitespace, case, repeats or the order of different weights share a variant', async () => {
      const { calls, count } = counter()
      const s = await cached([negotiated(count)])
      await get(s.port, '/lang', { 'accept-language': 'en-US, fr;q=0.5' })
      for (const v of [
        'EN-us,fr;q=0.5',
        '  en-us ,  FR ; q=0.50',
        'fr;q=0.5, en-US',
        'en-US, en-US, fr;q=0.5',
      ]) {
        const r = await get(s.port, '/lang', { 'accept-language': v })
        assert.equal(r.headers['x-cache'], 'hit', v)
        assert.equal(r.body, 'lang#1', v)
      }
      assert.equal(calls.get('/lang'), 1)
    })

    test('RFC 9111 §4.1: members of equal weight in another order are another variant, unless acceptOrder is ignored', async () => {
      const { calls, count } = counter()
      const s = await cached([negotiated(count)])
      await get(s.port, '/lang', { 'accept-language': 'en, fr' })
      assert.equal((await get(s.port, '/lang', { 'accept-language': 'fr,EN' })).body, 'lang#2')
      assert.equal(calls.get('/lang'), 2, 'a negotiator prefers the earlier of equal weights')

      const other = counter()
      const ignoring = await cached([negotiated(other.count)], { acceptOrder: 'ignored' })
      await get(ignoring.port, '/lang', { 'accept-language': 'en, fr' })
      const shared = await get(ignoring.port, '/lang', { 'accept-language': 'fr,EN' })
      assert.equal(shared.headers['x-cache'], 'hit')
      assert.equal(other.calls.get('/lang'), 1)
    })

    test('RFC 9111 §4.1: Accept-Encoding is compared by coding, case-insensitively', async () => {
      const { calls, count } = counter()
      const s = await cached([
        GET('/enc', [], () => ({
          headers: { 'Cache-Control': 'max-age=60', Vary: 'Accept-Encoding' },
          body: `enc#${count('/enc')}`,
        })),
      ])
      await get(s.port, '/enc', { 'accept-encoding': 'gzip, br' })
      assert.equal(
        (await get(s.port, '/enc', { 'accept-encoding': 'GZIP,BR' })).headers['x-cache'],
        'hit',
      )
      assert.equal((await get(s.port, '/enc', { 'accept-encoding': 'gzip' })).body, 'enc#2')
      assert.equal(calls.get('/enc'), 2)
    })
  })

  describe(`${driver.name}: Dates and conditionals (RFC 9111 §4.2, §4.3.2)`, () => {
    test('RFC 9111 §4.2: an Expires in lower case is a valid date, so the response is fresh', async () => {
      const { calls, count } = counter()
      const expires = new Date(Date.now() + 3_600_000).toUTCString().toLowerCase()
      const s = await cached([
        GET('/lower', [], () => ({ headers: { Expires: expires }, body: `l${count('/lower')}` })),
      ])
      await get(s.port, '/lower')
      assert.equal((await get(s.port, '/lower')).headers['x-cache'], 'hit')
      assert.equal(calls.get('/lower'), 1)
    })

    test('RFC 9111 §4.3.2: If-Modified-Since is evaluated against Date when the stored response has no Last-Modified', async () => {
      const date = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000).toUTCString()
      const s = await cached(
        [
          GET('/dated', [], () => ({
            headers: { 'Cache-Control': 'max-age=600', Date: date },
            body: 'dated',
          })),
        ],
        {},
      )
      await get(s.port, '/dated')
      const notModified = await get(s.port, '/dated', { 'if-modified-since': date })
      assert.equal(notModified.status, 304)
      assert.equal(notModified.headers['x-cache'], 'hit')
      const earlier = new Date(Date.parse(date) - 60_000).toUTCString()
      assert.equal((await get(s.port, '/dated', { 'if-modified-since': earlier })).status, 200)
    })
  })

  describe(`${driver.name}: The client's preconditions on a miss or a revalidation (RFC 9111 §4.3.2)`, () => {
    test("RFC 9111 §4.3.2: the origin's full response answers the client's If-None-Match with a 304, on a miss and after a revalidation", async () => {
      const { calls, count } = counter()
      const s = await cached([
        GET('/v', [], () => ({
          headers: { 'Cache-Control': 'max-age=60', ETag: '"v"', 'X-Call': String(count('/v')) },
          body: 'versioned',
        })),
      ])
      const miss = await get(s.port, '/v', { 'if-none-match': '"v"' })
      assert.equal(miss.status, 304, 'a miss')
      assert.equal(miss.headers.etag, '"v"')
      assert.equal(miss.body, '')
      const revalidated = await get(s.port, '/v', {
        'if-none-match': '"v"',
        'cache-control': 'no-cache',
      })
      assert.equal(revalidated.status, 304, 'a revalidation that got a full 200')
      assert.equal(
        revalidated.headers['x-call'],
        undefined,
        'a 304 carries only RFC 9110 §15.4.5 fields',
      )
      const other = await get(s.port, '/v', { 'if-none-match': '"w"', 'cache-control': 'no-cache' })
      assert.equal(other.status, 200)
      assert.equal(other.body, 'versioned')
      assert.equal(calls.get('/v'), 3)
      const hit = await get(s.port, '/v')
      assert.equal(hit.headers['x-call'], '3', 'the latest full response is stored')
    })
  })

  describe(`${driver.name}: POST then GET (RFC 9111 §4, RFC 9110 §9.3.3)`, () => {
    const routes = (count: (path: string) => number): RouteSpec[] => [
      GET('/made', [], () => ({
        headers: { 'Cache-Control': 'max-age=60' },
        body: `get#${count('/made')}`,
      })),
      {
        method: 'POST',
        path: '/made',
        handler: () => ({
          headers: { 'Cache-Control': 'max-age=60', 'Content-Location': '/made' },
          body: `post#${count('POST /made')}`,
        }),
      },
      {
        method: 'POST',
        path: '/elsewhere',
        handler: () => ({
          headers: { 'Cache-Control': 'max-age=60', 'Content-Location': '/made' },
          body: 'elsewhere',
        }),
      },
      GET('/elsewhere', [], () => ({ body: `get#${count('/elsewhere')}` })),
    ]

    test('RFC 9110 §9.3.3: with storePostResponses, a POST response naming its own URI answers later GETs', async () => {
      const { calls, count } = counter()
      const s = await cached(routes(count), { storePostResponses: true })
      const posted = await get(s.port, '/made', {}, 'POST')
      assert.equal(posted.body, 'post#1')
      const later = await get(s.port, '/made')
      assert.equal(later.body, 'post#1')
      assert.equal(later.headers['x-cache'], 'hit')
      assert.equal(calls.get('/made'), undefined, 'the GET route never ran')
      await get(s.port, '/elsewhere', {}, 'POST')
      assert.equal(
        (await get(s.port, '/elsewhere')).body,
        'get#1',
        'a Content-Location naming another URI stores nothing for either',
      )
    })

    test('RFC 9111 §4.4: without the option, a POST only invalidates', async () => {
      const { calls, count } = counter()
      const s = await cached(routes(count))
      await get(s.port, '/made')
      await get(s.port, '/made', {}, 'POST')
      assert.equal((await get(s.port, '/made')).body, 'get#2')
      assert.equal(calls.get('/made'), 2)
    })
  })
}
