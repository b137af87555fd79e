/**
 * `initApp` on a Fastify instance: the app binder, on its own so that every
 * module that serves Fastify apps (`cachette/fastify`, and `cachette/nestjs`
 * on `@nestjs/platform-fastify`) registers the same one. It imports nothing
 * of Fastify's.
 */
import { appContext } from '../../core/context.js'

/**
 * The Fastify majors the plugins accept (fastify-plugin checks it at
 * registration). Fastify 4 works from 4.26, the first with
 * `request.routeOptions.config` and `.handler`; test/compat.test.ts runs the
 * Fastify tests on the last 4.x.
 */
export const FASTIFY_VERSIONS = '4.x || 5.x'

/** Whether `app` looks like a Fastify instance (root or encapsulated). */
function isFastifyInstance(app: object): boolean {
  const a = app as Record<string, unknown>
  return (
    typeof a.addHook === 'function' &&
    typeof a.register === 'function' &&
    typeof a.decorateReply === 'function' &&
    typeof a.inject === 'function'
  )
}

/** Instances already bound (one hook each, however many Caches `initApp` them). */
const boundApps = new WeakSet<object>()

interface HookTarget {
  addHook(name: string, fn: (req: unknown, reply: unknown, done: () => void) => void): unknown
}

/**
 * `initApp` on a Fastify instance: a global `onRequest` hook that runs the
 * rest of each request (hooks, body parsing, handler, error handler) with the
 * instance as the current app. Fastify (4 and 5) keeps the async context across body
 * parsing itself (its content-type parser runs in an `AsyncResource`).
 * Lifecycle hooks added to an instance reach all its routes and plugins,
 * whenever they were declared, so `initApp` may come before or after them, as
 * long as the instance is not ready yet.
 */
export function bindFastify(app: object): boolean {
  if (!isFastifyInstance(app)) return false
  if (boundApps.has(app)) return true
  try {
    ;(app as HookTarget).addHook('onRequest', function cachetteAppContext(_req, _reply, done) {
      appContext.run(app, done)
    })
  } catch (error) {
    throw new Error(
      `cachette/fastify: call cache.initApp(fastify) before the Fastify instance is ready (${(error as Error).message})`,
      { cause: error },
    )
  }
  boundApps.add(app)
  return true
}
