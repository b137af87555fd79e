/**
 * HTTP caching in Hono 4 (on @hono/node-server), beyond the behaviours every
 * adapter shares (those are in test/http-matrix.test.ts, run against Hono by
 * test/http-matrix/hono.ts): a caching reverse proxy with hono/proxy, then
 * what only Hono has: streams, outer middleware's headers, `c.error`.
 */
import assert from 'node:assert/strict'
import { request as httpRequest } from 'node:http'
import { describe, test } from 'node:test'
import { Hono } from 'hono'
import { proxy } from 'hono/proxy'
import { requestId } from 'hono/request-id'
import { stream, streamSSE } from 'hono/streaming'
import { cacheControl, cacheFor, httpCache, validation } from '../src/frameworks/hono/index.js'
import { get } from './helpers.js'
import { counter, newEngine } from './http-matrix/driver.js'
import { honoApp, listenHono } from './http-matrix/hono.js'
import { checkCachingReverseProxy } from './http-matrix/reverse-proxy.js'

/** A Hono app with the shared cache and validation, for routes that count their calls. */
function cachedApp(options: Parameters<typeof newEngine>[0] = {}) {
  return {
    app: honoApp({ httpCache: newEngine(options), validation: true, routes: [] }),
    ...counter(),
  }
}

describe("A caching reverse proxy in a few lines (Hono + Hono's proxy helper)", () => {
  test('responses of another origin server are cached, validated and invalidated', () =>
    checkCachingReverseProxy((engine, target) => {
      const front = new Hono()
      front.use(httpCache(engine))
      front.use(validation())
      front.all('*', (c) => {
        const url = new URL(c.req.url)
        return proxy(`${target}${url.pathname}${url.search}`, c.req.raw)
      })
      return listenHono(front)
    }))
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
    const s = await listenHono(app)
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
    const engine = newEngine()
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
    const s = await listenHono(outer)
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
    const s = await listenHono(app)
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
