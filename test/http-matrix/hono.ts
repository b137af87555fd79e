/**
 * The Hono driver of the HTTP-caching behaviour matrix: `app.use` for the
 * shared cache and validation, the header helpers as route middleware, all
 * from `cachette/hono`, served by `@hono/node-server`.
 */
import type { Server } from 'node:http'
import { createAdaptorServer, type HttpBindings } from '@hono/node-server'
import { Hono, type MiddlewareHandler } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import * as cachette from '../../src/frameworks/hono/index.js'
import { type Listening, listen } from '../helpers.js'
import { type HttpDriver, helperWith, type StartOptions, validationOptions } from './driver.js'

const helper = helperWith<MiddlewareHandler>(cachette)

/**
 * A Hono app with the options' shared cache, validation and routes, and an
 * error handler answering 500 (quietly, unlike Hono's default); tests add
 * their own routes after these.
 */
export function honoApp(options: StartOptions): Hono {
  const app = new Hono()
  app.onError((_err, c) => c.text('error', 500))
  if (options.httpCache) app.use(cachette.httpCache(options.httpCache))
  const validating = validationOptions(options)
  if (validating) app.use(cachette.validation(validating))
  for (const route of options.routes) {
    const handler: MiddlewareHandler = async (c) => {
      const url = new URL(c.req.url)
      const answer = await route.handler({
        method: c.req.method,
        url: url.pathname + url.search,
        headers: c.req.header(),
      })
      // @hono/node-server hands the Node response over as `c.env.outgoing`.
      if (answer.earlyHints) (c.env as HttpBindings).outgoing.writeEarlyHints(answer.earlyHints)
      for (const [name, value] of Object.entries(answer.headers ?? {})) c.header(name, value)
      // A web Response of a null-body status cannot carry a body, even an empty one.
      if (answer.status === 204 || answer.status === 304) return c.body(null, answer.status)
      return c.text(answer.body, (answer.status ?? 200) as ContentfulStatusCode)
    }
    app.on(route.method, [route.path], ...(route.helpers ?? []).map(helper), handler)
  }
  return app
}

/** Serves a Hono app with `@hono/node-server` on a free loopback port. */
export function listenHono(app: Hono): Promise<Listening> {
  return listen(createAdaptorServer({ fetch: app.fetch }) as Server)
}

/** Hono 4 on `@hono/node-server`. */
export const honoDriver: HttpDriver = {
  name: 'hono',
  headGetsETag: true,
  helper,
  start: (options) => listenHono(honoApp(options)),
}
