/**
 * Targeted cache-control fields (RFC 9213), such as `CDN-Cache-Control`:
 * Structured Field Dictionaries (RFC 8941 §3.2) parsed strictly, since an
 * invalid targeted field is ignored as a whole (RFC 9213 §2.1) and the cache
 * falls back to `Cache-Control`. Pure functions that never throw.
 */
import { type Directives, type HeaderBag, headerValue } from './headers.js'

/** An RFC 8941 value, reduced to what the directive mapping needs. */
type Bare =
  | { type: 'integer' | 'decimal' | 'string' | 'token'; value: string }
  | { type: 'boolean'; value: boolean }
  | { type: 'binary' | 'inner-list' }

/** A parse position; every parser returns `undefined` on failure (RFC 8941 "fail parsing"). */
interface Input {
  s: string
  i: number
}

const LCALPHA = /[a-z]/
const KEY_CHAR = /[a-z0-9_\-.*]/
const ALPHA = /[A-Za-z]/
const DIGIT = /[0-9]/
// RFC 9110 tchar, plus ":" and "/" (RFC 8941 §3.3.4).
const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z:/]/
const BASE64 = /^[A-Za-z0-9+/=]*$/

function skipSP(input: Input): void {
  while (input.s[input.i] === ' ') input.i++
}

function skipOWS(input: Input): void {
  while (input.s[input.i] === ' ' || input.s[input.i] === '\t') input.i++
}

/** RFC 8941 §4.2.3.3: `key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )`. */
function parseKey(input: Input): string | undefined {
  const first = input.s[input.i]
  if (first === undefined || !(LCALPHA.test(first) || first === '*')) return undefined
  const start = input.i++
  while (input.i < input.s.length && KEY_CHAR.test(input.s[input.i] as string)) input.i++
  return input.s.slice(start, input.i)
}

/** RFC 8941 §4.2.4: an Integer (at most 15 digits) or a Decimal (12.3 digits at most). */
function parseNumber(input: Input): Bare | undefined {
  const start = input.i
  if (input.s[input.i] === '-') input.i++
  if (!DIGIT.test(input.s[input.i] ?? '')) return undefined
  let dot = -1
  while (input.i < input.s.length) {
    const c = input.s[input.i] as string
    if (DIGIT.test(c)) input.i++
    else if (c === '.' && dot < 0) {
      if (input.i - start > 12 + (input.s[start] === '-' ? 1 : 0)) return undefined
      dot = input.i++
    } else break
  }
  const text = input.s.slice(start, input.i)
  const digits = text.replace('-', '')
  if (dot < 0) {
    if (digits.length > 15) return undefined
    // The value's decimal form ("007" is 7); a negative stays negative, for deltaSeconds to reject.
    return { type: 'integer', value: String(Number(text)) }
  }
  const fraction = input.i - dot - 1
  if (fraction === 0 || fraction > 3 || digits.length > 16) return undefined
  return { type: 'decimal', value: text }
}

/** RFC 8941 §4.2.5: printable ASCII between quotes; only `\"` and `\\` escapes. */
function parseString(input: Input): Bare | undefined {
  input.i++
  let out = ''
  while (input.i < input.s.length) {
    const c = input.s[input.i++] as string
    if (c === '\\') {
      const next = input.s[input.i++]
      if (next !== '"' && next !== '\\') return undefined
      out += next
    } else if (c === '"') return { type: 'string', value: out }
    else {
      const code = c.charCodeAt(0)
      if (code < 0x20 || code > 0x7e) return undefined
      out += c
    }
  }
  return undefined
}

/** RFC 8941 §4.2.6: `( ALPHA / "*" ) *( tchar / ":" / "/" )`. */
function parseToken(input: Input): Bare {
  const start = input.i++
  while (input.i < input.s.length && TOKEN_CHAR.test(input.s[input.i] as string)) input.i++
  return { type: 'token', value: input.s.slice(start, input.i) }
}

/** RFC 8941 §4.2.7: `":" base64 ":"`; the bytes themselves are not needed. */
function parseBinary(input: Input): Bare | undefined {
  const end = input.s.indexOf(':', input.i + 1)
  if (end < 0 || !BASE64.test(input.s.slice(input.i + 1, end))) return undefined
  input.i = end + 1
  return { type: 'binary' }
}

/** RFC 8941 §4.2.3.1: the bare item's type is decided by its first character. */
function parseBareItem(input: Input): Bare | undefined {
  const c = input.s[input.i]
  if (c === undefined) return undefined
  if (c === '-' || DIGIT.test(c)) return parseNumber(input)
  if (c === '"') return parseString(input)
  if (c === '*' || ALPHA.test(c)) return parseToken(input)
  if (c === ':') return parseBinary(input)
  if (c === '?') {
    const b = input.s[input.i + 1]
    if (b !== '0' && b !== '1') return undefined
    input.i += 2
    return { type: 'boolean', value: b === '1' }
  }
  return undefined
}

/** RFC 8941 §4.2.3.2: `*( ";" *SP key [ "=" bare-item ] )`, parsed for validity and dropped. */
function skipParameters(input: Input): boolean {
  while (input.s[input.i] === ';') {
    input.i++
    skipSP(input)
    if (parseKey(input) === undefined) return false
    if (input.s[input.i] === '=') {
      input.i++
      if (parseBareItem(input) === undefined) return false
    }
  }
  return true
}

/** RFC 8941 §4.2.3: a bare item and its parameters. */
function parseItem(input: Input): Bare | undefined {
  const item = parseBareItem(input)
  return item !== undefined && skipParameters(input) ? item : undefined
}

/** RFC 8941 §4.2.1.2: `"(" *SP [ item *( 1*SP item ) *SP ] ")" parameters`. */
function parseInnerList(input: Input): Bare | undefined {
  input.i++
  while (input.i < input.s.length) {
    skipSP(input)
    if (input.s[input.i] === ')') {
      input.i++
      return skipParameters(input) ? { type: 'inner-list' } : undefined
    }
    if (parseItem(input) === undefined) return undefined
    const next = input.s[input.i]
    if (next !== ' ' && next !== ')') return undefined
  }
  return undefined
}

/** RFC 8941 §4.2.2: the members in order, a repeated key's last value winning. */
function parseDictionary(s: string): Map<string, Bare> | undefined {
  const input: Input = { s, i: 0 }
  const out = new Map<string, Bare>()
  while (input.i < s.length) {
    const key = parseKey(input)
    if (key === undefined) return undefined
    let member: Bare | undefined
    if (s[input.i] === '=') {
      input.i++
      member = s[input.i] === '(' ? parseInnerList(input) : parseItem(input)
    } else member = skipParameters(input) ? { type: 'boolean', value: true } : undefined
    if (member === undefined) return undefined
    out.set(key, member)
    skipOWS(input)
    if (input.i >= s.length) return out
    if (s[input.i] !== ',') return undefined
    input.i++
    skipOWS(input)
    // No trailing comma.
    if (input.i >= s.length) return undefined
  }
  return out
}

/**
 * Parses a targeted field (RFC 9213 §2.1) into the directives
 * `parseCacheControl` returns: `true` for a bare key or `?1`; an Integer's
 * decimal form; a Decimal's text (so `deltaSeconds` rejects it, as it does a
 * negative Integer); a String's content (`private="set-cookie"` is
 * `set-cookie`); a Token's text. A `?0` directive is absent, as is one with a
 * Byte Sequence or Inner List value; parameters are ignored; a repeated key's
 * last value wins (RFC 8941 §4.2.2). `undefined` when absent, empty or not a
 * valid Dictionary: RFC 9213 §2.1 says such a field is ignored.
 */
export function parseTargetedField(value: string | undefined): Directives | undefined {
  if (value === undefined) return undefined
  // RFC 8941 §4.2: leading and trailing SP are discarded.
  const v = value.replace(/^ +| +$/g, '')
  if (v === '') return undefined
  const dict = parseDictionary(v)
  if (dict === undefined) return undefined
  const out: Directives = new Map()
  for (const [key, member] of dict) {
    if (member.type === 'boolean') {
      if (member.value) out.set(key, true)
    } else if ('value' in member) out.set(key, member.value)
  }
  return out
}

/**
 * The directives of the first field in the target list `fields` (most
 * specific first, names case-insensitive) with a valid, non-empty value
 * (RFC 9213 §2.2); `undefined` when none has one, and the cache then uses
 * `Cache-Control` and `Expires`. Repeated field lines are combined with
 * `, ` first, as RFC 8941 §4.2 requires.
 */
export function targetedDirectives(
  headers: HeaderBag,
  fields: readonly string[],
): Directives | undefined {
  for (const name of fields) {
    const directives = parseTargetedField(headerValue(headers, name.toLowerCase()))
    if (directives !== undefined) return directives
  }
  return undefined
}
