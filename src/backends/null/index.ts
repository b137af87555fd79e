import { BaseCache, type BaseCacheOptions } from '../../core/backend.js'
import { UnserializableValueError } from '../../core/errors.js'

/**
 * Caches nothing: every read misses, every write "succeeds". Useful in tests
 * and to switch caching off by configuration (`CACHE_TYPE: 'NullCache'`).
 * The {@link Cache} facade warns once when it is chosen, unless
 * `CACHE_NO_NULL_WARNING` is set.
 *
 * Values are still checked: one that no other backend could store is a
 * TypeError here too, so switching caching off never hides a bug.
 */
export class NullCache extends BaseCache {
  /** Nothing to wait for: never guarded. */
  readonly inProcess = true
  constructor(options: BaseCacheOptions = {}) {
    super(options)
  }
  async get(_key: string): Promise<unknown> {
    return undefined
  }
  #check(value: unknown): void {
    if (value === undefined) {
      throw new UnserializableValueError(
        'cannot store undefined: undefined means a miss; store null instead',
      )
    }
    if (typeof value === 'object' || typeof value === 'function' || typeof value === 'symbol') {
      if (value !== null) this.serializer.dumps(value)
    }
  }
  async set(_key: string, value: unknown, _timeout?: number): Promise<boolean> {
    this.#check(value)
    return true
  }
  async add(_key: string, value: unknown, _timeout?: number): Promise<boolean> {
    this.#check(value)
    return true
  }
  override async setMany(
    entries: readonly (readonly [string, unknown])[],
    _timeout?: number,
  ): Promise<string[]> {
    for (const [, value] of entries) this.#check(value)
    return entries.map(([key]) => key)
  }
  async delete(_key: string): Promise<boolean> {
    return true
  }
  async has(_key: string): Promise<boolean> {
    return false
  }
  async clear(): Promise<boolean> {
    return true
  }
  override async deleteMany(keys: readonly string[]): Promise<string[]> {
    return [...keys]
  }
  override async inc(_key: string, delta: number): Promise<number> {
    return delta
  }
}
