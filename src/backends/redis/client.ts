/**
 * Internal: loading ioredis lazily, the few client methods the Redis backends
 * call (as structural types, so no public type depends on ioredis), the
 * fail-fast connection defaults, and the gate that makes the first commands
 * wait for the first connection attempt.
 */
import { createRequire } from 'node:module'
import { loadOptional, resolveOptional } from '../../core/optional.js'

/** What an ioredis `Redis` or `Cluster` emits and reports. */
export interface EventedClient {
  /** `'wait' | 'connecting' | 'connect' | 'ready' | 'close' | 'reconnecting' | 'end' | ...` */
  readonly status: string
  on(event: string, listener: (...args: never[]) => void): unknown
  once(event: string, listener: (...args: never[]) => void): unknown
  off(event: string, listener: (...args: never[]) => void): unknown
  /** Opens the connection of a client created with `lazyConnect`. */
  connect(): Promise<void>
  quit(): Promise<unknown>
  disconnect(): void
}

/** A key as sent to Redis: a JS string (sent as UTF-8) or raw bytes (as SCAN returns them). */
export type WireKey = string | Buffer

/** The replies of a pipeline: `[error, result]` per queued command. */
export type PipelineReplies = [Error | null, unknown][]

/** The non-transactional pipeline of ioredis (`client.pipeline()`). */
export interface PipelineLike {
  set(key: WireKey, value: Buffer, ...args: (string | number)[]): PipelineLike
  exec(): Promise<PipelineReplies | null>
}

/** The commands the backends send. Every ioredis `Redis` and `Cluster` has them. */
export interface CommandClient {
  getBuffer(key: WireKey): Promise<Buffer | null>
  mgetBuffer(...keys: WireKey[]): Promise<(Buffer | null)[]>
  set(key: WireKey, value: Buffer, ...args: (string | number)[]): Promise<string | null>
  del(...keys: WireKey[]): Promise<number>
  unlink(...keys: WireKey[]): Promise<number>
  exists(...keys: WireKey[]): Promise<number>
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>
  evalsha(sha: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>
  scanBuffer(cursor: Buffer | string, ...args: (string | number)[]): Promise<[Buffer, Buffer[]]>
  flushdb(mode?: 'ASYNC' | 'SYNC'): Promise<unknown>
  pipeline(): PipelineLike
}

/** An ioredis `Redis` instance (standalone or Sentinel-managed). */
export type RedisClient = CommandClient & EventedClient

/** An ioredis `Cluster` instance. */
export interface ClusterClient extends RedisClient {
  readonly isCluster: true
  /** The connections to the nodes of a role, as the cluster currently knows them. */
  nodes(role: 'master' | 'slave' | 'all'): RedisClient[]
}

/** What `require('ioredis')` gives. */
export interface IoRedisModule {
  Redis: new (options: Record<string, unknown>) => RedisClient
  Cluster: new (
    startupNodes: { host: string; port: number }[],
    options: Record<string, unknown>,
  ) => ClusterClient
}

/** The hash slot of a key (`cluster-key-slot`, which ioredis depends on and uses itself). */
export type SlotFunction = (key: WireKey) => number

/**
 * Loads ioredis synchronously on first use, so importing `cachette/redis` (or
 * `cachette`, whose registry names these backends) never needs it.
 * @throws {MissingDependencyError} naming `ioredis` when it is not installed.
 */
export function loadIoRedis(forWhat: string): IoRedisModule {
  return loadOptional<IoRedisModule>('ioredis', forWhat)
}

let slotOf: SlotFunction | undefined

/** `cluster-key-slot`, resolved from ioredis' own location (it is ioredis' dependency, not ours). */
export function loadSlotFunction(forWhat: string): SlotFunction {
  if (slotOf !== undefined) return slotOf
  loadIoRedis(forWhat)
  const fromIoRedis = createRequire(resolveOptional('ioredis'))
  slotOf = fromIoRedis('cluster-key-slot') as SlotFunction
  return slotOf
}

/** Reconnection delay: 50 ms doubling to a 2 s cap, plus jitter; never gives up, so caching resumes by itself. */
export function reconnectDelay(times: number): number {
  const base = Math.min(2000, 50 * 2 ** Math.min(Math.max(times - 1, 0), 6))
  return base + Math.floor(Math.random() * 100)
}

/** Reconnect (so the master is re-resolved) when a former master answers `-READONLY` after a failover. */
export function reconnectOnReadonly(error: Error): boolean {
  return /READONLY/.test(error.message)
}

/**
 * Per-connection defaults for a cache: commands fail at once while
 * disconnected (no offline queue that grows during an outage), a bounded
 * command and connect time, one retry, and reconnection forever.
 */
export const CONNECTION_DEFAULTS: Readonly<Record<string, unknown>> = Object.freeze({
  enableOfflineQueue: false,
  commandTimeout: 1000,
  connectTimeout: 2000,
  maxRetriesPerRequest: 1,
  retryStrategy: reconnectDelay,
})

/**
 * Holds back the first commands until the client's first connection attempt
 * has finished (ready, failed, or `timeoutMs` passed), so a cache used right
 * after construction works although the offline queue is off. After that
 * first attempt nothing waits: during an outage commands fail at once.
 * A client created with `lazyConnect` is connected by the first command.
 */
export class ReadyGate {
  readonly #client: EventedClient
  readonly #timeoutMs: number
  #done = false
  #pending: Promise<void> | undefined
  #wake: (() => void) | undefined
  readonly #finish = (): void => {
    if (this.#done) return
    this.#done = true
    this.#client.off('ready', this.#finish)
    this.#client.off('close', this.#finish)
    this.#client.off('end', this.#finish)
    this.#wake?.()
  }

  constructor(client: EventedClient, timeoutMs: number) {
    this.#client = client
    this.#timeoutMs = timeoutMs
    if (client.status === 'ready') {
      this.#done = true
      return
    }
    client.once('ready', this.#finish)
    client.once('close', this.#finish)
    client.once('end', this.#finish)
    // Already connecting: the wait is counted from now.
    if (client.status !== 'wait') this.#arm()
  }

  #arm(): Promise<void> {
    this.#pending ??= new Promise<void>((resolve) => {
      const timer = setTimeout(this.#finish, this.#timeoutMs)
      timer.unref()
      this.#wake = () => {
        clearTimeout(timer)
        this.#pending = undefined
        resolve()
      }
    })
    return this.#pending
  }

  /** A promise while the first connection attempt is under way; `undefined` after. */
  wait(): Promise<void> | undefined {
    if (this.#done) return undefined
    if (this.#pending === undefined) {
      const pending = this.#arm()
      if (this.#client.status === 'wait') this.#client.connect().catch(() => {})
      return pending
    }
    return this.#pending
  }

  /** Stops waiting (on close). */
  release(): void {
    this.#finish()
  }
}
