/**
 * The NestJS drivers of the view-caching behaviour matrix: a Nest 12 app on
 * `@nestjs/platform-express` and one on `@nestjs/platform-fastify`, its routes a controller built at run time with
 * Nest's own decorators applied by hand (as `tsc` applies them to a class
 * written with them: `Get(path)(proto, name, descriptor)`), each cached route
 * with `@Cached(options)` from `cachette/nestjs` and the `Cache` from
 * `CachetteModule.forRoot(cache)`. No decorator metadata is needed: the
 * controller has no constructor parameters, and the handlers take `@Req()`
 * and `@Res({ passthrough: true })`. Errors are answered by a global
 * exception filter (`@Catch()`), Nest's idiom for an app's error handler.
 */
import type { Server } from 'node:http'
import { Readable } from 'node:stream'
import {
  type ArgumentsHost,
  Catch,
  Controller,
  type ExceptionFilter,
  Get,
  Header,
  HttpCode,
  Module,
  Res,
  StreamableFile,
} from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import { ExpressAdapter } from '@nestjs/platform-express'
import { FastifyAdapter } from '@nestjs/platform-fastify'
import type { Response } from 'express'
import type { FastifyReply } from 'fastify'
import { Cached, CachetteModule, setCacheTimeout } from '../../src/frameworks/nestjs/index.js'
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

const TEXT = 'text/plain; charset=utf-8'

/** Nest's two HTTP platforms. */
type Platform = 'express' | 'fastify'

/** The platform's response, passed through: Express's `Response` or Fastify's `FastifyReply`. */
type PlatformResponse = Response | FastifyReply

/** A handler as the controller method gets it: the platform's response, passed through. */
type Handler = (res: PlatformResponse) => unknown

/** Sets a cookie the way each platform's users do (Fastify has no cookie helper without a plugin). */
function setSessionCookie(platform: Platform, res: PlatformResponse): void {
  if (platform === 'express') (res as Response).cookie('session', 'abc')
  else (res as FastifyReply).header('set-cookie', 'session=abc; Path=/')
}

/**
 * Defines `proto[name] = handler` with `decorators` (listed top to bottom, as
 * written above a method; applied bottom-up, as TypeScript does) and the
 * `params` decorators on its parameters, in order.
 */
function defineMethod(
  proto: object,
  name: string,
  handler: Handler,
  decorators: MethodDecorator[],
  params: ParameterDecorator[],
): void {
  // Nest reads a handler's parameter metadata by its name.
  Object.defineProperty(handler, 'name', { value: name })
  Object.defineProperty(proto, name, {
    value: handler,
    writable: true,
    configurable: true,
    enumerable: false,
  })
  for (const [i, param] of params.entries()) param(proto, name, i)
  let descriptor = Object.getOwnPropertyDescriptor(proto, name) as PropertyDescriptor
  for (const decorate of [...decorators].reverse()) {
    descriptor = (decorate(proto, name, descriptor) as PropertyDescriptor | undefined) ?? descriptor
  }
  Object.defineProperty(proto, name, descriptor)
}

/** The decorators a route's method has besides `@Get` and `@Cached`, and its handler. */
function handlerFor(
  platform: Platform,
  route: RouteSpec,
  calls: Map<string, number>,
): [MethodDecorator[], Handler] {
  const r = route.respond
  const text = (n: number) => `${route.label}#${n}`
  switch (r.kind) {
    case 'text':
      return [[Header('Content-Type', TEXT)], () => text(count(calls, route.path))]
    case 'json':
      return [[], () => ({ label: route.label, n: count(calls, route.path) })]
    case 'binary':
      return [
        [],
        () =>
          new StreamableFile(binaryBody(count(calls, route.path)), {
            type: 'application/octet-stream',
          }),
      ]
    case 'stream':
      return [
        [],
        () => {
          const chunks = streamChunks(route.label, count(calls, route.path))
          const body = Readable.from(
            (async function* () {
              for (const c of chunks) {
                yield c
                await new Promise((resolve) => setTimeout(resolve, 3))
              }
            })(),
          )
          return new StreamableFile(body, { type: TEXT })
        },
      ]
    case 'status':
      return [
        [HttpCode(r.status), Header('X-Custom', 'yes'), Header('Content-Type', TEXT)],
        () => text(count(calls, route.path)),
      ]
    case 'cookie':
      return [
        [Header('Content-Type', TEXT)],
        (res) => {
          setSessionCookie(platform, res)
          return text(count(calls, route.path))
        },
      ]
    case 'throw':
      return [
        [],
        async () => {
          count(calls, route.path)
          throw new Error(`boom ${route.label}`)
        },
      ]
    case 'timeout':
      return [
        [Header('Content-Type', TEXT)],
        (res) => {
          setCacheTimeout(res, r.responseTimeout)
          return text(count(calls, route.path))
        },
      ]
    case 'call':
      return [
        [Header('Content-Type', TEXT)],
        async () => {
          count(calls, route.path)
          return r.fn()
        },
      ]
  }
}

/** The app's error handler: every exception is answered 500, `X-Error-Handler: <message>`, `error`. */
class ErrorFilter implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<PlatformResponse>()
    const message = (exception as Error).message
    if ('raw' in res) {
      void res.status(500).header('X-Error-Handler', message).type(TEXT).send('error')
    } else {
      res.status(500).set('X-Error-Handler', message).type(TEXT).send('error')
    }
  }
}
Catch()(ErrorFilter)

/** A matrix driver for NestJS 12 on `platform`. */
function nestDriver(platform: Platform): FrameworkDriver {
  return {
    name: platform === 'express' ? 'nestjs' : 'nestjs-fastify',
    start: (cache, routes, options) => startNest(platform, cache, routes, options),
  }
}

async function startNest(
  platform: Platform,
  cache: Cache,
  routes: readonly RouteSpec[],
  options?: StartOptions,
): Promise<Running> {
  const calls = new Map<string, number>()
  class MatrixController {}
  Controller()(MatrixController)
  for (const [i, route] of routes.entries()) {
    const [decorators, handler] = handlerFor(platform, route, calls)
    const cached = route.options === null ? [] : [Cached(route.options as never)]
    defineMethod(
      MatrixController.prototype,
      `route${i}`,
      handler,
      [Get(route.path), ...cached, ...decorators],
      [Res({ passthrough: true })],
    )
  }
  class MatrixModule {}
  Module({ imports: [CachetteModule.forRoot(cache)], controllers: [MatrixController] })(
    MatrixModule,
  )

  // `initApp` takes the platform's instance under Nest (Express's app or the Fastify
  // instance), before Nest adds its routes; a Nest application object is not an app
  // cachette recognises.
  const adapter = platform === 'express' ? new ExpressAdapter() : new FastifyAdapter()
  if (options?.initApp) cache.initApp(adapter.getInstance(), options.initApp)
  const app = await NestFactory.create(MatrixModule, adapter, {
    logger: false,
    abortOnError: false,
  })
  app.useGlobalFilters(new ErrorFilter())
  await app.listen(0, '127.0.0.1')
  const running = await runningOn(app.getHttpServer() as Server, calls)
  return {
    ...running,
    close: async () => {
      // Drops open connections, then lets Nest shut down (the module's shutdown hooks).
      await running.close()
      await app.close()
    },
  }
}

/** NestJS 12 on Express. */
export const nestjsDriver = nestDriver('express')

/** NestJS 12 on Fastify. */
export const nestjsFastifyDriver = nestDriver('fastify')
