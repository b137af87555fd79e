/**
 * `TieredCache`: a small in-process first tier in front of any backend, for
 * stores where every read is a network round trip (S3, GCS, a remote Redis).
 */
import {
  type BackendFactory,
  BaseCache,
  type BaseCacheOptions,
  type CacheBackend,
} from '../../core/backend.js'
import { ConfigError } from '../../core/errors.js'
import { SimpleCache } from '../memory/index.js'

/** Options of {@link TieredCache}. */
export interface TieredCacheOptions extends BaseCacheOptions {
  /** The backend behind the first tier (the shared store). */
  second: CacheBackend
  /**
   * The most seconds an entry stays in the first tier: how long another
   * process's change to the second tier may go unseen here. `0` is not
   * allowed (the first tier would never notice a change).
   * @default 5
   */
  firstTimeout?: number
  /** The most entries in the first tier (least recently used go first). @default 1000 */
  firstThreshold?: number
}

/**
 * Reads the in-process first tier (a {@link SimpleCache}), then the second;
 * a second-tier hit is copied into the first tier for at most
 * `firstTimeout` seconds (or the entry's own timeout if shorter, when it was
 * written through this cache). Writes and deletes go to both tiers, second
 * first.
 *
 * A process sees its own writes and deletes at once; another process's
 * within `firstTimeout`. First-tier hits never touch the second tier, so
 * they keep being served while it is slow or down; misses fail as the
 * second tier does, which the `Cache` facade turns into a miss.
 *
 * ```ts
 * import { Cache, TieredCache } from 'cachette'
 * import { S3Cache } from 'cachette/s3'
 * const cache = new Cache({
 *   CACHE_TYPE: TieredCache.over(S3Cache, { firstTimeout: 10 }),
 *   CACHE_S3_BUCKET: 'my-cache',
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
      return new TieredCache({
        defaultTimeout: factoryOptions.defaultTimeout,
        serializer: factoryOptions.serializer,
        logger: factoryOptions.logger,
        ignoreDeleteManyErrors: factoryOptions.ignoreDeleteManyErrors,
        ...options,
        second,
      })
    }
  }

  /** The in-process first tier. */
  readonly first: SimpleCache
  /** The backend behind it. */
  readonly second: CacheBackend
  /** The most seconds an entry stays in the first tier. */
  readonly firstTimeout: number

  /** @throws {ConfigError} naming `CACHE_OPTIONS` for a bad `firstTimeout` or `firstThreshold`. */
  constructor(options: TieredCacheOptions) {
    super({ ...options, defaultTimeout: options.defaultTimeout ?? options.second?.defaultTimeout })
    if (options.second === undefined || typeof options.second.get !== 'function') {
      throw new ConfigError('CACHE_TYPE', 'TieredCache needs a second-tier backend (option second)')
    }
    const t = options.firstTimeout ?? 5
    if (typeof t !== 'number' || !(t > 0) || !Number.isFinite(t)) {
      throw new ConfigError(
        'CACHE_OPTIONS',
        `firstTimeout must be a positive number of seconds, got ${String(t)}`,
      )
    }
    this.firstTimeout = t
    this.second = options.second
    this.first = new SimpleCache({
      threshold: options.firstThreshold ?? 1000,
      defaultTimeout: t,
      serializer: options.serializer,
      logger: options.logger,
    })
  }

  /** The first tier's timeout for an entry written with `timeout` (undefined = the default). */
  #firstTtl(timeout: number | undefined): number {
    const t = this.ttl(timeout)
    return t === 0 ? this.firstTimeout : Math.min(t, this.firstTimeout)
  }

  async get(key: string): Promise<unknown> {
    const near = await this.first.get(key)
    if (near !== undefined) return near
    const far = await this.second.get(key)
    if (far !== undefined) await this.first.set(key, far, this.firstTimeout)
    return far
  }

  override async getMany(keys: readonly string[]): Promise<unknown[]> {
    const values = await this.first.getMany(keys)
    const missing = keys.filter((_, i) => values[i] === undefined)
    if (missing.length === 0) return values
    const far = await this.second.getMany(missing)
    let j = 0
    for (let i = 0; i < keys.length; i++) {
      if (values[i] !== undefined) continue
      const v = far[j++]
      values[i] = v
      if (v !== undefined) await this.first.set(keys[i] as string, v, this.firstTimeout)
    }
    return values
  }

  async set(key: string, value: unknown, timeout?: number): Promise<boolean> {
    const stored = await this.second.set(key, value, timeout)
    if (stored) await this.first.set(key, value, this.#firstTtl(timeout))
    else await this.first.delete(key)
    return stored
  }

  override async setMany(
    entries: readonly (readonly [string, unknown])[],
    timeout?: number,
  ): Promise<string[]> {
    const stored = await this.second.setMany(entries, timeout)
    const ok = new Set(stored)
    await this.first.setMany(
      entries.filter(([k]) => ok.has(k)),
      this.#firstTtl(timeout),
    )
    await this.first.deleteMany(entries.filter(([k]) => !ok.has(k)).map(([k]) => k))
    return stored
  }

  async add(key: string, value: unknown, timeout?: number): Promise<boolean> {
    const added = await this.second.add(key, value, timeout)
    if (added) await this.first.set(key, value, this.#firstTtl(timeout))
    return added
  }

  async delete(key: string): Promise<boolean> {
    await this.first.delete(key)
    return this.second.delete(key)
  }

  override async deleteMany(keys: readonly string[]): Promise<string[]> {
    await this.first.deleteMany(keys)
    return this.second.deleteMany(keys)
  }

  async has(key: string): Promise<boolean> {
    if (await this.first.has(key)) return true
    return this.second.has(key)
  }

  async clear(): Promise<boolean> {
    await this.first.clear()
    return this.second.clear()
  }

  /** The second tier's counter; the first tier forgets the key so the next read sees the new value. */
  override async inc(key: string, delta: number): Promise<number> {
    await this.first.delete(key)
    try {
      return await this.second.inc(key, delta)
    } finally {
      await this.first.delete(key)
    }
  }

  /** Closes the second tier. */
  override async close(): Promise<void> {
    await this.second.close?.()
  }
}
