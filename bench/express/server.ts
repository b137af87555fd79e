/**
 * The Express app the express group loads, run in a child process so that the
 * load generator and the server each get an event loop (and a core) of their
 * own. One app, three routes sending the same ~2 KB HTML body:
 *
 * - `/limit`: `res.send(body)`, no caching (the limit);
 * - `/cached`: cachette's `cache.cached({ timeout: 300 })` in front of it;
 * - `/apicache`: `apicache.middleware('5 minutes')` in front of it.
 *
 * It reports `{ type: 'ready', port }` over IPC, answers `{ type: 'stats' }`
 * with how often each handler ran, and exits on `{ type: 'exit' }`.
 */
import type { AddressInfo } from 'node:net'
import apicache from 'apicache'
import express from 'express'
import { Cache } from '../../src/index.js'
import { page } from '../lib/page.js'

export const ROUTES = ['/limit', '/cached', '/apicache'] as const

async function main(): Promise<void> {
  const body = page()
  const calls: Record<string, number> = { '/limit': 0, '/cached': 0, '/apicache': 0 }
  const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
  const app = express()

  app.get('/limit', (_req, res) => {
    calls['/limit'] = (calls['/limit'] ?? 0) + 1
    res.send(body)
  })
  app.get('/cached', cache.cached({ timeout: 300 }), (_req, res) => {
    calls['/cached'] = (calls['/cached'] ?? 0) + 1
    res.send(body)
  })
  app.get('/apicache', apicache.middleware('5 minutes'), (_req, res) => {
    calls['/apicache'] = (calls['/apicache'] ?? 0) + 1
    res.send(body)
  })

  const server = app.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo
    process.send?.({ type: 'ready', port, bodyLength: Buffer.byteLength(body) })
  })
  process.on('message', (message: { type?: string }) => {
    if (message.type === 'stats') process.send?.({ type: 'stats', calls })
    if (message.type === 'exit') {
      server.closeAllConnections()
      server.close(() => process.exit(0))
    }
  })
  // Never outlive the parent.
  process.on('disconnect', () => process.exit(0))
}

if (process.send !== undefined) void main()
