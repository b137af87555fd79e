/**
 * What the object-storage backends (S3, Google Cloud Storage) share: object
 * names for any key, the absolute expiry kept with an object, bounded
 * parallelism and a deadline on every call.
 */

import { createHash } from 'node:crypto'
import {
  BackendTimeoutError,
  type CauseOptions,
  ConfigError,
  InvalidTimeoutError,
} from './errors.js'
import { mapLimit as mapSettled } from './promise.js'

/** Object names are at most 1,024 bytes of UTF-8 on S3 and GCS. */
export const MAX_OBJECT_NAME = 1024
/**
 * Stores that keep objects as files (MinIO, s3rver) limit each
 * `/`-separated segment to a file name's 255 bytes.
 */
const MAX_SEGMENT = 255
const HASHED = '~h~'

/**
 * Whether a key can be an object name as is: no control characters (S3's
 * XML listings cannot carry them, GCS forbids them) and no lone surrogate
 * (UTF-8 would turn it into U+FFFD, so two keys would meet).
 */
function plainName(key: string): boolean {
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i)
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return false
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = key.charCodeAt(i + 1)
      if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) return false
      i++
    }
  }
  return true
}

/**
 * Whether every `/`-separated segment of `name` is a usable file name: not
 * empty (`a//b`, a leading or trailing `/`: S3-compatible stores that keep
 * objects as files cannot hold them, and some HTTP layers collapse `//`)
 * and at most 255 bytes.
 */
function segmentsFit(name: string): boolean {
  let start = 0
  for (;;) {
    const end = name.indexOf('/', start)
    const segment = end < 0 ? name.slice(start) : name.slice(start, end)
    if (segment === '') return false
    if (segment.length > MAX_SEGMENT / 3 && Buffer.byteLength(segment) > MAX_SEGMENT) return false
    if (end < 0) return true
    start = end + 1
  }
}

/**
 * The object name of `key`: `prefix + key` when that is a valid name of at
 * most 1,024 bytes whose `/`-separated segments are non-empty and at most 255
 * bytes each, else `prefix + '~h~' + sha256(key)` (so view keys, which hold
 * `//`, are hashed). Keys that already start with `~h~`
 * are hashed too, so two keys never share a name. Slashes and any other
 * Unicode are kept.
 */
export function objectName(prefix: string, key: string): string {
  const name = prefix + key
  if (
    !key.startsWith(HASHED) &&
    plainName(key) &&
    Buffer.byteLength(name) <= MAX_OBJECT_NAME &&
    segmentsFit(name)
  ) {
    return name
  }
  return prefix + HASHED + createHash('sha256').update(key, 'utf16le').digest('hex')
}

/**
 * Checks an object-store key prefix: a string short enough to leave room for
 * a hashed key, without control characters.
 * @throws {ConfigError} naming `configKey`.
 */
export function checkObjectPrefix(value: unknown, configKey = 'CACHE_KEY_PREFIX'): string {
  if (value === undefined || value === null) return ''
  if (typeof value !== 'string') {
    throw new ConfigError(configKey, `expected a string, got ${typeof value}`)
  }
  if (!plainName(value)) {
    throw new ConfigError(configKey, 'an object name prefix cannot hold control characters')
  }
  if (Buffer.byteLength(value) > MAX_OBJECT_NAME - 100) {
    throw new ConfigError(
      configKey,
      `at most ${MAX_OBJECT_NAME - 100} bytes, got ${Buffer.byteLength(value)}`,
    )
  }
  return value
}

/**
 * The absolute expiry, in milliseconds since the epoch, of an entry written
 * now with `seconds` to live; `undefined` for `0` (never expires).
 * @throws {InvalidTimeoutError} for a negative or non-finite timeout.
 */
export function expiryOf(seconds: number, name: string, now = Date.now()): number | undefined {
  if (seconds === 0) return undefined
  if (!(seconds > 0) || !Number.isFinite(seconds)) {
    throw new InvalidTimeoutError(
      `${name}: timeout must be a non-negative number of seconds, got ${seconds}`,
    )
  }
  return now + Math.round(seconds * 1000)
}

/** Whether an entry with this expiry (ms since the epoch, `undefined` = never) is still live. */
export function isLive(expiresAt: number | undefined, now = Date.now()): boolean {
  return expiresAt === undefined || expiresAt > now
}

/**
 * Runs `fn` over `items` with at most `limit` calls in flight; settles every
 * call and resolves their outcomes in item order (core/promise.ts's, in its
 * `'settle'` mode).
 */
export function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<PromiseSettledResult<R>[]> {
  return mapSettled(items, limit, 'settle', fn)
}

/** The values of settled calls; rejects with the first failure if any. */
export function allValues<R>(settled: readonly PromiseSettledResult<R>[]): R[] {
  const failed = settled.find((s) => s.status === 'rejected')
  if (failed !== undefined) throw (failed as PromiseRejectedResult).reason
  return settled.map((s) => (s as PromiseFulfilledResult<R>).value)
}

/**
 * A call that took longer than its deadline: the one timeout error of
 * cachette ({@link BackendTimeoutError}, code `ERR_CACHETTE_BACKEND_TIMEOUT`),
 * under the name object-store callers have known it by.
 */
export class StoreTimeoutError extends BackendTimeoutError {
  constructor(message: string, timeoutMs: number, options?: CauseOptions) {
    super(message, timeoutMs, options)
    this.name = 'StoreTimeoutError'
  }
}

/**
 * Runs `call` with an AbortSignal that fires after `ms`, and rejects with a
 * {@link StoreTimeoutError} at the deadline even if `call` ignores the signal.
 */
export function withDeadline<T>(
  ms: number,
  what: string,
  call: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController()
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new StoreTimeoutError(`${what}: no answer within ${ms} ms (timeout)`, ms)
      controller.abort(error)
      reject(error)
    }, ms)
  })
  const running = call(controller.signal)
  // The call may still reject after the deadline won: that rejection is handled here.
  running.catch(() => {})
  return Promise.race([running, deadline]).finally(() => clearTimeout(timer))
}
