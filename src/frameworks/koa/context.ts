/**
 * The Koa context and `next` as the adapter types them (Koa's own types
 * are not needed to compile): shared by the view cache (index.ts) and the
 * HTTP caching middleware (http.ts, capture.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'

/**
 * The parts of a Koa context the adapter reads and writes. Koa's own
 * `Context` (and `ParameterizedContext` with any state) satisfies it; it is
 * spelled out here so that `cachette/koa` needs no Koa types to compile.
 */
export interface KoaContext {
  /** The Koa application serving the request (the current app for `memoize`). */
  readonly app: object
  /** The `node:http` request. */
  readonly req: IncomingMessage
  /** The `node:http` response. */
  readonly res: ServerResponse
  /** The request method. */
  readonly method: string
  /** The URL as received, before any `koa-mount` rewrote `ctx.url`. */
  readonly originalUrl: string
  /** The URL the router sees (rewritten by koa-mount or a rewrite middleware). */
  readonly url: string
  /** The prefix koa-mount stripped from `ctx.url`. */
  readonly mountPath?: string
  /** The response status. */
  status: number
  /** The response status message. */
  readonly message: string
  /** The response body. */
  body: unknown
  /** `false` when the app writes to `ctx.res` itself, bypassing Koa's response handling. */
  respond?: boolean | undefined
  /** Whether the response can still be written. */
  readonly writable: boolean
  /** Sets a response header. */
  set(field: string, val: string | string[]): void
  /** Removes a response header. */
  remove(field: string): void
}

/** Koa's `next`. */
export type KoaNext = () => Promise<unknown>
