/**
 * The structural types cachette needs from Keyv: a storage adapter (what
 * `@keyv/postgres`, `@keyv/sqlite`, `@keyv/redis`, ... export, and what a
 * `Keyv` instance also looks like), so neither direction imports `keyv` at
 * run time and the public types do not require its own.
 */

/** One entry of a Keyv `setMany` call: `ttl` in milliseconds. */
export interface KeyvEntryLike {
  /** The key. */
  key: string
  /** The value, as Keyv hands it to the store (a serialized string by default). */
  value: unknown
  /** Milliseconds to live; absent for no expiry. */
  ttl?: number
}

/**
 * A Keyv storage adapter, or a `Keyv` instance: `get`, `set` (with a TTL in
 * milliseconds), `delete` and `clear` are required (as Keyv itself requires
 * them); the rest is used where present. A `Map` qualifies too.
 */
export interface KeyvStoreLike {
  /** The stored value, or `undefined`. */
  get(key: string): unknown
  /** Stores a value for `ttl` milliseconds (adapters without TTL support ignore it). */
  set(key: string, value: unknown, ttl?: number): unknown
  /** Removes a key; resolves whether it existed. */
  delete(key: string): unknown
  /** Removes every key of the adapter's namespace (without one: every key it holds). */
  clear(): unknown
  /** Values in key order, `undefined` for misses. */
  getMany?(keys: string[]): Promise<unknown[]>
  /** Stores several entries in one call. */
  setMany?(entries: KeyvEntryLike[]): Promise<unknown>
  /** Removes several keys in one call. */
  deleteMany?(keys: string[]): Promise<unknown>
  /** Lists `[key, value]` pairs of a namespace (iterable adapters: SQL, Redis, Mongo, ...). */
  iterator?: ((namespace?: string) => AsyncIterable<unknown>) | undefined
  /** Releases the adapter's connections. */
  disconnect?(): Promise<void>
  /** The adapter's event emitter (`'error'`). */
  on?(event: string, listener: (...args: unknown[]) => void): unknown
  /** The namespace Keyv gave the adapter, which its `clear` and `iterator` honour. */
  namespace?: string | undefined
}
