/**
 * The options of the Redis backends (`RedisCache`, `RedisSentinelCache`,
 * `RedisClusterCache`), apart from the classes so that `RedisBus` and the
 * connection set-up can use them without importing the backends.
 */
import type { BaseCacheOptions } from '../../core/backend.js'

/** Options shared by the three Redis backends. */
export interface RedisCommonOptions extends BaseCacheOptions {
  /**
   * Prepended to every key (`flask_cache_` + `view//users`). {@link BaseRedisCache.clear}
   * removes exactly the keys under it, so apps sharing a database stay apart.
   * `CACHE_KEY_PREFIX` sets it (default `'flask_cache_'` there); the class
   * default is no prefix.
   * @default ''
   */
  keyPrefix?: string
  /**
   * Without a key prefix, `clear()` refuses (it could only empty the whole
   * database). `true` lets it run `FLUSHDB` instead, as Flask-Caching does.
   * `CACHE_OPTIONS: { allowFlush: true }` sets it.
   * @default false
   */
  allowFlush?: boolean
  /**
   * Options for the client's constructor (ioredis `Redis` or `Cluster`, or
   * node-redis `createClient`/`createSentinel`/`createCluster`), on top of the
   * fail-fast defaults. Through a factory, every `CACHE_OPTIONS` key cachette
   * does not know lands here. `decodeResponses` and `keyPrefix` are refused.
   */
  clientOptions?: Record<string, unknown>
}

/** Options of {@link RedisCache}. */
export interface RedisCacheOptions extends RedisCommonOptions {
  /**
   * Which client package to open the connection with: `'ioredis'` (the
   * default) or `'node-redis'` (the `redis` package, v5+). Or an existing,
   * connected client to share with the app: an ioredis `Redis` or a
   * node-redis `createClient()` (told apart by shape). The backend never
   * closes a client it was given. `CACHE_OPTIONS: { client }` sets it;
   * `CACHE_REDIS_HOST` may be an instance too (Flask-Caching #629).
   * Connection options (`url`, `host`, ...) are ignored with an instance.
   */
  client?: unknown
  /**
   * `redis://[[user]:password@]host[:port][/db]`, `rediss://...` (TLS) or
   * `unix:///path/to.sock?db=N`. Wins over `host`/`port`/`password`; a
   * database in the URL wins over `db`. `CACHE_REDIS_URL` sets it.
   */
  url?: string
  /** `CACHE_REDIS_HOST`. @default 'localhost' */
  host?: string
  /** `CACHE_REDIS_PORT`. @default 6379 */
  port?: number
  /** ACL user name (Redis 6+). */
  username?: string
  /** `CACHE_REDIS_PASSWORD`; an empty string means none. */
  password?: string
  /** Database number. `CACHE_REDIS_DB`. @default 0 */
  db?: number
}

/** A sentinel's address: `['host', 26379]`, `'host:26379'` or `{ host, port }`. */
export type SentinelAddress =
  | readonly [host: string, port: number]
  | string
  | { readonly host: string; readonly port: number }

/** Options of {@link RedisSentinelCache}. */
export interface RedisSentinelCacheOptions extends RedisCommonOptions {
  /**
   * `'ioredis'` (default) or `'node-redis'` (then `createSentinel()`); or an
   * existing Sentinel-configured ioredis `Redis` or node-redis
   * `createSentinel()` to share, never closed by the backend.
   */
  client?: unknown
  /** `CACHE_REDIS_SENTINELS`. @default [['127.0.0.1', 26379]] */
  sentinels?: readonly SentinelAddress[]
  /** The monitored master's name. `CACHE_REDIS_SENTINEL_MASTER`. @default 'mymaster' */
  master?: string
  /** The master's (and replicas') password. `CACHE_REDIS_PASSWORD`. */
  password?: string
  /** The sentinels' own password. `CACHE_REDIS_SENTINEL_PASSWORD`. */
  sentinelPassword?: string
  /** `CACHE_REDIS_DB`. @default 0 */
  db?: number
}

/** Options of {@link RedisClusterCache}. */
export interface RedisClusterCacheOptions extends RedisCommonOptions {
  /**
   * `'ioredis'` (default) or `'node-redis'` (then `createCluster()`); or an
   * existing ioredis `Cluster` or node-redis `createCluster()` to share,
   * never closed by the backend.
   */
  client?: unknown
  /**
   * Startup nodes: `'host1:port1,host2:port2'` or an array of `'host:port'`
   * strings or `{ host, port }` objects. `CACHE_REDIS_CLUSTER` sets it.
   */
  cluster?: string | readonly (string | { readonly host: string; readonly port: number })[]
  /** One startup node as a `redis://` or `rediss://` URL, used when `cluster` is empty. `CACHE_REDIS_URL`. */
  url?: string
  /** `CACHE_REDIS_PASSWORD`. */
  password?: string
}
