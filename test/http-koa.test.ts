/**
 * HTTP caching in Koa, beyond the behaviours every adapter shares (those are
 * in test/http-matrix.test.ts, run against Koa by test/http-matrix/koa.ts):
 * stream and JSON bodies, `ctx.respond = false`, thrown errors, outer
 * middleware. No Koa proxy module is a dependency (koa-proxies and the
 * like), so Koa has no caching reverse proxy test.
 */
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { describe, test } from 'node:test'
import Koa from 'koa'
import { cacheControl, cacheFor, httpCache, validation } from '../src/frameworks/koa/index.js'
import { get, listen, sleep } from './helpers.js'
import { counter, newEngine } from './http-matrix/driver.js'
import { koaApp, route } from './http-matrix/koa.js'

/** A Koa app with the shared cache and validation, for routes that count their calls. */
function cachedApp(options: Parameters<typeof newEngine>[0] = {}) {
  const engine = newEngine(options)
  return { app: koaApp({ httpCache: engine, validation: true, routes: [] }), engine, ...counter() }
}

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
    const s = await listen(app.callback())
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
    const s = await listen(app.callback())
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
    const s = await listen(app.callback())
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
    const s = await listen(app.callback())
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
