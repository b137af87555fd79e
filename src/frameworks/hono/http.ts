/**
 * HTTP caching for Hono 4: the header helpers (`cacheFor`, `cacheControl`,
 * `noStore`, `vary`), validation (automatic ETag, 304 and 412),
 * preconditions for unsafe methods, and the RFC 9111 shared response cache
 * (`httpCache`), all on the framework-neutral core of `cachette/http`.
 *
 * Everything is Hono middleware working on `c.res` after `await next()`,
 * with the Web standard `Request`, `Response`, `Headers` and
 * `ReadableStream` only, so it runs on every Hono runtime. A response is
 * held back (read to the end, up to a size limit) only where its body is
 * needed: to hash it for an ETag or to store it.
 */
import type { Context, Env, MiddlewareHandler, Next } from 'hono'
import { bodilessStatus } from '../../core/headers.js'
import {
  type CacheControlDirectives,
  type Duration,
  type HeaderHelpers,
  type HeaderModifier,
  headerHelpers,
} from '../../http/directives.js'
import type { Validators } from '../../http/semantics.js'
import {
  type DeferredCompletion,
  HttpCache,
  type HttpCacheOptions,
  type HttpRequest,
  type HttpResponse,
  type Lookup,
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
import { BoundedBody } from '../shared/body.js'
import {
  type HeaderPairs,
  keepAlive,
  originOf,
  pairKey,
  pairKeys,
  pairsOf,
  pathAndQuery,
  priorHeaders,
  toBytes,
} from './response.js'

/**
 * A Hono middleware of `cachette/hono`'s HTTP caching.
 *
 * @typeParam E - the app's `Env`, for callbacks that receive the `Context`.
 */
export type HttpMiddleware<E extends Env = Env> = MiddlewareHandler<E>

// ---------------------------------------------------------------- headers

/**
 * Makes `response` the request's response (`c.res`), with the headers outer
 * middleware set for this request (`kept`) under its own; `response` wins
 * for a field both name. Returns it too, for middleware that answer early.
 */
function send(c: Context, response: HttpResponse, kept: HeaderPairs): Response {
  const headers = new Headers()
  const own = new Set(response.headers.map(([n]) => n.toLowerCase()))
  for (const [n, v] of kept) if (!own.has(n.toLowerCase())) headers.append(n, v)
  for (const [n, v] of response.headers) headers.append(n, v)
  const body =
    // A `Response` may carry no body with these (nor have a 1xx status at all).
    response.body === undefined || bodilessStatus(response.status)
      ? null
      : new Uint8Array(response.body.buffer, response.body.byteOffset, response.body.byteLength)
  const res = new Response(body, { status: response.status, headers })
  // Unset first: assigning over an existing `c.res` would merge its headers back in.
  c.res = undefined
  c.res = res
  return res
}

// ---------------------------------------------------------------- header helpers

/** The header modifiers a request's route queued, and how many of them are applied. */
interface ModifierQueue {
  list: HeaderModifier[]
  applied: number
}

const queues = new WeakMap<Context, ModifierQueue>()

/**
 * Applies the modifiers queued for this request and not yet applied to
 * `c.res`, in queue order (outermost first: the innermost wins). Called by
 * the helpers after the route ran and by `validation`/`httpCache` before
 * they look at the response, so each modifier applies once.
 */
function applyModifiers(c: Context): void {
  const queue = queues.get(c)
  if (queue === undefined || queue.applied >= queue.list.length) return
  const pending = queue.list.slice(queue.applied)
  queue.applied = queue.list.length
  const res = c.res
  const before = pairsOf(res.headers)
  const after: HeaderPairs = before.map(([n, v]) => [n, v])
  const now = Date.now()
  for (const modifier of pending) modifier(after, now)
  const names = new Set([...before, ...after].map(([n]) => n.toLowerCase()))
  try {
    for (const name of names) res.headers.delete(name)
    for (const [n, v] of after) res.headers.append(n, v)
  } catch {
    // Immutable headers (a `fetch()` response returned as is): a new Response.
    const headers = new Headers()
    for (const [n, v] of after) headers.append(n, v)
    const replacement = new Response(res.body, {
      status: res.status,
      statusText: res.statusText,
      headers,
    })
    c.res = undefined
    c.res = replacement
  }
}

/**
 * A header modifier as middleware: queued for the request, applied once the
 * route ran. Hono's `MiddlewareHandler` (any `Env`): it reads neither
 * `c.var` nor `c.env`, so the same function serves every app.
 */
function modifierMiddleware(modifier: HeaderModifier): MiddlewareHandler {
  return async function headerModifier(c: Context, next: Next): Promise<void> {
    let queue = queues.get(c)
    if (queue === undefined) {
      queue = { list: [], applied: 0 }
      queues.set(c, queue)
    }
    queue.list.push(modifier)
    await next()
    applyModifiers(c)
  }
}

/** The header helpers, as Hono middleware taking the app's `Env` (to type `c.var` in a chain). */
interface Helpers extends HeaderHelpers<HttpMiddleware> {
  cacheFor<E extends Env = Env>(duration: Duration): HttpMiddleware<E>
  cacheControl<E extends Env = Env>(directives: CacheControlDirectives): HttpMiddleware<E>
  noStore<E extends Env = Env>(): HttpMiddleware<E>
  vary<E extends Env = Env>(...fields: string[]): HttpMiddleware<E>
}
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

// ---------------------------------------------------------------- holding a response

/** A response the route produced, split into its own headers and those outer middleware set. */
interface Held {
  status: number
  /** The route's headers: all but the outer middleware's. */
  headers: HeaderPairs
  /** Headers outer middleware set before the holder ran, still on the response. */
  kept: HeaderPairs
  /** The whole body; `undefined` when it was not asked for (left in `c.res`). */
  body: Buffer | undefined
}

/**
 * Replaces `c.res` by a response with the same status and headers whose
 * body is what was read so far (`read`), then the rest of `reader`
 * (then `failure`, if reading failed), as the client reads it; `ended` runs
 * once the whole body has been read.
 */
function passThrough(
  c: Context,
  res: Response,
  read: readonly unknown[],
  reader: ReadableStreamDefaultReader<unknown>,
  failure?: { error: unknown },
  ended?: () => void,
): void {
  const queued = [...read]
  const body = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (queued.length > 0) {
          controller.enqueue(queued.shift() as Uint8Array)
          return
        }
        if (failure !== undefined) {
          controller.error(failure.error)
          return
        }
        try {
          const result = await reader.read()
          if (result.done) {
            controller.close()
            ended?.()
          } else controller.enqueue(result.value as Uint8Array)
        } catch (error) {
          controller.error(error)
        }
      },
      cancel(reason) {
        return reader.cancel(reason)
      },
    },
    { highWaterMark: 0 },
  )
  const replacement = new Response(body, {
    status: res.status,
    statusText: res.statusText,
    headers: res.headers,
  })
  c.res = undefined
  c.res = replacement
}

/**
 * Holds back the response the rest of the chain produced (`c.res`, with the
 * queued header modifiers applied). With `wantBody`, reads its body to the
 * end, up to `maxBytes`. Returns `undefined`, leaving the response to
 * stream through unchanged, when the body is larger (by `Content-Length`, or
 * once more than `maxBytes` were read), is an event stream, cannot be read
 * (locked, or a status without a body), yields something other than bytes,
 * or fails.
 */
async function hold(
  c: Context,
  prior: HeaderPairs,
  maxBytes: number,
  wantBody = true,
): Promise<Held | undefined> {
  applyModifiers(c)
  const res = c.res
  const priorSet = pairKeys(prior)
  const headers: HeaderPairs = []
  const kept: HeaderPairs = []
  for (const pair of pairsOf(res.headers)) {
    if (priorSet.has(pairKey(pair))) kept.push(pair)
    else headers.push(pair)
  }
  const held: Held = { status: res.status, headers, kept, body: undefined }
  if (!wantBody) return held
  // An event stream never ends by itself: holding it back would hold it forever.
  if (/^\s*text\/event-stream/i.test(res.headers.get('content-type') ?? '')) return undefined
  if (Number(res.headers.get('content-length') ?? Number.NaN) > maxBytes) return undefined

  let source: ReadableStream<unknown> | null
  try {
    source = res.body
  } catch {
    return undefined
  }
  if (source === null) {
    held.body = Buffer.alloc(0)
  } else {
    let reader: ReadableStreamDefaultReader<unknown>
    try {
      reader = source.getReader()
    } catch {
      return undefined // already read or locked by someone else: leave it alone
    }
    const body = new BoundedBody(maxBytes, 'keep')
    for (;;) {
      let result: Awaited<ReturnType<typeof reader.read>>
      try {
        result = await reader.read()
      } catch (error) {
        passThrough(c, res, body.chunks, reader, { error })
        return undefined
      }
      if (result.done) break
      const bytes = toBytes(result.value)
      if (bytes === undefined) {
        passThrough(c, res, [...body.chunks, result.value], reader)
        return undefined
      }
      if (!body.add(bytes)) {
        passThrough(c, res, body.chunks, reader)
        return undefined
      }
    }
    held.body = body.bytes()
  }
  // The body is whole: the runtime frames it (a `fetch()` response may say `chunked`),
  // with the length the client would have been sent (HEAD too: Hono runs the GET route).
  held.headers = held.headers.filter(([n]) => n !== 'transfer-encoding')
  if (
    !bodilessStatus(held.status) &&
    (held.body.length > 0 || c.req.method === 'GET') &&
    !res.headers.has('content-length')
  ) {
    held.headers.push(['content-length', String(held.body.length)])
  }
  return held
}

/** Frees the body of a response that will not be sent. */
function discardBody(res: Response): void {
  try {
    res.body?.cancel().catch(() => {})
  } catch {
    // Already read or locked: nothing to free.
  }
}

// ---------------------------------------------------------------- validation

export type { ValidationOptions }

/**
 * Validation for GET and HEAD: adds an ETag to 200 responses that have none,
 * then answers `If-None-Match` (weak comparison) and `If-Modified-Since`
 * with a 304 carrying the headers RFC 9110 §15.4.5 requires, and `If-Match`
 * / `If-Unmodified-Since` with 412. Only a 200 without an ETag is held back
 * (to hash its body); any other response streams through as it is.
 *
 * @example
 * app.use(validation())
 * app.get('/doc', (c) => c.text(load()))
 */
export function validation<E extends Env = Env>(
  options: ValidationOptions = {},
): HttpMiddleware<E> {
  const addETag = options.etag ?? true
  const max = options.maxBodyBytes ?? VALIDATION_MAX_BODY_BYTES
  return async function validation(c: Context<E>, next: Next): Promise<void> {
    const method = c.req.method
    if (method !== 'GET' && method !== 'HEAD') {
      await next()
      return
    }
    const prior = priorHeaders(c)
    await next()
    applyModifiers(c)
    const original = c.res
    if (original.status !== 200) return
    const wantBody = addETag && !original.headers.has('etag')
    const held = await hold(c, prior, max, wantBody)
    if (held === undefined) return
    const request = { method, headers: c.req.header() }
    const final = validateResponse(request, held, {
      etag: addETag,
      preconditions: !isRevalidation(c.req.raw),
    })
    if (held.body === undefined) {
      if (final.status === held.status) return // unchanged: leave the body streaming
      discardBody(original)
    }
    send(c, final, held.kept)
  }
}

/**
 * Preconditions for unsafe methods (RFC 9110 §13.2): `validatorsOf(c)`
 * gives the current representation's ETag and/or Last-Modified; a failed
 * `If-Match` or `If-Unmodified-Since` (or a matching `If-None-Match`) is
 * answered 412 before the handler runs, so a lost update never happens.
 * An error thrown by `validatorsOf` reaches `app.onError`.
 *
 * @example
 * app.put('/doc/:id', preconditions(async (c) => ({ etag: await etagOf(c.req.param('id')) })), save)
 */
export function preconditions<E extends Env = Env>(
  validatorsOf: (c: Context<E>) => Validators | Promise<Validators>,
): HttpMiddleware<E> {
  return async function preconditions(c: Context<E>, next: Next): Promise<Response | undefined> {
    const validators = await validatorsOf(c)
    const answer = checkPreconditions({ method: c.req.method, headers: c.req.header() }, validators)
    if (answer !== undefined) return send(c, answer, priorHeaders(c))
    await next()
    return undefined
  }
}

// ---------------------------------------------------------------- the shared cache

function requestOf(c: Context): HttpRequest {
  let host = c.req.header('host')
  if (host === undefined) {
    try {
      host = new URL(c.req.url).host
    } catch {
      host = ''
    }
  }
  return {
    method: c.req.method,
    url: pathAndQuery(c.req.url),
    host,
    headers: c.req.header(),
  }
}

/**
 * `c.req.raw` without the request fields the lookup drops (the client's
 * conditional headers, its Range), with a revalidation's own validators
 * (marked, so `validation()` hands the cache the whole response).
 */
function originRequest(
  c: Context,
  lookup: Exclude<Lookup, { kind: 'pass' | 'hit' | 'gateway-timeout' }>,
): void {
  const raw = c.req.raw
  const extra = lookup.kind === 'revalidate' ? Object.entries(lookup.headers) : []
  if (extra.length === 0 && !lookup.drop.some((name) => raw.headers.has(name))) return
  const headers = new Headers(raw.headers)
  for (const name of lookup.drop) headers.delete(name)
  for (const [name, value] of extra) headers.set(name, value)
  c.req.raw = new Request(raw, { headers })
  if (lookup.kind === 'revalidate') markRevalidation(c.req.raw)
}

/**
 * Calls `done.commit` with the headers of the request's final response (`c.res`
 * once the chain has finished, with what outer middleware added after `await
 * next()`): when its body has been read to the end, as the runtime sends it.
 * `c.res` is replaced by a response with the same status and headers whose
 * body passes through unchanged. A response without a body is committed at
 * once, with the headers known now; one whose body is cancelled or fails is
 * never stored.
 */
function commitWhenSent(c: Context, done: DeferredCompletion): void {
  const res = c.res
  const commit = () =>
    keepAlive(
      c,
      done.commit(pairsOf(c.res.headers)).catch(() => false),
    )
  let source: ReadableStream<unknown> | null
  try {
    source = res.body
  } catch {
    source = null
  }
  if (source === null) {
    commit()
    return
  }
  let reader: ReadableStreamDefaultReader<unknown>
  try {
    reader = source.getReader()
  } catch {
    return // locked by someone else: not stored
  }
  passThrough(c, res, [], reader, undefined, commit)
}

/**
 * The RFC 9111 shared response cache in front of the routes after it (see
 * `HttpCache`): stored responses are answered without running the route,
 * with `Age` and the hit indicator; misses run the route and store what the
 * RFC allows; stale entries are revalidated with conditional requests;
 * `stale-while-revalidate` answers at once and refreshes in the background;
 * unsafe methods invalidate the URL and its Location/Content-Location.
 * Register it with `app.use()` before the routes (and after anything that
 * must see every request).
 *
 * Headers that outer middleware set before it ran (`requestId()`, `cors()`)
 * are not stored: every response, stored or not, gets this request's. Every
 * header the response goes out with (those, and those outer middleware add
 * to `c.res` after `await next()`) can veto storage as the route's own would
 * (`Set-Cookie`, `Cache-Control: private` or `no-store`, `Vary: *`), and
 * their `Vary` names select the variant: a miss is stored once its body has
 * been read out to the client.
 * A response whose handler threw (`c.error`) is never stored; on a
 * revalidation it is the origin failing, so `stale-if-error` may answer.
 * Bodies above `maxBodyBytes` and event streams are sent through as they
 * are and not stored.
 *
 * @param engineOrOptions - an `HttpCache`, or its options (`{ cache }` at least)
 *
 * @example
 * const app = new Hono()
 * app.use(httpCache({ cache }))
 * app.use(validation())
 * app.get('/articles', cacheFor({ minutes: 5 }), (c) => c.json(list()))
 */
export function httpCache<E extends Env = Env>(
  engineOrOptions: HttpCache | HttpCacheOptions,
): HttpMiddleware<E> & { engine: HttpCache } {
  const engine =
    engineOrOptions instanceof HttpCache ? engineOrOptions : new HttpCache(engineOrOptions)
  const middleware = async function httpCache(
    c: Context<E>,
    next: Next,
  ): Promise<Response | undefined> {
    const request = requestOf(c)
    const lookup = await engine.lookup(request)
    if (lookup.kind === 'hit' || lookup.kind === 'gateway-timeout') {
      const res = send(c, lookup.response, priorHeaders(c))
      if (lookup.kind === 'hit' && lookup.refresh) engine.refreshInBackground(request, originOf(c))
      return res
    }
    if (lookup.kind === 'pass') {
      await next()
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        // Unsafe methods: invalidate on success, before the client hears back.
        applyModifiers(c)
        try {
          await engine.complete(
            request,
            lookup,
            { status: c.res.status, headers: pairsOf(c.res.headers), body: undefined },
            Date.now(),
          )
        } catch {
          // The write happened; a failing cache must not turn it into an error.
        }
      }
      return undefined
    }
    // Miss or revalidation: ask the origin for a full (or conditional) response.
    const prior = priorHeaders(c)
    originRequest(c, lookup)
    const requestTime = engine.now()
    await next()
    const held = await hold(c, prior, engine.maxBodyBytes)
    if (held === undefined) return undefined
    const origin: HttpResponse | undefined = c.error === undefined ? held : undefined
    // Outer middleware's headers so far veto storage now; what they add after this returns,
    // once the final response's body has been read out: every header sent can keep it out.
    let done: DeferredCompletion | undefined
    try {
      done = await engine.completeDeferred(request, lookup, origin, requestTime, engine.now(), {
        outer: held.kept,
      })
    } catch {
      done = undefined
    }
    send(c, done?.response ?? held, held.kept)
    if (done?.pending) commitWhenSent(c, done)
    return undefined
  }
  return Object.assign(middleware as HttpMiddleware<E>, { engine })
}

export { bodyETag }
