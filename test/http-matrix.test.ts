/**
 * HTTP caching, as one table of behaviours run against every framework
 * adapter over real HTTP on loopback: the header helpers, validation (ETag,
 * 304, 412), preconditions for unsafe methods, and the RFC 9111 shared
 * response cache (httpCache). Test names cite the RFC section or
 * flask-webcache behaviour they check. Each framework's driver
 * (test/http-matrix/<name>.ts) writes the routes the way that framework's
 * users do; what only one framework has is in test/http-<name>.test.ts.
 * `MATRIX=koa,hono` runs a subset while developing an adapter.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { HttpCache, type HttpCacheOptions } from '../src/http/index.js'
import { ConfigError } from '../src/index.js'
import { eventually, get, type Listening, sleep } from './helpers.js'
import {
  cacheControl,
  cacheFor,
  counter,
  type HttpDriver,
  newCache,
  noStore,
  preconditions,
  type RouteSpec,
  type StartOptions,
  vary,
} from './http-matrix/driver.js'
import { describeMatrix, GET } from './http-matrix/drivers.js'

const LAST_MODIFIED = 'Sat, 21 Nov 2026 00:00:00 GMT'

/** The routes of the validation tests. */
const documents: RouteSpec[] = [
  GET('/doc', [], () => ({
    headers: {
      'Last-Modified': LAST_MODIFIED,
      'Cache-Control': 'max-age=60',
      'Content-Type': 'text/plain',
    },
    body: 'document body',
  })),
  GET('/weak', [], () => ({ headers: { ETag: 'W/"v1"' }, body: 'weak' })),
  GET('/missing', [], () => ({ status: 404, body: 'nope' })),
  { method: 'POST', path: '/doc', handler: () => ({ body: 'posted' }) },
]

describeMatrix('HTTP caching matrix', (driver, { start, cached }) => matrix(driver, start, cached))

/**
 * Every behaviour, for `driver`: `start` starts a server (closed after the
 * driver's tests), `cached` one with a new shared cache and validation.
 */
function matrix(
  driver: HttpDriver,
  start: (options: StartOptions) => Promise<Listening>,
  cached: (routes: RouteSpec[], options?: Partial<HttpCacheOptions>) => Promise<Listening>,
): void {
  const x = () => ({ body: 'x' })

  describe(`${driver.name}: Header helpers (flask-webcache cache_for / cache_control)`, () => {
    test('cacheFor sets max-age and Expires; the innermost helper wins', async () => {
      const s = await start({
        routes: [
          GET('/one', [cacheFor({ minutes: 5 })], x),
          GET('/two', [cacheFor({ hours: 1 }), cacheFor({ seconds: 10 })], x),
          GET('/mix', [cacheControl({ public: true }), cacheFor({ days: 1 }), noStore()], x),
          GET(
            '/vary',
            [vary('Accept-Language'), vary('Accept-Encoding', 'accept-language')],
            () => ({
              headers: { Vary: 'Origin' },
              body: 'x',
            }),
          ),
        ],
      })
      const one = await get(s.port, '/one')
      assert.equal(one.headers['cache-control'], 'max-age=300')
      const expires = Date.parse(one.headers.expires as string)
      assert.ok(Math.abs(expires - (Date.now() + 300_000)) < 2000)
      assert.equal((await get(s.port, '/two')).headers['cache-control'], 'max-age=10')
      const mix = await get(s.port, '/mix')
      assert.equal(mix.headers['cache-control'], 'no-store')
      assert.equal(mix.headers.expires, undefined)
      assert.equal(
        (await get(s.port, '/vary')).headers.vary,
        'Origin, Accept-Language, Accept-Encoding',
      )
    })

    test('cacheControl accepts camelCase, snake_case and kebab-case names, and rejects unknown ones at set-up', async () => {
      const s = await start({
        routes: [
          GET(
            '/',
            [cacheControl({ public: true, sMaxage: 60, max_age: 30, 'stale-while-revalidate': 5 })],
            x,
          ),
        ],
      })
      assert.equal(
        (await get(s.port, '/')).headers['cache-control'],
        'public, s-maxage=60, max-age=30, stale-while-revalidate=5',
      )
      assert.throws(() => driver.helper(cacheControl({ maxAgee: 5 } as never)), ConfigError)
      assert.throws(() => driver.helper(cacheControl({ maxAge: -1 })), ConfigError)
      assert.throws(() => driver.helper(cacheFor({ fortnights: 1 } as never)), ConfigError)
      assert.throws(() => driver.helper(vary('bad header')), ConfigError)
    })
  })

  describe(`${driver.name}: Validation: ETag, 304 and 412 (RFC 9110 §8.8, §13)`, () => {
    const validated = () => start({ validation: true, routes: documents })

    test('an automatic strong ETag on GET 200 responses without one', async () => {
      const s = await validated()
      const a = await get(s.port, '/doc')
      assert.match(a.headers.etag as string, /^"[A-Za-z0-9_-]{27}"$/)
      assert.equal(
        (await get(s.port, '/doc')).headers.etag,
        a.headers.etag,
        'the same body, the same ETag',
      )
      const head = await get(s.port, '/doc', {}, 'HEAD')
      assert.equal(head.status, 200)
      assert.equal(head.body, '')
      assert.equal(head.headers['content-length'], String('document body'.length))
      assert.equal(
        head.headers.etag,
        driver.headGetsETag ? a.headers.etag : undefined,
        driver.headGetsETag ? "the GET's ETag" : 'validation is not handed the body of a HEAD',
      )
      assert.equal((await get(s.port, '/missing')).headers.etag, undefined, 'only 200s')
      assert.equal(
        (await get(s.port, '/doc', {}, 'POST')).headers.etag,
        undefined,
        'only GET and HEAD',
      )
    })

    test('RFC 9110 §13.1.2: If-None-Match uses the weak comparison; a 304 carries the §15.4.5 fields only', async () => {
      const s = await validated()
      const etag = (await get(s.port, '/doc')).headers.etag as string
      const r = await get(s.port, '/doc', { 'if-none-match': `"other", W/${etag}` })
      assert.equal(r.status, 304)
      assert.equal(r.body, '')
      assert.equal(r.headers.etag, etag)
      assert.equal(r.headers['cache-control'], 'max-age=60')
      assert.equal(
        r.headers['content-type'],
        undefined,
        'representation metadata is not sent on a 304',
      )
      assert.equal((await get(s.port, '/weak', { 'if-none-match': '"v1"' })).status, 304)
      assert.equal((await get(s.port, '/doc', { 'if-none-match': '"nope"' })).status, 200)
      assert.equal((await get(s.port, '/doc', { 'if-none-match': '*' })).status, 304)
    })

    test('RFC 9110 §13.1.3: If-Modified-Since against Last-Modified, ignored when If-None-Match is present', async () => {
      const s = await validated()
      assert.equal((await get(s.port, '/doc', { 'if-modified-since': LAST_MODIFIED })).status, 304)
      assert.equal(
        (await get(s.port, '/doc', { 'if-modified-since': 'Fri, 20 Nov 2026 00:00:00 GMT' }))
          .status,
        200,
      )
      assert.equal(
        (
          await get(s.port, '/doc', {
            'if-modified-since': LAST_MODIFIED,
            'if-none-match': '"x"',
          })
        ).status,
        200,
      )
      assert.equal(
        (await get(s.port, '/doc', { 'if-modified-since': 'not a date' })).status,
        200,
        'an invalid date is ignored',
      )
    })

    test('RFC 9110 §13.1.1: a failed If-Match is 412, even when If-None-Match would match', async () => {
      const s = await validated()
      const etag = (await get(s.port, '/doc')).headers.etag as string
      assert.equal(
        (await get(s.port, '/doc', { 'if-match': '"other"', 'if-none-match': etag })).status,
        412,
      )
      assert.equal((await get(s.port, '/doc', { 'if-match': etag })).status, 200)
    })

    test('RFC 9110 §13.2: preconditions on unsafe methods answer 412 before the handler runs', async () => {
      let writes = 0
      const s = await start({
        routes: [
          {
            method: 'PUT',
            path: '/doc',
            helpers: [preconditions({ etag: '"v2"', lastModified: Date.parse(LAST_MODIFIED) })],
            handler: () => {
              writes++
              return { body: 'updated' }
            },
          },
        ],
      })
      assert.equal((await get(s.port, '/doc', { 'if-match': '"v1"' }, 'PUT')).status, 412)
      assert.equal(
        (await get(s.port, '/doc', { 'if-match': 'W/"v2"' }, 'PUT')).status,
        412,
        'If-Match compares strongly',
      )
      assert.equal(
        (
          await get(
            s.port,
            '/doc',
            { 'if-unmodified-since': 'Fri, 20 Nov 2026 00:00:00 GMT' },
            'PUT',
          )
        ).status,
        412,
      )
      assert.equal((await get(s.port, '/doc', { 'if-none-match': '*' }, 'PUT')).status, 412)
      assert.equal(writes, 0, 'no lost update')
      assert.equal((await get(s.port, '/doc', { 'if-match': '"v2"' }, 'PUT')).status, 200)
      assert.equal(writes, 1)
    })
  })

  describe(`${driver.name}: Shared cache: storing (RFC 9111 §3)`, () => {
    test('a response with max-age is stored: the second request is a hit with Age and X-Cache', async () => {
      const { calls, count } = counter()
      const s = await cached([
        GET('/a', [cacheFor({ seconds: 60 })], () => ({ body: `a${count('/a')}` })),
      ])
      const first = await get(s.port, '/a')
      assert.equal(first.headers['x-cache'], 'miss')
      await sleep(1100)
      const second = await get(s.port, '/a')
      assert.equal(second.body, 'a1')
      assert.equal(second.headers['x-cache'], 'hit')
      // At least the second waited (a loaded machine may add more).
      assert.ok(
        Number(second.headers.age) >= 1,
        `RFC 9111 §5.1: Age on a stored response: ${second.headers.age}`,
      )
      assert.equal(calls.get('/a'), 1)
    })

    test('no default caching: a response without freshness information is not stored (unlike flask-webcache)', async () => {
      const { calls, count } = counter()
      const s = await cached([GET('/plain', [], () => ({ body: `p${count('/plain')}` }))])
      await get(s.port, '/plain')
      assert.equal((await get(s.port, '/plain')).body, 'p2')
      assert.equal(calls.get('/plain'), 2)
    })

    test('Set-Cookie is never replayed: a public or s-maxage response is stored without it', async () => {
      const { calls, count } = counter()
      const withCookie = (path: string) => () => ({
        headers: { 'Set-Cookie': `sid=sess-${count(path)}-secret` },
        body: 'shared page',
      })
      const s = await cached([
        GET('/public', [cacheControl({ public: true, maxAge: 60 })], withCookie('/public')),
        GET('/smaxage', [cacheControl({ sMaxage: 60 })], withCookie('/smaxage')),
      ])
      for (const path of ['/public', '/smaxage']) {
        const first = await get(s.port, path)
        assert.match(String(first.headers['set-cookie']), /sid=sess-1-secret/, 'its own cookie')
        const next = await get(s.port, path)
        assert.equal(next.headers['x-cache'], 'hit', path)
        assert.equal(next.body, 'shared page')
        assert.equal(next.headers['set-cookie'], undefined, `${path}: no other client's cookie`)
        assert.equal(calls.get(path), 1)
      }
    })

    test('RFC 9111 §5.2.2.7/§5.2.2.5/§3.5: private, no-store and Authorization are not stored; s-maxage allows Authorization', async () => {
      const { calls, count } = counter()
      const numbered = (path: string) => () => ({ body: String(count(path)) })
      const s = await cached([
        GET('/private', [cacheControl({ private: true, maxAge: 60 })], numbered('/private')),
        GET('/nostore', [cacheControl({ noStore: true, maxAge: 60 })], numbered('/nostore')),
        GET('/auth', [cacheFor({ minutes: 1 })], numbered('/auth')),
        GET('/auth-shared', [cacheControl({ sMaxage: 60 })], numbered('/auth-shared')),
        GET('/cookie', [cacheFor({ minutes: 1 })], () => ({
          headers: { 'Set-Cookie': 'session=abc' },
          body: String(count('/cookie')),
        })),
      ])
      for (const path of ['/private', '/nostore', '/cookie']) {
        await get(s.port, path)
        await get(s.port, path)
        assert.equal(calls.get(path), 2, path)
      }
      await get(s.port, '/auth', { authorization: 'Bearer x' })
      await get(s.port, '/auth', { authorization: 'Bearer x' })
      assert.equal(calls.get('/auth'), 2)
      await get(s.port, '/auth-shared', { authorization: 'Bearer x' })
      await get(s.port, '/auth-shared', { authorization: 'Bearer y' })
      assert.equal(calls.get('/auth-shared'), 1)
    })

    test('RFC 9111 §4.1: Vary selects among several stored variants of one URL', async () => {
      const { calls, count } = counter()
      const s = await cached([
        GET('/lang', [cacheFor({ minutes: 1 }), vary('Accept-Language')], (req) => ({
          body: `${req.headers['accept-language']}#${count('/lang')}`,
        })),
      ])
      assert.equal((await get(s.port, '/lang', { 'accept-language': 'en' })).body, 'en#1')
      assert.equal((await get(s.port, '/lang', { 'accept-language': 'fr' })).body, 'fr#2')
      assert.equal((await get(s.port, '/lang', { 'accept-language': 'en' })).body, 'en#1')
      assert.equal((await get(s.port, '/lang', { 'accept-language': 'fr' })).body, 'fr#2')
      assert.equal(
        (await get(s.port, '/lang')).body,
        'undefined#3',
        'an absent header is its own variant',
      )
      assert.equal(calls.get('/lang'), 3)
    })

    test('HEAD is served from a stored GET, without a body', async () => {
      const { calls, count } = counter()
      const s = await cached([
        GET('/h', [cacheFor({ minutes: 1 })], () => ({ body: `body ${count('/h')}` })),
      ])
      await get(s.port, '/h')
      const head = await get(s.port, '/h', {}, 'HEAD')
      assert.equal(head.status, 200)
      assert.equal(head.body, '')
      assert.equal(head.headers['x-cache'], 'hit')
      assert.equal(head.headers['content-length'], '6')
      assert.equal(calls.get('/h'), 1)
    })

    test("a stored response answers the client's If-None-Match with 304 (RFC 9111 §4.3.2)", async () => {
      const { count } = counter()
      const s = await cached([
        GET('/c', [cacheFor({ minutes: 1 })], () => ({ body: `c${count('/c')}` })),
      ])
      const etag = (await get(s.port, '/c')).headers.etag as string
      const r = await get(s.port, '/c', { 'if-none-match': etag })
      assert.equal(r.status, 304)
      assert.equal(r.headers['x-cache'], 'hit')
    })
  })

  describe(`${driver.name}: Shared cache: invalidation (RFC 9111 §4.4, flask-webcache)`, () => {
    test('a successful unsafe method invalidates the URL and its Location / Content-Location', async () => {
      const { calls, count } = counter()
      const paths = ['/items', '/items/7', '/other']
      const s = await cached([
        ...paths.map((path) =>
          GET(path, [cacheFor({ minutes: 1 })], () => ({ body: `${path}#${count(path)}` })),
        ),
        {
          method: 'POST',
          path: '/items',
          handler: () => ({
            status: 201,
            headers: { Location: '/items/7', 'Content-Location': 'http://elsewhere.example/other' },
            body: 'created',
          }),
        },
        { method: 'DELETE', path: '/other', handler: () => ({ status: 500, body: 'failed' }) },
      ])
      for (const p of paths) await get(s.port, p)
      await get(s.port, '/items', {}, 'POST')
      await get(s.port, '/other', {}, 'DELETE')
      for (const p of paths) await get(s.port, p)
      assert.equal(calls.get('/items'), 2, 'the target URI')
      assert.equal(calls.get('/items/7'), 2, 'Location on the same host')
      assert.equal(
        calls.get('/other'),
        1,
        'another host, and a failed unsafe request, invalidate nothing',
      )
    })

    test('resourceExemptions, masterSalt and purge (flask-webcache)', async () => {
      const cache = newCache()
      const build = async (masterSalt: string) => {
        const engine = new HttpCache({ cache, resourceExemptions: ['/static/'], masterSalt })
        let n = 0
        const routes = [
          GET('*', [cacheFor({ minutes: 1 })], (req) => ({ body: `${req.url}#${++n}` })),
        ]
        return { engine, s: await start({ httpCache: engine, routes }) }
      }
      const { engine, s } = await build('one')
      await get(s.port, '/static/x.js')
      assert.equal(
        (await get(s.port, '/static/x.js')).headers['x-cache'],
        undefined,
        'exempt: neither served nor stored',
      )
      await get(s.port, '/page')
      assert.equal((await get(s.port, '/page')).headers['x-cache'], 'hit')
      await engine.purge('/page', `127.0.0.1:${s.port}`)
      assert.equal(
        (await get(s.port, '/page')).headers['x-cache'],
        'miss',
        'purge forgets every variant',
      )
      const { s: s2 } = await build('two')
      assert.equal(
        (await get(s2.port, '/page')).headers['x-cache'],
        'miss',
        'a new master salt empties the cache',
      )
    })
  })

  describe(`${driver.name}: Shared cache: freshness, revalidation and staleness (RFC 9111 §4, RFC 5861)`, () => {
    test('RFC 9111 §5.2.1.4: request no-cache revalidates; a 304 from the origin is merged (§4.3.4)', async () => {
      const { calls, count } = counter()
      let seen: string | string[] | undefined
      const s = await cached([
        GET('/r', [], (req) => {
          seen = req.headers['if-none-match']
          const headers = { ETag: '"v1"', 'Cache-Control': `max-age=${60 * count('/r')}` }
          // The route answers its own validator's precondition (validation() leaves the cache's alone).
          if (seen === '"v1"') return { status: 304, headers, body: '' }
          return { headers, body: 'same body' }
        }),
      ])
      await get(s.port, '/r')
      const r = await get(s.port, '/r', { 'cache-control': 'no-cache' })
      assert.equal(seen, '"v1"', 'the origin got the validator it issued')
      assert.equal(r.status, 200)
      assert.equal(r.body, 'same body')
      assert.equal(
        r.headers['cache-control'],
        'max-age=120',
        'headers of the 304 replace the stored ones',
      )
      assert.equal(r.headers['x-cache'], 'hit')
      assert.equal(
        (await get(s.port, '/r')).headers['cache-control'],
        'max-age=120',
        'the merged entry is stored',
      )
      assert.equal(calls.get('/r'), 2)
    })

    test('RFC 9111 §4.3.1: a revalidation never sends the ETag validation() made; the full response replaces the entry', async () => {
      const { calls, count } = counter()
      let seen: string | string[] | undefined = 'not called'
      const s = await cached([
        GET('/g', [], (req) => {
          seen = req.headers['if-none-match']
          const n = count('/g')
          return {
            headers: { 'Cache-Control': 'max-age=60', 'X-Version': String(n) },
            body: 'same body',
          }
        }),
      ])
      const first = await get(s.port, '/g')
      assert.ok(first.headers.etag, 'validation() added an ETag')
      const r = await get(s.port, '/g', { 'cache-control': 'no-cache' })
      assert.equal(seen, undefined, 'no If-None-Match reached the route')
      assert.equal(r.status, 200)
      assert.equal(r.headers['x-version'], '2', "the origin's new header reached the client")
      assert.equal(r.headers['x-cache'], 'miss')
      assert.equal(r.headers.etag, first.headers.etag, 'the same body has the same ETag')
      const again = await get(s.port, '/g')
      assert.equal(again.headers['x-version'], '2', 'the new response is stored')
      assert.equal(again.headers['x-cache'], 'hit')
      assert.equal(calls.get('/g'), 2)
    })

    test('a stale entry is revalidated; a changed response replaces it', async () => {
      const { count } = counter()
      const s = await cached([
        GET('/s', [cacheFor({ seconds: 1 })], () => ({ body: `v${count('/s')}` })),
      ])
      assert.equal((await get(s.port, '/s')).body, 'v1')
      await sleep(2100)
      assert.equal((await get(s.port, '/s')).body, 'v2')
      assert.equal((await get(s.port, '/s')).body, 'v2')
    })

    test('RFC 5861 §3: stale-while-revalidate answers at once and refreshes in the background', async () => {
      const { count } = counter()
      const s = await cached([
        GET('/swr', [cacheControl({ maxAge: 1, staleWhileRevalidate: 30 })], () => ({
          body: `s${count('/swr')}`,
        })),
      ])
      await get(s.port, '/swr')
      await sleep(2100)
      const stale = await get(s.port, '/swr')
      assert.equal(stale.body, 's1', 'served stale')
      assert.equal(stale.headers['x-cache'], 'hit')
      // The background refresh is a request of its own: wait for its outcome, not a fixed time.
      await eventually(
        async () => (await get(s.port, '/swr')).body === 's2',
        10_000,
        'the background refresh (s2 served)',
      )
    })

    test('RFC 5861 §4: stale-if-error serves the stale entry when the origin fails', async () => {
      let failing = false
      const sie = [cacheControl({ maxAge: 1, staleIfError: 60 })]
      const s = await cached([
        GET('/e', sie, () => (failing ? { status: 503, body: 'down' } : { body: 'good' })),
        GET('/thrown', sie, () => {
          if (failing) throw new Error('origin down')
          return { body: 'good' }
        }),
      ])
      await get(s.port, '/e')
      await get(s.port, '/thrown')
      await sleep(2100)
      failing = true
      const r = await get(s.port, '/e')
      assert.equal(r.status, 200)
      assert.equal(r.body, 'good')
      const thrown = await get(s.port, '/thrown')
      assert.equal(thrown.status, 200, 'a thrown error (500 from the error handler) too')
      assert.equal(thrown.body, 'good')
    })

    test('RFC 9111 §5.2.1: max-age, min-fresh and only-if-cached in the request; requestControlsCache: false ignores them', async () => {
      const { calls, count } = counter()
      const q = GET('/q', [cacheFor({ seconds: 30 })], () => ({ body: `q${count('/q')}` }))
      const s = await cached([q])
      assert.equal(
        (await get(s.port, '/nothing', { 'cache-control': 'only-if-cached' })).status,
        504,
      )
      await get(s.port, '/q')
      await sleep(1100)
      assert.equal(
        (await get(s.port, '/q', { 'cache-control': 'max-age=0' })).headers['x-cache'],
        'miss',
      )
      assert.equal(
        (await get(s.port, '/q', { 'cache-control': 'min-fresh=60' })).headers['x-cache'],
        'miss',
      )
      assert.equal(
        (await get(s.port, '/q', { 'cache-control': 'only-if-cached' })).headers['x-cache'],
        'hit',
      )
      assert.equal(calls.get('/q'), 3)
      const s2 = await cached([q], { requestControlsCache: false })
      await get(s2.port, '/q')
      assert.equal(
        (await get(s2.port, '/q', { 'cache-control': 'no-cache' })).headers['x-cache'],
        'hit',
      )
      assert.equal((await get(s2.port, '/q', { pragma: 'no-cache' })).headers['x-cache'], 'hit')
    })

    test('malformed Cache-Control, Expires and Age never crash or poison the cache', async () => {
      const { calls, count } = counter()
      const s = await cached([
        GET('/bad-expires', [], () => ({
          headers: { Expires: 'not a date' },
          body: String(count('/bad-expires')),
        })),
        GET('/bad-cc', [], () => ({
          headers: { 'Cache-Control': 'max-age=abc, ,,="x", MAX-AGE=60' },
          body: String(count('/bad-cc')),
        })),
        GET('/bad-age', [], () => ({
          headers: { 'Cache-Control': 'max-age=60', Age: 'seven' },
          body: String(count('/bad-age')),
        })),
      ])
      await get(s.port, '/bad-expires')
      await get(s.port, '/bad-expires')
      assert.equal(
        calls.get('/bad-expires'),
        2,
        'RFC 9111 §5.3: an invalid Expires means already expired',
      )
      await get(s.port, '/bad-cc')
      await get(s.port, '/bad-cc')
      assert.equal(
        calls.get('/bad-cc'),
        2,
        'RFC 9111 §4.2.1: the first max-age, invalid, is not used',
      )
      await get(s.port, '/bad-age')
      const r = await get(s.port, '/bad-age')
      assert.equal(calls.get('/bad-age'), 1, 'RFC 9111 §5.1: an invalid Age is ignored')
      assert.equal(r.headers.age, '0')
    })
  })
}
