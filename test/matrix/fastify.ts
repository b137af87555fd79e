import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import Fastify, { type FastifyReply } from 'fastify'
import { cachette, setCacheTimeout } from '../../src/frameworks/fastify/index.js'
import type { Cache } from '../../src/index.js'
import {
  binaryBody,
  count,
  type FrameworkDriver,
  type RouteSpec,
  type Running,
  type StartOptions,
  streamChunks,
} from './driver.js'

const TEXT = 'text/plain; charset=utf-8'

/**
 * The behaviour-matrix driver for Fastify 5, with the `cachette/fastify`
 * plugin: `await app.register(cachette, { cache })`, then each cached route
 * declared with `config: { cache: options }` (an uncached route has no
 * `config.cache`). Errors are answered by `setErrorHandler`.
 */
export const fastifyDriver: FrameworkDriver = {
  name: 'fastify',
  async start(
    cache: Cache,
    routes: readonly RouteSpec[],
    options?: StartOptions,
  ): Promise<Running> {
    const app = Fastify()
    if (options?.initApp) cache.initApp(app, options.initApp)
    await app.register(cachette, { cache })
    const calls = new Map<string, number>()

    app.setErrorHandler((error: Error, _request, reply) => {
      reply.code(500).header('X-Error-Handler', error.message).type(TEXT).send('error')
    })

    for (const route of routes) {
      const handler = async (_request: unknown, reply: FastifyReply) => {
        const n = count(calls, route.path)
        const text = `${route.label}#${n}`
        const r = route.respond
        switch (r.kind) {
          case 'text':
            return reply.type(TEXT).send(text)
          case 'json':
            return reply.send({ label: route.label, n })
          case 'binary':
            return reply.type('application/octet-stream').send(binaryBody(n))
          case 'stream': {
            const chunks = streamChunks(route.label, n)
            const body = Readable.from(
              (async function* () {
                for (const c of chunks) {
                  yield c
                  await new Promise((resolve) => setTimeout(resolve, 3))
                }
              })(),
            )
            return reply.type(TEXT).send(body)
          }
          case 'status':
            return reply.code(r.status).header('X-Custom', 'yes').type(TEXT).send(text)
          case 'cookie':
            return reply.header('Set-Cookie', 'session=abc').type(TEXT).send(text)
          case 'throw':
            throw new Error(`boom ${route.label}`)
          case 'timeout':
            setCacheTimeout(reply, r.responseTimeout)
            return reply.type(TEXT).send(text)
          case 'call':
            return reply.type(TEXT).send(await r.fn())
        }
      }
      if (route.options === null) app.get(route.path, handler)
      else app.get(route.path, { config: { cache: route.options as never } }, handler)
    }

    await app.listen({ port: 0, host: '127.0.0.1' })
    return {
      url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
      calls,
      close: () => app.close(),
    }
  },
}
