/**
 * The Fastify driver of the HTTP-caching behaviour matrix: the shared cache
 * and validation registered as plugins, the header helpers as `onRequest`
 * route hooks and `preconditions` as a `preHandler`, all from
 * `cachette/fastify`.
 */
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance, type onRequestHookHandler } from 'fastify'
import * as cachette from '../../src/frameworks/fastify/index.js'
import type { Listening } from '../helpers.js'
import { type HttpDriver, helperWith, type StartOptions, validationOptions } from './driver.js'

const helper = helperWith<onRequestHookHandler>(cachette)

/**
 * A Fastify instance with the options' shared cache, validation and routes;
 * tests add their own routes before listening.
 */
export async function fastifyApp(options: StartOptions): Promise<FastifyInstance> {
  const app = Fastify()
  if (options.httpCache) await app.register(cachette.httpCache(options.httpCache))
  const validating = validationOptions(options)
  if (validating) await app.register(cachette.validation(validating))
  for (const route of options.routes) {
    const helpers = route.helpers ?? []
    app.route({
      method: route.method,
      url: route.path === '*' ? '/*' : route.path,
      onRequest: helpers.filter((h) => h.kind !== 'preconditions').map(helper),
      preHandler: helpers.filter((h) => h.kind === 'preconditions').map(helper),
      handler: async (req, reply) => {
        const answer = await route.handler({
          method: req.method,
          url: req.url,
          headers: req.headers,
        })
        if (answer.earlyHints) reply.writeEarlyHints(answer.earlyHints)
        if (answer.status !== undefined) reply.code(answer.status)
        reply.headers(answer.headers ?? {})
        return answer.body
      },
    })
  }
  return app
}

/** Listens with a Fastify instance on a free loopback port. */
export async function listenFastify(app: FastifyInstance): Promise<Listening> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { port: (app.server.address() as AddressInfo).port, close: () => app.close() }
}

/** Fastify 5. */
export const fastifyDriver: HttpDriver = {
  name: 'fastify',
  headGetsETag: true,
  helper,
  start: async (options) => listenFastify(await fastifyApp(options)),
}
