/**
 * `RedisBus`: the invalidation bus of `TieredCache` on Redis pub/sub, and
 * `redisBus()`, the helper that builds one from a Redis second tier.
 */
import type { CacheBackend } from '../../core/backend.js'
import {
  type Bus,
  type BusFactory,
  type BusListener,
  type BusMessage,
  type BusSubscription,
  decodeBusMessage,
  encodeBusMessage,
} from '../../core/bus.js'
import { BackendError, ConfigError } from '../../core/errors.js'
import { defaultLogger, ErrorReporter, type Logger } from '../../core/log.js'
import { CONNECTION_DEFAULTS, type EventedClient, loadIoRedis, ReadyGate } from './client.js'
import {
  clientKindOf,
  loadNodeRedis,
  type NodeRedisClient,
  NodeRedisPubSub,
  type NodeRedisSentinel,
  NodeRedisSentinelPubSub,
  nodeClientOptions,
  nodeRedisShape,
  settingsOf,
} from './node-redis.js'
import { checkClientOptions, standaloneConnection } from './options.js'
import type { RedisCacheOptions } from './types.js'

/** The ioredis `Redis` methods the bus uses (structural, so no public type needs ioredis). */
interface PubSubClient extends EventedClient {
  readonly options?: { readonly db?: number; readonly connectTimeout?: number }
  readonly isCluster?: boolean
  publish(channel: string, message: string): Promise<number>
  subscribe(...channels: string[]): Promise<unknown>
  unsubscribe(...channels: string[]): Promise<unknown>
  duplicate(override?: Record<string, unknown>): PubSubClient
  disconnect(reconnect?: boolean): void
}

/**
 * Options of {@link RedisBus}. Give `client`, or the connection (`url`, or
 * `host`/`port`/..., as for `RedisCache`).
 */
export interface RedisBusOptions
  extends Pick<RedisCacheOptions, 'url' | 'host' | 'port' | 'username' | 'password'> {
  /**
   * An ioredis `Redis` client (standalone or Sentinel) or a node-redis
   * client (`createClient()`) to publish with; the bus subscribes on a
   * duplicate of it. The bus never closes this client. Or `'node-redis'`
   * (`'ioredis'`, the default) to open the bus's connections with that
   * package from `url` or `host`/`port`.
   */
  client?: unknown
  /**
   * The database of the caches using the bus. Pub/sub ignores databases, so
   * it is part of the channel name: caches on different databases never
   * hear each other. Read from the client when one is given.
   * @default 0
   */
  db?: number
  /** More ioredis options for the connections the bus opens, over the fail-fast defaults. */
  clientOptions?: Record<string, unknown>
  /** Where connection errors are logged (rate-limited). @default console */
  logger?: Logger
}

/** Looks like an ioredis `Redis` (or `Cluster`) instance. */
function looksLikeClient(value: unknown): value is PubSubClient {
  const c = value as Partial<PubSubClient> | null
  return (
    typeof c === 'object' &&
    c !== null &&
    typeof c.publish === 'function' &&
    typeof c.duplicate === 'function' &&
    typeof c.on === 'function'
  )
}

const CLUSTER_HINT =
  'RedisBus needs a standalone or Sentinel connection; on a Redis Cluster, PUBLISH on any node reaches every node, so pass redisBus({ url }) naming one of them'

/**
 * An invalidation {@link Bus} on Redis pub/sub.
 *
 * - Publishes with the given client (a `RedisCache`'s own connection, with
 *   its fail-fast policy: a publish while disconnected rejects at once and
 *   the cache keeps the message for a retry), or with a connection it opens.
 * - Subscribes on a connection of its own (a `duplicate()`), shared by every
 *   cache on the bus, and resubscribes itself after a reconnection, telling
 *   its listeners `down` when the connection drops and `up` only once the
 *   `SUBSCRIBE` is confirmed again (ioredis' automatic resubscription gives
 *   no such signal).
 * - Messages are compact JSON ({@link encodeBusMessage}); anything else on
 *   the channel is ignored.
 */
export class RedisBus implements Bus {
  readonly #publisher: PubSubClient
  readonly #ownsPublisher: boolean
  readonly #subscriber: PubSubClient
  readonly #gate: ReadyGate
  readonly #prefix: string
  readonly #reporter: ErrorReporter
  /** Redis channel → listeners. */
  readonly #channels = new Map<string, Set<BusListener>>()
  /** Channels whose SUBSCRIBE was confirmed on the current connection. */
  readonly #active = new Set<string>()
  /** Bumped when the subscriber connection drops: a SUBSCRIBE sent before does not count after. */
  #connection = 0
  #syncing = false
  #resync = false
  #retry: NodeJS.Timeout | undefined
  #closed = false
  readonly #onError: (error: Error) => void

  /**
   * @throws {ConfigError} for a malformed URL, port or database, or a Cluster client.
   * @throws {MissingDependencyError} when ioredis is needed and not installed.
   */
  constructor(options: RedisBusOptions = {}) {
    const logger = options.logger ?? defaultLogger
    this.#reporter = new ErrorReporter(logger)
    this.#onError = (error) =>
      this.#reporter.report('RedisBus (redis connection)', error, 'reconnecting')
    let db: number | undefined
    const which = clientKindOf(options.client)
    const shape = nodeRedisShape(options.client)
    if (shape !== undefined) {
      if (shape === 'cluster') throw new ConfigError('CACHE_OPTIONS', CLUSTER_HINT)
      const raw = options.client
      this.#publisher = (shape === 'sentinel'
        ? new NodeRedisSentinelPubSub(raw as NodeRedisSentinel, settingsOf(raw), false)
        : new NodeRedisPubSub(raw as NodeRedisClient, settingsOf(raw))) as unknown as PubSubClient
      this.#ownsPublisher = false
      db = options.db ?? this.#publisher.options?.db
    } else if (which === undefined && options.client !== undefined && options.client !== null) {
      if (!looksLikeClient(options.client)) {
        throw new ConfigError('CACHE_OPTIONS', 'RedisBus: client must be an ioredis Redis client')
      }
      if (options.client.isCluster === true) throw new ConfigError('CACHE_OPTIONS', CLUSTER_HINT)
      this.#publisher = options.client
      this.#ownsPublisher = false
      db = options.db ?? options.client.options?.db
    } else {
      const clientOptions = { ...(options.clientOptions ?? {}) }
      checkClientOptions(clientOptions)
      const endpoint = standaloneConnection(options, clientOptions, 'CACHE_OPTIONS')
      const conn = endpoint.conn
      db = endpoint.db
      if (which === 'node-redis') {
        const { options: nodeOptions, settings } = nodeClientOptions(conn, clientOptions)
        const raw = loadNodeRedis('RedisBus').createClient(nodeOptions)
        const publisher = new NodeRedisPubSub(raw, settings)
        publisher.connect().catch(() => {})
        this.#publisher = publisher as unknown as PubSubClient
      } else {
        const io = loadIoRedis('RedisBus')
        this.#publisher = new io.Redis({
          ...CONNECTION_DEFAULTS,
          ...clientOptions,
          ...conn,
        }) as unknown as PubSubClient
      }
      this.#ownsPublisher = true
      this.#publisher.on('error', this.#onError)
    }
    this.#prefix = db !== undefined && db !== 0 ? `db${db}:` : ''
    // The publisher may still be connecting: the first publishes wait for it (at most connectTimeout).
    this.#gate = new ReadyGate(this.#publisher, this.#publisher.options?.connectTimeout ?? 2000)
    // Our own resubscription (see the class doc), and no offline queue: we only send when ready.
    this.#subscriber = this.#publisher.duplicate({
      autoResubscribe: false,
      enableOfflineQueue: false,
      lazyConnect: false,
    })
    this.#subscriber.on('error', this.#onError)
    this.#subscriber.on('ready', () => void this.#sync())
    this.#subscriber.on('close', () => this.#lost())
    this.#subscriber.on('message', ((channel: string, text: string) =>
      this.#deliver(channel, text)) as (...args: never[]) => void)
  }

  /** Whether the subscriber connection is ready (messages are being received). */
  get connected(): boolean {
    return this.#subscriber.status === 'ready'
  }

  #name(channel: string): string {
    return this.#prefix + channel
  }

  /**
   * `PUBLISH`es the encoded message. Waits for the publisher's first
   * connection attempt; after that, rejects at once while disconnected.
   */
  async publish(channel: string, message: BusMessage): Promise<void> {
    const pending = this.#gate.wait()
    if (pending !== undefined) await pending
    await this.#publisher.publish(this.#name(channel), encodeBusMessage(message))
  }

  /**
   * Adds `listener` to `channel` (one `SUBSCRIBE` per channel on the shared
   * subscriber connection); `up` follows once Redis confirms it.
   */
  async subscribe(channel: string, listener: BusListener): Promise<BusSubscription> {
    if (this.#closed) throw new BackendError('ERR_CACHETTE_BACKEND_UNAVAILABLE', 'RedisBus: closed')
    const name = this.#name(channel)
    let listeners = this.#channels.get(name)
    if (listeners === undefined) {
      listeners = new Set()
      this.#channels.set(name, listeners)
    }
    listeners.add(listener)
    if (this.#active.has(name)) listener.up()
    else void this.#sync()
    return {
      unsubscribe: async () => {
        const set = this.#channels.get(name)
        if (set === undefined || !set.delete(listener) || set.size > 0) return
        this.#channels.delete(name)
        const wasActive = this.#active.delete(name)
        if (wasActive && this.#subscriber.status === 'ready') {
          await this.#subscriber.unsubscribe(name).catch(() => {})
        }
      },
    }
  }

  /** Subscribes to every channel not yet confirmed on this connection, then tells their listeners `up`. */
  async #sync(): Promise<void> {
    if (this.#syncing) {
      this.#resync = true
      return
    }
    this.#syncing = true
    try {
      do {
        this.#resync = false
        if (this.#closed || this.#subscriber.status !== 'ready') return
        const wanted = [...this.#channels.keys()].filter((c) => !this.#active.has(c))
        if (wanted.length === 0) continue
        const connection = this.#connection
        try {
          await this.#subscriber.subscribe(...wanted)
        } catch (error) {
          this.#reporter.report('RedisBus subscribe', error, 'retrying in 1 s')
          this.#retry ??= setTimeout(() => {
            this.#retry = undefined
            void this.#sync()
          }, 1000).unref()
          return
        }
        // The connection dropped meanwhile: the next 'ready' subscribes again.
        if (connection !== this.#connection || this.#closed) return
        for (const name of wanted) {
          const listeners = this.#channels.get(name)
          if (listeners === undefined) continue
          this.#active.add(name)
          for (const listener of [...listeners]) listener.up()
        }
      } while (this.#resync)
    } finally {
      this.#syncing = false
    }
  }

  /** The subscriber connection dropped: every active channel's listeners may miss messages now. */
  #lost(): void {
    this.#connection++
    if (this.#closed) return
    for (const name of [...this.#active]) {
      for (const listener of [...(this.#channels.get(name) ?? [])]) listener.down()
    }
    this.#active.clear()
  }

  #deliver(channel: string, text: string): void {
    const listeners = this.#channels.get(channel)
    if (listeners === undefined) return
    const message = decodeBusMessage(text)
    if (message === undefined) return
    for (const listener of [...listeners]) {
      try {
        listener.message(message)
      } catch (error) {
        this.#reporter.report('RedisBus listener', error)
      }
    }
  }

  /** Closes the subscriber connection and the publisher if the bus opened it. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#retry !== undefined) clearTimeout(this.#retry)
    this.#gate.release()
    this.#channels.clear()
    this.#active.clear()
    const closing = [this.#subscriber, ...(this.#ownsPublisher ? [this.#publisher] : [])]
    await Promise.all(
      closing.map(async (client) => {
        try {
          await client.quit()
        } catch {
          // Not connected: nothing to say goodbye to.
        }
        client.disconnect()
      }),
    )
  }
}

/** What {@link redisBus} accepts: nothing, a URL, an ioredis or node-redis client, or {@link RedisBusOptions}. */
export type RedisBusSource = string | RedisBusOptions | object

/**
 * A bus factory for `TieredCache`'s `bus` option:
 *
 * - `redisBus()`: on the second tier's own Redis connection (a `RedisCache`
 *   or `RedisSentinelCache`): publishes with it, subscribes on a duplicate.
 * - `redisBus('redis://host:6379/0')` or `redisBus({ url, ... })`: on a
 *   connection of its own (for a second tier that is not Redis, or a Cluster).
 * - `redisBus(client)`: on an ioredis or node-redis client you own (never closed by cachette).
 * - `redisBus({ url, client: 'node-redis' })`: its own connections, with node-redis.
 *
 * The bus is built per cache and closed with it.
 *
 * @example
 * const cache = new Cache({
 *   CACHE_TYPE: TieredCache.over(RedisCache, { bus: redisBus(), firstTimeout: 60 }),
 *   CACHE_REDIS_URL: process.env.REDIS_URL,
 * })
 */
export function redisBus(source?: RedisBusSource): BusFactory {
  return (second: CacheBackend, { logger }) => {
    if (source === undefined) {
      const client = (second as { client?: unknown }).client
      // A node-redis object: the constructor says which kinds it can use.
      if (nodeRedisShape(client) !== undefined) return new RedisBus({ client, logger })
      if (!looksLikeClient(client)) {
        throw new ConfigError(
          'CACHE_TYPE',
          'redisBus() without arguments needs a Redis second tier (RedisCache, RedisSentinelCache); otherwise pass redisBus({ url }) or redisBus(client)',
        )
      }
      if (client.isCluster === true) throw new ConfigError('CACHE_TYPE', CLUSTER_HINT)
      return new RedisBus({ client, logger })
    }
    if (typeof source === 'string') return new RedisBus({ url: source, logger })
    if (looksLikeClient(source) || nodeRedisShape(source) !== undefined) {
      return new RedisBus({ client: source, logger })
    }
    return new RedisBus({ logger, ...(source as RedisBusOptions) })
  }
}
