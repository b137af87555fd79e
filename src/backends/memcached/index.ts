/**
 * Memcached backends, configured by Flask-Caching's `CACHE_MEMCACHED_*` keys
 * or by camelCase options: {@link MemcachedCache} (one or more servers),
 * {@link SASLMemcachedCache} (with SASL authentication) and
 * {@link SpreadSASLMemcachedCache} (values larger than memcached's item size
 * limit stored as chunks). No client package is needed: cachette speaks
 * memcached's binary protocol itself (see docs/ARCHITECTURE.md for why).
 *
 * ```ts
 * import { Cache } from 'cachette'
 * import { MemcachedCache } from 'cachette/memcached'
 * const cache = new Cache({
 *   CACHE_TYPE: MemcachedCache,
 *   CACHE_MEMCACHED_SERVERS: ['10.0.0.1:11211', '10.0.0.2:11211'],
 * })
 * await cache.set('greeting', 'hello', 60)
 * ```
 *
 * Keys are spread over the servers by consistent hashing (ketama), so adding
 * a server moves only about `1/n` of the keys. Any key works: one memcached
 * cannot take (over 250 bytes with the prefix, spaces, control characters)
 * is replaced by a SHA-256 of it. Timeouts over 30 days are sent as absolute
 * times, as memcached requires.
 *
 * **When a server is down** calls on its keys fail fast and the cache misses
 * (the app keeps serving): a call gets at most `commandTimeout` (1 s) for its
 * answer and a connection attempt `connectTimeout` (1 s); after a failure the
 * server is skipped, without network traffic, for a retry delay that doubles
 * from 50 ms up to `maxRetryDelay` (1 s), then the next call reconnects. Keys
 * are not moved to the other servers meanwhile (that would serve stale values
 * when the server returns).
 * @packageDocumentation
 */
import type { ConnectionOptions as TlsOptions } from 'node:tls'
import {
  type BackendFactoryOptions,
  BaseCache,
  type BaseCacheOptions,
  integerOf,
} from '../../core/backend.js'
import { decodeOrMiss, encodeValue } from '../../core/codec.js'
import {
  BackendError,
  ConfigError,
  DeleteManyError,
  InvalidTimeoutError,
  NotAnIntegerError,
} from '../../core/errors.js'
import { warnOnce } from '../../core/log.js'
import { Chunks, DEFAULT_CHUNK_SIZE, DEFAULT_MAX_CHUNKS, parseManifest } from './chunks.js'
import {
  Connection,
  type ConnectionSettings,
  MemcachedAuthError,
  MemcachedUnavailableError,
  type ServerAddress,
} from './connection.js'
import { ItemLimits } from './itemsize.js'
import { wireKey } from './keys.js'
import { Namespaces } from './namespaces.js'
import {
  checkCount,
  checkCredentials,
  checkMs,
  checkPrefix,
  checkTls,
  MEMCACHED_OPTIONS,
  parseServers,
} from './options.js'
import {
  counterExtras,
  Op,
  type Request,
  type Response,
  Status,
  statusText,
  storeExtras,
} from './protocol.js'
import { HashRing } from './ring.js'
import { serverStats, summedStats } from './stats.js'

// One job per module: protocol.ts (framing), connection.ts (one pipelined
// socket per server), ring.ts (ketama), keys.ts (what memcached is sent),
// namespaces.ts (clear() by namespace), itemsize.ts (the item size limit),
// chunks.ts (SpreadSASLMemcachedCache's chunks), stats.ts (`stats`), and
// options.ts (configuration); the backends below put them together.

export { MemcachedAuthError, MemcachedUnavailableError }

/** Options of {@link MemcachedCache}. */
export interface MemcachedCacheOptions extends BaseCacheOptions {
  /**
   * The servers: `'host:port'`, `'host'` (port 11211), `'[::1]:11211'` or a
   * Unix socket path, as a list or one comma-separated string.
   * `CACHE_MEMCACHED_SERVERS` sets it.
   * @default ['127.0.0.1:11211']
   */
  servers?: string | readonly string[]
  /**
   * Prepended to every key. With a prefix, `clear()` starts a new namespace
   * instead of flushing the servers (see {@link MemcachedCache.clear}).
   * `CACHE_KEY_PREFIX` sets it (default `'flask_cache_'` there); printable
   * ASCII, at most 160 characters.
   * @default ''
   */
  keyPrefix?: string
  /** SASL user name (PLAIN); needs `password`. `CACHE_MEMCACHED_USERNAME`. */
  username?: string
  /** SASL password. `CACHE_MEMCACHED_PASSWORD`. */
  password?: string
  /**
   * Without a key prefix, `clear()` refuses (it could only flush every
   * server, other apps' data included); `true` lets it flush.
   * @default false
   */
  allowFlush?: boolean
  /** Milliseconds a call waits for its answer before the connection is dropped. @default 1000 */
  commandTimeout?: number
  /** Milliseconds a connection attempt may take. @default 1000 */
  connectTimeout?: number
  /** The longest pause, in milliseconds, before a failed server is tried again. @default 1000 */
  maxRetryDelay?: number
  /** Connect with TLS (memcached 1.6 `-Z`): `true` or `node:tls` connect options. */
  tls?: boolean | TlsOptions
  /**
   * Accepted for Flask-Caching compatibility and ignored: one pipelined
   * connection per server serves any number of concurrent calls.
   */
  poolSize?: number
  /** Accepted and ignored, as `poolSize`. */
  poolBlocking?: boolean
}

/** Options of {@link SpreadSASLMemcachedCache}. */
export interface SpreadSASLMemcachedCacheOptions extends MemcachedCacheOptions {
  /**
   * The largest value stored in one item; larger ones are split into chunks
   * of this size. Keep it below the servers' item size limit (`-I`, 1 MiB by
   * default) minus room for the key. `CACHE_OPTIONS: { chunksize }` sets it.
   * @default 1048064 (1 MiB - 512 bytes)
   */
  chunkSize?: number
  /** The most chunks one value may take; a larger value is a TypeError. `maxchunk`. @default 32 */
  maxChunks?: number
}

/** A constructor of {@link MemcachedCache} or a subclass, as its static `factory` uses through `this`. */
export type MemcachedCacheClass = new (options: SpreadSASLMemcachedCacheOptions) => MemcachedCache

const THIRTY_DAYS = 60 * 60 * 24 * 30
const EMPTY = Buffer.alloc(0)

/** The error of a response that is none of those the caller expects. */
function errorOf(label: string, r: Response): Error {
  if (r.status === Status.AuthError) {
    return new MemcachedAuthError(
      `${label}: the server requires SASL authentication; set CACHE_MEMCACHED_USERNAME and CACHE_MEMCACHED_PASSWORD`,
    )
  }
  return new BackendError(
    'ERR_CACHETTE_BACKEND_FAILED',
    `${label}: memcached answered ${statusText(r.status)}`,
  )
}

/**
 * A cache on one or more memcached servers (Flask-Caching's `MemcachedCache`),
 * over memcached's binary protocol with one pipelined connection per server.
 *
 * Differs from Flask-Caching on purpose:
 * - keys memcached cannot take are hashed (Flask: silently not cached);
 * - `add` stores with its timeout in one command, `inc`/`dec` are atomic
 *   (native `incr`, or compare-and-swap for decrements and negative values),
 *   and a counter `inc` creates gets the default timeout;
 * - `clear()` with a key prefix invalidates only this cache's keys through a
 *   namespace (Flask: `flush_all`, wiping every app on the servers);
 * - a value over the server's item size limit is not stored: `set` resolves
 *   `false` with a warning (use {@link SpreadSASLMemcachedCache} for those).
 */
export class MemcachedCache extends BaseCache {
  /**
   * Builds the cache from configuration: `CACHE_MEMCACHED_SERVERS`,
   * `CACHE_MEMCACHED_USERNAME`, `CACHE_MEMCACHED_PASSWORD`,
   * `CACHE_KEY_PREFIX` and `CACHE_OPTIONS` (`allowFlush`, `commandTimeout`,
   * `connectTimeout`, `maxRetryDelay`, `tls`, and for the spread cache
   * `chunksize`/`maxchunk`). An unknown option is a {@link ConfigError}.
   */
  static factory(
    this: MemcachedCacheClass,
    _app: object | undefined,
    config: Readonly<Record<string, unknown>>,
    _args: unknown[],
    options: BackendFactoryOptions,
  ): MemcachedCache {
    const { defaultTimeout, ignoreDeleteManyErrors, serializer, logger, ...rest } = options
    for (const k of Object.keys(rest)) {
      if (!MEMCACHED_OPTIONS.has(k)) {
        throw new ConfigError(
          'CACHE_OPTIONS',
          `unknown option ${JSON.stringify(k)} for the Memcached backends; known: ${[...MEMCACHED_OPTIONS].join(', ')}`,
        )
      }
    }
    const { chunksize, maxchunk, ...own } = rest as Record<string, unknown>
    return new this({
      ...(own as SpreadSASLMemcachedCacheOptions),
      ...(chunksize !== undefined ? { chunkSize: chunksize as number } : {}),
      ...(maxchunk !== undefined ? { maxChunks: maxchunk as number } : {}),
      defaultTimeout,
      ignoreDeleteManyErrors,
      serializer,
      logger,
      servers: config.CACHE_MEMCACHED_SERVERS as string[] | undefined,
      username: config.CACHE_MEMCACHED_USERNAME as string | undefined,
      password: config.CACHE_MEMCACHED_PASSWORD as string | undefined,
      keyPrefix: config.CACHE_KEY_PREFIX as string | undefined,
    })
  }

  /** Prepended to every key. */
  readonly keyPrefix: string
  /** Whether `clear()` without a prefix may flush the servers. */
  readonly allowFlush: boolean
  /** The servers, as `host:port` labels, in configuration order. */
  readonly servers: readonly string[]
  readonly #name: string
  readonly #conns: Connection[]
  readonly #addresses: readonly ServerAddress[]
  readonly #settings: ConnectionSettings
  readonly #ring: HashRing
  /** Each server's namespace, when there is a prefix (namespaces.ts). */
  readonly #namespaces: Namespaces
  /** How large values are chunked: only when {@link MemcachedCache.chunksLargeValues} (chunks.ts). */
  readonly #chunks: Chunks | undefined
  /** Each server's item size limit (itemsize.ts). */
  readonly #itemLimits: ItemLimits

  /**
   * Whether values larger than `chunkSize` are stored as chunks: `false`
   * here, `true` in {@link SpreadSASLMemcachedCache}. Read once, during
   * construction (a prototype getter, so a subclass's answer is already in
   * place then); the chunk options are refused where it is `false`.
   */
  protected get chunksLargeValues(): boolean {
    return false
  }

  /**
   * Connects lazily, on the first call that needs a server.
   * @throws {ConfigError} naming the key of a malformed server, prefix or option.
   */
  constructor(options: SpreadSASLMemcachedCacheOptions = {}) {
    super(options)
    this.#name = new.target.name || 'MemcachedCache'
    const servers = parseServers(options.servers)
    this.keyPrefix = checkPrefix(options.keyPrefix)
    this.allowFlush = options.allowFlush === true
    const credentials = checkCredentials(options.username, options.password)
    const settings = {
      commandTimeout: checkMs(options.commandTimeout, 'commandTimeout', 1000),
      connectTimeout: checkMs(options.connectTimeout, 'connectTimeout', 1000),
      maxRetryDelay: checkMs(options.maxRetryDelay, 'maxRetryDelay', 1000),
      tls: checkTls(options.tls),
      ...credentials,
    }
    const spread = this.chunksLargeValues
    if (!spread && (options.chunkSize !== undefined || options.maxChunks !== undefined)) {
      throw new ConfigError(
        'CACHE_OPTIONS',
        `chunkSize and maxChunks apply to SpreadSASLMemcachedCache only`,
      )
    }
    const chunkSize = spread
      ? checkCount(options.chunkSize, 'chunkSize', DEFAULT_CHUNK_SIZE)
      : undefined
    const maxChunks = checkCount(options.maxChunks, 'maxChunks', DEFAULT_MAX_CHUNKS)
    this.servers = servers.map((s) => s.label)
    this.#addresses = servers
    this.#settings = settings
    this.#conns = servers.map((s) => new Connection(s, settings))
    this.#ring = new HashRing(this.servers)
    this.#namespaces = new Namespaces(this.#conns, this.keyPrefix, this.#name)
    this.#itemLimits = new ItemLimits(servers, settings, this.logger, this.#name)
    this.#chunks =
      chunkSize === undefined
        ? undefined
        : new Chunks(chunkSize, maxChunks, this.#name, {
            getManyRaw: (keys) => this.#getManyRaw(keys),
            store: (opcode, key, data, expiration) => this.#store(opcode, key, data, expiration),
            deleteRaw: (keys) => this.#deleteRaw(keys),
          })
  }

  /** The server (`host:port`) that holds `key`: ketama over `keyPrefix + key`. */
  serverOf(key: string): string {
    return this.servers[this.#ring.serverOf(this.keyPrefix + key)] as string
  }

  /** Runs the requests `build` makes for the server's namespace on one server (see namespaces.ts). */
  #onServer(server: number, build: (ns: string) => Request[]): Promise<(Response | null)[]> {
    return this.#namespaces.onServer(server, build)
  }

  /** Groups keys by server: `[server, positions]` pairs. */
  #byServer(keys: readonly string[]): Map<number, number[]> {
    const groups = new Map<number, number[]>()
    keys.forEach((key, i) => {
      const s = this.#ring.serverOf(this.keyPrefix + key)
      const g = groups.get(s)
      if (g === undefined) groups.set(s, [i])
      else g.push(i)
    })
    return groups
  }

  // ---- raw bytes -----------------------------------------------------------------

  #expiration(timeout: number | undefined): number {
    const seconds = this.ttl(timeout)
    if (seconds === 0) return 0
    if (!(seconds > 0) || !Number.isFinite(seconds)) {
      throw new InvalidTimeoutError(
        `${this.#name}: timeout must be a non-negative number of seconds, got ${seconds}`,
      )
    }
    const whole = Math.ceil(seconds)
    // memcached reads anything over 30 days as a unix time.
    if (whole <= THIRTY_DAYS) return whole
    const at = Math.floor(Date.now() / 1000) + whole
    if (at > 0xffffffff) {
      throw new InvalidTimeoutError(
        `${this.#name}: timeout ${seconds} s reaches past the year 2106`,
      )
    }
    return at
  }

  async #getRaw(key: string): Promise<Buffer | undefined> {
    const server = this.#ring.serverOf(this.keyPrefix + key)
    const [r] = await this.#onServer(server, (ns) => [{ opcode: Op.Get, key: wireKey(ns, key) }])
    if (r?.status === Status.Ok) return r.value
    if (r?.status === Status.NotFound) return undefined
    throw errorOf(`${this.#name}.get`, r as Response)
  }

  async #getManyRaw(keys: readonly string[]): Promise<(Buffer | undefined)[]> {
    const out = new Array<Buffer | undefined>(keys.length).fill(undefined)
    const fetch = async (server: number, positions: readonly number[] | undefined) => {
      const responses = await this.#onServer(server, (ns) =>
        positions === undefined
          ? keys.map((key) => ({ opcode: Op.GetQ, key: wireKey(ns, key) }))
          : positions.map((p) => ({ opcode: Op.GetQ, key: wireKey(ns, keys[p] as string) })),
      )
      const n = positions === undefined ? keys.length : positions.length
      for (let i = 0; i < n; i++) {
        const r = responses[i]
        if (r === null || r === undefined) continue
        if (r.status !== Status.Ok) throw errorOf(`${this.#name}.getMany`, r)
        out[positions === undefined ? i : (positions[i] as number)] = r.value
      }
    }
    // One server (the common case): one batch, no grouping.
    if (this.#conns.length === 1) {
      await fetch(0, undefined)
      return out
    }
    const settled = await Promise.allSettled(
      [...this.#byServer(keys)].map(([server, positions]) => fetch(server, positions)),
    )
    const failed = settled.find((s) => s.status === 'rejected')
    if (failed !== undefined) throw failed.reason
    return out
  }

  /** Set or Add of bytes; resolves whether memcached stored them. */
  async #store(opcode: number, key: string, data: Buffer, expiration: number): Promise<boolean> {
    const server = this.#ring.serverOf(this.keyPrefix + key)
    if (!(await this.#itemLimits.fits(server, key, data.length))) return false
    const extras = storeExtras(expiration)
    const [r] = await this.#onServer(server, (ns) => [
      { opcode, key: wireKey(ns, key), extras, value: data },
    ])
    return this.#stored(r as Response, key, data.length)
  }

  #stored(r: Response | null, key: string, bytes: number): boolean {
    if (r === null || r.status === Status.Ok) return true
    if (r.status === Status.Exists || r.status === Status.NotStored) return false
    if (r.status === Status.TooLarge) {
      this.#itemLimits.tooLarge(key, bytes)
      return false
    }
    throw errorOf(`${this.#name}.set`, r)
  }

  /** Deletes keys (quietly, one write per server); resolves the keys that were present or absent, not failed. */
  async #deleteRaw(keys: readonly string[]): Promise<{ gone: boolean[]; error?: unknown }> {
    const gone = new Array<boolean>(keys.length).fill(false)
    let error: unknown
    await Promise.all(
      [...this.#byServer(keys)].map(async ([server, positions]) => {
        try {
          const responses = await this.#onServer(server, (ns) =>
            positions.map((p) => ({ opcode: Op.DeleteQ, key: wireKey(ns, keys[p] as string) })),
          )
          positions.forEach((p, i) => {
            const r = responses[i]
            gone[p] = r === null || r === undefined || r.status === Status.NotFound
          })
        } catch (e) {
          error ??= e
        }
      }),
    )
    return { gone, error }
  }

  #decode(data: Buffer, key: string): unknown {
    return decodeOrMiss(data, this.serializer, {
      logger: this.logger,
      code: 'CACHETTE_MEMCACHED_CORRUPT_ENTRY',
      backend: this.#name,
      key: key,
    })
  }

  // ---- the backend API -----------------------------------------------------------

  /** `GET` (and the chunks of a chunked value). An entry that cannot be decoded reads as a miss. */
  async get(key: string): Promise<unknown> {
    let data = await this.#getRaw(key)
    if (this.#chunks !== undefined) data = await this.#chunks.resolve(key, data)
    return data === undefined ? undefined : this.#decode(data, key)
  }

  /** `SET` with the expiry. Resolves `false` for a value over the item size limit (warned once). */
  async set(key: string, value: unknown, timeout?: number): Promise<boolean> {
    const data = encodeValue(value, this.serializer)
    const expiration = this.#expiration(timeout)
    const chunks = this.#chunks
    const stored = chunks?.needed(data) ? await chunks.write(key, data, expiration) : data
    return this.#store(Op.Set, key, stored, expiration)
  }

  /** `ADD` with the expiry: atomic; an expired entry counts as absent. */
  async add(key: string, value: unknown, timeout?: number): Promise<boolean> {
    const data = encodeValue(value, this.serializer)
    const expiration = this.#expiration(timeout)
    const chunks = this.#chunks
    if (chunks === undefined || !chunks.needed(data)) {
      return this.#store(Op.Add, key, data, expiration)
    }
    if (await this.has(key)) return false
    const manifest = await chunks.write(key, data, expiration)
    const added = await this.#store(Op.Add, key, manifest, expiration)
    if (!added) await chunks.discard(key, manifest)
    return added
  }

  /** `DELETE`; resolves whether the key existed. */
  async delete(key: string): Promise<boolean> {
    await this.#chunks?.drop([key])
    const server = this.#ring.serverOf(this.keyPrefix + key)
    const [r] = await this.#onServer(server, (ns) => [{ opcode: Op.Delete, key: wireKey(ns, key) }])
    if (r?.status === Status.Ok) return true
    if (r?.status === Status.NotFound) return false
    throw errorOf(`${this.#name}.delete`, r as Response)
  }

  /**
   * Whether the key exists, by appending nothing to it (memcached has no
   * exists command; this is Flask-Caching's trick, without moving the value
   * over the network). A chunked value counts only if all its chunks exist.
   */
  async has(key: string): Promise<boolean> {
    if (this.#chunks !== undefined) {
      return (await this.#chunks.resolve(key, await this.#getRaw(key))) !== undefined
    }
    const server = this.#ring.serverOf(this.keyPrefix + key)
    const [r] = await this.#onServer(server, (ns) => [
      { opcode: Op.Append, key: wireKey(ns, key), value: EMPTY },
    ])
    if (r?.status === Status.Ok) return true
    if (r?.status === Status.NotStored || r?.status === Status.NotFound) return false
    throw errorOf(`${this.#name}.has`, r as Response)
  }

  /** One write per server of quiet gets: a round trip in parallel per server, misses cost no bytes. */
  override async getMany(keys: readonly string[]): Promise<unknown[]> {
    if (keys.length === 0) return []
    const raws = await this.#getManyRaw(keys)
    const chunks = this.#chunks
    if (chunks === undefined) {
      return raws.map((data, i) =>
        data === undefined ? undefined : this.#decode(data, keys[i] as string),
      )
    }
    return Promise.all(
      raws.map(async (data, i) => {
        const key = keys[i] as string
        const whole = await chunks.resolve(key, data)
        return whole === undefined ? undefined : this.#decode(whole, key)
      }),
    )
  }

  /**
   * Encodes every value first (one unstorable value writes nothing), then one
   * write per server of quiet sets. Resolves the keys stored.
   */
  override async setMany(
    entries: readonly (readonly [string, unknown])[],
    timeout?: number,
  ): Promise<string[]> {
    const expiration = this.#expiration(timeout)
    const encoded = entries.map(([, value]) => encodeValue(value, this.serializer))
    if (entries.length === 0) return []
    const extras = storeExtras(expiration)
    const keys = entries.map(([key]) => key)
    const ok = new Array<boolean>(keys.length).fill(false)
    let failure: unknown
    const small: number[] = []
    await Promise.all(
      encoded.map(async (data, i) => {
        if (this.#chunks === undefined || !this.#chunks.needed(data)) {
          small.push(i)
          return
        }
        try {
          ok[i] = await this.set(keys[i] as string, entries[i]?.[1], timeout)
        } catch (e) {
          failure ??= e
        }
      }),
    )
    const smallKeys = small.map((i) => keys[i] as string)
    await Promise.all(
      [...this.#byServer(smallKeys)].map(async ([server, all]) => {
        try {
          const fit = await Promise.all(
            all.map((p) => {
              const i = small[p] as number
              return this.#itemLimits.fits(server, keys[i] as string, (encoded[i] as Buffer).length)
            }),
          )
          const positions = all.filter((_, j) => fit[j])
          if (positions.length === 0) return
          const responses = await this.#onServer(server, (ns) =>
            positions.map((p) => {
              const i = small[p] as number
              return {
                opcode: Op.SetQ,
                key: wireKey(ns, keys[i] as string),
                extras,
                value: encoded[i],
              }
            }),
          )
          positions.forEach((p, j) => {
            const i = small[p] as number
            ok[i] = this.#stored(
              responses[j] ?? null,
              keys[i] as string,
              (encoded[i] as Buffer).length,
            )
          })
        } catch (e) {
          failure ??= e
        }
      }),
    )
    const stored = keys.filter((_, i) => ok[i])
    if (failure !== undefined && stored.length === 0) throw failure
    return stored
  }

  /**
   * One write per server of quiet deletes; missing keys count as deleted.
   * Keys on a server that failed are left: then {@link DeleteManyError}
   * unless `ignoreDeleteManyErrors`.
   */
  override async deleteMany(keys: readonly string[]): Promise<string[]> {
    if (keys.length === 0) return []
    await this.#chunks?.drop(keys)
    const { gone, error } = await this.#deleteRaw(keys)
    const left = keys.filter((_, i) => !gone[i])
    if (left.length === keys.length && error !== undefined) throw error
    if (left.length > 0 && !this.ignoreDeleteManyErrors) throw new DeleteManyError(left)
    return keys.filter((_, i) => gone[i])
  }

  /**
   * Atomic. A positive delta is memcached's `incr`, which creates a missing
   * counter with the default timeout and keeps an existing one's expiry.
   * A negative delta (memcached's `decr` stops at 0) and counters below zero
   * use compare-and-swap, which sets the default timeout again.
   * @throws {NotAnIntegerError} if the stored value is not an integer (it is left unchanged).
   */
  override async inc(key: string, delta: number): Promise<number> {
    if (!Number.isSafeInteger(delta)) {
      throw new NotAnIntegerError(`inc/dec: delta must be an integer, got ${String(delta)}`)
    }
    const server = this.#ring.serverOf(this.keyPrefix + key)
    const expiration = this.#expiration(undefined)
    if (delta >= 0) {
      const extras = counterExtras(BigInt(delta), BigInt(delta), expiration)
      const [r] = await this.#onServer(server, (ns) => [
        { opcode: Op.Increment, key: wireKey(ns, key), extras },
      ])
      if (r?.status === Status.Ok) {
        const n = r.value.readBigUInt64BE(0)
        if (n <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(n)
        throw new NotAnIntegerError(`inc/dec: the counter at ${JSON.stringify(key)} overflowed`)
      }
      if (r?.status !== Status.NonNumeric) throw errorOf(`${this.#name}.inc`, r as Response)
    }
    return this.#casIncrement(server, key, delta, expiration)
  }

  async #casIncrement(
    server: number,
    key: string,
    delta: number,
    expiration: number,
  ): Promise<number> {
    const extras = storeExtras(expiration)
    for (let attempt = 0; attempt < 100; attempt++) {
      const [found] = await this.#onServer(server, (ns) => [
        { opcode: Op.Get, key: wireKey(ns, key) },
      ])
      let next: number
      let request: (ns: string) => Request
      if (found?.status === Status.NotFound) {
        next = delta
        const value = encodeValue(next, this.serializer)
        request = (ns) => ({ opcode: Op.Add, key: wireKey(ns, key), extras, value })
      } else if (found?.status === Status.Ok) {
        const current =
          parseManifest(found.value) === undefined ? this.#decode(found.value, key) : key
        next = integerOf(key, current) + delta
        if (!Number.isSafeInteger(next)) {
          throw new NotAnIntegerError(
            `inc/dec: the counter at ${JSON.stringify(key)} would overflow`,
          )
        }
        const value = encodeValue(next, this.serializer)
        const cas = found.cas
        request = (ns) => ({ opcode: Op.Set, key: wireKey(ns, key), extras, value, cas })
      } else throw errorOf(`${this.#name}.inc`, found as Response)
      const [r] = await this.#onServer(server, (ns) => [request(ns)])
      if (r?.status === Status.Ok) return next
      if (
        r?.status !== Status.Exists &&
        r?.status !== Status.NotStored &&
        r?.status !== Status.NotFound
      ) {
        throw errorOf(`${this.#name}.inc`, r as Response)
      }
    }
    throw new BackendError(
      'ERR_CACHETTE_BACKEND_FAILED',
      `${this.#name}.inc: the counter at ${JSON.stringify(key)} changes too often to update`,
    )
  }

  /**
   * With a key prefix: starts a new namespace on every server, so every key
   * of this cache reads as a miss at once, in every process, while other
   * apps' keys on the same servers are untouched (memcached can only flush a
   * whole server). The old entries stay until they expire or memcached
   * evicts them (it evicts least recently used items first, so they go
   * before live ones). Rejects if a server could not be reached, after
   * renewing the others.
   *
   * Without a prefix it refuses unless `allowFlush` is set; then it flushes
   * every server (`flush_all`), warning once.
   * @throws {ConfigError} with key `CACHE_KEY_PREFIX` when there is no prefix and `allowFlush` is off.
   */
  async clear(): Promise<boolean> {
    const namespaced = this.#namespaces.key !== undefined
    if (!namespaced && !this.allowFlush) {
      throw new ConfigError(
        'CACHE_KEY_PREFIX',
        'clear() without a key prefix would flush every memcached server, other apps included; set CACHE_KEY_PREFIX, or pass CACHE_OPTIONS: { allowFlush: true } to allow flush_all',
      )
    }
    if (!namespaced) {
      warnOnce(
        this.logger,
        'CACHETTE_MEMCACHED_FLUSH',
        `${this.#name}.clear(): no key prefix, so flush_all empties every server (allowFlush is set)`,
      )
    }
    const results = await Promise.allSettled(
      this.#conns.map(async (conn, server) => {
        const [r] = namespaced
          ? [await this.#namespaces.renew(server)]
          : await conn.exec([{ opcode: Op.Flush }])
        if (r?.status !== Status.Ok) throw errorOf(`${this.#name}.clear`, r as Response)
      }),
    )
    const failed = results.flatMap((r, i) =>
      r.status === 'rejected' ? [`${this.servers[i]} (${(r.reason as Error).message})`] : [],
    )
    if (failed.length > 0) {
      throw new BackendError(
        'ERR_CACHETTE_BACKEND_FAILED',
        `${this.#name}.clear: not cleared on ${failed.join(', ')}`,
      )
    }
    return true
  }

  /**
   * Figures from every server's `stats`, added up: `curr_items`,
   * `total_items`, `bytes`, `limit_maxbytes`, `get_hits`, `get_misses`,
   * `cmd_get`, `cmd_set`, `evictions`, `curr_connections`; plus `servers`,
   * the first server's `version`, and `down` naming the servers that did not
   * answer. Items are the servers' own counts, so they include other apps'
   * entries on the same servers and entries of namespaces `clear()` left
   * behind. Each server is asked over a connection of its own. Rejects when
   * no server answers.
   */
  async stats(): Promise<Record<string, string | number>> {
    const settled = await Promise.allSettled(
      this.#addresses.map((address) => serverStats(address, this.#settings)),
    )
    return summedStats(this.servers, settled)
  }

  /** Closes the connections; calls after it reject. */
  override async close(): Promise<void> {
    for (const conn of this.#conns) conn.close()
  }
}

/**
 * Flask-Caching's `SASLMemcachedCache`: a {@link MemcachedCache} that
 * authenticates with SASL PLAIN (`CACHE_MEMCACHED_USERNAME`,
 * `CACHE_MEMCACHED_PASSWORD`) on every connection, as MemCachier and
 * memcached started with `-S` require. Wrong credentials make calls reject
 * with a {@link MemcachedAuthError} saying so (through a `Cache`, the call
 * misses and the error is logged). memcached 1.6 also offers TLS (`tls`).
 */
export class SASLMemcachedCache extends MemcachedCache {}

/**
 * Flask-Caching's `SpreadSASLMemcachedCache`: a {@link SASLMemcachedCache}
 * that stores a value larger than `chunkSize` as chunks spread over the
 * servers, up to `maxChunks` of them.
 *
 * Differs from Flask-Caching on purpose: the key holds a small manifest
 * naming the chunks, which carry a fresh id for each write, so a read never
 * mixes chunks of two writes and a missing chunk (evicted) is a miss, never a
 * truncated value; `has`, `add`, `getMany` and `deleteMany` see chunked
 * values (Flask's `has` says false after a chunked `set`).
 */
export class SpreadSASLMemcachedCache extends SASLMemcachedCache {
  /** `true`: values larger than `chunkSize` are stored as chunks. */
  protected override get chunksLargeValues(): boolean {
    return true
  }
}
