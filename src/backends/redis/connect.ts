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
  type SlotFunction,
} from './client.js'
import {
  adaptNodeRedis,
  clientKindOf,
  loadNodeRedis,
  loadNodeRedisSlotFunction,
  type NodeRedisAdapter,
  nodeClientOptions,
  nodeRedisShape,
  settingsOf,
} from './node-redis.js'
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
  /** What the backend's `client` getter gives: the ioredis client, or the node-redis object behind the adapter. */
  raw: unknown
  /** The hash slot function of a cluster client (from the client package in use). */
  slotOf?: SlotFunction
}

const DEFAULT_READY_TIMEOUT = 2000

/** Checks that `value` looks like an ioredis client. */
function existingIoRedis(value: unknown, key: string): RedisClient {
  const c = value as Partial<RedisClient> | null
  if (
    typeof c !== 'object' ||
    c === null ||
    typeof c.getBuffer !== 'function' ||
    typeof c.on !== 'function' ||
    typeof c.pipeline !== 'function'
  ) {
    throw new ConfigError(
      key,
      `expected a host name or a client (ioredis, or node-redis from the redis package), got ${describe(value)}`,
    )
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

/**
 * A client the app passed in (`CACHE_REDIS_HOST` or `CACHE_OPTIONS.client`):
 * an ioredis one, or a node-redis one (told apart by shape, wrapped in an
 * adapter); used as it is, never closed by the backend.
 */
function adopted(client: unknown, kind: string): Opened {
  const shape = nodeRedisShape(client)
  if (shape !== undefined) {
    const settings = settingsOf(client)
    return {
      client: adaptNodeRedis(client, shape, settings),
      owned: false,
      readyTimeout: settings.connectTimeout,
      failFast: false,
      raw: client,
      slotOf: shape === 'cluster' ? loadNodeRedisSlotFunction(kind) : undefined,
    }
  }
  const io = existingIoRedis(client, 'CACHE_REDIS_HOST')
  return { client: io, owned: false, readyTimeout: DEFAULT_READY_TIMEOUT, failFast: false, raw: io }
}

/** An instance given as `client` (adopted), or `undefined` when the backend opens its own. */
function givenClient(options: { client?: unknown }): unknown {
  const c = options.client
  return typeof c === 'object' && c !== null ? c : undefined
}

/** An adapter the backend created (and owns), connecting at once unless `lazyConnect`. */
function ownNodeRedis(
  adapter: NodeRedisAdapter,
  readyTimeout: number,
  lazy: boolean,
  retry: boolean,
  slotOf?: SlotFunction,
): Opened {
  if (!lazy) adapter.startConnecting(retry)
  return { client: adapter, owned: true, readyTimeout, failFast: true, raw: adapter.raw, slotOf }
}

/** Splits off `lazyConnect`, which node-redis does not know (it connects when told to). */
function lazyOf(options: Record<string, unknown>): boolean {
  const lazy = options.lazyConnect === true
  delete options.lazyConnect
  return lazy
}

/** The client of a `RedisCache`: the app's own, or a new ioredis `Redis` for a host, URL or socket. */
export function openStandalone(options: RedisCacheOptions, kind: string): Opened {
  const clientOptions = clientOptionsOf(options)
  const which = clientKindOf(options.client)
  const given = givenClient(options)
  if (given !== undefined) return adopted(given, kind)
  const { conn } = standaloneConnection(options, clientOptions)
  if (which === 'node-redis') {
    const lazy = lazyOf(clientOptions)
    const { options: nodeOptions, settings } = nodeClientOptions(conn, clientOptions)
    const raw = loadNodeRedis(kind).createClient(nodeOptions)
    return ownNodeRedis(
      adaptNodeRedis(raw, 'client', settings),
      settings.connectTimeout,
      lazy,
      false,
    )
  }
  const io = loadIoRedis(kind)
  const final = { ...CONNECTION_DEFAULTS, ...clientOptions, ...conn }
  const client = new io.Redis(final)
  return {
    client,
    owned: true,
    readyTimeout: connectTimeoutOf(final),
    failFast: final.enableOfflineQueue === false,
    raw: client,
  }
}

/** The client of a `RedisSentinelCache`: the app's own, or an ioredis `Redis` that finds the master through the sentinels. */
export function openSentinel(options: RedisSentinelCacheOptions, kind: string): Opened {
  const clientOptions = clientOptionsOf(options)
  const which = clientKindOf(options.client)
  const given = givenClient(options)
  if (given !== undefined) return adopted(given, kind)
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
  if (which === 'node-redis') {
    return openNodeSentinel(
      clientOptions,
      { sentinels, master, password, sentinelPassword, db },
      kind,
    )
  }
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
  const client = new io.Redis(final)
  return {
    client,
    owned: true,
    // Resolving the master through a sentinel, then connecting to it.
    readyTimeout: 2 * connectTimeoutOf(final),
    failFast: final.enableOfflineQueue === false,
    raw: client,
  }
}

/** node-redis `createSentinel` options, other than the node client's own. */
const NODE_SENTINEL_KEYS = new Set([
  'maxCommandRediscovers',
  'masterPoolSize',
  'replicaPoolSize',
  'nodeAddressMap',
  'scanInterval',
  'passthroughClientErrorEvents',
  'reserveClient',
  'sentinelClientOptions',
  'nodeClientOptions',
  'modules',
  'functions',
  'scripts',
  'RESP',
  'commandOptions',
])

/** A node-redis `createSentinel()`: the master found through the sentinels, every command to it. */
function openNodeSentinel(
  clientOptions: Record<string, unknown>,
  conn: {
    sentinels: { host: string; port: number }[]
    master: string
    password?: string
    sentinelPassword?: string
    db?: number
  },
  kind: string,
): Opened {
  const lazy = lazyOf(clientOptions)
  const top: Record<string, unknown> = {}
  const node: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(clientOptions))
    (NODE_SENTINEL_KEYS.has(k) ? top : node)[k] = v
  const nodeConn: Record<string, unknown> = {}
  if (conn.password !== undefined) nodeConn.password = conn.password
  if (conn.db !== undefined) nodeConn.db = conn.db
  const { options: nodeClient, settings } = nodeClientOptions(nodeConn, {
    ...node,
    ...((top.nodeClientOptions as Record<string, unknown> | undefined) ?? {}),
  })
  const sentinelConn: Record<string, unknown> = {}
  if (conn.sentinelPassword !== undefined) sentinelConn.password = conn.sentinelPassword
  const { options: sentinelClient } = nodeClientOptions(sentinelConn, {
    commandTimeout: settings.commandTimeout,
    connectTimeout: settings.connectTimeout,
    ...((top.sentinelClientOptions as Record<string, unknown> | undefined) ?? {}),
  })
  const final = {
    ...top,
    name: conn.master,
    sentinelRootNodes: conn.sentinels,
    nodeClientOptions: nodeClient,
    sentinelClientOptions: sentinelClient,
  }
  const raw = loadNodeRedis(kind).createSentinel(final)
  return ownNodeRedis(
    adaptNodeRedis(raw, 'sentinel', settings),
    2 * settings.connectTimeout,
    lazy,
    true,
  )
}

/** node-redis `createCluster` options; any other pass-through option goes to every node (`defaults`). */
const NODE_CLUSTER_KEYS = new Set([
  'defaults',
  'minimizeConnections',
  'useReplicas',
  'maxCommandRedirections',
  'nodeAddressMap',
  'clientSideCache',
  'modules',
  'functions',
  'scripts',
  'RESP',
  'commandOptions',
])

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
  const which = clientKindOf(options.client)
  const given = givenClient(options)
  if (given !== undefined) {
    const own = adopted(given, kind)
    if ((own.client as Partial<ClusterClient>).isCluster !== true) {
      throw new ConfigError(
        'CACHE_REDIS_HOST',
        'RedisClusterCache needs a cluster client (an ioredis Cluster or a node-redis createCluster())',
      )
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
  if (which === 'node-redis') {
    const lazy = lazyOf(clientOptions)
    const top: Record<string, unknown> = {}
    const perNode: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(clientOptions)) {
      ;(NODE_CLUSTER_KEYS.has(k) ? top : perNode)[k] = v
    }
    const { options: defaults, settings } = nodeClientOptions(node, {
      ...perNode,
      ...((top.defaults as Record<string, unknown> | undefined) ?? {}),
    })
    checkClientOptions(defaults)
    const raw = loadNodeRedis(kind).createCluster({
      ...top,
      rootNodes: startup.map((s) => ({ socket: { host: s.host, port: s.port } })),
      defaults,
    })
    return ownNodeRedis(
      adaptNodeRedis(raw, 'cluster', settings),
      2 * settings.connectTimeout,
      lazy,
      true,
      loadNodeRedisSlotFunction(kind),
    )
  }
  const io = loadIoRedis(kind)
  const final = {
    enableOfflineQueue: false,
    clusterRetryStrategy: reconnectDelay,
    slotsRefreshTimeout: 2000,
    ...clusterOptions,
    redisOptions,
  }
  const refresh = typeof final.slotsRefreshTimeout === 'number' ? final.slotsRefreshTimeout : 2000
  const client = new io.Cluster(startup, final)
  return {
    client,
    owned: true,
    readyTimeout: connectTimeoutOf(redisOptions) + refresh,
    failFast: final.enableOfflineQueue === false,
    raw: client,
  }
}
