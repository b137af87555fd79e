import type { BackendClass, BackendFactory } from './core/backend.js'
import type { Timeout } from './core/duration.js'
import type { CircuitBreakerOptions } from './core/guard.js'
import type { HashMethod } from './core/hash.js'
import type { Logger } from './core/log.js'
import type { SerializerSpec } from './core/serializers.js'

/**
 * What `CACHE_TYPE` accepts: a backend name (`'SimpleCache'`, `'FileSystemCache'`,
 * `'NullCache'`, the old aliases `'simple'`, `'filesystem'`, `'null'`, or a dotted
 * Flask path such as `'flask_caching.backends.SimpleCache'`), a backend class,
 * a factory function `(app, config, args, options) => backend`, or a module
 * specifier `'./my-backend.js#MyCache'`.
 */
export type CacheType = string | BackendClass | BackendFactory

/**
 * Configuration, with Flask-Caching's names. Each key also has a camelCase
 * spelling (see {@link CacheOptionsCamel}); both may be mixed, but not for the
 * same key.
 */
export interface CacheConfigFlask {
  /** Which backend. @default 'NullCache' */
  CACHE_TYPE?: CacheType
  /** Silences the warning that NullCache disables caching. @default false */
  CACHE_NO_NULL_WARNING?: boolean
  /** Seconds (or a duration string) an entry lives when no timeout is given; 0 = forever. @default 300 */
  CACHE_DEFAULT_TIMEOUT?: Timeout
  /** When true, `deleteMany` does not throw for keys that survive. @default false */
  CACHE_IGNORE_ERRORS?: boolean
  /** SimpleCache/FileSystemCache: the most entries kept. @default 500 */
  CACHE_THRESHOLD?: number
  /** Prefix added by shared backends (Redis, Memcached, object stores). @default 'flask_cache_' */
  CACHE_KEY_PREFIX?: string
  /** FileSystemCache: the directory. Required for it. */
  CACHE_DIR?: string
  /** FileSystemCache: the hash used for file names. @default 'sha256' */
  CACHE_FILE_HASH_METHOD?: string
  /** Hash for memoize and query-string keys: a `node:crypto` name or a digest function. @default 'sha256' */
  CACHE_HASH_METHOD?: HashMethod
  /** Extra options passed to the backend (snake_case names are converted to camelCase). */
  CACHE_OPTIONS?: Record<string, unknown>
  /** Positional arguments passed to the backend factory. @default [] */
  CACHE_ARGS?: unknown[]
  /** Whether a function's source text is part of its cache keys. @default false */
  CACHE_SOURCE_CHECK?: boolean
  /** How values are encoded: `'v8'` (default), `'json'`, or a custom serializer. @default 'v8' */
  CACHE_SERIALIZER?: SerializerSpec
  /**
   * When true, backend errors inside `cached`/`memoize` and the cache methods
   * propagate (Flask's debug mode); when false they are logged and the cache
   * misses. @default false
   */
  CACHE_RAISE_ERRORS?: boolean
  /** Accepted for compatibility with Flask-Caching configs; reserved for events. @default false */
  CACHE_ENABLE_SIGNALS?: boolean
  /** Memcached servers, `'host:port'` each. */
  CACHE_MEMCACHED_SERVERS?: string[] | string
  /** SASL Memcached user. */
  CACHE_MEMCACHED_USERNAME?: string
  /** SASL Memcached password. */
  CACHE_MEMCACHED_PASSWORD?: string
  /** Redis host, or an existing client to share. */
  CACHE_REDIS_HOST?: string | object
  /** Redis port. */
  CACHE_REDIS_PORT?: number
  /** Redis password. */
  CACHE_REDIS_PASSWORD?: string
  /** Redis database number. */
  CACHE_REDIS_DB?: number
  /** Redis URL (`redis://`, `rediss://`, `unix://`). */
  CACHE_REDIS_URL?: string
  /** Redis Sentinel addresses. */
  CACHE_REDIS_SENTINELS?: unknown[]
  /** Redis Sentinel master name. */
  CACHE_REDIS_SENTINEL_MASTER?: string
  /** Password of the sentinels themselves. */
  CACHE_REDIS_SENTINEL_PASSWORD?: string
  /** Redis Cluster nodes, `'h1:p1,h2:p2'`. */
  CACHE_REDIS_CLUSTER?: string
  /** ClusterCache: the store name (Flask-Caching's uWSGI cache name; an `@host` part is ignored). @default 'default' */
  CACHE_UWSGI_NAME?: string
  /** S3 bucket. */
  CACHE_S3_BUCKET?: string
  /** S3 endpoint for S3-compatible servers. */
  CACHE_S3_ENDPOINT_URL?: string
  /** GCS bucket. */
  CACHE_GCS_BUCKET?: string
  /** GCS key prefix. */
  CACHE_GCS_KEY_PREFIX?: string
  /** Delete expired GCS objects when read. */
  CACHE_GCS_DELETE_EXPIRED_ON_READ?: boolean
  /**
   * Seconds (or a duration string) a call to a network backend may take
   * before it fails with a `BackendTimeoutError` (absorbed: a miss, or a
   * write that returns false); its late result is ignored. `0` = no deadline.
   * A backstop: the built-in Redis, Memcached, S3 and GCS backends have
   * shorter timeouts of their own. Not applied to in-process backends
   * (SimpleCache, NullCache, FileSystemCache), nor to a TieredCache's first tier.
   * @default 5
   */
  CACHE_OPERATION_TIMEOUT?: Timeout
  /**
   * The circuit breaker of network backends: after `failures` consecutive
   * failed calls (errors or timeouts) calls fail at once with a
   * `CircuitOpenError` for `openFor` seconds, then one probe call decides.
   * `false` disables it; `true` or `{}` uses the defaults. From the
   * environment: `false`, `true`, or the object as JSON.
   * @default { failures: 10, openFor: 5 }
   */
  CACHE_CIRCUIT_BREAKER?: boolean | CircuitBreakerOptions
}

/** The camelCase spelling of {@link CacheConfigFlask}; each key documents its twin. */
export interface CacheOptionsCamel {
  /** = `CACHE_TYPE` */ type?: CacheType
  /** = `CACHE_NO_NULL_WARNING` */ noNullWarning?: boolean
  /** = `CACHE_DEFAULT_TIMEOUT` */ defaultTimeout?: Timeout
  /** = `CACHE_IGNORE_ERRORS` */ ignoreErrors?: boolean
  /** = `CACHE_THRESHOLD` */ threshold?: number
  /** = `CACHE_KEY_PREFIX` */ keyPrefix?: string
  /** = `CACHE_DIR` */ dir?: string
  /** = `CACHE_FILE_HASH_METHOD` */ fileHashMethod?: string
  /** = `CACHE_HASH_METHOD` */ hashMethod?: HashMethod
  /** = `CACHE_OPTIONS` */ options?: Record<string, unknown>
  /** = `CACHE_ARGS` */ args?: unknown[]
  /** = `CACHE_SOURCE_CHECK` */ sourceCheck?: boolean
  /** = `CACHE_SERIALIZER` */ serializer?: SerializerSpec
  /** = `CACHE_RAISE_ERRORS` */ raiseErrors?: boolean
  /** = `CACHE_ENABLE_SIGNALS` */ enableSignals?: boolean
  /** = `CACHE_MEMCACHED_SERVERS` */ memcachedServers?: string[] | string
  /** = `CACHE_MEMCACHED_USERNAME` */ memcachedUsername?: string
  /** = `CACHE_MEMCACHED_PASSWORD` */ memcachedPassword?: string
  /** = `CACHE_REDIS_HOST` */ redisHost?: string | object
  /** = `CACHE_REDIS_PORT` */ redisPort?: number
  /** = `CACHE_REDIS_PASSWORD` */ redisPassword?: string
  /** = `CACHE_REDIS_DB` */ redisDb?: number
  /** = `CACHE_REDIS_URL` */ redisUrl?: string
  /** = `CACHE_REDIS_SENTINELS` */ redisSentinels?: unknown[]
  /** = `CACHE_REDIS_SENTINEL_MASTER` */ redisSentinelMaster?: string
  /** = `CACHE_REDIS_SENTINEL_PASSWORD` */ redisSentinelPassword?: string
  /** = `CACHE_REDIS_CLUSTER` */ redisCluster?: string
  /** = `CACHE_UWSGI_NAME` */ uwsgiName?: string
  /** = `CACHE_S3_BUCKET` */ s3Bucket?: string
  /** = `CACHE_S3_ENDPOINT_URL` */ s3EndpointUrl?: string
  /** = `CACHE_GCS_BUCKET` */ gcsBucket?: string
  /** = `CACHE_GCS_KEY_PREFIX` */ gcsKeyPrefix?: string
  /** = `CACHE_GCS_DELETE_EXPIRED_ON_READ` */ gcsDeleteExpiredOnRead?: boolean
  /** = `CACHE_OPERATION_TIMEOUT` */ operationTimeout?: Timeout
  /** = `CACHE_CIRCUIT_BREAKER` */ circuitBreaker?: boolean | CircuitBreakerOptions
  /** Where warnings and absorbed backend errors are logged. @default console */
  logger?: Logger
}

/** Configuration accepted by `new Cache()` and `initApp()`: either spelling, or both mixed. */
export type CacheConfig = CacheConfigFlask & CacheOptionsCamel
