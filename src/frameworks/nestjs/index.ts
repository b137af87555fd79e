/**
 * `cachette/nestjs`: the `Cache` as a NestJS provider, view caching through
 * an interceptor on the shared engine (status, headers and body, on the
 * Express and Fastify platforms), and `@Memoize()` for provider methods.
 * Needs `@nestjs/common` 12 and `rxjs`; decorators in Nest's legacy mode
 * (`experimentalDecorators`).
 *
 * @example
 * @Module({ imports: [CachetteModule.forRoot({ CACHE_TYPE: 'RedisCache' })], controllers: [UsersController] })
 * class AppModule {}
 *
 * @Controller('users')
 * class UsersController {
 *   @Get(':id') @Cached({ timeout: 60 }) find(@Param('id') id: string) { return this.users.find(id) }
 * }
 * @packageDocumentation
 *
 * @module cachette/nestjs
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  type CallHandler,
  type DynamicModule,
  type ExecutionContext,
  Inject,
  Injectable,
  type ModuleMetadata,
  type NestInterceptor,
  type Provider,
  UseInterceptors,
} from '@nestjs/common'
import { RESPONSE_PASSTHROUGH_METADATA, ROUTE_ARGS_METADATA } from '@nestjs/common/constants.js'
import { from, type Observable, of, switchMap, tap } from 'rxjs'
import { Cache } from '../../cache.js'
import type { CacheConfig } from '../../config-types.js'
import { registerAppBinder } from '../../core/context.js'
import { bodilessStatus } from '../../core/headers.js'
import { callerSite } from '../../core/identity.js'
import { defaultLogger, warnOnce } from '../../core/log.js'
import { MEMOIZED_ALIAS, type MemoizeOptions } from '../../core/memoize.js'
import { type Slot, VIEW_SLOT } from '../../core/slot.js'
import {
  createViewCache,
  registerView,
  requestViewOf,
  routedTarget,
  stubRequestFor,
  type ViewCache,
  type ViewCacheOptions,
  type ViewHit,
  type ViewLookup,
} from '../../core/view/index.js'
import { bindExpress } from '../express/middleware.js'
import { bindFastify } from '../fastify/bind.js'
import { captureResponse, replayHit } from '../shared/capture.js'

// `cache.initApp(adapter.getInstance())` hands over the platform's instance (an Express app
// or a Fastify instance) while a Nest app may import only this module: it binds both, the
// way the root entry and `cachette/fastify` do.
registerAppBinder(bindExpress)
registerAppBinder(bindFastify)

export type {
  QueryArgs,
  QueryValue,
  StoredView,
  ViewCacheOptions,
  ViewKeyArgs,
} from '../../core/view/index.js'
export {
  bodyETag,
  cacheControl,
  cacheFor,
  type HttpInterceptor,
  type HttpMiddleware,
  httpCache,
  noStore,
  preconditions,
  type ValidationOptions,
  validation,
  vary,
} from './http.js'
export { setCacheTimeout } from './timeout.js'

/**
 * Options of `@Cached()`; see {@link ViewCacheOptions} for each option and
 * its default. `Req` is the platform's request your callbacks receive
 * (Express's `Request` or Fastify's `FastifyRequest`).
 */
export type CachedOptions<Req = unknown> = ViewCacheOptions<Req>

// ------------------------------------------------------------------ @Cached

/** The engine of a `@Cached()` handler or controller, and the handler sources it has keyed on. */
interface CachedView {
  readonly engine: ViewCache<unknown>
  /** For `sourceCheck`: what `deleteCached(handler)` builds keys with. */
  readonly sources: Set<string>
}

/** The view of each `@Cached()` handler, and of each `@Cached()` controller. */
const views = new WeakMap<object, CachedView>()

/** The `source` of each handler's requests, made once per handler. */
const sourceGetters = new WeakMap<Function, () => string>()

/**
 * The `source` of a handler's requests, for `sourceCheck`: the handler's
 * source text (read once), added to `sources` so `deleteCached` keys on it.
 */
function sourceGetter(handler: Function, sources: Set<string>): () => string {
  let get = sourceGetters.get(handler)
  if (get === undefined) {
    let text: string | undefined
    get = () => {
      text ??= Function.prototype.toString.call(handler)
      sources.add(text)
      return text
    }
    sourceGetters.set(handler, get)
  }
  return get
}

/** Nest's HTTP platforms: Express's request/response, or Fastify's with `raw`. */
interface PlatformRequest {
  readonly raw?: IncomingMessage
  readonly originalUrl?: string
  readonly baseUrl?: string
  readonly url?: string
}
interface PlatformResponse {
  readonly raw?: ServerResponse
  hijack?(): void
}

function isLegacyKey(key: unknown): key is string | symbol {
  return typeof key === 'string' || typeof key === 'symbol'
}

function legacyOnly(what: string): TypeError {
  return new TypeError(
    `${what}: NestJS uses legacy decorators; compile with "experimentalDecorators": true (and "emitDecoratorMetadata")`,
  )
}

/**
 * Caches the response of a route handler (or, on a controller, of each of
 * its handlers) through cachette's view engine: the status, the headers and
 * the body as they were sent, whatever the handler returned (an object, a
 * string, a `StreamableFile`, a web `Response`, or what it wrote through
 * `@Res()`). GET and HEAD only; the same rules as the other frameworks:
 * only 2xx (but 206) by default, never a response that sets a cookie, and
 * requests with `Authorization` bypass the cache unless `allowAuthorized`.
 * The default key is `view/` + path (`view//users/42`), as Flask-Caching's.
 * With `sourceCheck` (or `CACHE_SOURCE_CHECK`) it ends with a digest of the
 * handler's source, so a deploy that changes the handler stops serving the
 * pages the old one rendered; `cache.deleteCached(Controller.prototype.handler,
 * { path })` deletes them.
 *
 * Adds {@link CachetteInterceptor} to the handler; the `Cache` comes from
 * {@link CachetteModule}. Options are checked here: a bad one throws a
 * TypeError when the class is defined.
 *
 * @example
 * @Get(':id')
 * @Cached({ timeout: '5m', queryString: true })
 * find(@Param('id') id: string) { ... }
 */
export function Cached<Req = unknown>(
  options: CachedOptions<Req> = {},
): MethodDecorator & ClassDecorator {
  const engine = createViewCache<unknown, Req>(options, 'Cached')
  const interceptor = UseInterceptors(CachetteInterceptor)
  return ((target: object, key?: unknown, descriptor?: PropertyDescriptor) => {
    if (key === undefined) {
      if (typeof target !== 'function') throw legacyOnly('@Cached')
      views.set(target, { engine, sources: new Set() })
      ;(interceptor as ClassDecorator)(target)
      return target
    }
    if (!isLegacyKey(key) || typeof descriptor?.value !== 'function') throw legacyOnly('@Cached')
    const handler = descriptor.value as Function
    const sources = new Set<string>()
    views.set(handler, { engine, sources })
    // `cache.deleteCached(Controller.prototype.handler, { path })` builds keys with these
    // options, and with `sourceCheck` with the handler's source (known already: this is it).
    registerView(handler, engine, stubRequestFor, sources)
    sources.add(Function.prototype.toString.call(handler))
    ;(interceptor as MethodDecorator)(target, key, descriptor)
    return descriptor
  }) as MethodDecorator & ClassDecorator
}

/** Whether the handler answers through `@Res()`/`@Next()` itself (Nest then sends nothing). */
const answersItself = new WeakMap<Function, boolean>()
function handlerAnswersItself(context: ExecutionContext): boolean {
  const handler = context.getHandler()
  let answers = answersItself.get(handler)
  if (answers === undefined) {
    // Nest's own rule (RouterExecutionContext.isResponseHandled): a @Res() or @Next()
    // parameter, unless @Res({ passthrough: true }).
    const host = context.getClass()
    const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, host, handler.name) ?? {}) as object
    // Keys are `${RouteParamtypes}:${index}`; RESPONSE is 1 and NEXT is 2.
    const takesResponse = Object.keys(args).some((k) => k.startsWith('1:') || k.startsWith('2:'))
    answers =
      takesResponse &&
      Reflect.getMetadata(RESPONSE_PASSTHROUGH_METADATA, host, handler.name) !== true
    answersItself.set(handler, answers)
  }
  return answers
}

/** A hit as a web `Response`: Nest sends its status, headers and body as they are. */
function hitResponse(hit: ViewHit): Response {
  const headers = new Headers()
  for (const [name, value] of hit.headers) headers.append(name, value)
  // A `Response` may carry no body with a bodiless status.
  const nullBody = hit.body === undefined || bodilessStatus(hit.status)
  // Its length is known: Fastify sends a web Response's body as a stream, and would answer a
  // HEAD with `Content-Length: 0`.
  if (!nullBody && !headers.has('content-length')) {
    headers.set('content-length', String((hit.body as Uint8Array).byteLength))
  }
  // The stored bytes as they are (a Buffer is a Uint8Array): no copy per hit.
  return new Response(nullBody ? null : (hit.body as Uint8Array<ArrayBuffer>), {
    status: hit.status,
    headers,
  })
}

/**
 * NestJS 12 sends a web `Response` a handler returns; NestJS 11 on Express
 * hands it to `res.json()`, which would send `{}`. When `res.json` is called
 * with this very `response`, the hit is written as it is instead (status,
 * headers, body), and Nest's call ends there.
 */
function replayIfSentAsJson(
  res: object,
  rawRes: ServerResponse,
  response: Response,
  hit: ViewHit,
): void {
  const express = res as { json?: (body: unknown) => unknown }
  const json = express.json
  if (typeof json !== 'function') return
  const own = Object.hasOwn(res, 'json')
  express.json = function (this: unknown, body: unknown) {
    if (body !== response) return json.call(this, body)
    if (own) express.json = json
    else delete express.json
    replayHit(rawRes, hit)
    return this
  }
}

/**
 * The interceptor behind `@Cached()`: serves hits, and captures and stores
 * what a handler sends on a miss. Handlers without `@Cached()` pass through,
 * so it can also be registered globally (`APP_INTERCEPTOR`). Injected with
 * the module's `Cache`.
 */
export class CachetteInterceptor implements NestInterceptor {
  /** The cache the views are stored in. */
  readonly cache: Cache

  constructor(cache: Cache) {
    this.cache = cache
  }

  /** Nest's interceptor entry point. */
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle()
    const handler = context.getHandler()
    const cachedView = views.get(handler) ?? views.get(context.getClass())
    if (cachedView === undefined) return next.handle()
    const { engine, sources } = cachedView
    const http = context.switchToHttp()
    const req = http.getRequest<PlatformRequest & object>()
    const res = http.getResponse<PlatformResponse & object>()
    const rawReq = req.raw ?? (req as IncomingMessage)
    const rawRes = res.raw ?? (res as ServerResponse)
    const slot = this.cache[VIEW_SLOT]()
    const view = requestViewOf(
      rawReq.method ?? 'GET',
      // Express: what the router routed (a rewrite keyed apart); Fastify: `request.url`, routed already.
      routedTarget(req.originalUrl ?? rawReq.url ?? '/', req.url ?? rawReq.url ?? '/', req.baseUrl),
      rawReq.headers,
      req as unknown,
      // `sourceCheck`: the handler this cache stands in for, as Nest runs it.
      sourceGetter(handler, sources),
      rawReq.socket,
    )
    // An in-memory hit is decided at once: no promise to wait for.
    const now = engine.lookupNow(view, slot)
    if (now !== undefined) return this.#decided(now, engine, slot, context, next, res, rawRes)
    return from(engine.lookup(view, slot)).pipe(
      switchMap((result) => this.#decided(result, engine, slot, context, next, res, rawRes)),
    )
  }

  #decided(
    result: ViewLookup,
    engine: ViewCache<unknown>,
    slot: Slot,
    context: ExecutionContext,
    next: CallHandler,
    res: PlatformResponse & object,
    rawRes: ServerResponse,
  ): Observable<unknown> {
    if (result.kind === 'bypass') return next.handle()
    if (result.kind === 'hit') {
      // Fastify answers a web Response's HEAD with `Content-Length: 0`: a HEAD hit on Fastify is
      // written here too.
      const fastifyHead = res.hijack !== undefined && rawRes.req?.method === 'HEAD'
      if (!fastifyHead && !handlerAnswersItself(context)) {
        const response = hitResponse(result)
        if (res.hijack === undefined) replayIfSentAsJson(res, rawRes, response, result)
        return of(response)
      }
      // Nest sends nothing for this handler: the hit is written here (Fastify: once hijacked).
      res.hijack?.()
      replayHit(rawRes, result)
      return of(undefined)
    }
    let failed = false
    captureResponse(engine, rawRes, result, slot, () => failed)
    return next.handle().pipe(
      tap({
        error: () => {
          failed = true
        },
      }),
    )
  }
}
Injectable()(CachetteInterceptor)
Inject(Cache)(CachetteInterceptor, undefined, 0)

// ------------------------------------------------------------------ @Memoize

interface MemoizedMethod {
  readonly target: object
  readonly key: string | symbol
  readonly original: Function
  readonly options: MemoizeOptions
  /** Site and owner, as `cache.memoize` names a method it decorates. */
  readonly name: string
  /** What the method runs now: the original (no Cache bound yet) or the bound Cache's memoized method. */
  impl: Function
}

const memoizedMethods: MemoizedMethod[] = []
let boundCache: Cache | undefined

function memoizedWith(cache: Cache, m: MemoizedMethod): Function {
  const { makeName } = m.options
  const options: MemoizeOptions = {
    ...m.options,
    makeName: () => (makeName ? makeName(m.name) : m.name),
  }
  const descriptor = cache.memoize(options)(m.target, m.key, {
    value: m.original,
    writable: true,
    configurable: true,
  })
  return (descriptor as PropertyDescriptor).value as Function
}

/** Points every `@Memoize()` method at `cache` (the latest CachetteModule's). */
function bindMemoized(cache: Cache): void {
  boundCache = cache
  for (const m of memoizedMethods) m.impl = memoizedWith(cache, m)
}

function unbindMemoized(cache: Cache): void {
  if (boundCache !== cache) return
  boundCache = undefined
  for (const m of memoizedMethods) m.impl = m.original
}

/**
 * Memoizes a provider method in the `Cache` of {@link CachetteModule}, as
 * `@cache.memoize()` does where the cache is at hand: results are keyed by
 * the method, the instance and the arguments, and
 * `cache.deleteMemoized(this.method.bind(this), ...args)` forgets this
 * instance's results (`cache.deleteMemoized(this.method)`: every result). Takes the options of `cache.memoize` (`timeout`, `tags`,
 * `lock`, ...). Until a CachetteModule has created its Cache the method
 * runs uncached (with a one-time warning); with several in one process,
 * the latest one serves every `@Memoize()` method.
 *
 * @example
 * @Injectable()
 * class UsersService {
 *   @Memoize({ timeout: 60 }) async find(id: number) { ... }
 * }
 */
export function Memoize(options: MemoizeOptions = {}): MethodDecorator {
  // The file (source-mapped where the runtime has the map), then the class and method: a
  // rebuild, or an edit elsewhere in the file, keeps the name and with it the entries.
  const { file } = callerSite(Memoize)
  return ((target: object, key: unknown, descriptor?: PropertyDescriptor) => {
    if (!isLegacyKey(key) || typeof descriptor?.value !== 'function') throw legacyOnly('@Memoize')
    const owner =
      typeof target === 'function'
        ? target.name
        : (target as { constructor?: Function }).constructor?.name
    const original = descriptor.value as Function
    const m: MemoizedMethod = {
      target,
      key,
      original,
      options,
      name: `${file}:${owner}.${String(key)}`,
      impl: original,
    }
    // Two classes of one name in one file would share the name: refused, as `cache.memoize` does.
    const other = memoizedMethods.find((o) => o.name === m.name && o.original !== original)
    if (other !== undefined && options.makeName === undefined) {
      throw new TypeError(
        `@Memoize: ${m.name} already names a different method (two classes named ${owner} in one file); give one of them makeName`,
      )
    }
    memoizedMethods.push(m)
    if (boundCache !== undefined) m.impl = memoizedWith(boundCache, m)
    const method = function memoizedMethod(this: unknown, ...args: unknown[]): unknown {
      if (m.impl === original) {
        warnOnce(
          defaultLogger,
          'CACHETTE_NEST_MEMOIZE_UNBOUND',
          `@Memoize: ${owner}.${String(key)} ran uncached: no CachetteModule has created its Cache yet`,
        )
      }
      return m.impl.apply(this, args)
    }
    Object.defineProperty(method, 'name', { value: original.name, configurable: true })
    Object.defineProperties(method, {
      [MEMOIZED_ALIAS]: { value: () => m.impl },
      // `this.find.bind(this)` stands for this instance's results, as with `cache.memoize`.
      bind: {
        value(thisArg: unknown, ...bound: unknown[]) {
          const fn = Function.prototype.bind.call(method, thisArg, ...bound)
          Object.defineProperty(fn, MEMOIZED_ALIAS, {
            value: () => m.impl.bind(thisArg, ...bound),
          })
          return fn
        },
      },
    })
    descriptor.value = method
    return descriptor
  }) as MethodDecorator
}

// ------------------------------------------------------------------ the module

/** Options of {@link CachetteModule.forRoot}. */
export interface CachetteModuleOptions {
  /**
   * Make `Cache` and the interceptor injectable in every module, without
   * importing CachetteModule there.
   * @default true
   */
  global?: boolean
}

/** Options of {@link CachetteModule.forRootAsync}. */
export interface CachetteModuleAsyncOptions extends CachetteModuleOptions {
  /** Modules whose providers `useFactory` needs (`ConfigModule`). */
  imports?: ModuleMetadata['imports']
  /** Providers injected into `useFactory`, in order. */
  inject?: NonNullable<Extract<Provider, { useFactory: unknown }>['inject']>
  /** Builds the configuration (or a ready `Cache`) from the injected providers. */
  useFactory: (...args: never[]) => CacheConfig | Cache | Promise<CacheConfig | Cache>
}

/** Caches the module created, which it closes on shutdown (a Cache given to it is the caller's). */
const owned = new WeakSet<Cache>()

const SHUTDOWN = Symbol('cachette.nestjs.shutdown')

/**
 * The NestJS module: provides the `Cache` (inject it by its class:
 * `constructor(private readonly cache: Cache)`) and
 * {@link CachetteInterceptor}, and binds `@Memoize()` methods to that
 * Cache. Global by default. A Cache it builds from configuration is ready
 * (`await cache.ready()`) before the app starts, so a bad `CACHE_TYPE`
 * fails the bootstrap, and is closed when the app shuts down.
 */
// biome-ignore lint/complexity/noStaticOnlyClass: a Nest module is a class, here with its forRoot factories
export class CachetteModule {
  /**
   * The module for a configuration (the `CACHE_*` keys of `new Cache()`), or
   * for a `Cache` you built yourself.
   */
  static forRoot(
    config: CacheConfig | Cache = {},
    options: CachetteModuleOptions = {},
  ): DynamicModule {
    return moduleOf(() => config, [], [], options.global)
  }

  /** The module for a configuration built from other providers (`ConfigService`). */
  static forRootAsync(options: CachetteModuleAsyncOptions): DynamicModule {
    if (typeof options?.useFactory !== 'function') {
      throw new TypeError('CachetteModule.forRootAsync: useFactory must be a function')
    }
    return moduleOf(
      options.useFactory as (
        ...args: unknown[]
      ) => CacheConfig | Cache | Promise<CacheConfig | Cache>,
      options.inject ?? [],
      options.imports ?? [],
      options.global,
    )
  }
}

function moduleOf(
  factory: (...args: unknown[]) => CacheConfig | Cache | Promise<CacheConfig | Cache>,
  inject: NonNullable<CachetteModuleAsyncOptions['inject']>,
  imports: NonNullable<ModuleMetadata['imports']>,
  global: boolean | undefined,
): DynamicModule {
  const providers: Provider[] = [
    {
      provide: Cache,
      useFactory: async (...deps: unknown[]) => {
        const made = await factory(...deps)
        let cache: Cache
        if (made instanceof Cache) cache = made
        else {
          cache = new Cache(made)
          owned.add(cache)
        }
        await cache.ready()
        bindMemoized(cache)
        return cache
      },
      inject,
    },
    {
      provide: CachetteInterceptor,
      useFactory: (cache: Cache) => new CachetteInterceptor(cache),
      inject: [Cache],
    },
    {
      provide: SHUTDOWN,
      useFactory: (cache: Cache) => ({
        async onApplicationShutdown(): Promise<void> {
          unbindMemoized(cache)
          if (owned.has(cache)) await cache.close()
        },
      }),
      inject: [Cache],
    },
  ]
  return {
    module: CachetteModule,
    global: global ?? true,
    imports,
    providers,
    exports: [Cache, CachetteInterceptor],
  }
}
