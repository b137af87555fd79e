/**
 * The Express driver of the HTTP-caching behaviour matrix: `app.use` for the
 * shared cache and validation, the header helpers as route middleware, all
 * from `cachette/express`.
 */
import express, {
  type NextFunction,
  type Request,
  type RequestHandler,
  type Response,
} from 'express'
import * as cachette from '../../src/frameworks/express/index.js'
import { listen } from '../helpers.js'
import { type HttpDriver, helperWith, type StartOptions, validationOptions } from './driver.js'

const helper = helperWith<RequestHandler>(cachette)

/**
 * An Express app (its own ETags off) with the options' shared cache,
 * validation and routes, and an error handler answering 500 (quietly,
 * unlike Express's default).
 */
function expressApp(options: StartOptions): express.Express {
  const app = express()
  app.set('etag', false)
  if (options.httpCache) app.use(cachette.httpCache(options.httpCache))
  const validating = validationOptions(options)
  if (validating) app.use(cachette.validation(validating))
  for (const route of options.routes) {
    const path = route.path === '*' ? /.*/ : route.path
    const method = route.method.toLowerCase() as 'get' | 'post' | 'put' | 'delete'
    app[method](path, ...(route.helpers ?? []).map(helper), async (req: Request, res: Response) => {
      const answer = await route.handler({
        method: req.method,
        url: req.originalUrl,
        headers: req.headers,
      })
      if (answer.earlyHints) res.writeEarlyHints(answer.earlyHints)
      if (answer.status !== undefined) res.status(answer.status)
      for (const [name, value] of Object.entries(answer.headers ?? {})) res.setHeader(name, value)
      res.send(answer.body)
    })
  }
  app.use((_err: Error, _req: Request, res: Response, _next: NextFunction) => {
    res.status(500).send('error')
  })
  return app
}

/** Express 5. */
export const expressDriver: HttpDriver = {
  name: 'express',
  headGetsETag: false,
  helper,
  start: (options) => listen(expressApp(options)),
}
