/**
 * HTTP caching in Express, beyond the behaviours every adapter shares (those
 * are in test/http-matrix.test.ts, run against Express by
 * test/http-matrix/express.ts): a caching reverse proxy with
 * http-proxy-middleware, and headers outer middleware set.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import express from 'express'
import { createProxyMiddleware } from 'http-proxy-middleware'
import { cacheFor, httpCache, validation } from '../src/frameworks/express/index.js'
import { get, listen } from './helpers.js'
import { counter, newEngine } from './http-matrix/driver.js'
import { checkCachingReverseProxy } from './http-matrix/reverse-proxy.js'

describe('A caching reverse proxy in a few lines (Express + http-proxy-middleware)', () => {
  test('responses of another origin server are cached, validated and invalidated', () =>
    checkCachingReverseProxy((engine, target) => {
      const proxy = express()
      proxy.use(httpCache(engine))
      proxy.use(validation())
      proxy.use(createProxyMiddleware({ target, changeOrigin: false }))
      return listen(proxy)
    }))
})

describe('Express: headers outer middleware set', () => {
  test('are kept on every response (hit, 304) but never stored', async () => {
    const engine = newEngine()
    const { count } = counter()
    const app = express()
    let requestId = 0
    app.use((_req, res, next) => {
      res.setHeader('X-Request-Id', String(++requestId))
      next()
    })
    app.use(httpCache(engine))
    app.use(validation())
    app.get('/page', cacheFor({ minutes: 1 }), (_req, res) => {
      res.setHeader('X-Route', 'yes')
      res.send(`page ${count('/page')}`)
    })
    const s = await listen(app)
    try {
      assert.equal((await get(s.port, '/page')).headers['x-request-id'], '1')
      const hit = await get(s.port, '/page')
      assert.equal(hit.headers['x-cache'], 'hit')
      assert.equal(hit.headers['x-request-id'], '2', "the stored response has no request's id")
      assert.equal(hit.headers['x-route'], 'yes')
      const stored = await engine.lookup({
        method: 'GET',
        url: '/page',
        host: `127.0.0.1:${s.port}`,
        headers: {},
      })
      assert.ok(
        stored.kind === 'hit' &&
          !stored.response.headers.some(([n]) => n.toLowerCase() === 'x-request-id'),
      )
      const notModified = await get(s.port, '/page', {
        'if-none-match': hit.headers.etag as string,
      })
      assert.equal(notModified.status, 304)
      assert.equal(notModified.headers['x-request-id'], '3')
    } finally {
      await s.close()
    }
  })
})
