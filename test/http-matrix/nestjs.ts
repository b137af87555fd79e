/**
 * The NestJS driver of the HTTP-caching behaviour matrix: a Nest 12 app on
 * `@nestjs/platform-express`, with `app.use()` for the shared cache and
 * validation, and the routes a controller built at run time with Nest's
 * own decorators applied by hand (`Get(path)(proto, name, descriptor)`), the
 * header helpers and `preconditions` as `@UseInterceptors(...)`, all from
 * `cachette/nestjs`. Errors are left to Nest's own exception filter (500).
 *
 * Where Nest differs from Express, the framework's own defaults stay: a POST
 * route answers 201 unless the route gives a status (Nest's default for
 * POST). Nest's exception filter answers a handler that throws from inside
 * the route, so the header helpers keep their headers off that answer (it
 * would otherwise be stored: Express's error handlers `httpCache()` can tell
 * apart, Nest's filters not); Express sends its error handler's 500 with
 * them. No shared assertion depends on either.
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  Controller,
  Delete,
  Get,
  Module,
  type NestInterceptor,
  Post,
  Put,
  Req,
  Res,
  UseInterceptors,
} from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import { ExpressAdapter, type NestExpressApplication } from '@nestjs/platform-express'
import type { Request, Response } from 'express'
import * as cachette from '../../src/frameworks/nestjs/index.js'
import type { Listening } from '../helpers.js'
import { type HttpDriver, helperWith, type StartOptions, validationOptions } from './driver.js'

const helper = helperWith<NestInterceptor>(cachette)

const METHODS = { GET: Get, POST: Post, PUT: Put, DELETE: Delete } as const

/**
 * A Nest app (Express's own ETags off) with the options' shared cache,
 * validation and routes, listening on a free loopback port.
 */
async function nestApp(options: StartOptions): Promise<Listening> {
  class HttpMatrixController {}
  Controller()(HttpMatrixController)
  const proto = HttpMatrixController.prototype
  for (const [i, route] of options.routes.entries()) {
    const name = `route${i}`
    const handler = async function (this: unknown, req: Request, res: Response) {
      const answer = await route.handler({
        method: req.method,
        url: req.originalUrl,
        headers: req.headers,
      })
      if (answer.earlyHints) res.writeEarlyHints(answer.earlyHints)
      if (answer.status !== undefined) res.status(answer.status)
      for (const [header, value] of Object.entries(answer.headers ?? {})) {
        res.setHeader(header, value)
      }
      return answer.body
    }
    // Nest reads a handler's parameter metadata by its name.
    Object.defineProperty(handler, 'name', { value: name })
    Object.defineProperty(proto, name, { value: handler, writable: true, configurable: true })
    Req()(proto, name, 0)
    Res({ passthrough: true })(proto, name, 1)
    const descriptor = Object.getOwnPropertyDescriptor(proto, name) as PropertyDescriptor
    // As written above the method: @Get(path) @UseInterceptors(...helpers), applied bottom-up.
    const helpers = (route.helpers ?? []).map(helper)
    if (helpers.length > 0) UseInterceptors(...helpers)(proto, name, descriptor)
    // `*` is every path, the root included (path-to-regexp 8's named wildcard).
    METHODS[route.method](route.path === '*' ? '{*path}' : route.path)(proto, name, descriptor)
  }
  class HttpMatrixModule {}
  Module({ controllers: [HttpMatrixController] })(HttpMatrixModule)

  const app = await NestFactory.create<NestExpressApplication>(
    HttpMatrixModule,
    new ExpressAdapter(),
    { logger: false, abortOnError: false },
  )
  app.set('etag', false)
  if (options.httpCache) app.use(cachette.httpCache(options.httpCache))
  const validating = validationOptions(options)
  if (validating) app.use(cachette.validation(validating))
  await app.listen(0, '127.0.0.1')
  const server = app.getHttpServer() as Server
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      server.closeAllConnections()
      await app.close()
    },
  }
}

/** NestJS 12 on Express. */
export const nestjsDriver: HttpDriver = {
  name: 'nestjs',
  // Express underneath: validation is not handed the body of a HEAD.
  headGetsETag: false,
  helper,
  start: nestApp,
}
