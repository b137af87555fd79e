/**
 * Small real apps for the security tests, one per framework, each with the
 * same routes written the way that framework's users write them, behind
 * either the view cache (`cached()`) or the shared HTTP cache (`httpCache`).
 * Also a raw-socket client that checks a response's framing byte by byte.
 */
import type { Server } from 'node:http'
import { connect } from 'node:net'
import { Readable } from 'node:stream'
import { createAdaptorServer } from '@hono/node-server'
import express, { type NextFunction, type Request, type Response } from 'express'
import Fastify, { type FastifyReply } from 'fastify'
import { type Context, Hono } from 'hono'
import Koa, { type Context as KoaContext, type Middleware } from 'koa'
import * as expressHttp from '../../src/frameworks/express/http.js'
import * as fastifyView from '../../src/frameworks/fastify/index.js'
import * as honoView from '../../src/frameworks/hono/index.js'
import * as koaView from '../../src/frameworks/koa/index.js'
import type { Cache } from '../../src/index.js'
import { listen } from '../helpers.js'

/** The frameworks every attack runs on (`hono-wrapped`: Hono's `cached(cache, options, handler)` form). */
export const FRAMEWORKS = ['express', 'fastify', 'koa', 'hono', 'hono-wrapped'] as const
export type Framework = (typeof FRAMEWORKS)[number]

/** Which cache fronts the routes. */
export type Mode = 'cached' | 'http'

/** Freshness the routes give their responses, so `httpCache` may store them. */
export const FRESH = 'public, max-age=60'
/** The error handler's page: 14 bytes, answered with status 200. */
export const ERROR_PAGE = 'error page 14b'

/**
 * The routes (GET):
 *
 * - `/ok`: 200 `ok#<n>`.
 * - `/fresh`: 200 `fresh#<n>` with `Cache-Control: no-store` (nothing is stored for it).
 * - `/chunk-then-throw`: writes a first chunk, then fails (Express: throws after
 *   `res.write`; elsewhere the body stream errors after its first chunk); the
 *   error handler answers 200 {@link ERROR_PAGE}.
 * - `/throw`: the handler throws; the error handler answers 200 {@link ERROR_PAGE}.
 * - `/short`: `Content-Length: 12` but only 6 bytes of body (a source that
 *   failed after 6 of 12 bytes, then the response was ended).
 * - `/stream-error`: a streamed body whose source emits an error after its
 *   first chunk; the response is then ended.
 */
export const PATHS = ['/ok', '/fresh', '/chunk-then-throw', '/throw', '/short', '/stream-error']

/** A running app. */
export interface App {
  port: number
  /** How many times each path's handler ran. */
  calls: Map<string, number>
  close(): Promise<void>
}

function counter(calls: Map<string, number>, path: string): number {
  const n = (calls.get(path) ?? 0) + 1
  calls.set(path, n)
  return n
}

/** A Node stream that sends `first`, then fails with `boom`. */
function failingNodeStream(first: string): Readable {
  const stream = new Readable({ read() {} })
  stream.push(first)
  setTimeout(() => stream.destroy(new Error('boom')), 5)
  return stream
}

/** A web stream that sends `first`, then fails with `boom`. */
function failingWebStream(first: string): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(first))
      setTimeout(() => controller.error(new Error('boom')), 5)
    },
  })
}

/** Starts `framework`'s app on `cache` in `mode`. */
export async function startApp(framework: Framework, mode: Mode, cache: Cache): Promise<App> {
  const calls = new Map<string, number>()
  switch (framework) {
    case 'express':
      return expressApp(mode, cache, calls)
    case 'fastify':
      return fastifyApp(mode, cache, calls)
    case 'koa':
      return koaApp(mode, cache, calls)
    case 'hono':
      return honoApp(mode, cache, calls, false)
    case 'hono-wrapped':
      return honoApp(mode, cache, calls, true)
  }
}

async function expressApp(mode: Mode, cache: Cache, calls: Map<string, number>): Promise<App> {
  const app = express()
  // The cache for the whole app (`app.use`), as the attack mounts it.
  app.use(mode === 'cached' ? cache.cached() : expressHttp.httpCache({ cache }))
  app.get('/ok', (_req, res) => {
    res
      .set('Cache-Control', FRESH)
      .type('text/plain')
      .send(`ok#${counter(calls, '/ok')}`)
  })
  app.get('/fresh', (_req, res) => {
    res
      .set('Cache-Control', 'no-store')
      .type('text/plain')
      .send(`fresh#${counter(calls, '/fresh')}`)
  })
  app.get('/chunk-then-throw', (_req, res) => {
    counter(calls, '/chunk-then-throw')
    res.setHeader('Cache-Control', FRESH)
    res.setHeader('Content-Type', 'text/plain')
    res.write('partial ')
    throw new Error('boom')
  })
  app.get('/throw', (_req, _res) => {
    counter(calls, '/throw')
    throw new Error('boom')
  })
  app.get('/short', (_req, res) => {
    counter(calls, '/short')
    res.setHeader('Cache-Control', FRESH)
    res.setHeader('Content-Type', 'text/plain')
    res.setHeader('Content-Length', '12')
    res.write('123456')
    res.end()
  })
  app.get('/stream-error', (_req, res) => {
    counter(calls, '/stream-error')
    res.setHeader('Cache-Control', FRESH)
    res.setHeader('Content-Type', 'text/plain')
    const source = failingNodeStream('partial ')
    source.once('error', () => res.end())
    source.pipe(res)
  })
  app.use((_err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (res.headersSent) {
      res.end()
      return
    }
    res.status(200).set('Cache-Control', FRESH).type('text/plain').send(ERROR_PAGE)
  })
  const server = await listen(app as unknown as import('node:http').RequestListener)
  return { ...server, calls }
}

async function fastifyApp(mode: Mode, cache: Cache, calls: Map<string, number>): Promise<App> {
  const app = Fastify()
  if (mode === 'cached') await app.register(fastifyView.cachette, { cache })
  else await app.register(fastifyView.httpCache({ cache }))
  app.setErrorHandler((_error: Error, _request, reply) => {
    reply.code(200).header('Cache-Control', FRESH).type('text/plain').send(ERROR_PAGE)
  })
  const route = (path: string, handler: (reply: FastifyReply) => unknown) => {
    if (mode === 'cached') {
      app.get(path, { config: { cache: {} } }, (_request, reply) => handler(reply))
    } else app.get(path, (_request, reply) => handler(reply))
  }
  route('/ok', (reply) =>
    reply
      .header('Cache-Control', FRESH)
      .type('text/plain')
      .send(`ok#${counter(calls, '/ok')}`),
  )
  route('/fresh', (reply) =>
    reply
      .header('Cache-Control', 'no-store')
      .type('text/plain')
      .send(`fresh#${counter(calls, '/fresh')}`),
  )
  // A stream's failure after its first chunk is how both paths fail here.
  const failing = (path: string) => (reply: FastifyReply) => {
    counter(calls, path)
    return reply
      .header('Cache-Control', FRESH)
      .type('text/plain')
      .send(failingNodeStream('partial '))
  }
  route('/chunk-then-throw', failing('/chunk-then-throw'))
  route('/throw', () => {
    counter(calls, '/throw')
    throw new Error('boom')
  })
  route('/short', (reply) => {
    counter(calls, '/short')
    // Fastify sets the length of a string itself; a stream's declared length is sent as given.
    return reply
      .header('Cache-Control', FRESH)
      .header('Content-Length', '12')
      .type('text/plain')
      .send(Readable.from([Buffer.from('123456')]))
  })
  route('/stream-error', failing('/stream-error'))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as import('node:net').AddressInfo).port
  return { port, calls, close: () => app.close() }
}

async function koaApp(mode: Mode, cache: Cache, calls: Map<string, number>): Promise<App> {
  const app = new Koa()
  app.silent = true
  // The error handler: outermost, as Koa apps write it.
  app.use(async (ctx, next) => {
    try {
      await next()
    } catch {
      ctx.status = 200
      ctx.set('Cache-Control', FRESH)
      ctx.type = 'text/plain'
      ctx.body = ERROR_PAGE
    }
  })
  app.use(mode === 'cached' ? koaView.cached(cache) : koaView.httpCache({ cache }))
  // A stream's failure after its first chunk is how both paths fail here.
  const failing =
    (path: string): Middleware =>
    (ctx: KoaContext) => {
      counter(calls, path)
      ctx.set('Cache-Control', FRESH)
      ctx.type = 'text/plain'
      ctx.body = failingNodeStream('partial ')
    }
  const routes: Record<string, Middleware> = {
    '/ok': (ctx: KoaContext) => {
      ctx.set('Cache-Control', FRESH)
      ctx.type = 'text/plain'
      ctx.body = `ok#${counter(calls, '/ok')}`
    },
    '/fresh': (ctx: KoaContext) => {
      ctx.set('Cache-Control', 'no-store')
      ctx.type = 'text/plain'
      ctx.body = `fresh#${counter(calls, '/fresh')}`
    },
    '/chunk-then-throw': failing('/chunk-then-throw'),
    '/throw': () => {
      counter(calls, '/throw')
      throw new Error('boom')
    },
    '/short': (ctx: KoaContext) => {
      counter(calls, '/short')
      ctx.set('Cache-Control', FRESH)
      ctx.type = 'text/plain'
      ctx.body = '123456'
      ctx.set('Content-Length', '12')
    },
    '/stream-error': failing('/stream-error'),
  }
  app.use((ctx, next) => {
    const handler = routes[ctx.path]
    return handler === undefined ? next() : handler(ctx, next)
  })
  const server = await listen(app.callback())
  return { ...server, calls }
}

async function honoApp(
  mode: Mode,
  cache: Cache,
  calls: Map<string, number>,
  wrapped: boolean,
): Promise<App> {
  const app = new Hono()
  // `wrapped` (view cache only): each handler wrapped by `cached(cache, {}, handler)`, no middleware.
  const wrap = wrapped && mode === 'cached'
  const route = (handler: honoView.CachedView) =>
    wrap ? honoView.cached(cache, {}, handler) : handler
  app.onError((_err, c) => {
    c.header('Cache-Control', FRESH)
    return c.text(ERROR_PAGE, 200)
  })
  if (!wrap) app.use(mode === 'cached' ? honoView.cached(cache) : honoView.httpCache({ cache }))
  app.get(
    '/ok',
    route((c: Context) => {
      c.header('Cache-Control', FRESH)
      return c.text(`ok#${counter(calls, '/ok')}`)
    }),
  )
  app.get(
    '/fresh',
    route((c: Context) => {
      c.header('Cache-Control', 'no-store')
      return c.text(`fresh#${counter(calls, '/fresh')}`)
    }),
  )
  // A stream's failure after its first chunk is how both paths fail here.
  const failing = (path: string) => (c: Context) => {
    counter(calls, path)
    return c.body(failingWebStream('partial '), 200, {
      'Cache-Control': FRESH,
      'Content-Type': 'text/plain',
    })
  }
  app.get('/chunk-then-throw', route(failing('/chunk-then-throw')))
  app.get(
    '/throw',
    route(() => {
      counter(calls, '/throw')
      throw new Error('boom')
    }),
  )
  app.get(
    '/short',
    route((c: Context) => {
      counter(calls, '/short')
      return c.body('123456', 200, {
        'Cache-Control': FRESH,
        'Content-Type': 'text/plain',
        'Content-Length': '12',
      })
    }),
  )
  app.get('/stream-error', route(failing('/stream-error')))
  const server = await listen(createAdaptorServer({ fetch: app.fetch }) as Server)
  return { ...server, calls }
}

/** Starts `framework`'s app on `cache` in `mode`, runs `use` on it, and closes it whatever happens. */
export async function withApp(
  framework: Framework,
  mode: Mode,
  cache: Cache,
  use: (app: App) => Promise<void>,
): Promise<void> {
  const app = await startApp(framework, mode, cache)
  try {
    await use(app)
  } finally {
    await app.close()
  }
}

/** A response read off a raw socket, with what its framing says. */
export interface RawReply {
  status: number
  /** Header values by lower-case name (repeated ones joined with `, `). */
  headers: Record<string, string>
  /** The body as framed (Content-Length bytes, or the decoded chunks, or up to close). */
  body: string
  /** Whether the bytes on the wire match their framing exactly (no byte short, none left over). */
  wellFramed: boolean
  /** Why not, when not. */
  framing: string
}

/**
 * One GET over a raw TCP socket (`Connection: close`), reading everything the
 * server sends until it closes, so a body longer or shorter than its
 * `Content-Length` shows (a keep-alive client would be desynchronised by it).
 * Gives up after `ms` (the server may never close a response it framed wrong).
 */
export function rawGet(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  ms = 5000,
): Promise<RawReply> {
  return new Promise<RawReply>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    const timer = setTimeout(() => socket.destroy(), ms)
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      try {
        resolve(parseRaw(Buffer.concat(chunks)))
      } catch (error) {
        reject(error)
      }
    })
    const extra = Object.entries(headers)
      .map(([n, v]) => `${n}: ${v}\r\n`)
      .join('')
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${extra}Connection: close\r\n\r\n`,
    )
  })
}

function parseRaw(raw: Buffer): RawReply {
  const end = raw.indexOf('\r\n\r\n')
  // No response (the server gave up on it and closed the connection): status 0.
  if (end < 0) return { status: 0, headers: {}, body: '', wellFramed: true, framing: '' }
  const [statusLine, ...lines] = raw.subarray(0, end).toString('latin1').split('\r\n')
  const status = Number((statusLine ?? '').split(' ')[1])
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const i = line.indexOf(':')
    const name = line.slice(0, i).trim().toLowerCase()
    const value = line.slice(i + 1).trim()
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`
  }
  const rest = raw.subarray(end + 4)
  const cl = headers['content-length']
  if (headers['transfer-encoding']?.toLowerCase().includes('chunked')) {
    const out: Buffer[] = []
    let at = 0
    for (;;) {
      const lineEnd = rest.indexOf('\r\n', at)
      if (lineEnd < 0) return { status, headers, body: '', wellFramed: false, framing: 'cut chunk' }
      const size = Number.parseInt(rest.subarray(at, lineEnd).toString(), 16)
      at = lineEnd + 2
      if (size === 0) {
        const left = rest.length - (at + 2)
        const ok = left === 0
        const body = Buffer.concat(out).toString()
        return { status, headers, body, wellFramed: ok, framing: ok ? '' : `${left} bytes after` }
      }
      if (at + size + 2 > rest.length) {
        return { status, headers, body: '', wellFramed: false, framing: 'chunk cut short' }
      }
      out.push(rest.subarray(at, at + size))
      at += size + 2
    }
  }
  if (cl !== undefined) {
    const n = Number(cl)
    const ok = rest.length === n
    return {
      status,
      headers,
      body: rest.subarray(0, n).toString(),
      wellFramed: ok,
      framing: ok ? '' : `Content-Length ${n}, ${rest.length} bytes sent`,
    }
  }
  return { status, headers, body: rest.toString(), wellFramed: true, framing: '' }
}
