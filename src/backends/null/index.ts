import { BaseCache, type BaseCacheOptions } from '../../core/backend.js'

/**
 * Caches nothing: every read misses, every write "succeeds". Useful in tests
 * and to switch caching off by configuration (`CACHE_TYPE: 'NullCache'`).
 * The {@link Cache} facade warns once when it is chosen, unless
 * `CACHE_NO_NULL_WARNING` is set.
 */
export class NullCache extends BaseCache {
  constructor(options: BaseCacheOptions = {}) {
    super(options)
  }
  async get(_key: string): Promise<unknown> {
    return undefined
  }
  async set(_key: string, _value: unknown, _timeout?: number): Promise<boolean> {
    return true
  }
  async add(_key: string, _value: unknown, _timeout?: number): Promise<boolean> {
    return true
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
