/**
 * HTTP caching for Fastify 5: the header helpers (`cacheFor`,
 * `cacheControl`, `noStore`, `vary`) and `preconditions` as route hooks,
 * validation (automatic ETag, 304 and 412) and the RFC 9111 shared response
 * cache (`httpCache`) as plugins, all on the framework-neutral core of
 * `cachette/http`.
 *
 * How the pieces meet on one reply:
 *
 * - `onRequest` (the plugins): `httpCache` answers hits with `reply.send()`
 *   (the chain stops there); for a miss, and for `validation` on GET/HEAD,
 *   it queues a *stage* on the reply: a step that gets the complete response
 *   (status, header list, body) and returns what to send instead.
 * - The route's helpers queue header modifiers on the reply.
 * - `onSend` (the plugins, one shared hook): the first of them to run takes
 *   the serialized payload (a string, a Buffer, or a stream collected up to
 *   the stages' limit), applies the queued modifiers, and runs the stages
 *   innermost first (the last queued first), as Express's nested middlewares
 *   would: `validation` adds its ETag before `httpCache` stores. A stream
 *   larger than a stage's limit passes that stage unchanged; one larger than
 *   every limit is sent through as it came.
 * - Without either plugin, the modifiers are applied when the headers are
 *   written (`reply.raw.writeHead`).
 */
import type { ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import type {
  FastifyPluginCallback,
  FastifyReply,
  FastifyRequest,
  onErrorHookHandler,
  onRequestHookHandler,
  onSendHookHandler,
} from 'fastify'
import fp from 'fastify-plugin'
import { bodilessStatus, groupHeaders } from '../../core/headers.js'
import { type HeaderHelpers, type HeaderModifier, headerHelpers } from '../../http/directives.js'
import type { HeaderBag } from '../../http/headers.js'
import type { Validators } from '../../http/semantics.js'
import {
  type HeaderList,
  HttpCache,
  type HttpCacheOptions,
  type HttpRequest,
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
import { applyQueuedModifiers, queueModifier } from '../shared/intercept.js'
import {
  commitWhenSent,
  originOf,
  snapshotOf,
  splitHeaders,
  withOuterHeaders,
} from '../shared/node-response.js'
import { FASTIFY_VERSIONS } from './bind.js'
import { headerPairs, isResponse, payloadBuffer, payloadStream, unwrapResponse } from './payload.js'

// ------------------------------------------------------------ per-reply state

/** A complete response handed to a stage. */
interface HeldResponse {
  status: number
  headers: HeaderList
  body: Buffer
  /** The route failed (threw, or its body stream did): this is the error handler's answer. */
  failed?: boolean
}

/** A step that gets the complete response and returns what to send instead. */
interface Stage {
  /** The largest body it is given; a larger one passes it unchanged. */
  readonly max: number
  decide(held: HeldResponse): Promise<HttpResponse>
}

/** What the HTTP plugins queued on one reply. */
interface ReplyState {
  /** Outermost first. */
  readonly stages: Stage[]
  /** Told the final status and headers (unsafe methods, for invalidation). */
  readonly watchers: ((response: HttpResponse) => Promise<void>)[]
  /** Whether the shared `onSend` hook has run for this reply. */
  dispatched: boolean
  /** Whether the route failed (threw, or its body stream did): its response is never stored. */
  failed?: boolean
}

const states = new WeakMap<ServerResponse, ReplyState>()

function stateOf(reply: FastifyReply): ReplyState {
  let state = states.get(reply.raw)
  if (state === undefined) {
    state = { stages: [], watchers: [], dispatched: false }
    states.set(reply.raw, state)
  }
  return state
}

// ---------------------------------------------------------------- header I/O

/** Replaces every header of the reply with `headers`. */
function replaceHeaders(reply: FastifyReply, headers: HeaderList): void {
  for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name)
  for (const [name, value] of groupHeaders(headers)) reply.header(name, value)
}

/** An empty body for HEAD: Fastify then keeps the response's own Content-Length. */
function emptyStream(): Readable {
  return Readable.from([], { objectMode: false })
}

/**
 * Puts `response`'s status and headers on the reply and returns the payload
 * to hand Fastify (`forSend`: to `reply.send()`, else from an `onSend` hook).
 * No body: an empty stream for HEAD (so neither Fastify's HEAD route nor
 * `reply.send` overwrites the Content-Length the response carries), else
 * nothing.
 */
function applyResponse(
  reply: FastifyReply,
  response: HttpResponse,
  method: string,
  forSend: boolean,
): unknown {
  replaceHeaders(reply, response.headers)
  reply.code(response.status)
  if (response.body === undefined || response.body.length === 0) {
    if (method === 'HEAD') return emptyStream()
    // `reply.send(undefined)` sends nothing (Content-Length: 0 where one is
    // due); from `onSend`, `undefined` would keep the old payload, `null` does not.
    return forSend ? undefined : null
  }
  return response.body
}

/**
 * Applies the modifiers the route queued (see `queueModifier`) to the
 * reply's headers now, so the stages see them; `writeHead` then has none
 * left to apply.
 */
function applyReplyModifiers(reply: FastifyReply): void {
  const headers = headerPairs(reply)
  if (applyQueuedModifiers(reply.raw, headers)) replaceHeaders(reply, headers)
}

/** Sends `response` from a hook, the chain stopping there. */
function sendResponse(reply: FastifyReply, response: HttpResponse, method: string): void {
  reply.send(applyResponse(reply, response, method, true))
}

// ------------------------------------------------------------ header helpers

/** A header modifier as a route hook: queued on the reply, applied when the payload is sent. */
function modifierHook(modifier: HeaderModifier): onRequestHookHandler {
  return function cachetteHeaderHelper(_request, reply, done) {
    queueModifier(reply.raw, modifier)
    done()
  }
}

/** The header helpers, as route hooks (`onRequest` or `preHandler`). */
type Helpers = HeaderHelpers<onRequestHookHandler>
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
}: Helpers = headerHelpers(modifierHook)

// ------------------------------------------------------------------- capture

/** A body read whole, a payload to send through as it came, or the error a stream failed with. */
type Captured = { body: Buffer } | { through: unknown } | { error: unknown }

/**
 * The serialized payload as a Buffer: strings and Buffers directly, Node and
 * web streams read up to `max` bytes (the whole of one that ends within it).
 */
async function capture(payload: unknown, max: number): Promise<Captured> {
  const body = payloadBuffer(payload)
  if (body !== undefined) return { body }
  const stream = payloadStream(payload)
  if (stream === undefined) return { through: payload }
  try {
    const read = await readUpTo(stream, max)
    return 'body' in read ? read : { through: read.rest }
  } catch (error) {
    return { error }
  }
}

/**
 * The shared `onSend` hook of `httpCache` and `validation`. The first to run
 * on a reply does the work; later ones pass the payload on.
 */
const dispatch: onSendHookHandler = function cachetteHttpOnSend(request, reply, payload, done) {
  const state = states.get(reply.raw)
  if (state === undefined || state.dispatched) {
    done(null, payload)
    return
  }
  state.dispatched = true
  if (state.stages.length === 0 && state.watchers.length === 0) {
    done(null, payload)
    return
  }
  run(request.method, reply, state, payload).then(
    (out) => done(null, out),
    (error: unknown) => done(error as Error),
  )
}

async function run(
  method: string,
  reply: FastifyReply,
  state: ReplyState,
  payload: unknown,
): Promise<unknown> {
  if (isResponse(payload)) payload = unwrapResponse(reply, payload)
  applyReplyModifiers(reply)
  let out: unknown = payload
  if (state.stages.length > 0) {
    const max = Math.max(...state.stages.map((s) => s.max))
    const captured = await capture(payload, max)
    if ('error' in captured) {
      // Nothing was sent yet: let Fastify's error handler answer, and the
      // stages see its response as a failure (stale-if-error may then answer).
      state.dispatched = false
      state.failed = true
      throw captured.error
    }
    if ('through' in captured) {
      out = captured.through
    } else {
      const headers = headerPairs(reply)
      const status = reply.statusCode
      if (
        // Fastify frames a 205 like any response: it gets the Content-Length Fastify adds.
        !bodilessStatus(status, false) &&
        !headers.some(([n]) => n.toLowerCase() === 'content-length') &&
        (method !== 'HEAD' || captured.body.length > 0)
      ) {
        // What Fastify will add for this body; the stages (and the store) see it.
        headers.push(['content-length', String(captured.body.length)])
      }
      let response: HttpResponse = { status, headers, body: captured.body }
      for (let i = state.stages.length - 1; i >= 0; i--) {
        const stage = state.stages[i] as Stage
        const body = response.body ?? Buffer.alloc(0)
        if (body.length > stage.max) continue
        const held: HeldResponse = { status: response.status, headers: response.headers, body }
        if (state.failed) held.failed = true
        try {
          response = await stage.decide(held)
        } catch {
          response = held
        }
      }
      out = applyResponse(reply, response, method, false)
    }
  }
  if (state.watchers.length > 0) {
    const final: HttpResponse = {
      status: reply.statusCode,
      headers: headerPairs(reply),
      body: undefined,
    }
    for (const watch of state.watchers) {
      try {
        await watch(final)
      } catch {
        // The request itself succeeded; a failed invalidation must not turn it into an error.
      }
    }
  }
  return out
}

// ---------------------------------------------------------------- validation

export type { ValidationOptions }

/** A Fastify plugin as `httpCache` and `validation` return it: `await fastify.register(plugin)`. */
export type HttpPlugin = FastifyPluginCallback

/**
 * Validation for GET and HEAD, as a plugin for the routes of the context it
 * is registered in (and its children): adds an ETag to 200 responses that
 * have none, then answers `If-None-Match` (weak comparison) and
 * `If-Modified-Since` with a 304 carrying the headers RFC 9110 §15.4.5
 * requires, and `If-Match` / `If-Unmodified-Since` with 412.
 *
 * @example
 * await app.register(validation())
 */
export function validation(options: ValidationOptions = {}): HttpPlugin {
  const addETag = options.etag ?? true
  const max = options.maxBodyBytes ?? VALIDATION_MAX_BODY_BYTES
  const onRequest: onRequestHookHandler = function cachetteValidation(request, reply, done) {
    if (request.method === 'GET' || request.method === 'HEAD') {
      const info = { method: request.method, headers: request.headers as HeaderBag }
      stateOf(reply).stages.push({
        max,
        decide: async (held) =>
          validateResponse(info, held, {
            etag: addETag,
            preconditions: !isRevalidation(request.raw),
          }),
      })
    }
    done()
  }
  const plugin: FastifyPluginCallback = (fastify, _options, done) => {
    fastify.addHook('onRequest', onRequest)
    fastify.addHook('onSend', dispatch)
    done()
  }
  return fp(plugin, { fastify: FASTIFY_VERSIONS, name: 'cachette-http-validation' })
}

/**
 * Preconditions for unsafe methods (RFC 9110 §13.2), as a route hook
 * (`onRequest` or `preHandler`): `validatorsOf(request)` gives the current
 * representation's ETag and/or Last-Modified; a failed `If-Match` or
 * `If-Unmodified-Since` (or a matching `If-None-Match`) is answered 412
 * before the handler runs, so a lost update never happens.
 *
 * @typeParam Req - the request type `validatorsOf` receives, e.g.
 * `FastifyRequest<{ Params: { id: string } }>`.
 *
 * @example
 * app.put('/docs/:id', { preHandler: preconditions(async (req) => versionOf(req.params)) }, save)
 */
export function preconditions<Req extends FastifyRequest = FastifyRequest>(
  validatorsOf: (request: Req) => Validators | Promise<Validators>,
): onRequestHookHandler {
  return function cachettePreconditions(request, reply, done) {
    let validators: Validators | Promise<Validators>
    try {
      validators = validatorsOf(request as Req)
    } catch (error) {
      done(error as Error)
      return
    }
    Promise.resolve(validators).then(
      (v) => {
        const answer = checkPreconditions(
          { method: request.method, headers: request.headers as HeaderBag },
          v,
        )
        if (answer === undefined) done()
        else sendResponse(reply, answer, request.method)
      },
      (error: unknown) => done(error as Error),
    )
  }
}

// ------------------------------------------------------------ shared cache

function requestOf(request: FastifyRequest): HttpRequest {
  return {
    method: request.method,
    url: request.url,
    host: request.headers.host ?? '',
    headers: { ...request.headers } as HeaderBag,
  }
}

/** Marks a reply whose route threw: the error handler's page is never stored. */
const markFailed: onErrorHookHandler = function cachetteHttpOnError(_request, reply, _error, done) {
  const state = states.get(reply.raw)
  if (state !== undefined) state.failed = true
  done()
}

/** What {@link httpCache} returns: the plugin, and the cache it uses (for `engine.purge(url, host)`). */
export type HttpCachePlugin = HttpPlugin & {
  /** The shared cache behind the plugin. */
  readonly engine: HttpCache
}

/**
 * The RFC 9111 shared response cache (see `HttpCache`) in front of the
 * routes of the context it is registered in (and its children), as a
 * plugin: stored responses are answered in `onRequest` without running the
 * route, with `Age` and the hit indicator; misses run the route and store
 * what the RFC allows; stale entries are revalidated with conditional
 * requests; `stale-while-revalidate` answers at once and refreshes in the
 * background; successful unsafe methods invalidate the URL and its
 * Location/Content-Location before their response is sent.
 *
 * Headers that earlier hooks set (CORS, an auth layer's `Cache-Control:
 * private`, a session's `Set-Cookie`) are not stored, but every header the
 * response goes out with, those added as its head is written too, can veto
 * storage as the route's own would, and their `Vary` names select the
 * variant: a miss is stored once its response has been sent.
 *
 * Register it before `validation()` (its `onRequest` must run first, as
 * Express's middleware would be mounted first) and await it before
 * declaring routes on the same instance.
 *
 * @example
 * await app.register(httpCache({ cache }))
 * await app.register(validation())
 * app.get('/articles', { onRequest: cacheFor({ minutes: 5 }) }, listArticles)
 */
export function httpCache(engineOrOptions: HttpCache | HttpCacheOptions): HttpCachePlugin {
  const engine =
    engineOrOptions instanceof HttpCache ? engineOrOptions : new HttpCache(engineOrOptions)
  const onRequest: onRequestHookHandler = function cachetteHttpCache(request, reply, done) {
    const req = requestOf(request)
    engine.lookup(req).then(
      (lookup) => {
        // What earlier hooks set so far (CORS, a request id) is this request's: kept, never stored.
        const outer = headerPairs(reply)
        if (lookup.kind === 'hit' || lookup.kind === 'gateway-timeout') {
          sendResponse(reply, withOuterHeaders(lookup.response, outer), request.method)
          if (lookup.kind === 'hit' && lookup.refresh) {
            engine.refreshInBackground(req, originOf(request.raw))
          }
          return
        }
        if (lookup.kind === 'pass') {
          if (req.method !== 'GET' && req.method !== 'HEAD') {
            // Unsafe methods: pass through, then invalidate on success.
            stateOf(reply).watchers.push(async (response) => {
              await engine.complete(req, lookup, response, Date.now())
            })
          }
          done()
          return
        }
        // Miss or revalidation: ask the origin for a full (or conditional) response.
        const headers = request.raw.headers
        for (const name of lookup.drop) delete headers[name]
        if (lookup.kind === 'revalidate') {
          Object.assign(headers, lookup.headers)
          markRevalidation(request.raw)
        }
        const requestTime = engine.now()
        stateOf(reply).stages.push({
          max: engine.maxBodyBytes,
          decide: async (held) => {
            const { own, kept } = splitHeaders(held.headers, snapshotOf(outer))
            const origin = { status: held.status, headers: own, body: held.body }
            // An error handler's page: the origin failed; sent as it came, never stored.
            const answer = held.failed ? undefined : origin
            // Earlier hooks' headers veto storage now; every header sent (those added as the
            // head is written too) once the response has gone out.
            const done = await engine.completeDeferred(
              req,
              lookup,
              answer,
              requestTime,
              engine.now(),
              { outer: kept },
            )
            commitWhenSent(reply.raw, done)
            return withOuterHeaders(done.response ?? origin, kept)
          },
        })
        done()
      },
      (error: unknown) => done(error as Error),
    )
  }
  const plugin: FastifyPluginCallback = (fastify, _options, done) => {
    fastify.addHook('onRequest', onRequest)
    fastify.addHook('onError', markFailed)
    fastify.addHook('onSend', dispatch)
    done()
  }
  return Object.assign(fp(plugin, { fastify: FASTIFY_VERSIONS, name: 'cachette-http-cache' }), {
    engine,
  })
}

export { bodyETag }
