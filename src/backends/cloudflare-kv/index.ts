/**
 * `cachette/cloudflare`: CloudflareKVCache, a backend that stores in a
 * Cloudflare Workers KV namespace, for apps on Cloudflare Workers (workerd).
 *
 * @example
 * import { Cache } from 'cachette'
 * import { CloudflareKVCache } from 'cachette/cloudflare'
 *
 * export default {
 *   async fetch(request: Request, env: { CACHE: KVNamespace }) {
 *     const cache = new Cache({ CACHE_TYPE: CloudflareKVCache, CACHE_OPTIONS: { namespace: env.CACHE } })
 *     // ...
 *   },
 * }
 * @packageDocumentation
 *
 * @module cachette/cloudflare
 */
import {
  type BackendFactoryOptions,
  BaseCache,
  type BaseCacheOptions,
  integerOf,
} from '../../core/backend.js'
import { decodeOrMiss, encodeValue } from '../../core/codec.js'
import { ConfigError } from '../../core/errors.js'
import { keyFromStorage, storageKey } from '../../core/keys.js'
import { warnOnce } from '../../core/log.js'
import { portableSerializer } from '../../core/portable.js'

/** What `put` takes as options: the subset of Workers KV's `KVNamespacePutOptions` cachette uses. */
export interface KVPutOptions {
  /** Seconds from now until KV deletes the entry (at least 60). */
  expirationTtl?: number
  /** Small JSON metadata kept with the entry (at most 1024 bytes serialized). */
  metadata?: unknown
}

/** One key of a `list()` page. */
export interface KVListKey {
  /** The key's name. */
  name: string
  /** When KV deletes it, in seconds since the epoch. */
  expiration?: number
  /** The metadata stored with it. */
  metadata?: unknown
}

/** A page of `list()`. */
export interface KVListResult {
  /** The keys of this page. */
  keys: KVListKey[]
  /** Whether this is the last page. */
  list_complete: boolean
  /** Where the next page starts, when there is one. */
  cursor?: string
}

/**
 * The part of a Workers KV namespace binding (`env.CACHE`, type
 * `KVNamespace` of `@cloudflare/workers-types`) that CloudflareKVCache
 * calls. Miniflare's `getKVNamespace()` gives one too.
 */
export interface KVNamespaceLike {
  /** Reads a value and its metadata. */
  getWithMetadata(
    key: string,
    options: { type: 'arrayBuffer' },
  ): Promise<{ value: ArrayBuffer | null; metadata: unknown }>
  /** Writes a value. */
  put(key: string, value: ArrayBuffer | ArrayBufferView, options?: KVPutOptions): Promise<void>
  /** Removes a key. */
  delete(key: string): Promise<void>
  /** Lists keys by prefix, a page at a time. */
  list(options: { prefix?: string; cursor?: string; limit?: number }): Promise<KVListResult>
}

/** Options of {@link CloudflareKVCache}. */
export interface CloudflareKVCacheOptions extends BaseCacheOptions {
  /**
   * The KV namespace binding (`env.CACHE`). Required. Give it in
   * `CACHE_OPTIONS: { namespace: env.CACHE }`.
   */
  namespace?: KVNamespaceLike
  /**
   * Prepended to every key (`CACHE_KEY_PREFIX`). `clear()` and `keys()` only
   * touch keys under it, so several apps can share one namespace.
   * @default ''
   */
  keyPrefix?: string
  /**
   * The clock the expiry kept with each entry is checked against, in
   * milliseconds since the epoch; for tests.
   * @default Date.now
   */
  clock?: () => number
}

/** KV's shortest `expirationTtl`, in seconds. */
export const KV_MIN_TTL_SECONDS = 60

/** KV's longest key, in UTF-8 bytes. */
export const KV_MAX_KEY_BYTES = 512

/** What each entry keeps as KV metadata: when it expires (ms since the epoch, 0 = never), and its key when the name is a digest. */
interface EntryMetadata {
  e: number
  k?: string
}

const encoder = new TextEncoder()

const OWN_OPTIONS = new Set(['namespace', 'keyPrefix', 'clock'])

function isNamespace(value: unknown): value is KVNamespaceLike {
  const v = value as Record<string, unknown> | null | undefined
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.getWithMetadata === 'function' &&
    typeof v.put === 'function' &&
    typeof v.delete === 'function' &&
    typeof v.list === 'function'
  )
}

function expiryOf(metadata: unknown): number {
  const e = (metadata as Partial<EntryMetadata> | null | undefined)?.e
  return typeof e === 'number' ? e : 0
}

/**
 * Stores entries in a Cloudflare Workers KV namespace: one KV key per cache
 * key, named `keyPrefix + key`, with the value's bytes (cachette's byte
 * format with the portable serializer by default, so entries read the same
 * in workerd and in Node tools) and its expiry as KV metadata.
 *
 * - **Timeouts**: KV deletes an entry at its `expirationTtl`, which cannot be
 *   under 60 seconds. So every entry also keeps its exact expiry in its
 *   metadata, and a read after it is a miss: a 5-second timeout expires after
 *   5 seconds, and KV removes the key itself 60 seconds after the write.
 *   Timeout `0` means no `expirationTtl`: the entry stays until deleted or
 *   evicted.
 * - **Consistency**: KV is eventually consistent across locations (a write
 *   can take up to 60 seconds to be seen elsewhere), so a cache hit may be a
 *   value another location has already replaced or deleted.
 * - **Not atomic**: KV has no compare-and-set, so `add` (read, then write)
 *   and `inc`/`dec` (read, add, write) can lose a race: two concurrent `add`
 *   calls may both succeed and concurrent increments may lose updates. The
 *   contract suite runs with `atomicIncrement: false`. Do not build locks or
 *   counters that must be exact on it.
 * - **Keys** longer than KV's 512 bytes are stored under `keyPrefix` plus a
 *   SHA-256 digest, with the key in the metadata so `keys()` still lists it.
 * - `clear()` lists and deletes the keys under `keyPrefix` only; without a
 *   prefix that is the whole namespace, and it warns once.
 *
 * Works wherever a binding can be had: in a Worker (`env.CACHE`), and in Node
 * through Miniflare's `getKVNamespace()`.
 *
 * @example
 * const cache = new Cache({ CACHE_TYPE: CloudflareKVCache, CACHE_KEY_PREFIX: 'app/', CACHE_OPTIONS: { namespace: env.CACHE } })
 */
export class CloudflareKVCache extends BaseCache {
  /**
   * Builds the backend from configuration: `CACHE_OPTIONS.namespace` (the
   * binding), `CACHE_KEY_PREFIX`, `CACHE_DEFAULT_TIMEOUT`, and
   * `CACHE_SERIALIZER` (the portable serializer when it is not set).
   * @throws {ConfigError} naming `CACHE_OPTIONS.namespace` when it is missing or not a KV namespace
   */
  static factory(
    _app: object | undefined,
    config: Readonly<Record<string, unknown>>,
    _args: unknown[],
    options: BackendFactoryOptions,
  ): CloudflareKVCache {
    for (const key of Object.keys(options)) {
      if (
        !OWN_OPTIONS.has(key) &&
        !['defaultTimeout', 'ignoreDeleteManyErrors', 'serializer', 'logger'].includes(key)
      ) {
        throw new ConfigError(
          `CACHE_OPTIONS.${key}`,
          'unknown option of CloudflareKVCache (it takes namespace, keyPrefix, clock)',
        )
      }
    }
    return new CloudflareKVCache({
      namespace: options.namespace as KVNamespaceLike | undefined,
      keyPrefix: (options.keyPrefix ?? config.CACHE_KEY_PREFIX) as string | undefined,
      clock: options.clock as (() => number) | undefined,
      defaultTimeout: options.defaultTimeout,
      ignoreDeleteManyErrors: options.ignoreDeleteManyErrors,
      serializer: config.CACHE_SERIALIZER === undefined ? portableSerializer : options.serializer,
      logger: options.logger,
    })
  }

  /** The KV namespace entries live in. */
  readonly namespace: KVNamespaceLike
  /** Prepended to every key. */
  readonly keyPrefix: string
  readonly #clock: () => number

  /**
   * @throws {ConfigError} naming `CACHE_OPTIONS.namespace` when `namespace` is missing or not a KV namespace,
   * or `CACHE_KEY_PREFIX` when `keyPrefix` is not a string
   */
  constructor(options: CloudflareKVCacheOptions = {}) {
    super({ ...options, serializer: options.serializer ?? portableSerializer })
    if (!isNamespace(options.namespace)) {
      throw new ConfigError(
        'CACHE_OPTIONS.namespace',
        'CloudflareKVCache needs a KV namespace binding (CACHE_OPTIONS: { namespace: env.CACHE })',
      )
    }
    const prefix = options.keyPrefix ?? ''
    if (typeof prefix !== 'string') {
      throw new ConfigError('CACHE_KEY_PREFIX', 'CloudflareKVCache: keyPrefix must be a string')
    }
    if (options.clock !== undefined && typeof options.clock !== 'function') {
      throw new ConfigError('CACHE_OPTIONS.clock', 'CloudflareKVCache: clock must be a function')
    }
    this.namespace = options.namespace
    this.keyPrefix = prefix
    this.#clock = options.clock ?? Date.now
  }

  /** The KV name of `key`, and whether it is a digest (then the key goes in the metadata). */
  async #name(key: string): Promise<[string, boolean]> {
    const name = this.keyPrefix + storageKey(key)
    if (encoder.encode(name).length <= KV_MAX_KEY_BYTES) return [name, false]
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(key)))
    const hex = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('')
    return [`${this.keyPrefix}~h~${hex}`, true]
  }

  /** The live entry's bytes, or `undefined` (missing, or past its expiry). */
  async #read(key: string): Promise<Uint8Array | undefined> {
    const [name] = await this.#name(key)
    const { value, metadata } = await this.namespace.getWithMetadata(name, { type: 'arrayBuffer' })
    if (value === null) return undefined
    const expires = expiryOf(metadata)
    if (expires !== 0 && this.#clock() >= expires) return undefined
    return new Uint8Array(value)
  }

  async get(key: string): Promise<unknown> {
    const bytes = await this.#read(key)
    if (bytes === undefined) return undefined
    return decodeOrMiss(bytes, this.serializer, {
      logger: this.logger,
      code: 'CACHETTE_KV_CORRUPT',
      backend: 'CloudflareKVCache',
      key,
    })
  }

  /** The `put` of an entry: encodes first, so a value that cannot be stored throws before anything is written. */
  async #prepare(
    key: string,
    value: unknown,
    ttl: number,
  ): Promise<[string, ArrayBuffer, KVPutOptions]> {
    const bytes = encodeValue(value, this.serializer)
    const [name, digest] = await this.#name(key)
    const metadata: EntryMetadata = { e: ttl === 0 ? 0 : this.#clock() + ttl * 1000 }
    if (digest) metadata.k = key
    const options: KVPutOptions = { metadata }
    if (ttl !== 0) options.expirationTtl = Math.max(KV_MIN_TTL_SECONDS, Math.ceil(ttl))
    // An ArrayBuffer of its own: KV bindings (and Miniflare's proxy of them) refuse a pooled Buffer view.
    const body = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)
    return [name, body as ArrayBuffer, options]
  }

  async set(key: string, value: unknown, timeout?: number): Promise<boolean> {
    const [name, body, options] = await this.#prepare(key, value, this.ttl(timeout))
    await this.namespace.put(name, body, options)
    return true
  }

  /** Encodes every value before writing any: one that cannot be stored means nothing is written. */
  override async setMany(
    entries: readonly (readonly [string, unknown])[],
    timeout?: number,
  ): Promise<string[]> {
    const ttl = this.ttl(timeout)
    const puts = await Promise.all(entries.map(([k, v]) => this.#prepare(k, v, ttl)))
    await Promise.all(puts.map(([name, body, options]) => this.namespace.put(name, body, options)))
    return entries.map(([k]) => k)
  }

  /** Not atomic: a read, then a write (see the class comment). */
  async add(key: string, value: unknown, timeout?: number): Promise<boolean> {
    if (await this.has(key)) {
      // Still reject what could never be stored, as every backend does.
      encodeValue(value, this.serializer)
      return false
    }
    return this.set(key, value, timeout)
  }

  async delete(key: string): Promise<boolean> {
    const existed = await this.has(key)
    const [name] = await this.#name(key)
    await this.namespace.delete(name)
    return existed
  }

  async has(key: string): Promise<boolean> {
    return (await this.#read(key)) !== undefined
  }

  /** Not atomic: a read, an addition and a write, keeping no timeout of the old entry (the default applies). */
  override async inc(key: string, delta: number): Promise<number> {
    const next = integerOf(key, await this.get(key)) + delta
    await this.set(key, next)
    return next
  }

  /** The live entries under `prefix`, from KV's `list()` (eventually consistent across locations). */
  async *keys(prefix: string): AsyncIterable<string> {
    const now = this.#clock()
    for await (const entry of this.#list(this.keyPrefix + storageKey(prefix))) {
      const expires = expiryOf(entry.metadata)
      if (expires !== 0 && now >= expires) continue
      const own = (entry.metadata as Partial<EntryMetadata> | undefined)?.k
      if (typeof own === 'string') {
        if (own.startsWith(prefix)) yield own
        continue
      }
      const key = keyFromStorage(entry.name.slice(this.keyPrefix.length))
      if (key?.startsWith(prefix)) yield key
    }
    // Keys stored as digests do not share the prefix's name; list them too.
    if (prefix !== '') {
      for await (const entry of this.#list(`${this.keyPrefix}~h~`)) {
        const own = (entry.metadata as Partial<EntryMetadata> | undefined)?.k
        const expires = expiryOf(entry.metadata)
        if (typeof own === 'string' && own.startsWith(prefix) && (expires === 0 || now < expires)) {
          yield own
        }
      }
    }
  }

  async *#list(prefix: string): AsyncIterable<KVListKey> {
    let cursor: string | undefined
    for (;;) {
      const page = await this.namespace.list(cursor === undefined ? { prefix } : { prefix, cursor })
      yield* page.keys
      if (page.list_complete || page.cursor === undefined || page.cursor === '') return
      cursor = page.cursor
    }
  }

  /** Deletes every key under `keyPrefix` (the whole namespace without one, with a warning once). */
  async clear(): Promise<boolean> {
    if (this.keyPrefix === '') {
      warnOnce(
        this.logger,
        'CACHETTE_KV_CLEAR_ALL',
        'CloudflareKVCache.clear(): no key prefix, so every key in the KV namespace is deleted; set CACHE_KEY_PREFIX to share a namespace',
      )
    }
    const names: string[] = []
    for await (const entry of this.#list(this.keyPrefix)) names.push(entry.name)
    await Promise.all(names.map((name) => this.namespace.delete(name)))
    return true
  }
}
