import type { IncomingMessage } from 'node:http'
import type { CacheConfig } from './config-types.js'
import {
  type BackendFactoryOptions,
  type CacheBackend,
  completeBackend,
  missingBackendMethods,
  SYNC,
  type WithSyncTwin,
} from './core/backend.js'
import {
  camelizeOptions,
  configFromEnv,
  type NormalizedConfig,
  normalizeConfig,
  pickCacheKeys,
  withDefaults,
  withEnvNames,
} from './core/config.js'
import { appContext, bindApp } from './core/context.js'
import { parseTimeout, type Timeout } from './core/duration.js'
import { ConfigError, NotAnIntegerError } from './core/errors.js'
import {
  type CacheEventName,
  type CacheListener,
  CacheObservation,
  type CacheStats,
} from './core/events.js'
import {
  checkTags,
  entryFor,
  freshValue,
  type GetOrSetOptions,
  getOrCompute,
  invalidateTags,
  isEntry,
  policyOf,
  snapshotTags,
} from './core/getorset.js'
import { guardBackend, resolveGuardOptions } from './core/guard.js'
import { resolveHashMethod } from './core/hash.js'
import { assertKey, makeTemplateFragmentKey } from './core/keys.js'
import { defaultLogger, ErrorReporter, type Logger, warnOnce } from './core/log.js'
import {
  type MemoizableFunction,
  type MemoizeDecorator,
  type MemoizedFunction,
  type MemoizeOptions,
  Memoizer,
} from './core/memoize.js'
import { resolveSerializer } from './core/serializers.js'
import { Slot, type SlotSettings, VIEW_SLOT } from './core/slot.js'
import {
  type CachedMiddleware,
  type DeleteCachedTarget,
  type ViewCacheOptions,
  type ViewKeyArgs,
  viewKeysFor,
} from './core/view/index.js'
import { isNullBackend, resolveBackendType } from './registry.js'

/**
 * Options of `cache.cached()`; see `ViewCacheOptions` for each option and its default.
 *
 * @typeParam Req - the request type your callbacks receive; give Express's
 * `Request` (or your own subtype with `user`) to type them:
 * `cache.cached<Request>({ keyPrefix: (req) => ... })`.
 */
export type CachedOptions<Req extends IncomingMessage = IncomingMessage> = ViewCacheOptions<Req>

/**
 * Builds the middleware of `cache.cached()` from the current slot and the
 * options. The facade imports no framework adapter: the `cachette` entry
 * (src/index.ts) provides the Express/Connect one.
 * @internal
 */
export type CachedMiddlewareFactory = <Req extends IncomingMessage = IncomingMessage>(
  slotOf: () => Slot,
  options?: CachedOptions<Req>,
) => CachedMiddleware

let cachedMiddleware: CachedMiddlewareFactory | undefined

/**
 * Sets what `cache.cached()` builds (the `cachette` entry does, with the
 * Express/Connect adapter's factory).
 * @internal
 */
export function provideCachedMiddleware(factory: CachedMiddlewareFactory): void {
  cachedMiddleware = factory
}

type Entries = Record<string, unknown> | Map<string, unknown> | Iterable<readonly [string, unknown]>

function flatKeys(args: readonly (string | readonly string[])[]): readonly string[] {
  const keys =
    args.length === 1 && Array.isArray(args[0])
      ? (args[0] as readonly string[])
      : (args as readonly string[])
  for (const k of keys) assertKey(k)
  return keys
}

/**
 * What a call answers when its backend call threw `error`: the error, when it
 * must propagate (`Slot.mustRaise`), else `fallback`, the error logged.
 */
function failed<R>(slot: Slot, site: string, error: unknown, fallback: R): Promise<R> {
  if (slot.mustRaise(error)) return Promise.reject(error)
  slot.report(site, error)
  return Promise.resolve(fallback)
}

/** `values` read from `backend`, each tagged entry replaced by its fresh value (in place). */
async function freshValues(backend: CacheBackend, values: unknown[]): Promise<unknown[]> {
  for (let i = 0; i < values.length; i++) {
    if (isEntry(values[i])) values[i] = await freshValue(backend, values[i])
  }
  return values
}

/** Whether `app` looks like a web framework's app (as opposed to a plain config holder). */
function looksLikeAnApp(app: object): boolean {
  const a = app as Record<string, unknown>
  return ['use', 'addHook', 'fetch', 'listen'].some((m) => typeof a[m] === 'function')
}

function entriesOf(mapping: Entries): (readonly [string, unknown])[] {
  if (mapping instanceof Map) return [...mapping.entries()]
  if (typeof (mapping as Iterable<unknown>)[Symbol.iterator] === 'function') {
    return [...(mapping as Iterable<readonly [string, unknown]>)]
  }
  return Object.entries(mapping as Record<string, unknown>)
}

/**
 * The one object an app talks to: Flask-Caching's `Cache`. It resolves the
 * configured backend, proxies the cache operations to it, and provides the
 * `memoize` and `cached` decorators.
 *
 * @example
 * const cache = new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_DEFAULT_TIMEOUT: 300 })
 * await cache.set('greeting', 'hello', 60)
 * app.get('/', cache.cached({ timeout: 50 }), handler)
 * const load = cache.memoize(async (id: number) => db.find(id), { timeout: 50 })
 */
export class Cache {
  /** The configuration given to the constructor, normalised to camelCase keys. */
  readonly config: Readonly<NormalizedConfig>
  readonly #ctorConfig: NormalizedConfig
  #defaultSlot: Slot | undefined
  readonly #apps = new WeakMap<object, Slot>()
  readonly #slots = new Set<Slot>()
  #lastApp: object | undefined
  #lastSlot: Slot | undefined
  readonly #memoizer: Memoizer

  /**
   * @param config `CACHE_*` keys or their camelCase names. When given, the
   * backend is built now and misconfiguration throws a {@link ConfigError}
   * naming the key. Without it, configure through {@link Cache.initApp}.
   */
  constructor(config?: CacheConfig) {
    this.#ctorConfig = normalizeConfig(config, 'Cache config')
    this.config = Object.freeze({ ...this.#ctorConfig })
    if (config !== undefined) this.#defaultSlot = this.#build(undefined, this.#ctorConfig)
    this.#memoizer = new Memoizer(() => this.#slot())
  }

  /**
   * A Cache configured from `CACHE_*` environment variables (strings are
   * converted to each key's type), with `overrides` applied on top.
   */
  static fromEnv(
    env: Record<string, string | undefined> = process.env,
    overrides: CacheConfig = {},
  ): Cache {
    // The variables are strings (or JSON) until the constructor checks them, as any config.
    return new Cache({ ...configFromEnv(env), ...overrides } as CacheConfig)
  }

  /**
   * Registers an app (the app-factory pattern). Its backend is built from the
   * app's own `CACHE_*` settings (`app.config`, or Express's `app.settings` as
   * set by `app.set('CACHE_TYPE', ...)`), then the constructor config, then
   * `config` (later wins). One Cache may serve several apps, each with its own
   * backend. Requests of an app (and `memoize` calls inside them) use that
   * app's backend: Express apps always, Fastify, Koa and Hono apps once their
   * `cachette/<framework>` module is loaded (any of its exports used, or
   * `import 'cachette/koa'` on its own, which package.json's `sideEffects`
   * keeps bundlers from dropping).
   */
  initApp(app: object, config?: CacheConfig): this {
    if ((typeof app !== 'object' && typeof app !== 'function') || app === null) {
      throw new TypeError('initApp(app): app must be an application object')
    }
    const a = app as { config?: unknown; settings?: unknown }
    const fromApp = normalizeConfig(
      pickCacheKeys(typeof a.config === 'object' && a.config !== null ? a.config : a.settings),
      'app config',
    )
    const extra = normalizeConfig(config, 'initApp config')
    const reuse =
      this.#defaultSlot !== undefined &&
      Object.keys(fromApp).length === 0 &&
      Object.keys(extra).length === 0
    const slot = reuse
      ? (this.#defaultSlot as Slot)
      : this.#build(app, { ...fromApp, ...this.#ctorConfig, ...extra })
    const first = !this.#apps.has(app)
    this.#apps.set(app, slot)
    this.#lastApp = app
    this.#lastSlot = slot
    if (first && !bindApp(app) && looksLikeAnApp(app)) {
      warnOnce(
        slot.settings.logger,
        'CACHETTE_APP_NOT_BOUND',
        "initApp: this app's framework adapter is not loaded, so its requests use the last app's backend; " +
          "import 'cachette/fastify', 'cachette/koa' or 'cachette/hono' before calling initApp",
      )
    }
    return this
  }

  /** The app most recently passed to {@link Cache.initApp} (Flask's `cache.app`). */
  get app(): object | undefined {
    return this.#lastApp
  }

  #build(app: object | undefined, partial: NormalizedConfig): Slot {
    const merged = withDefaults(partial)
    const logger: Logger = merged.logger ?? defaultLogger
    const serializer = resolveSerializer(merged.serializer)
    const settings: SlotSettings = {
      digest: resolveHashMethod(merged.hashMethod),
      sourceCheck: merged.sourceCheck,
      raiseErrors: merged.raiseErrors,
      logger,
      reporter: new ErrorReporter(logger),
      config: withEnvNames(merged),
    }
    const options: BackendFactoryOptions = {
      ...camelizeOptions(merged.options),
      defaultTimeout: merged.defaultTimeout,
      ignoreDeleteManyErrors: merged.ignoreErrors,
      serializer,
      logger,
    }
    // The operation timeout and circuit breaker (core/guard.ts) for network backends. Read
    // now, so a bad CACHE_OPERATION_TIMEOUT or CACHE_CIRCUIT_BREAKER throws at construction.
    const guardOptions = resolveGuardOptions(merged.operationTimeout, merged.circuitBreaker, logger)
    // Backends say what they are: a wrapper guards only its inner store (TieredCache's
    // second tier), in-process ones are not guarded (and the view engine reads SimpleCache's
    // PEEK, which a wrapper would hide).
    const guard = (backend: CacheBackend): CacheBackend => {
      if (guardOptions === undefined) return backend
      if (backend.guardInner !== undefined) {
        backend.guardInner(guard)
        return backend
      }
      return backend.inProcess === true ? backend : guardBackend(backend, guardOptions)
    }
    const builder = resolveBackendType(merged.type)
    const make = (b: Awaited<typeof builder>): CacheBackend | Promise<CacheBackend> =>
      b(app, settings.config, [...merged.args], options)
    const built = builder instanceof Promise ? builder.then(make) : make(builder)
    const check = (built: CacheBackend): CacheBackend => {
      if ((typeof built !== 'object' && typeof built !== 'function') || built === null) {
        throw new ConfigError('CACHE_TYPE', 'the factory did not return a cache backend')
      }
      // A user's class may lack the bulk methods: they are derived from the single-key
      // ones. The single-key ones cannot be: the class is refused, naming them.
      const missing = missingBackendMethods(built)
      if (missing.length > 0) {
        const name = (built as { constructor?: { name?: string } }).constructor?.name
        const which = `${missing.join(', ')} method${missing.length > 1 ? 's' : ''}`
        throw new ConfigError(
          'CACHE_TYPE',
          `${name && name !== 'Object' ? `${name} ` : 'the backend '}is not a cache backend: it has no ${which} (a backend needs get, set, add, delete, has and clear; extend BaseCache for the rest)`,
        )
      }
      const backend = completeBackend(built, merged.defaultTimeout)
      if (isNullBackend(backend) && !merged.noNullWarning) {
        warnOnce(
          logger,
          'CACHETTE_NULL_CACHE',
          'CACHE_TYPE is set to NullCache, caching is effectively disabled.',
        )
      }
      return guard(backend)
    }
    const slot = new Slot(built instanceof Promise ? built.then(check) : check(built), settings)
    this.#slots.add(slot)
    this.#observation.adopt(slot)
    return slot
  }

  /**
   * The slot serving the current call: the current request's app, else the
   * last app, else the default. `app` stands for the current app, for a
   * caller about to run code as that app.
   */
  #slot(app?: object): Slot {
    if (this.#lastSlot !== undefined) {
      if (app === undefined) app = appContext.getStore()
      if (app !== undefined) {
        const slot = this.#apps.get(app)
        if (slot !== undefined) return slot
      }
      return this.#lastSlot
    }
    if (this.#defaultSlot === undefined)
      this.#defaultSlot = this.#build(undefined, this.#ctorConfig)
    return this.#defaultSlot
  }

  /**
   * The backend serving the current call (Flask's `cache.cache`), for
   * backend-specific methods. Throws if it is still being loaded; await
   * {@link Cache.ready} first in that case.
   */
  get backend(): CacheBackend {
    const slot = this.#slot()
    if (slot.backend === undefined) {
      throw new Error('the backend is still loading; await cache.ready() first')
    }
    return slot.backend
  }

  /** Alias of {@link Cache.backend}, as in Flask-Caching (`cache.cache.inc(...)`). */
  get cache(): CacheBackend {
    return this.backend
  }

  /** Resolves once the current backend is built; rejects with its construction error. */
  ready(): Promise<CacheBackend> {
    return this.#slot().ready
  }

  async #run<R>(op: string, fallback: R, fn: (backend: CacheBackend) => Promise<R>): Promise<R> {
    const slot = this.#slot()
    try {
      return await fn(slot.backend ?? (await slot.ready))
    } catch (error) {
      return failed(slot, `cache.${op}`, error, fallback)
    }
  }

  /** The value stored at `key`, or `undefined` on a miss (`null` is a value). */
  get<T = unknown>(key: string): Promise<T | undefined> {
    // Not async: the hit path is one backend call plus one catch handler.
    let slot: Slot
    try {
      assertKey(key)
      slot = this.#slot()
    } catch (error) {
      return Promise.reject(error)
    }
    const backend = slot.backend
    if (backend === undefined) {
      return this.#run('get', undefined, async (b) => (await freshValue(b, await b.get(key))) as T)
    }
    // An in-process store's synchronous twin (SYNC in core/backend.ts): one promise per call.
    const now = (backend.get as WithSyncTwin<[string], unknown>)[SYNC]
    if (now !== undefined) {
      let value: unknown
      try {
        value = now(backend, key)
      } catch (error) {
        return failed(slot, 'cache.get', error, undefined)
      }
      return isEntry(value)
        ? (freshValue(backend, value) as Promise<T>)
        : Promise.resolve(value as T | undefined)
    }
    return backend.get(key).then(
      (value) => (isEntry(value) ? (freshValue(backend, value) as Promise<T>) : (value as T)),
      (error: unknown) => failed(slot, 'cache.get', error, undefined),
    )
  }

  /**
   * Stores `value` at `key` for `timeout` seconds (or a duration string);
   * `undefined` uses `CACHE_DEFAULT_TIMEOUT`, `0` never expires. A value that
   * cannot be stored throws a TypeError and leaves the old value in place.
   */
  set(key: string, value: unknown, timeout?: Timeout | SetOptions): Promise<boolean> {
    let slot: Slot
    let t: number | undefined
    try {
      assertKey(key)
      // Only a plain object is options: a Date (or any other object) is a bad timeout.
      if (isPlainObject(timeout)) return this.#setTagged(key, value, timeout as SetOptions)
      t = parseTimeout(timeout)
      slot = this.#slot()
    } catch (error) {
      return Promise.reject(error)
    }
    const backend = slot.backend
    if (backend === undefined) return this.#run('set', false, (b) => b.set(key, value, t))
    const now = (backend.set as WithSyncTwin<[string, unknown, number | undefined], boolean>)[SYNC]
    if (now !== undefined) {
      try {
        return Promise.resolve(now(backend, key, value, t))
      } catch (error) {
        return failed(slot, 'cache.set', error, false)
      }
    }
    return backend
      .set(key, value, t)
      .catch((error: unknown) => failed(slot, 'cache.set', error, false))
  }

  async #setTagged(key: string, value: unknown, options: SetOptions): Promise<boolean> {
    for (const k of Object.keys(options)) {
      if (k !== 'timeout' && k !== 'tags')
        throw new TypeError(`set: unknown option ${JSON.stringify(k)}`)
    }
    const t = parseTimeout(options.timeout)
    const tags = checkTags(options.tags, 'set')
    return this.#run('set', false, async (b) => {
      const snapshot = tags.length === 0 ? undefined : await snapshotTags(b, tags)
      const { stored, ttl } = entryFor(value, t, b.defaultTimeout, 0, snapshot)
      return b.set(key, stored, ttl)
    })
  }

  /**
   * The value at `key`, or else the result of `factory`, stored for next
   * time: the read-through call that coalesces concurrent misses.
   *
   * - Concurrent calls for one missing key in this process share one call
   *   of `factory`; with `lock`, so do calls in other processes (through the
   *   backend: Redis `SET NX PX`, `add()` elsewhere), each waiting at most
   *   `lock.wait` before running it itself.
   * - With `grace`, an entry past its `timeout` but inside its grace period
   *   is returned at once while one background call refreshes it; if that
   *   call fails, the stale value keeps being served (retried after
   *   `graceBackoff`).
   * - With `tags`, `invalidateTags` makes the entry a miss (never served
   *   stale).
   * - An error of `factory` reaches the caller (every caller sharing the
   *   call) and nothing is stored; `undefined` results are not stored.
   *   Backend errors are logged and the factory runs, as on a miss.
   *
   * @example
   * const user = await cache.getOrSet(`user:${id}`, () => db.users.find(id), {
   *   timeout: '5m', grace: '1h', tags: [`user:${id}`], lock: true,
   * })
   */
  async getOrSet<T>(
    key: string,
    factory: () => T | Promise<T>,
    options: GetOrSetOptions = {},
  ): Promise<Awaited<T>> {
    assertKey(key)
    if (typeof factory !== 'function') throw new TypeError('getOrSet: factory must be a function')
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('getOrSet: options must be an object')
    }
    for (const k of Object.keys(options)) {
      if (!GET_OR_SET_OPTIONS.has(k))
        throw new TypeError(`getOrSet: unknown option ${JSON.stringify(k)}`)
    }
    const timeout = parseTimeout(options.timeout, 'getOrSet timeout')
    const policy = policyOf(options, 'getOrSet')
    const tags = checkTags(options.tags, 'getOrSet')
    if (options.name !== undefined && (typeof options.name !== 'string' || options.name === '')) {
      throw new TypeError('getOrSet: name must be a non-empty string')
    }
    const name = options.name ?? statsNameOf(key)
    return getOrCompute(this.#slot(), {
      key,
      factory: factory as () => Awaited<T> | Promise<Awaited<T>>,
      timeout,
      policy,
      tags,
      site: `cache.getOrSet ${key}`,
      counted: 'getOrSet',
      name,
    })
  }

  /**
   * Makes every entry tagged with one of `tags` a miss, on every backend of
   * this Cache (one per app), without touching the entries: each tag gets a
   * new token, and an entry whose recorded token differs is a miss from
   * then on, in every process. Rejects if a backend cannot record it, since
   * an invalidation that silently failed would leave wrong data served.
   */
  async invalidateTags(tags: readonly string[]): Promise<void> {
    const checked = checkTags(tags, 'invalidateTags')
    const slots = this.#slots.size === 0 ? [this.#slot()] : [...this.#slots]
    await Promise.all(
      slots.map(async (slot) => invalidateTags(slot.backend ?? (await slot.ready), checked)),
    )
  }

  /** Like {@link Cache.set}, but only if `key` holds no live entry; resolves whether it stored. */
  async add(key: string, value: unknown, timeout?: Timeout): Promise<boolean> {
    assertKey(key)
    const t = parseTimeout(timeout)
    return this.#run('add', false, (b) => b.add(key, value, t))
  }

  /** Removes `key`; resolves whether it existed. */
  async delete(key: string): Promise<boolean> {
    assertKey(key)
    return this.#run('delete', false, (b) => b.delete(key))
  }

  /** Removes keys (`deleteMany('a', 'b')` or `deleteMany(['a', 'b'])`); resolves the keys now gone. */
  async deleteMany(...keys: string[]): Promise<string[]>
  async deleteMany(keys: readonly string[]): Promise<string[]>
  async deleteMany(...args: (string | readonly string[])[]): Promise<string[]> {
    const keys = flatKeys(args)
    return keys.length === 0 ? [] : this.#run('deleteMany', [], (b) => b.deleteMany(keys))
  }

  /**
   * Removes keys with the backend's non-blocking delete where it has one
   * (Redis `UNLINK`), else like {@link Cache.deleteMany}; resolves how many are gone.
   */
  async unlink(...keys: string[]): Promise<number>
  async unlink(keys: readonly string[]): Promise<number>
  async unlink(...args: (string | readonly string[])[]): Promise<number> {
    const keys = flatKeys(args)
    if (keys.length === 0) return 0
    return this.#run('unlink', 0, async (b) =>
      b.unlink ? b.unlink(keys) : (await b.deleteMany(keys)).length,
    )
  }

  /**
   * Removes every entry whose key (as your code gives it, without
   * `CACHE_KEY_PREFIX`) starts with `prefix`; resolves how many were removed.
   * Lists the keys with the backend's `keys(prefix)` (Redis `SCAN` with
   * `MATCH`, never `KEYS`; object listings on S3 and GCS; live entries of
   * SimpleCache; a TieredCache's second tier) and deletes them in batches of
   * `batchSize` (1,000) with {@link Cache.deleteMany}, so both tiers and the
   * invalidation bus see each batch. Keys written while it runs may survive.
   *
   * @throws {TypeError} when `prefix` is empty (use {@link Cache.clear}) or
   * `batchSize` is not a positive integer, and when the backend cannot list
   * its keys (Memcached; FileSystemCache, whose files are named by hashes).
   * A backend that is down resolves 0 and is logged, as for every operation.
   * @example
   * await cache.deletePrefix('user:42:')
   */
  async deletePrefix(prefix: string, options: { batchSize?: number } = {}): Promise<number> {
    if (typeof prefix !== 'string' || prefix === '') {
      throw new TypeError(
        `deletePrefix: the prefix must be a non-empty string (cache.clear() removes everything), got ${prefix === '' ? 'an empty string' : typeof prefix}`,
      )
    }
    const batchSize = options.batchSize ?? 1000
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
      throw new TypeError(`deletePrefix: batchSize must be a positive integer, got ${batchSize}`)
    }
    const backend = await this.ready()
    if (backend.keys === undefined) {
      throw new TypeError(
        `deletePrefix: ${backend.constructor.name} cannot list its keys; delete the keys by name, or clear() the whole cache`,
      )
    }
    return this.#run('deletePrefix', 0, async (b) => {
      let removed = 0
      let batch: string[] = []
      for await (const key of (b.keys as NonNullable<CacheBackend['keys']>).call(b, prefix)) {
        // A listing may hand back a key outside the prefix (a hashed name's
        // placeholder, say): only what starts with it goes.
        if (!key.startsWith(prefix)) continue
        batch.push(key)
        if (batch.length === batchSize) {
          removed += (await b.deleteMany(batch)).length
          batch = []
        }
      }
      if (batch.length > 0) removed += (await b.deleteMany(batch)).length
      return removed
    })
  }

  /**
   * Whether `key` holds a live entry. An entry whose tag was invalidated, or
   * that is past its `timeout` inside a grace period, does not count.
   */
  async has(key: string): Promise<boolean> {
    assertKey(key)
    return this.#run('has', false, async (b) => {
      if (!(await b.has(key))) return false
      const raw = await b.get(key)
      return raw !== undefined && (await freshValue(b, raw)) !== undefined
    })
  }

  /** Removes every entry of the current backend. */
  async clear(): Promise<boolean> {
    return this.#run('clear', false, (b) => b.clear())
  }

  /** Values in key order, `undefined` for misses (`getMany('a', 'b')` or `getMany(['a', 'b'])`). */
  async getMany(...keys: string[]): Promise<unknown[]>
  async getMany(keys: readonly string[]): Promise<unknown[]>
  async getMany(...args: (string | readonly string[])[]): Promise<unknown[]> {
    const keys = flatKeys(args)
    if (keys.length === 0) return []
    const slot = this.#slot()
    const backend = slot.backend
    const now =
      backend === undefined
        ? undefined
        : (backend.getMany as WithSyncTwin<[readonly string[]], unknown[]>)[SYNC]
    if (now === undefined) {
      return this.#run(
        'getMany',
        keys.map(() => undefined),
        async (b) => freshValues(b, await b.getMany(keys)),
      )
    }
    // An in-process store's synchronous twin, under the same error policy as #run.
    try {
      return await freshValues(backend as CacheBackend, now(backend as CacheBackend, keys))
    } catch (error) {
      return failed(
        slot,
        'cache.getMany',
        error,
        keys.map(() => undefined),
      )
    }
  }

  /** `{ key: value }` for the given keys, `undefined` for misses. */
  async getDict(...keys: string[]): Promise<Record<string, unknown>>
  async getDict(keys: readonly string[]): Promise<Record<string, unknown>>
  async getDict(...args: (string | readonly string[])[]): Promise<Record<string, unknown>> {
    const keys = flatKeys(args)
    const values = await this.getMany(keys)
    const out: Record<string, unknown> = {}
    keys.forEach((k, i) => {
      out[k] = values[i]
    })
    return out
  }

  /**
   * Stores several values with one timeout; resolves the keys stored. If one
   * value cannot be stored, nothing is written and a TypeError is thrown.
   */
  async setMany(mapping: Entries, timeout?: Timeout): Promise<string[]> {
    const entries = entriesOf(mapping)
    for (const [k] of entries) assertKey(k)
    const t = parseTimeout(timeout)
    return entries.length === 0 ? [] : this.#run('setMany', [], (b) => b.setMany(entries, t))
  }

  /**
   * Adds `delta` (default 1) to the integer at `key`, creating it from 0.
   * Atomic where the backend is (memory, Redis, Memcached). Unlike the other
   * methods it rejects when the backend fails, since no fallback number is right.
   */
  async inc(key: string, delta = 1): Promise<number> {
    assertKey(key)
    if (!Number.isSafeInteger(delta)) {
      throw new NotAnIntegerError(`inc/dec: delta must be an integer, got ${String(delta)}`)
    }
    const slot = this.#slot()
    return (slot.backend ?? (await slot.ready)).inc(key, delta)
  }

  /** Subtracts `delta` (default 1); see {@link Cache.inc}. */
  async dec(key: string, delta = 1): Promise<number> {
    if (!Number.isSafeInteger(delta)) {
      throw new NotAnIntegerError(`inc/dec: delta must be an integer, got ${String(delta)}`)
    }
    return this.inc(key, -delta)
  }

  /**
   * Caches a rendered fragment (Flask-Caching's `{% cache %}` tag, for any
   * template engine): returns the string stored under
   * `makeTemplateFragmentKey(name, varyOn)`, or calls `render`, stores its
   * result for `timeout` and returns it. The Nunjucks tag of
   * `cachette/nunjucks` uses it, so both share keys.
   *
   * - `timeout`: seconds or a duration string; `undefined` uses the default
   *   timeout; `null` never expires; `'del'` deletes the fragment and returns
   *   a fresh render without storing it.
   * - A cache error (even with `CACHE_RAISE_ERRORS`) renders the fragment
   *   uncached and is logged: a fragment never breaks the page. Errors of
   *   `render` itself, a bad timeout or bad `varyOn` values are thrown.
   * - The empty string is cached like any other result.
   *
   * @example
   * const sidebar = await cache.fragment('sidebar', '5m', () => renderSidebar(user), [user.id])
   */
  async fragment(
    name: string,
    timeout: Timeout | null | 'del' | undefined,
    render: () => string | Promise<string>,
    varyOn: readonly (string | number)[] = [],
  ): Promise<string> {
    const key = makeTemplateFragmentKey(name, varyOn)
    const seconds = timeout === 'del' ? undefined : timeout === null ? 0 : parseTimeout(timeout)
    const observer = this.#slot().observer
    if (timeout === 'del') {
      observer.outcome('fragment', name, 'bypass')
      await this.#absorb('cache.fragment', () => this.delete(key), false)
      return checkedFragment(await render())
    }
    const cached = await this.#absorb('cache.fragment', () => this.get(key), undefined)
    if (typeof cached === 'string') {
      observer.outcome('fragment', name, 'hit')
      return cached
    }
    observer.outcome('fragment', name, 'miss')
    const html = checkedFragment(await render())
    await this.#absorb('cache.fragment', () => this.set(key, html, seconds), false)
    return html
  }

  /** Runs a cache call, logging and replacing any error with `fallback` (even with `raiseErrors`). */
  async #absorb<R>(site: string, call: () => Promise<R>, fallback: R): Promise<R> {
    try {
      return await call()
    } catch (error) {
      this.#slot().report(site, error)
      return fallback
    }
  }

  /**
   * Caches a function's results by its arguments (Flask-Caching's `@memoize`).
   *
   * - `cache.memoize(fn, options)` returns the memoized function.
   * - `cache.memoize(options)` returns a decorator for class methods (standard
   *   and legacy `experimentalDecorators`) that also wraps plain functions.
   *
   * Invalidate with {@link Cache.deleteMemoized}.
   *
   * @typeParam F - The function memoized.
   */
  memoize<F extends MemoizableFunction>(fn: F, options?: MemoizeOptions<F>): MemoizedFunction<F>
  memoize(options?: MemoizeOptions): MemoizeDecorator
  memoize(fnOrOptions?: MemoizableFunction | MemoizeOptions, options?: MemoizeOptions): unknown {
    return this.#memoizer.memoize(fnOrOptions, options, this.memoize)
  }

  /**
   * Invalidates memoized results.
   *
   * - `deleteMemoized(fn)`: every result of `fn` (all instances, for a method).
   * - `deleteMemoized(obj.method.bind(obj))`: every result for that instance only.
   * - `deleteMemoized(fn, ...args)`: the one result for those arguments; for a
   *   method reached through the prototype, pass the instance first.
   */
  async deleteMemoized(fn: Function, ...args: unknown[]): Promise<void> {
    return this.#memoizer.deleteMemoized(fn, args)
  }

  /**
   * Deletes the version key of a memoized function (or of one instance, for a
   * bound method), orphaning all its results.
   */
  async deleteMemoizedVerhash(fn: Function): Promise<void> {
    return this.#memoizer.deleteMemoizedVerhash(fn)
  }

  /**
   * Express/Connect middleware that caches the whole response of a route
   * (status, headers, body) and replays it byte for byte (Flask-Caching's
   * `@cached`). Options are checked now; see `CachedOptions`.
   *
   * @example
   * app.get('/users/:id', cache.cached({ timeout: '5m' }), handler)   // key view//users/42
   * app.get('/search', cache.cached({ queryString: true }), search)
   */
  cached<Req extends IncomingMessage = IncomingMessage>(
    options: CachedOptions<Req> = {},
  ): CachedMiddleware {
    if (cachedMiddleware === undefined) {
      throw new Error(
        "cache.cached() is provided by the 'cachette' entry: import { Cache } from 'cachette'",
      )
    }
    return cachedMiddleware(() => this.#slot(), options)
  }

  /**
   * Deletes one cached view (every encoded variant of it); resolves whether
   * anything was deleted. There is no wildcard: one path and query at a time.
   *
   * - `deleteCached('/users/42')`: a route cached with the default options (`view//users/42`).
   * - `deleteCached(middleware, { path, queryArgs })`: a route cached with
   *   `middleware = cache.cached(options)`, keyed with its `keyPrefix`,
   *   `queryString`, `hashMethod` and `makeCacheKey`. `queryArgs` is a query
   *   string, a `URLSearchParams`, a record or `[name, value]` pairs.
   * - `deleteCached({ path, queryArgs, keyPrefix, queryString })`: the same
   *   with the key options spelled out.
   */
  async deleteCached(target: DeleteCachedTarget, args?: ViewKeyArgs): Promise<boolean> {
    const keys = await viewKeysFor(target, args, this.#slot().settings)
    const deleted = await Promise.all(keys.map((k) => this.delete(k)))
    return deleted.some(Boolean)
  }

  /**
   * The backend slot serving the current call, for framework adapters
   * (`cachette/express`, `cachette/fastify`, `cachette/koa`, `cachette/hono`,
   * `cachette/nestjs`); with `app`, the slot a call would get while serving a
   * request of `app` (`runWithApp`). Keyed by a symbol no public entry
   * exports (core/slot.ts), so it is no part of the public API.
   * @internal
   */
  [VIEW_SLOT](app?: object): Slot {
    return this.#slot(app)
  }

  /** Runs `fn` as if serving a request of `app` (for jobs and scripts of a multi-app Cache). */
  runWithApp<R>(app: object, fn: () => R): R {
    return appContext.run(app, fn)
  }

  // ---------------------------------------------------------------- observability
  // Events, stats and the hooks of cachette/prometheus and cachette/otel; the
  // machinery is in core/events.ts.

  /**
   * Listeners and observation state. Created before the constructor body
   * runs; `#build` has it adopt every slot it makes (now or in a later
   * `initApp`): instrumented at once if the Cache is observed.
   */
  readonly #observation: CacheObservation = new CacheObservation(this.#slots)

  /**
   * Calls `listener` for each `event` (typed: `cache.on('hit', (e) => e.key)`).
   * Events describe backend operations, those of `get`/`set`/... and those the
   * memoize and view engines, `getOrSet` and fragments make: `hit` and `miss`
   * (one per key read), `set`, `delete`, `clear`, `error` and `operation`
   * (every call). See `CacheEvents` for the payloads.
   *
   * Without listeners nothing is paid: backends are called directly. The first
   * listener makes the Cache *observed*: every backend is wrapped so its calls
   * are timed, counted (the `backend` part of {@link Cache.stats}) and
   * published on the `cachette:operation` diagnostics channel; removing the
   * last one puts the original backends back. A listener that throws (or
   * rejects) is logged, never breaks the call.
   */
  on<E extends CacheEventName>(event: E, listener: CacheListener<E>): this {
    this.#observation.on(event, listener as CacheListener<CacheEventName>)
    return this
  }

  /** Like {@link Cache.on}, for the next `event` only. */
  once<E extends CacheEventName>(event: E, listener: CacheListener<E>): this {
    this.#observation.once(event, listener as CacheListener<CacheEventName>)
    return this
  }

  /** Removes a listener added with {@link Cache.on} or {@link Cache.once} (the latest registration of it). */
  off<E extends CacheEventName>(event: E, listener: CacheListener<E>): this {
    this.#observation.off(event, listener as CacheListener<CacheEventName>)
    return this
  }

  /**
   * Counters since creation or {@link Cache.resetStats}, summed over every
   * app's backend: per view, memoized function, getOrSet name and fragment
   * (hits, misses, stale, bypass; always counted, at the cost of a Map
   * lookup), and backend operation totals (counted only while the Cache is
   * observed, see {@link Cache.on}).
   */
  stats(): CacheStats {
    return this.#observation.stats()
  }

  /** Sets every counter of {@link Cache.stats} back to zero. */
  resetStats(): void {
    this.#observation.resetStats()
  }

  /**
   * The observation state, for `cachette/prometheus` and `cachette/otel`.
   * @internal
   */
  get observation(): CacheObservation {
    return this.#observation
  }

  /** Closes every backend this Cache built (connections, handles). */
  async close(): Promise<void> {
    await Promise.all(
      [...this.#slots].map(async (slot) => {
        const backend = await slot.ready.catch(() => undefined)
        await backend?.close?.()
      }),
    )
  }
}

const GET_OR_SET_OPTIONS = new Set(['timeout', 'grace', 'graceBackoff', 'tags', 'lock', 'name'])

/** The default name of a getOrSet call in `cache.stats()`: the key up to its first `:` (`user:42` → `user`). */
function statsNameOf(key: string): string {
  const at = key.indexOf(':')
  return at > 0 ? key.slice(0, at) : key
}

/** The options form of {@link Cache.set}'s third argument. */
export interface SetOptions {
  /** Seconds (or a duration string); `undefined` = the default timeout, `0` = forever. */
  timeout?: Timeout
  /** Tags: `cache.invalidateTags(tags)` makes the entry a miss. */
  tags?: readonly string[]
}

function checkedFragment(html: unknown): string {
  if (typeof html !== 'string') {
    throw new TypeError(
      `fragment: render must return a string, got ${html === null ? 'null' : typeof html}`,
    )
  }
  return html
}

/** Whether `value` is an object literal (or `Object.create(null)`), as options objects are. */
function isPlainObject(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}
