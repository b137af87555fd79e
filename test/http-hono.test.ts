/**
 * HTTP caching in Hono 4 (on @hono/node-server): the header helpers,
 * validation (ETag, 304, 412), preconditions for unsafe methods, and the
 * RFC 9111 shared response cache (httpCache), over real HTTP on loopback.
 * The same tests as test/http-express.test.ts (test names cite the RFC
 * section or flask-webcache behaviour they check), then a few for what only
 * Hono has: streams, outer middleware's headers, `c.error`.
 */
import assert from 'node:assert/strict'
import { createServer, request as httpRequest, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, test } from 'node:test'
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { proxy } from 'hono/proxy'
import { requestId } from 'hono/request-id'
import { stream, streamSSE } from 'hono/streaming'
import {
  cacheControl,
  cacheFor,
  httpCache,
  noStore,
  preconditions,
  validation,
  vary,
} from '../src/frameworks/hono/index.js'
import { HttpCache } from '../src/http/index.js'
import { Cache, ConfigError } from '../src/index.js'
import { silentLogger } from './helpers.js'

interface Got {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

/** One request with exactly these headers (fetch would add Cache-Control to conditional requests). */
function get(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      )
    })
    req.on('error', reject)
    req.end()
  })
}

interface Listening {
  port: number
  close(): Promise<void>
}

/** Serves a Hono app with @hono/node-server on a free loopback port. */
async function listen(app: Hono): Promise<Listening> {
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s))
  })
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        ;(server as { closeAllConnections?: () => void }).closeAllConnections?.()
        server.close(() => resolve())
      }),
  }
}

/** A plain `node:http` server (the origin behind the proxy). */
async function listenNode(
  handler: (req: { url?: string; method?: string }, res: ServerResponse) => void,
): Promise<Listening> {
  const server = createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

function newCache(): Cache {
  return new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_THRESHOLD: 10_000, logger: silentLogger })
}

/** An app with the shared cache and validation in front of routes that count their calls. */
function cachedApp(options: Partial<ConstructorParameters<typeof HttpCache>[0]> = {}) {
  const engine = new HttpCache({ cache: newCache(), ...options })
  const app = new Hono()
  app.use(httpCache(engine))
  app.use(validation())
  const calls = new Map<string, number>()
  const count = (path: string) => {
    const n = (calls.get(path) ?? 0) + 1
    calls.set(path, n)
    return n
  }
  return { app, engine, calls, count }
}

describe('Header helpers (flask-webcache cache_for / cache_control)', () => {
  test('cacheFor sets max-age and Expires; the innermost helper wins', async () => {
    const app = new Hono()
    app.get('/one', cacheFor({ minutes: 5 }), (c) => c.text('x'))
    app.get('/two', cacheFor({ hours: 1 }), cacheFor({ seconds: 10 }), (c) => c.text('x'))
    app.get('/mix', cacheControl({ public: true }), cacheFor({ days: 1 }), noStore(), (c) =>
      c.text('x'),
    )
    app.get('/vary', vary('Accept-Language'), vary('Accept-Encoding', 'accept-language'), (c) => {
      c.header('Vary', 'Origin')
      return c.text('x')
    })
    const s = await listen(app)
    try {
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
    } finally {
      await s.close()
    }
  })

  test('cacheControl accepts camelCase, snake_case and kebab-case names, and rejects unknown ones at set-up', async () => {
    const app = new Hono()
    app.get(
      '/',
      cacheControl({ public: true, sMaxage: 60, max_age: 30, 'stale-while-revalidate': 5 }),
      (c) => c.text('x'),
    )
    const s = await listen(app)
    try {
      assert.equal(
        (await get(s.port, '/')).headers['cache-control'],
        'public, s-maxage=60, max-age=30, stale-while-revalidate=5',
      )
    } finally {
      await s.close()
    }
    assert.throws(() => cacheControl({ maxAgee: 5 } as never), ConfigError)
    assert.throws(() => cacheControl({ maxAge: -1 }), ConfigError)
    assert.throws(() => cacheFor({ fortnights: 1 } as never), ConfigError)
    assert.throws(() => vary('bad header'), ConfigError)
  })
})

describe('Validation: ETag, 304 and 412 (RFC 9110 §8.8, §13)', () => {
  const app = new Hono()
  app.use(validation())
  app.get('/doc', (c) => {
    c.header('Last-Modified', 'Sat, 21 Nov 2026 00:00:00 GMT')
    c.header('Cache-Control', 'max-age=60')
    return c.text('document body')
  })
  app.get('/weak', (c) => {
    c.header('ETag', 'W/"v1"')
    return c.text('weak')
  })
  app.get('/missing', (c) => c.text('nope', 404))
  app.post('/doc', (c) => c.text('posted'))

  test('an automatic strong ETag on GET 200 responses without one', async () => {
    const s = await listen(app)
    try {
      const a = await get(s.port, '/doc')
      assert.match(a.headers.etag as string, /^"[A-Za-z0-9_-]{27}"$/)
      assert.equal(
        (await get(s.port, '/doc')).headers.etag,
        a.headers.etag,
        'the same body, the same ETag',
      )
      // HEAD: Hono runs the GET route and drops the body afterwards, so HEAD gets the GET's ETag.
      const head = await get(s.port, '/doc', {}, 'HEAD')
      assert.equal(head.status, 200)
      assert.equal(head.headers.etag, a.headers.etag)
      assert.equal(head.headers['content-length'], String('document body'.length))
      assert.equal((await get(s.port, '/missing')).headers.etag, undefined, 'only 200s')
      assert.equal(
        (await get(s.port, '/doc', {}, 'POST')).headers.etag,
        undefined,
        'only GET and HEAD',
      )
    } finally {
      await s.close()
    }
  })

  test('RFC 9110 §13.1.2: If-None-Match uses the weak comparison; a 304 carries the §15.4.5 fields only', async () => {
    const s = await listen(app)
    try {
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
    } finally {
      await s.close()
    }
  })

  test('RFC 9110 §13.1.3: If-Modified-Since against Last-Modified, ignored when If-None-Match is present', async () => {
    const s = await listen(app)
    try {
      assert.equal(
        (await get(s.port, '/doc', { 'if-modified-since': 'Sat, 21 Nov 2026 00:00:00 GMT' }))
          .status,
        304,
      )
      assert.equal(
        (await get(s.port, '/doc', { 'if-modified-since': 'Fri, 20 Nov 2026 00:00:00 GMT' }))
          .status,
        200,
      )
      assert.equal(
        (
          await get(s.port, '/doc', {
            'if-modified-since': 'Sat, 21 Nov 2026 00:00:00 GMT',
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
    } finally {
      await s.close()
    }
  })

  test('RFC 9110 §13.1.1: a failed If-Match is 412, even when If-None-Match would match', async () => {
    const s = await listen(app)
    try {
      const etag = (await get(s.port, '/doc')).headers.etag as string
      assert.equal(
        (await get(s.port, '/doc', { 'if-match': '"other"', 'if-none-match': etag })).status,
        412,
      )
      assert.equal((await get(s.port, '/doc', { 'if-match': etag })).status, 200)
    } finally {
      await s.close()
    }
  })

  test('RFC 9110 §13.2: preconditions on unsafe methods answer 412 before the handler runs', async () => {
    let writes = 0
    const doc = new Hono()
    doc.put(
      '/doc',
      preconditions(() => ({
        etag: '"v2"',
        lastModified: Date.parse('Sat, 21 Nov 2026 00:00:00 GMT'),
      })),
      (c) => {
        writes++
        return c.text('updated')
      },
    )
    const s = await listen(doc)
    try {
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
    } finally {
      await s.close()
    }
  })
})

describe('Shared cache: storing (RFC 9111 §3)', () => {
  test('a response with max-age is stored: the second request is a hit with Age and X-Cache', async () => {
    const { app, calls, count } = cachedApp()
    app.get('/a', cacheFor({ seconds: 60 }), (c) => c.text(`a${count('/a')}`))
    const s = await listen(app)
    try {
      const first = await get(s.port, '/a')
      assert.equal(first.headers['x-cache'], 'miss')
      await sleep(1100)
      const second = await get(s.port, '/a')
      assert.equal(second.body, 'a1')
      assert.equal(second.headers['x-cache'], 'hit')
      assert.equal(second.headers.age, '1', 'RFC 9111 §5.1: Age on a stored response')
      assert.equal(calls.get('/a'), 1)
    } finally {
      await s.close()
    }
  })

  test('no default caching: a response without freshness information is not stored (unlike flask-webcache)', async () => {
    const { app, calls, count } = cachedApp()
    app.get('/plain', (c) => c.text(`p${count('/plain')}`))
    const s = await listen(app)
    try {
      await get(s.port, '/plain')
      assert.equal((await get(s.port, '/plain')).body, 'p2')
      assert.equal(calls.get('/plain'), 2)
    } finally {
      await s.close()
    }
  })

  test('RFC 9111 §5.2.2.7/§5.2.2.5/§3.5: private, no-store and Authorization are not stored; s-maxage allows Authorization', async () => {
    const { app, calls, count } = cachedApp()
    app.get('/private', cacheControl({ private: true, maxAge: 60 }), (c) =>
      c.text(String(count('/private'))),
    )
    app.get('/nostore', cacheControl({ noStore: true, maxAge: 60 }), (c) =>
      c.text(String(count('/nostore'))),
    )
    app.get('/auth', cacheFor({ minutes: 1 }), (c) => c.text(String(count('/auth'))))
    app.get('/auth-shared', cacheControl({ sMaxage: 60 }), (c) =>
      c.text(String(count('/auth-shared'))),
    )
    app.get('/cookie', cacheFor({ minutes: 1 }), (c) => {
      c.header('Set-Cookie', 'session=abc')
      return c.text(String(count('/cookie')))
    })
    const s = await listen(app)
    try {
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
    } finally {
      await s.close()
    }
  })

  test('RFC 9111 §4.1: Vary selects among several stored variants of one URL', async () => {
    const { app, calls, count } = cachedApp()
    app.get('/lang', cacheFor({ minutes: 1 }), vary('Accept-Language'), (c) =>
      c.text(`${c.req.header('accept-language')}#${count('/lang')}`),
    )
    const s = await listen(app)
    try {
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
    } finally {
      await s.close()
    }
  })

  test('HEAD is served from a stored GET, without a body', async () => {
    const { app, calls, count } = cachedApp()
    app.get('/h', cacheFor({ minutes: 1 }), (c) => c.text(`body ${count('/h')}`))
    const s = await listen(app)
    try {
      await get(s.port, '/h')
      const head = await get(s.port, '/h', {}, 'HEAD')
      assert.equal(head.status, 200)
      assert.equal(head.body, '')
      assert.equal(head.headers['x-cache'], 'hit')
      assert.equal(head.headers['content-length'], '6')
      assert.equal(calls.get('/h'), 1)
    } finally {
      await s.close()
    }
  })

  test("a stored response answers the client's If-None-Match with 304 (RFC 9111 §4.3.2)", async () => {
    const { app, count } = cachedApp()
    app.get('/c', cacheFor({ minutes: 1 }), (c) => c.text(`c${count('/c')}`))
    const s = await listen(app)
    try {
      const etag = (await get(s.port, '/c')).headers.etag as string
      const r = await get(s.port, '/c', { 'if-none-match': etag })
      assert.equal(r.status, 304)
      assert.equal(r.headers['x-cache'], 'hit')
    } finally {
      await s.close()
    }
  })
})

describe('Shared cache: invalidation (RFC 9111 §4.4, flask-webcache)', () => {
  test('a successful unsafe method invalidates the URL and its Location / Content-Location', async () => {
    const { app, calls, count } = cachedApp()
    for (const path of ['/items', '/items/7', '/other']) {
      app.get(path, cacheFor({ minutes: 1 }), (c) => c.text(`${path}#${count(path)}`))
    }
    app.post('/items', (c) => {
      c.header('Location', '/items/7')
      c.header('Content-Location', 'http://elsewhere.example/other')
      return c.text('created', 201)
    })
    app.delete('/other', (c) => c.text('failed', 500))
    const s = await listen(app)
    try {
      for (const p of ['/items', '/items/7', '/other']) await get(s.port, p)
      await get(s.port, '/items', {}, 'POST')
      await get(s.port, '/other', {}, 'DELETE')
      for (const p of ['/items', '/items/7', '/other']) await get(s.port, p)
      assert.equal(calls.get('/items'), 2, 'the target URI')
      assert.equal(calls.get('/items/7'), 2, 'Location on the same host')
      assert.equal(
        calls.get('/other'),
        1,
        'another host, and a failed unsafe request, invalidate nothing',
      )
    } finally {
      await s.close()
    }
  })

  test('resourceExemptions, masterSalt and purge (flask-webcache)', async () => {
    const cache = newCache()
    const build = (masterSalt: string) => {
      const engine = new HttpCache({ cache, resourceExemptions: ['/static/'], masterSalt })
      const app = new Hono()
      app.use(httpCache(engine))
      let n = 0
      app.get('*', cacheFor({ minutes: 1 }), (c) => c.text(`${c.req.path}#${++n}`))
      return { app, engine }
    }
    const a = build('one')
    const s = await listen(a.app)
    try {
      await get(s.port, '/static/x.js')
      assert.equal(
        (await get(s.port, '/static/x.js')).headers['x-cache'],
        undefined,
        'exempt: neither served nor stored',
      )
      await get(s.port, '/page')
      assert.equal((await get(s.port, '/page')).headers['x-cache'], 'hit')
      await a.engine.purge('/page', `127.0.0.1:${s.port}`)
      assert.equal(
        (await get(s.port, '/page')).headers['x-cache'],
        'miss',
        'purge forgets every variant',
      )
    } finally {
      await s.close()
    }
    const b = build('two')
    const s2 = await listen(b.app)
    try {
      assert.equal(
        (await get(s2.port, '/page')).headers['x-cache'],
        'miss',
        'a new master salt empties the cache',
      )
    } finally {
      await s2.close()
    }
  })
})

describe('Shared cache: freshness, revalidation and staleness (RFC 9111 §4, RFC 5861)', () => {
  test('RFC 9111 §5.2.1.4: request no-cache revalidates; a 304 from the origin is merged (§4.3.4)', async () => {
    const { app, calls } = cachedApp()
    let seen: string | undefined
    app.get('/r', (c) => {
      seen = c.req.header('if-none-match')
      const n = (calls.get('/r') ?? 0) + 1
      calls.set('/r', n)
      c.header('Cache-Control', `max-age=${60 * n}`)
      return c.text('same body')
    })
    const s = await listen(app)
    try {
      const first = await get(s.port, '/r')
      const r = await get(s.port, '/r', { 'cache-control': 'no-cache' })
      assert.equal(seen, first.headers.etag, 'the origin got the stored validator')
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
    } finally {
      await s.close()
    }
  })

  test('a stale entry is revalidated; a changed response replaces it', async () => {
    const { app, count } = cachedApp()
    app.get('/s', cacheFor({ seconds: 1 }), (c) => c.text(`v${count('/s')}`))
    const s = await listen(app)
    try {
      assert.equal((await get(s.port, '/s')).body, 'v1')
      await sleep(2100)
      assert.equal((await get(s.port, '/s')).body, 'v2')
      assert.equal((await get(s.port, '/s')).body, 'v2')
    } finally {
      await s.close()
    }
  })

  test('RFC 5861 §3: stale-while-revalidate answers at once and refreshes in the background', async () => {
    const { app, count } = cachedApp()
    app.get('/swr', cacheControl({ maxAge: 1, staleWhileRevalidate: 30 }), (c) =>
      c.text(`s${count('/swr')}`),
    )
    const s = await listen(app)
    try {
      await get(s.port, '/swr')
      await sleep(2100)
      const stale = await get(s.port, '/swr')
      assert.equal(stale.body, 's1', 'served stale')
      assert.equal(stale.headers['x-cache'], 'hit')
      await sleep(300)
      const refreshed = await get(s.port, '/swr')
      assert.equal(refreshed.body, 's2', 'refreshed in the background')
    } finally {
      await s.close()
    }
  })

  test('RFC 5861 §4: stale-if-error serves the stale entry when the origin fails', async () => {
    const { app } = cachedApp()
    let failing = false
    app.get('/e', cacheControl({ maxAge: 1, staleIfError: 60 }), (c) =>
      failing ? c.text('down', 503) : c.text('good'),
    )
    const s = await listen(app)
    try {
      await get(s.port, '/e')
      await sleep(2100)
      failing = true
      const r = await get(s.port, '/e')
      assert.equal(r.status, 200)
      assert.equal(r.body, 'good')
    } finally {
      await s.close()
    }
  })

  test('RFC 9111 §5.2.1: max-age, min-fresh and only-if-cached in the request; requestControlsCache: false ignores them', async () => {
    const { app, calls, count } = cachedApp()
    app.get('/q', cacheFor({ seconds: 30 }), (c) => c.text(`q${count('/q')}`))
    const s = await listen(app)
    try {
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
    } finally {
      await s.close()
    }
    const ignoring = cachedApp({ requestControlsCache: false })
    ignoring.app.get('/q', cacheFor({ seconds: 30 }), (c) => c.text(`q${ignoring.count('/q')}`))
    const s2 = await listen(ignoring.app)
    try {
      await get(s2.port, '/q')
      assert.equal(
        (await get(s2.port, '/q', { 'cache-control': 'no-cache' })).headers['x-cache'],
        'hit',
      )
      assert.equal((await get(s2.port, '/q', { pragma: 'no-cache' })).headers['x-cache'], 'hit')
    } finally {
      await s2.close()
    }
  })

  test('malformed Cache-Control, Expires and Age never crash or poison the cache', async () => {
    const { app, calls, count } = cachedApp()
    app.get('/bad-expires', (c) => {
      c.header('Expires', 'not a date')
      return c.text(String(count('/bad-expires')))
    })
    app.get('/bad-cc', (c) => {
      c.header('Cache-Control', 'max-age=abc, ,,="x", MAX-AGE=60')
      return c.text(String(count('/bad-cc')))
    })
    app.get('/bad-age', (c) => {
      c.header('Cache-Control', 'max-age=60')
      c.header('Age', 'seven')
      return c.text(String(count('/bad-age')))
    })
    const s = await listen(app)
    try {
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
    } finally {
      await s.close()
    }
  })
})

describe("A caching reverse proxy in a few lines (Hono + Hono's proxy helper)", () => {
  test('responses of another origin server are cached, validated and invalidated', async () => {
    let hits = 0
    const origin = await listenNode((req, res) => {
      hits++
      if (req.method === 'POST') {
        res.writeHead(204)
        res.end()
        return
      }
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'public, max-age=60' })
      res.end(`origin ${req.url} #${hits}`)
    })
    const engine = new HttpCache({ cache: newCache() })
    const front = new Hono()
    front.use(httpCache(engine))
    front.use(validation())
    front.all('*', (c) => {
      const url = new URL(c.req.url)
      return proxy(`http://127.0.0.1:${origin.port}${url.pathname}${url.search}`, c.req.raw)
    })
    const s = await listen(front)
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
  })
})

describe('Hono specifics: streams, outer middleware, c.error', () => {
  test('a body above maxBodyBytes streams through unchanged and is not stored; an event stream is not held', async () => {
    const { app, calls, count } = cachedApp({ maxBodyBytes: 1000 })
    const big = 'x'.repeat(400)
    app.get('/big', cacheFor({ minutes: 1 }), (c) => {
      const n = count('/big')
      return stream(c, async (s) => {
        for (let i = 0; i < 5; i++) {
          await s.write(`${n}${big}`)
          await s.sleep(2)
        }
      })
    })
    let release = () => {}
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    app.get('/events', cacheFor({ minutes: 1 }), (c) =>
      streamSSE(c, async (s) => {
        await s.writeSSE({ data: 'first' })
        await released
        await s.writeSSE({ data: 'last' })
      }),
    )
    const s = await listen(app)
    try {
      const first = await get(s.port, '/big')
      assert.equal(first.body, `1${big}`.repeat(5), 'every byte, in order')
      assert.equal(first.headers['x-cache'], undefined, 'sent through, not stored')
      assert.equal((await get(s.port, '/big')).body, `2${big}`.repeat(5))
      assert.equal(calls.get('/big'), 2)
      // The first event reaches the client while the stream is still open.
      const firstEvent = await new Promise<string>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: s.port, path: '/events' }, (res) => {
          res.once('data', (chunk: Buffer) => {
            resolve(chunk.toString())
            release()
            res.resume()
          })
        })
        req.on('error', reject)
        req.end()
      })
      assert.match(firstEvent, /data: first/)
    } finally {
      release()
      await s.close()
    }
  })

  test('headers outer middleware set before httpCache are not stored: a hit gets this request’s', async () => {
    const engine = new HttpCache({ cache: newCache() })
    let calls = 0
    let id = 0
    const outer = new Hono()
    outer.use(requestId({ generator: () => `req-${++id}` }))
    outer.use(httpCache(engine))
    outer.use(validation())
    outer.get('/id', cacheFor({ minutes: 1 }), (c) => {
      c.header('X-Route', 'yes')
      return c.text(`id${++calls}`)
    })
    const s = await listen(outer)
    try {
      const first = await get(s.port, '/id')
      const second = await get(s.port, '/id')
      assert.equal(first.headers['x-request-id'], 'req-1')
      assert.equal(second.headers['x-cache'], 'hit')
      assert.equal(second.body, 'id1')
      assert.equal(second.headers['x-request-id'], 'req-2')
      assert.equal(second.headers['x-route'], 'yes')
      const revalidated = await get(s.port, '/id', {
        'if-none-match': first.headers.etag as string,
      })
      assert.equal(revalidated.status, 304)
      assert.equal(revalidated.headers['x-request-id'], 'req-3', 'on a 304 too')
    } finally {
      await s.close()
    }
  })

  test('a handler that throws (c.error) is never stored; on revalidation stale-if-error answers', async () => {
    const { app, calls, count } = cachedApp()
    app.onError((_err, c) => c.text('error page', 200))
    let failing = true
    app.get('/boom', cacheFor({ minutes: 1 }), (c) => {
      count('/boom')
      if (failing) throw new Error('boom')
      return c.text('fine')
    })
    app.get('/sie', cacheControl({ maxAge: 1, staleIfError: 60 }), (c) => {
      if (count('/sie') > 1) throw new Error('down')
      return c.text('good')
    })
    const s = await listen(app)
    try {
      assert.equal((await get(s.port, '/boom')).body, 'error page')
      assert.equal((await get(s.port, '/boom')).body, 'error page')
      assert.equal(calls.get('/boom'), 2, 'the error page was not stored')
      failing = false
      assert.equal((await get(s.port, '/boom')).body, 'fine')
      assert.equal((await get(s.port, '/boom')).headers['x-cache'], 'hit')
      await get(s.port, '/sie')
      const r = await get(s.port, '/sie', { 'cache-control': 'no-cache' })
      assert.equal(r.body, 'good', 'the stored response, not the error page')
      assert.equal(r.headers['x-cache'], 'hit')
      assert.equal(calls.get('/sie'), 2, 'the origin was asked')
      assert.equal(calls.get('/sie'), 2, 'the origin was asked')
    } finally {
      await s.close()
    }
  })
})
