/**
 * The primary's side of ClusterCache: the stores (one SimpleCache per store
 * name, holding wire values) and the listener that answers the workers.
 * @internal
 */
import type { Worker } from 'node:cluster'
import { integerOf, PEEK } from '../../core/backend.js'
import { nodeBuiltin } from '../../core/runtime.js'
import type { Serializer } from '../../core/serializers.js'
import { SimpleCache } from '../memory/index.js'
import { isMessage, MARK, Op, type Reply, type Request, type Wire } from './wire.js'

/** `node:cluster`, loaded on first use: workerd has none, and `import 'cachette'` must still work there. */
function nodeCluster(): typeof import('node:cluster').default {
  return nodeBuiltin<typeof import('node:cluster').default>(
    'node:cluster',
    'ClusterCache',
    'SimpleCache or CloudflareKVCache',
  )
}

/**
 * The stores hold wire values as they came (see wire.ts): the primary never
 * decodes or copies them. SimpleCache keeps primitives as they are and hands
 * objects to its serializer, which here is the identity.
 */
const WIRE: Serializer = {
  name: 'cluster-wire',
  dumps: (value) => value as Uint8Array,
  loads: (data) => data,
}

/** Settings of a store, used when it is created. */
export interface ClusterStoreSettings {
  /** The most entries the store keeps (SimpleCache's threshold). */
  readonly threshold: number
  /** Seconds an entry lives when written without a timeout (`0` = never). */
  readonly defaultTimeout: number
}

/** Settings of {@link ClusterCacheHost}, given to `ClusterCache.serve()`. */
export interface ClusterServeOptions {
  /**
   * The most entries each store keeps. When given, it wins over the
   * `threshold` (`CACHE_THRESHOLD`) the workers ask for; when not, the first
   * process that opens a store sets it.
   */
  threshold?: number
}

function errorOf(error: unknown): [string, string] {
  return error instanceof Error ? [error.name, error.message] : ['Error', String(error)]
}

async function collect(keys: AsyncIterable<string>): Promise<string[]> {
  const all: string[] = []
  for await (const key of keys) all.push(key)
  return all
}

/** A store's synchronous read: the wire value, or `undefined`. */
function peek(store: SimpleCache, key: string): Wire | undefined {
  return (store[PEEK] as (key: string) => Wire | undefined)(key)
}

/**
 * The stores of this process and the cluster listener that serves them to
 * the workers. One per process; get it with `clusterHost()`.
 *
 * SimpleCache's writes take effect synchronously (its methods are async only
 * for the backend interface), and reads here use its synchronous peek, so a
 * batch is answered in one pass, in the order its operations arrived, and
 * every operation (inc, add, a lock) is atomic across workers.
 */
export class ClusterCacheHost {
  readonly #stores = new Map<string, SimpleCache>()
  #threshold: number | undefined
  #listening = false

  /** The store names in use. */
  get storeNames(): string[] {
    return [...this.#stores.keys()]
  }

  /** The store `name`; created with `settings` if it does not exist. */
  open(name: string, settings: ClusterStoreSettings): SimpleCache {
    let store = this.#stores.get(name)
    if (store === undefined) {
      store = new SimpleCache({
        threshold: this.#threshold ?? settings.threshold,
        defaultTimeout: settings.defaultTimeout,
        serializer: WIRE,
      })
      this.#stores.set(name, store)
    }
    return store
  }

  /** Starts answering workers (idempotent); `threshold` applies to stores created from now on. */
  serve(options: ClusterServeOptions = {}): this {
    if (options.threshold !== undefined) this.#threshold = options.threshold
    if (!this.#listening) {
      this.#listening = true
      nodeCluster().on('message', this.#onMessage)
    }
    return this
  }

  /** Stops answering workers and drops every store (workers' calls then time out: misses). */
  close(): void {
    nodeCluster().off('message', this.#onMessage)
    this.#listening = false
    this.#stores.clear()
    this.#threshold = undefined
  }

  /**
   * Runs one operation on a store. Synchronous except `keys` and `stats`
   * (a promise). Throws what the operation throws (`inc` on a non-integer).
   */
  execute(store: SimpleCache, op: Op, args: readonly unknown[]): unknown {
    switch (op) {
      case Op.get:
        return peek(store, args[0] as string) ?? null
      case Op.getMany:
        return (args[0] as string[]).map((key) => peek(store, key) ?? null)
      case Op.set:
        void store.set(args[0] as string, storable(args[1]), args[2] as number)
        return true
      case Op.setMany: {
        const entries = args[0] as [string, Wire][]
        for (const entry of entries) storable(entry[1])
        void store.setMany(entries, args[1] as number)
        return entries.map((entry) => entry[0])
      }
      case Op.add:
      case Op.acquireLock: {
        const key = args[0] as string
        if (peek(store, key) !== undefined) return false
        const seconds = op === Op.acquireLock ? (args[2] as number) / 1000 : (args[2] as number)
        void store.set(key, storable(args[1]), seconds)
        return true
      }
      case Op.delete: {
        const key = args[0] as string
        const existed = peek(store, key) !== undefined
        void store.delete(key)
        return existed
      }
      case Op.deleteMany:
        void store.deleteMany(args[0] as string[])
        return args[0]
      case Op.has:
        return peek(store, args[0] as string) !== undefined
      case Op.clear:
        void store.clear()
        return true
      case Op.inc: {
        const key = args[0] as string
        const delta = args[1] as number
        const current = peek(store, key)
        const next = integerOf(key, current) + delta
        // An existing counter keeps its expiry; a new one gets the caller's default timeout.
        if (current === undefined) void store.set(key, next, args[2] as number)
        else void store.inc(key, delta)
        return next
      }
      case Op.releaseLock: {
        const key = args[0] as string
        if (peek(store, key) !== args[1]) return false
        void store.delete(key)
        return true
      }
      case Op.keys:
        return collect(store.keys(args[0] as string))
      case Op.stats:
        return store.stats().then((stats) => ({
          ...stats,
          workers: Object.keys(nodeCluster().workers ?? {}).length,
        }))
      default:
        throw new TypeError(`ClusterCache: unknown operation ${String(op)}`)
    }
  }

  /** Answers one batch from a worker with one message. */
  readonly #onMessage = (worker: Worker, message: unknown): void => {
    if (!isMessage(message)) return
    const requests = (message as { q?: unknown }).q
    if (!Array.isArray(requests)) return
    const replies: Reply[] = new Array(requests.length)
    let waits: Promise<unknown>[] | undefined
    for (let i = 0; i < requests.length; i++) {
      const [id, op, name, ...args] = requests[i] as Request
      try {
        const result =
          op === Op.open
            ? this.open(name, args[0] as ClusterStoreSettings).threshold
            : this.execute(this.#stores.get(name) ?? this.open(name, DEFAULTS), op, args)
        if (result instanceof Promise) {
          waits ??= []
          waits.push(
            result.then(
              (value) => {
                replies[i] = [id, 1, value]
              },
              (error) => {
                replies[i] = [id, 0, errorOf(error)]
              },
            ),
          )
        } else replies[i] = [id, 1, result]
      } catch (error) {
        replies[i] = [id, 0, errorOf(error)]
      }
    }
    if (waits === undefined) reply(worker, replies)
    else void Promise.all(waits).then(() => reply(worker, replies))
  }
}

/** Settings for a store a worker uses without having opened it (the primary restarted its host). */
const DEFAULTS: ClusterStoreSettings = { threshold: 500, defaultTimeout: 300 }

/** A value to store: never `undefined` (JSON has no such value; a malformed request is refused). */
function storable(wire: unknown): Wire {
  if (wire === undefined || wire === null) throw new TypeError('ClusterCache: missing value')
  return wire as Wire
}

/** Sends a batch of answers; a worker that died meanwhile is skipped, never an error here. */
function reply(worker: Worker, replies: Reply[]): void {
  if (!worker.isConnected()) return
  worker.send({ cachette: MARK, r: replies }, ignore)
}

function ignore(): void {}

let host: ClusterCacheHost | undefined

/** This process's host (created on first use; not serving until `serve()`). */
export function clusterHost(): ClusterCacheHost {
  host ??= new ClusterCacheHost()
  return host
}
