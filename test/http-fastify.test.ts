/**
 * HTTP caching in Fastify 5, beyond the behaviours every adapter shares
 * (those are in test/http-matrix.test.ts, run against Fastify by
 * test/http-matrix/fastify.ts): the helpers as `preHandler` hooks, and
 * stream payloads, stored, streamed through or failing.
 */
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { describe, test } from 'node:test'
import Fastify from 'fastify'
import {
  cacheControl,
  cacheFor,
  httpCache,
  noStore,
  validation,
  vary,
} from '../src/frameworks/fastify/index.js'
import { get, sleep } from './helpers.js'
import { counter, newEngine } from './http-matrix/driver.js'
import { fastifyApp, listenFastify } from './http-matrix/fastify.js'
import { checkOuterHeadersKept } from './http-matrix/outer-headers.js'

describe('Header helpers (flask-webcache cache_for / cache_control)', () => {
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
    const s = await listenFastify(app)
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

describe('Shared cache: storing (RFC 9111 §3)', () => {
  test('stream payloads are collected and stored; one over maxBodyBytes streams through unstored', async () => {
    const { calls, count } = counter()
    const app = await fastifyApp({
      httpCache: newEngine({ maxBodyBytes: 8 }),
      validation: true,
      routes: [],
    })
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
    const s = await listenFastify(app)
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

describe('Shared cache: freshness, revalidation and staleness (RFC 9111 §4, RFC 5861)', () => {
  // The matrix's stale-if-error test covers a 503 and a thrown error; this is the stream case.
  test('RFC 5861 §4: stale-if-error serves the stale entry when a stream payload fails before its end', async () => {
    const app = await fastifyApp({ httpCache: newEngine(), validation: true, routes: [] })
    let failing = false
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
    const s = await listenFastify(app)
    try {
      await get(s.port, '/stream')
      await sleep(2100)
      failing = true
      const streamed = await get(s.port, '/stream')
      assert.equal(streamed.status, 200, 'and a stream failing before its end')
      assert.equal(streamed.body, 'good')
    } finally {
      await s.close()
    }
  })
})

describe('Fastify: headers earlier hooks set', () => {
  test('are kept on every response (hit) but never stored', () =>
    checkOuterHeadersKept(
      async ({ engine, count, nextId }) => {
        const app = Fastify()
        app.addHook('onRequest', async (_request, reply) => {
          reply.header('X-Request-Id', nextId())
        })
        await app.register(httpCache(engine))
        await app.register(validation())
        app.get('/page', { onRequest: cacheFor({ minutes: 1 }) }, async (_request, reply) => {
          reply.header('X-Route', 'yes')
          return `page ${count('/page')}`
        })
        return listenFastify(app)
      },
      { notModified: false },
    ))
})
