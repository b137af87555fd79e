// apicache ships no type declarations; this covers what the benchmark uses.
declare module 'apicache' {
  import type { RequestHandler } from 'express'

  interface ApiCache {
    middleware(
      duration?: string | number,
      toggle?: unknown,
      options?: Record<string, unknown>,
    ): RequestHandler
    clear(target?: string): unknown
    options(options: Record<string, unknown>): ApiCache
  }
  const apicache: ApiCache
  export default apicache
}
