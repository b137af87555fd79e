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
  RequestView,
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

/** The methods after which `invalidateOnUnsafe` deletes: RFC 9110's unsafe methods apps answer. */
const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/**
 * `invalidateOnUnsafe`: for a request that the middleware `target` let
 * through for its method, the function to call with the response's status
 * once the handler has answered (before the response goes out where the
 * framework allows it). It deletes what `target` caches for the same URL,
 * every encoding and, with `sourceCheck`, every route it served, when the
 * status is 2xx or 3xx. Keys are built from this request, so a per-user
 * `keyPrefix` deletes that user's page. `undefined` when there is nothing to
 * do: the option is off, or the method is not unsafe.
 *
 * Never rejects: a backend failure is logged through the slot (the response
 * is already decided).
 */
export function unsafeInvalidation(
  target: object,
  view: RequestView<unknown>,
  slot: Slot,
): ((status: number) => Promise<void>) | undefined {
  const registered = registeredViews.get(target)
  if (registered === undefined) return undefined
  return invalidationFor(registered.engine, registered.sources, view, slot)
}

/**
 * {@link unsafeInvalidation} for an engine that is not registered (the
 * routes of Fastify's plugin): `sources` are the handler sources its keys
 * digest with `sourceCheck`.
 */
export function invalidationFor(
  engine: ViewCache<never>,
  sources: ReadonlySet<string>,
  view: RequestView<unknown>,
  slot: Slot,
): ((status: number) => Promise<void>) | undefined {
  if (engine.options.invalidateOnUnsafe !== true) return undefined
  if (!UNSAFE_METHODS.has(view.method.toUpperCase())) return undefined
  return async (status) => {
    if (status < 200 || status >= 400) return
    try {
      const keys: string[] = []
      for (const source of sources.size > 0 ? [...sources] : [undefined]) {
        const get: RequestView<never> = {
          method: 'GET',
          path: view.path,
          query: view.query,
          header: (name) => view.header(name),
          raw: view.raw as never,
          source: () => source,
        }
        keys.push(...engine.variantKeys(await engine.keyFor(get, slot.settings, false)))
      }
      const backend = slot.backend ?? (await slot.ready)
      await backend.deleteMany(keys)
    } catch (error) {
      slot.report('cached: invalidateOnUnsafe', error, view.path)
    }
  }
}
