/**
 * How a view's key is spelled, as Flask-Caching spells it: the request
 * target as received (never decoded; a rewrite keyed apart), the query
 * arguments normalised to pairs, and the text hashed for a `queryString`
 * key (Python's `str()` of the sorted pairs, byte for byte).
 */
import { InvalidKeyError } from '../errors.js'
import type { QueryArgs, QueryValue } from './types.js'

/**
 * The target a view is keyed on: the URL as received when the router routed
 * that URL (or that URL with a mount prefix stripped: an Express router's
 * `baseUrl`, koa-mount's `mountPath`), else both, as
 * `<received path>|routed=<routed path>?<routed query>`, so a rewrite
 * (`req.url = '/admin'`) never fills the entry of the URL it came from.
 *
 * @param received - path and query as received (`originalUrl`)
 * @param routed - path and query the router matched (`req.url`, `ctx.url`)
 * @param mount - the prefix a mount stripped from `routed`, when known
 */
export function routedTarget(received: string, routed: string, mount?: string): string {
  if (routed === received) return received
  if (mount) {
    if (received === mount + routed) return received
    // A request for the mount point itself: the router sees `/` (or `/?query`).
    if (routed[0] === '/' && (routed.length === 1 || routed[1] === '?')) {
      if (received === mount + routed.slice(1)) return received
    }
  }
  const q = routed.indexOf('?')
  const routedPath = q < 0 ? routed : routed.slice(0, q)
  const r = received.indexOf('?')
  const receivedPath = r < 0 ? received : received.slice(0, r)
  return `${receivedPath}|routed=${routedPath}${q < 0 ? '' : routed.slice(q)}`
}

/**
 * A path as a client puts it on the request line: characters that may not
 * appear there raw (non-ASCII, white space, controls, `"`, `<`, `>`, `\\`,
 * `^`, backquote, `{`, `|`, `}`) are percent-encoded as UTF-8; existing
 * escapes and everything else stay as they are. Keys are built from the path
 * as received (never decoded: a router tells `/docs%2Fintro` from
 * `/docs/intro`), so a path given outside a request (`deleteCached('/café')`)
 * is put in that form.
 */
export function requestTarget(path: string): string {
  return path.replace(NOT_ON_REQUEST_LINE, encodeChar)
}

const NOT_ON_REQUEST_LINE = /[^\x21-\x7e]|["<>\\^`{|}]/gu

function encodeChar(c: string): string {
  try {
    return encodeURIComponent(c)
  } catch {
    // A lone surrogate has no UTF-8 form: U+FFFD, as a client would send it.
    return '%EF%BF%BD'
  }
}

/** Normalises {@link QueryArgs} to `[name, value]` string pairs, in order. */
export function queryPairs(query: QueryArgs | undefined | null): [string, string][] {
  if (query === undefined || query === null) return []
  if (typeof query === 'string') {
    const s = query.startsWith('?') ? query.slice(1) : query
    return s === '' ? [] : [...new URLSearchParams(s)]
  }
  if (query instanceof URLSearchParams) return [...query]
  if (typeof (query as Iterable<unknown>)[Symbol.iterator] === 'function') {
    const out: [string, string][] = []
    for (const pair of query as Iterable<readonly [string, QueryValue]>) {
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw new TypeError('queryArgs: expected [name, value] pairs')
      }
      out.push([String(pair[0]), String(pair[1])])
    }
    return out
  }
  if (typeof query === 'object') {
    const out: [string, string][] = []
    for (const [name, value] of Object.entries(query)) {
      if (Array.isArray(value)) for (const v of value) out.push([name, String(v)])
      else out.push([name, String(value)])
    }
    return out
  }
  throw new TypeError(
    `queryArgs: expected a string, URLSearchParams, record or pairs, got ${typeof query}`,
  )
}

/** Python's `repr()` of a `str`, so query-string keys match Flask-Caching's byte for byte. */
function pyRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'"
  let out = quote
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number
    if (ch === '\\') out += '\\\\'
    else if (ch === quote) out += `\\${quote}`
    else if (ch === '\n') out += '\\n'
    else if (ch === '\r') out += '\\r'
    else if (ch === '\t') out += '\\t'
    else if (ch !== ' ' && /[\p{C}\p{Z}]/u.test(ch)) {
      if (cp <= 0xff) out += `\\x${cp.toString(16).padStart(2, '0')}`
      else if (cp <= 0xffff) out += `\\u${cp.toString(16).padStart(4, '0')}`
      else out += `\\U${cp.toString(16).padStart(8, '0')}`
    } else out += ch
  }
  return out + quote
}

/**
 * The text Flask-Caching hashes for a query-string key: Python's `str()` of
 * the sorted tuple of `(name, value)` tuples, e.g. `(('a', '1'), ('b', '2'))`.
 * Sorted by name only: a repeated parameter's values keep their order
 * (Flask-Caching sorts them too, merging `?a=2&a=1` with `?a=1&a=2`).
 */
export function queryKeyText(pairs: readonly (readonly [string, string])[]): string {
  // By name only (a stable sort): the values of a repeated parameter keep their
  // order, since `?a=2&a=1` and `?a=1&a=2` are different lists to the app.
  const sorted = [...pairs].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0))
  const items = sorted.map(([n, v]) => `(${pyRepr(n)}, ${pyRepr(v)})`)
  return items.length === 1 ? `(${items[0]},)` : `(${items.join(', ')})`
}

/** A key a `keyPrefix` or `makeCacheKey` callback returned, checked: a non-empty string. */
export function checkKey(key: unknown, what: string): string {
  if (typeof key !== 'string' || key === '') {
    // An input error (it has a code): it reaches the caller, as a bad key given to the facade does.
    throw new InvalidKeyError(`cached: ${what} must return a non-empty string, got ${typeof key}`)
  }
  return key
}
