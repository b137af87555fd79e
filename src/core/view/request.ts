/**
 * The requests of Node frameworks as the engine sees them: a
 * {@link RequestView} of a URL and Node-style headers (Express, Fastify,
 * Koa, NestJS on either), and the stand-in request that key callbacks get
 * outside of a request.
 */
import { type LocalSocket, repeatedHeaders, socketOrigin } from '../background.js'
import { queryPairs } from './keys.js'
import type { BackgroundRequest, QueryArgs, RequestView } from './types.js'

/**
 * The {@link RequestView} of a request given as its URL (path and query, as
 * on the request line) and Node-style headers (lower-case names, a list for
 * repeated ones), which is how Express, Fastify and Koa hand them over.
 */
export function requestViewOf<Req>(
  method: string,
  url: string,
  headers: Readonly<Record<string, string | string[] | undefined>>,
  raw: Req,
  source?: () => string | undefined,
  socket?: LocalSocket,
): RequestView<Req> {
  return new NodeRequestView(method, url, headers, raw, source, socket)
}

/** {@link requestViewOf}'s view: a class, so that a request costs one object and no closures. */
class NodeRequestView<Req> implements RequestView<Req> {
  readonly path: string
  readonly query: string
  readonly url: string

  constructor(
    readonly method: string,
    url: string,
    private readonly headers: Readonly<Record<string, string | string[] | undefined>>,
    readonly raw: Req,
    readonly source: (() => string | undefined) | undefined,
    private readonly socket: LocalSocket | undefined,
  ) {
    this.url = url
    const q = url.indexOf('?')
    this.path = q < 0 ? url : url.slice(0, q)
    this.query = q < 0 ? '' : url.slice(q + 1)
  }

  header(name: string): string | undefined {
    const v = this.headers[name]
    return Array.isArray(v) ? v.join(', ') : v
  }

  /** Fastify's `routeOptions.url`, Koa's `_matchedRoute` (@koa/router), Express's `req.route.path`. */
  route(): string | undefined {
    const r = this.raw as {
      routeOptions?: { url?: unknown }
      _matchedRoute?: unknown
      route?: { path?: unknown }
    } | null
    const pattern = r?.routeOptions?.url ?? r?._matchedRoute ?? r?.route?.path
    return typeof pattern === 'string' ? pattern : undefined
  }

  backgroundRequest(): BackgroundRequest | undefined {
    if (this.socket?.localPort === undefined) return undefined
    return {
      url: socketOrigin(this.socket) + this.url,
      headers: repeatedHeaders(Object.entries(this.headers)),
    }
  }
}

/**
 * The stand-in request that key callbacks (`keyPrefix`, `makeCacheKey`)
 * receive outside of a request (`makeCacheKey`, `deleteCached`): the fields a
 * Node framework's request has, `query` multi-valued as Express parses it.
 */
export function stubRequestFor(
  path: string,
  query: QueryArgs | undefined,
): {
  method: 'GET'
  url: string
  originalUrl: string
  path: string
  query: Record<string, string | string[]>
  params: Record<string, string>
  headers: Record<string, string>
} {
  const pairs = queryPairs(query)
  const qs = new URLSearchParams(pairs).toString()
  const url = qs ? `${path}?${qs}` : path
  const q: Record<string, string | string[]> = {}
  for (const [n, v] of pairs) {
    const prev = q[n]
    q[n] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v]
  }
  return { method: 'GET', url, originalUrl: url, path, query: q, params: {}, headers: {} }
}
