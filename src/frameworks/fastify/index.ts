/**
 * `cachette/fastify`: view caching for Fastify 5, as a plugin (`config: {
 * cache }` on a route) or as route hooks (`cached(cache, options)`), and
 * HTTP caching (the `httpCache` and `validation` plugins, route hooks
 * `preconditions`, `cacheFor`, `cacheControl`, `noStore`, `vary`; see `cachette/http`).
 *
 * @example
 * import Fastify from 'fastify'
 * import { Cache } from 'cachette'
 * import cachette from 'cachette/fastify'
 *
 * const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
 * const app = Fastify()
 * await app.register(cachette, { cache, timeout: '5m' })
 * app.get('/users/:id', { config: { cache: true } }, async (req) => loadUser(req.params.id))
 * @packageDocumentation
 *
 * @module cachette/fastify
 */
import type {
  FastifyPluginAsync,
  FastifyRequest,
  onErrorHookHandler,
  onRequestHookHandler,
  onSendHookHandler,
  RouteOptions,
} from 'fastify'
import fp from 'fastify-plugin'
import type { Cache } from '../../cache.js'
import type { Timeout } from '../../core/duration.js'
import { VIEW_SLOT } from '../../core/slot.js'
import {
  type CachedProvider,
  exposeView,
  setResponseTimeout,
  stubRequestFor,
  type ViewAttributes,
} from '../../core/view/index.js'
import { FASTIFY_VERSIONS } from './bind.js'
import {
  assertCache,
  type CachedOptions,
  createViewHooks,
  engineFor,
  isViewHook,
  type ViewHooks,
} from './hooks.js'

export type {
  CachedProvider,
  QueryArgs,
  QueryValue,
  StoredView,
  ViewCacheOptions,
  ViewKeyArgs,
} from '../../core/view/index.js'
export type { CachedOptions, ViewSlotProvider } from './hooks.js'
export {
  bodyETag,
  cacheControl,
  cacheFor,
  type HttpCachePlugin,
  type HttpPlugin,
  httpCache,
  noStore,
  preconditions,
  type ValidationOptions,
  validation,
  vary,
} from './http.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * The `Cache` given to `fastify.register(cachette, { cache })`. Present on
     * the instance that registered the plugin and on its children (the plugin
     * is not encapsulated), not on its parent or siblings.
     */
    cache: Cache
  }
  interface FastifyContextConfig {
    /**
     * Cache this route's responses: `true` for the plugin's options, or
     * options that override them. Needs `fastify.register(cachette, { cache })`
     * in this context or an ancestor, awaited before the route is declared.
     */
    cache?: boolean | CachedOptions
  }
}

/** Options of `fastify.register(cachette, options)`: the Cache, and the default options of cached routes. */
export interface CachettePluginOptions extends CachedOptions {
  /** The Cache whose backend stores the views; also decorated as `fastify.cache`. */
  cache: Cache
}

/**
 * What {@link cached} returns: route-level `onRequest`, `onSend` and `onError`
 * hooks to spread into a route's options, plus (not enumerable, so spreading
 * leaves them out) Flask-Caching's attributes of a cached view. Pass it to
 * `cache.deleteCached(hooks, { path, queryArgs })` to delete with its options.
 */
export interface CachedHooks extends ViewAttributes<never> {
  /** Serves hits; remembers misses. */
  readonly onRequest: onRequestHookHandler
  /** Captures a miss's payload; stores it once the response has finished. */
  readonly onSend: onSendHookHandler
  /** Marks a miss whose handler failed, so it is not stored. */
  readonly onError: onErrorHookHandler
}

/** Options Fastify itself reads from `register(plugin, options)`; not view options. */
const REGISTER_OPTIONS: ReadonlySet<string> = new Set(['prefix', 'logLevel', 'logSerializers'])

const PLUGIN_CALL = 'fastify.register(cachette, { cache })'

function listOf<T>(hooks: T | readonly T[] | undefined): T[] {
  if (hooks === undefined || hooks === null) return []
  return Array.isArray(hooks) ? [...hooks] : [hooks as T]
}

/** Appends the view hooks to a route's own, replacing view hooks an outer registration or `cached()` put there. */
function attach(route: RouteOptions, hooks: ViewHooks): void {
  const r = route as unknown as Record<'onRequest' | 'onSend' | 'onError', unknown>
  for (const name of ['onRequest', 'onSend', 'onError'] as const) {
    r[name] = [...listOf(r[name]).filter((fn) => !isViewHook(fn)), hooks[name]]
  }
}

/** Set on the config of each route the plugin's onRoute hook saw. */
const SEEN = Symbol('cachette.fastify.seen')

function routeName(route: RouteOptions): string {
  const method = Array.isArray(route.method) ? route.method.join(',') : route.method
  return `${method} ${route.url}`
}

const cachettePlugin: FastifyPluginAsync<CachettePluginOptions> = async (fastify, options) => {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`cachette/fastify: ${PLUGIN_CALL} needs an options object with a Cache`)
  }
  const { cache, ...rest } = options as CachettePluginOptions & Record<string, unknown>
  assertCache(cache, PLUGIN_CALL, 'as `cache`')
  const defaults: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(rest)) {
    if (!REGISTER_OPTIONS.has(name)) defaults[name] = value
  }
  engineFor(defaults, `cachette/fastify: fastify.register(cachette, { cache, ...options })`)

  fastify.decorate('cache', cache)
  fastify.addHook('onRoute', (route) => {
    const spec: unknown = route.config?.cache
    if (spec === undefined || spec === null || spec === false) return
    // Marked for the unseen-route check below (Fastify copies the config, and the mark with it).
    const config: Record<symbol, unknown> = route.config as Record<symbol, unknown>
    config[SEEN] = true
    const where = `cachette/fastify: route ${routeName(route)} config.cache`
    if (spec !== true && (typeof spec !== 'object' || Array.isArray(spec))) {
      throw new TypeError(`${where} must be true or an options object`)
    }
    const engine = engineFor(spec === true ? defaults : { ...defaults, ...spec }, where)
    const source =
      typeof route.handler === 'function'
        ? Function.prototype.toString.call(route.handler)
        : undefined
    attach(route, createViewHooks(cache, engine, source))
  })
  // A route declared on this instance before the plugin loaded (`register`
  // not awaited) was never shown to the onRoute hook above: it has
  // `config.cache` but no cache hooks. Fastify's instance-level hooks do
  // reach it, so its first request warns once, naming the route. (It is not
  // cached from here: an instance-level hook would run before the route's
  // own onRequest hooks, such as an authentication check.)
  const warned = new Set<string>()
  fastify.addHook('onRequest', function cachetteUnseenRoute(request, _reply, done) {
    const config = request.routeOptions.config as unknown as
      | Record<PropertyKey, unknown>
      | undefined
    const spec = config?.cache
    if (spec !== undefined && spec !== null && spec !== false && config?.[SEEN] !== true) {
      const route = `${request.method} ${request.routeOptions.url ?? request.url}`
      if (!warned.has(route)) {
        warned.add(route)
        cache[VIEW_SLOT]().settings.logger.warn(
          `cachette/fastify: route ${route} has config.cache but is not cached: it was declared before the cachette plugin loaded. Await the registration (\`await fastify.register(cachette, { cache })\`) before declaring routes on the same instance. [CACHETTE_FASTIFY_ROUTE_UNSEEN]`,
        )
      }
    }
    done()
  })
}

/**
 * The Fastify plugin: `await fastify.register(cachette, { cache, ...options })`.
 *
 * It decorates the instance with `cache` and caches every route declared with
 * `config: { cache: true }` (the plugin's options) or `config: { cache: {
 * timeout: 50, ... } }` (merged over them), in the context it was registered
 * in and its children: registered at the root it serves the whole app,
 * registered inside a plugin only that plugin's routes. Routes without
 * `config.cache` get no hooks at all.
 *
 * Await the registration before declaring routes on the same instance:
 * Fastify shows a route only to the `onRoute` hooks present when it is
 * declared (routes in plugins registered afterwards are always seen).
 *
 * Bad input fails at set-up (`ready()`, `listen()` or the awaited
 * `register`): a missing or foreign `cache`, an unknown option or a bad value
 * throws a TypeError naming it; a bad `config.cache` throws when the route is
 * declared.
 *
 * @example
 * await app.register(cachette, { cache, timeout: 60 })
 * app.get('/', { config: { cache: true } }, home)
 * app.get('/search', { config: { cache: { queryString: true } } }, search)
 */
export const cachette = fp(cachettePlugin, { name: 'cachette', fastify: FASTIFY_VERSIONS })

export default cachette

/**
 * The route-level form: `onRequest`, `onSend` and `onError` hooks that cache
 * the route's whole response, without the plugin. Options are checked now;
 * an unknown option or a bad value throws a TypeError naming it.
 *
 * Spread it into the route's options, or pass it as the options. A route
 * with hooks of its own lists them together:
 * `{ onRequest: [auth, view.onRequest], onSend: view.onSend, onError: view.onError }`.
 *
 * `sourceCheck` needs the plugin form: hooks see only the bound copy of the
 * handler Fastify makes (`request.routeOptions.handler`, whose source is
 * `function () { [native code] }` for every route), not the handler itself.
 * `sourceCheck: true` throws a `ConfigError` here; `CACHE_SOURCE_CHECK` logs
 * one warning (`CACHETTE_SOURCE_CHECK_UNAVAILABLE`) and these routes are
 * keyed without the digest.
 *
 * @example
 * app.get('/search', { ...cached(cache, { queryString: true, timeout: 60 }) }, search)
 */
export function cached<Req extends FastifyRequest = FastifyRequest>(
  cache: CachedProvider,
  options?: CachedOptions<Req>,
): CachedHooks {
  const call = 'cached(cache, options)'
  assertCache(cache, call, 'as its first argument')
  const what = `cachette/fastify: ${call}`
  const engine = engineFor(options, what)
  engine.refuseSourceCheck(
    what,
    "cannot see the route handler (Fastify hands hooks a bound copy, whose source is native code), so it cannot key on the handler's source; sourceCheck needs the route config form, config: { cache: { sourceCheck: true } }",
  )
  const hooks = createViewHooks(cache, engine, undefined)
  const out = { onRequest: hooks.onRequest, onSend: hooks.onSend, onError: hooks.onError }
  return exposeView(out, engine, () => cache[VIEW_SLOT](), stubRequestFor)
}

/**
 * Sets how long the response being built is cached, overriding the route's
 * `timeout` (Flask-Caching's `CachedResponse(response, timeout)`). Call it
 * from the handler (or a hook) before the reply is sent. `undefined` or `0`
 * falls back to the route's timeout, as in Flask-Caching; the route's
 * `cacheStatuses`, `responseFilter` and the other rules still decide whether
 * it is stored.
 *
 * @param reply - Fastify's `reply` (its `reply.raw` works too)
 * @param timeout - seconds or a duration string (`'30s'`, `'1h'`)
 *
 * @example
 * app.get('/feed', { config: { cache: { timeout: '1h' } } }, async (req, reply) => {
 *   const feed = await loadFeed()
 *   setCacheTimeout(reply, feed.live ? 10 : '1h')
 *   return feed
 * })
 */
export function setCacheTimeout(reply: object, timeout: Timeout | undefined): void {
  setResponseTimeout(reply, timeout)
}
