/**
 * HTTP caching for Express/Connect: the header helpers (`cacheFor`,
 * `cacheControl`, `noStore`, `vary`), validation (automatic ETag, 304 and
 * 412), preconditions for unsafe methods, and the RFC 9111 shared response
 * cache (`httpCache`), all on the framework-neutral core of `cachette/http`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { groupHeaders } from '../../core/view.js'
import {
  type CacheControlDirectives,
  cacheControlModifier,
  cacheForModifier,
  type Duration,
  type HeaderModifier,
  noStoreModifier,
  varyModifier,
} from '../../http/directives.js'
import type { HeaderBag } from '../../http/headers.js'
import type { Validators } from '../../http/semantics.js'
import { HttpCache, type HttpCacheOptions, type HttpRequest } from '../../http/shared-cache.js'
import { bodyETag, checkPreconditions, validateResponse } from '../../http/validate.js'
import { applyModifiers, HEADER_MODIFIERS, holdResponse } from '../shared/intercept.js'
import type { HeaderPairs } from '../shared/node-response.js'
import { headersWith } from '../shared/node-response.js'

/** An Express/Connect middleware. */
export type HttpMiddleware = (
  req: IncomingMessage,
  res: ServerResponse,
  next: (err?: unknown) => void,
) => void

/**
 * Queues a header modifier for this response, applied when its headers are
 * written, in the order queued: the innermost (last) one wins. A response
 * held back by `validation` or `httpCache` applies them when it is captured.
 */
function addModifier(res: ServerResponse, modifier: HeaderModifier): void {
  const r = res as ServerResponse & { [HEADER_MODIFIERS]?: HeaderModifier[] }
  let list = r[HEADER_MODIFIERS]
  if (list === undefined) {
    list = []
    r[HEADER_MODIFIERS] = list
    const writeHead = res.writeHead
    res.writeHead = function modifiedWriteHead(this: ServerResponse, ...args: unknown[]) {
      const headers: HeaderPairs = headersWith(
        this,
        typeof args[1] === 'string' ? args[2] : args[1],
      )
      applyModifiers(this, headers)
      for (const name of this.getHeaderNames()) this.removeHeader(name)
      for (const [n, v] of groupHeaders(headers)) this.setHeader(n, v)
      return (writeHead as (...a: unknown[]) => ServerResponse).call(this, args[0])
    } as ServerResponse['writeHead']
  }
  list.push(modifier)
}

function modifierMiddleware(modifier: HeaderModifier): HttpMiddleware {
  return (_req, res, next) => {
    addModifier(res, modifier)
    next()
  }
}

/** `Cache-Control: max-age` and `Expires` for `duration` (`{ minutes: 5 }`). */
export function cacheFor(duration: Duration): HttpMiddleware {
  return modifierMiddleware(cacheForModifier(duration))
}

/** Sets Cache-Control directives (`{ public: true, sMaxage: 600 }`); unknown names throw at set-up. */
export function cacheControl(directives: CacheControlDirectives): HttpMiddleware {
  return modifierMiddleware(cacheControlModifier(directives))
}

/** `Cache-Control: no-store`. */
export function noStore(): HttpMiddleware {
  return modifierMiddleware(noStoreModifier())
}

/** Adds header names to `Vary`. */
export function vary(...fields: string[]): HttpMiddleware {
  return modifierMiddleware(varyModifier(...fields))
}

/** Options of {@link validation}. */
export interface ValidationOptions {
  /** Add a strong ETag (hash of the body) to GET/HEAD 200 responses without one. @default true */
  etag?: boolean
  /** The largest body held back to hash, bytes; larger ones stream through untouched. @default 5 MiB */
  maxBodyBytes?: number
}

/**
 * Validation for GET and HEAD: adds an ETag to 200 responses that have none,
 * then answers `If-None-Match` (weak comparison) and `If-Modified-Since`
 * with a 304 carrying the headers RFC 9110 §15.4.5 requires, and `If-Match`
 * / `If-Unmodified-Since` with 412.
 */
export function validation(options: ValidationOptions = {}): HttpMiddleware {
  const addETag = options.etag ?? true
  const max = options.maxBodyBytes ?? 5 << 20
  return (req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      next()
      return
    }
    const request = { method: req.method as string, headers: req.headers as HeaderBag }
    holdResponse(res, max, async (held) => validateResponse(request, held, { etag: addETag }))
    next()
  }
}

/**
 * Preconditions for unsafe methods (RFC 9110 §13.2): `validatorsOf(req)`
 * gives the current representation's ETag and/or Last-Modified; a failed
 * `If-Match` or `If-Unmodified-Since` (or a matching `If-None-Match`) is
 * answered 412 before the handler runs, so a lost update never happens.
 */
export function preconditions(
  validatorsOf: (req: IncomingMessage) => Validators | Promise<Validators>,
): HttpMiddleware {
  return (req, res, next) => {
    Promise.resolve(validatorsOf(req)).then(
      (validators) => {
        const answer = checkPreconditions(
          { method: req.method as string, headers: req.headers as HeaderBag },
          validators,
        )
        if (answer === undefined) next()
        else sendResponse(res, answer)
      },
      (error: unknown) => next(error),
    )
  }
}

function requestOf(req: IncomingMessage): HttpRequest {
  const url = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/'
  return {
    method: req.method ?? 'GET',
    url,
    host: req.headers.host ?? '',
    headers: { ...req.headers } as HeaderBag,
  }
}

function originOf(req: IncomingMessage): string {
  const socket = req.socket
  const address = (socket.localAddress ?? '127.0.0.1').replace(/^::ffff:/, '')
  const host = address.includes(':') ? `[${address}]` : address
  return `http://${host}:${socket.localPort}`
}

/**
 * The RFC 9111 shared response cache in front of the routes after it (see
 * `HttpCache`): stored responses are answered without running the route,
 * with `Age` and the hit indicator; misses run the route and store what the
 * RFC allows; stale entries are revalidated with conditional requests;
 * `stale-while-revalidate` answers at once and refreshes in the background;
 * unsafe methods invalidate the URL and its Location/Content-Location.
 * Mount it before the routes (and after anything that must see every request).
 */
export function httpCache(
  engineOrOptions: HttpCache | HttpCacheOptions,
): HttpMiddleware & { engine: HttpCache } {
  const engine =
    engineOrOptions instanceof HttpCache ? engineOrOptions : new HttpCache(engineOrOptions)
  const middleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => {
    const request = requestOf(req)
    engine.lookup(request).then(
      (lookup) => {
        if (lookup.kind === 'hit' || lookup.kind === 'gateway-timeout') {
          sendResponse(res, lookup.response)
          if (lookup.kind === 'hit' && lookup.refresh)
            engine.refreshInBackground(request, originOf(req))
          return
        }
        if (lookup.kind === 'pass' && request.method !== 'GET' && request.method !== 'HEAD') {
          // Unsafe methods: pass through, then invalidate on success.
          res.once('finish', () => {
            // The cache's own calls fail open; this catch is for anything else (never an unhandled rejection).
            engine
              .complete(
                request,
                lookup,
                { status: res.statusCode, headers: pairsOf(res), body: undefined },
                Date.now(),
              )
              .catch(() => {})
          })
          next()
          return
        }
        if (lookup.kind === 'pass') {
          next()
          return
        }
        // Miss or revalidation: ask the origin for a full (or conditional) response.
        for (const name of [
          'if-none-match',
          'if-modified-since',
          'if-match',
          'if-unmodified-since',
          'if-range',
        ]) {
          delete req.headers[name]
        }
        if (lookup.kind === 'revalidate') Object.assign(req.headers, lookup.headers)
        const requestTime = engine.now()
        holdResponse(res, engine.maxBodyBytes, async (held) => {
          const final = await engine.complete(request, lookup, held, requestTime, engine.now())
          return final ?? held
        })
        next()
      },
      (error: unknown) => next(error),
    )
  }
  return Object.assign(middleware, { engine })
}

function pairsOf(res: ServerResponse): HeaderPairs {
  const out: HeaderPairs = []
  for (const name of res.getHeaderNames()) {
    const v = res.getHeader(name)
    if (Array.isArray(v)) for (const x of v) out.push([name, String(x)])
    else if (v !== undefined) out.push([name, String(v)])
  }
  return out
}

function sendResponse(
  res: ServerResponse,
  response: { status: number; headers: HeaderPairs; body: Buffer | undefined },
): void {
  for (const name of res.getHeaderNames()) res.removeHeader(name)
  const grouped = new Map<string, string[]>()
  for (const [n, v] of response.headers) grouped.set(n, [...(grouped.get(n) ?? []), v])
  for (const [n, v] of grouped) res.setHeader(n, v.length === 1 ? (v[0] as string) : v)
  res.statusCode = response.status
  res.end(response.body)
}

export { bodyETag }
