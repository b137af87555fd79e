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
import { newEngine } from './http-matrix/driver.js'
import { checkOuterHeadersKept } from './http-matrix/outer-headers.js'
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
  test('are kept on every response (hit, 304) but never stored', () =>
    checkOuterHeadersKept(
      ({ engine, count, nextId }) => {
        const app = express()
        app.use((_req, res, next) => {
          res.setHeader('X-Request-Id', nextId())
          next()
        })
        app.use(httpCache(engine))
        app.use(validation())
        app.get('/page', cacheFor({ minutes: 1 }), (_req, res) => {
          res.setHeader('X-Route', 'yes')
          res.send(`page ${count('/page')}`)
        })
        return listen(app)
      },
      { notModified: true },
    ))
})

describe('Express: Accept-Language order and the stored variants (RFC 9111 §4.1)', () => {
  test("req.acceptsLanguages() prefers the earlier of equal weights, so the cache keeps 'en, fr' and 'fr, en' apart", async () => {
    const app = express()
    app.set('etag', false)
    app.use(httpCache(newEngine()))
    app.get('/greet', cacheFor({ minutes: 1 }), (req, res) => {
      res.setHeader('Vary', 'Accept-Language')
      res.send(req.acceptsLanguages('en', 'fr') === 'fr' ? 'bonjour' : 'hello')
    })
    const s = await listen(app)
    try {
      assert.equal((await get(s.port, '/greet', { 'accept-language': 'en, fr' })).body, 'hello')
      const french = await get(s.port, '/greet', { 'accept-language': 'fr, en' })
      assert.equal(french.body, 'bonjour', 'not the stored English page')
      const same = await get(s.port, '/greet', { 'accept-language': 'EN,fr' })
      assert.equal(
        same.headers['x-cache'],
        'hit',
        'the same preference in another spelling shares it',
      )
      assert.equal(same.body, 'hello')
    } finally {
      await s.close()
    }
  })
})
