/**
 * Internal: the Redis backends on node-redis (the `redis` package, v5 or
 * newer). An adapter maps the structural interfaces of client.ts
 * (`CommandClient`, `EventedClient`, the cluster's `nodes()`) and the
 * bus's pub/sub onto a node-redis client, Sentinel or Cluster, sending every
 * command with `sendCommand` (the same commands and bytes as the ioredis
 * path), bulk strings read as Buffers.
 */
import { EventEmitter } from 'node:events'
import { createRequire } from 'node:module'
import { describe } from '../../core/describe.js'
import { BackendError, ConfigError } from '../../core/errors.js'
import { loadOptional, resolveOptional } from '../../core/optional.js'
import {
  type ClusterClient,
  type PipelineLike,
  type PipelineReplies,
  type RedisClient,
  reconnectDelay,
  type SlotFunction,
  type WireKey,
} from './client.js'

/** A command argument as node-redis sends it. */
type Arg = string | Buffer

/** Per-command options of node-redis (`CommandOptions`): the reply types and a timeout. */
interface NodeCommandOptions {
  typeMapping?: Record<number, unknown>
  timeout?: number
}

/** The members of a node-redis `RedisClient`, `RedisSentinel` or `RedisCluster` used here. */
interface NodeRedisBase {
  readonly isOpen: boolean
  on(event: string, listener: (...args: never[]) => void): unknown
  off(event: string, listener: (...args: never[]) => void): unknown
  connect(): Promise<unknown>
  close(): Promise<unknown>
  destroy(): unknown
  withTypeMapping(mapping: Record<number, unknown>): unknown
}

/** The pub/sub commands a node-redis client and a Sentinel both have (RedisBus uses them). */
interface NodeRedisSubscriber {
  /** Subscribes `listener` to `channels`. */
  subscribe(
    channels: string[],
    listener: (message: string, channel: string) => void,
  ): Promise<unknown>
  /** Removes `listener` (or every listener) from `channels`. */
  unsubscribe(
    channels: string[],
    listener?: (message: string, channel: string) => void,
  ): Promise<unknown>
}

/** A node-redis `RedisClient` (`createClient()`). */
export interface NodeRedisClient extends NodeRedisBase, NodeRedisSubscriber {
  readonly isReady: boolean
  readonly options?: { readonly database?: number; readonly socket?: { connectTimeout?: number } }
  sendCommand(args: readonly Arg[], options?: NodeCommandOptions): Promise<unknown>
  duplicate(overrides?: Record<string, unknown>): NodeRedisClient
  publish(channel: string, message: string): Promise<number>
}

/** A node-redis `RedisSentinel` (`createSentinel()`). */
export interface NodeRedisSentinel extends NodeRedisBase, NodeRedisSubscriber {
  readonly isReady: boolean
  sendCommand(
    readonly: boolean | undefined,
    args: readonly Arg[],
    options?: NodeCommandOptions,
  ): Promise<unknown>
}

/** A node of a cluster's topology (`cluster.masters`). */
interface NodeRedisShard {
  readonly host: string
  readonly port: number
}

/** A node-redis `RedisCluster` (`createCluster()`). */
interface NodeRedisCluster extends NodeRedisBase {
  readonly masters: readonly NodeRedisShard[]
  sendCommand(
    firstKey: Arg | undefined,
    readonly: boolean | undefined,
    args: readonly Arg[],
    options?: NodeCommandOptions,
  ): Promise<unknown>
  nodeClient(node: NodeRedisShard): Promise<NodeRedisClient>
}

/** What `require('redis')` gives. */
export interface NodeRedisModule {
  createClient(options: Record<string, unknown>): NodeRedisClient
  createSentinel(options: Record<string, unknown>): NodeRedisSentinel
  createCluster(options: Record<string, unknown>): NodeRedisCluster
  RESP_TYPES: { readonly BLOB_STRING: number }
}

/** Which client package a backend runs on. */
export type ClientKind = 'ioredis' | 'node-redis'

/** The names `CACHE_OPTIONS: { client }` accepts. */
export const CLIENT_KINDS: readonly ClientKind[] = ['ioredis', 'node-redis']

/**
 * Loads node-redis synchronously on first use.
 * @throws {MissingDependencyError} naming `redis` when it is not installed.
 */
export function loadNodeRedis(forWhat: string): NodeRedisModule {
  return loadOptional<NodeRedisModule>('redis', forWhat)
}

let slotOf: SlotFunction | undefined

/** `cluster-key-slot`, resolved from node-redis' client package (its dependency, not ours). */
export function loadNodeRedisSlotFunction(forWhat: string): SlotFunction {
  if (slotOf !== undefined) return slotOf
  loadNodeRedis(forWhat)
  const fromRedis = createRequire(resolveOptional('redis'))
  const fromClient = createRequire(fromRedis.resolve('@redis/client'))
  slotOf = fromClient('cluster-key-slot') as SlotFunction
  return slotOf
}

function hasFunctions(value: object, names: readonly string[]): boolean {
  const v = value as Record<string, unknown>
  return names.every((n) => typeof v[n] === 'function')
}

/** Whether `value` looks like a node-redis client, Sentinel or Cluster (structurally). */
export function isNodeRedis(value: unknown): value is NodeRedisBase {
  return (
    typeof value === 'object' &&
    value !== null &&
    hasFunctions(value, ['sendCommand', 'withTypeMapping', 'connect', 'on', 'off']) &&
    typeof (value as { isOpen?: unknown }).isOpen === 'boolean'
  )
}

/** Which kind of node-redis object `value` is; `undefined` if it is none. */
export function nodeRedisShape(value: unknown): 'client' | 'sentinel' | 'cluster' | undefined {
  if (!isNodeRedis(value)) return undefined
  if (hasFunctions(value, ['nodeClient', 'getSlotMaster'])) return 'cluster'
  if (hasFunctions(value, ['getMasterNode', 'acquire'])) return 'sentinel'
  if (hasFunctions(value, ['duplicate'])) return 'client'
  return undefined
}

/**
 * The client kind named by `CACHE_OPTIONS: { client }`, or `undefined` when
 * `value` is not a name (an instance, or nothing).
 * @throws {ConfigError} naming `CACHE_OPTIONS` for an unknown name or a value that is neither.
 */
export function clientKindOf(value: unknown): ClientKind | undefined {
  if (value === undefined || value === null || typeof value === 'object') return undefined
  if (typeof value === 'string' && (CLIENT_KINDS as readonly string[]).includes(value)) {
    return value as ClientKind
  }
  throw new ConfigError(
    'CACHE_OPTIONS',
    `client must be 'ioredis', 'node-redis' or a connected client instance, got ${describe(value)}`,
  )
}

// ---- options ---------------------------------------------------------------------

/** What the adapters need to know besides the client. */
export interface NodeRedisSettings {
  /** Each command's deadline, in ms (node-redis' own command timeout, plus a guard on top). */
  readonly commandTimeout: number
  /** The first connection attempt's deadline, in ms. */
  readonly connectTimeout: number
}

/** Reconnection for node-redis: the same backoff as ioredis' `retryStrategy`, forever. */
export function nodeReconnectStrategy(retries: number): number {
  return reconnectDelay(retries + 1)
}

function positive(value: unknown, fallback: number): number {
  return typeof value === 'number' && value > 0 && Number.isFinite(value) ? value : fallback
}

/**
 * Builds node-redis `createClient` options from cachette's connection (the
 * ioredis-shaped `conn` of options.ts) and the pass-through client options:
 * no offline queue, a 2 s connect timeout, reconnection forever with
 * backoff. `commandTimeout` and `connectTimeout` are read as in ioredis.
 */
export function nodeClientOptions(
  conn: Readonly<Record<string, unknown>>,
  passThrough: Readonly<Record<string, unknown>>,
): { options: Record<string, unknown>; settings: NodeRedisSettings } {
  const { commandTimeout, connectTimeout, socket, ...rest } = passThrough
  const settings: NodeRedisSettings = {
    commandTimeout: positive(commandTimeout, 1000),
    connectTimeout: positive(connectTimeout, 2000),
  }
  const sock: Record<string, unknown> = {
    connectTimeout: settings.connectTimeout,
    reconnectStrategy: nodeReconnectStrategy,
    ...((socket as Record<string, unknown> | undefined) ?? {}),
  }
  if (conn.path !== undefined) sock.path = conn.path
  if (conn.host !== undefined) sock.host = conn.host
  if (conn.port !== undefined) sock.port = conn.port
  if (conn.tls !== undefined) {
    sock.tls = true
    Object.assign(sock, conn.tls as object)
  }
  const options: Record<string, unknown> = { disableOfflineQueue: true, ...rest, socket: sock }
  if (conn.username !== undefined) options.username = conn.username
  if (conn.password !== undefined) options.password = conn.password
  if (conn.db !== undefined) options.database = conn.db
  return { options, settings }
}

// ---- the adapters ----------------------------------------------------------------

/** How an adapter sends one command: the arguments, and the key that routes it (cluster). */
type Sender = (args: readonly Arg[], firstKey: Arg | undefined) => Promise<unknown>

/**
 * Bulk strings as Buffers (`{ [RESP_TYPES.BLOB_STRING]: Buffer }`; the type is
 * the RESP byte `$`, so an adopted client needs no import of `redis` here).
 */
const bufferReply = (): Record<number, unknown> => ({ [BLOB_STRING]: Buffer })
const BLOB_STRING = 36

/** A rejection after `ms`, so that no command can hang whatever node-redis does. */
function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new BackendError(
            'ERR_CACHETTE_BACKEND_FAILED',
            `${what}: no answer from Redis within ${ms} ms`,
          ),
        ),
      ms,
    )
    timer.unref()
  })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}

const text = (v: unknown): unknown => (Buffer.isBuffer(v) ? v.toString() : v)

/**
 * Maps client.ts' interfaces onto a node-redis object. `status` and the
 * `'ready' | 'close' | 'end' | 'error'` events follow ioredis' meaning:
 * `'close'` when a connection attempt fails or an open connection drops.
 */
class NodeRedisAdapter extends EventEmitter implements RedisClient {
  readonly raw: NodeRedisBase
  readonly #send: Sender
  readonly #settings: NodeRedisSettings
  readonly #isReady: () => boolean
  #started: boolean
  #ended = false
  #attached = false
  readonly #forward: [string, (...args: never[]) => void][]

  constructor(
    raw: NodeRedisBase,
    send: Sender,
    settings: NodeRedisSettings,
    isReady: () => boolean,
    readyEvents: boolean,
  ) {
    super()
    this.raw = raw
    this.#send = send
    this.#settings = settings
    this.#isReady = isReady
    this.#started = raw.isOpen
    const onError = ((error: unknown) => {
      if (this.listenerCount('error') > 0) {
        this.emit('error', error instanceof Error ? error : new Error(String(error)))
      }
      if (!this.#isReady()) this.emit('close')
    }) as (...args: never[]) => void
    this.#forward = [['error', onError]]
    if (readyEvents) {
      this.#forward.push(
        ['ready', (() => this.emit('ready')) as (...args: never[]) => void],
        ['reconnecting', (() => this.emit('close')) as (...args: never[]) => void],
        ['end', (() => this.emit('end')) as (...args: never[]) => void],
      )
    }
  }

  /** Listens on the node-redis object while anyone listens here (so an adopted client is left as found). */
  #sync(): void {
    const wanted = this.eventNames().length > 0
    if (wanted === this.#attached) return
    this.#attached = wanted
    for (const [event, fn] of this.#forward) {
      if (wanted) this.raw.on(event, fn)
      else this.raw.off(event, fn)
    }
  }

  override on(event: string | symbol, listener: (...args: never[]) => void): this {
    super.on(event, listener as (...args: unknown[]) => void)
    this.#sync()
    return this
  }

  override once(event: string | symbol, listener: (...args: never[]) => void): this {
    super.once(event, listener as (...args: unknown[]) => void)
    this.#sync()
    return this
  }

  override off(event: string | symbol, listener: (...args: never[]) => void): this {
    super.off(event, listener as (...args: unknown[]) => void)
    this.#sync()
    return this
  }

  get status(): string {
    if (this.#ended) return 'end'
    if (this.#isReady()) return 'ready'
    if (!this.#started && !this.raw.isOpen) return 'wait'
    return 'connecting'
  }

  /** For ready-event-less objects (Sentinel, Cluster): the adapter says `'ready'` when `connect()` resolves. */
  protected markReady(): void {
    this.emit('ready')
  }

  async connect(): Promise<void> {
    if (this.#started || this.raw.isOpen) return
    this.#started = true
    await this.raw.connect()
  }

  /** Connects now, retrying a failed first attempt (Sentinel and Cluster give up after one). */
  startConnecting(retry: boolean): void {
    if (this.#started || this.raw.isOpen) return
    this.#started = true
    let attempt = 0
    const tryOnce = (): void => {
      this.raw.connect().then(
        () => this.markReady(),
        (error: unknown) => {
          if (this.listenerCount('error') > 0) {
            this.emit('error', error instanceof Error ? error : new Error(String(error)))
          }
          this.emit('close')
          if (!retry || this.#ended) return
          setTimeout(() => {
            if (!this.#ended && !this.raw.isOpen) tryOnce()
          }, reconnectDelay(++attempt)).unref()
        },
      )
    }
    tryOnce()
  }

  async quit(): Promise<unknown> {
    this.#ended = true
    if (!this.raw.isOpen) return undefined
    return withDeadline(this.raw.close(), this.#settings.connectTimeout, 'QUIT')
  }

  disconnect(): void {
    this.#ended = true
    try {
      const done = this.raw.destroy()
      if (done instanceof Promise) done.catch(() => {})
    } catch {
      // Already closed.
    }
  }

  /**
   * One command, bounded by the command timeout: node-redis' own timeout
   * stops at the write (a written command then waits for its reply as long
   * as the connection lives), so a deadline is set on top of it.
   */
  command(args: readonly Arg[], firstKey: Arg | undefined = args[1]): Promise<unknown> {
    const what = String(args[0])
    return withDeadline(this.#send(args, firstKey), this.#settings.commandTimeout + 250, what)
  }

  async getBuffer(key: WireKey): Promise<Buffer | null> {
    return (await this.command(['GET', key])) as Buffer | null
  }

  async mgetBuffer(...keys: WireKey[]): Promise<(Buffer | null)[]> {
    return (await this.command(['MGET', ...keys])) as (Buffer | null)[]
  }

  async set(key: WireKey, value: Buffer, ...args: (string | number)[]): Promise<string | null> {
    return text(await this.command(['SET', key, value, ...args.map(String)])) as string | null
  }

  async del(...keys: WireKey[]): Promise<number> {
    return Number(await this.command(['DEL', ...keys]))
  }

  async unlink(...keys: WireKey[]): Promise<number> {
    return Number(await this.command(['UNLINK', ...keys]))
  }

  async exists(...keys: WireKey[]): Promise<number> {
    return Number(await this.command(['EXISTS', ...keys]))
  }

  async eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown> {
    const a = args.map(String)
    return text(await this.command(['EVAL', script, String(numKeys), ...a], a[0]))
  }

  async evalsha(sha: string, numKeys: number, ...args: (string | number)[]): Promise<unknown> {
    const a = args.map(String)
    return text(await this.command(['EVALSHA', sha, String(numKeys), ...a], a[0]))
  }

  async scanBuffer(
    cursor: Buffer | string,
    ...args: (string | number)[]
  ): Promise<[Buffer, Buffer[]]> {
    const reply = (await this.command(['SCAN', cursor, ...args.map(String)], undefined)) as [
      Buffer,
      Buffer[],
    ]
    return reply
  }

  async flushdb(mode?: 'ASYNC' | 'SYNC'): Promise<unknown> {
    return text(await this.command(mode ? ['FLUSHDB', mode] : ['FLUSHDB'], undefined))
  }

  async info(section?: string): Promise<string> {
    return String(text(await this.command(section ? ['INFO', section] : ['INFO'], undefined)))
  }

  /** Commands sent in the same tick: node-redis writes them out together (one round trip). */
  pipeline(): PipelineLike {
    const queued: (() => Promise<unknown>)[] = []
    const p: PipelineLike = {
      set: (key, value, ...args) => {
        queued.push(() => this.set(key, value, ...args))
        return p
      },
      exec: async () => {
        const settled = await Promise.allSettled(queued.map((run) => run()))
        return settled.map((s) =>
          s.status === 'fulfilled' ? [null, s.value] : [s.reason as Error, null],
        ) as PipelineReplies
      },
    }
    return p
  }

  /** `PUBLISH` (the bus publishes with the cache's own connection). */
  async publish(channel: string, message: string): Promise<number> {
    return Number(await this.command(['PUBLISH', channel, message], undefined))
  }
}

/** A standalone node-redis client. */
class ClientAdapter extends NodeRedisAdapter {
  readonly client: NodeRedisClient
  constructor(raw: NodeRedisClient, settings: NodeRedisSettings) {
    const options: NodeCommandOptions = {
      typeMapping: bufferReply(),
      timeout: settings.commandTimeout,
    }
    super(
      raw,
      (args) => raw.sendCommand(args, options),
      settings,
      () => raw.isReady,
      true,
    )
    this.client = raw
  }

  get options(): { db?: number; connectTimeout?: number; host?: string; port?: number } {
    const o = this.client.options as
      | { database?: number; socket?: { host?: string; port?: number; connectTimeout?: number } }
      | undefined
    return {
      db: o?.database,
      connectTimeout: o?.socket?.connectTimeout,
      host: o?.socket?.host,
      port: o?.socket?.port,
    }
  }
}

/** A node-redis Sentinel: every command to the master. */
class SentinelAdapter extends NodeRedisAdapter {
  constructor(raw: NodeRedisSentinel, settings: NodeRedisSettings) {
    const options: NodeCommandOptions = {
      typeMapping: bufferReply(),
      timeout: settings.commandTimeout,
    }
    super(
      raw,
      (args) => raw.sendCommand(false, args, options),
      settings,
      () => raw.isReady,
      false,
    )
  }
}

/** A node-redis Cluster: commands routed by their first key, `nodes('master')` for SCAN, FLUSHDB and INFO. */
class ClusterAdapter extends NodeRedisAdapter implements ClusterClient {
  readonly isCluster = true as const
  readonly #cluster: NodeRedisCluster
  readonly #settings: NodeRedisSettings

  /**
   * Ready once the slots are known (like an ioredis `Cluster`, it stays ready
   * while single nodes are down: their commands fail, the others work).
   */
  constructor(raw: NodeRedisCluster, settings: NodeRedisSettings) {
    const options: NodeCommandOptions = {
      typeMapping: bufferReply(),
      timeout: settings.commandTimeout,
    }
    super(
      raw,
      (args, firstKey) => raw.sendCommand(firstKey, false, args, options),
      settings,
      () => raw.isOpen && raw.masters.length > 0,
      false,
    )
    this.#cluster = raw
    this.#settings = settings
  }

  /** Connects an adopted cluster that was not connected yet; `'ready'` once its slots are known. */
  override async connect(): Promise<void> {
    await super.connect()
    this.markReady()
  }

  nodes(role: 'master' | 'slave' | 'all'): RedisClient[] {
    if (role !== 'master') throw new Error(`nodes('${role}') is not used`)
    return this.#cluster.masters.map((shard) => {
      const options: NodeCommandOptions = {
        typeMapping: bufferReply(),
        timeout: this.#settings.commandTimeout,
      }
      const node = new NodeRedisAdapter(
        this.raw,
        async (args) => (await this.#cluster.nodeClient(shard)).sendCommand(args, options),
        this.#settings,
        () => true,
        false,
      )
      return Object.assign(node, { options: { host: shard.host, port: shard.port } })
    })
  }
}

/** The adapter of a node-redis object (`shape` from {@link nodeRedisShape}). */
export function adaptNodeRedis(
  raw: unknown,
  shape: 'client' | 'sentinel' | 'cluster',
  settings: NodeRedisSettings,
): NodeRedisAdapter {
  switch (shape) {
    case 'client':
      return new ClientAdapter(raw as NodeRedisClient, settings)
    case 'sentinel':
      return new SentinelAdapter(raw as NodeRedisSentinel, settings)
    case 'cluster':
      return new ClusterAdapter(raw as NodeRedisCluster, settings)
  }
}

export type { NodeRedisAdapter }

// ---- pub/sub for RedisBus -------------------------------------------------------------

/**
 * The bus's view of a node-redis client: ioredis' `subscribe(...channels)`
 * and `'message'` events, `duplicate()` for the subscriber connection.
 */
export class NodeRedisPubSub extends ClientAdapter {
  readonly #settings: NodeRedisSettings
  readonly #onMessage = (message: string, channel: string): void => {
    this.emit('message', channel, message)
  }

  constructor(raw: NodeRedisClient, settings: NodeRedisSettings) {
    super(raw, settings)
    this.#settings = settings
  }

  override async publish(channel: string, message: string): Promise<number> {
    return withDeadline(
      this.client.publish(channel, message),
      this.#settings.commandTimeout,
      'PUBLISH',
    )
  }

  async subscribe(...channels: string[]): Promise<unknown> {
    return withDeadline(
      this.client.subscribe(channels, this.#onMessage),
      this.#settings.commandTimeout,
      'SUBSCRIBE',
    )
  }

  async unsubscribe(...channels: string[]): Promise<unknown> {
    return this.client.unsubscribe(channels, this.#onMessage)
  }

  /** A connection of its own with the same options (and no offline queue), connected at once. */
  duplicate(): NodeRedisPubSub {
    const copy = this.client.duplicate({ disableOfflineQueue: true })
    const adapter = new NodeRedisPubSub(copy, this.#settings)
    copy.on('error', () => {})
    adapter.connect().catch(() => {})
    return adapter
  }
}

/** The settings of a client cachette did not create: the defaults, or what its options say. */
export function settingsOf(raw: unknown): NodeRedisSettings {
  const o = (raw as { options?: { socket?: { connectTimeout?: unknown } } }).options
  return { commandTimeout: 1000, connectTimeout: positive(o?.socket?.connectTimeout, 2000) }
}

/**
 * The bus's view of a node-redis Sentinel: `PUBLISH` to the master, and
 * `SUBSCRIBE` through the Sentinel's own pub/sub connection, which follows
 * the master across failovers and resubscribes by itself. The Sentinel emits
 * no ready or close events, so its readiness is watched (every 100 ms) to
 * tell the bus `'close'` and `'ready'`. `duplicate()` shares the Sentinel:
 * closing the duplicate only drops its subscriptions, never the Sentinel.
 */
export class NodeRedisSentinelPubSub extends NodeRedisAdapter {
  readonly sentinel: NodeRedisSentinel
  readonly #settings: NodeRedisSettings
  readonly #channels = new Set<string>()
  #watch: NodeJS.Timeout | undefined
  #wasReady: boolean
  #closed = false
  readonly #onMessage = (message: string, channel: string): void => {
    this.emit('message', channel, message)
  }

  constructor(raw: NodeRedisSentinel, settings: NodeRedisSettings, watch: boolean) {
    const options: NodeCommandOptions = { timeout: settings.commandTimeout }
    super(
      raw,
      (args) => raw.sendCommand(false, args, options),
      settings,
      () => raw.isReady,
      false,
    )
    this.sentinel = raw
    this.#settings = settings
    this.#wasReady = raw.isReady
    if (watch) {
      this.#watch = setInterval(() => {
        const ready = raw.isReady
        if (ready === this.#wasReady) return
        this.#wasReady = ready
        this.emit(ready ? 'ready' : 'close')
      }, 100)
      this.#watch.unref()
    }
  }

  get options(): { db?: number; connectTimeout?: number } {
    return { connectTimeout: this.#settings.connectTimeout }
  }

  async subscribe(...channels: string[]): Promise<unknown> {
    for (const c of channels) this.#channels.add(c)
    return withDeadline(
      this.sentinel.subscribe(channels, this.#onMessage),
      this.#settings.commandTimeout,
      'SUBSCRIBE',
    )
  }

  async unsubscribe(...channels: string[]): Promise<unknown> {
    for (const c of channels) this.#channels.delete(c)
    return this.sentinel.unsubscribe(channels, this.#onMessage)
  }

  /** A subscriber on the same Sentinel, watching its readiness. */
  duplicate(): NodeRedisSentinelPubSub {
    return new NodeRedisSentinelPubSub(this.sentinel, this.#settings, true)
  }

  /** Drops this adapter's subscriptions; the Sentinel stays open (it belongs to its owner). */
  override async quit(): Promise<unknown> {
    this.disconnect()
    const channels = [...this.#channels]
    this.#channels.clear()
    if (channels.length === 0 || !this.sentinel.isReady) return undefined
    return this.sentinel.unsubscribe(channels, this.#onMessage).catch(() => {})
  }

  override disconnect(): void {
    this.#closed = true
    if (this.#watch !== undefined) clearInterval(this.#watch)
    this.#watch = undefined
  }

  override get status(): string {
    if (this.#closed) return 'end'
    return this.sentinel.isReady ? 'ready' : 'connecting'
  }
}
