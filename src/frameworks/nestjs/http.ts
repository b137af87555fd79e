/**
 * HTTP caching for NestJS on `@nestjs/platform-express`: the header helpers
 * (`cacheFor`, `cacheControl`, `noStore`, `vary`) and `preconditions` as
 * interceptors for `@UseInterceptors()` (or `app.useGlobalInterceptors()`),
 * and validation (automatic ETag, 304 and 412) and the RFC 9111 shared
 * response cache (`httpCache`) as middleware for `app.use()` (or
 * `consumer.apply()` in a module's `configure`). The same names and options
 * as `cachette/express`, on the same framework-neutral core
 * (`cachette/http`); the middleware are Express's own.
 *
 * On `@nestjs/platform-fastify`, the interceptors work on the raw response
 * (`reply.raw`), but `validation()` and `httpCache()` are Express middleware
 * and are not supported there yet: use `cachette/fastify`'s plugins on the
 * Fastify instance (`app.getHttpAdapter().getInstance()`).
 *
 * @example
 * const app = await NestFactory.create<NestExpressApplication>(AppModule)
 * app.set('etag', false) // validation() makes the ETags
 * app.use(httpCache({ cache }))
 * app.use(validation())
 *
 * @Controller('articles')
 * class ArticlesController {
 *   @Get(':id')
 *   @UseInterceptors(cacheFor({ minutes: 5 }), vary('Accept-Language'))
 *   find(@Param('id') id: string) { ... }
 * }
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { CallHandler, ExecutionContext, NestInterceptor } from '@nestjs/common'
import { defer, type Observable, of, switchMap, tap } from 'rxjs'
import { bodilessStatus } from '../../core/headers.js'
import { type HeaderHelpers, type HeaderModifier, headerHelpers } from '../../http/directives.js'
import type { HeaderBag } from '../../http/headers.js'
import type { Validators } from '../../http/semantics.js'
import type { HttpResponse } from '../../http/shared-cache.js'
import { bodyETag, checkPreconditions, type ValidationOptions } from '../../http/validate.js'
import {
  httpCache as expressHttpCache,
  validation as expressValidation,
  type HttpMiddleware,
} from '../express/http.js'
import { queueModifier } from '../shared/intercept.js'

export type { HttpMiddleware, ValidationOptions }

/**
 * What the header helpers and {@link preconditions} return: an interceptor
 * instance, for `@UseInterceptors(...)` on a handler or a controller, or
 * `app.useGlobalInterceptors(...)`. Outside HTTP (microservices, GraphQL
 * resolvers) it does nothing.
 */
export type HttpInterceptor = NestInterceptor

/** The platform's response: Express's `res` is a `ServerResponse`; Fastify's `reply` has it as `raw`. */
function rawResponse(context: ExecutionContext): ServerResponse {
  const res = context.switchToHttp().getResponse<{ raw?: ServerResponse }>()
  return res.raw ?? (res as ServerResponse)
}

/**
 * A header modifier as an interceptor: queued on the response, applied when
 * its head is written (or it is captured), unless the handler failed.
 */
class HeaderInterceptor implements NestInterceptor {
  readonly #modifier: HeaderModifier
  constructor(modifier: HeaderModifier) {
    this.#modifier = modifier
  }
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle()
    // An exception filter answers from inside the route, where `httpCache()` cannot tell it
    // from the handler's answer (Express's error handlers it can): the route's freshness is
    // kept off that answer, so it is neither stored nor cached downstream.
    let failed = false
    const modifier = this.#modifier
    queueModifier(rawResponse(context), (headers, now) => {
      if (!failed) modifier(headers, now)
    })
    return next.handle().pipe(
      tap({
        error: () => {
          failed = true
        },
      }),
    )
  }
}

/**
 * The header helpers, as interceptors. Several on one handler apply in the
 * order `@UseInterceptors` lists them (controller's first, then the
 * handler's), the innermost winning, as route middleware do in Express:
 * `@UseInterceptors(cacheControl({ public: true }), cacheFor({ days: 1 }))`.
 * They apply to what the handler answers, not to an exception filter's
 * answer when it throws (see {@link httpCache}). Bad options throw a
 * `ConfigError` when the class is defined.
 */
type Helpers = HeaderHelpers<HttpInterceptor>
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
}: Helpers = headerHelpers((modifier) => new HeaderInterceptor(modifier))

/** An answer of the core as a web `Response`, which Nest sends as it is (status, headers and body). */
function webResponse(answer: HttpResponse): Response {
  const headers = new Headers()
  for (const [name, value] of answer.headers) headers.append(name, value)
  const body =
    answer.body === undefined || answer.body.length === 0 || bodilessStatus(answer.status)
      ? null
      : (answer.body as Uint8Array<ArrayBuffer>)
  return new Response(body, { status: answer.status, headers })
}

/**
 * Preconditions for unsafe methods (RFC 9110 §13.2), as an interceptor:
 * `validatorsOf(req, context)` gives the current representation's ETag
 * and/or Last-Modified (`req` is the platform's request, with `req.params`);
 * a failed `If-Match` or `If-Unmodified-Since` (or a matching
 * `If-None-Match`) is answered 412 before the handler runs, so a lost update
 * never happens. Guards run before it; pipes and the handler after it.
 *
 * @typeParam Req - the request `validatorsOf` receives (Express's `Request`)
 * @example
 * @Put(':id')
 * @UseInterceptors(preconditions<Request>((req) => docs.versionOf(req.params.id)))
 * save(@Param('id') id: string, @Body() doc: Doc) { ... }
 */
export function preconditions<Req = IncomingMessage>(
  validatorsOf: (req: Req, context: ExecutionContext) => Validators | Promise<Validators>,
): HttpInterceptor {
  if (typeof validatorsOf !== 'function') {
    throw new TypeError('cachette/nestjs: preconditions(validatorsOf) needs a function')
  }
  return {
    intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
      if (context.getType() !== 'http') return next.handle()
      const req = context.switchToHttp().getRequest<Req & { raw?: IncomingMessage }>()
      const raw = (req.raw ?? req) as IncomingMessage
      return defer(async () => validatorsOf(req, context)).pipe(
        switchMap((validators) => {
          const answer = checkPreconditions(
            { method: raw.method as string, headers: raw.headers as HeaderBag },
            validators,
          )
          return answer === undefined ? next.handle() : of(webResponse(answer))
        }),
      )
    },
  }
}

/**
 * Validation for GET and HEAD, as middleware for `app.use(validation())`
 * (Express platform): adds an ETag to 200 responses that have none, then
 * answers `If-None-Match` (weak comparison) and `If-Modified-Since` with a
 * 304 carrying the headers RFC 9110 §15.4.5 requires, and `If-Match` /
 * `If-Unmodified-Since` with 412. Turn Express's own ETags off
 * (`app.set('etag', false)`), or they are there before validation looks.
 * Express does not hand the body of a HEAD over, so a HEAD gets an ETag only
 * from the route itself or a stored GET.
 */
export function validation(options: ValidationOptions = {}): HttpMiddleware {
  return expressValidation(options)
}

/**
 * The RFC 9111 shared response cache, as middleware for
 * `app.use(httpCache(...))` (Express platform), in front of every route (see
 * `cachette/express`'s `httpCache` and `HttpCache`): stored responses are
 * answered without running the controller, misses run it and store what the
 * RFC allows, stale entries are revalidated, unsafe methods invalidate.
 * Register it before `validation()`.
 *
 * Express's error handlers never have their answer stored; Nest's
 * exception filters answer from inside the route, so `httpCache()` cannot
 * tell their answer from the handler's. The header helpers therefore keep
 * their headers off a handler that throws (a `cacheFor()` route's 500 goes
 * out without its `max-age`, and is not stored), but headers the handler or
 * the filter set themselves (`@Header('Cache-Control', ...)`) are the
 * response's, and may make it storable.
 */
export const httpCache: typeof expressHttpCache = expressHttpCache

export { bodyETag }
