/**
 * A cachette `Cache` as a Keyv storage adapter ({@link toKeyvStore}), so
 * code written for Keyv or cache-manager 7 can keep its API and store in any
 * cachette backend, behind cachette's timeouts, circuit breaker and metrics.
 */
import { EventEmitter } from 'node:events'
import type { CacheBackend } from '../../core/backend.js'
import type { KeyvEntryLike } from './types.js'

/**
 * What {@link toKeyvStore} calls on a cachette `Cache` (structurally, so any
 * object with these methods works). Timeouts are in seconds.
 */
export interface KeyvTargetCache {
  /** The value at `key`, or `undefined` on a miss. */
  get(key: string): Promise<unknown>
  /** Stores `value` for `timeout` seconds (`undefined`: the cache's default). */
  set(key: string, value: unknown, timeout?: number): Promise<boolean>
  /** Removes `key`; resolves whether it existed. */
  delete(key: string): Promise<boolean>
  /** Whether `key` holds a live entry. */
  has(key: string): Promise<boolean>
  /** Removes every entry of the backend. */
  clear(): Promise<boolean>
  /** Values in key order, `undefined` for misses. */
  getMany(keys: readonly string[]): Promise<unknown[]>
  /** Stores several values with one timeout. */
  setMany(entries: Iterable<readonly [string, unknown]>, timeout?: number): Promise<string[]>
  /** Removes keys; resolves the keys now gone. */
  deleteMany(keys: readonly string[]): Promise<string[]>
  /** Removes every key starting with `prefix`. */
  deletePrefix(prefix: string): Promise<number>
  /** Releases the backend. */
  close(): Promise<void>
  /** The backend, for listing keys (`keys()`). */
  readonly backend: CacheBackend
}

/** Options of {@link toKeyvStore}. */
export interface KeyvStoreOptions {
  /**
   * Close the cache when Keyv's (or cache-manager's) `disconnect()` is called.
   * Off by default: the cache is usually shared with the rest of the app.
   * @default false
   */
  closeOnDisconnect?: boolean
}

/**
 * The Keyv storage adapter made by {@link toKeyvStore}: Keyv's
 * `KeyvStoreAdapter` interface (`get`, `set` with a TTL in milliseconds,
 * `delete`, `clear`, `has`, `getMany`, `setMany`, `deleteMany`, `hasMany`,
 * `iterator`, `disconnect`, `namespace`, `opts`) and an `EventEmitter`.
 */
export interface CachetteKeyvStore extends EventEmitter {
  /** Keyv reads `opts.dialect` and `opts.url` to decide whether it iterates the store. */
  opts: { dialect: string; url: string; [option: string]: unknown }
  /** Set by Keyv: its keys arrive as `namespace:key`; `clear()` removes only those. */
  namespace?: string | undefined
  /** The cache behind the store. */
  readonly cache: KeyvTargetCache
  /** The value (what Keyv serialized, or its raw `{ value, expires }` object), or `undefined`. */
  get<Value = unknown>(key: string): Promise<Value | undefined>
  /** Stores for `ttl` milliseconds (absent or not positive: the cache's default timeout). */
  set(key: string, value: unknown, ttl?: number): Promise<boolean>
  /** Stores several entries, one `setMany` per distinct TTL. */
  setMany(entries: KeyvEntryLike[]): Promise<void>
  /** Removes a key; resolves whether it existed. */
  delete(key: string): Promise<boolean>
  /** Removes keys; resolves whether any of them existed. */
  deleteMany(keys: string[]): Promise<boolean>
  /** Removes the keys of the namespace (`deletePrefix`), or the whole cache without one. */
  clear(): Promise<void>
  /** Whether `key` holds a live entry. */
  has(key: string): Promise<boolean>
  /** Whether each key holds a live entry. */
  hasMany(keys: string[]): Promise<boolean[]>
  /** Values in key order. */
  getMany<Value = unknown>(keys: string[]): Promise<(Value | undefined)[]>
  /** `[key, value]` pairs of a namespace, for backends that list keys. */
  iterator<Value = unknown>(namespace?: string): AsyncGenerator<[string, Value], void>
  /** Closes the cache when `closeOnDisconnect` is set; otherwise nothing. */
  disconnect(): Promise<void>
}

class KeyvStore extends EventEmitter implements CachetteKeyvStore {
  opts: { dialect: string; url: string; [option: string]: unknown }
  namespace?: string | undefined
  readonly cache: KeyvTargetCache
  readonly #closeOnDisconnect: boolean

  constructor(cache: KeyvTargetCache, options: KeyvStoreOptions) {
    super()
    this.cache = cache
    this.opts = { dialect: 'cachette', url: 'cachette:' }
    this.#closeOnDisconnect = options.closeOnDisconnect === true
  }

  /** Runs `fn`; an error is emitted as `'error'` (when someone listens) and rethrown. */
  async #run<R>(fn: () => Promise<R>): Promise<R> {
    try {
      return await fn()
    } catch (error) {
      if (this.listenerCount('error') > 0) this.emit('error', error)
      throw error
    }
  }

  get<Value = unknown>(key: string): Promise<Value | undefined> {
    return this.#run(() => this.cache.get(key) as Promise<Value | undefined>)
  }

  set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    return this.#run(() => this.cache.set(key, value, secondsOf(ttl)))
  }

  async setMany(entries: KeyvEntryLike[]): Promise<void> {
    const byTtl = new Map<number | undefined, [string, unknown][]>()
    for (const { key, value, ttl } of entries) {
      const t = secondsOf(ttl)
      let group = byTtl.get(t)
      if (group === undefined) {
        group = []
        byTtl.set(t, group)
      }
      group.push([key, value])
    }
    await this.#run(() => Promise.all([...byTtl].map(([t, group]) => this.cache.setMany(group, t))))
  }

  delete(key: string): Promise<boolean> {
    return this.#run(() => this.cache.delete(key))
  }

  deleteMany(keys: string[]): Promise<boolean> {
    return this.#run(async () => {
      if (keys.length === 0) return false
      const present = await this.cache.getMany(keys)
      await this.cache.deleteMany(keys)
      return present.some((v) => v !== undefined)
    })
  }

  clear(): Promise<void> {
    return this.#run(async () => {
      if (this.namespace) await this.cache.deletePrefix(`${this.namespace}:`)
      else await this.cache.clear()
    })
  }

  has(key: string): Promise<boolean> {
    return this.#run(() => this.cache.has(key))
  }

  hasMany(keys: string[]): Promise<boolean[]> {
    return this.#run(async () => (await this.cache.getMany(keys)).map((v) => v !== undefined))
  }

  getMany<Value = unknown>(keys: string[]): Promise<(Value | undefined)[]> {
    return this.#run(() => this.cache.getMany(keys) as Promise<(Value | undefined)[]>)
  }

  async *iterator<Value = unknown>(namespace?: string): AsyncGenerator<[string, Value], void> {
    const list = this.cache.backend.keys?.bind(this.cache.backend)
    if (list === undefined) {
      throw new TypeError(`toKeyvStore: the cache's backend cannot list its keys`)
    }
    const prefix = namespace ? `${namespace}:` : ''
    for await (const key of list(prefix)) {
      const value = await this.cache.get(key)
      if (value !== undefined) yield [key, value as Value]
    }
  }

  async disconnect(): Promise<void> {
    if (this.#closeOnDisconnect) await this.cache.close()
  }
}

/** Keyv's milliseconds as cachette's seconds; absent, zero or negative means the cache's default. */
function secondsOf(ttl: number | undefined): number | undefined {
  return typeof ttl === 'number' && ttl > 0 && Number.isFinite(ttl) ? ttl / 1000 : undefined
}

/**
 * A cachette `Cache` as a Keyv storage adapter:
 *
 * ```ts
 * import Keyv from 'keyv'
 * import { createCache } from 'cache-manager'
 * import { Cache } from 'cachette'
 * import { toKeyvStore } from 'cachette/keyv'
 * const cache = new Cache({ CACHE_TYPE: 'RedisCache', CACHE_REDIS_URL: 'redis://localhost' })
 * const keyv = new Keyv({ store: toKeyvStore(cache) })
 * const manager = createCache({ stores: [new Keyv({ store: toKeyvStore(cache) })] })
 * ```
 *
 * Keyv's TTLs (milliseconds) become cachette timeouts (seconds); a call
 * without a TTL uses the cache's `CACHE_DEFAULT_TIMEOUT` (set it to `0` for
 * Keyv's "never expires"). Keyv prefixes its keys with `namespace:`, and
 * `clear()` removes only those (`cache.deletePrefix`, which needs a backend
 * that lists its keys; without a namespace it clears the whole cache).
 * Keyv serializes values to JSON by default; give it `serialize: undefined,
 * deserialize: undefined` to hand values to cachette as they are, so Date,
 * Map, Set and BigInt keep their type through cachette's serializer.
 *
 * `deleteMany` and `hasMany` read the keys first (one `getMany`), to say
 * whether any existed. A backend that is down reads as a miss (the `Cache`
 * facade logs it); errors that reach the store (an unstorable value) are
 * emitted as `'error'` and rethrown, which Keyv turns into `false` or throws
 * with `throwOnErrors`.
 */
export function toKeyvStore(
  cache: KeyvTargetCache,
  options: KeyvStoreOptions = {},
): CachetteKeyvStore {
  if (typeof cache !== 'object' || cache === null || typeof cache.get !== 'function') {
    throw new TypeError('toKeyvStore: expected a cachette Cache')
  }
  return new KeyvStore(cache, options)
}
