/**
 * Internal: opening (or adopting) the ioredis client of each Redis backend,
 * with the fail-fast defaults: a standalone server, a Sentinel-managed
 * master, or a Cluster.
 */
import { describe } from '../../core/describe.js'
import { ConfigError } from '../../core/errors.js'
import {
  type ClusterClient,
  CONNECTION_DEFAULTS,
  loadIoRedis,
  type RedisClient,
  reconnectDelay,
  reconnectOnReadonly,
} from './client.js'
import {
  checkClientOptions,
  checkDb,
  nonEmpty,
  parseClusterNodes,
  parseRedisUrl,
  parseSentinels,
  standaloneConnection,
} from './options.js'
import type {
  RedisCacheOptions,
  RedisClusterCacheOptions,
  RedisCommonOptions,
  RedisSentinelCacheOptions,
} from './types.js'

/** What a backend is built on: the client and whether the backend owns it. */
export interface Opened {
  client: RedisClient
  owned: boolean
  /** How long the first commands wait for the first connection attempt, in ms. */
  readyTimeout: number
  /**
   * Commands fail at once while the client is not ready (own client, offline
   * queue off), with a clearer message than ioredis' "Stream isn't writeable".
   */
  failFast: boolean
}

const DEFAULT_READY_TIMEOUT = 2000

/** Checks that `value` looks like an ioredis client. */
function existingClient(value: unknown, key: string): RedisClient {
  const c = value as Partial<RedisClient> | null
  if (
    typeof c !== 'object' ||
    c === null ||
    typeof c.getBuffer !== 'function' ||
    typeof c.on !== 'function' ||
    typeof c.pipeline !== 'function'
  ) {
    throw new ConfigError(key, `expected a host name or an ioredis client, got ${describe(value)}`)
  }
  return c as RedisClient
}

function clientOptionsOf(options: RedisCommonOptions): Record<string, unknown> {
  const o = options.clientOptions
  if (o !== undefined && (typeof o !== 'object' || o === null || Array.isArray(o))) {
    throw new ConfigError('CACHE_OPTIONS', `clientOptions must be an object, got ${describe(o)}`)
  }
  const copy = { ...(o ?? {}) }
  checkClientOptions(copy)
  return copy
}

function connectTimeoutOf(options: Record<string, unknown>): number {
  const t = options.connectTimeout
  return typeof t === 'number' && t > 0 ? t : DEFAULT_READY_TIMEOUT
}

/** A client the app passed in (`CACHE_OPTIONS.client`): used as it is, never closed by the backend. */
function adopted(client: unknown): Opened {
  return {
    client: existingClient(client, 'CACHE_REDIS_HOST'),
    owned: false,
    readyTimeout: DEFAULT_READY_TIMEOUT,
    failFast: false,
  }
}

/** The client of a `RedisCache`: the app's own, or a new ioredis `Redis` for a host, URL or socket. */
export function openStandalone(options: RedisCacheOptions, kind: string): Opened {
  const clientOptions = clientOptionsOf(options)
  if (options.client !== undefined && options.client !== null) return adopted(options.client)
  const { conn } = standaloneConnection(options, clientOptions)
  const io = loadIoRedis(kind)
  const final = { ...CONNECTION_DEFAULTS, ...clientOptions, ...conn }
  return {
    client: new io.Redis(final),
    owned: true,
    readyTimeout: connectTimeoutOf(final),
    failFast: final.enableOfflineQueue === false,
  }
}

/** The client of a `RedisSentinelCache`: the app's own, or an ioredis `Redis` that finds the master through the sentinels. */
export function openSentinel(options: RedisSentinelCacheOptions, kind: string): Opened {
  const clientOptions = clientOptionsOf(options)
  if (options.client !== undefined && options.client !== null) return adopted(options.client)
  const sentinels = parseSentinels(options.sentinels ?? [['127.0.0.1', 26379]])
  const master = options.master ?? 'mymaster'
  if (typeof master !== 'string' || master === '') {
    throw new ConfigError(
      'CACHE_REDIS_SENTINEL_MASTER',
      `expected the master's name, got ${describe(master)}`,
    )
  }
  const conn: Record<string, unknown> = { sentinels, name: master, role: 'master' }
  const password = nonEmpty(options.password)
  const sentinelPassword = nonEmpty(options.sentinelPassword)
  if (password !== undefined) conn.password = password
  if (sentinelPassword !== undefined) conn.sentinelPassword = sentinelPassword
  const db = checkDb(options.db)
  if (db !== undefined) conn.db = db
  const io = loadIoRedis(kind)
  const final: Record<string, unknown> = {
    ...CONNECTION_DEFAULTS,
    // After a failover: drop the connection on the sentinels' +switch-master,
    // and on a -READONLY reply from a demoted master, so the master is re-resolved.
    failoverDetector: true,
    reconnectOnError: reconnectOnReadonly,
    sentinelRetryStrategy: reconnectDelay,
    sentinelCommandTimeout: 1000,
    ...clientOptions,
    ...conn,
  }
  return {
    client: new io.Redis(final),
    owned: true,
    // Resolving the master through a sentinel, then connecting to it.
    readyTimeout: 2 * connectTimeoutOf(final),
    failFast: final.enableOfflineQueue === false,
  }
}

/** ioredis `Cluster` options; any other pass-through option is a per-node option (`redisOptions`). */
const CLUSTER_OPTION_KEYS = new Set([
  'clusterRetryStrategy',
  'enableOfflineQueue',
  'enableReadyCheck',
  'scaleReads',
  'maxRedirections',
  'retryDelayOnFailover',
  'retryDelayOnClusterDown',
  'retryDelayOnTryAgain',
  'retryDelayOnMoved',
  'slotsRefreshTimeout',
  'slotsRefreshInterval',
  'shardedSubscribers',
  'clusterNodeRetryStrategy',
  'redisOptions',
  'lazyConnect',
  'useSRVRecords',
  'resolveSrv',
  'dnsLookup',
  'natMap',
  'enableAutoPipelining',
  'autoPipeliningIgnoredCommands',
  'scripts',
  'showFriendlyErrorStack',
])

/** The client of a `RedisClusterCache`: the app's own ioredis `Cluster`, or a new one for the startup nodes. */
export function openCluster(options: RedisClusterCacheOptions, kind: string): Opened {
  const clientOptions = clientOptionsOf(options)
  if (options.client !== undefined && options.client !== null) {
    const own = adopted(options.client)
    if ((own.client as Partial<ClusterClient>).isCluster !== true) {
      throw new ConfigError('CACHE_REDIS_HOST', 'RedisClusterCache needs an ioredis Cluster client')
    }
    return own
  }
  const node: Record<string, unknown> = {}
  let startup: { host: string; port: number }[]
  const cluster = options.cluster
  const hasNodes = cluster !== undefined && cluster !== null && cluster !== ''
  if (!hasNodes && options.url !== undefined && options.url !== null && options.url !== '') {
    const u = parseRedisUrl(options.url)
    if (u.path !== undefined) {
      throw new ConfigError('CACHE_REDIS_URL', 'a cluster node needs host:port, not a unix socket')
    }
    if (u.db !== undefined && u.db !== 0) {
      throw new ConfigError('CACHE_REDIS_URL', `Redis Cluster has only database 0, got ${u.db}`)
    }
    startup = [{ host: u.host as string, port: u.port as number }]
    if (u.username !== undefined) node.username = u.username
    if (u.password !== undefined) node.password = u.password
    if (u.tls) node.tls = {}
  } else {
    startup = parseClusterNodes(cluster)
  }
  const password = nonEmpty(options.password)
  if (password !== undefined && node.password === undefined) node.password = password
  const clusterOptions: Record<string, unknown> = {}
  const nodeOptions: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(clientOptions)) {
    if (CLUSTER_OPTION_KEYS.has(k)) clusterOptions[k] = v
    else nodeOptions[k] = v
  }
  const { enableOfflineQueue: _queue, retryStrategy: _retry, ...nodeDefaults } = CONNECTION_DEFAULTS
  const redisOptions: Record<string, unknown> = {
    ...nodeDefaults,
    ...nodeOptions,
    ...((clusterOptions.redisOptions as Record<string, unknown> | undefined) ?? {}),
    ...node,
  }
  if (node.tls !== undefined) {
    redisOptions.tls = {
      ...((nodeOptions.tls as object | undefined) ?? {}),
      ...(node.tls as object),
    }
  }
  checkClientOptions(redisOptions)
  const io = loadIoRedis(kind)
  const final = {
    enableOfflineQueue: false,
    clusterRetryStrategy: reconnectDelay,
    slotsRefreshTimeout: 2000,
    ...clusterOptions,
    redisOptions,
  }
  const refresh = typeof final.slotsRefreshTimeout === 'number' ? final.slotsRefreshTimeout : 2000
  return {
    client: new io.Cluster(startup, final),
    owned: true,
    readyTimeout: connectTimeoutOf(redisOptions) + refresh,
    failFast: final.enableOfflineQueue === false,
  }
}
