/**
 * Koa-specific view-caching tests: what the behaviour matrix
 * (test/matrix.test.ts) does not cover. Real servers on loopback ports.
 */
import assert from 'node:assert/strict'
import type http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { after, describe, test } from 'node:test'
import { createGzip, gunzipSync } from 'node:zlib'
import Koa, { type Context, type Middleware, type Next } from 'koa'
import { appContext } from '../src/core/context.js'
import { cached, type StoredView, setCacheTimeout } from '../src/frameworks/koa/index.js'
import { Cache, ConfigError, InvalidTimeoutError, SimpleCache } from '../src/index.js'
import { collectingLogger, fakeClock, settledRequest, storesSettled } from './helpers.js'

// ---------------------------------------------------------------- harness

const servers: http.Server[] = []
after(async () => {
  await Promise.all(
    servers.map(
      (s) =>
        new Promise((r) => {
          s.closeAllConnections()
          s.close(r)
        }),
    ),
  )
})

async function listen(app: Koa): Promise<number> {
  const server = app.listen(0, '127.0.0.1')
  servers.push(server)
  await new Promise<void>((r) => server.once('listening', r))
  return (server.address() as AddressInfo).port
}

/** One raw request, then the wait for the response's store decision (made after `finish`). */
const request = settledRequest()

function newCache(): Cache {
  return new Cache({ CACHE_TYPE: 'SimpleCache' })
}

/** A route: `chain` runs for GET/HEAD on `path` (what `router.get(path, ...chain)` does). */
function route(path: string, ...chain: Middleware[]): Middleware {
  return (ctx, next) => {
    if (ctx.path !== path || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return next()
    const run = async (i: number): Promise<unknown> => {
      const fn = chain[i]
      return fn === undefined ? next() : fn(ctx, () => run(i + 1))
    }
    return run(0)
  }
}

function counter() {
  let n = 0
  return {
    get n() {
      return n
    },
    next: () => ++n,
  }
}

async function stored(cache: Cache, key: string): Promise<StoredView | undefined> {
  return cache.get<StoredView>(key)
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms))

// ---------------------------------------------------------------- bodies

describe('koa: bodies are replayed byte for byte', () => {
  test('a string body, with non-ASCII text', async () => {
    const cache = newCache()
    const calls = counter()
    const app = new Koa()
    app.use(
      route('/s', cached(cache), (ctx) => {
        ctx.body = `héllo ✓ ${calls.next()}`
      }),
    )
    const port = await listen(app)
    const miss = await request(port, '/s')
    const hit = await request(port, '/s')
    assert.equal(calls.n, 1)
    assert.equal(hit.text, 'héllo ✓ 1')
    assert.ok(hit.body.equals(miss.body))
    assert.equal(hit.headers['content-type'], 'text/plain; charset=utf-8')
    assert.equal(hit.headers['content-length'], String(Buffer.byteLength('héllo ✓ 1')))
    const entry = await stored(cache, 'view//s')
    assert.ok(entry?.body.equals(Buffer.from('héllo ✓ 1')))
  })

  test('an HTML string keeps the text/html type Koa chose', async () => {
    const cache = newCache()
    const app = new Koa()
    app.use(
      route('/html', cached(cache), (ctx) => {
        ctx.body = '<p>hi</p>'
      }),
    )
    const port = await listen(app)
    await request(port, '/html')
    const hit = await request(port, '/html')
    assert.equal(hit.headers['content-type'], 'text/html; charset=utf-8')
    assert.equal(hit.text, '<p>hi</p>')
  })

  test('a Buffer body (every byte value), with Koa default octet-stream type', async () => {
    const cache = newCache()
    const calls = counter()
    const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) % 256))
    const app = new Koa()
    app.use(
      route('/b', cached(cache), (ctx) => {
        calls.next()
        ctx.body = bytes
      }),
    )
    const port = await listen(app)
    await request(port, '/b')
    const hit = await request(port, '/b')
    assert.equal(calls.n, 1)
    assert.ok(hit.body.equals(bytes))
    assert.equal(hit.headers['content-type'], 'application/octet-stream')
  })

  test('a Buffer the handler reuses and mutates later does not change the entry', async () => {
    const cache = newCache()
    const shared = Buffer.from('aaaa')
    const app = new Koa()
    app.use(
      route('/reuse', cached(cache), (ctx) => {
        ctx.body = shared
      }),
    )
    const port = await listen(app)
    await request(port, '/reuse')
    shared.write('zzzz')
    assert.equal((await request(port, '/reuse')).text, 'aaaa')
  })

  test('an object body is stored as the JSON bytes Koa sent', async () => {
    const cache = newCache()
    const calls = counter()
    const app = new Koa()
    app.use(
      route('/j', cached(cache), (ctx) => {
        ctx.body = { n: calls.next(), s: 'é', list: [1, null, true], nested: { a: 'b' } }
      }),
    )
    const port = await listen(app)
    const miss = await request(port, '/j')
    const hit = await request(port, '/j')
    assert.equal(calls.n, 1)
    assert.ok(hit.body.equals(miss.body))
    assert.equal(hit.text, '{"n":1,"s":"é","list":[1,null,true],"nested":{"a":"b"}}')
    assert.equal(hit.headers['content-type'], 'application/json; charset=utf-8')
    assert.equal(hit.headers['content-length'], String(miss.body.length))
  })

  test('an array body and a toJSON body', async () => {
    const cache = newCache()
    const app = new Koa()
    app.use(
      route('/arr', cached(cache), (ctx) => {
        ctx.body = [1, 'two', { three: 3 }]
      }),
    )
    app.use(
      route('/date', cached(cache), (ctx) => {
        ctx.body = { at: new Date(0) }
      }),
    )
    const port = await listen(app)
    assert.equal((await request(port, '/arr')).text, (await request(port, '/arr')).text)
    assert.equal((await stored(cache, 'view//arr'))?.body.toString(), '[1,"two",{"three":3}]')
    await request(port, '/date')
    assert.equal((await request(port, '/date')).text, '{"at":"1970-01-01T00:00:00.000Z"}')
  })

  test('a Node stream is passed through chunk by chunk and stored whole', async () => {
    const cache = newCache()
    const calls = counter()
    const app = new Koa()
    app.use(
      route('/stream', cached(cache), (ctx) => {
        const n = calls.next()
        ctx.type = 'text/plain; charset=utf-8'
        ctx.body = Readable.from(
          (async function* () {
            yield Buffer.from([0xe2, 0x9c]) // a character split across chunks
            await delay(5)
            yield Buffer.from([0x93])
            yield `#${n}`
          })(),
        )
      }),
    )
    const port = await listen(app)
    const miss = await request(port, '/stream')
    assert.equal(miss.text, '✓#1')
    assert.equal(miss.headers['transfer-encoding'], 'chunked')
    const hit = await request(port, '/stream')
    assert.equal(calls.n, 1)
    assert.ok(hit.body.equals(miss.body))
    assert.equal(hit.headers['content-length'], String(miss.body.length))
    assert.equal(hit.headers['content-type'], 'text/plain; charset=utf-8')
    const entry = await stored(cache, 'view//stream')
    assert.equal(
      entry?.headers.some(([n]) => n.toLowerCase() === 'transfer-encoding'),
      false,
    )
  })

  test('a stream with a Content-Length set by the app keeps it', async () => {
    const cache = newCache()
    const app = new Koa()
    app.use(
      route('/sized', cached(cache), (ctx) => {
        ctx.type = 'text/plain'
        ctx.length = 6
        ctx.body = Readable.from(['abc', 'def'])
      }),
    )
    const port = await listen(app)
    const miss = await request(port, '/sized')
    assert.equal(miss.headers['content-length'], '6')
    assert.equal(miss.text, 'abcdef')
    assert.equal((await request(port, '/sized')).text, 'abcdef')
    assert.ok(await cache.has('view//sized'))
  })

  test('web ReadableStream and Blob bodies are captured too', async () => {
    const cache = newCache()
    const app = new Koa()
    app.use(
      route('/web', cached(cache), (ctx) => {
        ctx.type = 'text/plain'
        ctx.body = new ReadableStream({
          start(controller) {
            controller.enqueue(new TextEncoder().encode('web-'))
            controller.enqueue(new TextEncoder().encode('stream'))
            controller.close()
          },
        })
      }),
    )
    app.use(
      route('/blob', cached(cache), (ctx) => {
        ctx.body = new Blob(['blob body'], { type: 'text/plain' })
      }),
    )
    const port = await listen(app)
    assert.equal((await request(port, '/web')).text, 'web-stream')
    assert.equal((await stored(cache, 'view//web'))?.body.toString(), 'web-stream')
    const blob = await request(port, '/blob')
    assert.equal(blob.text, 'blob body')
    assert.equal(blob.headers['content-length'], '9')
    assert.equal((await stored(cache, 'view//blob'))?.body.toString(), 'blob body')
    assert.equal(
      (await request(port, '/blob')).headers['content-type'],
      blob.headers['content-type'],
    )
  })

  test('a stream that errors is not stored', async () => {
    const cache = newCache()
    const calls = counter()
    const app = new Koa()
    app.silent = true
    app.use(
      route('/bad-stream', cached(cache), (ctx) => {
        calls.next()
        ctx.type = 'text/plain'
        ctx.body = Readable.from(
          (async function* () {
            yield 'partial'
            await delay(5)
            throw new Error('stream failed')
          })(),
        )
      }),
    )
    const port = await listen(app)
    await request(port, '/bad-stream').catch(() => undefined)
    await storesSettled()
    assert.equal(await cache.has('view//bad-stream'), false)
    await request(port, '/bad-stream').catch(() => undefined)
    assert.equal(calls.n, 2)
  })

  test('a body over maxBodySize is sent whole and not stored', async () => {
    const cache = newCache()
    const app = new Koa()
    app.use(
      route('/big', cached(cache, { maxBodySize: 10 }), (ctx) => {
        ctx.body = Readable.from(['0123456789', 'abcdef'])
      }),
    )
    app.use(
      route('/big-string', cached(cache, { maxBodySize: 10 }), (ctx) => {
        ctx.body = 'x'.repeat(11)
      }),
    )
    const port = await listen(app)
    assert.equal((await request(port, '/big')).text, '0123456789abcdef')
    assert.equal(await cache.has('view//big'), false)
    assert.equal((await request(port, '/big-string')).text.length, 11)
    assert.equal(await cache.has('view//big-string'), false)
  })
})

// ---------------------------------------------------------------- status, headers, Koa's own answers

describe('koa: status and headers', () => {
  test('a hit is shared: a repeated header appended to by outer middleware does not grow', async () => {
    const cache = newCache()
    const app = new Koa()
    app.use(async (ctx, next) => {
      await next()
      ctx.res.appendHeader('Link', '</outer>; rel=o')
    })
    app.use(
      route('/links', cached(cache), (ctx) => {
        ctx.set('Link', ['</a>; rel=a', '</b>; rel=b'])
        ctx.body = 'links'
      }),
    )
    const port = await listen(app)
    for (let i = 0; i < 3; i++) {
      const got = await request(port, '/links')
      assert.equal(got.headers.link, '</a>; rel=a, </b>; rel=b, </outer>; rel=o')
    }
  })

  test('status, custom and repeated headers are replayed; HEAD gets headers only', async () => {
    const cache = newCache()
    const calls = counter()
    const app = new Koa()
    app.use(
      route('/created', cached(cache, { responseHitIndication: 'x-cache' }), (ctx) => {
        calls.next()
        ctx.status = 201
        ctx.set('X-Custom', 'yes')
        ctx.set('Link', ['</a>; rel=a', '</b>; rel=b'])
        ctx.body = 'made'
      }),
    )
    const port = await listen(app)
    const miss = await request(port, '/created')
    assert.equal(miss.headers['x-cache'], undefined)
    const hit = await request(port, '/created')
    assert.equal(hit.status, 201)
    assert.equal(hit.headers['x-custom'], 'yes')
    assert.equal(hit.headers.link, '</a>; rel=a, </b>; rel=b')
    assert.equal(hit.headers['x-cache'], 'True')
    assert.equal(hit.text, 'made')
    const head = await request(port, '/created', { method: 'HEAD' })
    assert.equal(head.status, 201)
    assert.equal(head.body.length, 0)
    assert.equal(head.headers['content-length'], '4')
    assert.equal(head.headers['content-type'], 'text/plain; charset=utf-8')
    assert.equal(calls.n, 1)
  })

  test('a status without a body is stored as the text Koa answers with', async () => {
    const cache = newCache()
    const calls = counter()
    const app = new Koa()
    app.use(
      route('/ok', cached(cache), (ctx) => {
        calls.next()
        ctx.status = 202
      }),
    )
    const port = await listen(app)
    const miss = await request(port, '/ok')
    assert.equal(miss.text, 'Accepted')
    const hit = await request(port, '/ok')
    assert.equal(calls.n, 1)
    assert.equal(hit.status, 202)
    assert.equal(hit.text, 'Accepted')
    assert.equal(hit.headers['content-type'], miss.headers['content-type'])
  })

  test('a null body answers 204 and replays as 204 without Content-Type', async () => {
    const cache = newCache()
    const calls = counter()
    const app = new Koa()
    app.use(
      route('/none', cached(cache), (ctx) => {
        calls.next()
        ctx.type = 'text/plain'
        ctx.body = null
      }),
    )
    const port = await listen(app)
    assert.equal((await request(port, '/none')).status, 204)
    const hit = await request(port, '/none')
    assert.equal(calls.n, 1)
    assert.equal(hit.status, 204)
    assert.equal(hit.headers['content-type'], undefined)
    assert.equal(hit.body.length, 0)
  })

  test('an explicit null body with status 200 replays an empty 200', async () => {
    const cache = newCache()
    const app = new Koa()
    app.use(
      route('/empty', cached(cache), (ctx) => {
        ctx.body = null
        ctx.status = 200
      }),
    )
    const port = await listen(app)
    const miss = await request(port, '/empty')
    const hit = await request(port, '/empty')
    assert.equal(hit.status, 200)
    assert.equal(hit.body.length, 0)
    assert.equal(hit.headers['content-length'], '0')
    assert.equal(hit.headers['content-type'], miss.headers['content-type'])
  })

  test('a 404 from an app-wide cache with no matching route is not stored', async () => {
    const cache = newCache()
    const app = new Koa()
    app.use(cached(cache))
    const port = await listen(app)
    assert.equal((await request(port, '/nothing')).status, 404)
    assert.equal(await cache.has('view//nothing'), false)
  })

  test('ctx.respond = false (the app writes ctx.res itself) is not stored', async () => {
    const cache = newCache()
    const calls = counter()
    const app = new Koa()
    app.use(
      route('/raw', cached(cache), (ctx) => {
        calls.next()
        ctx.respond = false
        ctx.res.writeHead(200, { 'content-type': 'text/plain' })
        ctx.res.end('raw')
      }),
    )
    const port = await listen(app)
    assert.equal((await request(port, '/raw')).text, 'raw')
    assert.equal((await request(port, '/raw')).text, 'raw')
    assert.equal(calls.n, 2)
  })

  test('setCacheTimeout(ctx) overrides the route timeout; cacheTimeout is assignable', async () => {
    const clock = fakeClock()
    const cache = new Cache({ CACHE_TYPE: () => new SimpleCache({ clock: clock.now }) })
    const calls = counter()
    const mw = cached(cache, { timeout: 100 })
    assert.equal(mw.cacheTimeout, 100)
    assert.deepEqual(mw.options, { timeout: 100 })
    const app = new Koa()
    app.use(
      route('/t', mw, (ctx) => {
        setCacheTimeout(ctx, '2s')
        ctx.body = `t${calls.next()}`
      }),
    )
    const port = await listen(app)
    await request(port, '/t')
    assert.equal((await stored(cache, 'view//t'))?.timeout, 2)
    clock.advance(3000)
    assert.equal((await request(port, '/t')).text, 't2')
    mw.cacheTimeout = '1m'
    assert.equal(mw.cacheTimeout, 60)
  })

  test('callbacks receive the Koa context', async () => {
    const cache = newCache()
    const app = new Koa()
    app.use(async (ctx, next) => {
      ctx.state.user = 'ann'
      await next()
    })
    app.use(
      route(
        '/me',
        cached<Context>(cache, { keyPrefix: (ctx) => `view/${String(ctx.state.user)}${ctx.path}` }),
        (ctx) => {
          ctx.body = `hello ${String(ctx.state.user)}`
        },
      ),
    )
    const port = await listen(app)
    await request(port, '/me')
    assert.equal((await stored(cache, 'view/ann/me'))?.body.toString(), 'hello ann')
  })

  test('the key is the path as received, so a mount prefix that koa-mount strips is kept', async () => {
    const cache = newCache()
    const app = new Koa()
    // what koa-mount('/api', ...) does: strip the prefix from ctx.path for the inner app
    app.use(async (ctx, next) => {
      if (!ctx.path.startsWith('/api/')) return next()
      ctx.mountPath = '/api'
      ctx.path = ctx.path.slice(4)
      await next()
    })
    app.use(
      route('/users/%C3%A9', cached(cache), (ctx) => {
        ctx.body = 'u'
      }),
    )
    const port = await listen(app)
    await request(port, '/api/users/%C3%A9')
    assert.equal(await cache.has('view//api/users/%C3%A9'), true)
  })
})

// ---------------------------------------------------------------- ordering and errors

describe('koa: middleware ordering', () => {
  test('outer middleware headers are not stored but are set on hits too', async () => {
    const cache = newCache()
    const calls = counter()
    let requestId = 0
    const app = new Koa()
    app.use(async (ctx, next) => {
      ctx.set('X-Request-Id', String(++requestId))
      await next()
      ctx.set('X-After', `after-${requestId}`)
    })
    app.use(
      route('/o', cached(cache), (ctx) => {
        calls.next()
        ctx.set('X-Route', 'r')
        ctx.body = 'o'
      }),
    )
    const port = await listen(app)
    const miss = await request(port, '/o')
    const hit = await request(port, '/o')
    assert.equal(calls.n, 1)
    assert.equal(miss.headers['x-request-id'], '1')
    assert.equal(hit.headers['x-request-id'], '2')
    assert.equal(hit.headers['x-after'], 'after-2')
    assert.equal(hit.headers['x-route'], 'r')
    const names = (await stored(cache, 'view//o'))?.headers.map(([n]) => n.toLowerCase())
    assert.ok(names?.includes('x-route'))
    assert.ok(!names?.includes('x-request-id'))
    assert.ok(!names?.includes('x-after'))
  })

  test('a header an outer middleware set that the route changes is stored', async () => {
    const cache = newCache()
    const app = new Koa()
    app.use(async (ctx, next) => {
      ctx.set('Cache-Control', 'no-cache')
      await next()
    })
    app.use(
      route('/cc', cached(cache), (ctx) => {
        ctx.set('Cache-Control', 'public, max-age=60')
        ctx.body = 'cc'
      }),
    )
    const port = await listen(app)
    await request(port, '/cc')
    const hit = await request(port, '/cc')
    assert.equal(hit.headers['cache-control'], 'public, max-age=60')
  })

  test('middleware after the cache does not run on a hit; middleware before it does', async () => {
    const cache = newCache()
    const seen: string[] = []
    const app = new Koa()
    app.use(async (_ctx, next) => {
      seen.push('outer')
      await next()
    })
    app.use(
      route(
        '/seq',
        cached(cache),
        async (_ctx, next) => {
          seen.push('inner')
          await next()
        },
        (ctx) => {
          ctx.body = 'seq'
        },
      ),
    )
    const port = await listen(app)
    await request(port, '/seq')
    await request(port, '/seq')
    assert.deepEqual(seen, ['outer', 'inner', 'outer'])
  })

  test('a conditional-GET middleware outside the cache: the full 200 is stored, 304s are computed per request', async () => {
    const cache = newCache()
    const calls = counter()
    const app = new Koa()
    // what koa-conditional-get + koa-etag do, outside the cache
    app.use(async (ctx, next) => {
      await next()
      ctx.set('ETag', '"v1"')
      if (ctx.get('If-None-Match') === '"v1"') {
        ctx.status = 304
        ctx.body = null
      }
    })
    app.use(
      route('/etag', cached(cache), (ctx) => {
        calls.next()
        ctx.body = 'versioned'
      }),
    )
    const port = await listen(app)
    const cond = { 'if-none-match': '"v1"' }
    assert.equal((await request(port, '/etag', { headers: cond })).status, 304)
    assert.equal((await stored(cache, 'view//etag'))?.status, 200)
    assert.equal((await stored(cache, 'view//etag'))?.body.toString(), 'versioned')
    const full = await request(port, '/etag')
    assert.equal(full.status, 200)
    assert.equal(full.text, 'versioned')
    assert.equal((await request(port, '/etag', { headers: cond })).status, 304)
    assert.equal(calls.n, 1)
  })
})

/** A minimal koa-compress: gzip the body after `next()` when the client accepts it. */
function gzip(): Middleware {
  return async (ctx: Context, next: Next) => {
    await next()
    ctx.vary('Accept-Encoding')
    if (ctx.body == null || !ctx.acceptsEncodings('gzip', 'identity')) return
    if (ctx.acceptsEncodings('gzip', 'identity') !== 'gzip') return
    const body = ctx.body
    const gz = createGzip()
    if (body instanceof Readable) body.pipe(gz)
    else gz.end(typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body))
    ctx.set('Content-Encoding', 'gzip')
    ctx.remove('Content-Length')
    ctx.body = gz
  }
}

describe('koa: compression', () => {
  test('compression outside the cache: identity bytes stored, hits compressed per request', async () => {
    const cache = newCache()
    const calls = counter()
    const app = new Koa()
    app.use(gzip())
    app.use(
      route('/page', cached(cache), (ctx) => {
        calls.next()
        ctx.body = 'a page '.repeat(50)
      }),
    )
    const port = await listen(app)
    const gz = { 'accept-encoding': 'gzip' }
    const first = await request(port, '/page', { headers: gz })
    assert.equal(first.headers['content-encoding'], 'gzip')
    const entry = await stored(cache, 'view//page')
    assert.equal(entry?.body.toString(), 'a page '.repeat(50))
    assert.ok(!entry?.headers.some(([n]) => n.toLowerCase() === 'content-encoding'))
    const hit = await request(port, '/page', { headers: gz })
    assert.equal(hit.headers['content-encoding'], 'gzip')
    assert.equal(gunzipSync(hit.body).toString(), 'a page '.repeat(50))
    const plain = await request(port, '/page')
    assert.equal(plain.headers['content-encoding'], undefined)
    assert.equal(plain.text, 'a page '.repeat(50))
    assert.equal(calls.n, 1)
  })

  test('compression inside the cache: the encoded body is stored at key|gzip', async () => {
    const cache = newCache()
    const calls = counter()
    const app = new Koa()
    app.use(
      route('/inner', cached(cache), gzip(), (ctx) => {
        calls.next()
        ctx.body = { big: 'x'.repeat(200) }
      }),
    )
    const port = await listen(app)
    const gz = { 'accept-encoding': 'gzip' }
    await request(port, '/inner', { headers: gz })
    const entry = await stored(cache, 'view//inner|gzip')
    assert.ok(entry)
    assert.deepEqual(JSON.parse(gunzipSync(entry.body).toString()), { big: 'x'.repeat(200) })
    const hit = await request(port, '/inner', { headers: gz })
    assert.equal(hit.headers['content-encoding'], 'gzip')
    assert.deepEqual(JSON.parse(gunzipSync(hit.body).toString()), { big: 'x'.repeat(200) })
    assert.equal(calls.n, 1)
    const plain = await request(port, '/inner')
    assert.equal(plain.headers['content-encoding'], undefined)
    assert.deepEqual(JSON.parse(plain.text), { big: 'x'.repeat(200) })
    assert.equal(calls.n, 2)
  })
})

describe('koa: errors', () => {
  test('an error thrown downstream reaches the outer handler unchanged and is not cached', async () => {
    const cache = newCache()
    const calls = counter()
    const boom = Object.assign(new Error('boom'), { status: 418, expose: true })
    let caught: unknown
    const app = new Koa()
    app.use(async (ctx, next) => {
      try {
        await next()
      } catch (error) {
        caught = error
        ctx.status = 200 // even a cacheable status from the error handler is not stored
        ctx.body = 'handled'
      }
    })
    app.use(
      route('/boom', cached(cache), async () => {
        calls.next()
        await delay(1)
        throw boom
      }),
    )
    const port = await listen(app)
    assert.equal((await request(port, '/boom')).text, 'handled')
    assert.equal(caught, boom)
    await request(port, '/boom')
    assert.equal(calls.n, 2)
    assert.equal(await cache.has('view//boom'), false)
  })

  test("with no error middleware, Koa's default handler answers with the error status", async () => {
    const cache = newCache()
    const app = new Koa()
    app.silent = true
    app.use(
      route('/teapot', cached(cache), (ctx) => {
        ctx.throw(418, 'short and stout')
      }),
    )
    const port = await listen(app)
    const reply = await request(port, '/teapot')
    assert.equal(reply.status, 418)
    assert.equal(reply.text, 'short and stout')
    assert.equal(await cache.has('view//teapot'), false)
  })

  test('bad input fails at set-up, naming Koa and the call', () => {
    const cache = newCache()
    const needsCache = /cachette\/koa: cached\(cache, options\) needs a cachette Cache/
    assert.throws(() => cached(undefined as never), needsCache)
    assert.throws(() => cached(null as never), needsCache)
    assert.throws(() => cached({ timeout: 50 } as never), needsCache)
    assert.throws(() => cached(new Koa() as never), needsCache)
    assert.throws(
      () => cached(cache, { bogus: 1 } as never),
      (e: unknown) =>
        e instanceof TypeError &&
        /cachette\/koa: cached\(cache, options\).*"bogus"/.test(e.message),
    )
    assert.throws(
      () => cached(cache, (() => {}) as never),
      (e: unknown) =>
        e instanceof TypeError && /cachette\/koa.*options must be an object/.test(e.message),
    )
    assert.throws(() => cached(cache, { unless: 'yes' as never }), /unless must be a function/)
    assert.throws(() => cached(cache, { timeout: 'soon' }), InvalidTimeoutError)
    assert.throws(() => cached(cache, { maxBodySize: -1 }), /maxBodySize/)
    assert.throws(() => setCacheTimeout({}, 'later'), InvalidTimeoutError)
  })
})

// ---------------------------------------------------------------- apps

describe('koa: initApp and the current app', () => {
  test('two Koa apps on one Cache: memoize in a plain route uses each app backend', async () => {
    const cache = new Cache()
    let n = 0
    const memo = cache.memoize(async () => `memo${++n}`)
    const ports: number[] = []
    for (let i = 0; i < 2; i++) {
      const app = new Koa()
      // initApp after app.use still runs first: the binder puts its middleware at the front
      app.use(
        route('/memo', async (ctx) => {
          ctx.body = await memo()
        }),
      )
      cache.initApp(app, { CACHE_TYPE: 'SimpleCache' })
      app.use(
        route('/view', cached(cache), (ctx) => {
          ctx.body = `view${i}`
        }),
      )
      ports.push(await listen(app))
    }
    const [one, two] = ports as [number, number]
    assert.equal((await request(one, '/memo')).text, 'memo1')
    assert.equal((await request(two, '/memo')).text, 'memo2')
    assert.equal((await request(one, '/memo')).text, 'memo1')
    assert.equal((await request(two, '/memo')).text, 'memo2')
    assert.equal((await request(one, '/view')).text, 'view0')
    assert.equal((await request(two, '/view')).text, 'view1')
  })

  test('apps initialised after they listen: hits read the backend of ctx.app', async () => {
    const cache = new Cache()
    const ports: number[] = []
    const calls = [0, 0]
    const apps = [0, 1].map((i) => {
      const app = new Koa()
      app.use(
        route('/view', cached(cache), (ctx) => {
          calls[i] = (calls[i] ?? 0) + 1
          ctx.body = `view${i}`
        }),
      )
      return app
    })
    for (const app of apps) ports.push(await listen(app))
    // Too late for the binder's middleware: only cached() knows the app.
    for (const app of apps) cache.initApp(app, { CACHE_TYPE: 'SimpleCache' })
    const [one, two] = ports as [number, number]
    for (let round = 0; round < 2; round++) {
      assert.equal((await request(one, '/view')).text, 'view0')
      assert.equal((await request(two, '/view')).text, 'view1')
    }
    assert.deepEqual(calls, [1, 1])
  })

  test('initApp twice on one app adds one context middleware', () => {
    const cache = new Cache()
    const other = new Cache()
    const app = new Koa()
    cache.initApp(app, { CACHE_TYPE: 'SimpleCache' })
    other.initApp(app, { CACHE_TYPE: 'SimpleCache' })
    cache.initApp(app, { CACHE_TYPE: 'SimpleCache' })
    assert.equal(app.middleware.length, 1)
  })

  test('a cached route without initApp runs downstream with ctx.app as the current app', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    const app = new Koa()
    let current: unknown
    app.use(
      route('/ctx', cached(cache), (ctx) => {
        current = appContext.getStore()
        ctx.body = 'ok'
      }),
    )
    const port = await listen(app)
    await request(port, '/ctx')
    assert.equal(current, app)
  })
})

describe('koa: sourceCheck', () => {
  test('sourceCheck: true throws at set-up (Koa cannot show the handlers); CACHE_SOURCE_CHECK warns once and still caches', async () => {
    assert.throws(
      () => cached(newCache(), { sourceCheck: true }),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.code === 'ERR_CACHETTE_CONFIG' &&
        e.key === 'sourceCheck' &&
        /cachette\/koa.*cannot see the handlers.*closures/.test(e.message),
    )
    assert.doesNotThrow(() => cached(newCache(), { sourceCheck: false }))

    // The config flag applies to every route: it never throws, it says once that it cannot apply here.
    const logger = collectingLogger()
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_SOURCE_CHECK: true, logger })
    const calls = counter()
    const app = new Koa()
    app.use(
      route('/k', cached(cache), (ctx) => {
        ctx.body = `k#${calls.next()}`
      }),
    )
    app.use(
      route('/l', cached(cache), (ctx) => {
        ctx.body = `l#${calls.next()}`
      }),
    )
    const port = await listen(app)
    assert.equal((await request(port, '/k')).text, 'k#1')
    assert.equal((await request(port, '/k')).text, 'k#1')
    assert.equal((await request(port, '/l')).text, 'l#2')
    assert.equal(calls.n, 2)
    assert.ok(await stored(cache, 'view//k'))
    assert.ok(await stored(cache, 'view//l'))
    assert.equal(logger.warnings.length, 1, logger.warnings.join('\n'))
    assert.match(logger.warnings[0] as string, /sourceCheck.*\[CACHETTE_SOURCE_CHECK_UNAVAILABLE\]/)
  })
})

describe('invalidateOnUnsafe', () => {
  test('a successful POST through the middleware deletes the page of its URL before answering', async () => {
    const cache = newCache()
    const app = new Koa()
    let renders = 0
    app.use(cached(cache, { invalidateOnUnsafe: true, responseHitIndication: true }))
    app.use(async (ctx) => {
      if (ctx.method === 'GET') ctx.body = `${ctx.path} #${++renders}`
      else ctx.status = ctx.query.fail === '1' ? 500 : 201
    })
    const port = await listen(app)
    await request(port, '/items/1')
    await request(port, '/items/2')
    assert.equal((await request(port, '/items/1')).headers.hit_cache, 'True')
    await request(port, '/items/1?fail=1', { method: 'POST' })
    assert.equal(
      (await request(port, '/items/1')).headers.hit_cache,
      'True',
      'a failed write keeps it',
    )
    assert.equal((await request(port, '/items/1', { method: 'POST' })).status, 201)
    assert.equal((await request(port, '/items/1')).headers.hit_cache, undefined)
    assert.equal((await request(port, '/items/2')).headers.hit_cache, 'True')
  })
})
