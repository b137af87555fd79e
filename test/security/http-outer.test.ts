/**
 * The shared HTTP cache (`httpCache`) on Express, Fastify, Koa and Hono over
 * real sockets: headers that middleware in front of it set (an auth layer's
 * `Cache-Control: private`, a session's `Set-Cookie`, before the route runs
 * or while the head is written) veto storage as the route's own would. The
 * route gives its per-user page freshness the way apps often do without
 * thinking of sharing: an `Expires` header, or a `Last-Modified` (heuristic
 * freshness).
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
import { outerHono, outerNode } from './outer.js'

/** How the route makes its page fresh. */
type Freshness = 'expires' | 'last-modified'

const EXPIRES = () => new Date(Date.now() + 3_600_000).toUTCString()
const LAST_MODIFIED = new Date(Date.now() - 86_400_000 * 30).toUTCString()

/** The route's headers: freshness chosen by the request's `X-Fresh`. */
function freshness(kind: string | undefined): Record<string, string> {
  return kind === 'last-modified' ? { 'Last-Modified': LAST_MODIFIED } : { Expires: EXPIRES() }
}

const account = (user: string | undefined) => `account of ${user ?? 'anon'}`

const frameworks: { name: string; start(engine: HttpCache): Promise<Listening> }[] = [
  {
    name: 'express',
    async start(engine) {
      const app = express()
      app.use((req, res, next) => {
        outerNode(req, res)
        next()
      })
      app.use(expressHttp.httpCache(engine))
      app.get('/account', (req, res) => {
        res.set(freshness(req.get('x-fresh'))).send(account(req.get('x-user')))
      })
      return listen(createServer(app))
    },
  },
  {
    name: 'fastify',
    async start(engine) {
      const app = Fastify()
      app.addHook('onRequest', async (request, reply) => {
        outerNode(request.raw, reply.raw)
        if (request.headers['x-outer'] === 'private') reply.header('Cache-Control', 'private')
      })
      await app.register(fastifyHttp.httpCache(engine))
      app.get('/account', async (request, reply) => {
        const h = request.headers
        return reply
          .headers(freshness(h['x-fresh'] as string | undefined))
          .type('text/html; charset=utf-8')
          .send(account(h['x-user'] as string | undefined))
      })
      await app.ready()
      return listen(app.server)
    },
  },
  {
    name: 'koa',
    async start(engine) {
      const app = new Koa()
      app.use(async (ctx, next) => {
        outerNode(ctx.req, ctx.res)
        await next()
        if (ctx.get('x-outer') === 'late-cookie') ctx.append('Set-Cookie', 'late=1')
      })
      app.use(koaHttp.httpCache(engine))
      app.use(async (ctx) => {
        if (ctx.path !== '/account') return
        ctx.set(freshness(ctx.get('x-fresh') || undefined))
        ctx.type = 'text/html; charset=utf-8'
        ctx.body = account(ctx.get('x-user') || undefined)
      })
      return listen(createServer(app.callback()))
    },
  },
  {
    name: 'hono',
    async start(engine) {
      const app = new Hono()
      app.use('*', outerHono)
      app.use('*', honoHttp.httpCache(engine))
      app.get('/account', (c) => {
        for (const [k, v] of Object.entries(freshness(c.req.header('x-fresh')))) c.header(k, v)
        return c.html(account(c.req.header('x-user')))
      })
      const server = createAdaptorServer({ fetch: app.fetch }) as Server
      return listen(server)
    },
  },
]

const caches: Cache[] = []
after(async () => {
  for (const cache of caches) await cache.close()
})

for (const framework of frameworks) {
  describe(`security: httpCache on ${framework.name} honours headers set outside it`, () => {
    for (const fresh of ['expires', 'last-modified'] as Freshness[]) {
      for (const outer of ['private', 'no-store', 'cookie', 'late-cookie'] as const) {
        it(`outer ${outer}, route fresh by ${fresh}: alice's page never reaches anyone else`, async () => {
          const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
          caches.push(cache)
          const s = await framework.start(new HttpCache({ cache }))
          try {
            const alice = await get(s.port, '/account', {
              'x-outer': outer,
              'x-user': 'alice',
              'x-fresh': fresh,
            })
            assert.equal(alice.body, 'account of alice')
            const anon = await get(s.port, '/account', { 'x-fresh': fresh })
            assert.equal(anon.body, 'account of anon')
            assert.equal(anon.headers['set-cookie'], undefined)
            // The anonymous page itself is stored: the veto was that response's only.
            const again = await get(s.port, '/account', { 'x-fresh': fresh })
            assert.equal(again.body, 'account of anon')
            assert.equal(again.headers['x-cache'], 'hit')
          } finally {
            await s.close()
          }
        })
      }
    }
  })
}
