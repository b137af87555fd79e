/**
 * Reading the response the rest of a Koa chain left on `ctx`, as Koa's own
 * `respond()` will send it: shared by the view cache (`cached`, index.ts)
 * and the HTTP caching middleware (http.ts).
 */
import { Readable, Stream } from 'node:stream'
import { bodilessStatus } from '../../core/headers.js'
import type { HeaderPairs } from '../shared/node-response.js'
import type { KoaContext } from './context.js'

// Statuses without a body are `bodilessStatus`'s. Koa's own list (`statuses.empty`: 204, 205,
// 304) leaves out 1xx, but Node never writes a body for a 1xx: what goes out is the same.

/** `headers` without the fields named (lower case). */
export function without(headers: HeaderPairs, ...names: string[]): HeaderPairs {
  return headers.filter(([n]) => !names.includes(n.toLowerCase()))
}

/** Koa's `isStream` for readables that are not `stream.Readable` instances. */
function isLegacyStream(s: object): boolean {
  const r = s as Record<string, unknown>
  return (
    r.readable === true &&
    typeof r.read === 'function' &&
    typeof r.readableObjectMode === 'boolean' &&
    typeof r.destroy === 'function' &&
    typeof r.destroyed === 'boolean'
  )
}

/**
 * A Node readable for the stream-like bodies Koa accepts (converted as Koa's
 * own `respond()` converts them), `null` for a stream that cannot be read
 * through (not a readable), else `undefined` (not a stream).
 */
function streamOf(body: object): Readable | null | undefined {
  if (body instanceof Readable) return body
  if (typeof (body as { pipe?: unknown }).pipe === 'function' && isLegacyStream(body)) {
    return body as Readable
  }
  if (body instanceof Stream) return null
  if (typeof Blob !== 'undefined' && body instanceof Blob) return Readable.from(body.stream())
  if (typeof ReadableStream !== 'undefined' && body instanceof ReadableStream) {
    return Readable.from(body)
  }
  if (typeof Response !== 'undefined' && body instanceof Response) {
    return Readable.from(body.body ?? '')
  }
  return undefined
}

/**
 * The body as a Node readable when it is a stream Koa will pipe; `null` for
 * a stream that cannot be read through; `undefined` when it is not a stream
 * or `status` is sent without a body.
 */
export function streamBody(ctx: KoaContext, status: number): Readable | null | undefined {
  const body = ctx.body
  if (bodilessStatus(status) || typeof body !== 'object' || body === null) return undefined
  return Buffer.isBuffer(body) ? undefined : streamOf(body)
}

/**
 * Makes `stream` the body. Assigning a new stream makes Koa drop
 * Content-Length: the one the app set is kept.
 */
export function setStreamBody(ctx: KoaContext, stream: Readable): void {
  const length = ctx.res.getHeader('Content-Length')
  ctx.body = stream
  if (length !== undefined && !ctx.res.hasHeader('Content-Length')) {
    ctx.res.setHeader('Content-Length', length)
  }
}

/**
 * The bytes Koa's `respond()` sends for a non-stream body (`status` one of
 * `bodilessStatus`: none), with the header changes it makes on the way.
 * `body` is `undefined` when it is larger than `max` bytes; the result is
 * `undefined` for a body `JSON.stringify` rejects (Koa answers that with an
 * error).
 *
 * @param headers - the response's headers, before `respond()` changes them
 * @param max - the largest body returned, in bytes (no limit by default)
 */
export function bufferedBody(
  ctx: KoaContext,
  status: number,
  headers: HeaderPairs,
  max = Number.POSITIVE_INFINITY,
): { body: Buffer | undefined; headers: HeaderPairs } | undefined {
  if (bodilessStatus(status)) {
    // respond() sets `ctx.body = null`, which strips these.
    return {
      body: Buffer.alloc(0),
      headers: without(headers, 'content-type', 'content-length', 'transfer-encoding'),
    }
  }
  const body = ctx.body
  if (body === null || body === undefined) {
    if ((ctx as { response?: { _explicitNullBody?: boolean } }).response?._explicitNullBody) {
      return {
        body: Buffer.alloc(0),
        headers: [
          ...without(headers, 'content-type', 'transfer-encoding', 'content-length'),
          ['Content-Length', '0'],
        ],
      }
    }
    // respond() answers a missing body with the status message as text.
    const text = ctx.req.httpVersionMajor >= 2 ? String(status) : ctx.message || String(status)
    const bytes = Buffer.from(text, 'utf8')
    return {
      body: bytes,
      headers: [
        ...without(headers, 'content-type', 'content-length'),
        ['Content-Type', 'text/plain; charset=utf-8'],
        ['Content-Length', String(bytes.length)],
      ],
    }
  }
  if (Buffer.isBuffer(body)) {
    return { body: body.length > max ? undefined : Buffer.from(body), headers }
  }
  if (typeof body === 'string') {
    return { body: Buffer.byteLength(body) > max ? undefined : Buffer.from(body, 'utf8'), headers }
  }
  let json: string | undefined
  try {
    json = JSON.stringify(body)
  } catch {
    return undefined
  }
  // respond() sends JSON with its length.
  const bytes = Buffer.from(json ?? '', 'utf8')
  return {
    body: bytes.length > max ? undefined : bytes,
    headers: [...without(headers, 'content-length'), ['Content-Length', String(bytes.length)]],
  }
}
