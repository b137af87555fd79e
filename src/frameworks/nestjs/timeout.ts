/**
 * `setCacheTimeout` for NestJS: a per-response timeout for `@Cached()`
 * handlers, on the Express and the Fastify platform.
 */
import type { Timeout } from '../../core/duration.js'
import { setResponseTimeout } from '../../core/view/index.js'

/**
 * Sets how long the response being built is cached by `@Cached()`,
 * overriding its `timeout` (Flask-Caching's `CachedResponse(response,
 * timeout)`). Take the response with `@Res({ passthrough: true })`, so Nest
 * still sends what the handler returns, and call it before returning.
 * `undefined` or `0` falls back to the decorator's timeout; `cacheStatuses`,
 * `responseFilter` and the other rules still decide whether it is stored.
 *
 * @param res - the platform's response: Express's `Response`, or Fastify's
 *   `FastifyReply` (its `raw` is used)
 * @param timeout - seconds or a duration string (`'30s'`, `'1h'`)
 *
 * @example
 * @Get('feed')
 * @Cached({ timeout: '1h' })
 * async feed(@Res({ passthrough: true }) res: Response) {
 *   const feed = await this.feeds.load()
 *   setCacheTimeout(res, feed.isLive ? 10 : '1h')
 *   return feed
 * }
 */
export function setCacheTimeout(res: object, timeout: Timeout | undefined): void {
  // The interceptor captures the node:http response: Express's `res` is one; Fastify's reply has it as `raw`.
  const raw = (res as { raw?: unknown }).raw
  setResponseTimeout(typeof raw === 'object' && raw !== null ? raw : res, timeout)
}
