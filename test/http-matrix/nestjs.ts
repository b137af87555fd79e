/**
 * The NestJS drivers of the HTTP-caching behaviour matrix: a Nest 12 app on
 * `@nestjs/platform-express`, with `app.use()` for the shared cache and
 * validation from `cachette/nestjs`, and one on `@nestjs/platform-fastify`,
 * with `cachette/fastify`'s plugins registered on the Fastify instance (as
 * the README says: the Nest middleware are Express's). The routes are a
 * controller built at run time with Nest's own decorators applied by hand
 * (`Get(path)(proto, name, descriptor)`), the header helpers and
 * `preconditions` as `@UseInterceptors(...)` from `cachette/nestjs` on both.
 * Errors are left to Nest's own exception filter (500).
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
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify'
import type { Request, Response } from 'express'
import type { FastifyReply, FastifyRequest } from 'fastify'
import * as fastifyCachette from '../../src/frameworks/fastify/index.js'
import * as cachette from '../../src/frameworks/nestjs/index.js'
import type { Listening } from '../helpers.js'
import { type HttpDriver, helperWith, type StartOptions, validationOptions } from './driver.js'

const helper = helperWith<NestInterceptor>(cachette)

const METHODS = { GET: Get, POST: Post, PUT: Put, DELETE: Delete } as const

/** Nest's two HTTP platforms. */
type Platform = 'express' | 'fastify'

/** The request and response a handler gets on `platform`, as the matrix's handlers need them. */
interface Exchange {
  readonly method: string
  readonly url: string
  readonly headers: Request['headers']
  earlyHints(hints: Record<string, string | string[]>): void
  status(code: number): void
  header(name: string, value: string | string[]): void
}

function exchange(platform: Platform, req: unknown, res: unknown): Exchange {
  if (platform === 'express') {
    const q = req as Request
    const r = res as Response
    return {
      method: q.method,
      url: q.originalUrl,
      headers: q.headers,
      earlyHints: (hints) => r.writeEarlyHints(hints),
      status: (code) => void r.status(code),
      header: (name, value) => void r.setHeader(name, value),
    }
  }
  const q = req as FastifyRequest
  const r = res as FastifyReply
  return {
    method: q.method,
    url: q.url,
    headers: q.headers,
    earlyHints: (hints) => void r.writeEarlyHints(hints),
    status: (code) => void r.code(code),
    header: (name, value) => void r.header(name, value),
  }
}

/**
 * A Nest app on `platform` (Express's own ETags off) with the options'
 * shared cache, validation and routes, listening on a free loopback port.
 */
async function nestApp(platform: Platform, options: StartOptions): Promise<Listening> {
  class HttpMatrixController {}
  Controller()(HttpMatrixController)
  const proto = HttpMatrixController.prototype
  for (const [i, route] of options.routes.entries()) {
    const name = `route${i}`
    const handler = async function (this: unknown, req: unknown, res: unknown) {
      const x = exchange(platform, req, res)
      const answer = await route.handler({ method: x.method, url: x.url, headers: x.headers })
      if (answer.earlyHints) x.earlyHints(answer.earlyHints)
      if (answer.status !== undefined) x.status(answer.status)
      for (const [header, value] of Object.entries(answer.headers ?? {})) x.header(header, value)
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
    // `*` is every path, the root included: path-to-regexp 8's named wildcard on Express,
    // find-my-way's `*` on Fastify.
    const wildcard = platform === 'express' ? '{*path}' : '*'
    METHODS[route.method](route.path === '*' ? wildcard : route.path)(proto, name, descriptor)
  }
  class HttpMatrixModule {}
  Module({ controllers: [HttpMatrixController] })(HttpMatrixModule)

  const nestOptions = { logger: false, abortOnError: false } as const
  const validating = validationOptions(options)
  let app: NestExpressApplication | NestFastifyApplication
  if (platform === 'express') {
    const express = await NestFactory.create<NestExpressApplication>(
      HttpMatrixModule,
      new ExpressAdapter(),
      nestOptions,
    )
    express.set('etag', false)
    if (options.httpCache) express.use(cachette.httpCache(options.httpCache))
    if (validating) express.use(cachette.validation(validating))
    app = express
  } else {
    const fastify = await NestFactory.create<NestFastifyApplication>(
      HttpMatrixModule,
      new FastifyAdapter(),
      nestOptions,
    )
    const instance = fastify.getHttpAdapter().getInstance()
    if (options.httpCache) await instance.register(fastifyCachette.httpCache(options.httpCache))
    if (validating) await instance.register(fastifyCachette.validation(validating))
    app = fastify
  }
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
  start: (options) => nestApp('express', options),
}

/** NestJS 12 on Fastify. */
export const nestjsFastifyDriver: HttpDriver = {
  name: 'nestjs-fastify',
  // Fastify underneath: its HEAD route runs the GET handler, so validation sees the body.
  headGetsETag: true,
  helper,
  start: (options) => nestApp('fastify', options),
}
