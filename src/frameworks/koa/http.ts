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
import { Readable } from 'node:stream'
import { bodilessStatus, groupHeaders } from '../../core/headers.js'
import { type HeaderHelpers, type HeaderModifier, headerHelpers } from '../../http/directives.js'
import type { HeaderBag } from '../../http/headers.js'
import type { Validators } from '../../http/semantics.js'
import {
  type DeferredCompletion,
  HttpCache,
  type HttpCacheOptions,
  type HttpResponse,
} from '../../http/shared-cache.js'
import {
  bodyETag,
  checkPreconditions,
  isRevalidation,
  markRevalidation,
  VALIDATION_MAX_BODY_BYTES,
  type ValidationOptions,
  validateResponse,
} from '../../http/validate.js'
import { readUpTo } from '../shared/body.js'
import {
  applyQueuedModifiersToResponse,
  discardQueuedModifiers,
  queueModifier,
} from '../shared/intercept.js'
import {
  commitWhenSent,
  currentHeaders,
  type HeaderPairs,
  type HeaderSnapshot,
  originOf,
  requestOf,
  snapshotHeaders,
  splitHeaders,
} from '../shared/node-response.js'
import { bufferedBody, setStreamBody, streamBody, without } from './capture.js'
import type { KoaContext, KoaNext } from './context.js'

/** A Koa middleware, as `app.use()` and a router's route take it. */
export type HttpMiddleware = (ctx: KoaContext, next: KoaNext) => Promise<void>

// ---------------------------------------------------------------- header helpers

function modifierMiddleware(modifier: HeaderModifier): HttpMiddleware {
  return async (ctx, next) => {
    queueModifier(ctx.res, modifier)
    try {
      await next()
    } catch (error) {
      // Koa answers an error with its own headers: the route's caching headers do not apply.
      discardQueuedModifiers(ctx.res)
      throw error
    }
    // Applied now, so middleware further out sees them; a response the app
    // writes to `ctx.res` itself gets them when its headers are written.
    if (ctx.respond !== false && !ctx.res.headersSent) applyQueuedModifiersToResponse(ctx.res)
  }
}

/** The header helpers, as Koa middleware. */
type Helpers = HeaderHelpers<HttpMiddleware>
/** `cacheFor`, `cacheControl`, `noStore`, `vary`: documented once, on {@link HeaderHelpers}. */
export const {
  /** `Cache-Control: max-age` and `Expires` for a duration (`{ minutes: 5 }`), flask-webcache's `cache_for`. */
  cacheFor,
  /** Sets `Cache-Control` directives (`{ public: true, sMaxage: 600 }`), flask-webcache's `cache_control`. */
  cacheControl,
  /** `Cache-Control: no-store`, replacing every other directive. */
  noStore,
  /** Adds header names to the response's `Vary`. */
  vary,
}: Helpers = headerHelpers(modifierMiddleware)

// ---------------------------------------------------------------- capture

function hasHeader(headers: HeaderPairs, name: string): boolean {
  return headers.some(([n]) => n.toLowerCase() === name)
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
  before: HeaderSnapshot,
  max: number,
): Promise<Captured | undefined> {
  const res = ctx.res
  if (ctx.respond === false || !ctx.writable || res.headersSent) return undefined
  applyQueuedModifiersToResponse(res)
  const status = ctx.status
  const { own } = splitHeaders(currentHeaders(res), before)
  const stream = streamBody(ctx, status)
  if (stream === null) return undefined
  if (stream !== undefined) {
    const got = await readUpTo(stream, max)
    if ('rest' in got) {
      setStreamBody(ctx, got.rest)
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
  const buffered = bufferedBody(ctx, status, own, max)
  if (buffered?.body === undefined) return undefined
  return { status, headers: buffered.headers, body: buffered.body }
}

/**
 * Leaves `response` on `ctx` for Koa to send: its status, a Buffer body and
 * exactly its headers, plus the headers in `keep` that are still set as
 * they were (those outer middleware set before this layer ran). Without
 * `keep`, every header already set stays, under the response's own.
 */
function send(ctx: KoaContext, response: HttpResponse, keep?: HeaderSnapshot): void {
  const res = ctx.res
  if (res.headersSent || !ctx.writable) return
  const kept = keep ?? snapshotHeaders(res)
  ctx.status = response.status
  if (response.body !== undefined) ctx.body = response.body
  else if (bodilessStatus(response.status)) ctx.body = null
  // HEAD: no body; an empty one keeps Koa from inventing a Content-Length.
  else if (hasHeader(response.headers, 'content-length')) ctx.body = Buffer.alloc(0)
  else ctx.body = Readable.from([])
  // The body setter adjusts Content-Type and Content-Length: the response's own headers win.
  for (const [name, values] of snapshotHeaders(res)) {
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

export type { ValidationOptions }

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
  const max = options.maxBodyBytes ?? VALIDATION_MAX_BODY_BYTES
  return async (ctx, next) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      await next()
      return
    }
    const before = snapshotHeaders(ctx.res)
    await next()
    const captured = await capture(ctx, before, max)
    if (captured === undefined) return
    const preconditions = !isRevalidation(ctx.req)
    send(
      ctx,
      validateResponse(requestInfo(ctx), captured, { etag: addETag, preconditions }),
      before,
    )
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
    else send(ctx, answer, snapshotHeaders(ctx.res))
  }
}

// ---------------------------------------------------------------- shared cache

/**
 * The RFC 9111 shared response cache in front of the middleware after it
 * (see `HttpCache`): stored responses are answered without running the
 * route, with `Age` and the hit indicator; misses run the route and store
 * what the RFC allows; stale entries are revalidated with conditional
 * requests; `stale-while-revalidate` answers at once and refreshes in the
 * background; `stale-if-error` also answers when the route throws; unsafe
 * methods invalidate the URL and its Location/Content-Location (before the
 * response goes out). Mount it before the routes (and after anything that
 * must see every request). Headers that outer middleware set are not
 * stored, but every header the response goes out with (those set before it
 * ran, and those added after it returned, such as a session's `Set-Cookie`)
 * can veto storage as the route's own would, and their `Vary` names select
 * the variant: a miss is stored once Koa has sent it. A response the app writes to `ctx.res` itself
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
    const request = requestOf(ctx.req, ctx.originalUrl)
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
    for (const name of lookup.drop) delete headers[name]
    if (lookup.kind === 'revalidate') {
      Object.assign(headers, lookup.headers)
      markRevalidation(ctx.req)
    }
    const before = snapshotHeaders(ctx.res)
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
    // Outer middleware's headers so far veto storage now; what they add after this returns,
    // once Koa has sent the response: every header sent can keep it out.
    const { kept } = splitHeaders(currentHeaders(ctx.res), before)
    let done: DeferredCompletion | undefined
    try {
      done = await engine.completeDeferred(request, lookup, captured, requestTime, engine.now(), {
        outer: kept,
      })
    } catch (error) {
      report(ctx, error)
    }
    send(ctx, done?.response ?? captured, before)
    if (done !== undefined) commitWhenSent(ctx.res, done, (error) => report(ctx, error))
  }
  return Object.assign(middleware, { engine })
}

export { bodyETag }
