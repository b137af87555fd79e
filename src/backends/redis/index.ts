/**
 * Redis backends, configured by Flask-Caching's `CACHE_REDIS_*` keys or by
 * camelCase options: {@link RedisCache} (one server), {@link RedisSentinelCache}
 * (a master found through Sentinel, surviving failovers) and
 * {@link RedisClusterCache} (Redis Cluster). They need the `ioredis` package
 * (`npm install ioredis`), or with `CACHE_OPTIONS: { client: 'node-redis' }`
 * the `redis` package (node-redis v5+, `npm install redis`), loaded when a
 * backend is constructed, so importing this module costs nothing without it. They need Redis 4.0 or newer
 * (`UNLINK`, `FLUSHDB ASYNC`).
 *
 * One server:
 * ```ts
 * import { Cache } from 'cachette'
 * import { RedisCache } from 'cachette/redis'
 * const cache = new Cache({ CACHE_TYPE: RedisCache, CACHE_REDIS_URL: 'redis://localhost:6379/0' })
 * await cache.set('greeting', 'hello', 60)
 * console.log(await cache.get('greeting'))
 * ```
 *
 * Sentinel:
 * ```ts
 * import { Cache } from 'cachette'
 * import { RedisSentinelCache } from 'cachette/redis'
 * const sentinels = [['10.0.0.1', 26379], ['10.0.0.2', 26379], ['10.0.0.3', 26379]]
 * const cache = new Cache({ CACHE_TYPE: RedisSentinelCache, CACHE_REDIS_SENTINELS: sentinels, CACHE_REDIS_SENTINEL_MASTER: 'mymaster' })
 * await cache.set('greeting', 'hello', 60)
 * ```
 *
 * Cluster:
 * ```ts
 * import { Cache } from 'cachette'
 * import { RedisClusterCache } from 'cachette/redis'
 * const cache = new Cache({ CACHE_TYPE: RedisClusterCache, CACHE_REDIS_CLUSTER: '10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000' })
 * await cache.setMany({ a: 1, b: 2 }) // keys in any hash slots
 * console.log(await cache.getMany('a', 'b'))
 * ```
 *
 * **When Redis is down** the backends fail fast instead of hanging: commands
 * issued while disconnected fail at once (ioredis' offline queue is off), a
 * command gets at most `commandTimeout` (1 s) for its answer, the client
 * reconnects forever with a backoff capped at 2 s, and an `'error'` listener
 * is always attached, logging through the cache's logger (rate-limited), so
 * a connection error never crashes the process. Cached views and memoized
 * functions keep answering, uncached, and caching resumes on its own when the
 * server is back. All of it can be overridden through `CACHE_OPTIONS`
 * (`enableOfflineQueue`, `commandTimeout`, `connectTimeout`,
 * `maxRetriesPerRequest`, `retryStrategy`, ...), which passes every key
 * cachette does not know to the ioredis constructor. On node-redis the same
 * defaults are set (`disableOfflineQueue`, command and connect timeouts,
 * `reconnectStrategy`) and the other keys go to `createClient`,
 * `createSentinel` or `createCluster`.
 *
 * **Sharing a client**: `CACHE_OPTIONS: { client }` (or `CACHE_REDIS_HOST`)
 * may be a connected ioredis or node-redis client; the backend uses it and
 * never closes it.
 * @packageDocumentation
 *
 * @module cachette/redis
 */
import { createHash } from 'node:crypto'
import { type BackendFactoryOptions, BaseCache } from '../../core/backend.js'
import { decodeOrMiss, encodeValue } from '../../core/codec.js'
import {
  BackendError,
  ConfigError,
  DeleteManyError,
  InvalidTimeoutError,
  NotAnIntegerError,
} from '../../core/errors.js'
import { escapedKey, keyFromStorage, storageKey } from '../../core/keys.js'
import { ErrorReporter, warnOnce } from '../../core/log.js'
import {
  type ClusterClient,
  loadSlotFunction,
  ReadyGate,
  type RedisClient,
  type SlotFunction,
  type WireKey,
} from './client.js'
import { type Opened, openCluster, openSentinel, openStandalone } from './connect.js'
import { checkPrefix, escapeGlob, splitFactoryOptions } from './options.js'
import { redisStats } from './stats.js'
import type {
  RedisCacheOptions,
  RedisClusterCacheOptions,
  RedisCommonOptions,
  RedisSentinelCacheOptions,
  SentinelAddress,
} from './types.js'

export type {
  RedisCacheOptions,
  RedisClusterCacheOptions,
  RedisCommonOptions,
  RedisSentinelCacheOptions,
  SentinelAddress,
}

/** A constructor of {@link RedisCache} or a subclass, as its static `factory` uses through `this`. */
export type RedisCacheClass = new (options: RedisCacheOptions) => RedisCache
/** A constructor of {@link RedisSentinelCache} or a subclass. */
export type RedisSentinelCacheClass = new (options: RedisSentinelCacheOptions) => RedisSentinelCache
/** A constructor of {@link RedisClusterCache} or a subclass. */
export type RedisClusterCacheClass = new (options: RedisClusterCacheOptions) => RedisClusterCache

// ---- the shared implementation (connection set-up: connect.ts; stats: stats.ts) ----

/**
 * `INCRBY`, and if the key did not exist, the default timeout (ARGV[2] ms,
 * `0` = none), in one atomic step. A non-integer value makes INCRBY fail and
 * the script write nothing.
 */
const INC_SCRIPT = `local existed = redis.call('EXISTS', KEYS[1])
redis.call('INCRBY', KEYS[1], ARGV[1])
local s = redis.call('GET', KEYS[1])
local d = s
if string.sub(d, 1, 1) == '-' then d = string.sub(d, 2) end
if #d > 16 or (#d == 16 and d > '9007199254740991') then
  redis.call('DECRBY', KEYS[1], ARGV[1])
  return redis.error_reply('ERR the result would overflow the safe integer range')
end
if existed == 0 and ARGV[2] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return s`
const INC_SHA = createHash('sha1').update(INC_SCRIPT).digest('hex')

/** Deletes a lock only while it holds the caller's token. */
const RELEASE_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`
const RELEASE_SHA = createHash('sha1').update(RELEASE_SCRIPT).digest('hex')

const SCAN_COUNT = 1000

/** A key prefix ends with one of these so that no other prefix can extend it. */
const PREFIX_SEPARATOR = /[^\p{L}\p{N}]$/u

/** Keys grouped by hash slot, with their positions in the original list. */
interface SlotGroup {
  keys: WireKey[]
  positions: number[]
}

function groupBySlot(keys: readonly WireKey[], slotOf: SlotFunction): SlotGroup[] {
  const groups = new Map<number, SlotGroup>()
  keys.forEach((key, i) => {
    const slot = slotOf(key)
    let g = groups.get(slot)
    if (g === undefined) {
      g = { keys: [], positions: [] }
      groups.set(slot, g)
    }
    g.keys.push(key)
    g.positions.push(i)
  })
  return [...groups.values()]
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/**
 * What the three Redis backends share: every operation in one command (or
 * one round trip), keys prefixed by {@link RedisCommonOptions.keyPrefix},
 * values in cachette's byte format (integers as decimal digits so `INCRBY`
 * works on them, everything else `!` + serializer bytes), read as bytes so
 * any value round-trips.
 *
 * Timeouts are seconds, `0` meaning no expiry: whole seconds are sent as
 * `EX`, fractional ones as `PX` milliseconds.
 */
export abstract class BaseRedisCache extends BaseCache {
  /** Prepended to every key. */
  readonly keyPrefix: string
  /** Whether `clear()` without a prefix may `FLUSHDB`. */
  readonly allowFlush: boolean
  readonly #client: RedisClient
  readonly #raw: unknown
  readonly #cluster: ClusterClient | undefined
  readonly #slotOf: SlotFunction | undefined
  readonly #owned: boolean
  readonly #failFast: boolean
  readonly #gate: ReadyGate
  readonly #name: string
  readonly #reporter: ErrorReporter
  readonly #onError: (error: Error) => void
  #closed = false

  /**
   * @param open validates the connection options and creates (or adopts) the
   * client; called after the common options are checked.
   */
  protected constructor(options: RedisCommonOptions, name: string, open: () => unknown) {
    super(options)
    this.#name = name
    this.keyPrefix = checkPrefix(options.keyPrefix)
    this.allowFlush = options.allowFlush === true
    const opened = open() as Opened
    const client = opened.client
    this.#client = client
    this.#raw = opened.raw
    this.#owned = opened.owned
    this.#failFast = opened.failFast
    if ((client as Partial<ClusterClient>).isCluster === true) {
      this.#cluster = client as ClusterClient
      this.#slotOf = opened.slotOf ?? loadSlotFunction(name)
    }
    if (this.keyPrefix !== '' && !PREFIX_SEPARATOR.test(this.keyPrefix)) {
      warnOnce(
        this.logger,
        'CACHETTE_REDIS_PREFIX_SEPARATOR',
        `${name}: CACHE_KEY_PREFIX ${JSON.stringify(this.keyPrefix)} does not end with a separator (such as ':'), so clear() and keys() also match the keys of a prefix that starts with it (${JSON.stringify(`${this.keyPrefix}2:`)}); end it with ':'`,
      )
    }
    this.#reporter = new ErrorReporter(this.logger)
    this.#onError = (error: Error) =>
      this.#reporter.report(
        `${name} (redis connection)`,
        error,
        'reconnecting; cache calls miss meanwhile',
      )
    client.on('error', this.#onError)
    this.#gate = new ReadyGate(client, opened.readyTimeout)
  }

  /**
   * The client, for commands cachette does not wrap: the ioredis `Redis` or
   * `Cluster`, or with `client: 'node-redis'` the node-redis client,
   * Sentinel or Cluster. Keys you write there are not prefixed for you.
   */
  get client(): unknown {
    return this.#raw
  }

  // ---- helpers ---------------------------------------------------------------

  /** The Redis key of `key`: the prefix plus its lossless UTF-8 form ({@link storageKey}). */
  #key(key: string): string {
    return this.keyPrefix + storageKey(key)
  }

  /**
   * The client, once the first connection attempt is over (only the first
   * commands wait). While disconnected, rejects at once instead of queueing.
   */
  #ready(): RedisClient | Promise<RedisClient> {
    // Hot path: connected, first connection over; no promise in between.
    if (this.#client.status === 'ready' && this.#gate.wait() === undefined) return this.#client
    return this.#readySlow()
  }

  async #readySlow(): Promise<RedisClient> {
    const pending = this.#gate.wait()
    if (pending !== undefined) await pending
    const client = this.#client
    if (this.#failFast && client.status !== 'ready') {
      throw new BackendError(
        'ERR_CACHETTE_BACKEND_UNAVAILABLE',
        `${this.#name}: not connected to Redis (connection ${client.status}); the command was not sent`,
      )
    }
    return client
  }

  /** `SET` arguments for a timeout: `[]` for none, `EX s` for whole seconds, `PX ms` otherwise. */
  #expiry(timeout: number | undefined): (string | number)[] {
    const seconds = this.ttl(timeout)
    if (seconds === 0) return []
    if (!(seconds > 0) || !Number.isFinite(seconds)) {
      throw new InvalidTimeoutError(
        `${this.#name}: timeout must be a non-negative number of seconds, got ${seconds}`,
      )
    }
    if (Number.isInteger(seconds)) return ['EX', seconds]
    return ['PX', Math.max(1, Math.round(seconds * 1000))]
  }

  #decode(data: Buffer, key: string): unknown {
    return decodeOrMiss(data, this.serializer, {
      logger: this.logger,
      code: 'CACHETTE_REDIS_CORRUPT_ENTRY',
      backend: this.#name,
      key: this.#key(key),
    })
  }

  /** Runs `fn` once per hash slot in parallel (Cluster), settling every group. */
  async #perSlot<R>(
    keys: readonly WireKey[],
    fn: (keys: WireKey[]) => Promise<R>,
  ): Promise<{ group: SlotGroup; result: PromiseSettledResult<R> }[]> {
    const groups = groupBySlot(keys, this.#slotOf as SlotFunction)
    const results = await Promise.allSettled(groups.map((g) => fn(g.keys)))
    return groups.map((group, i) => ({ group, result: results[i] as PromiseSettledResult<R> }))
  }

  /** UNLINK of raw keys; on Cluster one command per hash slot. Resolves how many existed. */
  async #unlinkKeys(keys: readonly WireKey[]): Promise<number> {
    if (keys.length === 0) return 0
    const client = await this.#ready()
    if (this.#cluster === undefined) return client.unlink(...keys)
    let count = 0
    for (const { result } of await this.#perSlot(keys, (ks) => client.unlink(...ks))) {
      if (result.status === 'rejected') throw result.reason
      count += result.value
    }
    return count
  }

  /** The connections to scan or flush: every master of a cluster, else the client itself. */
  #masters(): RedisClient[] {
    if (this.#cluster === undefined) return [this.#client]
    const masters = this.#cluster.nodes('master')
    if (masters.length === 0) {
      throw new BackendError(
        'ERR_CACHETTE_BACKEND_UNAVAILABLE',
        `${this.#name}: no cluster master is known yet`,
      )
    }
    return masters
  }

  // ---- the backend API ---------------------------------------------------------

  /** `GET`. An entry that cannot be decoded reads as a miss (logged once). */
  async get(key: string): Promise<unknown> {
    const ready = this.#ready()
    const client = ready instanceof Promise ? await ready : ready
    const data = await client.getBuffer(this.#key(key))
    return data === null ? undefined : this.#decode(data, key)
  }

  /** `SET key value [EX s | PX ms]`. */
  async set(key: string, value: unknown, timeout?: number): Promise<boolean> {
    const data = encodeValue(value, this.serializer)
    const expiry = this.#expiry(timeout)
    const ready = this.#ready()
    const client = ready instanceof Promise ? await ready : ready
    return (await client.set(this.#key(key), data, ...expiry)) === 'OK'
  }

  /** `SET key value NX [EX s | PX ms]`: atomic, one command. */
  async add(key: string, value: unknown, timeout?: number): Promise<boolean> {
    const data = encodeValue(value, this.serializer)
    const expiry = this.#expiry(timeout)
    const client = await this.#ready()
    return (await client.set(this.#key(key), data, ...expiry, 'NX')) === 'OK'
  }

  /** `SET key token PX ttl NX`: the lock of `getOrSet`'s `lock` option. */
  async acquireLock(key: string, token: string, ttlMs: number): Promise<boolean> {
    const client = await this.#ready()
    const ms = Math.max(1, Math.ceil(ttlMs))
    return (await client.set(this.#key(key), Buffer.from(token), 'PX', ms, 'NX')) === 'OK'
  }

  /** Deletes the lock in one script, only while it still holds `token`. */
  async releaseLock(key: string, token: string): Promise<boolean> {
    const client = await this.#ready()
    return (
      Number(await this.#script(client, RELEASE_SHA, RELEASE_SCRIPT, [this.#key(key), token])) > 0
    )
  }

  /** Runs a Lua script by its SHA1, loading it when the server does not know it yet. */
  async #script(
    client: RedisClient,
    sha: string,
    script: string,
    args: readonly (string | number)[],
  ): Promise<unknown> {
    try {
      return await client.evalsha(sha, 1, ...args)
    } catch (error) {
      if (!/NOSCRIPT/.test(errorText(error))) throw error
      return client.eval(script, 1, ...args)
    }
  }

  /** `DEL`; resolves whether the key existed. */
  async delete(key: string): Promise<boolean> {
    const client = await this.#ready()
    return (await client.del(this.#key(key))) > 0
  }

  /** `EXISTS`. */
  async has(key: string): Promise<boolean> {
    const client = await this.#ready()
    return (await client.exists(this.#key(key))) > 0
  }

  /** One `MGET` (on Cluster, one per hash slot, in parallel). */
  override async getMany(keys: readonly string[]): Promise<unknown[]> {
    if (keys.length === 0) return []
    const client = await this.#ready()
    const full = keys.map((k) => this.#key(k))
    let raw: (Buffer | null)[]
    if (this.#cluster === undefined) raw = await client.mgetBuffer(...full)
    else {
      raw = new Array<Buffer | null>(full.length).fill(null)
      for (const { group, result } of await this.#perSlot(full, (ks) => client.mgetBuffer(...ks))) {
        if (result.status === 'rejected') throw result.reason
        group.positions.forEach((p, i) => {
          raw[p] = result.value[i] ?? null
        })
      }
    }
    return raw.map((data, i) => (data === null ? undefined : this.#decode(data, keys[i] as string)))
  }

  /**
   * Encodes every value first (one unstorable value writes nothing), then
   * sends the `SET`s in one non-transactional pipeline (on Cluster, in
   * parallel per key). Resolves the keys stored.
   */
  override async setMany(
    entries: readonly (readonly [string, unknown])[],
    timeout?: number,
  ): Promise<string[]> {
    const expiry = this.#expiry(timeout)
    const encoded = entries.map(
      ([key, value]) => [this.#key(key), encodeValue(value, this.serializer)] as const,
    )
    if (encoded.length === 0) return []
    const client = await this.#ready()
    let errors: unknown[]
    if (this.#cluster === undefined) {
      const pipeline = client.pipeline()
      for (const [key, data] of encoded) pipeline.set(key, data, ...expiry)
      const replies = await pipeline.exec()
      if (replies === null) {
        throw new BackendError(
          'ERR_CACHETTE_BACKEND_FAILED',
          `${this.#name}: the pipeline was discarded`,
        )
      }
      errors = replies.map(([error]) => error)
    } else {
      const settled = await Promise.allSettled(
        encoded.map(([key, data]) => client.set(key, data, ...expiry)),
      )
      errors = settled.map((s) => (s.status === 'fulfilled' ? null : s.reason))
    }
    const stored = entries.filter((_, i) => errors[i] === null).map(([key]) => key)
    const failure = errors.find((e) => e !== null)
    if (failure !== undefined) {
      if (stored.length === 0) throw failure
      this.#reporter.report(`${this.#name}.setMany`, failure)
    }
    return stored
  }

  /**
   * One `UNLINK` (on Cluster, one per hash slot); missing keys count as
   * deleted. On Cluster, keys of a slot whose node failed are left: then
   * {@link DeleteManyError} unless `ignoreDeleteManyErrors`.
   */
  override async deleteMany(keys: readonly string[]): Promise<string[]> {
    if (keys.length === 0) return []
    const client = await this.#ready()
    const full = keys.map((k) => this.#key(k))
    if (this.#cluster === undefined) {
      await client.unlink(...full)
      return [...keys]
    }
    const outcomes = await this.#perSlot(full, (ks) => client.unlink(...ks))
    const failed = new Set<number>()
    let firstError: unknown
    for (const { group, result } of outcomes) {
      if (result.status === 'fulfilled') continue
      firstError ??= result.reason
      for (const p of group.positions) failed.add(p)
    }
    if (failed.size === keys.length) throw firstError
    const gone = keys.filter((_, i) => !failed.has(i))
    const left = keys.filter((_, i) => failed.has(i))
    if (left.length > 0) {
      if (!this.ignoreDeleteManyErrors) throw new DeleteManyError(left)
      this.#reporter.report(`${this.#name}.deleteMany`, firstError)
    }
    return gone
  }

  /** `UNLINK` (memory is freed in the background); resolves how many keys existed. */
  async unlink(keys: readonly string[]): Promise<number> {
    return this.#unlinkKeys(keys.map((k) => this.#key(k)))
  }

  /**
   * Atomic `INCRBY` in a Lua script that also gives a counter it creates the
   * default timeout (Flask-Caching's leaves new counters without expiry).
   * An existing counter keeps its expiry.
   * @throws {NotAnIntegerError} if the stored value is not an integer (it is left unchanged).
   */
  override async inc(key: string, delta: number): Promise<number> {
    if (!Number.isSafeInteger(delta)) {
      throw new NotAnIntegerError(`inc/dec: delta must be an integer, got ${String(delta)}`)
    }
    const seconds = this.defaultTimeout
    const ttlMs = seconds > 0 ? Math.max(1, Math.round(seconds * 1000)) : 0
    const args = [this.#key(key), delta, ttlMs] as const
    const client = await this.#ready()
    let result: unknown
    try {
      result = await this.#script(client, INC_SHA, INC_SCRIPT, args)
    } catch (error) {
      if (/not an integer|overflow/i.test(errorText(error))) {
        throw new NotAnIntegerError(
          `inc/dec: the value at ${JSON.stringify(key)} is not an integer (or would overflow)`,
        )
      }
      throw error
    }
    return Number(result)
  }

  /**
   * Removes every key under the prefix: `SCAN MATCH <prefix>* COUNT 1000`
   * with an `UNLINK` per batch, on every master of a cluster. Never `KEYS`,
   * so the server is not blocked. Other keys in the database survive.
   *
   * Without a prefix it refuses (a `FLUSHDB` on a shared database is the
   * classic Flask-Caching accident) unless `allowFlush` is set; then it runs
   * `FLUSHDB ASYNC` (on every master of a cluster), warning once.
   * @throws {ConfigError} with key `CACHE_KEY_PREFIX` when there is no prefix and `allowFlush` is off.
   */
  async clear(): Promise<boolean> {
    if (this.keyPrefix === '') {
      if (!this.allowFlush) {
        throw new ConfigError(
          'CACHE_KEY_PREFIX',
          'clear() without a key prefix would empty the whole database; set CACHE_KEY_PREFIX, or pass CACHE_OPTIONS: { allowFlush: true } to allow FLUSHDB',
        )
      }
      warnOnce(
        this.logger,
        'CACHETTE_REDIS_FLUSHDB',
        `${this.#name}.clear(): no key prefix, so FLUSHDB empties the whole database (allowFlush is set)`,
      )
      await this.#ready()
      await Promise.all(this.#masters().map((node) => node.flushdb('ASYNC')))
      return true
    }
    await this.#ready()
    const pattern = `${escapeGlob(this.keyPrefix)}*`
    await Promise.all(
      this.#masters().map(async (node) => {
        let cursor = '0'
        do {
          const [next, batch] = await node.scanBuffer(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT)
          cursor = next.toString()
          await this.#unlinkKeys(batch)
        } while (cursor !== '0')
      }),
    )
    return true
  }

  /**
   * The keys under `keyPrefix + prefix`, without the key prefix: `SCAN MATCH
   * <escaped keyPrefix + prefix>* COUNT 1000`, on every master of a cluster
   * in turn. Never `KEYS`, so the server is not blocked. Each key is yielded
   * once (SCAN may return a key twice while the server resizes its table).
   * Keys are decoded as UTF-8, as cachette writes them.
   */
  async *keys(prefix: string): AsyncIterable<string> {
    await this.#ready()
    // Plain keys match `prefix*`, escaped ones (lone surrogates, or starting
    // with the marker) the escaped prefix; both are decoded and filtered by
    // `prefix` here. A trailing high surrogate is left out of the patterns,
    // since in a longer key it may be half of a pair. A prefix that needs
    // escaping starts no plain key; for one the plain pattern covers (`''`,
    // `'~'`), one scan does.
    const base = prefix.replace(/[\uD800-\uDBFF]$/, '')
    const escaped = escapedKey(base)
    const starts =
      storageKey(base) !== base ? [escaped] : escaped.startsWith(base) ? [base] : [base, escaped]
    const patterns = starts.map((start) => `${escapeGlob(this.keyPrefix + start)}*`)
    const strip = Buffer.byteLength(this.keyPrefix)
    const seen = new Set<string>()
    for (const pattern of patterns) {
      for (const node of this.#masters()) {
        let cursor = '0'
        do {
          const [next, batch] = await node.scanBuffer(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT)
          cursor = next.toString()
          for (const raw of batch) {
            const key = keyFromStorage(raw.subarray(strip).toString('utf8'))
            if (key === undefined || !key.startsWith(prefix) || seen.has(key)) continue
            seen.add(key)
            yield key
          }
        } while (cursor !== '0')
      }
    }
  }

  /**
   * Figures from `INFO`: the server version, memory (`used_memory_human`,
   * `used_memory_peak_human`, `maxmemory_human`, `maxmemory_policy`), hits,
   * misses, expirations and evictions, and each database's key count
   * (`db0_keys`, `db0_expires`). On a cluster, every master's figures,
   * each name prefixed with the node's `host:port `.
   */
  async stats(): Promise<Record<string, string | number>> {
    await this.#ready()
    return redisStats(this.#masters(), this.#cluster !== undefined)
  }

  /**
   * Closes the connections this backend opened (`QUIT`, then a disconnect
   * that also stops reconnection and Sentinel subscriptions). A client passed in is left open, only its `'error'` listener
   * from this backend is removed.
   */
  override async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#gate.release()
    if (!this.#owned) {
      this.#client.off('error', this.#onError)
      return
    }
    try {
      await this.#client.quit()
    } catch {
      // Not connected: nothing to say goodbye to.
    }
    // Also after a QUIT: it leaves ioredis' Sentinel failover-detector
    // connections open; disconnect() closes them and stops reconnecting.
    this.#client.disconnect()
  }
}

// ---- the three backends --------------------------------------------------------

/**
 * The options every Redis factory reads the same way: cachette's own options,
 * the rest of `CACHE_OPTIONS` for the client, `CACHE_KEY_PREFIX`, and
 * `CACHE_REDIS_HOST` when it is an existing client to share.
 */
function commonFactoryOptions(
  config: Readonly<Record<string, unknown>>,
  options: BackendFactoryOptions,
) {
  const { own, clientOptions } = splitFactoryOptions(options)
  const host = config.CACHE_REDIS_HOST
  return {
    ...own,
    clientOptions,
    keyPrefix: checkPrefix(config.CACHE_KEY_PREFIX),
    client: typeof host === 'object' && host !== null ? host : (own as { client?: unknown }).client,
  }
}

/**
 * A cache on one Redis server (Flask-Caching's `RedisCache`), by host and
 * port, URL (`redis://`, `rediss://`, `unix://`) or an existing ioredis
 * client shared with the app.
 *
 * Differs from Flask-Caching on purpose: `add` is one `SET NX` with the
 * expiry (Flask: SETNX then EXPIRE); `clear` scans with `SCAN` and removes
 * with `UNLINK` (Flask: `KEYS` and `DEL`), and without a prefix refuses
 * instead of running `FLUSHDB`; a counter created by `inc` gets the default
 * timeout (Flask: none); `deleteMany` is one `UNLINK`.
 */
export class RedisCache extends BaseRedisCache {
  /**
   * Builds the cache from configuration: `CACHE_REDIS_URL`, else
   * `CACHE_REDIS_HOST` (a host name or an ioredis client), `CACHE_REDIS_PORT`,
   * `CACHE_REDIS_PASSWORD`, `CACHE_REDIS_DB`; `CACHE_KEY_PREFIX`; and
   * `CACHE_OPTIONS` (`allowFlush`, `client`, everything else to the client).
   */
  static factory(
    this: RedisCacheClass,
    _app: object | undefined,
    config: Readonly<Record<string, unknown>>,
    _args: unknown[],
    options: BackendFactoryOptions,
  ): RedisCache {
    const host = config.CACHE_REDIS_HOST
    return new this({
      ...commonFactoryOptions(config, options),
      host: typeof host === 'string' ? host : undefined,
      port: config.CACHE_REDIS_PORT as number | undefined,
      password: config.CACHE_REDIS_PASSWORD as string | undefined,
      db: config.CACHE_REDIS_DB as number | undefined,
      url: config.CACHE_REDIS_URL as string | undefined,
    })
  }

  /**
   * Connects at once (commands issued before the connection is ready wait for
   * it, at most `connectTimeout`).
   * @throws {ConfigError} naming the key of a malformed URL, port, database or option.
   * @throws {MissingDependencyError} when `ioredis` (or, with `client: 'node-redis'`, `redis`) is not installed.
   */
  constructor(options: RedisCacheOptions = {}) {
    super(options, new.target.name || 'RedisCache', () =>
      openStandalone(options, new.target.name || 'RedisCache'),
    )
  }
}

/**
 * A cache on the master of a Redis Sentinel set-up (Flask-Caching's
 * `RedisSentinelCache`). The master is discovered through the sentinels and
 * re-discovered after a failover (the client listens for the sentinels'
 * `+switch-master` and reconnects on a `-READONLY` reply).
 *
 * Every command goes to the master, reads included, so a read never misses
 * a write just made. (Flask-Caching reads from a replica, which can be stale.)
 */
export class RedisSentinelCache extends BaseRedisCache {
  /**
   * Builds the cache from configuration: `CACHE_REDIS_SENTINELS`,
   * `CACHE_REDIS_SENTINEL_MASTER`, `CACHE_REDIS_PASSWORD`,
   * `CACHE_REDIS_SENTINEL_PASSWORD`, `CACHE_REDIS_DB`, `CACHE_KEY_PREFIX`,
   * `CACHE_OPTIONS`. `CACHE_REDIS_HOST` may be a Sentinel-configured ioredis client.
   */
  static factory(
    this: RedisSentinelCacheClass,
    _app: object | undefined,
    config: Readonly<Record<string, unknown>>,
    _args: unknown[],
    options: BackendFactoryOptions,
  ): RedisSentinelCache {
    return new this({
      ...commonFactoryOptions(config, options),
      sentinels: config.CACHE_REDIS_SENTINELS as SentinelAddress[] | undefined,
      master: config.CACHE_REDIS_SENTINEL_MASTER as string | undefined,
      password: config.CACHE_REDIS_PASSWORD as string | undefined,
      sentinelPassword: config.CACHE_REDIS_SENTINEL_PASSWORD as string | undefined,
      db: config.CACHE_REDIS_DB as number | undefined,
    })
  }

  /**
   * @throws {ConfigError} naming `CACHE_REDIS_SENTINELS` for a list of the wrong shape.
   * @throws {MissingDependencyError} when `ioredis` (or, with `client: 'node-redis'`, `redis`) is not installed.
   */
  constructor(options: RedisSentinelCacheOptions = {}) {
    super(options, new.target.name || 'RedisSentinelCache', () =>
      openSentinel(options, new.target.name || 'RedisSentinelCache'),
    )
  }
}

/**
 * A cache on a Redis Cluster (Flask-Caching's `RedisClusterCache`). Multi-key
 * operations work across hash slots: `getMany` and `deleteMany` send one
 * command per slot in parallel, `setMany` one `SET` per key, and `clear`
 * scans every master.
 */
export class RedisClusterCache extends BaseRedisCache {
  /**
   * Builds the cache from configuration: `CACHE_REDIS_CLUSTER`
   * (`'host1:port1,host2:port2'`), else `CACHE_REDIS_URL` as the one startup
   * node; `CACHE_REDIS_PASSWORD`, `CACHE_KEY_PREFIX`, `CACHE_OPTIONS` (cluster
   * options to the `Cluster`, the others to every node). `CACHE_REDIS_HOST`
   * may be an ioredis `Cluster`.
   */
  static factory(
    this: RedisClusterCacheClass,
    _app: object | undefined,
    config: Readonly<Record<string, unknown>>,
    _args: unknown[],
    options: BackendFactoryOptions,
  ): RedisClusterCache {
    return new this({
      ...commonFactoryOptions(config, options),
      cluster: config.CACHE_REDIS_CLUSTER as string | undefined,
      url: config.CACHE_REDIS_URL as string | undefined,
      password: config.CACHE_REDIS_PASSWORD as string | undefined,
    })
  }

  /**
   * @throws {ConfigError} naming `CACHE_REDIS_CLUSTER` for a node without a numeric port.
   * @throws {MissingDependencyError} when `ioredis` (or, with `client: 'node-redis'`, `redis`) is not installed.
   */
  constructor(options: RedisClusterCacheOptions = {}) {
    super(options, new.target.name || 'RedisClusterCache', () =>
      openCluster(options, new.target.name || 'RedisClusterCache'),
    )
  }
}

export { RedisBus, type RedisBusOptions, type RedisBusSource, redisBus } from './bus.js'
