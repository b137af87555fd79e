/**
 * Every framework's driver, and the loop the HTTP-caching matrix files run
 * their behaviours in: the frameworks side by side, each one's tests in
 * turn, each test's servers closed after that framework's tests.
 * `MATRIX=koa,hono` runs a subset while developing an adapter.
 */
import { after, describe } from 'node:test'
import type { HttpCache, HttpCacheOptions } from '../../src/http/index.js'
import type { Listening } from '../helpers.js'
import { type HttpDriver, newEngine, type RouteSpec, type StartOptions } from './driver.js'
import { expressDriver } from './express.js'
import { fastifyDriver } from './fastify.js'
import { honoDriver } from './hono.js'
import { koaDriver } from './koa.js'
import { nestjsDriver, nestjsFastifyDriver } from './nestjs.js'

const only = process.env.MATRIX?.split(',').map((s) => s.trim())

/** The drivers `MATRIX` selects (all of them by default). */
export const drivers: readonly HttpDriver[] = [
  expressDriver,
  fastifyDriver,
  koaDriver,
  honoDriver,
  nestjsDriver,
  nestjsFastifyDriver,
].filter((driver) => !only || only.includes(driver.name))

/** How a matrix test starts its servers (closed after its framework's tests). */
export interface MatrixServers {
  /** A server for `options`. */
  start(options: StartOptions): Promise<Listening>
  /** A server with the shared cache (`engine`, on a new cache) and validation in front of `routes`. */
  cached(
    routes: RouteSpec[],
    options?: Partial<HttpCacheOptions>,
  ): Promise<Listening & { engine: HttpCache }>
}

/** `describe(title)` with one `describe(driver.name)` per driver, in which `body` declares its tests. */
export function describeMatrix(
  title: string,
  body: (driver: HttpDriver, servers: MatrixServers) => void,
): void {
  // The drivers run side by side (some tests sleep for the clock); each one's tests run in turn.
  describe(title, { concurrency: true }, () => {
    for (const driver of drivers) {
      describe(driver.name, { concurrency: 1 }, () => {
        const running: Listening[] = []
        after(() => Promise.all(running.map((s) => s.close())))
        const start = async (options: StartOptions) => {
          const s = await driver.start(options)
          running.push(s)
          return s
        }
        body(driver, {
          start,
          cached: async (routes, options = {}) => {
            const engine = newEngine(options)
            const s = await start({ httpCache: engine, validation: true, routes })
            return { ...s, engine }
          },
        })
      })
    }
  })
}

/** A GET (and HEAD) route. */
export const GET = (
  path: string,
  helpers: RouteSpec['helpers'],
  handler: RouteSpec['handler'],
): RouteSpec => ({ method: 'GET', path, helpers, handler })
