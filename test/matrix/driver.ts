/**
 * The contract between the view-caching behaviour matrix (test/matrix.test.ts)
 * and one framework: a driver starts a real server on a free loopback port
 * with the routes a test describes, each implemented the way that framework's
 * users write them, with that framework's cachette adapter.
 */
import { once } from 'node:events'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Cache } from '../../src/index.js'

/**
 * The view-caching options the matrix uses, framework-neutral. Callbacks
 * receive nothing the matrix relies on; drivers pass them through to the
 * adapter unchanged (as `options` of `cached(cache, options)`).
 */
export interface MatrixOptions {
  timeout?: number | string
  keyPrefix?: string | ((...args: never[]) => string)
  queryString?: boolean
  unless?: (...args: never[]) => boolean
  forcedUpdate?: (...args: never[]) => boolean
  isStale?: (...args: never[]) => boolean
  responseFilter?: (...args: never[]) => unknown
  responseHitIndication?: boolean
  allowAuthorized?: boolean
  cacheStatuses?: number[]
  grace?: number | string
  tags?: string[]
  lock?: boolean
}

/**
 * What a route's handler does. `n` below is how many times this route's
 * handler has run (1 on the first call), so a replayed response shows the
 * `n` of the call that was stored.
 *
 * - `text`: 200, `Content-Type: text/plain; charset=utf-8`, body `${label}#${n}`.
 * - `json`: 200, the framework's JSON response of `{ label, n }`.
 * - `binary`: 200, `Content-Type: application/octet-stream`, body
 *   {@link binaryBody}(n) (64 KiB, byte-exact comparisons).
 * - `stream`: 200, `Content-Type: text/plain; charset=utf-8`, body streamed
 *   as three chunks `${label}#${n}|`, `middle|`, `end` with a few ms between
 *   them, using the framework's streaming API (a Node Readable for Express,
 *   Fastify and Koa; a ReadableStream / `stream()` helper for Hono).
 * - `status`: status `status`, header `X-Custom: yes`, text body `${label}#${n}`.
 * - `cookie`: 200, header `Set-Cookie: session=abc`, text body `${label}#${n}`.
 * - `throw`: the handler throws `new Error('boom ' + label)` (or rejects, for
 *   async handlers); the framework's own error handling answers. The driver
 *   installs the framework's idiomatic error handler, which answers 500 with
 *   header `X-Error-Handler: <error message>` and body `error`.
 * - `timeout`: like `text`, and sets a per-response timeout of
 *   `responseTimeout` seconds with the adapter's `setCacheTimeout`.
 * - `call`: 200, text body `await fn()` (for memoize inside a request).
 */
export type Responder =
  | { kind: 'text' | 'json' | 'binary' | 'stream' | 'cookie' | 'throw' }
  | { kind: 'status'; status: number }
  | { kind: 'timeout'; responseTimeout: number }
  | { kind: 'call'; fn: () => Promise<string> }

/** One route: GET (and so HEAD) on `path`, cached with `options` (`null`: not cached), answering per `respond`. */
export interface RouteSpec {
  path: string
  label: string
  options: MatrixOptions | null
  respond: Responder
}

/** How to start a server. */
export interface StartOptions {
  /**
   * When given, the driver calls `cache.initApp(app, initApp)` right after
   * creating the app (before registering routes), having imported the
   * framework's cachette module, so the app's requests use the app's backend.
   */
  initApp?: Record<string, unknown>
}

/** A running server. */
export interface Running {
  /** `http://127.0.0.1:<port>` */
  url: string
  /** How many times each route's handler ran, by path. */
  calls: Map<string, number>
  close(): Promise<void>
}

/** One framework. */
export interface FrameworkDriver {
  readonly name: string
  /** Starts a server with `routes`, each behind the adapter's view cache on `cache`. */
  start(cache: Cache, routes: readonly RouteSpec[], options?: StartOptions): Promise<Running>
}

/** The 64 KiB body of a `binary` route's `n`th call: every byte value, with `n` in the first byte. */
export function binaryBody(n: number): Buffer {
  const out = Buffer.alloc(64 * 1024)
  for (let i = 0; i < out.length; i++) out[i] = (i * 31 + 7) % 256
  out[0] = n % 256
  return out
}

/** The chunks a `stream` route sends. */
export function streamChunks(label: string, n: number): string[] {
  return [`${label}#${n}|`, 'middle|', 'end']
}

/** Counts a handler call for `path` and returns its number. */
export function count(calls: Map<string, number>, path: string): number {
  const n = (calls.get(path) ?? 0) + 1
  calls.set(path, n)
  return n
}

/** The {@link Running} of a node:http server (waits until it listens; `close` drops open connections). */
export async function runningOn(server: Server, calls: Map<string, number>): Promise<Running> {
  if (!server.listening) await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()))
        server.closeAllConnections()
      }),
  }
}
