/**
 * HTTP caching for Express/Connect: the header helpers (`cacheFor`,
 * `cacheControl`, `noStore`, `vary`), validation (automatic ETag, 304 and
 * 412), preconditions for unsafe methods, and the RFC 9111 shared response
 * cache (`httpCache`), all on the framework-neutral core of `cachette/http`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { groupHeaders } from '../../core/headers.js'
import { type HeaderHelpers, type HeaderModifier, headerHelpers } from '../../http/directives.js'
import type { HeaderBag } from '../../http/headers.js'
import type { Validators } from '../../http/semantics.js'
import { HttpCache, type HttpCacheOptions, type HttpResponse } from '../../http/shared-cache.js'
import {
  bodyETag,
  checkPreconditions,
  isRevalidation,
  markRevalidation,
  VALIDATION_MAX_BODY_BYTES,
  type ValidationOptions,
  validateResponse,
} from '../../http/validate.js'
import { holdResponse, queueModifier } from '../shared/intercept.js'
import {
  commitWhenSent,
  currentHeaders,
  originOf,
  requestOf,
  snapshotHeaders,
  splitHeaders,
  withOuterHeaders,
} from '../shared/node-response.js'
import { answeredByErrorHandler, guardErrorHandlers } from './middleware.js'

/** An Express/Connect middleware. */
export type HttpMiddleware = (
  req: IncomingMessage,
  res: ServerResponse,
  next: (err?: unknown) => void,
) => void

/** A header modifier as middleware: queued on the response, applied when it is captured or its head written. */
function modifierMiddleware(modifier: HeaderModifier): HttpMiddleware {
  return (_req, res, next) => {
    queueModifier(res, modifier)
    next()
  }
}

/** The header helpers, as Express/Connect middleware. */
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

export type { ValidationOptions }

/**
 * Validation for GET and HEAD: adds an ETag to 200 responses that have none,
 * then answers `If-None-Match` (weak comparison) and `If-Modified-Since`
 * with a 304 carrying the headers RFC 9110 §15.4.5 requires, and `If-Match`
 * / `If-Unmodified-Since` with 412. Headers outer middleware set before it
 * ran are kept on the 304 and the 412 too.
 */
export function validation(options: ValidationOptions = {}): HttpMiddleware {
  const addETag = options.etag ?? true
  const max = options.maxBodyBytes ?? VALIDATION_MAX_BODY_BYTES
  return (req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      next()
      return
    }
    const request = { method: req.method as string, headers: req.headers as HeaderBag }
    const before = snapshotHeaders(res)
    holdResponse(res, max, async (held) => {
      // Outer middleware's headers are left out of the 304's filtering and kept, as on a hit.
      const { own, kept } = splitHeaders(held.headers, before)
      const response = validateResponse(
        request,
        { ...held, headers: own },
        { etag: addETag, preconditions: !isRevalidation(req) },
      )
      return withOuterHeaders(response, kept)
    })
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

/**
 * The RFC 9111 shared response cache in front of the routes after it (see
 * `HttpCache`): stored responses are answered without running the route,
 * with `Age` and the hit indicator; misses run the route and store what the
 * RFC allows; stale entries are revalidated with conditional requests;
 * `stale-while-revalidate` answers at once and refreshes in the background;
 * unsafe methods invalidate the URL and its Location/Content-Location.
 * Mount it before the routes (and after anything that must see every request).
 *
 * Headers that outer middleware set before it ran (CORS, a request id) are
 * not stored: every response, stored or not, gets this request's, under the
 * response's own (which win on a name both have). Every header the response
 * goes out with (those, and those added as its head is written, as
 * express-session does) can veto storage as the route's own would
 * (`Set-Cookie`, `Cache-Control: private` or `no-store`, `Vary: *`), and
 * their `Vary` names select the variant: a miss is stored once its response
 * has been sent.
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
                { status: res.statusCode, headers: currentHeaders(res), body: undefined },
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
        for (const name of lookup.drop) delete req.headers[name]
        if (lookup.kind === 'revalidate') {
          Object.assign(req.headers, lookup.headers)
          markRevalidation(req)
        }
        // What outer middleware set so far is this request's: kept on the answer, never stored.
        const before = snapshotHeaders(res)
        const requestTime = engine.now()
        // A route that fails is answered by an error handler: that answer is never stored.
        guardErrorHandlers(req)
        holdResponse(res, engine.maxBodyBytes, async (held) => {
          const { own, kept } = splitHeaders(held.headers, before)
          const origin: HttpResponse = { status: held.status, headers: own, body: held.body }
          // A response that failed while held is the origin failing: sent as it came, never stored.
          const answer = held.failed || answeredByErrorHandler(res) ? undefined : origin
          // Outer middleware's headers veto storage now; those added as the head is written
          // (a session's cookie) when it has gone out: every header sent can keep it out.
          const done = await engine.completeDeferred(
            request,
            lookup,
            answer,
            requestTime,
            engine.now(),
            { outer: kept },
          )
          commitWhenSent(res, done)
          return withOuterHeaders(done.response ?? origin, kept)
        })
        next()
      },
      (error: unknown) => next(error),
    )
  }
  return Object.assign(middleware, { engine })
}

/**
 * Sends `response` now, from a middleware: its status and body, and its
 * headers over those already set (outer middleware's, such as CORS or a
 * request id, which stay unless the response has the same name).
 */
function sendResponse(res: ServerResponse, response: HttpResponse): void {
  for (const [name, value] of groupHeaders(response.headers)) res.setHeader(name, value)
  res.statusCode = response.status
  res.end(response.body)
}

export { bodyETag }
