/**
 * The Fastify, Koa or Hono app the HTTP groups load (framework named by the
 * first argument), run in a child process like bench/express/server.ts and
 * speaking the same IPC protocol. Two routes send the same ~2 KB HTML page:
 * `/limit` without caching, `/cached` through cachette's adapter.
 */

import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import Fastify from 'fastify'
import { Hono } from 'hono'
import Koa from 'koa'
import cachette from '../../src/frameworks/fastify/index.js'
import { cached as honoCached } from '../../src/frameworks/hono/index.js'
import { cached as koaCached } from '../../src/frameworks/koa/index.js'
import { Cache } from '../../src/index.js'
import { page } from '../lib/page.js'

const body = page()
const calls: Record<string, number> = { '/limit': 0, '/cached': 0 }
const hit = (route: string) => {
  calls[route] = (calls[route] ?? 0) + 1
}
const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
const HTML = 'text/html; charset=utf-8'

async function fastifyServer(): Promise<Server> {
  const app = Fastify()
  await app.register(cachette, { cache, timeout: 300 })
  app.get('/limit', (_req, reply) => {
    hit('/limit')
    reply.type(HTML).send(body)
  })
  app.get('/cached', { config: { cache: true } }, (_req, reply) => {
    hit('/cached')
    reply.type(HTML).send(body)
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return app.server
}

function koaServer(): Server {
  const app = new Koa()
  const view = koaCached(cache, { timeout: 300 })
  app.use(async (ctx, next) => {
    if (ctx.path === '/limit') {
      hit('/limit')
      ctx.type = HTML
      ctx.body = body
      return
    }
    if (ctx.path === '/cached') {
      await view(ctx, async () => {
        hit('/cached')
        ctx.type = HTML
        ctx.body = body
      })
      return
    }
    await next()
  })
  return app.listen(0, '127.0.0.1')
}

function honoServer(): Server {
  const app = new Hono()
  app.get('/limit', (c) => {
    hit('/limit')
    return c.html(body)
  })
  app.get('/cached', honoCached(cache, { timeout: 300 }), (c) => {
    hit('/cached')
    return c.html(body)
  })
  app.get(
    '/wrapped',
    honoCached(cache, { timeout: 300 }, (c) => {
      hit('/wrapped')
      return c.html(body)
    }),
  )
  return serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server
}

async function main(framework: string | undefined): Promise<void> {
  let server: Server
  if (framework === 'fastify') server = await fastifyServer()
  else if (framework === 'koa') server = koaServer()
  else if (framework === 'hono') server = honoServer()
  else throw new Error(`unknown framework ${String(framework)}: fastify, koa or hono`)
  const ready = () => {
    const { port } = server.address() as AddressInfo
    process.send?.({ type: 'ready', port, bodyLength: Buffer.byteLength(body) })
  }
  if (server.listening) ready()
  else server.once('listening', ready)
  process.on('message', (message: { type?: string }) => {
    if (message.type === 'stats') process.send?.({ type: 'stats', calls })
    if (message.type === 'exit') {
      server.closeAllConnections()
      server.close(() => process.exit(0))
    }
  })
  // Never outlive the parent.
  process.on('disconnect', () => process.exit(0))
}

if (process.send !== undefined) void main(process.argv[2])
