/**
 * Outer middleware for the security tests: what a request's `X-Outer` header
 * asks for is done to a `node:http` response before the route runs, the way
 * an auth layer (`Cache-Control: private`) or a session (`Set-Cookie`, before
 * the route or as the head is written) does it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { MiddlewareHandler } from 'hono'

/** What the outer middleware does. */
export type Outer = 'private' | 'no-store' | 'cookie' | 'late-cookie'

/** The on-headers pattern (express-session): a header added when the response's head is written. */
export function atHeaderWrite(res: ServerResponse, name: string, value: string): void {
  const writeHead = res.writeHead
  res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    this.setHeader(name, value)
    return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args)
  } as ServerResponse['writeHead']
}

/** Does to `res` what the request's `X-Outer` asks for (the cookie names the request's `X-User`). */
export function outerNode(req: IncomingMessage, res: ServerResponse): void {
  const outer = req.headers['x-outer'] as Outer | undefined
  const user = String(req.headers['x-user'] ?? 'anon')
  if (outer === 'private') res.setHeader('Cache-Control', 'private')
  if (outer === 'no-store') res.setHeader('Cache-Control', 'no-store')
  if (outer === 'cookie') res.setHeader('Set-Cookie', `sid=${user}`)
  if (outer === 'late-cookie') atHeaderWrite(res, 'Set-Cookie', `sid=${user}`)
}

/**
 * The same for Hono: headers set before `await next()` (on the response the
 * route builds), and the late cookie appended to the final `c.res` after it.
 */
export const outerHono: MiddlewareHandler = async (c, next) => {
  const outer = c.req.header('x-outer') as Outer | undefined
  const user = c.req.header('x-user') ?? 'anon'
  if (outer === 'private') c.header('Cache-Control', 'private')
  if (outer === 'no-store') c.header('Cache-Control', 'no-store')
  if (outer === 'cookie') c.header('Set-Cookie', `sid=${user}`)
  await next()
  if (outer === 'late-cookie') c.res.headers.append('Set-Cookie', `sid=${user}-late`)
}
