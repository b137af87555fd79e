/**
 * Internal: parsing and validating the Memcached configuration. Every error is
 * a {@link ConfigError} naming the Flask-Caching key at fault.
 */
import type { ConnectionOptions as TlsOptions } from 'node:tls'
import { describe } from '../../core/describe.js'
import { ConfigError } from '../../core/errors.js'
import type { ServerAddress } from './connection.js'

const SERVER_FORMS = "expected 'host:port', 'host' (port 11211), '[ipv6]:port' or a socket path"

/** Parses one `CACHE_MEMCACHED_SERVERS` entry. */
export function parseServer(value: unknown, key = 'CACHE_MEMCACHED_SERVERS'): ServerAddress {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new ConfigError(key, `${SERVER_FORMS}, got ${describe(value)}`)
  }
  const text = value.trim()
  if (text.startsWith('/')) return { path: text, label: text }
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+))(?::(\d+))?$/.exec(text)
  if (m === null) throw new ConfigError(key, `${SERVER_FORMS}, got ${JSON.stringify(text)}`)
  const host = (m[1] ?? m[2]) as string
  const port = m[3] === undefined ? 11211 : Number(m[3])
  if (!(port > 0 && port < 65536)) {
    throw new ConfigError(key, `port ${m[3]} in ${JSON.stringify(text)} is out of range`)
  }
  return { host, port, label: m[1] !== undefined ? `[${host}]:${port}` : `${host}:${port}` }
}

/** Parses `CACHE_MEMCACHED_SERVERS`: one string (comma-separated) or a list. */
export function parseServers(value: unknown): ServerAddress[] {
  if (value === undefined || value === null) return [parseServer('127.0.0.1:11211')]
  const list =
    typeof value === 'string'
      ? value.split(',').map((s) => s.trim())
      : Array.isArray(value)
        ? (value as unknown[])
        : undefined
  if (list === undefined || list.length === 0) {
    throw new ConfigError(
      'CACHE_MEMCACHED_SERVERS',
      `expected a list of servers ('host:port'), got ${describe(value)}`,
    )
  }
  const servers = list.map((s) => parseServer(s))
  const seen = new Set<string>()
  for (const s of servers) {
    if (seen.has(s.label)) {
      throw new ConfigError('CACHE_MEMCACHED_SERVERS', `${s.label} is listed twice`)
    }
    seen.add(s.label)
  }
  return servers
}

/** The longest key prefix: leaves room for the namespace and a hashed key within 250 bytes. */
export const MAX_PREFIX = 160

/** Checks `CACHE_KEY_PREFIX`: printable ASCII without spaces, at most {@link MAX_PREFIX} characters. */
export function checkPrefix(value: unknown): string {
  if (value === undefined || value === null) return ''
  if (typeof value !== 'string') {
    throw new ConfigError('CACHE_KEY_PREFIX', `expected a string, got ${describe(value)}`)
  }
  if (!/^[\x21-\x7e]*$/.test(value)) {
    throw new ConfigError(
      'CACHE_KEY_PREFIX',
      `memcached keys cannot hold spaces, control or non-ASCII characters; got ${JSON.stringify(value)}`,
    )
  }
  if (value.length > MAX_PREFIX) {
    throw new ConfigError(
      'CACHE_KEY_PREFIX',
      `at most ${MAX_PREFIX} characters (memcached keys are limited to 250 bytes), got ${value.length}`,
    )
  }
  return value
}

/** A positive number of milliseconds, or the default. */
export function checkMs(value: unknown, name: string, fallback: number): number {
  if (value === undefined || value === null) return fallback
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw new ConfigError(
      'CACHE_OPTIONS',
      `${name} must be a positive number of milliseconds, got ${describe(value)}`,
    )
  }
  return value
}

/** A positive integer, or the default. */
export function checkCount(value: unknown, name: string, fallback: number): number {
  if (value === undefined || value === null) return fallback
  if (!Number.isSafeInteger(value) || (value as number) <= 0) {
    throw new ConfigError(
      'CACHE_OPTIONS',
      `${name} must be a positive integer, got ${describe(value)}`,
    )
  }
  return value as number
}

/** `tls: true` or TLS options; `undefined` for plain TCP. */
export function checkTls(value: unknown): TlsOptions | undefined {
  if (value === undefined || value === null || value === false) return undefined
  if (value === true) return {}
  if (typeof value === 'object' && !Array.isArray(value)) return { ...(value as TlsOptions) }
  throw new ConfigError(
    'CACHE_OPTIONS',
    `tls must be true or node:tls connect options, got ${describe(value)}`,
  )
}

/** Credentials: both or neither. An empty string counts as none. */
export function checkCredentials(
  username: unknown,
  password: unknown,
): { username?: string; password?: string } {
  const user = username === undefined || username === null || username === '' ? undefined : username
  const pass = password === undefined || password === null || password === '' ? undefined : password
  if (user !== undefined && typeof user !== 'string') {
    throw new ConfigError('CACHE_MEMCACHED_USERNAME', `expected a string, got ${describe(user)}`)
  }
  if (pass !== undefined && typeof pass !== 'string') {
    throw new ConfigError('CACHE_MEMCACHED_PASSWORD', `expected a string, got ${describe(pass)}`)
  }
  if ((user === undefined) !== (pass === undefined)) {
    throw new ConfigError(
      user === undefined ? 'CACHE_MEMCACHED_USERNAME' : 'CACHE_MEMCACHED_PASSWORD',
      'SASL needs both a user name and a password',
    )
  }
  return user === undefined ? {} : { username: user, password: pass as string }
}

/**
 * `CACHE_OPTIONS` keys the Memcached backends understand (camelCase; the
 * factory has converted snake_case). Flask-Caching's `chunksize`/`maxchunk`
 * spellings and pylibmc's pool options are accepted too.
 */
export const MEMCACHED_OPTIONS = new Set([
  'allowFlush',
  'commandTimeout',
  'connectTimeout',
  'maxRetryDelay',
  'tls',
  'chunkSize',
  'chunksize',
  'maxChunks',
  'maxchunk',
  'poolSize',
  'poolBlocking',
])
