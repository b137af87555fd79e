/**
 * What a stored view is: the entries a backend gives back are data, not
 * trust (anyone who can write to the backend can plant one), so each is
 * checked once when read ({@link asStoredView}); the same checks serve the
 * HTTP cache's entries. And what is never stored with a response.
 */
import { HOP_BY_HOP_HEADERS } from '../background.js'
import { isToken } from '../headers.js'
import type { StoredView } from './types.js'
import { MAX_VARY_NAMES } from './vary.js'

/** Response headers never stored: the connection's, and `Date`. */
export const NOT_STORED: ReadonlySet<string> = new Set([...HOP_BY_HOP_HEADERS, 'date'])

/** The most header pairs a stored view may have; an entry with more is not one. */
const MAX_STORED_HEADERS = 1024

/** The most tags a stored view may carry. */
const MAX_STORED_TAGS = 1024

/** A header value that can go on the wire: no CR, LF or NUL (Node rejects them, and they would split a response). */
const SAFE_HEADER_VALUE = /^[^\r\n\0]*$/

/** Whether `value` is a dense list of at most `max` `[string, string]` pairs. */
function stringPairs(value: unknown, max: number): value is [string, string][] {
  if (!denseArray(value, max)) return false
  for (const t of value) {
    if (!denseArray(t, 2) || typeof t[0] !== 'string' || typeof t[1] !== 'string') return false
  }
  return true
}

/** Whether `value` is a dense array of at most `max` elements (a sparse or huge one is never walked). */
function denseArray(value: unknown, max: number): value is unknown[] {
  if (!Array.isArray(value) || value.length > max) return false
  for (let i = 0; i < value.length; i++) if (!(i in value)) return false
  return true
}

/**
 * Whether `headers` are `[name, value]` pairs that can be sent as they are:
 * names are tokens, values have no CR, LF or NUL, and there are at most
 * `max` of them. Shared by the view and HTTP caches, which both read
 * entries back from a backend that others may write to.
 */
export function safeHeaderPairs(
  headers: unknown,
  max = MAX_STORED_HEADERS,
): headers is [string, string][] {
  if (!stringPairs(headers, max)) return false
  for (const [name, value] of headers) {
    if (!isToken(name) || !SAFE_HEADER_VALUE.test(value)) return false
  }
  return true
}

/**
 * Whether a body of `length` bytes is what the `Content-Length` among
 * `headers` says (true without one). A response whose body is not (a source
 * that failed mid-way, an error page after a first chunk) failed, and a hit
 * replaying it would desynchronise the client's connection. Shared by the
 * view and HTTP caches.
 */
export function framedBy(headers: readonly (readonly [string, string])[], length: number): boolean {
  for (const [n, v] of headers) {
    if (n.toLowerCase() === 'content-length' && v.trim() !== String(length)) return false
  }
  return true
}

/** A backend value's body bytes as a Buffer: a Buffer, any `Uint8Array`, or JSON's `{ type: 'Buffer', data }`; `undefined` otherwise or above `max` bytes. */
export function storedBody(b: unknown, max: number): Buffer | undefined {
  let body: Buffer
  if (Buffer.isBuffer(b)) body = b
  else if (b instanceof Uint8Array) body = Buffer.from(b.buffer, b.byteOffset, b.byteLength)
  else if (
    typeof b === 'object' &&
    b !== null &&
    (b as { type?: unknown }).type === 'Buffer' &&
    denseArray((b as { data?: unknown }).data, max)
  ) {
    const data = (b as { data: unknown[] }).data
    if (!data.every((x) => Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 255)) {
      return undefined
    }
    body = Buffer.from(data as number[])
  } else return undefined
  return body.length > max ? undefined : body
}

/**
 * Reads a backend value as a {@link StoredView}, or `undefined` if it is not
 * one. Accepts a body that came back as a `Uint8Array` or as JSON's
 * `{ type: 'Buffer', data }`.
 *
 * A stored entry is data, not trust: anyone who can write to the backend
 * can plant one at a view's key. So everything a hit sends is checked here,
 * once per entry read: the status is an integer from 200 to 599 (what a view
 * may store), header names are tokens and values have no CR, LF or NUL, the
 * arrays are dense and bounded, the body is bytes within `maxBodySize`, and
 * the optional fields have their types. Anything else is not a view (the
 * engine treats it as a miss and deletes it).
 *
 * @param maxBody - the largest body accepted, bytes
 */
export function asStoredView(
  value: unknown,
  maxBody = Number.MAX_SAFE_INTEGER,
): StoredView | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const v = value as Partial<StoredView> & { body?: unknown }
  const status = v.status
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599) {
    return undefined
  }
  if (!safeHeaderPairs(v.headers)) return undefined
  const body = storedBody(v.body, maxBody)
  if (body === undefined) return undefined
  const out: StoredView = { status, headers: v.headers, body }
  if (v.timeout !== undefined) {
    if (typeof v.timeout !== 'number' || !(v.timeout >= 0)) return undefined
    out.timeout = v.timeout
  }
  if (v.fresh !== undefined) {
    if (typeof v.fresh !== 'number' || Number.isNaN(v.fresh)) return undefined
    out.fresh = v.fresh
  }
  if (v.tags !== undefined) {
    if (!stringPairs(v.tags, MAX_STORED_TAGS)) return undefined
    out.tags = v.tags as [string, string][]
  }
  if (v.vary !== undefined) {
    if (!stringPairs(v.vary, MAX_VARY_NAMES)) return undefined
    out.vary = v.vary
  }
  return out
}
