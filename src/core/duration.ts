import { InvalidTimeoutError } from './errors.js'

/**
 * A timeout: whole or fractional seconds, or a duration string such as `'90s'`,
 * `'10m'`, `'1h30m'`, `'2d'` or `'500ms'`. `0` means the entry never expires.
 * A bare number is always seconds, never milliseconds.
 */
export type Timeout = number | string

const UNIT_SECONDS: Record<string, number> = {
  ms: 0.001,
  s: 1,
  sec: 1,
  secs: 1,
  second: 1,
  seconds: 1,
  m: 60,
  min: 60,
  mins: 60,
  minute: 60,
  minutes: 60,
  h: 3600,
  hr: 3600,
  hrs: 3600,
  hour: 3600,
  hours: 3600,
  d: 86400,
  day: 86400,
  days: 86400,
  w: 604800,
  week: 604800,
  weeks: 604800,
}

/**
 * The longest timeout kept as such: ten years. A longer one (`1e306`, or a
 * year 2106 on Memcached) is beyond what some stores can represent, so it
 * means "never expires" (`0`), the same on every backend.
 */
export const MAX_TIMEOUT_SECONDS = 10 * 365 * 86_400

/** A value for a message: a Date as `a Date (ISO)`, strings quoted, objects by their type. */
function describeValue(value: unknown): string {
  if (value instanceof Date) {
    return `a Date (${Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString()})`
  }
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'bigint') return `${value}n (a bigint)`
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value)
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'function') return 'a function'
  const name = (value as object).constructor?.name
  return name && name !== 'Object' ? `a ${name}` : typeof value
}

/**
 * Checks a parsed timeout in seconds, as a backend receives it: `undefined`
 * stays `undefined`; a non-negative finite number is kept, clamped to `0`
 * (never expires) above `MAX_TIMEOUT_SECONDS`.
 * @throws {InvalidTimeoutError} naming `what` and the value for anything else
 * (a Date, a string, NaN, a negative or infinite number).
 */
export function checkSeconds(value: unknown, what = 'timeout'): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidTimeoutError(
      `${what} must be a non-negative number of seconds, got ${describeValue(value)}`,
    )
  }
  return value > MAX_TIMEOUT_SECONDS ? 0 : value
}

const PART = /(\d+(?:\.\d+)?)\s*([a-z]+)/gy

/**
 * Parses a {@link Timeout} into seconds. `undefined` stays `undefined` (the
 * backend's default applies); more than `MAX_TIMEOUT_SECONDS` becomes
 * `0` (never expires). Throws {@link InvalidTimeoutError} naming `what` and
 * the value for negative, non-finite or unparsable input and for anything
 * that is not a number or a string (a `Date` is not a timeout).
 */
export function parseTimeout(value: unknown, what = 'timeout'): number | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) {
      throw new InvalidTimeoutError(
        `${what} must be a non-negative number of seconds or a duration string like '10m', got ${String(value)}`,
      )
    }
    return checkSeconds(value, what)
  }
  if (typeof value === 'string') {
    const text = value.trim().toLowerCase()
    if (/^\d+(\.\d+)?$/.test(text)) return checkSeconds(Number(text), what)
    let total = 0
    let end = 0
    PART.lastIndex = 0
    for (let m = PART.exec(text); m !== null; m = PART.exec(text)) {
      const unit = UNIT_SECONDS[m[2] as string]
      if (unit === undefined) break
      total += Number(m[1]) * unit
      end = PART.lastIndex
      while (text[end] === ' ') end++
      PART.lastIndex = end
    }
    if (end === text.length && end > 0) return checkSeconds(total, what)
    throw new InvalidTimeoutError(
      `${what}: cannot parse duration ${JSON.stringify(value)} (use e.g. 30, '30s', '10m', '1h30m', '2d')`,
    )
  }
  throw new InvalidTimeoutError(
    `${what} must be a number of seconds or a duration string, got ${describeValue(value)}`,
  )
}
