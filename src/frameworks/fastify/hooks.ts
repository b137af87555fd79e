/**
 * The Fastify adapter of the view-caching engine (`src/core/view/`): three
 * route-level hooks per cached route, and the app binder behind
 * `cache.initApp(fastify)`. Both public forms (`config: { cache }` through the
 * plugin, and `cached(cache, options)`) build their hooks here.
 *
 * - `onRequest` asks the engine. A hit is replayed with `reply.send()` and the
 *   chain stops there (no parsing, validation, `preHandler` or handler); a
 *   miss is remembered for this reply; a bypass just continues.
 * - `onError` marks a miss whose handler (or a later hook) failed, so it is
 *   never stored. It runs before the error handler and changes nothing.
 * - `onSend` takes the payload as Fastify will write it (already serialized):
 *   strings and Buffers directly, a Node or web stream through a collecting
 *   Transform returned in its place. The entry is stored once the raw
 *   response emits `finish`, with the status and headers actually sent.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { registerAppBinder } from '../../core/context.js'
import { type Slot, VIEW_SLOT } from '../../core/slot.js'
import {
  assertCachedProvider,
  type CachedProvider,
  type CapturedResponse,
  createViewCache,
  invalidationFor,
  type RequestView,
  requestViewOf,
  responseTimeoutOf,
  type ViewCache,
  type ViewCacheOptions,
  type ViewHit,
  type ViewLookup,
  type ViewMiss,
} from '../../core/view/index.js'
import { BoundedBody, copyingStream } from '../shared/body.js'
import {
  type HeaderSnapshot,
  sentHeaders,
  snapshotOf,
  splitHeaders,
} from '../shared/node-response.js'
import { bindFastify } from './bind.js'
import { headerPairs, isResponse, payloadBuffer, payloadStream, unwrapResponse } from './payload.js'

/**
 * Options of a cached Fastify route; see {@link ViewCacheOptions} for each
 * option and its default. Callbacks (`keyPrefix`, `unless`, ...) receive the
 * `FastifyRequest`.
 *
 * @typeParam Req - the request type your callbacks receive, e.g.
 * `FastifyRequest<{ Querystring: { q: string } }>`.
 */
export type CachedOptions<Req extends FastifyRequest = FastifyRequest> = ViewCacheOptions<Req>

/** What `createViewHooks` takes: a cachette `Cache` (`ViewSlotProvider`, from `cachette/fastify`). */
export type ViewSlotProvider = CachedProvider

/** `done` of a callback-style `onRequest` hook. */
type Done = (error?: Error) => void
/** `done` of a callback-style `onSend` hook. */
type SendDone = (error: Error | null, payload?: unknown) => void

/** The view-caching hooks of one route, in Fastify's callback style. */
export interface ViewHooks {
  onRequest(request: FastifyRequest, reply: FastifyReply, done: Done): void
  onSend(request: FastifyRequest, reply: FastifyReply, payload: unknown, done: SendDone): void
  onError(request: FastifyRequest, reply: FastifyReply, error: unknown, done: () => void): void
}

/** A miss being captured. */
interface Capture {
  readonly engine: ViewCache<FastifyRequest>
  readonly miss: ViewMiss
  readonly slot: Slot
  /** Headers present before the cache ran (outer hooks): per request, not stored. */
  readonly before: HeaderSnapshot
  errored: boolean
  /** Whether the `finish` listener is attached. */
  listening: boolean
  /** The body as captured by the last `onSend` (up to `maxBodySize`). */
  body: BoundedBody | undefined
  /** `false` while a streamed body has not ended. */
  bodyEnded: boolean
}

/** The misses being captured; `onSend` and `onError` leave every other reply alone. */
const states = new WeakMap<FastifyReply, Capture>()
/** `invalidateOnUnsafe`: the invalidation a bypassed unsafe request runs in `onSend`, before the response goes out. */
const invalidations = new WeakMap<FastifyReply, (status: number) => Promise<void>>()

/** Every hook function this module created, so a route is never given two sets. */
const ownHooks = new WeakSet<Function>()

/** Whether `fn` is one of the view-caching hooks created here. */
export function isViewHook(fn: unknown): boolean {
  return typeof fn === 'function' && ownHooks.has(fn)
}

/** Checks that `cache` is a cachette `Cache` (see `assertCachedProvider`), naming the expected call. */
export function assertCache(
  cache: unknown,
  call: string,
  where: string,
): asserts cache is CachedProvider {
  assertCachedProvider(cache, `cachette/fastify: ${call}`, where)
}

/** The {@link RequestView} of a Fastify request (`request.url`: the full path, plugin prefixes included). */
function viewOf(
  request: FastifyRequest,
  source: () => string | undefined,
): RequestView<FastifyRequest> {
  return requestViewOf(
    request.method,
    request.url,
    request.headers,
    request,
    source,
    request.raw.socket,
  )
}

/** Replays a hit: stored headers over those already set, then status and body. */
function replay(reply: FastifyReply, hit: ViewHit, method: string): void {
  // A list is copied: the hit is shared, and Fastify appends to a `set-cookie` list in place.
  for (const [name, value] of hit.grouped) {
    reply.header(name, typeof value === 'string' ? value : [...value])
  }
  reply.code(hit.status)
  // HEAD: Fastify's automatic HEAD route sets `Content-Length: 0` for an
  // empty payload, so hand it the stored body; Node never writes a body for
  // HEAD, and the stored length is kept.
  const body =
    hit.body ??
    (method.toUpperCase() === 'HEAD' &&
    hit.grouped.some(([n]) => n.toLowerCase() === 'content-length')
      ? hit.entry.body
      : undefined)
  reply.send(body)
}

/** Captures the payload of a miss; returns what Fastify should send instead (or `undefined`: unchanged). */
function capturePayload(state: Capture, reply: FastifyReply, payload: unknown): unknown {
  let out: unknown
  if (isResponse(payload)) {
    payload = unwrapResponse(reply, payload)
    out = payload
  }
  const body = new BoundedBody(state.engine.maxBodySize)
  state.body = body
  const stream = payloadStream(payload)
  if (stream !== undefined) {
    state.bodyEnded = false
    // Errors reach Fastify through the copying stream (the pipeline destroys it with
    // them); a source that failed leaves a truncated body, never stored.
    return copyingStream(
      stream,
      body,
      () => {
        state.bodyEnded = true
      },
      () => {
        state.errored = true
      },
    )
  }
  const buf = payloadBuffer(payload)
  state.bodyEnded = true
  if (buf === undefined) body.discard()
  else body.add(buf)
  return out
}

/** Stores a finished miss. */
function finish(reply: FastifyReply, state: Capture): void {
  states.delete(reply)
  const response: CapturedResponse = {
    status: reply.statusCode,
    headers: splitHeaders(headerPairs(reply), state.before).own,
    sent: sentHeaders(reply.raw),
    body: state.body?.take(),
    complete: state.bodyEnded,
    errored: state.errored,
  }
  const timeout = responseTimeoutOf(reply) ?? responseTimeoutOf(reply.raw)
  void state.engine.store(state.miss, response, state.slot, timeout)
}

/**
 * Creates the hooks of one cached route.
 *
 * @param cache - the owning Cache
 * @param engine - the route's engine (options already validated)
 * @param source - the route handler's source, for `sourceCheck`; `undefined` when unknown
 *   (the `cached()` hooks, which see only Fastify's bound copy of the handler)
 */
export function createViewHooks(
  cache: CachedProvider,
  engine: ViewCache<FastifyRequest>,
  source: string | undefined,
): ViewHooks {
  // Any app using the adapter binds on initApp, with or without `import 'cachette/fastify'`.
  registerAppBinder(bindFastify)
  const sourceOf = (): string | undefined => source
  /** Acts on the engine's decision: replays a hit, remembers a miss, lets a bypass through. */
  const decided = (
    result: ViewLookup,
    request: FastifyRequest,
    reply: FastifyReply,
    slot: Slot,
    done: Done,
  ): void => {
    if (result.kind === 'hit') {
      replay(reply, result, request.method)
      return
    }
    if (result.kind === 'bypass' && engine.options.invalidateOnUnsafe === true) {
      const invalidate = invalidationFor(
        engine as ViewCache<never>,
        source === undefined ? NO_SOURCES : new Set([source]),
        viewOf(request, sourceOf),
        slot,
      )
      if (invalidate !== undefined) invalidations.set(reply, invalidate)
    }
    if (result.kind === 'miss') {
      states.set(reply, {
        engine,
        miss: result,
        slot,
        before: snapshotOf(headerPairs(reply)),
        errored: false,
        listening: false,
        body: undefined,
        bodyEnded: false,
      })
    }
    done()
  }
  const hooks: ViewHooks = {
    onRequest: function cachetteOnRequest(request, reply, done) {
      let slot: Slot
      let now: ViewLookup | undefined
      const view = viewOf(request, sourceOf)
      try {
        slot = cache[VIEW_SLOT]()
        now = engine.lookupNow(view, slot)
      } catch (error) {
        done(error as Error)
        return
      }
      // Most hits are decided at once (an in-memory backend): answered in this tick.
      if (now !== undefined) {
        decided(now, request, reply, slot, done)
        return
      }
      engine.lookup(view, slot).then(
        (result) => decided(result, request, reply, slot, done),
        (error: unknown) => done(error as Error),
      )
    },
    onSend: function cachetteOnSend(_request, reply, payload, done) {
      const state = states.get(reply)
      if (state === undefined) {
        const invalidate = invalidations.get(reply)
        if (invalidate === undefined) done(null, payload)
        else {
          invalidations.delete(reply)
          invalidate(reply.statusCode).then(() => done(null, payload))
        }
        return
      }
      if (!state.listening) {
        state.listening = true
        reply.raw.once('finish', () => finish(reply, state))
        // A response that never finishes (a failed stream, a client gone) stores nothing:
        // requests waiting for this render stop waiting.
        reply.raw.once('close', () => {
          if (!reply.raw.writableFinished) {
            states.delete(reply)
            state.engine.settle(state.miss, state.slot)
          }
        })
      }
      let replacement: unknown
      try {
        replacement = capturePayload(state, reply, payload)
      } catch (error) {
        done(error as Error)
        return
      }
      done(null, replacement)
    },
    onError: function cachetteOnError(_request, reply, _error, done) {
      const state = states.get(reply)
      if (state !== undefined) state.errored = true
      done()
    },
  }
  for (const fn of Object.values(hooks)) ownHooks.add(fn)
  return hooks
}

const NO_SOURCES: ReadonlySet<string> = new Set()

/** Builds an engine, naming `what` in option errors. */
export function engineFor<Req extends FastifyRequest = FastifyRequest>(
  options: CachedOptions<Req> | undefined,
  what: string,
): ViewCache<FastifyRequest> {
  return createViewCache<FastifyRequest, Req>(options, what)
}

registerAppBinder(bindFastify)
