/**
 * `cachette/keyv`: Keyv in both directions.
 *
 * - {@link KeyvCache}: any Keyv storage adapter (`@keyv/postgres`,
 *   `@keyv/sqlite`, `@keyv/mysql`, `@keyv/redis`, `@keyv/mongo`, ...) or a
 *   `Keyv` instance as a cachette backend, with cachette's own serializer,
 *   key prefix, timeouts in seconds and expiry checked on every read.
 * - {@link toKeyvStore}: a cachette `Cache` as a Keyv storage adapter, for
 *   `new Keyv({ store })` and cache-manager 7's `createCache({ stores })`.
 *
 * ```ts
 * import { Cache } from 'cachette'
 * import KeyvPostgres from '@keyv/postgres'
 * const cache = new Cache({
 *   CACHE_TYPE: 'KeyvCache',
 *   CACHE_KEY_PREFIX: 'app1/',
 *   CACHE_OPTIONS: { store: new KeyvPostgres({ uri: 'postgresql://localhost/app' }) },
 * })
 * ```
 *
 * Neither direction loads `keyv` itself: the backend needs only the
 * adapter's methods, and the store is an `EventEmitter` from `node:events`.
 * @packageDocumentation
 *
 * @module cachette/keyv
 */
import { createHash } from 'node:crypto'
import {
  type BackendFactoryOptions,
  BaseCache,
  type BaseCacheOptions,
  integerOf,
} from '../../core/backend.js'
import { decodeValue, encodeValue } from '../../core/codec.js'
import { ConfigError, CorruptEntryError } from '../../core/errors.js'
import { keyFromStorage, storageKey } from '../../core/keys.js'
import { warnOnce } from '../../core/log.js'
import type { KeyvEntryLike, KeyvStoreLike } from './types.js'

export {
  type CachetteKeyvStore,
  type KeyvStoreOptions,
  type KeyvTargetCache,
  toKeyvStore,
} from './store.js'
export type { KeyvEntryLike, KeyvStoreLike }

/** Options of {@link KeyvCache}. */
export interface KeyvCacheOptions extends BaseCacheOptions {
  /**
   * The Keyv storage adapter (`new KeyvPostgres(...)`, `new KeyvSqlite(...)`),
   * a `Keyv` instance, or a function returning one (called once, at
   * construction). Required. `CACHE_OPTIONS: { store }`.
   */
  store?: KeyvStoreLike | (() => KeyvStoreLike)
  /**
   * Prepended to every key; `clear()` then removes only the keys under it.
   * `CACHE_KEY_PREFIX`.
   * @default ''
   */
  keyPrefix?: string
  /**
   * The longest key, in characters, the store takes as it is (the prefix and
   * the adapter's namespace included); longer keys are stored under a SHA-256
   * of the key. 255 fits `@keyv/postgres`'s and `@keyv/mysql`'s `VARCHAR(255)`
   * key column.
   * @default 255
   */
  maxKeyLength?: number
  /**
   * Keys listed per `deleteMany` call when `clear()` removes the keys under
   * the prefix.
   * @default 500
   */
  clearBatchSize?: number
  /**
   * Call the adapter's `disconnect()` on `close()`. Leave it off for an
   * adapter shared with other code.
   * @default true
   */
  disconnectOnClose?: boolean
  /**
   * The clock, in milliseconds since the epoch, used for expiry. Inject one
   * to test expiry without sleeping.
   * @default Date.now
   */
  clock?: () => number
}

/** A constructor of {@link KeyvCache} or a subclass, as its static `factory` uses through `this`. */
export type KeyvCacheClass = new (options: KeyvCacheOptions) => KeyvCache

const HASHED = '~h~'
const OWN_OPTIONS = new Set([
  'store',
  'maxKeyLength',
  'clearBatchSize',
  'disconnectOnClose',
  'clock',
])

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (value === null) return 'null'
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object'
  return typeof value
}

function positiveInteger(value: unknown, name: string, fallback: number): number {
  if (value === undefined || value === null) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new ConfigError(
      'CACHE_OPTIONS',
      `${name} must be a positive integer, got ${describe(value)}`,
    )
  }
  return value
}

/** Whether `value` has the methods Keyv itself requires of a store. */
function isStore(value: unknown): value is KeyvStoreLike {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return false
  const s = value as Record<string, unknown>
  return ['get', 'set', 'delete', 'clear'].every((m) => typeof s[m] === 'function')
}

/** Whether `store` is a `Keyv` instance (which prefixes keys with its namespace itself). */
function isKeyvInstance(store: KeyvStoreLike): boolean {
  const s = store as unknown as Record<string, unknown>
  return typeof s.getRaw === 'function' && typeof s.store === 'object' && s.store !== null
}

/**
 * Resolves `CACHE_OPTIONS.store`: an adapter, a `Keyv` instance, or a
 * function returning one.
 * @throws {ConfigError} naming `CACHE_OPTIONS.store`.
 */
function storeOf(option: unknown): KeyvStoreLike {
  let store = option
  if (typeof store === 'function' && !isStore(store)) {
    try {
      store = (store as () => unknown)()
    } catch (error) {
      throw new ConfigError(
        'CACHE_OPTIONS.store',
        `the store factory threw: ${(error as Error).message}`,
        {
          cause: error,
        },
      )
    }
    if (store instanceof Promise) {
      throw new ConfigError(
        'CACHE_OPTIONS.store',
        'the store factory returned a Promise; return the adapter itself (Keyv adapters connect lazily)',
      )
    }
  }
  if (store === undefined || store === null) {
    throw new ConfigError(
      'CACHE_OPTIONS.store',
      'KeyvCache needs a Keyv storage adapter (new KeyvPostgres(...), new KeyvSqlite(...)), a Keyv instance, or a function returning one',
    )
  }
  if (!isStore(store)) {
    throw new ConfigError(
      'CACHE_OPTIONS.store',
      `expected a Keyv storage adapter or Keyv instance (an object with get, set, delete and clear), got ${describe(store)}`,
    )
  }
  return store
}

/**
 * The stored form of an entry: `<expiry>:<base64>`, where `<expiry>` is the
 * absolute expiry in milliseconds since the epoch (empty for never) and the
 * base64 is cachette's byte format ({@link encodeValue}: a safe integer as
 * decimal digits, a string as `"` + UTF-8, anything else as `!` + the
 * serializer's bytes). A string, because every adapter keeps strings (SQL
 * `TEXT` columns cannot hold arbitrary bytes).
 */
function pack(bytes: Buffer, expiresAt: number): string {
  return `${expiresAt === 0 ? '' : expiresAt}:${bytes.toString('base64')}`
}

interface Unpacked {
  readonly expiresAt: number
  readonly body: string
}

function unpack(raw: unknown): Unpacked {
  if (typeof raw !== 'string') throw new CorruptEntryError(`not a string but ${describe(raw)}`)
  const colon = raw.indexOf(':')
  if (colon < 0) throw new CorruptEntryError('no expiry field')
  const head = raw.slice(0, colon)
  const expiresAt = head === '' ? 0 : Number(head)
  if (!Number.isSafeInteger(expiresAt) || expiresAt < 0) {
    throw new CorruptEntryError('the expiry field is not a time')
  }
  return { expiresAt, body: raw.slice(colon + 1) }
}

/**
 * A cache on any Keyv storage adapter, or on a `Keyv` instance. See the
 * module documentation.
 *
 * Each entry is one key of the store holding `<expiry>:<base64 of
 * cachette's byte format>`, so values keep their type (Date, Map, Buffer,
 * BigInt, ...) whatever the store, and expiry is checked on every read, also
 * on adapters that ignore the TTL (SQL ones keep expired rows until they are
 * overwritten, deleted or cleared). The TTL is still handed to the adapter,
 * in milliseconds, for those that honour it (Redis, Memcached, Mongo).
 *
 * Keys are `keyPrefix + key` (with the adapter's namespace and `:` before,
 * as Keyv would, when the adapter has one and is not a `Keyv` instance);
 * a key longer than `maxKeyLength`, or holding NUL, is stored under
 * `keyPrefix + '~h~' + sha256(key)`; a key that is not well-formed UTF-16
 * is escaped (core/keys.ts `storageKey`).
 *
 * What each operation costs, in calls to the store (a call may be more than
 * one query: `@keyv/postgres`'s `delete` selects then deletes):
 *
 * | operation | calls | native or emulated |
 * | --- | --- | --- |
 * | `get`, `set`, `delete` | 1 | native |
 * | `has` | 1 (`get`, as the expiry is in the value) | emulated |
 * | `add` | 2 (`get`, then `set`), **not atomic** | emulated |
 * | `inc`/`dec` | 2 (`get`, then `set`), **not atomic** | emulated |
 * | `getMany`, `setMany`, `deleteMany` | 1 where the adapter has it, else 1 per key in parallel | native or emulated |
 * | `clear` without a key prefix | 1 (`clear`: the adapter's namespace, or everything it holds) | native |
 * | `clear` with a key prefix | a scan of the adapter's `iterator`, then 1 `deleteMany` per 500 keys | emulated |
 * | `keys` | a scan of the adapter's `iterator` | emulated |
 *
 * `clear` with a prefix and `keys` need an iterable adapter (SQL, Redis,
 * Mongo; for a `Keyv` instance, one whose adapter Keyv iterates); others
 * reject them. `keys` skips hashed keys, which cannot be turned back.
 *
 * Errors of the store reject the operation, which the `Cache` facade turns
 * into a miss (or `false`) and logs; the adapter's `'error'` events are
 * logged (once per code) instead of crashing the process.
 */
export class KeyvCache extends BaseCache {
  /**
   * Builds the cache from configuration: `CACHE_OPTIONS: { store }`
   * (required; an adapter, a `Keyv` instance or a function returning one),
   * `CACHE_KEY_PREFIX`, `CACHE_DEFAULT_TIMEOUT`, and `CACHE_OPTIONS`
   * `max_key_length`, `clear_batch_size`, `disconnect_on_close`, `clock`.
   * @throws {ConfigError} naming `CACHE_OPTIONS.store` or the unknown option.
   */
  static factory(
    this: KeyvCacheClass,
    _app: object | undefined,
    config: Readonly<Record<string, unknown>>,
    _args: unknown[],
    options: BackendFactoryOptions,
  ): KeyvCache {
    const { defaultTimeout, ignoreDeleteManyErrors, serializer, logger, ...rest } = options
    for (const k of Object.keys(rest)) {
      if (!OWN_OPTIONS.has(k)) {
        throw new ConfigError(
          'CACHE_OPTIONS',
          `KeyvCache has no option ${JSON.stringify(k)}; known: ${[...OWN_OPTIONS].join(', ')}`,
        )
      }
    }
    return new this({
      ...(rest as KeyvCacheOptions),
      defaultTimeout,
      ignoreDeleteManyErrors,
      serializer,
      logger,
      keyPrefix: config.CACHE_KEY_PREFIX as string | undefined,
    })
  }

  /** The adapter (or `Keyv` instance) the entries live in. */
  readonly store: KeyvStoreLike
  /** Prepended to every key. */
  readonly keyPrefix: string
  readonly #name: string
  readonly #namespace: string
  readonly #maxKeyLength: number
  readonly #clearBatchSize: number
  readonly #disconnectOnClose: boolean
  readonly #clock: () => number
  readonly #onError: (error: unknown) => void

  /**
   * @throws {ConfigError} naming `CACHE_OPTIONS.store` when the store is
   * missing or is not a Keyv adapter, or the key of another bad option.
   */
  constructor(options: KeyvCacheOptions = {}) {
    super(options)
    this.#name = new.target.name || 'KeyvCache'
    const prefix = options.keyPrefix ?? ''
    if (typeof prefix !== 'string') {
      throw new ConfigError('CACHE_KEY_PREFIX', `expected a string, got ${describe(prefix)}`)
    }
    this.keyPrefix = prefix
    this.store = storeOf(options.store)
    const ns = this.store.namespace
    this.#namespace =
      typeof ns === 'string' && ns !== '' && !isKeyvInstance(this.store) ? `${ns}:` : ''
    this.#maxKeyLength = positiveInteger(options.maxKeyLength, 'maxKeyLength', 255)
    if (this.#namespace.length + prefix.length + HASHED.length + 64 > this.#maxKeyLength) {
      throw new ConfigError(
        'CACHE_KEY_PREFIX',
        `too long for keys of at most ${this.#maxKeyLength} characters (maxKeyLength)`,
      )
    }
    this.#clearBatchSize = positiveInteger(options.clearBatchSize, 'clearBatchSize', 500)
    this.#disconnectOnClose = options.disconnectOnClose ?? true
    const clock = options.clock ?? Date.now
    if (typeof clock !== 'function') {
      throw new ConfigError('CACHE_OPTIONS', `clock must be a function, got ${describe(clock)}`)
    }
    this.#clock = clock
    this.#onError = (error: unknown) => {
      const e = error as { code?: unknown; message?: unknown } | undefined
      const code = typeof e?.code === 'string' ? e.code : 'ERROR'
      warnOnce(
        this.logger,
        `CACHETTE_KEYV_STORE_${code}`,
        `${this.#name}: the Keyv store reported an error: ${String(e?.message ?? error)}`,
      )
    }
    // An adapter's 'error' event without a listener would crash the process.
    if (typeof this.store.on === 'function') this.store.on('error', this.#onError)
  }

  /** The store's key for a cachette key. */
  #key(key: string): string {
    const stored = this.#namespace + this.keyPrefix + storageKey(key)
    if (stored.length <= this.#maxKeyLength && !key.startsWith(HASHED) && !key.includes('\0')) {
      return stored
    }
    const digest = createHash('sha256').update(key, 'utf16le').digest('hex')
    return `${this.#namespace}${this.keyPrefix}${HASHED}${digest}`
  }

  #expiry(timeout: number | undefined): number {
    const seconds = this.ttl(timeout)
    return seconds === 0 ? 0 : this.#clock() + Math.round(seconds * 1000)
  }

  #encode(value: unknown, expiresAt: number): string {
    return pack(encodeValue(value, this.serializer), expiresAt)
  }

  /** The value of a stored entry, or `undefined` for a miss, an expired or an unreadable entry. */
  #decode(raw: unknown, key: string): unknown {
    if (raw === undefined || raw === null) return undefined
    let entry: Unpacked
    try {
      entry = unpack(raw)
      if (entry.expiresAt !== 0 && entry.expiresAt <= this.#clock()) return undefined
      return decodeValue(Buffer.from(entry.body, 'base64'), this.serializer)
    } catch (error) {
      if (!(error instanceof CorruptEntryError)) throw error
      warnOnce(
        this.logger,
        'CACHETTE_KEYV_CORRUPT_ENTRY',
        `${this.#name}: an entry could not be decoded and reads as a miss (${error.message}): ${JSON.stringify(key)}`,
      )
      return undefined
    }
  }

  /** The adapter's TTL, in milliseconds, for an entry expiring at `expiresAt` (`undefined` = none). */
  #ttlMs(expiresAt: number): number | undefined {
    return expiresAt === 0 ? undefined : Math.max(1, expiresAt - this.#clock())
  }

  async get(key: string): Promise<unknown> {
    return this.#decode(await this.store.get(this.#key(key)), key)
  }

  async set(key: string, value: unknown, timeout?: number): Promise<boolean> {
    const expiresAt = this.#expiry(timeout)
    const raw = this.#encode(value, expiresAt)
    await this.store.set(this.#key(key), raw, this.#ttlMs(expiresAt))
    return true
  }

  /** Emulated and not atomic: a `get`, then a `set` when the key is absent or expired. */
  async add(key: string, value: unknown, timeout?: number): Promise<boolean> {
    const expiresAt = this.#expiry(timeout)
    const raw = this.#encode(value, expiresAt)
    const k = this.#key(key)
    if (this.#decode(await this.store.get(k), key) !== undefined) return false
    await this.store.set(k, raw, this.#ttlMs(expiresAt))
    return true
  }

  async delete(key: string): Promise<boolean> {
    return (await this.store.delete(this.#key(key))) === true
  }

  /** Emulated: one `get` (the expiry is in the value, so the adapter's `has` cannot tell). */
  async has(key: string): Promise<boolean> {
    return (await this.get(key)) !== undefined
  }

  override async getMany(keys: readonly string[]): Promise<unknown[]> {
    if (keys.length === 0) return []
    const names = keys.map((k) => this.#key(k))
    const raws =
      typeof this.store.getMany === 'function'
        ? await this.store.getMany(names)
        : await Promise.all(names.map((n) => this.store.get(n)))
    return keys.map((k, i) => this.#decode(raws[i], k))
  }

  override async setMany(
    entries: readonly (readonly [string, unknown])[],
    timeout?: number,
  ): Promise<string[]> {
    if (entries.length === 0) return []
    const expiresAt = this.#expiry(timeout)
    // Encode everything first: one unstorable value writes nothing.
    const rows: KeyvEntryLike[] = entries.map(([k, v]) => {
      const row: KeyvEntryLike = { key: this.#key(k), value: this.#encode(v, expiresAt) }
      const ttl = this.#ttlMs(expiresAt)
      if (ttl !== undefined) row.ttl = ttl
      return row
    })
    if (typeof this.store.setMany === 'function') await this.store.setMany(rows)
    else await Promise.all(rows.map((r) => this.store.set(r.key, r.value, r.ttl)))
    return entries.map(([k]) => k)
  }

  override async deleteMany(keys: readonly string[]): Promise<string[]> {
    if (keys.length === 0) return []
    const names = keys.map((k) => this.#key(k))
    if (typeof this.store.deleteMany === 'function') await this.store.deleteMany(names)
    else await Promise.all(names.map((n) => this.store.delete(n)))
    return [...keys]
  }

  /** Emulated and not atomic: a `get`, then a `set` with the default timeout. */
  override async inc(key: string, delta: number): Promise<number> {
    const current = await this.get(key)
    const next = integerOf(key, current) + delta
    await this.set(key, next)
    return next
  }

  /**
   * Without a key prefix, the adapter's `clear` (its namespace, or every key
   * it holds: a whole SQL table). With one, only the keys under the prefix,
   * found by scanning the adapter's `iterator`.
   */
  async clear(): Promise<boolean> {
    if (this.keyPrefix === '') {
      await this.store.clear()
      return true
    }
    const own = this.#namespace + this.keyPrefix
    // Listed in full before deleting: adapters that page with OFFSET (sqlite)
    // would skip entries if rows went away under the scan.
    const names: string[] = []
    for await (const [name] of this.#scan()) if (name.startsWith(own)) names.push(name)
    for (let i = 0; i < names.length; i += this.#clearBatchSize) {
      const batch = names.slice(i, i + this.#clearBatchSize)
      if (typeof this.store.deleteMany === 'function') await this.store.deleteMany(batch)
      else await Promise.all(batch.map((n) => this.store.delete(n)))
    }
    return true
  }

  /** `[store key, raw value]` pairs from the adapter's iterator. */
  async *#scan(): AsyncIterable<[string, unknown]> {
    const iterate = this.store.iterator
    if (typeof iterate !== 'function') {
      throw new TypeError(
        `${this.#name}: the Keyv store cannot list its keys (no iterator), so clear() with a key prefix and keys() are not available; clear() without a prefix uses the store's own clear`,
      )
    }
    const ns = this.#namespace === '' ? undefined : this.#namespace.slice(0, -1)
    for await (const pair of iterate.call(this.store, ns)) {
      if (!Array.isArray(pair) || typeof pair[0] !== 'string') continue
      yield [pair[0], pair[1]]
    }
  }

  /**
   * The live keys under `prefix`, by a scan of the adapter's `iterator`
   * (emulated: every entry of the store's namespace is read). Hashed keys are
   * skipped.
   */
  async *keys(prefix: string): AsyncIterable<string> {
    const own = this.#namespace + this.keyPrefix
    for await (const [name, raw] of this.#scan()) {
      if (!name.startsWith(own)) continue
      const rest = name.slice(own.length)
      if (rest.startsWith(HASHED)) continue
      const key = keyFromStorage(rest)
      if (key === undefined || !key.startsWith(prefix)) continue
      let entry: Unpacked
      try {
        entry = unpack(raw)
      } catch {
        continue
      }
      if (entry.expiresAt !== 0 && entry.expiresAt <= this.#clock()) continue
      yield key
    }
  }

  /** Disconnects the adapter (unless `disconnectOnClose` is false). */
  override async close(): Promise<void> {
    if (this.#disconnectOnClose && typeof this.store.disconnect === 'function') {
      await this.store.disconnect()
    }
  }
}
