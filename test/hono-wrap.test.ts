/**
 * The handler-wrapping form of `cachette/hono`'s `cached`:
 * `app.get('/x', cached(cache, options, handler))`, over real sockets with
 * @hono/node-server. It must keep every guarantee of the middleware form.
 */
import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { after, describe, test } from 'node:test'
import { serve } from '@hono/node-server'
import { type Context, Hono } from 'hono'
import { getCookie, setCookie } from 'hono/cookie'
import { type CachedRouteHandler, cached } from '../src/frameworks/hono/index.js'
import { Cache } from '../src/index.js'
import { settledRequest } from './helpers.js'

const servers: ReturnType<typeof serve>[] = []
after(async () => {
  for (const s of servers) (s as { closeAllConnections?: () => void }).closeAllConnections?.()
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
})

/** Serves `app` with @hono/node-server on a free loopback port; closed after all tests. */
async function listen(app: Hono): Promise<number> {
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s))
  })
  servers.push(server)
  return (server.address() as AddressInfo).port
}

/** One raw request, then the wait for the response's store decision. */
const request = settledRequest()

const newCache = () => new Cache({ CACHE_TYPE: 'SimpleCache' })

describe('cached(cache, options, handler)', () => {
  test('a miss stores, a hit serves the stored page and the handler runs once', async () => {
    let runs = 0
    const app = new Hono()
    app.get(
      '/page',
      cached(newCache(), { timeout: 60 }, (c) => {
        runs++
        c.header('X-Run', String(runs))
        return c.html(`<p>page ${runs}</p>`)
      }),
    )
    const port = await listen(app)
    const first = await request(port, '/page')
    assert.equal(first.status, 200)
    assert.equal(first.text, '<p>page 1</p>')
    const second = await request(port, '/page')
    assert.equal(second.status, 200)
    assert.equal(second.text, '<p>page 1</p>')
    assert.equal(second.headers['x-run'], '1')
    assert.match(String(second.headers['content-type']), /^text\/html/)
    assert.equal(runs, 1)
  })

  test('a hit decided at once is a Response, not a Promise', async () => {
    const cache = newCache()
    const app = new Hono()
    const handler: CachedRouteHandler = cached(cache, { timeout: 60 }, (c) => c.text('sync'))
    let returned: unknown
    app.get('/sync', (c, next) => {
      returned = handler(c, next)
      return returned as Response | Promise<Response>
    })
    const port = await listen(app)
    await request(port, '/sync')
    assert.ok(returned instanceof Promise, 'a miss is asynchronous')
    const hit = await request(port, '/sync')
    assert.equal(hit.text, 'sync')
    assert.ok(returned instanceof Response, 'a hit is returned synchronously')
  })

  test('HEAD is served from a cached GET without running the handler', async () => {
    let runs = 0
    const app = new Hono()
    app.get(
      '/h',
      cached(newCache(), {}, (c) => {
        runs++
        return c.text('body of h')
      }),
    )
    const port = await listen(app)
    await request(port, '/h')
    const head = await request(port, '/h', { method: 'HEAD' })
    assert.equal(head.status, 200)
    assert.equal(head.text, '')
    assert.equal(head.headers['content-length'], String('body of h'.length))
    assert.equal(runs, 1)
  })

  test('Authorization and Proxy-Authorization bypass the cache', async () => {
    let runs = 0
    const app = new Hono()
    app.get(
      '/me',
      cached(newCache(), {}, (c) => {
        runs++
        return c.text(
          `for ${c.req.header('authorization') ?? c.req.header('proxy-authorization') ?? 'anyone'}`,
        )
      }),
    )
    const port = await listen(app)
    const alice = await request(port, '/me', { headers: { Authorization: 'Bearer alice' } })
    assert.equal(alice.text, 'for Bearer alice')
    const proxied = await request(port, '/me', { headers: { 'Proxy-Authorization': 'Basic bob' } })
    assert.equal(proxied.text, 'for Basic bob')
    const anonymous = await request(port, '/me')
    assert.equal(anonymous.text, 'for anyone', "an authorized page is never another user's")
    assert.equal(runs, 3)
    // and the authorized request is not served from the anonymous entry either
    const again = await request(port, '/me', { headers: { Authorization: 'Bearer alice' } })
    assert.equal(again.text, 'for Bearer alice')
  })

  test('unless and non-GET methods bypass the cache', async () => {
    let runs = 0
    const app = new Hono()
    const view = cached(
      newCache(),
      { unless: (c: Context) => c.req.query('fresh') === '1' },
      (c) => {
        runs++
        return c.text(`run ${runs}`)
      },
    )
    app.get('/u', view)
    app.post('/u', view)
    const port = await listen(app)
    assert.equal((await request(port, '/u?fresh=1')).text, 'run 1')
    assert.equal((await request(port, '/u?fresh=1')).text, 'run 2')
    assert.equal((await request(port, '/u', { method: 'POST' })).text, 'run 3')
    assert.equal((await request(port, '/u', { method: 'POST' })).text, 'run 4')
  })

  test('attack: a Set-Cookie added by outer middleware after the handler keeps alice’s page out', async () => {
    const app = new Hono()
    app.use(async (c, next) => {
      await next()
      const user = getCookie(c, 'user')
      if (user !== undefined) setCookie(c, 'session', `${user}-secret-token`)
    })
    app.get(
      '/home',
      cached(newCache(), { timeout: 60 }, (c) =>
        c.html(`<p>Welcome ${getCookie(c, 'user') ?? 'guest'}</p>`),
      ),
    )
    const port = await listen(app)
    const alice = await request(port, '/home', { headers: { Cookie: 'user=alice' } })
    assert.equal(alice.text, '<p>Welcome alice</p>')
    assert.match(String(alice.headers['set-cookie']), /alice-secret-token/)
    const anonymous = await request(port, '/home')
    assert.equal(
      anonymous.text,
      '<p>Welcome guest</p>',
      "alice's page never reaches an anonymous user",
    )
    assert.equal(
      anonymous.headers['set-cookie'],
      undefined,
      "alice's session never reaches anyone else",
    )
  })

  test('attack: Cache-Control: private added by outer middleware after the handler keeps alice’s page out', async () => {
    const app = new Hono()
    app.use(async (c, next) => {
      await next()
      if (getCookie(c, 'user') !== undefined) c.header('Cache-Control', 'private')
    })
    app.get(
      '/account',
      cached(newCache(), { timeout: 60 }, (c) =>
        c.html(`<p>Account of ${getCookie(c, 'user') ?? 'nobody'}</p>`),
      ),
    )
    const port = await listen(app)
    const alice = await request(port, '/account', { headers: { Cookie: 'user=alice' } })
    assert.equal(alice.text, '<p>Account of alice</p>')
    assert.equal(alice.headers['cache-control'], 'private')
    const anonymous = await request(port, '/account')
    assert.equal(
      anonymous.text,
      '<p>Account of nobody</p>',
      "alice's page never reaches an anonymous user",
    )
  })

  test('a handler that throws stores nothing and reaches onError', async () => {
    let runs = 0
    const app = new Hono()
    app.onError((error, c) => c.text(`failed: ${error.message}`, 500))
    app.get(
      '/boom',
      cached(newCache(), { timeout: 60, cacheStatuses: [200, 500] }, (c) => {
        runs++
        if (runs === 1) throw new Error('boom')
        return c.text(`ok ${runs}`)
      }),
    )
    const port = await listen(app)
    const failed = await request(port, '/boom')
    assert.equal(failed.status, 500)
    assert.equal(failed.text, 'failed: boom')
    assert.equal((await request(port, '/boom')).text, 'ok 2', 'the failure was not stored')
    assert.equal((await request(port, '/boom')).text, 'ok 2', 'the success was')
    assert.equal(runs, 2)
  })

  test('an async handler that rejects stores nothing', async () => {
    let runs = 0
    const app = new Hono()
    app.onError((error, c) => c.text(`failed: ${error.message}`, 500))
    app.get(
      '/later',
      cached(newCache(), {}, async (c) => {
        runs++
        await new Promise((r) => setTimeout(r, 5))
        if (runs === 1) throw new Error('later')
        return c.text(`ok ${runs}`)
      }),
    )
    const port = await listen(app)
    assert.equal((await request(port, '/later')).status, 500)
    assert.equal((await request(port, '/later')).text, 'ok 2')
    assert.equal((await request(port, '/later')).text, 'ok 2')
  })

  test('concurrent misses render once (stampede protection)', async () => {
    let runs = 0
    const app = new Hono()
    app.get(
      '/slow',
      cached(newCache(), { timeout: 60 }, async (c) => {
        runs++
        await new Promise((r) => setTimeout(r, 50))
        return c.text(`slow ${runs}`)
      }),
    )
    const port = await listen(app)
    const replies = await Promise.all([1, 2, 3, 4].map(() => request(port, '/slow')))
    for (const reply of replies) assert.equal(reply.text, 'slow 1')
    assert.equal(runs, 1)
  })

  test('the key is the middleware form’s key (makeCacheKey agrees)', async () => {
    const cache = newCache()
    const wrapped = cached(cache, { queryString: true }, (c) => c.text('x'))
    const middleware = cached(cache, { queryString: true })
    assert.equal(
      await wrapped.makeCacheKey({ path: '/k', queryArgs: { a: '1' } }),
      await middleware.makeCacheKey({ path: '/k', queryArgs: { a: '1' } }),
    )
  })

  test('a handler that is not a function is refused', () => {
    assert.throws(
      () => cached(newCache(), {}, 'nope' as unknown as (c: Context) => Response),
      TypeError,
    )
  })
})
