/**
 * HTTP caching in Fastify 5: the header helpers, validation (ETag, 304, 412),
 * preconditions for unsafe methods, and the RFC 9111 shared response cache
 * (httpCache), over real HTTP on loopback. The port of
 * test/http-express.test.ts (same names, same assertions where they apply),
 * plus what is Fastify's own: stream payloads, helpers as `preHandler`.
 */
import assert from 'node:assert/strict'
import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { describe, test } from 'node:test'
import Fastify, { type FastifyInstance } from 'fastify'
import {
  cacheControl,
  cacheFor,
  httpCache,
  noStore,
  preconditions,
  validation,
  vary,
} from '../src/frameworks/fastify/index.js'
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

async function listen(app: FastifyInstance): Promise<{ port: number; close(): Promise<void> }> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return {
    port: (app.server.address() as AddressInfo).port,
    close: () => app.close(),
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

function newCache(): Cache {
  return new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_THRESHOLD: 10_000, logger: silentLogger })
}

/** An app with the shared cache and validation in front of routes that count their calls. */
async function cachedApp(options: Partial<ConstructorParameters<typeof HttpCache>[0]> = {}) {
  const engine = new HttpCache({ cache: newCache(), ...options })
  const app = Fastify()
  await app.register(httpCache(engine))
  await app.register(validation())
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
    const app = Fastify()
    app.get('/one', { onRequest: cacheFor({ minutes: 5 }) }, async () => 'x')
    app.get(
      '/two',
      { onRequest: [cacheFor({ hours: 1 }), cacheFor({ seconds: 10 })] },
      async () => 'x',
    )
    app.get(
      '/mix',
      { onRequest: [cacheControl({ public: true }), cacheFor({ days: 1 }), noStore()] },
      async () => 'x',
    )
    app.get(
      '/vary',
      { onRequest: [vary('Accept-Language'), vary('Accept-Encoding', 'accept-language')] },
      async (_req, reply) => {
        reply.header('Vary', 'Origin')
        return 'x'
      },
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
    const app = Fastify()
    app.get(
      '/',
      {
        onRequest: cacheControl({
          public: true,
          sMaxage: 60,
          max_age: 30,
          'stale-while-revalidate': 5,
        }),
      },
      async () => 'x',
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

  test('the helpers work as preHandler hooks too, and on streamed and thrown responses', async () => {
    const app = Fastify()
    app.get('/pre', { preHandler: [cacheFor({ minutes: 1 }), vary('Accept')] }, async () => 'x')
    app.get('/stream', { onRequest: cacheFor({ seconds: 30 }) }, async (_req, reply) => {
      reply.type('text/plain')
      return Readable.from([Buffer.from('a'), Buffer.from('b')])
    })
    app.get('/boom', { onRequest: noStore() }, async () => {
      throw new Error('boom')
    })
    const s = await listen(app)
    try {
      const pre = await get(s.port, '/pre')
      assert.equal(pre.headers['cache-control'], 'max-age=60')
      assert.equal(pre.headers.vary, 'Accept')
      const streamed = await get(s.port, '/stream')
      assert.equal(streamed.body, 'ab')
      assert.equal(streamed.headers['cache-control'], 'max-age=30')
      const boom = await get(s.port, '/boom')
      assert.equal(boom.status, 500)
      assert.equal(boom.headers['cache-control'], 'no-store')
    } finally {
      await s.close()
    }
  })
})

describe('Validation: ETag, 304 and 412 (RFC 9110 §8.8, §13)', () => {
  /** A Fastify instance listens once, so each test builds its own. */
  async function validationApp(): Promise<FastifyInstance> {
    const app = Fastify()
    await app.register(validation())
    app.get('/doc', async (_req, reply) => {
      reply.header('Last-Modified', 'Sat, 21 Nov 2026 00:00:00 GMT')
      reply.header('Cache-Control', 'max-age=60')
      reply.type('text/plain')
      return 'document body'
    })
    app.get('/weak', async (_req, reply) => {
      reply.header('ETag', 'W/"v1"')
      return 'weak'
    })
    app.get('/missing', async (_req, reply) => reply.code(404).send('nope'))
    app.post('/doc', async () => 'posted')
    return app
  }

  test('an automatic strong ETag on GET 200 responses without one', async () => {
    const s = await listen(await validationApp())
    try {
      const a = await get(s.port, '/doc')
      assert.match(a.headers.etag as string, /^"[A-Za-z0-9_-]{27}"$/)
      assert.equal(
        (await get(s.port, '/doc')).headers.etag,
        a.headers.etag,
        'the same body, the same ETag',
      )
      // HEAD: Fastify's HEAD route runs the GET handler, so the ETag is the GET's
      // (in Express only a route's own ETag, or a stored GET, gives HEAD one).
      const head = await get(s.port, '/doc', {}, 'HEAD')
      assert.equal(head.status, 200)
      assert.equal(head.headers.etag, a.headers.etag)
      assert.equal(head.headers['content-length'], '13')
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
    const s = await listen(await validationApp())
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
    const s = await listen(await validationApp())
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
    const s = await listen(await validationApp())
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
    const doc = Fastify()
    doc.put(
      '/doc',
      {
        preHandler: preconditions(() => ({
          etag: '"v2"',
          lastModified: Date.parse('Sat, 21 Nov 2026 00:00:00 GMT'),
        })),
      },
      async () => {
        writes++
        return 'updated'
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
    const { app, calls, count } = await cachedApp()
    app.get('/a', { onRequest: cacheFor({ seconds: 60 }) }, async () => `a${count('/a')}`)
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
    const { app, calls, count } = await cachedApp()
    app.get('/plain', async () => `p${count('/plain')}`)
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
    const { app, calls, count } = await cachedApp()
    app.get('/private', { onRequest: cacheControl({ private: true, maxAge: 60 }) }, async () =>
      String(count('/private')),
    )
    app.get('/nostore', { onRequest: cacheControl({ noStore: true, maxAge: 60 }) }, async () =>
      String(count('/nostore')),
    )
    app.get('/auth', { onRequest: cacheFor({ minutes: 1 }) }, async () => String(count('/auth')))
    app.get('/auth-shared', { onRequest: cacheControl({ sMaxage: 60 }) }, async () =>
      String(count('/auth-shared')),
    )
    app.get('/cookie', { onRequest: cacheFor({ minutes: 1 }) }, async (_req, reply) => {
      reply.header('Set-Cookie', 'session=abc')
      return String(count('/cookie'))
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
    const { app, calls, count } = await cachedApp()
    app.get(
      '/lang',
      { onRequest: [cacheFor({ minutes: 1 }), vary('Accept-Language')] },
      async (req) => `${req.headers['accept-language']}#${count('/lang')}`,
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
    const { app, calls, count } = await cachedApp()
    app.get('/h', { onRequest: cacheFor({ minutes: 1 }) }, async () => `body ${count('/h')}`)
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
    const { app, count } = await cachedApp()
    app.get('/c', { onRequest: cacheFor({ minutes: 1 }) }, async () => `c${count('/c')}`)
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

  test('stream payloads are collected and stored; one over maxBodyBytes streams through unstored', async () => {
    const { app, calls, count } = await cachedApp({ maxBodyBytes: 8 })
    const chunks = (...parts: string[]) => Readable.from(parts.map((p) => Buffer.from(p)))
    app.get('/small', { onRequest: cacheFor({ minutes: 1 }) }, async (_req, reply) => {
      reply.type('text/plain')
      return chunks('s', String(count('/small')))
    })
    app.get('/web', { onRequest: cacheFor({ minutes: 1 }) }, async (_req, reply) => {
      reply.type('text/plain')
      return Readable.toWeb(chunks('w', String(count('/web'))))
    })
    app.get('/big', { onRequest: cacheFor({ minutes: 1 }) }, async (_req, reply) => {
      reply.type('text/plain')
      return chunks('0123', '4567', '89', `#${count('/big')}`)
    })
    const s = await listen(app)
    try {
      for (const path of ['/small', '/web']) {
        const first = await get(s.port, path)
        const second = await get(s.port, path)
        assert.equal(second.body, first.body, path)
        assert.equal(second.headers['x-cache'], 'hit', path)
        assert.ok(second.headers.etag, `${path}: validation hashed the collected body`)
        assert.equal(calls.get(path), 1, path)
      }
      const big = await get(s.port, '/big')
      assert.equal(big.body, '0123456789#1', 'sent whole, unchanged')
      assert.equal(big.headers['x-cache'], undefined, 'not held by the cache')
      assert.equal(big.headers['cache-control'], 'max-age=60', 'the helpers still apply')
      assert.equal((await get(s.port, '/big')).body, '0123456789#2', 'not stored')
    } finally {
      await s.close()
    }
  })
})

describe('Shared cache: invalidation (RFC 9111 §4.4, flask-webcache)', () => {
  test('a successful unsafe method invalidates the URL and its Location / Content-Location', async () => {
    const { app, calls, count } = await cachedApp()
    for (const path of ['/items', '/items/7', '/other']) {
      app.get(path, { onRequest: cacheFor({ minutes: 1 }) }, async () => `${path}#${count(path)}`)
    }
    app.post('/items', async (_req, reply) => {
      reply.header('Location', '/items/7')
      reply.header('Content-Location', 'http://elsewhere.example/other')
      return reply.code(201).send('created')
    })
    app.delete('/other', async (_req, reply) => reply.code(500).send('failed'))
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
    const build = async (masterSalt: string) => {
      const engine = new HttpCache({ cache, resourceExemptions: ['/static/'], masterSalt })
      const app = Fastify()
      await app.register(httpCache(engine))
      let n = 0
      app.get(
        '/*',
        { onRequest: cacheFor({ minutes: 1 }) },
        async (req) => `${req.url.split('?')[0]}#${++n}`,
      )
      return { app, engine }
    }
    const a = await build('one')
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
    const b = await build('two')
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
    const { app, calls } = await cachedApp()
    let seen: string | undefined
    app.get('/r', async (req, reply) => {
      seen = req.headers['if-none-match']
      const n = (calls.get('/r') ?? 0) + 1
      calls.set('/r', n)
      reply.header('Cache-Control', `max-age=${60 * n}`)
      return 'same body'
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
    const { app, count } = await cachedApp()
    app.get('/s', { onRequest: cacheFor({ seconds: 1 }) }, async () => `v${count('/s')}`)
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
    const { app, count } = await cachedApp()
    app.get(
      '/swr',
      { onRequest: cacheControl({ maxAge: 1, staleWhileRevalidate: 30 }) },
      async () => `s${count('/swr')}`,
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
    const { app } = await cachedApp()
    let failing = false
    app.get(
      '/e',
      { onRequest: cacheControl({ maxAge: 1, staleIfError: 60 }) },
      async (_req, reply) => {
        if (failing) return reply.code(503).send('down')
        return 'good'
      },
    )
    app.get(
      '/thrown',
      { onRequest: cacheControl({ maxAge: 1, staleIfError: 60 }) },
      async (_req, reply) => {
        if (failing) throw new Error('origin down')
        reply.type('text/plain')
        return 'good'
      },
    )
    app.get(
      '/stream',
      { onRequest: cacheControl({ maxAge: 1, staleIfError: 60 }) },
      async (_req, reply) => {
        reply.type('text/plain')
        const body = new Readable({ read() {} })
        body.push(failing ? 'par' : 'good')
        if (failing) setImmediate(() => body.destroy(new Error('stream broke')))
        else body.push(null)
        return body
      },
    )
    const s = await listen(app)
    try {
      await get(s.port, '/e')
      await get(s.port, '/thrown')
      await get(s.port, '/stream')
      await sleep(2100)
      failing = true
      const r = await get(s.port, '/e')
      assert.equal(r.status, 200)
      assert.equal(r.body, 'good')
      const thrown = await get(s.port, '/thrown')
      assert.equal(thrown.status, 200, 'a thrown error (500 from the error handler) too')
      assert.equal(thrown.body, 'good')
      const streamed = await get(s.port, '/stream')
      assert.equal(streamed.status, 200, 'and a stream failing before its end')
      assert.equal(streamed.body, 'good')
    } finally {
      await s.close()
    }
  })

  test('RFC 9111 §5.2.1: max-age, min-fresh and only-if-cached in the request; requestControlsCache: false ignores them', async () => {
    const { app, calls, count } = await cachedApp()
    app.get('/q', { onRequest: cacheFor({ seconds: 30 }) }, async () => `q${count('/q')}`)
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
    const ignoring = await cachedApp({ requestControlsCache: false })
    ignoring.app.get(
      '/q',
      { onRequest: cacheFor({ seconds: 30 }) },
      async () => `q${ignoring.count('/q')}`,
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
    const { app, calls, count } = await cachedApp()
    app.get('/bad-expires', async (_req, reply) => {
      reply.header('Expires', 'not a date')
      return String(count('/bad-expires'))
    })
    app.get('/bad-cc', async (_req, reply) => {
      reply.header('Cache-Control', 'max-age=abc, ,,="x", MAX-AGE=60')
      return String(count('/bad-cc'))
    })
    app.get('/bad-age', async (_req, reply) => {
      reply.header('Cache-Control', 'max-age=60')
      reply.header('Age', 'seven')
      return String(count('/bad-age'))
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
