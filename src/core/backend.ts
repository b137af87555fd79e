import { checkSeconds } from './duration.js'
import { DeleteManyError, NotAnIntegerError } from './errors.js'
import { defaultLogger, type Logger } from './log.js'
import { type Serializer, v8Serializer } from './serializers.js'

/**
 * What the {@link Cache} facade needs from a backend. Keys arrive validated
 * (non-empty strings) and timeouts arrive parsed (seconds, `undefined` for the
 * backend's default, `0` for never). Every method is async.
 *
 * Extend {@link BaseCache} rather than implementing this from scratch: it
 * supplies the multi-key operations, `inc`/`dec` and the timeout rules, and the
 * contract suite in `cachette/testing` checks the result.
 */
export interface CacheBackend {
  /** Default timeout in seconds (`0` = never expires). */
  readonly defaultTimeout: number
  /** The value, or `undefined` on a miss. `null` is an ordinary value. */
  get(key: string): Promise<unknown>
  /** Stores a value; resolves `true` on success. */
  set(key: string, value: unknown, timeout?: number): Promise<boolean>
  /** Stores only if the key is absent (or expired); resolves whether it stored. */
  add(key: string, value: unknown, timeout?: number): Promise<boolean>
  /** Removes a key; resolves whether it existed. */
  delete(key: string): Promise<boolean>
  /** Removes keys; resolves the keys that are now gone (a missing key counts as gone). */
  deleteMany(keys: readonly string[]): Promise<string[]>
  /** Whether an unexpired entry exists. */
  has(key: string): Promise<boolean>
  /** Removes every entry this backend owns. */
  clear(): Promise<boolean>
  /** Values in key order, `undefined` for misses. */
  getMany(keys: readonly string[]): Promise<unknown[]>
  /** Stores several values; resolves the keys that were stored. */
  setMany(entries: readonly (readonly [string, unknown])[], timeout?: number): Promise<string[]>
  /** Adds `delta` to an integer entry (a missing one counts as 0); resolves the new value. */
  inc(key: string, delta: number): Promise<number>
  /** Non-blocking removal where the store has one (Redis `UNLINK`); resolves how many keys are gone. */
  unlink?(keys: readonly string[]): Promise<number>
  /** Releases connections, timers and file handles. */
  close?(): Promise<void>
  /**
   * The keys of live entries that start with `prefix` (without the backend's
   * own `CACHE_KEY_PREFIX`), in no particular order, for tools such as the
   * `cachette` CLI. Backends that cannot list their keys (Memcached) omit it.
   */
  keys?(prefix: string): AsyncIterable<string>
  /**
   * What the store can tell about itself (entry counts, memory, hit and miss
   * counters), as figure name to value, for tools such as `cachette stats`.
   * Names are the store's own where it has them (Redis `used_memory_human`,
   * Memcached `curr_items`). Backends with nothing to report omit it.
   */
  stats?(): Promise<Record<string, string | number>>
  /**
   * Takes a lock: stores `token` at `key` for `ttlMs` milliseconds only if the
   * key is free, atomically (Redis `SET NX PX`). Resolves whether it was
   * taken. Without it, locks use {@link CacheBackend.add}.
   */
  acquireLock?(key: string, token: string, ttlMs: number): Promise<boolean>
  /**
   * Releases a lock taken with `token`, atomically, and only if it still
   * holds that token (a lock that expired and was taken by someone else is
   * left alone). Resolves whether it released.
   */
  releaseLock?(key: string, token: string): Promise<boolean>
  /**
   * `true` when the store lives in this process, with no network to wait for
   * (SimpleCache, NullCache, a local disk, ClusterCache in the primary): the
   * facade then puts no operation timeout or circuit breaker around it.
   * Absent or `false`: the facade guards it (`CACHE_OPERATION_TIMEOUT`,
   * `CACHE_CIRCUIT_BREAKER`).
   */
  readonly inProcess?: boolean
  /**
   * For a backend in front of another (TieredCache): wraps only the inner,
   * remote store with `wrap`, so the facade's guard spares the in-process
   * part; the facade then does not wrap the backend itself.
   */
  guardInner?(wrap: (inner: CacheBackend) => CacheBackend): void
}

/** The names of `T`'s methods (optional ones included). */
type MethodName<T> = {
  [K in keyof T]-?: NonNullable<T[K]> extends (...args: never[]) => unknown ? K : never
}[keyof T]

/**
 * The data operations of {@link CacheBackend}, declared once: what the
 * facade's guard times and counts towards its circuit breaker, what the
 * instrumenting wrapper of `core/events` times and reports (the `operation`
 * of every event, in this order in `cache.stats().operations`), and what
 * ClusterCache sends to its primary. `unlink`, `acquireLock` and
 * `releaseLock` are optional: wrapped only where a backend has them.
 */
export const BACKEND_OPERATIONS = [
  'get',
  'getMany',
  'set',
  'setMany',
  'add',
  'delete',
  'deleteMany',
  'unlink',
  'has',
  'clear',
  'inc',
  'acquireLock',
  'releaseLock',
] as const satisfies readonly MethodName<CacheBackend>[]

/** A backend data operation: one of `BACKEND_OPERATIONS`. */
export type BackendOperation = (typeof BACKEND_OPERATIONS)[number]

/**
 * The other methods of {@link CacheBackend}: set-up, tooling and lifecycle,
 * never timed, guarded or counted.
 */
export const BACKEND_SERVICE_METHODS = [
  'close',
  'keys',
  'stats',
  'guardInner',
] as const satisfies readonly MethodName<CacheBackend>[]

/** A method of {@link CacheBackend} that is in neither list (must be none). */
type UnlistedMethod = Exclude<
  MethodName<CacheBackend>,
  BackendOperation | (typeof BACKEND_SERVICE_METHODS)[number]
>
/** Compile-time check: a method added to {@link CacheBackend} must be listed above. */
const everyMethodListed: [UnlistedMethod] extends [never] ? true : UnlistedMethod = true
void everyMethodListed

/**
 * Internal: the method of a backend that reads an entry synchronously and
 * without copying it (SimpleCache), for the view engine's hits. It returns
 * the backend's own value (`undefined` for a miss), which the caller must
 * neither change nor hand to user code. Backends whose reads are async, or
 * that cannot promise this, do not have it.
 * @internal
 */
export const PEEK: unique symbol = Symbol('cachette.peek')

/** A backend with a {@link PEEK} method. @internal */
export interface PeekableBackend {
  [PEEK]?: ((key: string) => unknown) | undefined
}

/**
 * Internal: the synchronous twin of an async backend method, kept on the
 * method itself (`SimpleCache.prototype.get[SYNC]`). Called with the backend
 * first and then the method's arguments (`twin(backend, key)`: a plain call,
 * cheaper than `twin.call(backend, key)`), it returns what the method's
 * promise would resolve with, or throws what it would reject with, and has
 * the same effects. The facade calls it for in-process stores, so a call
 * costs one promise instead of a chain. A method replaced anywhere (a
 * subclass, an instance, a wrapper such as the instrumenting one) is another
 * function, without the twin, so the facade then calls the method itself.
 * @internal
 */
export const SYNC: unique symbol = Symbol('cachette.sync')

/** A method that may carry a synchronous twin ({@link SYNC}). @internal */
export type WithSyncTwin<A extends unknown[], R> = ((...args: A) => Promise<R>) & {
  readonly [SYNC]?: ((backend: CacheBackend, ...args: A) => R) | undefined
}

/** Options every built-in backend accepts. */
export interface BaseCacheOptions {
  /**
   * Seconds an entry lives when `set` is given no timeout. `0` means forever.
   * @default 300
   */
  defaultTimeout?: number
  /**
   * When false, `deleteMany` throws a {@link DeleteManyError} if a key survives.
   * `CACHE_IGNORE_ERRORS` sets it.
   * @default false
   */
  ignoreDeleteManyErrors?: boolean
  /**
   * How values are encoded. `CACHE_SERIALIZER` sets it.
   * @default v8Serializer
   */
  serializer?: Serializer
  /** Where warnings go. @default console */
  logger?: Logger
}

/**
 * The base of every built-in backend. Subclasses implement `get`, `set`, `add`,
 * `delete`, `has` and `clear`; the rest has correct (if not the fastest)
 * defaults that a backend overrides with native commands.
 */
export abstract class BaseCache implements CacheBackend {
  /** Default timeout in seconds (`0` = never expires). */
  readonly defaultTimeout: number
  /** Whether `deleteMany` tolerates keys that survive. */
  readonly ignoreDeleteManyErrors: boolean
  /** How values are encoded. Assignable, as Flask-Caching's `backend.serializer`. */
  serializer: Serializer
  /** Where warnings go. */
  readonly logger: Logger

  constructor(options: BaseCacheOptions = {}) {
    this.defaultTimeout = options.defaultTimeout ?? 300
    this.ignoreDeleteManyErrors = options.ignoreDeleteManyErrors ?? false
    this.serializer = options.serializer ?? v8Serializer
    this.logger = options.logger ?? defaultLogger
  }

  /**
   * The effective timeout in seconds: `undefined` becomes the default; `0`
   * means never, and so does anything above ten years (`MAX_TIMEOUT_SECONDS`).
   * @throws {InvalidTimeoutError} for what is not a non-negative finite
   * number (a Date, a string, NaN), so no backend silently uses the default.
   */
  protected ttl(timeout: number | undefined): number {
    return checkSeconds(timeout === undefined ? this.defaultTimeout : timeout) as number
  }

  abstract get(key: string): Promise<unknown>
  abstract set(key: string, value: unknown, timeout?: number): Promise<boolean>
  abstract add(key: string, value: unknown, timeout?: number): Promise<boolean>
  abstract delete(key: string): Promise<boolean>
  abstract has(key: string): Promise<boolean>
  abstract clear(): Promise<boolean>

  async getMany(keys: readonly string[]): Promise<unknown[]> {
    return Promise.all(keys.map((k) => this.get(k)))
  }

  async setMany(
    entries: readonly (readonly [string, unknown])[],
    timeout?: number,
  ): Promise<string[]> {
    const results = await Promise.all(entries.map(([k, v]) => this.set(k, v, timeout)))
    return entries.filter((_, i) => results[i]).map(([k]) => k)
  }

  async deleteMany(keys: readonly string[]): Promise<string[]> {
    const gone: string[] = []
    const left: string[] = []
    for (const key of keys) {
      if ((await this.delete(key)) || !(await this.has(key))) gone.push(key)
      else left.push(key)
    }
    if (left.length > 0 && !this.ignoreDeleteManyErrors) throw new DeleteManyError(left)
    return gone
  }

  /**
   * Non-atomic default: read, add, write back with the default timeout.
   * Backends with a native counter override it.
   */
  async inc(key: string, delta: number): Promise<number> {
    const current = await this.get(key)
    const next = integerOf(key, current) + delta
    await this.set(key, next)
    return next
  }

  async close(): Promise<void> {}
}

/** The integer value of a counter entry (`undefined` counts as 0); throws {@link NotAnIntegerError} otherwise. */
export function integerOf(key: string, value: unknown): number {
  if (value === undefined) return 0
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value
  throw new NotAnIntegerError(`inc/dec: the value at ${JSON.stringify(key)} is not an integer`)
}

/**
 * The options object handed to a backend factory: the common options resolved
 * from the config, plus `CACHE_OPTIONS` with its keys in camelCase.
 */
export interface BackendFactoryOptions extends BaseCacheOptions {
  /** Seconds an entry lives by default (`CACHE_DEFAULT_TIMEOUT`). */
  defaultTimeout: number
  /** From `CACHE_IGNORE_ERRORS`. */
  ignoreDeleteManyErrors: boolean
  /** `CACHE_OPTIONS` entries, passed through to the backend or its client. */
  [option: string]: unknown
}

/**
 * Builds a backend from configuration, as Flask-Caching's `factory(app, config, args, options)`.
 * `config` holds every `CACHE_*` key with its default filled in; `args` is a
 * copy of `CACHE_ARGS`.
 */
export type BackendFactory = (
  app: object | undefined,
  config: Readonly<Record<string, unknown>>,
  args: unknown[],
  options: BackendFactoryOptions,
) => CacheBackend | Promise<CacheBackend>

/** A backend class usable as `CACHE_TYPE`: built through its static `factory` when it has one. */
export interface BackendClass {
  new (...args: never[]): CacheBackend
  /** Builds an instance from configuration; see {@link BackendFactory}. */
  factory?: BackendFactory
}

/** The methods a backend must have itself: the rest can be derived from them (see {@link completeBackend}). */
export const REQUIRED_BACKEND_METHODS: readonly BackendOperation[] = [
  'get',
  'set',
  'add',
  'delete',
  'has',
  'clear',
]

/** The methods {@link completeBackend} derives, as {@link BaseCache} does, when a backend lacks them. */
const DERIVED_METHODS = [
  'getMany',
  'setMany',
  'deleteMany',
  'inc',
] as const satisfies readonly BackendOperation[]

/** The names of {@link REQUIRED_BACKEND_METHODS} that `backend` lacks. */
export function missingBackendMethods(backend: object): string[] {
  return REQUIRED_BACKEND_METHODS.filter(
    (m) => typeof (backend as Record<string, unknown>)[m] !== 'function',
  )
}

/**
 * A backend with everything the engines call: a user's class that has the
 * required methods ({@link REQUIRED_BACKEND_METHODS}) but not the bulk ones
 * gets {@link BaseCache}'s derivations of `getMany`, `setMany`, `deleteMany`
 * and `inc` (as Flask-Caching's `BaseCache` derives them from the single-key
 * methods), and `defaultTimeout` when it has none. Returns `backend` itself
 * when nothing is missing; else a Proxy over it (so `instanceof`, getters and
 * its own methods, bound to it for private fields, keep working).
 *
 * @param defaultTimeout - for a backend without its own `defaultTimeout`
 */
export function completeBackend(backend: CacheBackend, defaultTimeout: number): CacheBackend {
  const b = backend as unknown as Record<string, unknown>
  const derived = new Map<PropertyKey, unknown>()
  const base = BaseCache.prototype as unknown as Record<string, (...a: unknown[]) => unknown>
  for (const name of DERIVED_METHODS) {
    if (typeof b[name] === 'function') continue
    const method = base[name] as (...a: unknown[]) => unknown
    derived.set(name, (...args: unknown[]) => method.apply(backend, args))
  }
  if (typeof b.defaultTimeout !== 'number') derived.set('defaultTimeout', defaultTimeout)
  if (derived.size === 0) return backend
  const bound = new Map<Function, Function>()
  return new Proxy(backend, {
    get(target, prop) {
      if (derived.has(prop)) return derived.get(prop)
      const value: unknown = Reflect.get(target, prop, target)
      return typeof value === 'function' ? boundTo(target, value, bound) : value
    },
    has(target, prop) {
      return derived.has(prop) || Reflect.has(target, prop)
    },
  })
}

/**
 * `method` bound to `target`, made once and kept in `bound`: what a Proxy
 * over a backend hands out for its methods, so `proxy.get === proxy.get`
 * and no call allocates. @internal
 */
export function boundTo(
  target: object,
  method: Function,
  bound: Map<Function, Function>,
): Function {
  let fn = bound.get(method)
  if (fn === undefined) {
    fn = method.bind(target) as Function
    bound.set(method, fn)
  }
  return fn
}
