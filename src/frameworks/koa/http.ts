/**
 * HTTP caching for Koa: the header helpers (`cacheFor`, `cacheControl`,
 * `noStore`, `vary`), validation (automatic ETag, 304 and 412),
 * preconditions for unsafe methods, and the RFC 9111 shared response cache
 * (`httpCache`), all on the framework-neutral core of `cachette/http`.
 *
 * Koa-level, as `cached()` is: each middleware awaits `next()`, then reads
 * the response the rest of the chain left on `ctx` (status, headers, body:
 * a string, Buffer, JSON value or stream, turned into the bytes Koa's
 * `respond()` would send) and leaves its answer on `ctx` (status, headers,
 * a Buffer body), so middleware further out still sees and can change it.
 * It never imports `koa`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Readable, Stream } from 'node:stream'
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
import {
  HttpCache,
  type HttpCacheOptions,
  type HttpRequest,
  type HttpResponse,
} from '../../http/shared-cache.js'
import { bodyETag, checkPreconditions, validateResponse } from '../../http/validate.js'
import { HEADER_MODIFIERS } from '../shared/intercept.js'
import { currentHeaders, type HeaderPairs, headersWith, toBuffer } from '../shared/node-response.js'
import type { KoaContext, KoaNext } from './index.js'

/** A Koa middleware, as `app.use()` and a router's route take it. */
export type HttpMiddleware = (ctx: KoaContext, next: KoaNext) => Promise<void>

/** Statuses Koa sends without a body (its `statuses.empty`). */
const EMPTY_STATUS: ReadonlySet<number> = new Set([204, 205, 304])

/** The request headers a miss or a revalidation must not forward to the route. */
const CONDITIONAL_HEADERS = [
  'if-none-match',
  'if-modified-since',
  'if-match',
  'if-unmodified-since',
  'if-range',
] as const

type ModifiedResponse = ServerResponse & { [HEADER_MODIFIERS]?: HeaderModifier[] }

// ---------------------------------------------------------------- header helpers

/** Replaces every header of `res` with `headers`. */
function replaceHeaders(res: ServerResponse, headers: HeaderPairs): void {
  for (const name of res.getHeaderNames()) res.removeHeader(name)
  for (const [name, value] of groupHeaders(headers)) res.setHeader(name, value)
}

/** Applies the modifiers still queued on `res` to `headers`, in queue order, and dequeues them. */
function runQueued(res: ServerResponse, headers: HeaderPairs): boolean {
  const list = (res as ModifiedResponse)[HEADER_MODIFIERS]
  if (list === undefined || list.length === 0) return false
  const now = Date.now()
  for (const modifier of list.splice(0)) modifier(headers, now)
  return true
}

/** Applies the queued modifiers to the headers set on `res` so far. */
function applyQueued(res: ServerResponse): void {
  const headers = currentHeaders(res)
  if (runQueued(res, headers)) replaceHeaders(res, headers)
}

/**
 * Queues a header modifier for this response. The queue is applied, in
 * order (outermost first, so the innermost wins), when the response is
 * captured (`validation`, `httpCache`) or after the innermost helper's
 * `next()` returns; a response the app writes to `ctx.res` itself gets them
 * when its headers are written.
 */
function queueModifier(res: ServerResponse, modifier: HeaderModifier): void {
  const r = res as ModifiedResponse
  let list = r[HEADER_MODIFIERS]
  if (list === undefined) {
    list = []
    r[HEADER_MODIFIERS] = list
    const writeHead = res.writeHead
    res.writeHead = function modifiedWriteHead(this: ServerResponse, ...args: unknown[]) {
      const call = writeHead as (...a: unknown[]) => ServerResponse
      const pending = (this as ModifiedResponse)[HEADER_MODIFIERS]
      if (pending === undefined || pending.length === 0) return call.apply(this, args)
      const message = typeof args[1] === 'string' ? args[1] : undefined
      const headers = headersWith(this, message === undefined ? args[1] : args[2])
      runQueued(this, headers)
      replaceHeaders(this, headers)
      return message === undefined ? call.call(this, args[0]) : call.call(this, args[0], message)
    } as ServerResponse['writeHead']
  }
  list.push(modifier)
}

function modifierMiddleware(modifier: HeaderModifier): HttpMiddleware {
  return async (ctx, next) => {
    queueModifier(ctx.res, modifier)
    try {
      await next()
    } catch (error) {
      // Koa answers an error with its own headers: the route's caching headers do not apply.
      ;(ctx.res as ModifiedResponse)[HEADER_MODIFIERS]?.splice(0)
      throw error
    }
    if (ctx.respond !== false && !ctx.res.headersSent) applyQueued(ctx.res)
  }
}

/**
 * `Cache-Control: max-age` and `Expires` for `duration` (`{ minutes: 5 }`),
 * flask-webcache's `cache_for`.
 *
 * @throws {ConfigError} at set-up, for an unknown unit or a negative value
 * @example
 * router.get('/articles', cacheFor({ minutes: 5 }), listArticles)
 */
export function cacheFor(duration: Duration): HttpMiddleware {
  return modifierMiddleware(cacheForModifier(duration))
}

/**
 * Sets Cache-Control directives (`{ public: true, sMaxage: 600 }`; names in
 * camel, snake or kebab case; `false` removes one), flask-webcache's
 * `cache_control`.
 *
 * @throws {ConfigError} at set-up, for an unknown directive or a bad value
 */
export function cacheControl(directives: CacheControlDirectives): HttpMiddleware {
  return modifierMiddleware(cacheControlModifier(directives))
}

/** `Cache-Control: no-store` (and no `Expires`), replacing every other directive. */
export function noStore(): HttpMiddleware {
  return modifierMiddleware(noStoreModifier())
}

/**
 * Adds header names to `Vary` (once each, case-insensitively).
 *
 * @throws {ConfigError} at set-up, for a name that is not a header field name
 */
export function vary(...fields: string[]): HttpMiddleware {
  return modifierMiddleware(varyModifier(...fields))
}

// ---------------------------------------------------------------- capture

/** The headers set on `res`, by lower-case name: what outer middleware set before a layer ran. */
function snapshot(res: ServerResponse): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const [n, v] of currentHeaders(res)) {
    const lower = n.toLowerCase()
    const values = out.get(lower)
    if (values) values.push(v)
    else out.set(lower, [v])
  }
  return out
}

function without(headers: HeaderPairs, ...names: string[]): HeaderPairs {
  return headers.filter(([n]) => !names.includes(n.toLowerCase()))
}

function hasHeader(headers: HeaderPairs, name: string): boolean {
  return headers.some(([n]) => n.toLowerCase() === name)
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
 * (not a readable), else `undefined` (not a stream).
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

function chunkBuffer(chunk: unknown): Buffer {
  return toBuffer(chunk, undefined) ?? Buffer.from(String(chunk), 'utf8')
}

/** Yields `head`, then the rest of `it`; closes `it` when the consumer stops early. */
async function* resumed(head: Buffer[], it: AsyncIterator<unknown>): AsyncGenerator<Buffer> {
  let done = false
  try {
    yield* head
    for (;;) {
      const r = await it.next()
      if (r.done) {
        done = true
        return
      }
      yield chunkBuffer(r.value)
    }
  } finally {
    if (!done) await it.return?.()
  }
}

/**
 * Reads `source` to its end, up to `max` bytes. Past `max`, returns a stream
 * of what was read followed by the rest, to send instead. A stream error
 * rejects (Koa would answer it with a 500 too).
 */
async function collect(
  source: Readable,
  max: number,
): Promise<{ body: Buffer } | { rest: Readable }> {
  const it = source[Symbol.asyncIterator]() as AsyncIterator<unknown>
  const chunks: Buffer[] = []
  let size = 0
  for (;;) {
    const r = await it.next()
    if (r.done) return { body: Buffer.concat(chunks, size) }
    const chunk = chunkBuffer(r.value)
    chunks.push(chunk)
    size += chunk.length
    if (size > max) return { rest: Readable.from(resumed(chunks, it), { objectMode: false }) }
  }
}

/**
 * The bytes Koa's `respond()` sends for a non-stream body, with the header
 * changes it makes on the way; `undefined` for a body `JSON.stringify`
 * rejects (Koa answers that with an error).
 */
function bufferedBody(
  ctx: KoaContext,
  status: number,
  headers: HeaderPairs,
): { body: Buffer; headers: HeaderPairs } | undefined {
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
  if (Buffer.isBuffer(body)) return { body: Buffer.from(body), headers }
  if (typeof body === 'string') return { body: Buffer.from(body, 'utf8'), headers }
  let json: string | undefined
  try {
    json = JSON.stringify(body)
  } catch {
    return undefined
  }
  const bytes = Buffer.from(json ?? '', 'utf8')
  return {
    body: bytes,
    headers: [...without(headers, 'content-length'), ['Content-Length', String(bytes.length)]],
  }
}

/** A complete response captured from `ctx`. */
interface Captured {
  status: number
  headers: HeaderPairs
  body: Buffer
}

/**
 * Captures the response the rest of the chain left on `ctx`: its status,
 * the headers it set (those outer middleware set before `before` was taken
 * are per request and left out, unless changed), and its body as the bytes
 * Koa would send. Queued header modifiers are applied first. Returns
 * `undefined`, leaving the response to go out unchanged, when it cannot be
 * captured: the app wrote to `ctx.res` itself, a stream that is not a
 * readable, a body over `max` bytes (a stream is then sent on, from its
 * first byte), or a body Koa cannot serialise.
 */
async function capture(
  ctx: KoaContext,
  before: Map<string, string[]>,
  max: number,
): Promise<Captured | undefined> {
  const res = ctx.res
  if (ctx.respond === false || !ctx.writable || res.headersSent) return undefined
  applyQueued(res)
  const status = ctx.status
  const own = currentHeaders(res).filter(
    ([n, v]) => !(before.get(n.toLowerCase())?.includes(v) ?? false),
  )
  if (EMPTY_STATUS.has(status)) {
    // respond() sets `ctx.body = null`, which strips these.
    return {
      status,
      headers: without(own, 'content-type', 'content-length', 'transfer-encoding'),
      body: Buffer.alloc(0),
    }
  }
  const body = ctx.body
  const stream =
    typeof body === 'object' && body !== null && !Buffer.isBuffer(body) ? streamOf(body) : undefined
  if (stream === null) return undefined
  if (stream !== undefined) {
    const length = res.getHeader('Content-Length')
    const got = await collect(stream, max)
    if ('rest' in got) {
      // Assigning a new stream makes Koa drop Content-Length; keep the one the app set.
      ctx.body = got.rest
      if (length !== undefined && !res.hasHeader('Content-Length')) {
        res.setHeader('Content-Length', length)
      }
      return undefined
    }
    // The whole body is known now: send it with its length, as Koa sends a Buffer.
    ctx.body = got.body
    return {
      status,
      headers: [
        ...without(own, 'content-length', 'transfer-encoding'),
        ['Content-Length', String(got.body.length)],
      ],
      body: got.body,
    }
  }
  const buffered = bufferedBody(ctx, status, own)
  if (buffered === undefined || buffered.body.length > max) return undefined
  return { status, headers: buffered.headers, body: buffered.body }
}

/**
 * Leaves `response` on `ctx` for Koa to send: its status, a Buffer body and
 * exactly its headers, plus the headers in `keep` that are still set as
 * they were (those outer middleware set before this layer ran). Without
 * `keep`, every header already set stays, under the response's own.
 */
function send(ctx: KoaContext, response: HttpResponse, keep?: Map<string, string[]>): void {
  const res = ctx.res
  if (res.headersSent || !ctx.writable) return
  const kept = keep ?? snapshot(res)
  ctx.status = response.status
  if (response.body !== undefined) ctx.body = response.body
  else if (EMPTY_STATUS.has(response.status)) ctx.body = null
  // HEAD: no body; an empty one keeps Koa from inventing a Content-Length.
  else if (hasHeader(response.headers, 'content-length')) ctx.body = Buffer.alloc(0)
  else ctx.body = Readable.from([])
  // The body setter adjusts Content-Type and Content-Length: the response's own headers win.
  for (const [name, values] of snapshot(res)) {
    if (kept.get(name)?.join('\u0000') !== values.join('\u0000')) res.removeHeader(name)
  }
  for (const [name, value] of groupHeaders(response.headers)) res.setHeader(name, value)
}

/** Reports an error the response survived (stale-if-error, a failed invalidation) to the app. */
function report(ctx: KoaContext, error: unknown): void {
  const app = ctx.app as { emit?: (event: string, ...args: unknown[]) => boolean }
  if (typeof app.emit === 'function') app.emit('error', error, ctx)
}

// ---------------------------------------------------------------- validation

/** Options of {@link validation}. */
export interface ValidationOptions {
  /** Add a strong ETag (hash of the body) to GET/HEAD 200 responses without one. @default true */
  etag?: boolean
  /** The largest body held back to hash, bytes; larger ones go out untouched. @default 5 MiB */
  maxBodyBytes?: number
}

function requestInfo(ctx: KoaContext): { method: string; headers: HeaderBag } {
  return { method: ctx.method, headers: ctx.req.headers as HeaderBag }
}

/**
 * Validation for GET and HEAD: adds an ETag to 200 responses that have none,
 * then answers `If-None-Match` (weak comparison) and `If-Modified-Since`
 * with a 304 carrying the headers RFC 9110 §15.4.5 requires, and `If-Match`
 * / `If-Unmodified-Since` with 412. Koa hands HEAD routes' bodies to it too,
 * so a HEAD gets the same ETag as the GET.
 *
 * @example
 * app.use(validation())
 */
export function validation(options: ValidationOptions = {}): HttpMiddleware {
  const addETag = options.etag ?? true
  const max = options.maxBodyBytes ?? 5 << 20
  return async (ctx, next) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      await next()
      return
    }
    const before = snapshot(ctx.res)
    await next()
    const captured = await capture(ctx, before, max)
    if (captured === undefined) return
    send(ctx, validateResponse(requestInfo(ctx), captured, { etag: addETag }), before)
  }
}

/**
 * Preconditions for unsafe methods (RFC 9110 §13.2): `validatorsOf(ctx)`
 * gives the current representation's ETag and/or Last-Modified; a failed
 * `If-Match` or `If-Unmodified-Since` (or a matching `If-None-Match`) is
 * answered 412 before the handler runs, so a lost update never happens.
 *
 * @typeParam Ctx - the context type `validatorsOf` receives (your router's, for `ctx.params`)
 * @example
 * router.put('/docs/:id', preconditions<RouterContext>(async (ctx) => versionOf(ctx.params.id)), save)
 */
export function preconditions<Ctx extends KoaContext = KoaContext>(
  validatorsOf: (ctx: Ctx) => Validators | Promise<Validators>,
): (ctx: Ctx, next: KoaNext) => Promise<void> {
  return async (ctx, next) => {
    const answer = checkPreconditions(requestInfo(ctx), await validatorsOf(ctx))
    if (answer === undefined) await next()
    else send(ctx, answer, snapshot(ctx.res))
  }
}

// ---------------------------------------------------------------- shared cache

function requestOf(ctx: KoaContext): HttpRequest {
  return {
    method: ctx.method,
    url: ctx.originalUrl ?? ctx.req.url ?? '/',
    host: ctx.req.headers.host ?? '',
    headers: { ...ctx.req.headers } as HeaderBag,
  }
}

/** The request's own server, for background refreshes. */
function originOf(req: IncomingMessage): string {
  const socket = req.socket
  const address = (socket.localAddress ?? '127.0.0.1').replace(/^::ffff:/, '')
  const host = address.includes(':') ? `[${address}]` : address
  return `http://${host}:${socket.localPort}`
}

/**
 * The RFC 9111 shared response cache in front of the middleware after it
 * (see `HttpCache`): stored responses are answered without running the
 * route, with `Age` and the hit indicator; misses run the route and store
 * what the RFC allows; stale entries are revalidated with conditional
 * requests; `stale-while-revalidate` answers at once and refreshes in the
 * background; `stale-if-error` also answers when the route throws; unsafe
 * methods invalidate the URL and its Location/Content-Location (before the
 * response goes out). Mount it before the routes (and after anything that
 * must see every request). A response the app writes to `ctx.res` itself
 * (`ctx.respond = false`) is sent as it is and not stored.
 *
 * @param engineOrOptions - an `HttpCache`, or its options (`{ cache }` at least)
 * @example
 * app.use(httpCache({ cache }))
 * app.use(validation())
 * app.use(router.routes())
 */
export function httpCache(
  engineOrOptions: HttpCache | HttpCacheOptions,
): HttpMiddleware & { engine: HttpCache } {
  const engine =
    engineOrOptions instanceof HttpCache ? engineOrOptions : new HttpCache(engineOrOptions)

  const middleware: HttpMiddleware = async (ctx, next) => {
    const request = requestOf(ctx)
    const lookup = await engine.lookup(request)
    if (lookup.kind === 'hit' || lookup.kind === 'gateway-timeout') {
      send(ctx, lookup.response)
      if (lookup.kind === 'hit' && lookup.refresh) {
        engine.refreshInBackground(request, originOf(ctx.req))
      }
      return
    }
    if (lookup.kind === 'pass') {
      await next()
      if (request.method === 'GET' || request.method === 'HEAD') return
      // Unsafe methods: invalidate after a success (an error thrown propagates, invalidating nothing).
      const invalidate = (status: number, headers: HeaderPairs) =>
        engine
          .complete(request, lookup, { status, headers, body: undefined }, engine.now())
          .catch((error: unknown) => report(ctx, error))
      if (ctx.respond === false || ctx.res.headersSent) {
        ctx.res.once('finish', () => void invalidate(ctx.res.statusCode, currentHeaders(ctx.res)))
      } else {
        await invalidate(ctx.status, currentHeaders(ctx.res))
      }
      return
    }
    // Miss or revalidation: ask the route for a full (or conditional) response.
    const headers = ctx.req.headers
    for (const name of CONDITIONAL_HEADERS) delete headers[name]
    if (lookup.kind === 'revalidate') Object.assign(headers, lookup.headers)
    const before = snapshot(ctx.res)
    const requestTime = engine.now()
    try {
      await next()
    } catch (error) {
      // RFC 5861 §4: stale-if-error may answer for a route that failed.
      if (lookup.kind !== 'revalidate') throw error
      let stale: HttpResponse | undefined
      try {
        stale = await engine.complete(request, lookup, undefined, requestTime, engine.now())
      } catch {
        stale = undefined
      }
      if (stale === undefined) throw error
      report(ctx, error)
      send(ctx, stale, before)
      return
    }
    const captured = await capture(ctx, before, engine.maxBodyBytes)
    if (captured === undefined) return
    let final: HttpResponse | undefined
    try {
      final = await engine.complete(request, lookup, captured, requestTime, engine.now())
    } catch (error) {
      report(ctx, error)
    }
    send(ctx, final ?? captured, before)
  }
  return Object.assign(middleware, { engine })
}

export { bodyETag }
