import { Readable } from 'node:stream'
import Koa, { type Context, type Middleware } from 'koa'
import { cached, setCacheTimeout } from '../../src/frameworks/koa/index.js'
import type { Cache } from '../../src/index.js'
import {
  binaryBody,
  count,
  type FrameworkDriver,
  type RouteSpec,
  type Running,
  runningOn,
  type StartOptions,
  streamChunks,
} from './driver.js'

const TEXT = 'text/plain; charset=utf-8'

/**
 * The behaviour-matrix driver for Koa 3, with `cached(cache, options)` from
 * `cachette/koa`. Routing is a small dispatch middleware keyed by `ctx.path`
 * (GET and HEAD only), so no router package is needed; each route is the
 * composed chain `[cached(...), handler]`, as `router.get(path, cached(...), handler)`
 * would build it.
 */
export const koaDriver: FrameworkDriver = {
  name: 'koa',
  async start(
    cache: Cache,
    routes: readonly RouteSpec[],
    options?: StartOptions,
  ): Promise<Running> {
    const app = new Koa()
    if (options?.initApp) cache.initApp(app, options.initApp)
    const calls = new Map<string, number>()

    // The framework's error handler: the outermost middleware.
    app.use(async (ctx, next) => {
      try {
        await next()
      } catch (error) {
        ctx.status = 500
        ctx.set('X-Error-Handler', (error as Error).message)
        ctx.body = 'error'
      }
    })

    const table = new Map<string, Middleware[]>()
    for (const route of routes) {
      const handler: Middleware = async (ctx: Context) => {
        const n = count(calls, route.path)
        const text = `${route.label}#${n}`
        const r = route.respond
        switch (r.kind) {
          case 'text':
            ctx.type = TEXT
            ctx.body = text
            return
          case 'json':
            ctx.body = { label: route.label, n }
            return
          case 'binary':
            ctx.type = 'application/octet-stream'
            ctx.body = binaryBody(n)
            return
          case 'stream': {
            ctx.type = TEXT
            const chunks = streamChunks(route.label, n)
            ctx.body = Readable.from(
              (async function* () {
                for (const c of chunks) {
                  yield c
                  await new Promise((resolve) => setTimeout(resolve, 3))
                }
              })(),
            )
            return
          }
          case 'status':
            ctx.status = r.status
            ctx.set('X-Custom', 'yes')
            ctx.type = TEXT
            ctx.body = text
            return
          case 'cookie':
            ctx.cookies.set('session', 'abc', { httpOnly: false })
            ctx.type = TEXT
            ctx.body = text
            return
          case 'throw':
            throw new Error(`boom ${route.label}`)
          case 'timeout':
            setCacheTimeout(ctx, r.responseTimeout)
            ctx.type = TEXT
            ctx.body = text
            return
          case 'call':
            ctx.type = TEXT
            ctx.body = await r.fn()
            return
        }
      }
      table.set(
        route.path,
        route.options === null ? [handler] : [cached(cache, route.options as never), handler],
      )
    }

    app.use((ctx, next) => {
      const chain = table.get(ctx.path)
      if (chain === undefined || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return next()
      return compose(chain)(ctx, next)
    })

    return runningOn(app.listen(0, '127.0.0.1'), calls)
  },
}

/** Runs `chain` in order, then `next` (what a router does with a route's middleware). */
function compose(chain: readonly Middleware[]): Middleware {
  return (ctx, next) => {
    const run = async (i: number): Promise<unknown> => {
      const fn = chain[i]
      return fn === undefined ? next() : fn(ctx, () => run(i + 1))
    }
    return run(0)
  }
}
