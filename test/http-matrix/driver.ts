/**
 * The contract between the HTTP-caching behaviour matrix
 * (test/http-matrix.test.ts) and one framework: a driver starts a real
 * server on a free loopback port with the shared cache and validation its
 * test asks for, and routes described framework-neutrally, each written with
 * that framework's own API and its `cachette/<framework>` header helpers.
 */
import {
  type CacheControlDirectives,
  type Duration,
  HttpCache,
  type HttpCacheOptions,
  type Validators,
} from '../../src/http/index.js'
import { Cache } from '../../src/index.js'
import { eventually, type Listening, silentLogger } from '../helpers.js'

/**
 * A header helper of the adapters, framework-neutral: the driver turns it
 * into `cacheFor(duration)`, `cacheControl(directives)`, `noStore()`,
 * `vary(...fields)` or `preconditions(() => validators)` from its framework's
 * module, and mounts it on the route the way that framework's users do.
 */
export type Helper =
  | { kind: 'cacheFor'; duration: Duration }
  | { kind: 'cacheControl'; directives: CacheControlDirectives }
  | { kind: 'noStore' }
  | { kind: 'vary'; fields: string[] }
  | { kind: 'preconditions'; validators: Validators }

export const cacheFor = (duration: Duration): Helper => ({ kind: 'cacheFor', duration })
export const cacheControl = (directives: CacheControlDirectives): Helper => ({
  kind: 'cacheControl',
  directives,
})
export const noStore = (): Helper => ({ kind: 'noStore' })
export const vary = (...fields: string[]): Helper => ({ kind: 'vary', fields })
export const preconditions = (validators: Validators): Helper => ({
  kind: 'preconditions',
  validators,
})

/** The header helper factories every adapter's module exports, each making an `M`. */
export interface HelperFactories<M> {
  cacheFor(duration: Duration): M
  cacheControl(directives: CacheControlDirectives): M
  noStore(): M
  vary(...fields: string[]): M
  preconditions(validatorsOf: () => Validators): M
}

/** Turns a {@link Helper} into the framework's middleware (or hook), with its module's `factories`. */
export function helperWith<M>(factories: HelperFactories<M>): (helper: Helper) => M {
  return (h) => {
    switch (h.kind) {
      case 'cacheFor':
        return factories.cacheFor(h.duration)
      case 'cacheControl':
        return factories.cacheControl(h.directives)
      case 'noStore':
        return factories.noStore()
      case 'vary':
        return factories.vary(...h.fields)
      case 'preconditions':
        return factories.preconditions(() => h.validators)
    }
  }
}

/** The request as a route's handler sees it, whatever the framework. */
export interface RouteRequest {
  method: string
  /** The path and query of the request line. */
  url: string
  /** The request headers, lower-case names. */
  headers: Record<string, string | string[] | undefined>
}

/**
 * What a handler answers: the driver sets `status` (when given) and
 * `headers` with the framework's own calls, then sends `body` as the
 * framework sends text (its default Content-Type unless `headers` has one).
 */
export interface RouteResponse {
  status?: number
  headers?: Record<string, string>
  body: string
  /**
   * A `103 Early Hints` to send before the final response (a `link` is
   * required, as Node's `writeEarlyHints` skips hints without one), the way
   * the framework's users send it: Express's `res.writeEarlyHints`,
   * Fastify's `reply.writeEarlyHints`, Koa's `ctx.res.writeEarlyHints`,
   * Hono's through `@hono/node-server`'s `c.env.outgoing`.
   */
  earlyHints?: Record<string, string | string[]>
}

/** One route. A handler that throws (or rejects) goes to the framework's own error handling. */
export interface RouteSpec {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE'
  /** A path, or `*` for every path. GET routes answer HEAD too, as in every framework. */
  path: string
  /** The header helpers, in the order they run. */
  helpers?: Helper[]
  handler(req: RouteRequest): RouteResponse | Promise<RouteResponse>
}

/** Options of `validation()`, the same in every adapter. */
export interface ValidationOptions {
  etag?: boolean
  maxBodyBytes?: number
}

/** How to start a server. */
export interface StartOptions {
  /** Put the shared cache `httpCache(engine)` in front of everything. */
  httpCache?: HttpCache
  /** Put `validation(options)` in front of the routes (after the shared cache). */
  validation?: boolean | ValidationOptions
  routes: RouteSpec[]
}

/** One framework. */
export interface HttpDriver {
  readonly name: string
  /**
   * Whether validation sees the body of a HEAD request to a GET route, so a
   * HEAD gets the GET's ETag: Fastify and Hono run the GET handler for HEAD
   * and drop the body afterwards, Koa leaves the body on `ctx`; Express does
   * not hand a HEAD's body over, so only a route's own ETag (or a stored GET)
   * gives a HEAD one.
   */
  readonly headGetsETag: boolean
  /** The framework's middleware (or hook) for `helper`; throws as the framework's factory does. */
  helper(helper: Helper): unknown
  start(options: StartOptions): Promise<Listening>
}

/** `validation`'s options from a {@link StartOptions}, `undefined` for none. */
export function validationOptions(options: StartOptions): ValidationOptions | undefined {
  if (options.validation === undefined || options.validation === false) return undefined
  return options.validation === true ? {} : options.validation
}

/** The `Cache` the HTTP tests store in. */
export function newCache(): Cache {
  return new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_THRESHOLD: 10_000, logger: silentLogger })
}

/** A shared cache on a new {@link newCache}. */
export function newEngine(options: Partial<HttpCacheOptions> = {}): HttpCache {
  return new HttpCache({ cache: newCache(), ...options })
}

/** Per-path call counts for handlers: `count(path)` records a call and returns its number. */
export function counter() {
  const calls = new Map<string, number>()
  const count = (path: string) => {
    const n = (calls.get(path) ?? 0) + 1
    calls.set(path, n)
    return n
  }
  return { calls, count }
}

/**
 * Waits until `engine` holds a fresh response for a GET of `path` on the
 * server at `port` with the request `headers` (a miss is stored once its
 * response has been sent, without delaying it).
 */
export async function storedIn(
  engine: HttpCache,
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<void> {
  await eventually(
    async () =>
      (
        await engine.lookup({
          method: 'GET',
          url: path,
          host: `127.0.0.1:${port}`,
          headers: { ...headers },
        })
      ).kind === 'hit',
    5000,
    `the response to ${path} stored`,
  )
}
