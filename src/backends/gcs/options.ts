/**
 * Internal: validating the Google Cloud Storage configuration. Every error is
 * a {@link ConfigError} naming the Flask-Caching key at fault.
 */
import { describe } from '../../core/describe.js'
import { ConfigError } from '../../core/errors.js'
import type { StorageLike } from './client.js'

/**
 * Bucket names: 3 to 63 characters (up to 222 with dots), lowercase letters,
 * digits, `-`, `_` and `.`, starting and ending with a letter or digit.
 */
const BUCKET_NAME = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/

/** Checks `CACHE_GCS_BUCKET`: required, a valid bucket name. */
export function checkBucket(value: unknown, forWhat: string): string {
  if (typeof value !== 'string' || value === '') {
    throw new ConfigError(
      'CACHE_GCS_BUCKET',
      `${forWhat} needs a bucket name, got ${describe(value)}`,
    )
  }
  if (!BUCKET_NAME.test(value) || (!value.includes('.') && value.length > 63)) {
    throw new ConfigError(
      'CACHE_GCS_BUCKET',
      `${JSON.stringify(value)} is not a bucket name (3-63 lowercase letters, digits, '-', '_' or '.', starting and ending with a letter or digit)`,
    )
  }
  return value
}

/** A positive number (an integer when `integer`) of `CACHE_OPTIONS`, or the default. */
export function checkPositive(
  value: unknown,
  name: string,
  fallback: number,
  { integer = false, max = Number.POSITIVE_INFINITY } = {},
): number {
  if (value === undefined || value === null) return fallback
  const ok =
    typeof value === 'number' &&
    value > 0 &&
    value <= max &&
    Number.isFinite(value) &&
    (!integer || Number.isSafeInteger(value))
  if (!ok) {
    const what = integer ? 'a positive integer' : 'a positive number of milliseconds'
    const limit = Number.isFinite(max) ? ` up to ${max}` : ''
    throw new ConfigError(
      'CACHE_OPTIONS',
      `${name} must be ${what}${limit}, got ${describe(value)}`,
    )
  }
  return value
}

/** A boolean option, or `false`. */
export function checkFlag(value: unknown, name: string, key = 'CACHE_OPTIONS'): boolean {
  if (value === undefined || value === null) return false
  if (typeof value !== 'boolean') {
    throw new ConfigError(key, `${name} must be true or false, got ${describe(value)}`)
  }
  return value
}

/** An optional non-empty string option. */
export function checkString(value: unknown, name: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined
  if (typeof value !== 'string') {
    throw new ConfigError('CACHE_OPTIONS', `${name} must be a string, got ${describe(value)}`)
  }
  return value
}

/** `apiEndpoint`: `http(s)://host[:port]` (a bare host means https, as the client library reads it). */
export function checkEndpoint(value: unknown): string | undefined {
  const text = checkString(value, 'apiEndpoint')
  if (text === undefined) return undefined
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`
  let url: URL
  try {
    url = new URL(withScheme)
  } catch (error) {
    throw new ConfigError('CACHE_OPTIONS', `apiEndpoint is not a URL: ${JSON.stringify(text)}`, {
      cause: error,
    })
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(
      'CACHE_OPTIONS',
      `apiEndpoint must be an http:// or https:// URL, got ${JSON.stringify(text)}`,
    )
  }
  return withScheme.replace(/\/+$/, '')
}

/** `client`: an existing `Storage` (anything with a `bucket(name)` method). */
export function checkClient(value: unknown): StorageLike | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof (value as { bucket?: unknown }).bucket !== 'function') {
    throw new ConfigError(
      'CACHE_OPTIONS',
      `client must be a Storage instance from @google-cloud/storage, got ${describe(value)}`,
    )
  }
  return value as StorageLike
}

/** `clientOptions`: a plain object, or none. */
export function checkClientOptions(value: unknown): Record<string, unknown> {
  if (value === undefined || value === null) return {}
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(
      'CACHE_OPTIONS',
      `clientOptions must be an object of Storage options, got ${describe(value)}`,
    )
  }
  return { ...(value as Record<string, unknown>) }
}

/**
 * `CACHE_OPTIONS` keys the backend reads itself (camelCase; the facade has
 * converted snake_case). Every other key goes to the `Storage` constructor.
 */
export const GCS_OPTIONS = new Set([
  'anonymous',
  'apiEndpoint',
  'projectId',
  'client',
  'timeout',
  'concurrency',
  'pageSize',
  'allowFlush',
  'clientOptions',
  'deleteExpiredOnRead',
  // Flask-Caching's constructor argument `delete_expired_objects_on_read`.
  'deleteExpiredObjectsOnRead',
])
