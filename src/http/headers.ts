/**
 * Parsing and formatting the header fields HTTP caching reads (RFC 9110,
 * RFC 9111), strictly and without throwing: malformed input is treated as
 * the RFCs say (an invalid `Expires` means already expired, an invalid `Age`
 * is ignored, an unknown or malformed directive is ignored).
 */
import { createHash } from 'node:crypto'
import { type Directives, type HeaderBag, isToken, splitList } from '../core/headers.js'

// The primitives the view engine shares live in core/headers.ts; `cachette/http` exports them from here.
export {
  type Directives,
  type HeaderBag,
  headerValue,
  isToken,
  parseCacheControl,
  parseVary,
  splitList,
} from '../core/headers.js'

/**
 * A `[name, value]` list as a bag by lower-case name: repeated fields joined
 * with `, ` (`Set-Cookie` values with a newline, since they cannot be joined).
 */
export function headerBag(headers: readonly (readonly [string, string])[]): HeaderBag {
  const out: Record<string, string> = {}
  for (const [n, v] of headers) {
    const name = n.toLowerCase()
    const prev = out[name]
    out[name] = prev === undefined ? v : `${prev}${name === 'set-cookie' ? '\n' : ', '}${v}`
  }
  return out
}

/** Lower-cases every field name (values are kept as they are). */
export function lowerCaseHeaders(headers: HeaderBag): HeaderBag {
  const out: HeaderBag = {}
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue
    const name = k.toLowerCase()
    const prev = out[name]
    out[name] =
      prev === undefined
        ? v
        : ([] as (string | number)[]).concat(prev as string, v as string).map(String)
  }
  return out
}

/** 2^31: RFC 9111 §1.2.2's cap for a delta-seconds too large to represent. */
export const DELTA_MAX = 2147483648

/**
 * A directive's delta-seconds value (RFC 9111 §1.2.2): digits only;
 * overflow saturates at 2^31; anything else (a sign, a fraction, a missing
 * value) is `undefined`, i.e. invalid.
 */
export function deltaSeconds(value: string | true | undefined): number | undefined {
  if (typeof value !== 'string' || !/^\d+$/.test(value)) return undefined
  const n = Number(value)
  return Math.min(n, DELTA_MAX)
}

/** Formats directives back into a `Cache-Control` value (quoting values that are not tokens). */
export function formatCacheControl(directives: Directives): string {
  const parts: string[] = []
  for (const [name, v] of directives) {
    if (v === true) parts.push(name)
    else parts.push(`${name}=${isToken(v) ? v : `"${v.replace(/(["\\])/g, '\\$1')}"`}`)
  }
  return parts.join(', ')
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const DAYS = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)'
const LONG_DAYS = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)'
const MONTH = '(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)'
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})'
// Case-insensitive: RFC 9110 §5.6.7 makes day and month names case-sensitive for senders,
// but recipients parse dates leniently, and a cache that read `sun, 06 nov 1994 ...` as
// invalid would treat a valid Expires as already expired.
const IMF_FIXDATE = new RegExp(`^${DAYS}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`, 'i')
const RFC850 = new RegExp(`^${LONG_DAYS}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`, 'i')
const ASCTIME = new RegExp(`^${DAYS} ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`, 'i')

function utc(
  year: number,
  month: string,
  day: number,
  h: string,
  m: string,
  s: string,
): number | undefined {
  const hh = Number(h)
  const mm = Number(m)
  const ss = Number(s)
  if (day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60) return undefined
  // setUTCFullYear: Date.UTC would read years 0-99 as 1900-1999.
  const d = new Date(0)
  const monthIndex = MONTHS.findIndex((name) => name.toLowerCase() === month.toLowerCase())
  d.setUTCFullYear(year, monthIndex, day)
  d.setUTCHours(hh, mm, Math.min(ss, 59), 0)
  // Reject dates that roll over (Feb 30).
  return d.getUTCDate() === day ? d.getTime() : undefined
}

/**
 * Parses an HTTP-date (RFC 9110 §5.6.7): IMF-fixdate, or the obsolete
 * RFC 850 and asctime forms. Anything else is `undefined` (invalid).
 * Milliseconds since the epoch.
 */
export function parseHttpDate(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const v = value.trim()
  let m = IMF_FIXDATE.exec(v)
  if (m !== null)
    return utc(
      Number(m[3]),
      m[2] as string,
      Number(m[1]),
      m[4] as string,
      m[5] as string,
      m[6] as string,
    )
  m = RFC850.exec(v)
  if (m !== null) {
    // A two-digit year that would be more than 50 years in the future is in the past century.
    const [, day, month, yy, h, min, sec] = m as unknown as string[]
    const now = new Date()
    const limit = Date.UTC(
      now.getUTCFullYear() + 50,
      now.getUTCMonth(),
      now.getUTCDate(),
      now.getUTCHours(),
      now.getUTCMinutes(),
      now.getUTCSeconds(),
    )
    const t = utc(
      2000 + Number(yy),
      month as string,
      Number(day),
      h as string,
      min as string,
      sec as string,
    )
    return t !== undefined && t > limit
      ? utc(
          1900 + Number(yy),
          month as string,
          Number(day),
          h as string,
          min as string,
          sec as string,
        )
      : t
  }
  m = ASCTIME.exec(v)
  if (m !== null)
    return utc(
      Number(m[6]),
      m[1] as string,
      Number((m[2] as string).trim()),
      m[3] as string,
      m[4] as string,
      m[5] as string,
    )
  return undefined
}

/** Formats an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`). */
export function formatHttpDate(ms: number): string {
  return new Date(ms).toUTCString()
}

/** The `Age` field (RFC 9111 §5.1): a non-negative integer; anything else is ignored (`undefined`). */
export function parseAge(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const first = splitList(value)[0]
  return first === undefined ? undefined : deltaSeconds(first)
}

/** An entity tag (RFC 9110 §8.8.3). `tag` keeps its quotes. */
export interface EntityTag {
  weak: boolean
  tag: string
}

const ETAG = /^(W\/)?("[\x21\x23-\x7e\x80-\xff]*")$/

/** A strong ETag from the body: a quoted base64url SHA-1. */
export function bodyETag(body: Uint8Array): string {
  return `"${createHash('sha1').update(body).digest('base64url')}"`
}

/** Parses one entity tag; `undefined` if malformed. */
export function parseETag(value: string | undefined): EntityTag | undefined {
  if (value === undefined) return undefined
  const m = ETAG.exec(value.trim())
  return m === null ? undefined : { weak: m[1] !== undefined, tag: m[2] as string }
}

/**
 * Parses `If-Match`/`If-None-Match`: `'*'`, or the list of entity tags
 * (malformed members are dropped); `undefined` when absent or empty.
 */
export function parseETagList(value: string | undefined): EntityTag[] | '*' | undefined {
  if (value === undefined) return undefined
  if (value.trim() === '*') return '*'
  const tags = splitList(value)
    .map((v) => parseETag(v))
    .filter((t): t is EntityTag => t !== undefined)
  return tags.length === 0 ? undefined : tags
}

/** Strong comparison (RFC 9110 §8.8.3.2): both strong and identical. */
export function strongMatch(a: EntityTag, b: EntityTag): boolean {
  return !a.weak && !b.weak && a.tag === b.tag
}

/** Weak comparison: identical opaque tags, weak or not. */
export function weakMatch(a: EntityTag, b: EntityTag): boolean {
  return a.tag === b.tag
}
