/**
 * The two Express apps the httpcache group loads, run in a child process so
 * that the load generator and the servers each get an event loop (and a
 * core) of their own. Both answer `GET /page` with the same ~2 KB HTML page
 * and `Cache-Control: public, max-age=3600`, set by the route itself:
 *
 * - the direct app: the route and nothing else (the limit, and the origin
 *   Varnish sits in front of);
 * - the cached app: `app.use(httpCache({ cache }))` (a SimpleCache) in front
 *   of the same route.
 *
 * It reports `{ type: 'ready', directPort, cachedPort, bodyLength }` over
 * IPC, answers `{ type: 'stats' }` with how often each route ran (the direct
 * route's calls split by whether the request came from Varnish: Varnish adds
 * `X-Varnish` to its backend requests), and exits on `{ type: 'exit' }`.
 *
 * The page is bench/lib/page.ts's, as every HTTP group serves.
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import { httpCache } from '../../src/frameworks/express/index.js'
import { Cache } from '../../src/index.js'
import { page } from '../lib/page.js'

export const ROUTE = '/page'
export const CACHE_CONTROL = 'public, max-age=3600'

/** How often the route ran, per app (`varnish`: direct-app requests Varnish sent). */
export interface Calls {
  direct: number
  varnish: number
  cached: number
}

function listen(app: express.Express): Promise<Server> {
  return new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => resolve(server))
  })
}

async function main(): Promise<void> {
  const body = page()
  const calls: Calls = { direct: 0, varnish: 0, cached: 0 }

  const direct = express()
  direct.get(ROUTE, (req, res) => {
    if (req.headers['x-varnish'] === undefined) calls.direct++
    else calls.varnish++
    res.set('Cache-Control', CACHE_CONTROL)
    res.send(body)
  })

  const cached = express()
  cached.use(httpCache({ cache: new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_THRESHOLD: 10000 }) }))
  cached.get(ROUTE, (_req, res) => {
    calls.cached++
    res.set('Cache-Control', CACHE_CONTROL)
    res.send(body)
  })

  const servers = await Promise.all([listen(direct), listen(cached)])
  const [directServer, cachedServer] = servers
  process.send?.({
    type: 'ready',
    directPort: (directServer.address() as AddressInfo).port,
    cachedPort: (cachedServer.address() as AddressInfo).port,
    bodyLength: Buffer.byteLength(body),
  })
  process.on('message', (message: { type?: string }) => {
    if (message.type === 'stats') process.send?.({ type: 'stats', calls })
    if (message.type === 'exit') {
      let open = servers.length
      for (const server of servers) {
        server.closeAllConnections()
        server.close(() => {
          if (--open === 0) process.exit(0)
        })
      }
    }
  })
  // Never outlive the parent.
  process.on('disconnect', () => process.exit(0))
}

if (process.send !== undefined) void main()
