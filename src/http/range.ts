/**
 * Byte-range requests (RFC 9110 §14) answered from a complete stored
 * representation, as pure functions that never throw on malformed input:
 * a Range this cache does not serve (invalid, another unit, several ranges)
 * is ignored and the full 200 is sent, which RFC 9110 §14.2 allows.
 */
import { parseETag, parseHttpDate, strongMatch } from './headers.js'

/** One byte range, `end` inclusive (RFC 9110 §14.1.2's `first-pos`/`last-pos`). */
export type ByteRange = { start: number; end: number }

/** An `int-range` (`first-pos "-" [ last-pos ]`) or a `suffix-range` (`"-" suffix-length`). */
const INT_RANGE = /^(\d+)-(\d*)$/
const SUFFIX_RANGE = /^-(\d+)$/

/**
 * A digit string's value, with leading zeros ignored; `Infinity` when it has
 * more than 15 significant digits (beyond any stored body, and beyond where
 * `Number` is exact for every value), so no BigInt is needed.
 */
function position(digits: string): number {
  const significant = digits.replace(/^0+(?=\d)/, '')
  return significant.length > 15 ? Number.POSITIVE_INFINITY : Number(significant)
}

/** Compares two digit strings by value, exactly at any length (leading zeros ignored). */
function compareDigits(a: string, b: string): number {
  const x = a.replace(/^0+(?=\d)/, '')
  const y = b.replace(/^0+(?=\d)/, '')
  if (x.length !== y.length) return x.length - y.length
  return x < y ? -1 : x > y ? 1 : 0
}

/**
 * Parses `Range` (RFC 9110 §14.2) against a representation of `length`
 * bytes. `undefined` means "ignore it and send the full 200": absent, a unit
 * other than `bytes` (case-insensitive, §14.1), invalid syntax (§14.1.1), or
 * more than one range (§14.2 lets a server ignore Range; several ranges are
 * not served). `'unsatisfiable'` means 416 (§15.5.17). Otherwise the range,
 * with `last-pos` clamped to the last byte (§14.1.2). Empty list elements
 * are skipped (RFC 9110 §5.6.1.2).
 */
export function parseRange(
  value: string | undefined,
  length: number,
): ByteRange | 'unsatisfiable' | undefined {
  if (value === undefined || !Number.isSafeInteger(length) || length < 0) return undefined
  const v = value.trim()
  const eq = v.indexOf('=')
  if (eq < 0 || v.slice(0, eq).toLowerCase() !== 'bytes') return undefined
  // §5.6.1.2: `OWS "," OWS` between members; empty elements are ignored.
  const specs = v
    .slice(eq + 1)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
  const spec = specs[0]
  if (spec === undefined || specs.length > 1) return undefined
  const int = INT_RANGE.exec(spec)
  if (int !== null) {
    const first = int[1] as string
    const last = int[2] as string
    // §14.1.1: a last-pos less than first-pos makes the range-spec invalid.
    if (last !== '' && compareDigits(last, first) < 0) return undefined
    const start = position(first)
    // §14.1.2: satisfiable only if first-pos is less than the current length.
    if (start >= length) return 'unsatisfiable'
    const end = last === '' ? length - 1 : Math.min(position(last), length - 1)
    return { start, end }
  }
  const suffix = SUFFIX_RANGE.exec(spec)
  if (suffix !== null) {
    const n = position(suffix[1] as string)
    // §14.1.2: a suffix-range needs a non-zero suffix-length and a non-empty representation.
    if (n === 0 || length === 0) return 'unsatisfiable'
    return { start: Math.max(0, length - n), end: length - 1 }
  }
  return undefined
}

/** The current representation's validators, for `If-Range`. */
export interface RangeValidators {
  etag?: string
  /** Milliseconds since the epoch; compared in whole seconds. */
  lastModified?: number
  /**
   * Whether `lastModified` is a strong validator (RFC 9110 §8.8.2.2: e.g.
   * `Date` at least one second after it). Without it, a date never matches.
   */
  lastModifiedIsStrong?: boolean
}

/**
 * Evaluates `If-Range` (RFC 9110 §13.1.5): `true` when the range may be
 * served (absent, or the condition holds), `false` when the full 200 must be
 * sent. An entity tag matches only by strong comparison (a weak tag never
 * does); an HTTP-date only if it equals `Last-Modified` exactly and that is
 * strong. A malformed value is false.
 */
export function ifRangeAllows(value: string | undefined, validators: RangeValidators): boolean {
  if (value === undefined) return true
  const v = value.trim()
  if (v.startsWith('"') || v.startsWith('W/')) {
    const tag = parseETag(v)
    const current = parseETag(validators.etag)
    return tag !== undefined && current !== undefined && strongMatch(tag, current)
  }
  const date = parseHttpDate(v)
  const lm = validators.lastModified
  if (date === undefined || lm === undefined || validators.lastModifiedIsStrong !== true) {
    return false
  }
  // Whole seconds: an HTTP-date has no finer precision.
  return Math.floor(lm / 1000) * 1000 === date
}

/** Fields a 416 keeps from the stored response (the rest describe a body it does not carry). */
const UNSATISFIABLE_KEEP: ReadonlySet<string> = new Set([
  'date',
  'cache-control',
  'etag',
  'last-modified',
  'vary',
])

/** Framing fields replaced in a 206 (RFC 9110 §15.3.7). */
const PARTIAL_DROP: ReadonlySet<string> = new Set([
  'content-length',
  'content-range',
  'transfer-encoding',
])

/**
 * The response to a range request from the complete stored `body`:
 * 206 with the stored fields, `Content-Range: bytes start-end/length` and the
 * slice's `Content-Length` (RFC 9110 §14.4, §15.3.7); or 416 with an
 * unsatisfied-range `Content-Range` (`bytes`, then `*`, `/` and the length),
 * `Content-Length: 0`, an empty body, and only Date, Cache-Control, ETag,
 * Last-Modified and Vary kept (§15.5.17). A range that does not fit `body`
 * gets the 416.
 */
export function rangeAnswer(
  range: ByteRange | 'unsatisfiable',
  body: Buffer,
  headers: [string, string][],
): { status: 206 | 416; headers: [string, string][]; body: Buffer } {
  const length = body.length
  const fits =
    range !== 'unsatisfiable' &&
    Number.isSafeInteger(range.start) &&
    Number.isSafeInteger(range.end) &&
    range.start >= 0 &&
    range.start <= range.end &&
    range.end < length
  if (range === 'unsatisfiable' || !fits) {
    const kept = headers.filter(([n]) => UNSATISFIABLE_KEEP.has(n.toLowerCase()))
    kept.push(['Content-Range', `bytes */${length}`], ['Content-Length', '0'])
    return { status: 416, headers: kept, body: Buffer.alloc(0) }
  }
  const kept = headers.filter(([n]) => !PARTIAL_DROP.has(n.toLowerCase()))
  kept.push(
    ['Content-Range', `bytes ${range.start}-${range.end}/${length}`],
    ['Content-Length', String(range.end - range.start + 1)],
  )
  return { status: 206, headers: kept, body: body.subarray(range.start, range.end + 1) }
}
