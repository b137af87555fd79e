import { Readable } from 'node:stream'
import express, { type NextFunction, type Request, type Response } from 'express'
import { cached, setCacheTimeout } from '../../src/frameworks/express/index.js'
import type { Cache } from '../../src/index.js'
import {
  binaryBody,
  count,
  type FrameworkDriver,
  type RouteSpec,
  type Running,
  runningOn,
  type StartOptions,
  streamChunks,
} from './driver.js'

/** The behaviour-matrix driver for Express 5, with `cached(cache, options)` from `cachette/express`. */
export const expressDriver: FrameworkDriver = {
  name: 'express',
  async start(
    cache: Cache,
    routes: readonly RouteSpec[],
    options?: StartOptions,
  ): Promise<Running> {
    const app = express()
    if (options?.initApp) cache.initApp(app, options.initApp)
    const calls = new Map<string, number>()
    for (const route of routes) {
      const handler = async (_req: Request, res: Response) => {
        const n = count(calls, route.path)
        const text = `${route.label}#${n}`
        const r = route.respond
        switch (r.kind) {
          case 'text':
            res.type('text/plain; charset=utf-8').send(text)
            return
          case 'json':
            res.json({ label: route.label, n })
            return
          case 'binary':
            res.type('application/octet-stream').send(binaryBody(n))
            return
          case 'stream': {
            res.type('text/plain; charset=utf-8')
            const chunks = streamChunks(route.label, n)
            Readable.from(
              (async function* () {
                for (const c of chunks) {
                  yield c
                  await new Promise((resolve) => setTimeout(resolve, 3))
                }
              })(),
            ).pipe(res)
            return
          }
          case 'status':
            res.status(r.status).set('X-Custom', 'yes').type('text/plain; charset=utf-8').send(text)
            return
          case 'cookie':
            res.cookie('session', 'abc').type('text/plain; charset=utf-8').send(text)
            return
          case 'throw':
            throw new Error(`boom ${route.label}`)
          case 'timeout':
            setCacheTimeout(res, r.responseTimeout)
            res.type('text/plain; charset=utf-8').send(text)
            return
          case 'call':
            res.type('text/plain; charset=utf-8').send(await r.fn())
            return
        }
      }
      if (route.options === null) app.get(route.path, handler)
      else app.get(route.path, cached(cache, route.options as never), handler)
    }
    app.use((err: Error, _req: Request, res: Response, _next: NextFunction) => {
      res.status(500).set('X-Error-Handler', err.message).send('error')
    })
    return runningOn(app.listen(0, '127.0.0.1'), calls)
  },
}
