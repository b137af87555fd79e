/**
 * HTTP caching in Koa: the header helpers, validation (ETag, 304, 412),
 * preconditions for unsafe methods, and the RFC 9111 shared response cache
 * (httpCache), over real HTTP on loopback. The same behaviours as
 * test/http-express.test.ts (test names cite the RFC section or
 * flask-webcache behaviour they check), then what is Koa's own: stream and
 * JSON bodies, `ctx.respond = false`, thrown errors, outer middleware.
 */
import assert from 'node:assert/strict'
import { createServer, request as httpRequest, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { describe, test } from 'node:test'
import Koa, { type Middleware } from 'koa'
import {
  cacheControl,
  cacheFor,
  httpCache,
  noStore,
  preconditions,
  validation,
  vary,
} from '../src/frameworks/koa/index.js'
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

async function listen(app: Koa): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer(app.callback())
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

/**
 * A route: `chain` runs for `method` on `path` (GET also answers HEAD, as
 * in Express and @koa/router); other requests go on down the app.
 */
function route(method: string, path: string | RegExp, ...chain: Middleware[]): Middleware {
  return (ctx, next) => {
    const methodMatches = ctx.method === method || (method === 'GET' && ctx.method === 'HEAD')
    const pathMatches = typeof path === 'string' ? ctx.path === path : path.test(ctx.path)
    if (!methodMatches || !pathMatches) return next()
    const run = async (i: number): Promise<unknown> => {
      const fn = chain[i]
      return fn === undefined ? next() : fn(ctx, () => run(i + 1))
    }
    return run(0)
  }
}

/** An app with the shared cache and validation in front of routes that count their calls. */
function cachedApp(options: Partial<ConstructorParameters<typeof HttpCache>[0]> = {}) {
  const engine = new HttpCache({ cache: newCache(), ...options })
  const app = new Koa()
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
    const app = new Koa()
    app.use(
      route('GET', '/one', cacheFor({ minutes: 5 }), (ctx) => {
        ctx.body = 'x'
      }),
    )
    app.use(
      route('GET', '/two', cacheFor({ hours: 1 }), cacheFor({ seconds: 10 }), (ctx) => {
        ctx.body = 'x'
      }),
    )
    app.use(
      route(
        'GET',
        '/mix',
        cacheControl({ public: true }),
        cacheFor({ days: 1 }),
        noStore(),
        (ctx) => {
          ctx.body = 'x'
        },
      ),
    )
    app.use(
      route(
        'GET',
        '/vary',
        vary('Accept-Language'),
        vary('Accept-Encoding', 'accept-language'),
        (ctx) => {
          ctx.set('Vary', 'Origin')
          ctx.body = 'x'
        },
      ),
    )
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
    const app = new Koa()
    app.use(
      route(
        'GET',
        '/',
        cacheControl({ public: true, sMaxage: 60, max_age: 30, 'stale-while-revalidate': 5 }),
        (ctx) => {
          ctx.body = 'x'
        },
      ),
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
  const app = new Koa()
  app.use(validation())
  app.use(
    route('GET', '/doc', (ctx) => {
      ctx.set('Last-Modified', 'Sat, 21 Nov 2026 00:00:00 GMT')
      ctx.set('Cache-Control', 'max-age=60')
      ctx.type = 'text/plain'
      ctx.body = 'document body'
    }),
  )
  app.use(
    route('GET', '/weak', (ctx) => {
      ctx.set('ETag', 'W/"v1"')
      ctx.body = 'weak'
    }),
  )
  app.use(
    route('GET', '/missing', (ctx) => {
      ctx.status = 404
      ctx.body = 'nope'
    }),
  )
  app.use(
    route('POST', '/doc', (ctx) => {
      ctx.body = 'posted'
    }),
  )

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
      // HEAD: Koa leaves the route's body on ctx, so HEAD gets the GET's ETag (Express cannot).
      const head = await get(s.port, '/doc', {}, 'HEAD')
      assert.equal(head.status, 200)
      assert.equal(head.body, '')
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
    const doc = new Koa()
    doc.use(
      route(
        'PUT',
        '/doc',
        preconditions(() => ({
          etag: '"v2"',
          lastModified: Date.parse('Sat, 21 Nov 2026 00:00:00 GMT'),
        })),
        (ctx) => {
          writes++
          ctx.body = 'updated'
        },
      ),
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
    app.use(
      route('GET', '/a', cacheFor({ seconds: 60 }), (ctx) => {
        ctx.body = `a${count('/a')}`
      }),
    )
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
    app.use(
      route('GET', '/plain', (ctx) => {
        ctx.body = `p${count('/plain')}`
      }),
    )
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
    app.use(
      route('GET', '/private', cacheControl({ private: true, maxAge: 60 }), (ctx) => {
        ctx.body = String(count('/private'))
      }),
    )
    app.use(
      route('GET', '/nostore', cacheControl({ noStore: true, maxAge: 60 }), (ctx) => {
        ctx.body = String(count('/nostore'))
      }),
    )
    app.use(
      route('GET', '/auth', cacheFor({ minutes: 1 }), (ctx) => {
        ctx.body = String(count('/auth'))
      }),
    )
    app.use(
      route('GET', '/auth-shared', cacheControl({ sMaxage: 60 }), (ctx) => {
        ctx.body = String(count('/auth-shared'))
      }),
    )
    app.use(
      route('GET', '/cookie', cacheFor({ minutes: 1 }), (ctx) => {
        ctx.set('Set-Cookie', 'session=abc')
        ctx.body = String(count('/cookie'))
      }),
    )
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
    app.use(
      route('GET', '/lang', cacheFor({ minutes: 1 }), vary('Accept-Language'), (ctx) => {
        ctx.body = `${ctx.req.headers['accept-language']}#${count('/lang')}`
      }),
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
    app.use(
      route('GET', '/h', cacheFor({ minutes: 1 }), (ctx) => {
        ctx.body = `body ${count('/h')}`
      }),
    )
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
    app.use(
      route('GET', '/c', cacheFor({ minutes: 1 }), (ctx) => {
        ctx.body = `c${count('/c')}`
      }),
    )
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
      app.use(
        route('GET', path, cacheFor({ minutes: 1 }), (ctx) => {
          ctx.body = `${path}#${count(path)}`
        }),
      )
    }
    app.use(
      route('POST', '/items', (ctx) => {
        ctx.set('Location', '/items/7')
        ctx.set('Content-Location', 'http://elsewhere.example/other')
        ctx.status = 201
        ctx.body = 'created'
      }),
    )
    app.use(
      route('DELETE', '/other', (ctx) => {
        ctx.status = 500
        ctx.body = 'failed'
      }),
    )
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
      const app = new Koa()
      app.use(httpCache(engine))
      let n = 0
      app.use(
        route('GET', /.*/, cacheFor({ minutes: 1 }), (ctx) => {
          ctx.body = `${ctx.path}#${++n}`
        }),
      )
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
    app.use(
      route('GET', '/r', (ctx) => {
        seen = ctx.req.headers['if-none-match']
        const n = (calls.get('/r') ?? 0) + 1
        calls.set('/r', n)
        ctx.set('Cache-Control', `max-age=${60 * n}`)
        ctx.body = 'same body'
      }),
    )
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
    app.use(
      route('GET', '/s', cacheFor({ seconds: 1 }), (ctx) => {
        ctx.body = `v${count('/s')}`
      }),
    )
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
    app.use(
      route('GET', '/swr', cacheControl({ maxAge: 1, staleWhileRevalidate: 30 }), (ctx) => {
        ctx.body = `s${count('/swr')}`
      }),
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
    app.use(
      route('GET', '/e', cacheControl({ maxAge: 1, staleIfError: 60 }), (ctx) => {
        if (failing) {
          ctx.status = 503
          ctx.body = 'down'
        } else ctx.body = 'good'
      }),
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
    app.use(
      route('GET', '/q', cacheFor({ seconds: 30 }), (ctx) => {
        ctx.body = `q${count('/q')}`
      }),
    )
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
    ignoring.app.use(
      route('GET', '/q', cacheFor({ seconds: 30 }), (ctx) => {
        ctx.body = `q${ignoring.count('/q')}`
      }),
    )
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
    app.use(
      route('GET', '/bad-expires', (ctx) => {
        ctx.set('Expires', 'not a date')
        ctx.body = String(count('/bad-expires'))
      }),
    )
    app.use(
      route('GET', '/bad-cc', (ctx) => {
        ctx.set('Cache-Control', 'max-age=abc, ,,="x", MAX-AGE=60')
        ctx.body = String(count('/bad-cc'))
      }),
    )
    app.use(
      route('GET', '/bad-age', (ctx) => {
        ctx.set('Cache-Control', 'max-age=60')
        ctx.set('Age', 'seven')
        ctx.body = String(count('/bad-age'))
      }),
    )
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

// The Express file's last test (a caching reverse proxy with http-proxy-middleware) has no Koa
// port: no Koa proxy module is installed (koa-proxies and the like are not dependencies).

describe('Koa bodies and the Koa request cycle', () => {
  test('stream and JSON bodies are captured, stored and validated as the bytes Koa sends', async () => {
    const { app, calls, count } = cachedApp()
    app.use(
      route('GET', '/stream', cacheFor({ minutes: 1 }), (ctx) => {
        const n = count('/stream')
        ctx.type = 'text/plain'
        ctx.body = Readable.from([Buffer.from('chunk one, '), Buffer.from(`chunk two #${n}`)])
      }),
    )
    app.use(
      route('GET', '/json', cacheFor({ minutes: 1 }), (ctx) => {
        ctx.body = { n: count('/json'), text: 'héllo' }
      }),
    )
    const s = await listen(app)
    try {
      const first = await get(s.port, '/stream')
      assert.equal(first.body, 'chunk one, chunk two #1')
      assert.equal(first.headers['content-length'], String(first.body.length))
      assert.equal(first.headers['content-type'], 'text/plain; charset=utf-8')
      assert.ok(first.headers.etag)
      const hit = await get(s.port, '/stream')
      assert.equal(hit.body, 'chunk one, chunk two #1')
      assert.equal(hit.headers['x-cache'], 'hit')
      assert.equal(calls.get('/stream'), 1)
      assert.equal(
        (await get(s.port, '/stream', { 'if-none-match': first.headers.etag as string })).status,
        304,
      )

      const json = await get(s.port, '/json')
      assert.deepEqual(JSON.parse(json.body), { n: 1, text: 'héllo' })
      assert.equal(json.headers['content-type'], 'application/json; charset=utf-8')
      assert.equal(json.headers['content-length'], String(Buffer.byteLength(json.body)))
      const jsonHit = await get(s.port, '/json')
      assert.equal(jsonHit.body, json.body)
      assert.equal(jsonHit.headers['x-cache'], 'hit')
      assert.equal(jsonHit.headers.etag, json.headers.etag)
    } finally {
      await s.close()
    }
  })

  test('a body over maxBodyBytes is sent through unchanged and not stored; so is ctx.respond = false', async () => {
    const { app, calls, count } = cachedApp({ maxBodyBytes: 1024 })
    const big = Buffer.alloc(5000, 'x')
    app.use(
      route('GET', '/big-stream', cacheFor({ minutes: 1 }), (ctx) => {
        count('/big-stream')
        ctx.set('Content-Length', String(big.length))
        ctx.body = Readable.from([
          big.subarray(0, 1000),
          big.subarray(1000, 3000),
          big.subarray(3000),
        ])
      }),
    )
    app.use(
      route('GET', '/big-string', cacheFor({ minutes: 1 }), (ctx) => {
        count('/big-string')
        ctx.body = big.toString()
      }),
    )
    app.use(
      route('GET', '/raw', cacheFor({ minutes: 1 }), (ctx) => {
        count('/raw')
        ctx.respond = false
        ctx.res.writeHead(200, { 'Content-Type': 'text/plain' })
        ctx.res.end('written by hand')
      }),
    )
    const s = await listen(app)
    try {
      for (const path of ['/big-stream', '/big-string']) {
        const a = await get(s.port, path)
        const b = await get(s.port, path)
        assert.equal(a.body, big.toString(), path)
        assert.equal(b.body, big.toString(), path)
        assert.equal(a.headers['content-length'], String(big.length), path)
        assert.equal(a.headers['x-cache'], undefined, `${path}: not held back`)
        assert.equal(a.headers['cache-control'], 'max-age=60', `${path}: the helper still applies`)
        assert.equal(calls.get(path), 2, `${path}: not stored`)
      }
      const raw = await get(s.port, '/raw')
      await get(s.port, '/raw')
      assert.equal(raw.body, 'written by hand')
      assert.equal(
        raw.headers['cache-control'],
        'max-age=60',
        'helpers apply when the app writes the headers',
      )
      assert.equal(calls.get('/raw'), 2)
    } finally {
      await s.close()
    }
  })

  test('a route that throws: a miss propagates the error (no caching headers); a revalidation may answer stale-if-error', async () => {
    const { app, count } = cachedApp()
    const errors: unknown[] = []
    app.on('error', (error: unknown) => errors.push(error))
    let failing = false
    app.use(
      route('GET', '/throws', cacheControl({ maxAge: 1, staleIfError: 60 }), (ctx) => {
        if (failing) throw new Error('origin down')
        ctx.body = `t${count('/throws')}`
      }),
    )
    app.use(
      route('GET', '/always', cacheFor({ minutes: 1 }), () => {
        throw new Error('never works')
      }),
    )
    const s = await listen(app)
    try {
      const miss = await get(s.port, '/always')
      assert.equal(miss.status, 500)
      assert.equal(miss.headers['cache-control'], undefined, 'an error page is not made cacheable')
      assert.equal((await get(s.port, '/always')).status, 500)

      await get(s.port, '/throws')
      await sleep(2100)
      failing = true
      const r = await get(s.port, '/throws')
      assert.equal(r.status, 200)
      assert.equal(r.body, 't1')
      assert.equal(r.headers['x-cache'], 'hit')
      assert.deepEqual(
        errors.map((e) => (e as Error).message),
        ['never works', 'never works', 'origin down'],
        'every error still reaches the app',
      )
    } finally {
      await s.close()
    }
  })

  test('headers outer middleware set are kept on every response but not stored; a POST invalidates before it is answered', async () => {
    const { engine, count, calls } = cachedApp()
    const app = new Koa()
    let requestId = 0
    app.use(async (ctx, next) => {
      ctx.set('X-Request-Id', String(++requestId))
      await next()
    })
    app.use(httpCache(engine))
    app.use(validation())
    app.use(
      route('GET', '/page', cacheFor({ minutes: 1 }), (ctx) => {
        ctx.body = `page ${count('/page')}`
      }),
    )
    app.use(
      route('POST', '/page', (ctx) => {
        ctx.body = 'saved'
      }),
    )
    const s = await listen(app)
    try {
      const first = await get(s.port, '/page')
      const hit = await get(s.port, '/page')
      assert.equal(first.headers['x-request-id'], '1')
      assert.equal(hit.headers['x-cache'], 'hit')
      assert.equal(hit.headers['x-request-id'], '2', "the stored response has no request's id")
      const notModified = await get(s.port, '/page', {
        'if-none-match': hit.headers.etag as string,
      })
      assert.equal(notModified.status, 304)
      assert.equal(notModified.headers['x-request-id'], '3')
      const host = `127.0.0.1:${s.port}`
      const post = get(s.port, '/page', {}, 'POST')
      assert.equal((await post).status, 200)
      const after = await engine.lookup({ method: 'GET', url: '/page', host, headers: {} })
      assert.equal(after.kind, 'miss', 'already invalidated when the POST was answered')
      assert.equal((await get(s.port, '/page')).body, 'page 2')
      assert.equal(calls.get('/page'), 2)
    } finally {
      await s.close()
    }
  })
})
