/**
 * Hono-specific behaviour of `cachette/hono` that the framework matrix
 * (test/matrix.test.ts) does not cover: every Hono response helper replayed
 * byte for byte, streaming while capturing, Hono's error handling, bad input,
 * apps and async context, and the in-process `app.request()`.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, describe, test } from 'node:test'
import { gunzipSync } from 'node:zlib'
import { serve } from '@hono/node-server'
import { type Context, Hono } from 'hono'
import { compress } from 'hono/compress'
import { setCookie } from 'hono/cookie'
import { HTTPException } from 'hono/http-exception'
import { requestId } from 'hono/request-id'
import { stream, streamText } from 'hono/streaming'
import {
  type CachedHandler,
  cached,
  type StoredView,
  setCacheTimeout,
} from '../src/frameworks/hono/index.js'
import { Cache, InvalidTimeoutError, SimpleCache } from '../src/index.js'
import {
  collectingLogger,
  DownBackend,
  eventually,
  settledRequest,
  storesSettled,
} from './helpers.js'

// ---------------------------------------------------------------- harness

const servers: ReturnType<typeof serve>[] = []
after(async () => {
  for (const s of servers) (s as { closeAllConnections?: () => void }).closeAllConnections?.()
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
})

/** Serves `app` with @hono/node-server on a free loopback port; closed after all tests. */
async function listen(app: {
  fetch: (request: Request) => Response | Promise<Response>
}): Promise<number> {
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s))
  })
  servers.push(server)
  return (server.address() as AddressInfo).port
}

/** Waits for the background stores (made once a body has been read) to finish. */
const settle = () => storesSettled()

/** One raw request, then the wait for the response's store decision. */
const request = settledRequest()

function newCache(extra: Record<string, unknown> = {}): Cache {
  return new Cache({ CACHE_TYPE: 'SimpleCache', ...extra })
}

function randomBytes(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n)
  let x = seed
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff
    out[i] = x >> 16
  }
  return out
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

// ---------------------------------------------------------------- responses

describe('Hono responses are replayed byte for byte', () => {
  const binary = randomBytes(100_000, 7)
  const cases: [string, (c: Context, n: number) => Response | Promise<Response>][] = [
    ['c.text', (c, n) => c.text(`hello #${n} ✓`)],
    ['c.json', (c, n) => c.json({ n, list: [1, 2, 3], s: 'é' })],
    ['c.html', (c, n) => c.html(`<h1>page ${n}</h1>`)],
    [
      'c.body (bytes, status, headers)',
      (c, n) =>
        c.body(new Uint8Array(Buffer.concat([Buffer.from([n]), binary])), 201, {
          'Content-Type': 'application/octet-stream',
          'X-Extra': 'one',
        }),
    ],
    [
      'stream()',
      (c, n) => {
        c.header('Content-Type', 'text/plain')
        return stream(c, async (s) => {
          await s.write(`a${n}|`)
          await s.sleep(3)
          await s.write(new Uint8Array(binary.subarray(0, 70_000)))
          await s.sleep(3)
          await s.write('|z')
        })
      },
    ],
    [
      'streamText()',
      (c, n) =>
        streamText(c, async (s) => {
          await s.writeln(`line ${n}`)
          await s.sleep(3)
          await s.write('end')
        }),
    ],
    [
      'a Response with a ReadableStream body',
      (_c, n) => {
        const parts = [`r${n}|`, 'two|', 'three']
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            const part = parts.shift()
            if (part === undefined) controller.close()
            else {
              await sleep(2)
              controller.enqueue(new TextEncoder().encode(part))
            }
          },
        })
        return new Response(body, { headers: { 'Content-Type': 'text/x-parts' } })
      },
    ],
  ]

  for (const [name, respond] of cases) {
    test(name, async () => {
      const cache = newCache()
      const app = new Hono()
      let n = 0
      app.get('/r', cached(cache, { responseHitIndication: true }), (c) => respond(c, ++n))
      const port = await listen(app)
      const first = await request(port, '/r')
      const second = await request(port, '/r')
      assert.equal(n, 1, 'the second request is a hit')
      assert.equal(second.status, first.status)
      assert.ok(first.body.length > 0)
      assert.deepEqual(second.body, first.body)
      assert.equal(second.headers['content-type'], first.headers['content-type'])
      assert.equal(second.headers['content-length'], String(first.body.length))
      assert.equal(second.headers.hit_cache, 'True')
      assert.equal(first.headers.hit_cache, undefined)
      if (first.headers['x-extra']) assert.equal(second.headers['x-extra'], 'one')
      // What was stored is what was sent, not an empty or truncated copy.
      const entry = (await cache.get('view//r')) as StoredView
      assert.deepEqual(Buffer.from(entry.body), first.body)
    })
  }

  test('HEAD is answered from the GET entry with no body; a HEAD miss stores nothing', async () => {
    const cache = newCache()
    const app = new Hono()
    let n = 0
    app.get('/h', cached(cache), (c) => c.text(`h${++n}`))
    const port = await listen(app)
    const headMiss = await request(port, '/h', { method: 'HEAD' })
    assert.equal(headMiss.status, 200)
    assert.equal(await cache.has('view//h'), false)
    await request(port, '/h')
    const head = await request(port, '/h', { method: 'HEAD' })
    assert.equal(n, 2)
    assert.equal(head.body.length, 0)
    assert.equal(head.headers['content-length'], String('h2'.length))
    assert.match(String(head.headers['content-type']), /^text\/plain/)
  })

  test('headers an outer middleware set before the cache are not stored; hits get fresh ones', async () => {
    const cache = newCache()
    const app = new Hono()
    let id = 0
    app.use(requestId({ generator: () => `req-${++id}` }))
    app.get('/id', cached(cache), (c) => {
      c.header('X-Route', 'yes')
      return c.text('body')
    })
    const port = await listen(app)
    const first = await request(port, '/id')
    const second = await request(port, '/id')
    assert.equal(first.headers['x-request-id'], 'req-1')
    assert.equal(second.headers['x-request-id'], 'req-2')
    assert.equal(second.headers['x-route'], 'yes')
    const entry = (await cache.get('view//id')) as StoredView
    assert.deepEqual(entry.headers.map(([n]) => n.toLowerCase()).sort(), [
      'content-type',
      'x-route',
    ])
  })

  test('Set-Cookie from setCookie(), Cache-Control: no-store and 404s are not stored', async () => {
    const cache = newCache()
    const app = new Hono()
    const calls = { cookie: 0, nostore: 0, missing: 0 }
    app.get('/cookie', cached(cache), (c) => {
      calls.cookie++
      setCookie(c, 'sid', 'abc', { httpOnly: true })
      setCookie(c, 'theme', 'dark')
      return c.text('with cookies')
    })
    app.get('/nostore', cached(cache), (c) => {
      calls.nostore++
      return c.text('private', 200, { 'Cache-Control': 'no-store' })
    })
    app.get('/missing', cached(cache), (c) => {
      calls.missing++
      return c.notFound()
    })
    const port = await listen(app)
    for (let i = 0; i < 2; i++) {
      const r = await request(port, '/cookie')
      assert.equal((r.headers['set-cookie'] ?? []).length, 2)
      await request(port, '/nostore')
      assert.equal((await request(port, '/missing')).status, 404)
    }
    assert.deepEqual(calls, { cookie: 2, nostore: 2, missing: 2 })
  })
})

describe('compression', () => {
  const page = 'compress me please '.repeat(300)

  test('compress() before the cache: plain bytes are stored once, every response is encoded', async () => {
    const cache = newCache()
    const app = new Hono()
    app.use(compress())
    let n = 0
    app.get('/z', cached(cache), (c) => {
      n++
      return c.text(page)
    })
    const port = await listen(app)
    for (let i = 0; i < 2; i++) {
      const r = await request(port, '/z', { headers: { 'accept-encoding': 'gzip' } })
      assert.equal(r.headers['content-encoding'], 'gzip')
      assert.equal(gunzipSync(r.body).toString(), page)
    }
    assert.equal(n, 1)
    const entry = (await cache.get('view//z')) as StoredView
    assert.equal(Buffer.from(entry.body).toString(), page)
    assert.equal((await request(port, '/z')).text, page)
    assert.equal(n, 1)
  })

  test('compress() after the cache on the route: each coding is stored at key|coding', async () => {
    const cache = newCache()
    const app = new Hono()
    let n = 0
    app.get('/zi', cached(cache), compress(), (c) => {
      n++
      return c.text(page)
    })
    const port = await listen(app)
    const gz = await request(port, '/zi', { headers: { 'accept-encoding': 'gzip' } })
    const gzHit = await request(port, '/zi', { headers: { 'accept-encoding': 'gzip' } })
    assert.equal(n, 1)
    assert.deepEqual(gzHit.body, gz.body)
    assert.equal(gzHit.headers['content-encoding'], 'gzip')
    assert.equal(gunzipSync(gzHit.body).toString(), page)
    assert.equal(await cache.has('view//zi|gzip'), true)
    const plain = await request(port, '/zi')
    assert.equal(plain.headers['content-encoding'], undefined)
    assert.equal(plain.text, page)
    assert.equal(n, 2, 'a client without Accept-Encoding never gets the gzip entry')
    assert.equal((await request(port, '/zi')).text, page)
    assert.equal(n, 2)
  })
})

// ---------------------------------------------------------------- streams

describe('streamed responses', () => {
  test('are not delayed by the capture: the first chunk arrives before the stream ends', {
    timeout: 5000,
  }, async () => {
    const cache = newCache()
    const app = new Hono()
    let release!: () => void
    const gate = new Promise<void>((r) => {
      release = r
    })
    let finished = false
    app.get('/live', cached(cache), (c) =>
      stream(c, async (s) => {
        await s.write('first|')
        await gate
        await s.write('second')
        finished = true
      }),
    )
    const port = await listen(app)
    const { firstChunk, whole } = await new Promise<{ firstChunk: string; whole: string }>(
      (resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port, path: '/live', agent: false }, (res) => {
            let body = ''
            let firstChunk: string | undefined
            res.on('data', (c: Buffer) => {
              if (firstChunk === undefined) {
                firstChunk = c.toString()
                assert.equal(finished, false, 'the handler is still streaming')
                release()
              }
              body += c.toString()
            })
            res.on('end', () => resolve({ firstChunk: firstChunk ?? '', whole: body }))
          })
          .on('error', reject)
      },
    )
    assert.equal(firstChunk, 'first|')
    assert.equal(whole, 'first|second')
    await settle()
    const hit = await request(port, '/live')
    assert.equal(hit.text, 'first|second')
    assert.equal(hit.headers['content-length'], '12')
  })

  test('a client going away cancels the stream (onAbort runs) and nothing is stored', async () => {
    const cache = newCache()
    const app = new Hono()
    let aborted = false
    let written = 0
    app.get('/sse', cached(cache), (c) =>
      stream(c, async (s) => {
        s.onAbort(() => {
          aborted = true
        })
        while (!s.aborted && written < 200) {
          await s.write(`event ${written++}\n`)
          await s.sleep(5)
        }
      }),
    )
    const port = await listen(app)
    await new Promise<void>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/sse', agent: false }, (res) => {
        res.once('data', () => {
          req.destroy()
          resolve()
        })
      })
      req.on('error', () => {})
    })
    await eventually(async () => aborted, 10_000, "the handler's stream seeing the abort")
    await settle()
    assert.equal(aborted, true, "the handler's stream saw the abort")
    assert.ok(written < 200, 'the handler stopped writing')
    assert.equal(await cache.has('view//sse'), false)
  })

  test('a body stream that fails midway is not stored', async () => {
    const cache = newCache()
    const app = new Hono()
    let n = 0
    app.get('/broken', cached(cache), () => {
      n++
      let step = 0
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (step++ === 0) controller.enqueue(new TextEncoder().encode('partial'))
          else controller.error(new Error('disk gone'))
        },
      })
      return new Response(body)
    })
    const port = await listen(app)
    await request(port, '/broken').catch(() => undefined)
    await request(port, '/broken').catch(() => undefined)
    assert.equal(n, 2)
    assert.equal(await cache.has('view//broken'), false)
  })

  test('an error in a stream() callback is kept out when its onError sets c.error', async () => {
    const cache = newCache()
    const app = new Hono()
    let n = 0
    app.get('/half', cached(cache), (c) => {
      n++
      return stream(
        c,
        async (s) => {
          await s.write('half')
          throw new Error('render failed')
        },
        async (err) => {
          c.error = err
        },
      )
    })
    const port = await listen(app)
    assert.equal((await request(port, '/half')).text, 'half')
    await request(port, '/half')
    assert.equal(n, 2)
    assert.equal(await cache.has('view//half'), false)
  })

  test('a body larger than maxBodySize is delivered intact and not stored', async () => {
    const cache = newCache()
    const app = new Hono()
    const big = randomBytes(300_000, 3)
    let n = 0
    app.get('/big', cached(cache, { maxBodySize: 100_000 }), (c) => {
      n++
      return stream(c, async (s) => {
        for (let i = 0; i < big.length; i += 50_000) {
          await s.write(new Uint8Array(big.subarray(i, i + 50_000)))
        }
      })
    })
    app.get('/big-fixed', cached(cache, { maxBodySize: 100_000 }), (c) => {
      n++
      return c.body(new Uint8Array(big))
    })
    const port = await listen(app)
    for (const path of ['/big', '/big', '/big-fixed', '/big-fixed']) {
      assert.deepEqual((await request(port, path)).body, big)
    }
    assert.equal(n, 4)
  })
})

// ---------------------------------------------------------------- errors

describe('errors', () => {
  test('a thrown error reaches app.onError unchanged and the error page is not cached', async () => {
    const cache = newCache()
    const app = new Hono()
    const seen: unknown[] = []
    const boom = new Error('boom')
    let n = 0
    app.onError((err, c) => {
      seen.push(err)
      return c.text('handled', 200)
    })
    app.get('/boom', cached(cache), async () => {
      n++
      throw boom
    })
    app.get('/gone', cached(cache, { cacheStatuses: [200, 410] }), () => {
      n++
      throw new HTTPException(410, { message: 'gone' })
    })
    const port = await listen(app)
    for (let i = 0; i < 2; i++) {
      const r = await request(port, '/boom')
      assert.equal(r.status, 200)
      assert.equal(r.text, 'handled')
      await request(port, '/gone')
    }
    assert.equal(n, 4)
    assert.equal(seen.length, 4)
    assert.equal(seen[0], boom)
    assert.ok(seen[1] instanceof HTTPException)
    assert.equal(await cache.has('view//boom'), false)
    assert.equal(await cache.has('view//gone'), false)
  })

  test('with the default onError the 500 is not cached either', async () => {
    const cache = newCache()
    const app = new Hono()
    let n = 0
    const errors = console.error
    console.error = () => {}
    try {
      app.get('/e', cached(cache, { cacheStatuses: [200, 500] }), () => {
        n++
        throw new Error('x')
      })
      const port = await listen(app)
      assert.equal((await request(port, '/e')).status, 500)
      assert.equal((await request(port, '/e')).status, 500)
    } finally {
      console.error = errors
    }
    assert.equal(n, 2)
  })

  test('a failing backend is logged and the request served uncached; CACHE_RAISE_ERRORS sends it to onError', async () => {
    for (const raise of [false, true]) {
      const logger = collectingLogger()
      const cache = new Cache({ CACHE_TYPE: DownBackend, CACHE_RAISE_ERRORS: raise, logger })
      const app = new Hono()
      const seen: string[] = []
      app.onError((err, c) => {
        seen.push(err.message)
        return c.text('onError', 503)
      })
      app.get('/d', cached(cache), (c) => c.text('fresh'))
      const port = await listen(app)
      const r = await request(port, '/d')
      if (raise) {
        assert.equal(r.status, 503)
        assert.deepEqual(seen, ['backend down'])
      } else {
        assert.equal(r.text, 'fresh')
        assert.deepEqual(seen, [])
        assert.match(logger.errors.join('\n'), /cached view\/\/d: .*backend down/)
      }
    }
  })
})

// ---------------------------------------------------------------- set-up

describe('bad input is refused at set-up', () => {
  const cache = newCache()

  test('a first argument that is not a Cache names Hono and the expected call', () => {
    for (const bad of [undefined, null, { timeout: 50 }, 'cache', new SimpleCache()]) {
      assert.throws(
        () => cached(bad as unknown as Cache),
        (err: unknown) =>
          err instanceof TypeError &&
          err.message.startsWith(
            'cachette/hono: cached(cache, options) needs a cachette Cache as its first argument',
          ),
      )
    }
  })

  test('unknown options and wrong types throw TypeErrors naming the option', () => {
    assert.throws(
      () => cached(cache, { bogus: 1 } as never),
      /^TypeError: cachette\/hono: cached\(cache, options\): unknown option "bogus"/,
    )
    assert.throws(() => cached(cache, { unless: 'yes' } as never), /unless must be a function/)
    assert.throws(() => cached(cache, 'fast' as never), /options must be an object/)
    assert.throws(() => cached(cache, { timeout: 'soon' }), InvalidTimeoutError)
    assert.throws(() => setCacheTimeout({} as Context, -1), InvalidTimeoutError)
  })
})

// ---------------------------------------------------------------- options on Context

describe('options see the Hono Context', () => {
  test('keyPrefix, unless and setCacheTimeout get the Context; the middleware exposes its key', async () => {
    const cache = newCache()
    type AppEnv = { Variables: { user: string } }
    const app = new Hono<AppEnv>()
    app.use(async (c, next) => {
      c.set('user', c.req.header('x-user') ?? 'anon')
      await next()
    })
    const perUser: CachedHandler<AppEnv> = cached<AppEnv>(cache, {
      keyPrefix: (c) => `view/${c.get('user')}${c.req.path}`,
      unless: (c) => c.req.query('fresh') === '1',
      timeout: 300,
    })
    let n = 0
    app.get('/me', perUser, (c) => {
      n++
      setCacheTimeout(c, c.get('user') === 'ann' ? 10 : undefined)
      return c.text(`${c.get('user')} ${n}`)
    })
    // Without the type argument too: Env inferred from the route.
    app.get('/you', cached(cache, { keyPrefix: (c) => `view/you${c.req.path}` }), (c) =>
      c.text(c.get('user')),
    )
    const port = await listen(app)
    assert.equal((await request(port, '/me', { headers: { 'x-user': 'ann' } })).text, 'ann 1')
    assert.equal((await request(port, '/me', { headers: { 'x-user': 'bob' } })).text, 'bob 2')
    assert.equal((await request(port, '/me', { headers: { 'x-user': 'ann' } })).text, 'ann 1')
    assert.equal(
      (await request(port, '/me?fresh=1', { headers: { 'x-user': 'ann' } })).text,
      'ann 3',
    )
    assert.equal(((await cache.get('view/ann/me')) as StoredView).timeout, 10)
    assert.equal(((await cache.get('view/bob/me')) as StoredView).timeout, 300)
    assert.equal(perUser.cacheTimeout, 300)
    assert.equal(
      await perUser.makeCacheKey({
        path: '/me',
        request: { get: () => 'bob', req: { path: '/me' } },
      }),
      'view/bob/me',
    )
  })

  test('queryString keys match the Express adapter; makeCacheKey builds them', async () => {
    const cache = newCache()
    const app = new Hono()
    const search = cached(cache, { queryString: true })
    let n = 0
    app.get('/search', search, (c) => c.text(`${c.req.query('q')} ${++n}`))
    const port = await listen(app)
    assert.equal((await request(port, '/search?q=a&page=2')).text, 'a 1')
    assert.equal((await request(port, '/search?page=2&q=a')).text, 'a 1')
    assert.equal((await request(port, '/search?q=b')).text, 'b 2')
    const key = await search.makeCacheKey({ path: '/search', queryArgs: { q: 'a', page: 2 } })
    assert.match(key, /^view\/\/search[0-9a-f]{64}$/)
    assert.equal(await cache.has(key), true)
    const expressKey = await cache
      .cached({ queryString: true })
      .makeCacheKey({ path: '/search', queryArgs: 'page=2&q=a' })
    assert.equal(key, expressKey)
  })

  test('cache.deleteCached() removes entries a Hono route stored', async () => {
    const cache = newCache()
    const app = new Hono()
    let n = 0
    app.get('/d/:id', cached(cache), (c) => c.text(`${c.req.param('id')} ${++n}`))
    app.get('/q', cached(cache, { queryString: true }), (c) => c.text(`q ${++n}`))
    const port = await listen(app)
    await request(port, '/d/1')
    await request(port, '/q?x=1')
    assert.equal(await cache.deleteCached('/d/1'), true)
    assert.equal(
      await cache.deleteCached({ path: '/q', queryArgs: { x: 1 }, queryString: true }),
      true,
    )
    assert.equal((await request(port, '/d/1')).text, '1 3')
    assert.equal((await request(port, '/q?x=1')).text, 'q 4')
  })

  test('the key is the full path as received, under basePath and app.route()', async () => {
    const cache = newCache()
    const api = new Hono().basePath('/api')
    const users = new Hono()
    users.get('/:name', cached(cache), (c) => c.text(c.req.param('name')))
    api.route('/users', users)
    const port = await listen(api)
    assert.equal((await request(port, '/api/users/J%C3%BCrgen%20K')).text, 'Jürgen K')
    assert.equal(await cache.has('view//api/users/J%C3%BCrgen%20K'), true)
  })

  test('sourceCheck keys on the source of the handlers after the middleware', async () => {
    const cache = newCache()
    const app = new Hono()
    const handlerA = (c: Context) => c.text('a')
    const handlerB = (c: Context) => c.text('b, another handler')
    app.get('/a', cached(cache, { sourceCheck: true }), handlerA)
    app.get('/b', cached(cache, { sourceCheck: true }), handlerB)
    const port = await listen(app)
    await request(port, '/a')
    await request(port, '/b')
    const digest = (fn: Function) => createHash('sha256').update(fn.toString()).digest('hex')
    assert.equal(await cache.has(`view//a${digest(handlerA)}`), true)
    assert.equal(await cache.has(`view//b${digest(handlerB)}`), true)
  })

  test('sourceCheck: two versions of the handler get two keys; without matchedRoutes it warns once and caches without the digest', async () => {
    const digest = (fn: Function) => createHash('sha256').update(fn.toString()).digest('hex')
    // CACHE_SOURCE_CHECK, with the cache mounted for every route: the same meaning as the option.
    const cache = newCache({ CACHE_SOURCE_CHECK: true })
    const v1 = (c: Context): Response => c.text('version 1')
    const v2 = (c: Context): Response => c.text('version 2, changed')
    for (const handler of [v1, v2]) {
      const app = new Hono()
      app.use('*', cached(cache))
      app.get('/sc', handler)
      await request(await listen(app), '/sc')
    }
    assert.equal(await cache.has(`view//sc${digest(v1)}`), true)
    assert.equal(await cache.has(`view//sc${digest(v2)}`), true)

    // A Hono that does not list the matched handlers: the source is unknown.
    const logger = collectingLogger()
    const blind = newCache({ logger })
    const app = new Hono()
    app.use('*', async (c, next) => {
      Object.defineProperty(c.req, 'matchedRoutes', { value: undefined })
      await next()
    })
    let calls = 0
    app.get('/u', cached(blind, { sourceCheck: true }), (c) => c.text(`u#${++calls}`))
    const port = await listen(app)
    assert.equal((await request(port, '/u')).text, 'u#1')
    assert.equal((await request(port, '/u')).text, 'u#1')
    assert.equal(await blind.has('view//u'), true)
    assert.equal(logger.warnings.length, 1, logger.warnings.join('\n'))
    assert.match(logger.warnings[0] as string, /sourceCheck.*\[CACHETTE_SOURCE_CHECK_UNAVAILABLE\]/)
  })
})

// ---------------------------------------------------------------- apps

describe('apps and async context', () => {
  test('memoize inside plain routes of two initApp-ed Hono apps uses each app’s backend', async () => {
    const cache = new Cache()
    const app1 = new Hono()
    const app2 = new Hono()
    cache.initApp(app1, { CACHE_TYPE: 'SimpleCache' })
    cache.initApp(app2, { CACHE_TYPE: 'SimpleCache' })
    let calls = 0
    const load = cache.memoize(async (id: string) => {
      calls++
      await sleep(1)
      return `value ${id}`
    })
    for (const app of [app1, app2]) {
      app.get('/m/:id', async (c) => c.text(await load(c.req.param('id'))))
      app.get('/v/:id', cached(cache), async (c) => c.text(await load(c.req.param('id'))))
    }
    const port1 = await listen(app1)
    const port2 = await listen(app2)
    assert.equal((await request(port1, '/m/1')).text, 'value 1')
    assert.equal((await request(port1, '/m/1')).text, 'value 1')
    assert.equal(calls, 1)
    assert.equal((await request(port2, '/m/1')).text, 'value 1')
    assert.equal(calls, 2, "app2's memoize must not see app1's entry")
    await request(port2, '/v/2')
    assert.equal(await cache.runWithApp(app2, () => cache.has('view//v/2')), true)
    assert.equal(await cache.runWithApp(app1, () => cache.has('view//v/2')), false)
    await cache.runWithApp(app1, () => cache.clear())
    await request(port1, '/m/1')
    assert.equal(calls, 4)
    await request(port2, '/m/1')
    assert.equal(calls, 4)
  })

  test('initApp twice on one app (or from two Caches) binds it once', () => {
    const app = new Hono()
    new Cache().initApp(app, { CACHE_TYPE: 'SimpleCache' })
    new Cache().initApp(app, { CACHE_TYPE: 'SimpleCache' })
    assert.equal(app.routes.length, 1)
  })

  test('where the runtime has an ExecutionContext, the store is handed to waitUntil', async () => {
    const cache = newCache()
    const app = new Hono()
    app.get('/w', cached(cache), (c) => c.text('worker'))
    const pending: Promise<unknown>[] = []
    const executionCtx = {
      waitUntil: (p: Promise<unknown>) => void pending.push(p),
      passThroughOnException: () => {},
      props: {},
    }
    const res = await app.request('/w', undefined, {}, executionCtx)
    assert.equal(pending.length, 0, 'nothing to store before the body is read')
    assert.equal(await res.text(), 'worker')
    assert.equal(pending.length, 1)
    assert.equal(await pending[0], true)
    assert.equal(await cache.has('view//w'), true)
  })

  test('app.request() (in-process) misses, stores once the body is read, then hits', async () => {
    const cache = newCache()
    const app = new Hono()
    cache.initApp(app)
    let n = 0
    app.get('/in', cached(cache, { responseHitIndication: 'x-cache' }), (c) => c.json({ n: ++n }))
    const first = await app.request('/in')
    assert.deepEqual(await first.json(), { n: 1 })
    await settle()
    const second = await app.request('http://localhost/in')
    assert.deepEqual(await second.json(), { n: 1 })
    assert.equal(second.headers.get('x-cache'), 'True')
    assert.equal(second.headers.get('content-type'), 'application/json')
    const head = await app.request('/in', { method: 'HEAD' })
    assert.equal(head.status, 200)
    assert.equal(await head.text(), '')
    const post = await app.request('/in', { method: 'POST' })
    assert.equal(post.status, 404)
  })
})

describe('invalidateOnUnsafe', () => {
  test('a successful PUT/DELETE through the middleware or the wrapped handler deletes the page of its URL', async () => {
    const cache = newCache()
    const app = new Hono()
    let renders = 0
    app.use('/items/*', cached(cache, { invalidateOnUnsafe: true, responseHitIndication: true }))
    app.get('/items/:id', (c) => c.text(`item ${c.req.param('id')} #${++renders}`))
    app.put('/items/:id', (c) => c.text('saved', c.req.query('fail') === '1' ? 500 : 200))
    const wrapped = cached(
      cache,
      { invalidateOnUnsafe: true, responseHitIndication: true, keyPrefix: 'w/%s' },
      (c) => (c.req.method === 'GET' ? c.text(`wrapped #${++renders}`) : c.body(null, 204)),
    )
    app.on(['GET', 'DELETE'], '/wrapped', wrapped)
    const port = await listen(app)
    for (const path of ['/items/1', '/items/2', '/wrapped']) await request(port, path)
    assert.equal((await request(port, '/items/1')).headers.hit_cache, 'True')
    await request(port, '/items/1?fail=1', { method: 'PUT' })
    assert.equal(
      (await request(port, '/items/1')).headers.hit_cache,
      'True',
      'a failed write keeps it',
    )
    assert.equal((await request(port, '/items/1', { method: 'PUT' })).status, 200)
    assert.equal((await request(port, '/items/1')).headers.hit_cache, undefined)
    assert.equal((await request(port, '/items/2')).headers.hit_cache, 'True')
    assert.equal((await request(port, '/wrapped')).headers.hit_cache, 'True')
    assert.equal((await request(port, '/wrapped', { method: 'DELETE' })).status, 204)
    assert.equal((await request(port, '/wrapped')).headers.hit_cache, undefined)
  })
})
