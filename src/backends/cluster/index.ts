import { type BackendFactoryOptions, BaseCache, type BaseCacheOptions } from '../../core/backend.js'
import { ConfigError } from '../../core/errors.js'
import { warnOnce } from '../../core/log.js'
import { nodeBuiltin } from '../../core/runtime.js'
import type { SimpleCache } from '../memory/index.js'
import { type WorkerChannel, workerChannel } from './channel.js'
import {
  type ClusterCacheHost,
  type ClusterServeOptions,
  type ClusterStoreSettings,
  clusterHost,
} from './host.js'
import { fromWire, isMessage, Op, toWire } from './wire.js'

export type { ClusterCacheHost, ClusterServeOptions } from './host.js'

/** `node:cluster`, loaded on first use: workerd has none, and `import 'cachette'` must still work there. */
function nodeCluster(): typeof import('node:cluster').default {
  return nodeBuiltin<typeof import('node:cluster').default>(
    'node:cluster',
    'ClusterCache',
    'SimpleCache or CloudflareKVCache',
  )
}

/** Options of {@link ClusterCache}. */
/**
 * Whether an IPC message is ClusterCache's own traffic (a worker's batch of
 * operations or the primary's answers), which reaches every `message`
 * listener the app has on `cluster`, on a `Worker` and on `process`. Skip
 * those in the app's own handlers:
 *
 * ```ts
 * cluster.on('message', (worker, message) => {
 *   if (isCachetteMessage(message)) return
 *   handleAppMessage(worker, message)
 * })
 * ```
 *
 * ClusterCache's messages are plain objects whose `cachette` field is
 * `'cluster'`; any other message, the app's own, is left alone by cachette.
 */
export function isCachetteMessage(message: unknown): boolean {
  return isMessage(message)
}

export interface ClusterCacheOptions extends BaseCacheOptions {
  /**
   * The store's name: ClusterCaches with the same name share entries; other
   * names are separate stores in the same primary. `CACHE_UWSGI_NAME` sets it
   * (the part before any `@`).
   * @default 'default'
   */
  name?: string
  /**
   * The most entries the store keeps (least recently used go first). The
   * process that opens a store first sets it, unless the primary gave one to
   * `ClusterCache.serve()`. `0` means 500. `CACHE_THRESHOLD` sets it.
   * @default 500
   */
  threshold?: number
  /**
   * Seconds a worker waits for the primary's answer before the call fails
   * (the `Cache` facade then treats it as a miss and logs it).
   * `CACHE_OPTIONS: { requestTimeout }` sets it.
   * @default 1
   */
  requestTimeout?: number
}

/** A constructor of {@link ClusterCache} or of a subclass, as the static `factory` uses through `this`. */
export type ClusterCacheClass = new (options: ClusterCacheOptions) => ClusterCache

const ALIASES = new Set(['UWSGICache', 'uwsgi'])

function typeName(type: unknown): string | undefined {
  return typeof type === 'string' ? type.slice(type.lastIndexOf('.') + 1) : undefined
}

/**
 * One in-memory cache shared by every worker of a Node cluster (`node:cluster`),
 * without a cache server: the primary process holds the entries (a
 * SimpleCache per store name, bounded by `threshold`) and workers reach it
 * over the cluster's IPC channel. What one worker stores, every worker reads;
 * `inc`, `add` and locks are atomic across workers; a worker that dies or
 * restarts loses nothing. The counterpart of Flask-Caching's UWSGICache.
 *
 * The primary must serve the store: call {@link ClusterCache.serve} there
 * before forking (constructing a ClusterCache in the primary serves too).
 * In a process that is not a cluster worker, a ClusterCache uses the store
 * in its own process: it behaves as a SimpleCache.
 *
 * ```ts
 * if (cluster.isPrimary) {
 *   ClusterCache.serve()
 *   for (let i = 0; i < 4; i++) cluster.fork()
 * } else {
 *   const cache = new Cache({ CACHE_TYPE: 'ClusterCache', CACHE_THRESHOLD: 10_000 })
 *   // ...
 * }
 * ```
 *
 * Calls from a worker take an IPC round trip (tens of microseconds; calls in
 * one tick share one message). A primary that does not answer within
 * `requestTimeout` makes the call fail (a miss through the facade): a busy
 * primary slows nothing down for longer than that. When the primary exits,
 * its workers exit with it and the entries are gone.
 */
export class ClusterCache extends BaseCache {
  /** The store's name. */
  readonly name: string
  /** The most entries the store keeps, as asked for (the store may have been opened with another). */
  readonly threshold: number
  /** Seconds a worker waits for the primary. */
  readonly requestTimeout: number
  /** True in a cluster worker (the store is in the primary); false when the store is in this process. */
  readonly remote: boolean
  /** In the primary (or a lone process) the store is local; in a worker its primary can be busy. */
  get inProcess(): boolean {
    return !this.remote
  }
  readonly #timeoutMs: number
  readonly #channel: WorkerChannel | undefined
  /** In the primary or outside a cluster: the store in this process, and the host that runs its operations. */
  readonly #store: SimpleCache | undefined
  readonly #host: ClusterCacheHost | undefined
  #closed = false

  /**
   * Starts serving ClusterCache stores to this process's workers. Call it in
   * the primary before forking: a worker's calls that arrive before it are
   * not answered (they time out, as misses). Idempotent. Returns the host,
   * whose `close()` stops serving and drops the stores.
   */
  static serve(options?: ClusterServeOptions): ClusterCacheHost {
    if (options?.threshold !== undefined) thresholdOf(options.threshold, 'threshold')
    return clusterHost().serve(options)
  }

  /**
   * Builds a ClusterCache from configuration: `CACHE_UWSGI_NAME` (the store
   * name), `CACHE_THRESHOLD`, `CACHE_OPTIONS: { requestTimeout }` and the
   * common options. `CACHE_TYPE: 'UWSGICache'` (or `'uwsgi'`) comes here too,
   * with a one-time note.
   */
  static factory(
    this: ClusterCacheClass,
    _app: object | undefined,
    config: Readonly<Record<string, unknown>>,
    _args: unknown[],
    options: BackendFactoryOptions,
  ): ClusterCache {
    const type = typeName(config.CACHE_TYPE)
    const uwsgiName = config.CACHE_UWSGI_NAME as string | undefined
    if ((type !== undefined && ALIASES.has(type)) || uwsgiName?.includes('@')) {
      warnOnce(
        options.logger ?? console,
        'CACHETTE_UWSGI',
        `CACHE_TYPE ${JSON.stringify(config.CACHE_TYPE)} uses ClusterCache: Node has no uWSGI, so the ` +
          'entries live in the node:cluster primary process (call ClusterCache.serve() there) and are ' +
          'shared by the workers of this host only; CACHE_UWSGI_NAME names the store (an @host part is ignored)',
      )
    }
    return new this({
      ...options,
      name: uwsgiName?.split('@')[0] || undefined,
      threshold: config.CACHE_THRESHOLD as number | undefined,
    })
  }

  constructor(options: ClusterCacheOptions = {}) {
    super(options)
    const name = options.name ?? 'default'
    if (typeof name !== 'string' || name === '') {
      throw new ConfigError('name', `expected a non-empty string, got ${JSON.stringify(name)}`)
    }
    const timeout = options.requestTimeout ?? 1
    if (typeof timeout !== 'number' || !(timeout > 0) || !Number.isFinite(timeout)) {
      throw new ConfigError(
        'requestTimeout',
        `expected a positive number of seconds, got ${String(timeout)}`,
      )
    }
    this.name = name
    this.threshold = thresholdOf(options.threshold ?? 500, 'threshold')
    this.requestTimeout = timeout
    this.#timeoutMs = Math.round(timeout * 1000)
    this.remote = nodeCluster().isWorker
    const settings: ClusterStoreSettings = {
      threshold: this.threshold,
      defaultTimeout: this.defaultTimeout,
    }
    if (this.remote) {
      this.#channel = workerChannel()
      this.#channel.attach(this.#timeoutMs)
      this.#channel
        .call(Op.open, name, [settings], this.#timeoutMs)
        .then(this.#opened, this.#unanswered)
    } else {
      this.#host = clusterHost().serve()
      this.#store = this.#host.open(name, settings)
    }
  }

  readonly #opened = (threshold: unknown): void => {
    if (threshold !== this.threshold) {
      warnOnce(
        this.logger,
        `CACHETTE_CLUSTER_THRESHOLD_${this.name}`,
        `ClusterCache ${JSON.stringify(this.name)}: the primary's store keeps ${String(threshold)} entries ` +
          `(set by the process that opened it first, or by ClusterCache.serve()); this process asked for ${this.threshold}`,
      )
    }
  }

  readonly #unanswered = (error: unknown): void => {
    warnOnce(
      this.logger,
      'CACHETTE_CLUSTER_NO_PRIMARY',
      `ClusterCache ${JSON.stringify(this.name)}: the primary process did not answer (${(error as Error).message}); ` +
        'call ClusterCache.serve() in the primary (PM2 cluster mode runs no code of yours there: start ' +
        'node:cluster from your own entry point). Until it answers, every call is a miss',
    )
  }

  /** Runs an operation: on the local store, or in the primary. */
  #run(op: Op, args: unknown[]): Promise<unknown> {
    if (this.#store !== undefined) {
      try {
        return Promise.resolve((this.#host as ClusterCacheHost).execute(this.#store, op, args))
      } catch (error) {
        return Promise.reject(error)
      }
    }
    return (this.#channel as WorkerChannel).call(op, this.name, args, this.#timeoutMs)
  }

  async get(key: string): Promise<unknown> {
    return fromWire(await this.#run(Op.get, [key]), this.serializer)
  }

  async set(key: string, value: unknown, timeout?: number): Promise<boolean> {
    return (await this.#run(Op.set, [
      key,
      toWire(value, this.serializer),
      this.ttl(timeout),
    ])) as boolean
  }

  async add(key: string, value: unknown, timeout?: number): Promise<boolean> {
    return (await this.#run(Op.add, [
      key,
      toWire(value, this.serializer),
      this.ttl(timeout),
    ])) as boolean
  }

  async delete(key: string): Promise<boolean> {
    return (await this.#run(Op.delete, [key])) as boolean
  }

  async has(key: string): Promise<boolean> {
    return (await this.#run(Op.has, [key])) as boolean
  }

  /** Empties the store: every worker's entries under this store name. */
  async clear(): Promise<boolean> {
    return (await this.#run(Op.clear, [])) as boolean
  }

  override async getMany(keys: readonly string[]): Promise<unknown[]> {
    const wires = (await this.#run(Op.getMany, [keys])) as unknown[]
    return wires.map((wire) => fromWire(wire, this.serializer))
  }

  override async setMany(
    entries: readonly (readonly [string, unknown])[],
    timeout?: number,
  ): Promise<string[]> {
    // Encoded first: one unstorable value leaves the store untouched.
    const wires = entries.map(([key, value]) => [key, toWire(value, this.serializer)])
    return (await this.#run(Op.setMany, [wires, this.ttl(timeout)])) as string[]
  }

  override async deleteMany(keys: readonly string[]): Promise<string[]> {
    return (await this.#run(Op.deleteMany, [keys])) as string[]
  }

  /** Atomic across the workers. Keeps an existing counter's expiry; a new one gets the default timeout. */
  override async inc(key: string, delta: number): Promise<number> {
    return (await this.#run(Op.inc, [key, delta, this.ttl(undefined)])) as number
  }

  /** Atomic across the workers (the primary applies operations one at a time). */
  async acquireLock(key: string, token: string, ttlMs: number): Promise<boolean> {
    return (await this.#run(Op.acquireLock, [key, token, ttlMs])) as boolean
  }

  /** Releases only while the lock still holds `token`. */
  async releaseLock(key: string, token: string): Promise<boolean> {
    return (await this.#run(Op.releaseLock, [key, token])) as boolean
  }

  /** The store's live keys starting with `prefix`. */
  async *keys(prefix: string): AsyncIterable<string> {
    yield* (await this.#run(Op.keys, [prefix])) as string[]
  }

  /** The store's `entries` and `threshold`, and the primary's number of `workers`. */
  async stats(): Promise<Record<string, string | number>> {
    return (await this.#run(Op.stats, [])) as Record<string, string | number>
  }

  /** Stops listening for the primary's answers once no ClusterCache of this worker is open. The store stays. */
  override async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#channel?.release()
  }
}

function thresholdOf(threshold: number, key: string): number {
  if (!Number.isInteger(threshold) || threshold < 0) {
    throw new ConfigError(key, `expected a non-negative integer, got ${String(threshold)}`)
  }
  return threshold === 0 ? 500 : threshold
}
