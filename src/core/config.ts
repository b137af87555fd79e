import type { BackendClass, BackendFactory } from './backend.js'
import { parseTimeout, type Timeout } from './duration.js'
import { ConfigError } from './errors.js'
import type { CircuitBreakerOptions } from './guard.js'
import type { HashMethod } from './hash.js'
import type { Logger } from './log.js'
import type { SerializerSpec } from './serializers.js'

/**
 * What `CACHE_TYPE` accepts: a backend name (`'SimpleCache'`, `'FileSystemCache'`,
 * `'NullCache'`, the old aliases `'simple'`, `'filesystem'`, `'null'`, or a dotted
 * Flask path such as `'flask_caching.backends.SimpleCache'`), a backend class,
 * a factory function `(app, config, args, options) => backend`, or a module
 * specifier `'./my-backend.js#MyCache'`.
 */
export type CacheType = string | BackendClass | BackendFactory

// ------------------------------------------------------------------ kinds

/**
 * What a key of each kind holds once {@link normalizeConfig} checked it. `any`
 * keys are passed through as given (from code, the environment or an app's
 * settings) and checked when a backend is built (`CACHE_TYPE` by the
 * registry, `CACHE_HASH_METHOD`, `CACHE_SERIALIZER`, `CACHE_CIRCUIT_BREAKER`
 * by their resolvers), so they stay `unknown` here.
 */
export interface KindValues {
  any: unknown
  boolean: boolean
  /** Seconds (see the `timeout` rules for `null`). */
  timeout: number
  integer: number
  string: string
  object: Record<string, unknown>
  array: unknown[]
  stringList: string[]
  clientOrString: string | object
  logger: Logger
}

/** What a key of each kind accepts in code (`new Cache()`, `initApp()`); `any` keys say their own. */
interface KindInputs {
  any: unknown
  boolean: boolean
  timeout: Timeout
  integer: number
  string: string
  object: Record<string, unknown>
  array: unknown[]
  stringList: string[] | string
  clientOrString: string | object
  logger: Logger
}

/** How keys are checked: `'boolean'`, `'timeout'`, `'integer'`, ... (see {@link KindValues}). */
export type Kind = keyof KindValues

interface KindRules<V> {
  /** For messages: `expected <describe>, got ...`. */
  readonly describe: string
  /** The checked value; `fail` throws the key's "expected ..., got ..." ConfigError. */
  check(value: unknown, key: string, fail: () => never): V
  /** Converts a `CACHE_*` environment variable (checked by `check` afterwards). */
  fromEnv?(raw: string, key: string, describe: string): unknown
}

const TRUE = new Set(['1', 'true', 'yes', 'on'])
const FALSE = new Set(['0', 'false', 'no', 'off', ''])

function booleanFromEnv(raw: string, key: string): boolean {
  const t = raw.trim().toLowerCase()
  if (TRUE.has(t)) return true
  if (FALSE.has(t)) return false
  throw new ConfigError(key, `expected true/false, got ${JSON.stringify(raw)}`)
}

function jsonFromEnv(raw: string, key: string, describe: string): unknown {
  try {
    return JSON.parse(raw.trim())
  } catch {
    throw new ConfigError(key, `expected JSON (${describe}), got ${JSON.stringify(raw)}`)
  }
}

const KINDS: { readonly [K in Kind]: KindRules<KindValues[K]> } = {
  any: { describe: 'a any', check: (value) => value },
  boolean: {
    describe: 'a boolean',
    check: (value, _key, fail) => (typeof value === 'boolean' ? value : fail()),
    fromEnv: booleanFromEnv,
  },
  timeout: {
    describe: "a non-negative number of seconds or a duration string like '5m'",
    check(value, key) {
      try {
        // undefined is skipped before any check, and `Timeout` has no null; a null from
        // untyped input comes back undefined, as it always has (the backend's default).
        return parseTimeout(value, key) as number
      } catch (error) {
        throw new ConfigError(key, `expected ${this.describe}, got ${typeOf(value)}`, {
          cause: error,
        })
      }
    },
  },
  integer: {
    describe: 'a non-negative integer',
    check: (value, _key, fail) =>
      typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : fail(),
    fromEnv(raw, key) {
      const text = raw.trim()
      if (!/^\d+$/.test(text))
        throw new ConfigError(key, `expected an integer, got ${JSON.stringify(raw)}`)
      return Number(text)
    },
  },
  string: {
    describe: 'a string',
    check: (value, _key, fail) => (typeof value === 'string' ? value : fail()),
  },
  object: {
    describe: 'a plain object',
    check: (value, _key, fail) =>
      typeof value === 'object' && value !== null && !Array.isArray(value)
        ? (value as Record<string, unknown>)
        : fail(),
    fromEnv: jsonFromEnv,
  },
  array: {
    // (sic: the message has always said "a array")
    describe: 'a array',
    check: (value, _key, fail) => (Array.isArray(value) ? (value as unknown[]) : fail()),
    fromEnv: jsonFromEnv,
  },
  stringList: {
    describe: 'an array of strings or a comma-separated string',
    check(value, _key, fail) {
      if (typeof value === 'string')
        return value
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      return Array.isArray(value) && value.every((s) => typeof s === 'string')
        ? (value as string[])
        : fail()
    },
  },
  clientOrString: {
    describe: 'a host name or a client object',
    check: (value, _key, fail) =>
      typeof value === 'string' || (typeof value === 'object' && value !== null) ? value : fail(),
  },
  logger: {
    describe: 'an object with warn() and error()',
    check(value, _key, fail) {
      const l = value as { warn?: unknown; error?: unknown } | null
      return l && typeof l.warn === 'function' && typeof l.error === 'function'
        ? (value as Logger)
        : fail()
    },
  },
}

// ------------------------------------------------------------------ the schema

/** Type only: what a key accepts in code. */
declare const ACCEPTS: unique symbol

/** One configuration key of {@link CONFIG_SCHEMA}. */
export interface KeySpec<
  Camel extends string = string,
  K extends Kind = Kind,
  In = unknown,
  Default = unknown,
> {
  /** The camelCase name (`defaultTimeout`). */
  readonly camel: Camel
  readonly kind: K
  /** The value used when no source gives the key; `undefined` when it has none. */
  readonly default: Default
  /** Type only (absent at run time): what the key accepts in code. */
  readonly [ACCEPTS]: In
  /** The same key, accepting `T` in code (for `any` keys, which their resolver checks). */
  accepts<T>(): KeySpec<Camel, K, T, Default>
}

function key<const Camel extends string, K extends Kind>(
  camel: Camel,
  kind: K,
): KeySpec<Camel, K, KindInputs[K], undefined>
function key<const Camel extends string, K extends Kind>(
  camel: Camel,
  kind: K,
  defaultValue: KindValues[K],
): KeySpec<Camel, K, KindInputs[K], KindValues[K]>
function key(camel: string, kind: Kind, defaultValue?: unknown): KeySpec {
  const spec = {
    camel,
    kind,
    default: defaultValue,
    accepts() {
      return spec
    },
  }
  // `accepts` changes the type only; the ACCEPTS member exists in types alone.
  return spec as unknown as KeySpec
}

/**
 * Every configuration key, by Flask-Caching's `CACHE_*` name (accepted
 * verbatim, and read from the environment): its camelCase name, how its
 * values are checked, its default, and (type only) what it accepts in code.
 * The config types (`CacheConfig`, with these comments on each key), the
 * camelCase mapping, environment parsing, validation and the defaults all
 * derive from this one object. Backend-specific keys are listed too, so that
 * a typo is reported at construction whichever backend is chosen. `logger`
 * has no `CACHE_*` name (nor an environment variable).
 */
export const CONFIG_SCHEMA = {
  /** Which backend. @default 'NullCache' */
  CACHE_TYPE: key('type', 'any', 'NullCache').accepts<CacheType>(),
  /** Silences the warning that NullCache disables caching. @default false */
  CACHE_NO_NULL_WARNING: key('noNullWarning', 'boolean', false),
  /** Seconds (or a duration string) an entry lives when no timeout is given; 0 = forever. @default 300 */
  CACHE_DEFAULT_TIMEOUT: key('defaultTimeout', 'timeout', 300),
  /** When true, `deleteMany` does not throw for keys that survive. @default false */
  CACHE_IGNORE_ERRORS: key('ignoreErrors', 'boolean', false),
  /** SimpleCache/FileSystemCache: the most entries kept. @default 500 */
  CACHE_THRESHOLD: key('threshold', 'integer'),
  /** Prefix added by shared backends (Redis, Memcached, object stores). @default 'flask_cache_' */
  CACHE_KEY_PREFIX: key('keyPrefix', 'string', 'flask_cache_'),
  /** FileSystemCache: the directory. Required for it. */
  CACHE_DIR: key('dir', 'string'),
  /** FileSystemCache: the hash used for file names. @default 'sha256' */
  CACHE_FILE_HASH_METHOD: key('fileHashMethod', 'any').accepts<string>(),
  /** Hash for memoize and query-string keys: a `node:crypto` name or a digest function. @default 'sha256' */
  CACHE_HASH_METHOD: key('hashMethod', 'any', 'sha256').accepts<HashMethod>(),
  /** Extra options passed to the backend (snake_case names are converted to camelCase). */
  CACHE_OPTIONS: key('options', 'object', {}),
  /** Positional arguments passed to the backend factory. @default [] */
  CACHE_ARGS: key('args', 'array', []),
  /** Whether a function's source text is part of its cache keys. @default false */
  CACHE_SOURCE_CHECK: key('sourceCheck', 'boolean', false),
  /** How values are encoded: `'v8'` (default), `'json'`, or a custom serializer. @default 'v8' */
  CACHE_SERIALIZER: key('serializer', 'any').accepts<SerializerSpec>(),
  /**
   * When true, backend errors inside `cached`/`memoize` and the cache methods
   * propagate (Flask's debug mode); when false they are logged and the cache
   * misses. @default false
   */
  CACHE_RAISE_ERRORS: key('raiseErrors', 'boolean', false),
  /** Accepted for compatibility with Flask-Caching configs; reserved for events. @default false */
  CACHE_ENABLE_SIGNALS: key('enableSignals', 'boolean', false),
  /** Memcached servers, `'host:port'` each. */
  CACHE_MEMCACHED_SERVERS: key('memcachedServers', 'stringList'),
  /** SASL Memcached user. */
  CACHE_MEMCACHED_USERNAME: key('memcachedUsername', 'string'),
  /** SASL Memcached password. */
  CACHE_MEMCACHED_PASSWORD: key('memcachedPassword', 'string'),
  /** Redis host, or an existing client to share. */
  CACHE_REDIS_HOST: key('redisHost', 'clientOrString'),
  /** Redis port. */
  CACHE_REDIS_PORT: key('redisPort', 'integer'),
  /** Redis password. */
  CACHE_REDIS_PASSWORD: key('redisPassword', 'string'),
  /** Redis database number. */
  CACHE_REDIS_DB: key('redisDb', 'integer'),
  /** Redis URL (`redis://`, `rediss://`, `unix://`). */
  CACHE_REDIS_URL: key('redisUrl', 'string'),
  /** Redis Sentinel addresses. */
  CACHE_REDIS_SENTINELS: key('redisSentinels', 'array'),
  /** Redis Sentinel master name. */
  CACHE_REDIS_SENTINEL_MASTER: key('redisSentinelMaster', 'string'),
  /** Password of the sentinels themselves. */
  CACHE_REDIS_SENTINEL_PASSWORD: key('redisSentinelPassword', 'string'),
  /** Redis Cluster nodes, `'h1:p1,h2:p2'`. */
  CACHE_REDIS_CLUSTER: key('redisCluster', 'string'),
  /** ClusterCache: the store name (Flask-Caching's uWSGI cache name; an `@host` part is ignored). @default 'default' */
  CACHE_UWSGI_NAME: key('uwsgiName', 'string'),
  /** S3 bucket. */
  CACHE_S3_BUCKET: key('s3Bucket', 'string'),
  /** S3 endpoint for S3-compatible servers. */
  CACHE_S3_ENDPOINT_URL: key('s3EndpointUrl', 'string'),
  /** GCS bucket. */
  CACHE_GCS_BUCKET: key('gcsBucket', 'string'),
  /** GCS key prefix. */
  CACHE_GCS_KEY_PREFIX: key('gcsKeyPrefix', 'string'),
  /** Delete expired GCS objects when read. */
  CACHE_GCS_DELETE_EXPIRED_ON_READ: key('gcsDeleteExpiredOnRead', 'boolean'),
  /**
   * Seconds (or a duration string) a call to a network backend may take
   * before it fails with a `BackendTimeoutError` (absorbed: a miss, or a
   * write that returns false); its late result is ignored. `0` = no deadline.
   * A backstop: the built-in Redis, Memcached, S3 and GCS backends have
   * shorter timeouts of their own. Not applied to in-process backends
   * (SimpleCache, NullCache, FileSystemCache), nor to a TieredCache's first tier.
   * @default 5
   */
  CACHE_OPERATION_TIMEOUT: key('operationTimeout', 'timeout'),
  /**
   * The circuit breaker of network backends: after `failures` consecutive
   * failed calls (errors or timeouts) calls fail at once with a
   * `CircuitOpenError` for `openFor` seconds, then one probe call decides.
   * `false` disables it; `true` or `{}` uses the defaults. From the
   * environment: `false`, `true`, or the object as JSON.
   * @default { failures: 10, openFor: 5 }
   */
  CACHE_CIRCUIT_BREAKER: key('circuitBreaker', 'any').accepts<boolean | CircuitBreakerOptions>(),
  /** Where warnings and absorbed backend errors are logged. @default console */
  logger: key('logger', 'logger'),
} as const

type Schema = typeof CONFIG_SCHEMA
type SchemaKey = keyof Schema

/** The `CACHE_*` name of a key (`'CACHE_DEFAULT_TIMEOUT'`); `logger` has only its camelCase name. */
export type EnvName = Extract<SchemaKey, `CACHE_${string}`>

/** A configuration key's camelCase name (`'defaultTimeout'`). */
export type ConfigName = Schema[SchemaKey]['camel']

/** What key `E` accepts in code. */
export type ConfigInput<E extends SchemaKey> = Schema[E][typeof ACCEPTS]

/** What key `E` holds once checked. */
export type ConfigValue<E extends SchemaKey> = KindValues[Schema[E]['kind']]

type Defaulted = {
  [E in SchemaKey]: Schema[E]['default'] extends undefined ? never : E
}[SchemaKey]

/** Configuration with Flask-Caching's names, as `new Cache()` accepts it (see `CacheConfigFlask`). */
export type FlaskConfigInput = {
  [E in keyof Schema as E extends EnvName ? E : never]?: ConfigInput<E>
}

/** Configuration with camelCase names, as `new Cache()` accepts it (see `CacheOptionsCamel`). */
export type CamelConfigInput = { [E in keyof Schema as Schema[E]['camel']]?: ConfigInput<E> }

/** A normalised config fragment: camelCase keys, checked values. */
export type NormalizedConfig = { [E in keyof Schema as Schema[E]['camel']]?: ConfigValue<E> }

/** The same as {@link NormalizedConfig} (the name the CLI's loader uses). */
export type ConfigRecord = NormalizedConfig

type DefaultValues = { [E in Defaulted as Schema[E]['camel']]: ConfigValue<E> }

/** Every source merged over the defaults: what a backend is built from. */
export type ResolvedConfig = DefaultValues & NormalizedConfig

/** `CACHE_*` variables as read from the environment, before {@link normalizeConfig} checks them. */
export type EnvConfig = { [E in EnvName]?: unknown }

/** One key of {@link CONFIG_KEYS}. */
export interface ConfigKey {
  readonly env: string
  readonly camel: string
  readonly kind: Kind
}

const ENV_NAMES = Object.keys(CONFIG_SCHEMA) as SchemaKey[]

/** Every configuration key with both its names and its kind, in `CONFIG_SCHEMA`'s order. */
export const CONFIG_KEYS: readonly ConfigKey[] = ENV_NAMES.map((env) => {
  const { camel, kind } = CONFIG_SCHEMA[env]
  return { env, camel, kind }
})

const BY_NAME = new Map<string, ConfigKey>()
for (const s of CONFIG_KEYS) {
  BY_NAME.set(s.env, s)
  BY_NAME.set(s.camel, s)
}

/** The defaults, camelCase, in schema order (the order `settings.config` lists them in). */
const DEFAULTS = Object.fromEntries(
  ENV_NAMES.filter((e) => CONFIG_SCHEMA[e].default !== undefined).map((e) => [
    CONFIG_SCHEMA[e].camel,
    CONFIG_SCHEMA[e].default,
  ]),
) as DefaultValues

function typeOf(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${String(v)}`
  return typeof v
}

function check(key: string, kind: Kind, value: unknown): unknown {
  const rules: KindRules<unknown> = KINDS[kind]
  return rules.check(value, key, () => {
    throw new ConfigError(key, `expected ${rules.describe}, got ${typeOf(value)}`)
  })
}

function suggest(key: string): string {
  const upper = key.toUpperCase()
  for (const s of CONFIG_KEYS) {
    if (s.env === upper || s.camel.toLowerCase() === key.toLowerCase())
      return ` (did you mean ${s.env}?)`
  }
  return ''
}

/**
 * Validates one config source and returns it with camelCase keys. Unknown keys,
 * wrong types and a key given in both spellings throw {@link ConfigError}.
 * `undefined` values are skipped, so `{ CACHE_DIR: process.env.X }` works.
 */
export function normalizeConfig(input: unknown, source = 'config'): NormalizedConfig {
  if (input === undefined || input === null) return {}
  if (typeof input !== 'object' || Array.isArray(input)) {
    throw new ConfigError(source, `must be a plain object, got ${typeOf(input)}`)
  }
  const out: Record<string, unknown> = {}
  const seen = new Map<string, string>()
  for (const [key, value] of Object.entries(input)) {
    const s = BY_NAME.get(key)
    if (s === undefined) throw new ConfigError(key, `unknown configuration key${suggest(key)}`)
    if (value === undefined) continue
    const other = seen.get(s.camel)
    if (other !== undefined) throw new ConfigError(key, `given twice (also as ${other})`)
    seen.set(s.camel, key)
    out[s.camel] = check(key, s.kind, value)
  }
  // Each value was checked against its key's kind just above.
  return out as NormalizedConfig
}

/** The defaults with `config` (normalised, merged sources) on top. */
export function withDefaults(config: NormalizedConfig): ResolvedConfig {
  return { ...DEFAULTS, ...config }
}

/**
 * `config` with the `CACHE_*` names (for factories written against
 * Flask-Caching's names), frozen, keys in the same order.
 */
export function withEnvNames(config: NormalizedConfig): Readonly<Record<string, unknown>> {
  return Object.freeze(
    Object.fromEntries(Object.entries(config).map(([k, v]) => [envNameOf(k), v])),
  )
}

/** Picks the `CACHE_*` keys out of an app's own settings object (Flask's `app.config`, Express's `app.settings`). */
export function pickCacheKeys(settings: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (typeof settings !== 'object' || settings === null) return out
  for (const [key, value] of Object.entries(settings)) {
    if (key.startsWith('CACHE_')) out[key] = value
  }
  return out
}

/**
 * Reads `CACHE_*` variables from an environment (default `process.env`),
 * converting each to its key's type: booleans from `true/false/1/0/yes/no`,
 * integers, durations, JSON for `CACHE_OPTIONS`/`CACHE_ARGS`/`CACHE_REDIS_SENTINELS`,
 * comma lists for `CACHE_MEMCACHED_SERVERS`. Unknown `CACHE_*` variables throw.
 */
export function configFromEnv(env: Record<string, string | undefined>): EnvConfig {
  const out: Record<string, unknown> = {}
  for (const [key, raw] of Object.entries(env)) {
    if (!key.startsWith('CACHE_') || raw === undefined) continue
    const s = BY_NAME.get(key)
    if (s === undefined) throw new ConfigError(key, `unknown configuration variable${suggest(key)}`)
    const rules: KindRules<unknown> = KINDS[s.kind]
    out[key] = rules.fromEnv ? rules.fromEnv(raw, key, rules.describe) : raw
  }
  return out
}

/** Converts `snake_case` option names (as Flask-Caching's docs write `CACHE_OPTIONS`) to camelCase. */
export function camelizeOptions(options: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(options)) {
    out[key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())] = value
  }
  return out
}

/** The `CACHE_*` spelling of a camelCase key (for factories written against Flask-Caching's names). */
export function envNameOf(camel: string): string {
  return BY_NAME.get(camel)?.env ?? camel
}
