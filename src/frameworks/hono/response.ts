/**
 * Web-standard helpers shared by Hono's view cache (`cached`, index.ts) and
 * its HTTP caching middleware (http.ts): header pairs, the headers outer
 * middleware set, body chunks and the request target.
 */
import type { Context } from 'hono'
import { socketOrigin } from '../../core/background.js'
import type { HeaderPairs } from '../../core/headers.js'

/** Response headers as ordered `[name, value]` pairs, one pair per value. */
export type { HeaderPairs }

/** `[name, value]` pairs of `headers`, one pair per `Set-Cookie` (`getSetCookie`), names lower case. */
export function pairsOf(headers: Headers): HeaderPairs {
  const out: HeaderPairs = []
  for (const [name, value] of headers) if (name !== 'set-cookie') out.push([name, value])
  const cookies =
    typeof headers.getSetCookie === 'function'
      ? headers.getSetCookie()
      : headers.has('set-cookie')
        ? [headers.get('set-cookie') as string]
        : []
  for (const value of cookies) out.push(['set-cookie', value])
  return out
}

/**
 * The headers a response created now would carry: those outer middleware
 * set before this one ran (`c.header()`, or `c.res.headers` as `cors()`
 * does). Read through `c.newResponse(null)`, which leaves the Context
 * untouched.
 */
export function priorHeaders(c: Context): HeaderPairs {
  try {
    return pairsOf(c.newResponse(null).headers)
  } catch {
    return [] // a status set before us that a Response refuses: nothing to keep
  }
}

/** Header pairs as a set of `name\nvalue` keys, to find a pair in (see {@link pairKey}). */
export function pairKeys(pairs: HeaderPairs): Set<string> {
  return new Set(pairs.map(pairKey))
}

/** The key of one header pair in a {@link pairKeys} set. */
export function pairKey([name, value]: [string, string]): string {
  return `${name}\n${value}`
}

/** A body chunk as bytes (strings as UTF-8); `undefined` for anything else. */
export function toBytes(chunk: unknown): Uint8Array | undefined {
  if (chunk instanceof Uint8Array) return chunk
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8')
  if (ArrayBuffer.isView(chunk))
    return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk)
  return undefined
}

/** Where the target (path and query) of `url` starts and ends: after the origin, before the fragment. */
function targetOf(url: string): [start: number, end: number] {
  const scheme = url.indexOf('://')
  let start = scheme < 0 ? 0 : url.indexOf('/', scheme + 3)
  if (start < 0) start = url.length
  const end = url.indexOf('#', start)
  return [start, end < 0 ? url.length : end]
}

/** The target as received: path and query of `c.req.url`, without its fragment. */
export function pathAndQuery(url: string): string {
  const [start, end] = targetOf(url)
  return url.slice(start, end) || '/'
}

/** Splits `c.req.url` into the path and the query string, both as received (escapes kept, as every adapter keys them). */
export function splitUrl(url: string): [path: string, query: string] {
  const [start, end] = targetOf(url)
  const q = url.indexOf('?', start)
  if (q < 0 || q > end) return [url.slice(start, end) || '/', '']
  return [url.slice(start, q) || '/', url.slice(q + 1, end)]
}

interface NodeBindings {
  incoming?: { socket?: { localAddress?: string; localPort?: number } }
}

/**
 * The request's own server, for background refreshes: the local address and
 * port of its socket on @hono/node-server (`c.env.incoming`), else the
 * origin of `c.req.url`.
 */
export function originOf(c: Context): string {
  const socket = (c.env as NodeBindings | undefined)?.incoming?.socket
  if (socket?.localPort !== undefined) return socketOrigin(socket)
  return new URL(c.req.url).origin
}

/** Hands a promise to the runtime's `waitUntil` where there is one (Workers, Deno Deploy), so the store is not cut off. */
export function keepAlive(c: Context, work: Promise<unknown>): void {
  let ctx: { waitUntil?: (p: Promise<unknown>) => void } | undefined
  try {
    ctx = c.executionCtx
  } catch {
    return // no ExecutionContext (Node, Bun): the process outlives the response anyway
  }
  ctx?.waitUntil?.(work)
}
