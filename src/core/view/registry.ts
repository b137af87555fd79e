/**
 * The registry behind `cache.deleteCached(target)`: every middleware (or
 * decorated handler) an adapter's `cached()` made is registered with its
 * engine, so its keys can be built outside of a request; and the
 * Flask-Caching attributes each such middleware carries.
 */
import type { Timeout } from '../duration.js'
import type { Slot, SlotSettings } from '../slot.js'
import { ViewCache } from './engine.js'
import { requestTarget } from './keys.js'
import { stubRequestFor } from './request.js'
import type {
  DeleteCachedTarget,
  StubRequest,
  ViewAttributes,
  ViewCacheOptions,
  ViewKeyArgs,
} from './types.js'

/** What `deleteCached(middleware)` needs to know about a middleware an adapter created. */
interface RegisteredView {
  readonly engine: ViewCache<never>
  /** Sources of the routes the middleware has served, for `sourceCheck`. */
  readonly sources: Set<string>
  readonly stubRequest: StubRequest
}

const registeredViews = new WeakMap<object, RegisteredView>()

/**
 * Gives an adapter's middleware the {@link ViewAttributes} and registers it
 * so that `cache.deleteCached(middleware, ...)` finds its options. Every
 * adapter calls it on the middleware it returns. The attributes are
 * enumerable on a function and not on an object (Fastify's hooks object), so
 * spreading the object into route options copies only its hooks.
 *
 * @param sources - the adapter adds the source of each route it keys with `sourceCheck`
 */
export function exposeView<F extends object, Req>(
  middleware: F,
  engine: ViewCache<Req>,
  slotOf: () => Slot,
  stubRequest: StubRequest,
  sources: Set<string> = new Set(),
): F & ViewAttributes<Req> {
  const enumerable = typeof middleware === 'function'
  Object.defineProperties(middleware, {
    cacheTimeout: {
      get: () => engine.cacheTimeout,
      set: (t: Timeout | undefined) => {
        engine.cacheTimeout = t
      },
      enumerable,
    },
    options: { value: engine.options, enumerable },
    makeCacheKey: {
      value: (args: ViewKeyArgs) =>
        keyOutsideRequest(engine, args, slotOf().settings, undefined, stubRequest),
    },
  })
  registerView(middleware, engine, stubRequest, sources)
  return middleware as F & ViewAttributes<Req>
}

/**
 * Registers `target` (a middleware, or a decorated handler such as a NestJS
 * controller method) so that `cache.deleteCached(target, ...)` builds keys
 * with `engine`'s options. Unlike {@link exposeView}, it adds nothing to `target`.
 */
export function registerView(
  target: object,
  engine: ViewCache<never>,
  stubRequest: StubRequest,
  sources: Set<string> = new Set(),
): void {
  registeredViews.set(target, { engine, sources, stubRequest })
}

async function keyOutsideRequest(
  engine: ViewCache<never>,
  args: ViewKeyArgs,
  settings: SlotSettings,
  source: string | undefined,
  stub: StubRequest,
): Promise<string> {
  const given = args?.path
  if (typeof given !== 'string' || given === '') {
    throw new TypeError('a view key needs a path, e.g. { path: "/users/42" }')
  }
  const path = requestTarget(given)
  return engine.keyFor(
    {
      method: 'GET',
      path,
      query: args.queryArgs ?? '',
      header: (name) => args.headers?.[name],
      raw: (args.request ?? stub(path, args.queryArgs)) as never,
      source: () => source,
    },
    settings,
    false,
  )
}

let defaultEngine: ViewCache<never> | undefined

/**
 * Every backend key of one cached view: the base key and its encoded
 * variants (`key|br`, `key|gzip`, ...), for `cache.deleteCached()`.
 *
 * - `viewKeysFor('/users/42')`: default options (`view//users/42`).
 * - `viewKeysFor(middleware, { path, queryArgs })`: the options of that
 *   middleware. With `sourceCheck`, keys for every route it has served in
 *   this process.
 * - `viewKeysFor({ path, queryArgs, keyPrefix, queryString, ... })`.
 */
export async function viewKeysFor(
  target: DeleteCachedTarget,
  args: ViewKeyArgs | undefined,
  settings: SlotSettings,
): Promise<string[]> {
  let engine: ViewCache<never>
  let keyArgs: ViewKeyArgs
  let sources: (string | undefined)[] = [undefined]
  let stub: StubRequest = stubRequestFor
  if (typeof target === 'string') {
    defaultEngine ??= new ViewCache<never>({})
    engine = defaultEngine
    keyArgs = { ...args, path: target }
  } else if (
    typeof target === 'function' ||
    (typeof target === 'object' && target !== null && registeredViews.has(target))
  ) {
    const registered = registeredViews.get(target)
    if (registered === undefined) {
      throw new TypeError(
        'deleteCached: pass a path, the middleware a cachette cached() returned, or a handler decorated with @Cached()',
      )
    }
    engine = registered.engine
    stub = registered.stubRequest
    keyArgs = args ?? {}
    if (registered.sources.size > 0) sources = [...registered.sources]
  } else if (typeof target === 'object' && target !== null) {
    const { path, queryArgs, request, ...keyOptions } = target as Exclude<
      DeleteCachedTarget,
      string | ViewAttributes<never> | Function
    >
    engine = new ViewCache<never>(keyOptions as ViewCacheOptions<never>, 'deleteCached')
    keyArgs = { path, queryArgs, request, ...args }
  } else {
    throw new TypeError('deleteCached: pass a path or the middleware a cachette cached() returned')
  }
  const keys: string[] = []
  for (const source of sources) {
    keys.push(
      ...engine.variantKeys(await keyOutsideRequest(engine, keyArgs, settings, source, stub)),
    )
  }
  return keys
}
