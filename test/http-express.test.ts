/**
 * HTTP caching in Express, beyond the behaviours every adapter shares (those
 * are in test/http-matrix.test.ts, run against Express by
 * test/http-matrix/express.ts): a caching reverse proxy with
 * http-proxy-middleware.
 */
import { describe, test } from 'node:test'
import express from 'express'
import { createProxyMiddleware } from 'http-proxy-middleware'
import { httpCache, validation } from '../src/frameworks/express/index.js'
import { listen } from './helpers.js'
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
