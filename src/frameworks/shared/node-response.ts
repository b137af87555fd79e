/**
 * Helpers for adapters whose request and response are `node:http`'s
 * (Express/Connect, Fastify, Koa). Shared code, not an adapter: adapters
 * import it and core, never each other. Types only from `node:http`, so a
 * Web-standard adapter may use {@link socketOrigin} too.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import { socketOrigin } from '../../core/background.js'
import type { HeaderPairs } from '../../core/headers.js'
import type { HeaderBag } from '../../http/headers.js'
import type { HttpRequest } from '../../http/shared-cache.js'

/** Response headers as ordered `[name, value]` pairs, one pair per value. */
export type { HeaderPairs }

/** Appends a header's value(s) to `out`, one pair per value; skips unset values. */
export function pushHeader(out: HeaderPairs, name: string, value: unknown): void {
  if (value === undefined || value === null) return
  if (Array.isArray(value)) for (const v of value) out.push([name, String(v)])
  else out.push([name, String(value)])
}

/** The headers set on `res` so far, names as they were set (`getRawHeaderNames`). */
export function currentHeaders(res: ServerResponse): HeaderPairs {
  const out: HeaderPairs = []
  const raw = (res as { getRawHeaderNames?: () => string[] }).getRawHeaderNames
  const names = typeof raw === 'function' ? raw.call(res) : res.getHeaderNames()
  for (const name of names) pushHeader(out, name, res.getHeader(name))
  return out
}

/**
 * Every header `res` sent, as it went on the wire: Node keeps the head it
 * wrote (`_header`), which includes what outer middleware set and what
 * listeners added while the head was being written (the on-headers pattern
 * that express-session uses for its cookie). Before the head went out, the
 * headers set so far.
 */
export function sentHeaders(res: ServerResponse): HeaderPairs {
  const head = (res as { _header?: unknown })._header
  if (typeof head !== 'string') return currentHeaders(res)
  const out: HeaderPairs = []
  const lines = head.split('\r\n')
  // The first line is the status line; the head ends with an empty line.
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string
    const colon = line.indexOf(':')
    if (colon > 0) out.push([line.slice(0, colon), line.slice(colon + 1).trim()])
  }
  return out
}

/**
 * Runs a deferred HTTP-cache store (`HttpCache.completeDeferred`) once `res`
 * has gone out, with every header it was sent with, so a header added as the
 * head was written can still keep it out of the cache. The cache's own calls
 * fail open; `onError` hears anything else.
 */
export function commitWhenSent(
  res: ServerResponse,
  done: { readonly pending: boolean; commit(sent: HeaderPairs): Promise<unknown> },
  onError: (error: unknown) => void = () => {},
): void {
  if (!done.pending) return
  res.once('finish', () => {
    done.commit(sentHeaders(res)).catch(onError)
  })
}

/** `currentHeaders` with the headers passed to `writeHead` applied, as Node applies them. */
export function headersWith(res: ServerResponse, extra: unknown): HeaderPairs {
  const out = currentHeaders(res)
  if (extra === undefined || extra === null) return out
  if (Array.isArray(extra)) {
    if (extra.length > 0 && Array.isArray(extra[0])) {
      for (const pair of extra as unknown[][]) pushHeader(out, String(pair[0]), pair[1])
    } else {
      for (let i = 0; i + 1 < extra.length; i += 2) pushHeader(out, String(extra[i]), extra[i + 1])
    }
    return out
  }
  if (typeof extra === 'object') {
    for (const [name, value] of Object.entries(extra as OutgoingHttpHeaders)) {
      const lower = name.toLowerCase()
      const kept = out.filter(([n]) => n.toLowerCase() !== lower)
      out.length = 0
      out.push(...kept)
      pushHeader(out, name, value)
    }
  }
  return out
}

/** A written chunk as a Buffer (strings in their encoding); `undefined` for anything else. */
export function toBuffer(chunk: unknown, encoding: unknown): Buffer | undefined {
  if (typeof chunk === 'string') {
    return Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
  }
  if (Buffer.isBuffer(chunk)) return chunk
  if (chunk instanceof Uint8Array)
    return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  return undefined
}

/** A written chunk as a Buffer: strings as UTF-8, anything else that is not bytes by its `String()`. */
export function chunkBuffer(chunk: unknown): Buffer {
  return toBuffer(chunk, undefined) ?? Buffer.from(String(chunk), 'utf8')
}

/** Header values by lower-case name, as {@link snapshotHeaders} takes them. */
export type HeaderSnapshot = Map<string, string[]>

/**
 * The headers set on `res` so far, by lower-case name: taken when a layer
 * starts, they are what outer middleware set for this request (CORS, a
 * request id), to keep on every response and never store.
 */
export function snapshotHeaders(res: ServerResponse): HeaderSnapshot {
  return snapshotOf(currentHeaders(res))
}

/** Header pairs by lower-case name, as {@link snapshotHeaders} takes them. */
export function snapshotOf(headers: HeaderPairs): HeaderSnapshot {
  const out: HeaderSnapshot = new Map()
  for (const [n, v] of headers) {
    const lower = n.toLowerCase()
    const values = out.get(lower)
    if (values) values.push(v)
    else out.set(lower, [v])
  }
  return out
}

/**
 * Splits `headers` into the layer's own and those outer middleware set
 * (`before`, from {@link snapshotHeaders}) and left as they were: a value the
 * layer changed or added is its own.
 */
export function splitHeaders(
  headers: HeaderPairs,
  before: HeaderSnapshot,
): { own: HeaderPairs; kept: HeaderPairs } {
  const own: HeaderPairs = []
  const kept: HeaderPairs = []
  for (const pair of headers) {
    if (before.get(pair[0].toLowerCase())?.includes(pair[1])) kept.push(pair)
    else own.push(pair)
  }
  return { own, kept }
}

/**
 * The request as the shared cache (`HttpCache`) sees it.
 *
 * @param url - the target as received; by default Express's `originalUrl`
 * (mounted routers rewrite `req.url`), else `req.url`
 */
export function requestOf(req: IncomingMessage, url?: string): HttpRequest {
  return {
    method: req.method ?? 'GET',
    url: url ?? (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/',
    host: req.headers.host ?? '',
    headers: { ...req.headers } as HeaderBag,
  }
}

export { socketOrigin }

/** The request's own server (`http://address:port`), for background refreshes. */
export function originOf(req: IncomingMessage): string {
  return socketOrigin(req.socket)
}

/** `response` with the headers outer middleware set (`kept`) under its own: it wins on a name both have. */
export function withOuterHeaders<R extends { headers: HeaderPairs }>(
  response: R,
  kept: HeaderPairs,
): R {
  if (kept.length === 0) return response
  const own = new Set(response.headers.map(([n]) => n.toLowerCase()))
  const outer = kept.filter(([n]) => !own.has(n.toLowerCase()))
  return { ...response, headers: [...outer, ...response.headers] }
}
