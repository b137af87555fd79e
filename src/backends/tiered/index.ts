/**
 * `TieredCache`: a small in-process first tier in front of any backend, for
 * stores where every read is a network round trip (S3, GCS, a remote Redis),
 * kept coherent across processes by an optional invalidation bus.
 */
import { randomBytes } from 'node:crypto'
import {
  type BackendFactory,
  BaseCache,
  type BaseCacheOptions,
  type CacheBackend,
} from '../../core/backend.js'
import type { Bus, BusFactory } from '../../core/bus.js'
import { ConfigError } from '../../core/errors.js'
import { ErrorReporter } from '../../core/log.js'
import { SimpleCache } from '../memory/index.js'
import { bucketOf, Generations } from './generations.js'
import { BusLink } from './link.js'

/** Options of {@link TieredCache}. */
export interface TieredCacheOptions extends BaseCacheOptions {
  /** The backend behind the first tier (the shared store). */
  second: CacheBackend
  /**
   * The most seconds an entry stays in the first tier. Without a bus, this is
   * how long another process's change to the second tier may go unseen here;
   * with one, changes are seen at once and this only bounds memory and the
   * damage of a lost message. `0` is not allowed.
   * @default 5
   */
  firstTimeout?: number
  /** The most entries in the first tier (least recently used go first). @default 1000 */
  firstThreshold?: number
  /**
   * The invalidation bus: a {@link Bus} (shared, never closed by this cache),
   * or a function building one from the second tier (owned: closed with this
   * cache), such as `redisBus()` from `cachette/redis`. Every write and delete
   * then tells the other processes to drop the key from their first tier.
   */
  bus?: Bus | BusFactory
  /**
   * The bus channel's name, after `cachette:tiered:`. Caches on one bus with
   * different channels ignore each other.
   * @default the second tier's `keyPrefix` (`CACHE_KEY_PREFIX`), else ''
   */
  channel?: string
  /**
   * Seconds the first tier keeps being served after the bus went down
   * (nothing is added to it meanwhile). Past that, it is dropped and every
   * read goes to the second tier until the bus is back, because other
   * processes' invalidations may have been missed. When the bus comes back,
   * the first tier is emptied either way.
   * @default 5
   */
  busDownTimeout?: number
  /**
   * The most keys of failed publishes kept for a retry. Past it, they are
   * replaced by a single "clear" message (logged), so no invalidation is ever
   * lost, at the cost of the other processes' first tiers.
   * @default 1000
   */
  busRetryLimit?: number
}

function positiveSeconds(value: unknown, name: string, fallback: number, zeroOk: boolean): number {
  const t = value ?? fallback
  if (typeof t !== 'number' || !Number.isFinite(t) || t < 0 || (!zeroOk && t === 0)) {
    throw new ConfigError(
      'CACHE_OPTIONS',
      `${name} must be a ${zeroOk ? 'non-negative' : 'positive'} number of seconds, got ${String(t)}`,
    )
  }
  return t
}

/**
 * Reads the in-process first tier (a {@link SimpleCache}), then the second;
 * a second-tier hit is copied into the first tier for at most
 * `firstTimeout` seconds (or the entry's own timeout if shorter, when it was
 * written through this cache). Writes and deletes go to both tiers, second
 * first.
 *
 * Without a bus, a process sees its own writes and deletes at once and
 * another process's within `firstTimeout`. With a {@link Bus}, every write,
 * delete and clear is followed by an invalidation message ("drop these keys",
 * never the value), and the other processes drop their copies at once:
 *
 * - A process ignores its own messages (each cache has a random
 *   {@link TieredCache.instanceId}) and those of other channels.
 * - Messages that could not be published are retried (see `busRetryLimit`).
 * - A read that misses the first tier fills it only if no invalidation of
 *   that key arrived while it was reading the second tier (per-key
 *   generation counters), so a drop that overtakes a slow read cannot be
 *   undone by it.
 * - While the bus is down the first tier is served for at most
 *   `busDownTimeout` seconds and not filled; when it is back the first tier
 *   is emptied, since messages may have been missed.
 *
 * First-tier hits never touch the second tier, so they keep being served
 * while it is slow or down; misses fail as the second tier does, which the
 * `Cache` facade turns into a miss. Built by `new Cache()`, the second tier
 * (not the first) gets the facade's operation timeout and circuit breaker.
 *
 * ```ts
 * import { Cache, TieredCache } from 'cachette'
 * import { RedisCache, redisBus } from 'cachette/redis'
 * const cache = new Cache({
 *   CACHE_TYPE: TieredCache.over(RedisCache, { firstTimeout: 60, bus: redisBus() }),
 *   CACHE_REDIS_URL: 'redis://localhost:6379/0',
 * })
 * ```
 */
export class TieredCache extends BaseCache {
  /**
   * A `CACHE_TYPE` factory: builds `backend` from the configuration as usual
   * and puts a first tier in front of it. `backend` is a backend class with a
   * static `factory`, or a factory function.
   */
  static over(
    backend: { factory?: BackendFactory } | BackendFactory,
    options: Omit<TieredCacheOptions, 'second'> = {},
  ): BackendFactory {
    const build: BackendFactory | undefined =
      typeof backend === 'function' &&
      !('factory' in backend && typeof backend.factory === 'function')
        ? (backend as BackendFactory)
        : (backend as { factory?: BackendFactory }).factory?.bind(backend)
    if (build === undefined) {
      throw new ConfigError(
        'CACHE_TYPE',
        'TieredCache.over() needs a backend class with a static factory, or a factory function',
      )
    }
    return async (app, config, args, factoryOptions) => {
      const second = await build(app, config, args, factoryOptions)
      try {
        return new TieredCache({
          defaultTimeout: factoryOptions.defaultTimeout,
          serializer: factoryOptions.serializer,
          logger: factoryOptions.logger,
          ignoreDeleteManyErrors: factoryOptions.ignoreDeleteManyErrors,
          ...options,
          second,
        })
      } catch (error) {
        // A bad option (or a bus that cannot be built): do not leak the second tier's connections.
        await second.close?.().catch(() => {})
        throw error
      }
    }
  }

  /** The in-process first tier. */
  readonly first: SimpleCache
  /** The most seconds an entry stays in the first tier. */
  readonly firstTimeout: number
  /** This cache's random id on the bus: its own messages carry it and are skipped. */
  readonly instanceId: string = randomBytes(8).toString('hex')
  /** The full bus channel: `cachette:tiered:` + the `channel` option. */
  readonly channel: string

  /** The second tier's key listing (when it has one). */
  declare keys?: (prefix: string) => AsyncIterable<string>
  /** The second tier's atomic lock (when it has one); locks never enter the first tier. */
  declare acquireLock?: (key: string, token: string, ttlMs: number) => Promise<boolean>
  /** The second tier's lock release (when it has one). */
  declare releaseLock?: (key: string, token: string) => Promise<boolean>

  #second: CacheBackend
  readonly #busDownMs: number
  readonly #retryLimit: number
  readonly #reporter: ErrorReporter
  /** The generation counters (generations.ts): a second-tier read fills the first tier only if its key's did not change. */
  readonly #generations = new Generations()
  /** The invalidation bus (link.ts), when one was configured. */
  readonly #link: BusLink | undefined
  #closed = false

  /**
   * @throws {ConfigError} naming `CACHE_OPTIONS` for a bad `firstTimeout`,
   * `firstThreshold`, `busDownTimeout`, `busRetryLimit`, `channel` or `bus`;
   * whatever a bus factory throws (a `ConfigError` from `redisBus()` over a
   * second tier that is not Redis).
   */
  constructor(options: TieredCacheOptions) {
    super({ ...options, defaultTimeout: options.defaultTimeout ?? options.second?.defaultTimeout })
    if (options.second === undefined || typeof options.second.get !== 'function') {
      throw new ConfigError('CACHE_TYPE', 'TieredCache needs a second-tier backend (option second)')
    }
    this.firstTimeout = positiveSeconds(options.firstTimeout, 'firstTimeout', 5, false)
    this.#busDownMs = positiveSeconds(options.busDownTimeout, 'busDownTimeout', 5, true) * 1000
    const limit = options.busRetryLimit ?? 1000
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new ConfigError(
        'CACHE_OPTIONS',
        `busRetryLimit must be a positive integer, got ${String(limit)}`,
      )
    }
    this.#retryLimit = limit
    this.#second = options.second
    this.first = new SimpleCache({
      threshold: options.firstThreshold ?? 1000,
      defaultTimeout: this.firstTimeout,
      serializer: options.serializer,
      logger: options.logger,
    })
    this.#reporter = new ErrorReporter(this.logger)
    const fromSecond = (options.second as { keyPrefix?: unknown }).keyPrefix
    const channel = options.channel ?? (typeof fromSecond === 'string' ? fromSecond : '')
    if (typeof channel !== 'string') {
      throw new ConfigError('CACHE_OPTIONS', `channel must be a string, got ${typeof channel}`)
    }
    this.channel = `cachette:tiered:${channel}`

    // Optional capabilities of the second tier, passed through (as own
    // properties only when it has them, so `'acquireLock' in cache` stays true to it).
    const second = options.second as {
      keys?: unknown
      acquireLock?: unknown
      releaseLock?: unknown
    }
    if (typeof second.keys === 'function') {
      this.keys = (prefix) =>
        (this.#second as Required<Pick<TieredCache, 'keys'>>).keys(prefix) as AsyncIterable<string>
    }
    if (typeof second.acquireLock === 'function') {
      this.acquireLock = async (key, token, ttlMs) => {
        // A lock is a key of the second tier; never let a stale copy sit in the first.
        void this.first.delete(key)
        return (this.#second as Required<Pick<TieredCache, 'acquireLock'>>).acquireLock(
          key,
          token,
          ttlMs,
        )
      }
    }
    if (typeof second.releaseLock === 'function') {
      this.releaseLock = async (key, token) => {
        void this.first.delete(key)
        return (this.#second as Required<Pick<TieredCache, 'releaseLock'>>).releaseLock(key, token)
      }
    }

    // The bus (link.ts).
    this.#link =
      options.bus === undefined
        ? undefined
        : new BusLink({
            bus: options.bus,
            second: options.second,
            channel: this.channel,
            instanceId: this.instanceId,
            downMs: this.#busDownMs,
            retryLimit: this.#retryLimit,
            first: this.first,
            generations: this.#generations,
            logger: this.logger,
            reporter: this.#reporter,
          })
  }

  /** The backend behind the first tier. */
  get second(): CacheBackend {
    return this.#second
  }

  /**
   * Replaces the second tier by `wrap(second)`: how `new Cache()` puts its
   * operation timeout and circuit breaker around the second tier only.
   * @internal
   */
  wrapSecond(wrap: (second: CacheBackend) => CacheBackend): void {
    this.#second = wrap(this.#second)
  }

  /** The facade's guard goes around the second tier only: first-tier hits go on while it is down. */
  guardInner(wrap: (inner: CacheBackend) => CacheBackend): void {
    this.wrapSecond(wrap)
  }

  /**
   * Whether the bus's subscription is active (always true without a bus):
   * the first tier is filled only then.
   */
  get busConnected(): boolean {
    return this.#busUp
  }

  /** Whether the first tier may be filled: no bus, or its subscription is active. */
  get #busUp(): boolean {
    return this.#link === undefined || this.#link.up
  }

  // ---- the bus (link.ts) and the generations (generations.ts) ---------------------

  /** Whether the first tier may be read now. */
  #readable(): boolean {
    return this.#link === undefined || this.#link.readable()
  }

  /** Tells the other processes to drop `keys` (not awaited: failures go to the retry queue). */
  #publishKeys(keys: readonly string[]): void {
    this.#link?.publishKeys(keys)
  }

  #publishClear(): void {
    this.#link?.publishClear()
  }

  /**
   * Resolves once the invalidation messages of the writes made so far have
   * been handed to the bus (or put in the retry queue because they could not
   * be), and one attempt was made to send the retry queue. For tests and
   * graceful shutdowns; writes never wait for their messages.
   */
  async flushBus(): Promise<void> {
    await this.#link?.flush()
  }

  #bump(key: string): void {
    this.#generations.bump(key)
  }

  #bumpAll(keys: readonly string[]): void {
    this.#generations.bumpKeys(keys)
  }

  /** The generation of `key`'s bucket now (compare before and after a second-tier read). */
  #ticket(bucket: number): number {
    return this.#generations.ticket(bucket)
  }

  /**
   * After a second-tier write failed: the outcome is unknown (a timeout may
   * have written), so forget the keys here and tell the others, unless it
   * was a TypeError (a bad value or argument: nothing was written).
   */
  #afterFailedWrite(keys: readonly string[], error: unknown): void {
    this.#bumpAll(keys)
    for (const key of keys) void this.first.delete(key)
    if (!(error instanceof TypeError)) this.#publishKeys(keys)
  }

  // ---- the backend API -----------------------------------------------------------

  /** The first tier's timeout for an entry written with `timeout` (undefined = the default). */
  #firstTtl(timeout: number | undefined): number {
    const t = this.ttl(timeout)
    return t === 0 ? this.firstTimeout : Math.min(t, this.firstTimeout)
  }

  async get(key: string): Promise<unknown> {
    if (this.#readable()) {
      const near = await this.first.get(key)
      if (near !== undefined) return near
    }
    const bucket = bucketOf(key)
    const ticket = this.#ticket(bucket)
    const far = await this.#second.get(key)
    // Fill only if nothing invalidated this key (or the bus) during the read.
    if (far !== undefined && this.#busUp && this.#ticket(bucket) === ticket) {
      await this.first.set(key, far, this.firstTimeout)
    }
    return far
  }

  override async getMany(keys: readonly string[]): Promise<unknown[]> {
    const values = this.#readable()
      ? await this.first.getMany(keys)
      : keys.map((): unknown => undefined)
    const missing = keys.filter((_, i) => values[i] === undefined)
    if (missing.length === 0) return values
    const buckets = missing.map(bucketOf)
    const tickets = buckets.map((b) => this.#ticket(b))
    const far = await this.#second.getMany(missing)
    let j = 0
    for (let i = 0; i < keys.length; i++) {
      if (values[i] !== undefined) continue
      const v = far[j]
      values[i] = v
      if (
        v !== undefined &&
        this.#busUp &&
        this.#ticket(buckets[j] as number) === (tickets[j] as number)
      ) {
        await this.first.set(keys[i] as string, v, this.firstTimeout)
      }
      j++
    }
    return values
  }

  async set(key: string, value: unknown, timeout?: number): Promise<boolean> {
    this.#bump(key)
    let stored: boolean
    try {
      stored = await this.#second.set(key, value, timeout)
    } catch (error) {
      this.#afterFailedWrite([key], error)
      throw error
    }
    // Bumped again: a read that started before this write must not fill the first tier.
    this.#bump(key)
    if (stored && this.#busUp) await this.first.set(key, value, this.#firstTtl(timeout))
    else await this.first.delete(key)
    if (stored) this.#publishKeys([key])
    return stored
  }

  override async setMany(
    entries: readonly (readonly [string, unknown])[],
    timeout?: number,
  ): Promise<string[]> {
    const keys = entries.map(([k]) => k)
    this.#bumpAll(keys)
    let stored: string[]
    try {
      stored = await this.#second.setMany(entries, timeout)
    } catch (error) {
      this.#afterFailedWrite(keys, error)
      throw error
    }
    this.#bumpAll(keys)
    const ok = new Set(stored)
    if (this.#busUp) {
      await this.first.setMany(
        entries.filter(([k]) => ok.has(k)),
        this.#firstTtl(timeout),
      )
      await this.first.deleteMany(keys.filter((k) => !ok.has(k)))
    } else {
      await this.first.deleteMany(keys)
    }
    // Every key: one that failed may have been written on some node.
    this.#publishKeys(keys)
    return stored
  }

  async add(key: string, value: unknown, timeout?: number): Promise<boolean> {
    this.#bump(key)
    let added: boolean
    try {
      added = await this.#second.add(key, value, timeout)
    } catch (error) {
      this.#afterFailedWrite([key], error)
      throw error
    }
    if (!added) return false
    this.#bump(key)
    if (this.#busUp) await this.first.set(key, value, this.#firstTtl(timeout))
    else await this.first.delete(key)
    this.#publishKeys([key])
    return true
  }

  async delete(key: string): Promise<boolean> {
    this.#bump(key)
    await this.first.delete(key)
    try {
      return await this.#second.delete(key)
    } finally {
      this.#bump(key)
      await this.first.delete(key)
      this.#publishKeys([key])
    }
  }

  override async deleteMany(keys: readonly string[]): Promise<string[]> {
    this.#bumpAll(keys)
    await this.first.deleteMany(keys)
    try {
      return await this.#second.deleteMany(keys)
    } finally {
      this.#bumpAll(keys)
      await this.first.deleteMany(keys)
      this.#publishKeys(keys)
    }
  }

  /** The second tier's `unlink` (or `deleteMany`); the keys leave the first tier and every other. */
  async unlink(keys: readonly string[]): Promise<number> {
    this.#bumpAll(keys)
    await this.first.deleteMany(keys)
    try {
      const second = this.#second
      return second.unlink ? await second.unlink(keys) : (await second.deleteMany(keys)).length
    } finally {
      this.#bumpAll(keys)
      await this.first.deleteMany(keys)
      this.#publishKeys(keys)
    }
  }

  async has(key: string): Promise<boolean> {
    if (this.#readable() && (await this.first.has(key))) return true
    return this.#second.has(key)
  }

  async clear(): Promise<boolean> {
    this.#generations.bumpAll()
    await this.first.clear()
    let failure: unknown
    try {
      return await this.#second.clear()
    } catch (error) {
      failure = error
      throw error
    } finally {
      this.#generations.bumpAll()
      await this.first.clear()
      // A TypeError (e.g. no key prefix to clear under) means nothing was removed.
      if (!(failure instanceof TypeError)) this.#publishClear()
    }
  }

  /** The second tier's counter; the first tiers (this one and the others) forget the key. */
  override async inc(key: string, delta: number): Promise<number> {
    this.#bump(key)
    await this.first.delete(key)
    let failure: unknown
    try {
      return await this.#second.inc(key, delta)
    } catch (error) {
      failure = error
      throw error
    } finally {
      this.#bump(key)
      await this.first.delete(key)
      if (!(failure instanceof TypeError)) this.#publishKeys([key])
    }
  }

  /**
   * Sends what the bus still owes (at most one attempt for the retry
   * queue), unsubscribes, closes the bus if this cache built it, then closes
   * the second tier.
   */
  override async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#link?.close()
    await this.#second.close?.()
  }
}
