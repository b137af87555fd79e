/**
 * Internal: parsing and validating the Redis configuration (URLs, sentinel
 * lists, cluster node strings, `CACHE_OPTIONS` pass-through). Every error is a
 * {@link ConfigError} naming the Flask-Caching key at fault.
 */
import type { BackendFactoryOptions } from '../../core/backend.js'
import { describe } from '../../core/describe.js'
import { ConfigError } from '../../core/errors.js'

/** A host and port. */
export interface HostPort {
  host: string
  port: number
}

/** What a `redis://`, `rediss://` or `unix://` URL says. */
export interface UrlEndpoint {
  host?: string
  port?: number
  /** Unix socket path (`unix://`). */
  path?: string
  username?: string
  password?: string
  db?: number
  /** `rediss://`: connect with TLS. */
  tls: boolean
}

const URL_FORMS =
  'expected redis://[[user]:password@]host[:port][/db], rediss://... (TLS) or unix:///path/to.sock[?db=N]'

/** A non-empty string, else `undefined` (an empty password means none). */
export function nonEmpty(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined
}

/** Where one Redis server is: a URL, or host, port and credentials. */
export interface StandaloneEndpoint {
  url?: string | undefined
  host?: string | undefined
  port?: number | undefined
  username?: string | undefined
  password?: string | undefined
  db?: number | undefined
}

/**
 * The ioredis connection options of one server (host and port or a socket
 * path, credentials, TLS, database) from a URL, or else from host, port and
 * credentials; `clientOptions.tls` is kept under a `rediss://` URL. Errors
 * name `urlKey` for a bad URL and `CACHE_REDIS_HOST` for a bad host.
 */
export function standaloneConnection(
  options: StandaloneEndpoint,
  clientOptions: Readonly<Record<string, unknown>>,
  urlKey?: string,
): { conn: Record<string, unknown>; db: number | undefined } {
  const conn: Record<string, unknown> = {}
  let db: number | undefined
  if (options.url !== undefined && options.url !== null && options.url !== '') {
    const u = parseRedisUrl(options.url, urlKey)
    if (u.path !== undefined) conn.path = u.path
    else {
      conn.host = u.host
      conn.port = u.port
    }
    if (u.username !== undefined) conn.username = u.username
    if (u.password !== undefined) conn.password = u.password
    if (u.tls) conn.tls = { ...((clientOptions.tls as object | undefined) ?? {}) }
    db = u.db ?? checkDb(options.db)
  } else {
    const host = options.host ?? 'localhost'
    if (typeof host !== 'string' || host === '') {
      throw new ConfigError('CACHE_REDIS_HOST', `expected a host name, got ${describe(host)}`)
    }
    conn.host = host
    conn.port = checkPort(options.port) ?? 6379
    const username = nonEmpty(options.username)
    const password = nonEmpty(options.password)
    if (username !== undefined) conn.username = username
    if (password !== undefined) conn.password = password
    db = checkDb(options.db)
  }
  if (db !== undefined) conn.db = db
  return { conn, db }
}

function isPort(n: unknown): n is number {
  return Number.isInteger(n) && (n as number) > 0 && (n as number) < 65536
}

function parseDb(text: string, key: string, url: string): number {
  if (!/^\d+$/.test(text)) {
    throw new ConfigError(key, `database ${JSON.stringify(text)} in ${url} is not an integer`)
  }
  return Number(text)
}

/** A URL password/username is percent-encoded; a malformed escape is a config error. */
function decode(part: string, key: string): string {
  try {
    return decodeURIComponent(part)
  } catch {
    throw new ConfigError(key, `bad percent-encoding in the URL's credentials`)
  }
}

/** Strips the brackets of an IPv6 literal. */
function bareHost(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
}

/**
 * Parses `CACHE_REDIS_URL`, as redis-py's `from_url` reads it. A `db` query
 * parameter wins over the path (`redis://h/2`); either wins over the
 * separate `CACHE_REDIS_DB`.
 * @throws {ConfigError} naming `key` for anything else.
 */
export function parseRedisUrl(value: unknown, key = 'CACHE_REDIS_URL'): UrlEndpoint {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new ConfigError(key, `${URL_FORMS}, got ${describe(value)}`)
  }
  // The password is never echoed back in an error message.
  const shown = value.replace(/\/\/[^@/]*@/, '//***@')
  let url: URL
  try {
    url = new URL(value.trim())
  } catch (error) {
    throw new ConfigError(key, `malformed URL ${shown}: ${URL_FORMS}`, { cause: error })
  }
  const out: UrlEndpoint = { tls: false }
  if (url.username) out.username = decode(url.username, key)
  if (url.password) out.password = decode(url.password, key)
  const queryPassword = url.searchParams.get('password')
  if (queryPassword) out.password = queryPassword
  const queryDb = url.searchParams.get('db')
  switch (url.protocol) {
    case 'redis:':
    case 'rediss:': {
      out.tls = url.protocol === 'rediss:'
      if (url.hostname === '') throw new ConfigError(key, `no host in ${shown}: ${URL_FORMS}`)
      out.host = bareHost(url.hostname)
      out.port = url.port === '' ? 6379 : Number(url.port)
      const path = url.pathname.replace(/^\/+|\/+$/g, '')
      if (path !== '') out.db = parseDb(path, key, shown)
      break
    }
    case 'unix:': {
      if (url.pathname === '' || url.pathname === '/') {
        throw new ConfigError(key, `no socket path in ${shown}: ${URL_FORMS}`)
      }
      if (url.hostname !== '') {
        throw new ConfigError(
          key,
          `${shown} has a host; write unix:///absolute/path.sock (three slashes)`,
        )
      }
      out.path = decode(url.pathname, key)
      break
    }
    default:
      throw new ConfigError(key, `unsupported scheme ${url.protocol} in ${shown}: ${URL_FORMS}`)
  }
  if (queryDb !== null) out.db = parseDb(queryDb, key, shown)
  return out
}

const HOST_PORT = /^(\[[^\]]+\]|[^\s:,[\]]+):(\d+)$/

/** `'host:port'` (IPv6 as `[::1]:6379`) → HostPort; `undefined` if it is not one. */
function parseHostPort(text: string): HostPort | undefined {
  const m = HOST_PORT.exec(text.trim())
  if (m === null) return undefined
  const port = Number(m[2])
  return isPort(port) ? { host: bareHost(m[1] as string), port } : undefined
}

/**
 * Validates `CACHE_REDIS_SENTINELS`: a non-empty array whose items are
 * `[host, port]` pairs (Flask's tuples), `'host:port'` strings or
 * `{ host, port }` objects.
 * @throws {ConfigError} naming `CACHE_REDIS_SENTINELS`.
 */
export function parseSentinels(value: unknown): HostPort[] {
  const key = 'CACHE_REDIS_SENTINELS'
  const shape = `expected a non-empty array of [host, port] pairs, 'host:port' strings or { host, port } objects`
  if (!Array.isArray(value) || value.length === 0) {
    throw new ConfigError(key, `${shape}, got ${describe(value)}`)
  }
  return value.map((item, i) => {
    let parsed: HostPort | undefined
    if (typeof item === 'string') parsed = parseHostPort(item)
    else if (Array.isArray(item) && item.length === 2) {
      const [host, port] = item as unknown[]
      const p = typeof port === 'string' && /^\d+$/.test(port) ? Number(port) : port
      if (typeof host === 'string' && host !== '' && isPort(p)) parsed = { host, port: p }
    } else if (typeof item === 'object' && item !== null) {
      const { host, port } = item as { host?: unknown; port?: unknown }
      if (typeof host === 'string' && host !== '' && isPort(port)) parsed = { host, port }
    }
    if (parsed === undefined) {
      throw new ConfigError(
        key,
        `item ${i} (${describe(item)}${Array.isArray(item) ? ` ${JSON.stringify(item)}` : ''}) is not a sentinel address: ${shape}`,
      )
    }
    return parsed
  })
}

/**
 * Validates `CACHE_REDIS_CLUSTER`: `'host1:port1,host2:port2'` (Flask's form),
 * or an array of `'host:port'` strings or `{ host, port }` objects. Every
 * part needs a numeric port.
 * @throws {ConfigError} naming `CACHE_REDIS_CLUSTER`.
 */
export function parseClusterNodes(value: unknown): HostPort[] {
  const key = 'CACHE_REDIS_CLUSTER'
  const example = "e.g. 'host1:port1,host2:port2,host3:port3'"
  const parts: unknown[] =
    typeof value === 'string'
      ? value
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '')
      : Array.isArray(value)
        ? value
        : []
  if (parts.length === 0) {
    throw new ConfigError(key, `expected the startup nodes, ${example}; got ${describe(value)}`)
  }
  return parts.map((part) => {
    let parsed: HostPort | undefined
    if (typeof part === 'string') parsed = parseHostPort(part)
    else if (typeof part === 'object' && part !== null) {
      const { host, port } = part as { host?: unknown; port?: unknown }
      if (typeof host === 'string' && host !== '' && isPort(port)) parsed = { host, port }
    }
    if (parsed === undefined) {
      throw new ConfigError(
        key,
        `${describe(part)} is not host:port with a numeric port; ${example}`,
      )
    }
    return parsed
  })
}

/** Options that cachette reads itself; the rest of `CACHE_OPTIONS` goes to ioredis. */
const OWN_OPTIONS = new Set([
  'defaultTimeout',
  'ignoreDeleteManyErrors',
  'serializer',
  'logger',
  'allowFlush',
  'clientOptions',
  'client',
])

/**
 * Splits a factory's options: cachette's own, and `clientOptions` (the
 * unknown `CACHE_OPTIONS` keys plus an explicit `clientOptions`) for ioredis.
 */
export function splitFactoryOptions(options: BackendFactoryOptions): {
  own: BackendFactoryOptions & { allowFlush?: boolean }
  clientOptions: Record<string, unknown>
} {
  const own: Record<string, unknown> = {}
  const clientOptions: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(options)) {
    if (k === 'clientOptions') {
      if (typeof v === 'object' && v !== null) Object.assign(clientOptions, v)
    } else if (OWN_OPTIONS.has(k)) own[k] = v
    else clientOptions[k] = v
  }
  return { own: own as BackendFactoryOptions, clientOptions }
}

/**
 * Rejects client options that would corrupt stored values or fight the
 * backend's own key handling.
 */
export function checkClientOptions(options: Readonly<Record<string, unknown>>): void {
  for (const name of ['decodeResponses', 'decode_responses']) {
    if (options[name]) {
      throw new ConfigError(
        'CACHE_OPTIONS',
        `${name} would decode stored bytes as text and corrupt binary values; remove it`,
      )
    }
  }
  if ('keyPrefix' in options || 'key_prefix' in options) {
    throw new ConfigError(
      'CACHE_OPTIONS',
      'keyPrefix: set CACHE_KEY_PREFIX (or the keyPrefix option of the backend) instead; the backend prefixes keys itself so that clear() can find them',
    )
  }
}

/** Validates a `db` number. */
export function checkDb(db: unknown): number | undefined {
  if (db === undefined || db === null) return undefined
  if (!Number.isSafeInteger(db) || (db as number) < 0) {
    throw new ConfigError('CACHE_REDIS_DB', `expected a non-negative integer, got ${describe(db)}`)
  }
  return db as number
}

/** Validates a port. */
export function checkPort(port: unknown): number | undefined {
  if (port === undefined || port === null) return undefined
  const p = typeof port === 'string' && /^\d+$/.test(port) ? Number(port) : port
  if (!isPort(p)) {
    throw new ConfigError('CACHE_REDIS_PORT', `expected a port number, got ${describe(port)}`)
  }
  return p
}

/** Validates the key prefix. */
export function checkPrefix(prefix: unknown): string {
  if (prefix === undefined || prefix === null) return ''
  if (typeof prefix !== 'string') {
    throw new ConfigError('CACHE_KEY_PREFIX', `expected a string, got ${describe(prefix)}`)
  }
  return prefix
}

/** Escapes the glob characters of Redis `SCAN MATCH` (`* ? [ ] \`). */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}
