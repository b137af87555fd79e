/**
 * The Koa driver of the HTTP-caching behaviour matrix: `app.use` for the
 * shared cache and validation, the header helpers as route middleware, all
 * from `cachette/koa`. Koa has no router of its own, so {@link route} is a
 * minimal one.
 */
import Koa, { type Middleware } from 'koa'
import * as cachette from '../../src/frameworks/koa/index.js'
import { listen } from '../helpers.js'
import { type HttpDriver, helperWith, type StartOptions, validationOptions } from './driver.js'

const helper = helperWith<Middleware>(cachette)

/**
 * A route: `chain` runs for `method` on `path` (`*`: every path; GET also
 * answers HEAD, as in Express and @koa/router); other requests go on down
 * the app.
 */
export function route(method: string, path: string, ...chain: Middleware[]): Middleware {
  return (ctx, next) => {
    const methodMatches = ctx.method === method || (method === 'GET' && ctx.method === 'HEAD')
    if (!methodMatches || (path !== '*' && ctx.path !== path)) return next()
    const run = async (i: number): Promise<unknown> => {
      const fn = chain[i]
      return fn === undefined ? next() : fn(ctx, () => run(i + 1))
    }
    return run(0)
  }
}

/**
 * A Koa app (`silent`: errors are not logged) with the options' shared
 * cache, validation and routes; tests add their own middleware after these.
 */
export function koaApp(options: StartOptions): Koa {
  const app = new Koa()
  app.silent = true
  if (options.httpCache) app.use(cachette.httpCache(options.httpCache))
  const validating = validationOptions(options)
  if (validating) app.use(cachette.validation(validating))
  for (const spec of options.routes) {
    const helpers = (spec.helpers ?? []).map(helper)
    app.use(
      route(spec.method, spec.path, ...helpers, async (ctx) => {
        const answer = await spec.handler({
          method: ctx.method,
          url: ctx.url,
          headers: ctx.headers,
        })
        if (answer.earlyHints) ctx.res.writeEarlyHints(answer.earlyHints)
        if (answer.status !== undefined) ctx.status = answer.status
        ctx.set(answer.headers ?? {})
        ctx.body = answer.body
      }),
    )
  }
  return app
}

/** Koa 2/3. */
export const koaDriver: HttpDriver = {
  name: 'koa',
  headGetsETag: true,
  helper,
  start: (options) => listen(koaApp(options).callback()),
}
