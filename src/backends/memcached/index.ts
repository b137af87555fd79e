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
import { createHash, randomBytes } from 'node:crypto'
import { connect as netConnect, type Socket } from 'node:net'
import { type ConnectionOptions as TlsOptions, connect as tlsConnect } from 'node:tls'
import {
  type BackendFactoryOptions,
  BaseCache,
  type BaseCacheOptions,
  integerOf,
} from '../../core/backend.js'
import { decodeOrMiss, encodeValue } from '../../core/codec.js'
import {
  ConfigError,
  DeleteManyError,
  InvalidTimeoutError,
  NotAnIntegerError,
  UnserializableValueError,
} from '../../core/errors.js'
import { warnOnce } from '../../core/log.js'
import {
  Connection,
  type ConnectionSettings,
  MemcachedAuthError,
  MemcachedUnavailableError,
  type ServerAddress,
} from './connection.js'
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
  HEADER,
  Op,
  type Request,
  type Response,
  Status,
  sizeOf,
  statusText,
  storeExtras,
  writeRequest,
} from './protocol.js'
import { HashRing } from './ring.js'

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
const MAX_KEY = 250
/**
 * Room kept beside a value under the item size limit: the longest key
 * (250 bytes) and memcached's item header (about 64 bytes), with margin.
 */
const ITEM_OVERHEAD = MAX_KEY + 128
const HASHED = '~h~'
const DEFAULT_CHUNK_SIZE = 1048576 - 512
const DEFAULT_MAX_CHUNKS = 32
const MANIFEST = Buffer.from('~chunks:')
const EMPTY = Buffer.alloc(0)
/** Printable ASCII other than space: taken as is when short enough. */
const PLAIN_KEY = /^[\x21-\x7e]+$/

/**
 * Whether a key needs no hashing: no space or control character (C0, DEL, C1;
 * the text protocol cannot carry them) and no lone surrogate (UTF-8 would
 * turn it into U+FFFD, so two keys would meet).
 */
function safeChars(key: string): boolean {
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i)
    if (c <= 0x20 || (c >= 0x7f && c <= 0x9f)) return false
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = key.charCodeAt(i + 1)
      if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) return false
      i++
    }
  }
  return true
}

/** A key memcached can take: `ns + key` if it is safe, else `ns + '~h~' + sha256(key)`. */
function wireKey(ns: string, key: string): Buffer {
  const room = MAX_KEY - ns.length
  if (key.length <= room && !key.startsWith(HASHED)) {
    if (PLAIN_KEY.test(key)) return Buffer.from(ns + key, 'latin1')
    if (safeChars(key) && Buffer.byteLength(key) <= room) {
      return Buffer.from(ns + key)
    }
  }
  const digest = createHash('sha256').update(key, 'utf16le').digest('hex')
  return Buffer.from(ns + HASHED + digest, 'latin1')
}

function errorOf(label: string, r: Response): Error {
  if (r.status === Status.AuthError) {
    return new MemcachedAuthError(
      `${label}: the server requires SASL authentication; set CACHE_MEMCACHED_USERNAME and CACHE_MEMCACHED_PASSWORD`,
    )
  }
  return new Error(`${label}: memcached answered ${statusText(r.status)}`)
}

/** The binary protocol's STAT opcode; only {@link serverStats} sends it. */
const STAT_OPCODE = 0x10

/** The `stats` figures {@link MemcachedCache.stats} adds up over the servers, in this order. */
const SUMMED_STATS = [
  'curr_items',
  'total_items',
  'bytes',
  'limit_maxbytes',
  'get_hits',
  'get_misses',
  'cmd_get',
  'cmd_set',
  'evictions',
  'curr_connections',
]

/**
 * One server's general-purpose `stats`, over a short-lived connection of its
 * own: a STAT request is answered by one response per figure and an empty
 * one to end them, which the pipelined {@link Connection} (one answer per
 * request) cannot match. With credentials, SASL PLAIN goes first. Fails
 * within `connectTimeout + commandTimeout`.
 */
function serverStats(
  address: ServerAddress,
  settings: ConnectionSettings,
  group?: string,
): Promise<Map<string, string>> {
  const label = address.label
  return new Promise((resolve, reject) => {
    const { host, port, path } = address
    const socket: Socket =
      settings.tls !== undefined
        ? tlsConnect({ ...settings.tls, host, port, path } as TlsOptions)
        : path !== undefined
          ? netConnect({ path })
          : netConnect({ host: host as string, port: port as number })
    const figures = new Map<string, string>()
    let pending: Buffer = Buffer.alloc(0)
    let settled = false
    const finish = (error?: Error): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      if (error === undefined) resolve(figures)
      else reject(error)
    }
    const down = (message: string, cause?: unknown): void =>
      finish(new MemcachedUnavailableError(`memcached ${label}: ${message}`, { cause }))
    const limit = settings.connectTimeout + settings.commandTimeout
    const timer = setTimeout(() => down(`no stats within ${limit} ms`), limit)
    socket.on('error', (error) => down(error.message, error))
    socket.on('close', () => down('connection closed by the server'))
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
      while (pending.length >= HEADER) {
        if (pending[0] !== 0x81) return down('protocol error: bad response magic')
        const keyLength = pending.readUInt16BE(2)
        const extras = pending[4] as number
        const status = pending.readUInt16BE(6)
        const body = pending.readUInt32BE(8)
        if (pending.length < HEADER + body) return
        const opcode = pending[1]
        const key = pending.subarray(HEADER + extras, HEADER + extras + keyLength)
        const value = pending.subarray(HEADER + extras + keyLength, HEADER + body)
        pending = pending.subarray(HEADER + body)
        if (status === Status.AuthError) {
          const user = JSON.stringify(settings.username ?? '')
          return finish(
            new MemcachedAuthError(
              opcode === Op.SaslAuth
                ? `memcached ${label} rejected the credentials of user ${user}`
                : `memcached ${label} requires SASL authentication; set CACHE_MEMCACHED_USERNAME and CACHE_MEMCACHED_PASSWORD`,
            ),
          )
        }
        if (status !== Status.Ok) {
          return finish(new Error(`memcached ${label}: stats answered ${statusText(status)}`))
        }
        if (opcode !== STAT_OPCODE) continue
        if (keyLength === 0) return finish()
        figures.set(key.toString('latin1'), value.toString('latin1'))
      }
    })
    const requests: Request[] = []
    if (settings.username !== undefined && settings.password !== undefined) {
      requests.push({
        opcode: Op.SaslAuth,
        key: Buffer.from('PLAIN'),
        value: Buffer.from(`\u0000${settings.username}\u0000${settings.password}`),
      })
    }
    requests.push(
      group === undefined
        ? { opcode: STAT_OPCODE }
        : { opcode: STAT_OPCODE, key: Buffer.from(group, 'latin1') },
    )
    const out = Buffer.alloc(requests.reduce((n, r) => n + sizeOf(r), 0))
    let at = 0
    requests.forEach((r, i) => {
      at = writeRequest(out, at, r, i + 1)
    })
    // Written before the connection is up: the socket sends it once connected.
    socket.write(out)
  })
}

/** A chunked value's manifest: `~chunks:<id>:<count>:<bytes>`. */
interface Manifest {
  id: string
  count: number
  bytes: number
}

function parseManifest(data: Buffer): Manifest | undefined {
  if (
    data.length < MANIFEST.length ||
    data.compare(MANIFEST, 0, MANIFEST.length, 0, MANIFEST.length) !== 0
  ) {
    return undefined
  }
  const [id, count, bytes] = data.subarray(MANIFEST.length).toString('latin1').split(':')
  if (id === undefined || count === undefined || bytes === undefined) return undefined
  return { id, count: Number(count), bytes: Number(bytes) }
}

function chunkKeys(key: string, m: Manifest): string[] {
  return Array.from({ length: m.count }, (_, i) => `${key}\u0000${m.id}\u0000${i}`)
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
  /** `prefix + '~ns'`: each server's current namespace, when there is a prefix. */
  readonly #nsKey: Buffer | undefined
  readonly #gens: (string | undefined)[]
  readonly #genPending: (Promise<string> | undefined)[]
  readonly #chunkSize: number | undefined
  readonly #maxChunks: number
  /** Each server's `item_size_max` once known (`null`: it does not say), or the pending query. */
  readonly #itemLimits: (number | null | Promise<number | null> | undefined)[]
  /** When each server's item size limit may be asked again after a failed query (ms since the epoch). */
  readonly #itemLimitRetryAt: number[]

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
    const spread = this instanceof SpreadSASLMemcachedCache
    if (!spread && (options.chunkSize !== undefined || options.maxChunks !== undefined)) {
      throw new ConfigError(
        'CACHE_OPTIONS',
        `chunkSize and maxChunks apply to SpreadSASLMemcachedCache only`,
      )
    }
    this.#chunkSize = spread
      ? checkCount(options.chunkSize, 'chunkSize', DEFAULT_CHUNK_SIZE)
      : undefined
    this.#maxChunks = checkCount(options.maxChunks, 'maxChunks', DEFAULT_MAX_CHUNKS)
    this.servers = servers.map((s) => s.label)
    this.#addresses = servers
    this.#settings = settings
    this.#conns = servers.map((s) => new Connection(s, settings))
    this.#ring = new HashRing(this.servers)
    this.#nsKey = this.keyPrefix === '' ? undefined : Buffer.from(`${this.keyPrefix}~ns`, 'latin1')
    this.#gens = servers.map(() => undefined)
    this.#genPending = servers.map(() => undefined)
    this.#itemLimits = servers.map(() => undefined)
    this.#itemLimitRetryAt = servers.map(() => 0)
  }

  // ---- item size -----------------------------------------------------------------

  /**
   * The server's item size limit (`stats settings` → `item_size_max`), asked
   * once per server over a short-lived connection; `null` when the server
   * does not tell (then its answer to the write decides). A failed query is
   * asked again once `maxRetryDelay` has passed, not on every write: a
   * server that is down or refuses `stats` costs no extra connection per set.
   */
  #itemLimit(server: number): number | null | Promise<number | null> {
    const known = this.#itemLimits[server]
    if (known !== undefined) return known
    if (Date.now() < (this.#itemLimitRetryAt[server] as number)) return null
    const pending = serverStats(
      this.#addresses[server] as ServerAddress,
      this.#settings,
      'settings',
    )
      .then((figures) => {
        const limit = Number(figures.get('item_size_max'))
        const value = Number.isSafeInteger(limit) && limit > 0 ? limit : null
        this.#itemLimits[server] = value
        return value
      })
      .catch(() => {
        this.#itemLimits[server] = undefined
        this.#itemLimitRetryAt[server] = Date.now() + this.#settings.maxRetryDelay
        return null
      })
    this.#itemLimits[server] = pending
    return pending
  }

  /**
   * Whether `bytes` of value fit the server's item size limit, with room for
   * the longest key and memcached's item header. Checked before sending,
   * because memcached drops the old item when a write is too large: a value
   * that does not fit is refused here and the old value survives.
   */
  async #fits(server: number, key: string, bytes: number): Promise<boolean> {
    const limit = await this.#itemLimit(server)
    if (limit === null || bytes + ITEM_OVERHEAD <= limit) return true
    this.#tooLarge(key, bytes)
    return false
  }

  #tooLarge(key: string, bytes: number): void {
    warnOnce(
      this.logger,
      'CACHETTE_MEMCACHED_TOO_LARGE',
      `${this.#name}: a value of ${bytes} bytes is over the server's item size limit and was not stored (${JSON.stringify(key)}); the previous value is kept; SpreadSASLMemcachedCache stores large values as chunks, or raise memcached's -I`,
    )
  }

  /** The server (`host:port`) that holds `key`: ketama over `keyPrefix + key`. */
  serverOf(key: string): string {
    return this.servers[this.#ring.serverOf(this.keyPrefix + key)] as string
  }

  // ---- namespaces ----------------------------------------------------------------

  /** The key prefix plus the server's namespace (`prefix + gen + ':'`), or `''` without a prefix. */
  #ns(gen: string): string {
    return gen === '' ? '' : `${this.keyPrefix}${gen}:`
  }

  /** The server's namespace, created if it has none (first use, eviction, restart). */
  #generation(server: number): string | Promise<string> {
    const known = this.#gens[server]
    if (known !== undefined) return known
    let pending = this.#genPending[server]
    if (pending === undefined) {
      pending = this.#loadGeneration(server).finally(() => {
        this.#genPending[server] = undefined
      })
      this.#genPending[server] = pending
    }
    return pending
  }

  async #loadGeneration(server: number): Promise<string> {
    const conn = this.#conns[server] as Connection
    const key = this.#nsKey as Buffer
    for (let attempt = 0; attempt < 3; attempt++) {
      const [found] = await conn.exec([{ opcode: Op.Get, key }])
      if (found?.status === Status.Ok) return this.#remember(server, found.value)
      const fresh = randomBytes(6).toString('base64url')
      const [added] = await conn.exec([
        { opcode: Op.Add, key, extras: storeExtras(0), value: Buffer.from(fresh, 'latin1') },
      ])
      if (added?.status === Status.Ok) return this.#remember(server, Buffer.from(fresh, 'latin1'))
    }
    throw new Error(`${this.#name}: could not read the namespace on ${conn.address.label}`)
  }

  #remember(server: number, value: Buffer): string {
    const gen = value.toString('latin1')
    this.#gens[server] = gen
    return gen
  }

  /**
   * Runs the requests `build` makes for the given namespace on one server.
   * With a key prefix, the namespace is read in the same write (a `GetQ`
   * ahead of the requests): if another process cleared it meanwhile, the
   * requests are built again for the new one and resent. Resolves the
   * responses to `build`'s requests.
   */
  async #onServer(server: number, build: (ns: string) => Request[]): Promise<(Response | null)[]> {
    const conn = this.#conns[server] as Connection
    const nsKey = this.#nsKey
    if (nsKey === undefined) return conn.exec(build(''))
    for (let attempt = 0; attempt < 3; attempt++) {
      const known = this.#generation(server)
      const gen = typeof known === 'string' ? known : await known
      const responses = await conn.exec([{ opcode: Op.GetQ, key: nsKey }, ...build(this.#ns(gen))])
      const current = responses[0]
      if (current?.status === Status.Ok && current.value.toString('latin1') === gen) {
        return responses.slice(1)
      }
      // Cleared elsewhere, evicted or the server restarted: learn the namespace and go again.
      if (this.#gens[server] === gen) this.#gens[server] = undefined
      if (current?.status === Status.Ok) this.#remember(server, current.value)
    }
    throw new Error(`${this.#name}: the namespace on ${conn.address.label} keeps changing`)
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
    if (!(await this.#fits(server, key, data.length))) return false
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
      this.#tooLarge(key, bytes)
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

  // ---- chunks (SpreadSASLMemcachedCache) -----------------------------------------

  /** Whether `data` must be stored as chunks. */
  #chunked(data: Buffer): boolean {
    return this.#chunkSize !== undefined && data.length > this.#chunkSize
  }

  /** Writes `data` as chunks under a fresh id; resolves the manifest to store at the key. */
  async #writeChunks(key: string, data: Buffer, expiration: number): Promise<Buffer> {
    const size = this.#chunkSize as number
    const count = Math.ceil(data.length / size)
    if (count > this.#maxChunks) {
      throw new UnserializableValueError(
        `${this.#name}: a value of ${data.length} bytes needs ${count} chunks of ${size} bytes, more than maxChunks (${this.#maxChunks})`,
      )
    }
    const m: Manifest = { id: randomBytes(6).toString('base64url'), count, bytes: data.length }
    const keys = chunkKeys(key, m)
    const stored = await Promise.all(
      keys.map((k, i) =>
        this.#store(Op.Set, k, data.subarray(i * size, (i + 1) * size), expiration),
      ),
    )
    if (stored.includes(false)) {
      await this.#deleteRaw(keys)
      throw new Error(
        `${this.#name}: a chunk was not stored (is chunkSize over the item size limit?)`,
      )
    }
    return Buffer.concat([MANIFEST, Buffer.from(`${m.id}:${m.count}:${m.bytes}`, 'latin1')])
  }

  /** The whole value of a manifest, or `undefined` if a chunk is gone. */
  async #readChunks(key: string, m: Manifest): Promise<Buffer | undefined> {
    const parts = await this.#getManyRaw(chunkKeys(key, m))
    if (parts.some((p) => p === undefined)) return undefined
    const whole = Buffer.concat(parts as Buffer[])
    return whole.length === m.bytes ? whole : undefined
  }

  /** Bytes as stored at `key` to the value's bytes: chunks are joined; `undefined` when incomplete. */
  async #resolve(key: string, data: Buffer | undefined): Promise<Buffer | undefined> {
    if (data === undefined || this.#chunkSize === undefined) return data
    const m = parseManifest(data)
    return m === undefined ? data : this.#readChunks(key, m)
  }

  /** Deletes the chunks of what is stored at `key`, if it is a manifest (best effort). */
  async #dropChunks(keys: readonly string[]): Promise<void> {
    if (this.#chunkSize === undefined) return
    const raws = await this.#getManyRaw(keys)
    const chunks: string[] = []
    raws.forEach((data, i) => {
      const m = data === undefined ? undefined : parseManifest(data)
      if (m !== undefined) chunks.push(...chunkKeys(keys[i] as string, m))
    })
    if (chunks.length > 0) await this.#deleteRaw(chunks)
  }

  // ---- the backend API -----------------------------------------------------------

  /** `GET` (and the chunks of a chunked value). An entry that cannot be decoded reads as a miss. */
  async get(key: string): Promise<unknown> {
    let data = await this.#getRaw(key)
    if (this.#chunkSize !== undefined) data = await this.#resolve(key, data)
    return data === undefined ? undefined : this.#decode(data, key)
  }

  /** `SET` with the expiry. Resolves `false` for a value over the item size limit (warned once). */
  async set(key: string, value: unknown, timeout?: number): Promise<boolean> {
    const data = encodeValue(value, this.serializer)
    const expiration = this.#expiration(timeout)
    const stored = this.#chunked(data) ? await this.#writeChunks(key, data, expiration) : data
    return this.#store(Op.Set, key, stored, expiration)
  }

  /** `ADD` with the expiry: atomic; an expired entry counts as absent. */
  async add(key: string, value: unknown, timeout?: number): Promise<boolean> {
    const data = encodeValue(value, this.serializer)
    const expiration = this.#expiration(timeout)
    if (!this.#chunked(data)) return this.#store(Op.Add, key, data, expiration)
    if (await this.has(key)) return false
    const manifest = await this.#writeChunks(key, data, expiration)
    const added = await this.#store(Op.Add, key, manifest, expiration)
    if (!added) await this.#deleteRaw(chunkKeys(key, parseManifest(manifest) as Manifest))
    return added
  }

  /** `DELETE`; resolves whether the key existed. */
  async delete(key: string): Promise<boolean> {
    await this.#dropChunks([key])
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
    if (this.#chunkSize !== undefined) {
      return (await this.#resolve(key, await this.#getRaw(key))) !== undefined
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
    if (this.#chunkSize === undefined) {
      return raws.map((data, i) =>
        data === undefined ? undefined : this.#decode(data, keys[i] as string),
      )
    }
    return Promise.all(
      raws.map(async (data, i) => {
        const key = keys[i] as string
        const whole = await this.#resolve(key, data)
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
        if (!this.#chunked(data)) {
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
              return this.#fits(server, keys[i] as string, (encoded[i] as Buffer).length)
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
    await this.#dropChunks(keys)
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
    throw new Error(
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
    const nsKey = this.#nsKey
    if (nsKey === undefined && !this.allowFlush) {
      throw new ConfigError(
        'CACHE_KEY_PREFIX',
        'clear() without a key prefix would flush every memcached server, other apps included; set CACHE_KEY_PREFIX, or pass CACHE_OPTIONS: { allowFlush: true } to allow flush_all',
      )
    }
    if (nsKey === undefined) {
      warnOnce(
        this.logger,
        'CACHETTE_MEMCACHED_FLUSH',
        `${this.#name}.clear(): no key prefix, so flush_all empties every server (allowFlush is set)`,
      )
    }
    const results = await Promise.allSettled(
      this.#conns.map(async (conn, server) => {
        if (nsKey === undefined) {
          const [r] = await conn.exec([{ opcode: Op.Flush }])
          if (r?.status !== Status.Ok) throw errorOf(`${this.#name}.clear`, r as Response)
          return
        }
        const fresh = Buffer.from(randomBytes(6).toString('base64url'), 'latin1')
        const [r] = await conn.exec([
          { opcode: Op.Set, key: nsKey, extras: storeExtras(0), value: fresh },
        ])
        if (r?.status !== Status.Ok) throw errorOf(`${this.#name}.clear`, r as Response)
        this.#remember(server, fresh)
      }),
    )
    const failed = results.flatMap((r, i) =>
      r.status === 'rejected' ? [`${this.servers[i]} (${(r.reason as Error).message})`] : [],
    )
    if (failed.length > 0) {
      throw new Error(`${this.#name}.clear: not cleared on ${failed.join(', ')}`)
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
    const answered = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
    const first = settled.find((r) => r.status === 'rejected')
    if (answered.length === 0 && first !== undefined) throw first.reason
    const out: Record<string, string | number> = { servers: this.servers.length }
    const version = answered[0]?.get('version')
    if (version !== undefined) out.version = version
    for (const name of SUMMED_STATS) {
      const values = answered.map((f) => f.get(name)).filter((v) => v !== undefined)
      if (values.length > 0) out[name] = values.reduce((sum, v) => sum + Number(v), 0)
    }
    const down = this.servers.filter((_, i) => settled[i]?.status === 'rejected')
    if (down.length > 0) out.down = down.join(', ')
    return out
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
export class SpreadSASLMemcachedCache extends SASLMemcachedCache {}
