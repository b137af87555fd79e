import { parseTimeout } from './duration.js'
import { ConfigError } from './errors.js'

type Kind =
  | 'any'
  | 'boolean'
  | 'timeout'
  | 'integer'
  | 'string'
  | 'object'
  | 'array'
  | 'stringList'
  | 'clientOrString'
  | 'logger'

interface KeySpec {
  readonly env: string
  readonly camel: string
  readonly kind: Kind
}

const spec = (env: string, camel: string, kind: Kind): KeySpec => ({ env, camel, kind })

/**
 * Every configuration key: Flask-Caching's `CACHE_*` names (accepted verbatim)
 * and their camelCase equivalents. Backend-specific keys are listed here too so
 * that a typo is reported at construction whichever backend is chosen.
 */
export const CONFIG_KEYS: readonly KeySpec[] = [
  spec('CACHE_TYPE', 'type', 'any'),
  spec('CACHE_NO_NULL_WARNING', 'noNullWarning', 'boolean'),
  spec('CACHE_DEFAULT_TIMEOUT', 'defaultTimeout', 'timeout'),
  spec('CACHE_IGNORE_ERRORS', 'ignoreErrors', 'boolean'),
  spec('CACHE_THRESHOLD', 'threshold', 'integer'),
  spec('CACHE_KEY_PREFIX', 'keyPrefix', 'string'),
  spec('CACHE_DIR', 'dir', 'string'),
  spec('CACHE_FILE_HASH_METHOD', 'fileHashMethod', 'any'),
  spec('CACHE_HASH_METHOD', 'hashMethod', 'any'),
  spec('CACHE_OPTIONS', 'options', 'object'),
  spec('CACHE_ARGS', 'args', 'array'),
  spec('CACHE_SOURCE_CHECK', 'sourceCheck', 'boolean'),
  spec('CACHE_SERIALIZER', 'serializer', 'any'),
  spec('CACHE_RAISE_ERRORS', 'raiseErrors', 'boolean'),
  spec('CACHE_ENABLE_SIGNALS', 'enableSignals', 'boolean'),
  spec('CACHE_MEMCACHED_SERVERS', 'memcachedServers', 'stringList'),
  spec('CACHE_MEMCACHED_USERNAME', 'memcachedUsername', 'string'),
  spec('CACHE_MEMCACHED_PASSWORD', 'memcachedPassword', 'string'),
  spec('CACHE_REDIS_HOST', 'redisHost', 'clientOrString'),
  spec('CACHE_REDIS_PORT', 'redisPort', 'integer'),
  spec('CACHE_REDIS_PASSWORD', 'redisPassword', 'string'),
  spec('CACHE_REDIS_DB', 'redisDb', 'integer'),
  spec('CACHE_REDIS_URL', 'redisUrl', 'string'),
  spec('CACHE_REDIS_SENTINELS', 'redisSentinels', 'array'),
  spec('CACHE_REDIS_SENTINEL_MASTER', 'redisSentinelMaster', 'string'),
  spec('CACHE_REDIS_SENTINEL_PASSWORD', 'redisSentinelPassword', 'string'),
  spec('CACHE_REDIS_CLUSTER', 'redisCluster', 'string'),
  spec('CACHE_UWSGI_NAME', 'uwsgiName', 'string'),
  spec('CACHE_S3_BUCKET', 's3Bucket', 'string'),
  spec('CACHE_S3_ENDPOINT_URL', 's3EndpointUrl', 'string'),
  spec('CACHE_GCS_BUCKET', 'gcsBucket', 'string'),
  spec('CACHE_GCS_KEY_PREFIX', 'gcsKeyPrefix', 'string'),
  spec('CACHE_GCS_DELETE_EXPIRED_ON_READ', 'gcsDeleteExpiredOnRead', 'boolean'),
  spec('CACHE_OPERATION_TIMEOUT', 'operationTimeout', 'timeout'),
  spec('CACHE_CIRCUIT_BREAKER', 'circuitBreaker', 'any'),
  spec('logger', 'logger', 'logger'),
]

const BY_NAME = new Map<string, KeySpec>()
for (const s of CONFIG_KEYS) {
  BY_NAME.set(s.env, s)
  BY_NAME.set(s.camel, s)
}

/** A normalised config fragment: camelCase keys, validated values. */
export type ConfigRecord = Record<string, unknown>

function kindName(kind: Kind): string {
  switch (kind) {
    case 'timeout':
      return "a non-negative number of seconds or a duration string like '5m'"
    case 'integer':
      return 'a non-negative integer'
    case 'stringList':
      return 'an array of strings or a comma-separated string'
    case 'clientOrString':
      return 'a host name or a client object'
    case 'logger':
      return 'an object with warn() and error()'
    case 'object':
      return 'a plain object'
    default:
      return `a ${kind}`
  }
}

function typeOf(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${String(v)}`
  return typeof v
}

function check(key: string, kind: Kind, value: unknown): unknown {
  const fail = (): never => {
    throw new ConfigError(key, `expected ${kindName(kind)}, got ${typeOf(value)}`)
  }
  switch (kind) {
    case 'any':
      return value
    case 'boolean':
      return typeof value === 'boolean' ? value : fail()
    case 'timeout':
      try {
        return parseTimeout(value, key)
      } catch (error) {
        throw new ConfigError(key, `expected ${kindName(kind)}, got ${typeOf(value)}`, {
          cause: error,
        })
      }
    case 'integer':
      return Number.isSafeInteger(value) && (value as number) >= 0 ? value : fail()
    case 'string':
      return typeof value === 'string' ? value : fail()
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : fail()
    case 'array':
      return Array.isArray(value) ? value : fail()
    case 'stringList':
      if (typeof value === 'string')
        return value
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      return Array.isArray(value) && value.every((s) => typeof s === 'string') ? value : fail()
    case 'clientOrString':
      return typeof value === 'string' || (typeof value === 'object' && value !== null)
        ? value
        : fail()
    case 'logger': {
      const l = value as { warn?: unknown; error?: unknown } | null
      return l && typeof l.warn === 'function' && typeof l.error === 'function' ? value : fail()
    }
  }
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
export function normalizeConfig(input: unknown, source = 'config'): ConfigRecord {
  if (input === undefined || input === null) return {}
  if (typeof input !== 'object' || Array.isArray(input)) {
    throw new ConfigError(source, `must be a plain object, got ${typeOf(input)}`)
  }
  const out: ConfigRecord = {}
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
  return out
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

const TRUE = new Set(['1', 'true', 'yes', 'on'])
const FALSE = new Set(['0', 'false', 'no', 'off', ''])

/**
 * Reads `CACHE_*` variables from an environment (default `process.env`),
 * converting each to its key's type: booleans from `true/false/1/0/yes/no`,
 * integers, durations, JSON for `CACHE_OPTIONS`/`CACHE_ARGS`/`CACHE_REDIS_SENTINELS`,
 * comma lists for `CACHE_MEMCACHED_SERVERS`. Unknown `CACHE_*` variables throw.
 */
export function configFromEnv(env: Record<string, string | undefined>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, raw] of Object.entries(env)) {
    if (!key.startsWith('CACHE_') || raw === undefined) continue
    const s = BY_NAME.get(key)
    if (s === undefined) throw new ConfigError(key, `unknown configuration variable${suggest(key)}`)
    out[key] = fromString(key, s.kind, raw)
  }
  return out
}

function fromString(key: string, kind: Kind, raw: string): unknown {
  const text = raw.trim()
  switch (kind) {
    case 'boolean': {
      const t = text.toLowerCase()
      if (TRUE.has(t)) return true
      if (FALSE.has(t)) return false
      throw new ConfigError(key, `expected true/false, got ${JSON.stringify(raw)}`)
    }
    case 'integer': {
      if (!/^\d+$/.test(text))
        throw new ConfigError(key, `expected an integer, got ${JSON.stringify(raw)}`)
      return Number(text)
    }
    case 'object':
    case 'array':
      try {
        return JSON.parse(text)
      } catch {
        throw new ConfigError(key, `expected JSON (${kindName(kind)}), got ${JSON.stringify(raw)}`)
      }
    default:
      return raw
  }
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
