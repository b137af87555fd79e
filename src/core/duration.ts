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

const PART = /(\d+(?:\.\d+)?)\s*([a-z]+)/gy

/**
 * Parses a {@link Timeout} into seconds. `undefined` stays `undefined` (the
 * backend's default applies). Throws {@link InvalidTimeoutError} naming `what`
 * for negative, non-finite or unparsable input.
 */
export function parseTimeout(value: unknown, what = 'timeout'): number | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) {
      throw new InvalidTimeoutError(
        `${what} must be a non-negative number of seconds or a duration string like '10m', got ${String(value)}`,
      )
    }
    return value
  }
  if (typeof value === 'string') {
    const text = value.trim().toLowerCase()
    if (/^\d+(\.\d+)?$/.test(text)) return Number(text)
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
    if (end === text.length && end > 0) return total
    throw new InvalidTimeoutError(
      `${what}: cannot parse duration ${JSON.stringify(value)} (use e.g. 30, '30s', '10m', '1h30m', '2d')`,
    )
  }
  throw new InvalidTimeoutError(
    `${what} must be a number of seconds or a duration string, got ${typeof value}`,
  )
}
