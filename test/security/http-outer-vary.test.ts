/**
 * The shared HTTP cache (`httpCache`) on Express, Fastify, Koa and Hono:
 * a `Vary` that middleware in front of it adds (as the head is written, or
 * after the cache returned) selects the variant as the route's own would,
 * so a page made for one value of that request header is never served for
 * another; and an outer `Vary: *` keeps the response out of the cache.
 */
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { after, describe, it } from 'node:test'
import { createAdaptorServer } from '@hono/node-server'
import express from 'express'
import Fastify from 'fastify'
import { Hono } from 'hono'
import Koa from 'koa'
import * as expressHttp from '../../src/frameworks/express/index.js'
import * as fastifyHttp from '../../src/frameworks/fastify/index.js'
import * as honoHttp from '../../src/frameworks/hono/index.js'
import * as koaHttp from '../../src/frameworks/koa/index.js'
import { HttpCache } from '../../src/http/index.js'
import { Cache } from '../../src/index.js'
import { get, type Listening, listen } from '../helpers.js'
import { atHeaderWrite } from './outer.js'

/** The route's page: fresh for an hour, made for the request's `X-Tenant`. */
const page = (tenant: string | undefined) => `page of ${tenant ?? 'none'}`
const FRESH = { 'Cache-Control': 'max-age=3600' }

/** The `Vary` the outer middleware adds: named by the request's `X-Outer-Vary`, else `X-Tenant`. */
const outerVary = (asked: string | undefined) => asked ?? 'X-Tenant'

const frameworks: { name: string; start(engine: HttpCache): Promise<Listening> }[] = [
  {
    name: 'express',
    async start(engine) {
      const app = express()
      app.use((req, res, next) => {
        atHeaderWrite(res, 'Vary', outerVary(req.get('x-outer-vary')))
        next()
      })
      app.use(expressHttp.httpCache(engine))
      app.get('/page', (req, res) => {
        res.set(FRESH).send(page(req.get('x-tenant')))
      })
      return listen(createServer(app))
    },
  },
  {
    name: 'fastify',
    async start(engine) {
      const app = Fastify()
      app.addHook('onRequest', async (request, reply) => {
        atHeaderWrite(reply.raw, 'Vary', outerVary(request.headers['x-outer-vary'] as string))
      })
      await app.register(fastifyHttp.httpCache(engine))
      app.get('/page', async (request, reply) =>
        reply
          .headers(FRESH)
          .type('text/plain; charset=utf-8')
          .send(page(request.headers['x-tenant'] as string | undefined)),
      )
      await app.ready()
      return listen(app.server)
    },
  },
  {
    name: 'koa',
    async start(engine) {
      const app = new Koa()
      app.use(async (ctx, next) => {
        await next()
        ctx.set('Vary', outerVary(ctx.get('x-outer-vary') || undefined))
      })
      app.use(koaHttp.httpCache(engine))
      app.use(async (ctx) => {
        ctx.set(FRESH)
        ctx.type = 'text/plain; charset=utf-8'
        ctx.body = page(ctx.get('x-tenant') || undefined)
      })
      return listen(createServer(app.callback()))
    },
  },
  {
    name: 'hono',
    async start(engine) {
      const app = new Hono()
      app.use('*', async (c, next) => {
        await next()
        c.res.headers.append('Vary', outerVary(c.req.header('x-outer-vary')))
      })
      app.use('*', honoHttp.httpCache(engine))
      app.get('/page', (c) => {
        for (const [k, v] of Object.entries(FRESH)) c.header(k, v)
        return c.text(page(c.req.header('x-tenant')))
      })
      return listen(createAdaptorServer({ fetch: app.fetch }) as Server)
    },
  },
]

const caches: Cache[] = []
after(async () => {
  for (const cache of caches) await cache.close()
})

async function started(framework: (typeof frameworks)[number]): Promise<Listening> {
  const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
  caches.push(cache)
  return framework.start(new HttpCache({ cache }))
}

for (const framework of frameworks) {
  describe(`security: httpCache on ${framework.name} honours an outer Vary`, () => {
    it("an outer Vary selects the variant: one tenant's page never reaches another", async () => {
      const s = await started(framework)
      try {
        const a = await get(s.port, '/page', { 'x-tenant': 'a' })
        assert.equal(a.body, 'page of a')
        const b = await get(s.port, '/page', { 'x-tenant': 'b' })
        assert.equal(b.body, 'page of b')
        const again = await get(s.port, '/page', { 'x-tenant': 'a' })
        assert.equal(again.body, 'page of a')
        assert.equal(again.headers['x-cache'], 'hit')
      } finally {
        await s.close()
      }
    })

    it('an outer Vary: * keeps the response out of the cache', async () => {
      const s = await started(framework)
      try {
        await get(s.port, '/page', { 'x-tenant': 'a', 'x-outer-vary': '*' })
        const b = await get(s.port, '/page', { 'x-tenant': 'b' })
        assert.equal(b.body, 'page of b')
        assert.equal(b.headers['x-cache'], 'miss')
      } finally {
        await s.close()
      }
    })
  })
}
