/**
 * The Hono driver of the view-caching behaviour matrix: a real
 * `@hono/node-server` server, routes written as Hono users write them, cached
 * with `cached(cache, options)` from `cachette/hono`, as middleware or
 * wrapping the handler.
 */
import type { Server } from 'node:http'
import { serve } from '@hono/node-server'
import { type Context, Hono } from 'hono'
import { stream } from 'hono/streaming'
import type { ContentfulStatusCode, StatusCode } from 'hono/utils/http-status'
import { type CachedOptions, cached, setCacheTimeout } from '../../src/frameworks/hono/index.js'
import type { Cache } from '../../src/index.js'
import {
  binaryBody,
  count,
  type FrameworkDriver,
  type Responder,
  type Running,
  runningOn,
  streamChunks,
} from './driver.js'

/** The Content-Type Hono's `c.text()` sets. */
const TEXT = 'text/plain; charset=UTF-8'
const NULL_BODY = new Set([101, 103, 204, 205, 304])

/** The handler for one route, written with Hono's own response helpers. */
function handlerFor(
  respond: Responder,
  label: string,
  path: string,
  calls: Map<string, number>,
): (c: Context) => Response | Promise<Response> {
  switch (respond.kind) {
    case 'text':
      return (c) => c.text(`${label}#${count(calls, path)}`)
    case 'json':
      return (c) => c.json({ label, n: count(calls, path) })
    case 'binary':
      return (c) =>
        c.body(new Uint8Array(binaryBody(count(calls, path))), 200, {
          'Content-Type': 'application/octet-stream',
        })
    case 'stream':
      return (c) => {
        const chunks = streamChunks(label, count(calls, path))
        c.header('Content-Type', TEXT)
        return stream(c, async (s) => {
          for (const [i, chunk] of chunks.entries()) {
            if (i > 0) await s.sleep(5)
            await s.write(chunk)
          }
        })
      }
    case 'status': {
      const status = respond.status
      return (c) => {
        const body = `${label}#${count(calls, path)}`
        if (NULL_BODY.has(status)) return c.body(null, status as StatusCode, { 'X-Custom': 'yes' })
        return c.text(body, status as ContentfulStatusCode, { 'X-Custom': 'yes' })
      }
    }
    case 'cookie':
      return (c) => {
        c.header('Set-Cookie', 'session=abc')
        return c.text(`${label}#${count(calls, path)}`)
      }
    case 'throw':
      return async () => {
        count(calls, path)
        throw new Error(`boom ${label}`)
      }
    case 'timeout': {
      const seconds = respond.responseTimeout
      return (c) => {
        setCacheTimeout(c, seconds)
        return c.text(`${label}#${count(calls, path)}`)
      }
    }
    case 'call': {
      const fn = respond.fn
      return async (c) => {
        count(calls, path)
        return c.text(await fn())
      }
    }
  }
}

/**
 * A Hono driver: routes cached as middleware (`cached(cache, options)` before
 * the handler) or, with `wrapped`, by the handler-wrapping form
 * (`cached(cache, options, handler)`), which decides storability on its own path.
 */
function honoDriverOf(name: string, wrapped: boolean): FrameworkDriver {
  return {
    name,
    async start(cache: Cache, routes, options = {}): Promise<Running> {
      const calls = new Map<string, number>()
      const app = new Hono()
      if (options.initApp) cache.initApp(app, options.initApp)
      app.onError((err, c) => c.text('error', 500, { 'X-Error-Handler': err.message }))
      for (const route of routes) {
        const handler = handlerFor(route.respond, route.label, route.path, calls)
        const cachedOptions = route.options as CachedOptions
        if (route.options === null) app.get(route.path, handler)
        else if (wrapped) app.get(route.path, cached(cache, cachedOptions, handler))
        else app.get(route.path, cached(cache, cachedOptions), handler)
      }
      const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server
      return runningOn(server, calls)
    },
  }
}

/** Hono on `@hono/node-server`, `cached()` as middleware. */
export const honoDriver: FrameworkDriver = honoDriverOf('hono', false)
/** Hono on `@hono/node-server`, `cached()` wrapping the handler. */
export const honoWrappedDriver: FrameworkDriver = honoDriverOf('hono-wrapped', true)
