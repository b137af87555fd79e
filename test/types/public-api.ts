/**
 * Type tests of the public API, compiled by `tsc -p test/types/tsconfig.json`
 * (test/types.test.ts) and by the project's own typecheck. Nothing here runs.
 * Each `@ts-expect-error` line must be an error: TypeScript reports an
 * expectation that is not, so a type that became too loose fails the check.
 */
import express from 'express'
import Fastify from 'fastify'
import { Hono } from 'hono'
import Koa from 'koa'
import {
  cached as expressCached,
  cacheFor as expressCacheFor,
  httpCache as expressHttpCache,
} from '../../src/frameworks/express/index.js'
import fastifyCachette, {
  cached as fastifyCached,
  httpCache as fastifyHttpCache,
} from '../../src/frameworks/fastify/index.js'
import {
  cached as honoCached,
  httpCache as honoHttpCache,
} from '../../src/frameworks/hono/index.js'
import { cached as koaCached, httpCache as koaHttpCache } from '../../src/frameworks/koa/index.js'
import {
  Cache,
  type CacheConfig,
  type CacheConfigFlask,
  type CacheOptionsCamel,
  type MemoizedFunction,
  type MemoizeOptions,
  SimpleCache,
} from '../../src/index.js'

/** `true` when `A` and `B` are the same type. */
type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
function expectType<T>(_value: T): void {}
function assertTrue<_T extends true>(): void {}

const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })

// ------------------------------------------------------------ configuration

new Cache({
  CACHE_TYPE: 'SimpleCache',
  CACHE_DEFAULT_TIMEOUT: '5m',
  CACHE_THRESHOLD: 10,
  CACHE_CIRCUIT_BREAKER: { failures: 3, openFor: 1 },
  CACHE_MEMCACHED_SERVERS: 'a:11211,b:11211',
  CACHE_OPTIONS: { mode: 0o640 },
})
new Cache({ type: SimpleCache, defaultTimeout: 60, keyPrefix: 'app:', logger: console })
new Cache({ CACHE_TYPE: () => new SimpleCache(), CACHE_SERIALIZER: 'json', circuitBreaker: false })
new Cache({ CACHE_DIR: process.env.CACHE_DIR }) // undefined is skipped
cache.initApp({}, { CACHE_KEY_PREFIX: 'p', operationTimeout: '2s' })

// @ts-expect-error an integer key given a string
new Cache({ CACHE_THRESHOLD: '5' })
// @ts-expect-error a timeout given a boolean
new Cache({ CACHE_DEFAULT_TIMEOUT: true })
// @ts-expect-error a string key given a number
new Cache({ keyPrefix: 3 })
// @ts-expect-error an unknown key
new Cache({ CACHE_TYPO: 1 })
// @ts-expect-error a serializer that does not exist
new Cache({ CACHE_SERIALIZER: 'pickle' })
// @ts-expect-error the breaker is a boolean or { failures, openFor }
new Cache({ CACHE_CIRCUIT_BREAKER: 'yes' })
// @ts-expect-error a logger needs warn() and error()
new Cache({ logger: {} })
// @ts-expect-error CACHE_TYPE is a name, a class or a factory
new Cache({ CACHE_TYPE: 42 })
// @ts-expect-error initApp's config is checked too
cache.initApp({}, { CACHE_IGNORE_ERRORS: 'no' })

// The two spellings: `logger` has no CACHE_* name; both types keep their keys.
// @ts-expect-error no CACHE_* spelling of logger
const flaskOnly: CacheConfigFlask = { logger: console }
const camel: CacheOptionsCamel = { logger: console, redisPort: 6379 }
const mixed: CacheConfig = { CACHE_TYPE: 'redis', redisPort: 6379 }
assertTrue<Equal<CacheConfigFlask['CACHE_DEFAULT_TIMEOUT'], number | string | undefined>>()
assertTrue<Equal<CacheOptionsCamel['memcachedServers'], string[] | string | undefined>>()
assertTrue<Equal<keyof CacheConfigFlask, `CACHE_${string}` & keyof CacheConfigFlask>>()
// The config a Cache was given, checked and camelCased: typed by key.
expectType<number | undefined>(cache.config.defaultTimeout)
expectType<string[] | undefined>(cache.config.memcachedServers)
void [flaskOnly, camel, mixed]

// ------------------------------------------------------------ memoize

interface User {
  id: number
  name: string
}

const load = cache.memoize(
  async (id: number, verbose?: boolean): Promise<User> => ({ id, name: String(verbose) }),
  {
    timeout: '5m',
    // The callbacks are typed from the function: its arguments and its result.
    forcedUpdate: (id, verbose) => id > 3 || verbose === true,
    isStale: (user, id) => user.name === '' || user.id !== id,
    responseFilter: (user) => user.id > 0,
    tags: (id) => [`user:${id}`],
    unless: (fn, id) => fn.length === 0 || id === 0,
    argsToIgnore: ['verbose'],
  },
)
expectType<Promise<User>>(load(1))
expectType<Promise<User>>(load(1, true))
expectType<(id: number, verbose?: boolean) => Promise<User>>(load.uncached)
expectType<Promise<string>>(load.makeCacheKey(1))
// @ts-expect-error the memoized function keeps its parameters
load('1')

// A plain (not async) function: the memoized one resolves to its result.
const sum = cache.memoize((a: number, b: number) => a + b)
assertTrue<Equal<ReturnType<typeof sum>, Promise<number>>>()
const typed: MemoizedFunction<(a: number, b: number) => number> = sum
void typed

// @ts-expect-error forcedUpdate receives the function's arguments
cache.memoize(async (id: number) => id, { forcedUpdate: (id: string) => id === '' })
// @ts-expect-error isStale receives the result first
cache.memoize(async (id: number) => ({ id }), { isStale: (value: string) => value === '' })
cache.memoize(async (id: number) => id, {
  // @ts-expect-error responseFilter receives the result only
  responseFilter: (_value: number, extra: string) => extra,
})
// @ts-expect-error tags receives the function's arguments
cache.memoize(async (id: number) => id, { tags: (id: string) => [id] })
// @ts-expect-error unless receives (fn, ...args)
cache.memoize(async (id: number) => id, { unless: (_fn, id: string) => id === '' })
// @ts-expect-error tags is a list of strings
cache.memoize(async (id: number) => id, { tags: [1] })
// @ts-expect-error only functions are memoized
cache.memoize(42)

// The decorator form cannot see the method yet: callbacks may declare their parameters.
const options: MemoizeOptions = {
  forcedUpdate: (id: number) => id > 1,
  tags: (id: number) => [`${id}`],
}
class Users {
  @cache.memoize({ timeout: 5, isStale: (user: User) => user.name === '' })
  async get(id: number): Promise<User> {
    return { id, name: 'x' }
  }
  @cache.memoize(options)
  async find(id: number): Promise<User | null> {
    return id > 0 ? { id, name: 'y' } : null
  }
}
expectType<Promise<User>>(new Users().get(1))
expectType<(fn: (n: number) => number) => MemoizedFunction<(n: number) => number>>(
  cache.memoize({ timeout: 1 }),
)

// ------------------------------------------------------------ getOrSet

expectType<Promise<number>>(cache.getOrSet('k', () => 1))
expectType<Promise<User>>(cache.getOrSet('k', async () => ({ id: 1, name: 'a' })))
expectType<Promise<string>>(
  cache.getOrSet('k', () => Promise.resolve('x'), {
    timeout: '1m',
    grace: 60,
    tags: ['t'],
    lock: true,
  }),
)
// @ts-expect-error the result type comes from the factory
const wrong: Promise<string> = cache.getOrSet('k', () => 1)
// @ts-expect-error timeout is seconds or a duration string
cache.getOrSet('k', () => 1, { timeout: true })
// @ts-expect-error the factory is a function
cache.getOrSet('k', 1)
void wrong
expectType<Promise<unknown>>(cache.get('k'))
expectType<Promise<User | undefined>>(cache.get<User>('k'))

// ------------------------------------------------------------ adapters: middleware where each framework expects it

// Express: cache.cached() and cached(cache) are route middleware; httpCache() and friends app middleware.
const app = express()
app.get('/', cache.cached({ timeout: '5m', queryString: true }), (_req, res) => {
  res.send('home')
})
app.get('/users/:id', expressCached(cache, { timeout: 60 }), (req, res) => {
  res.json({ id: req.params.id })
})
app.use(expressHttpCache({ cache }))
app.get('/feed', expressCacheFor({ minutes: 10 }), (_req, res) => {
  res.send('feed')
})
app.use('/api', cache.cached(), express.Router())
// @ts-expect-error view options are checked
cache.cached({ timeout: true })
// @ts-expect-error view options are checked
expressCached(cache, { queryString: 'yes' })

// Koa: app.use() takes the view middleware and httpCache().
const koa = new Koa()
koa.use(koaCached(cache, { timeout: 60 }))
koa.use(koaHttpCache({ cache }))
// @ts-expect-error view options are checked
koaCached(cache, { timeout: {} })

// Hono: route and app middleware.
const hono = new Hono()
hono.get('/', honoCached(cache, { timeout: 60 }), (c) => c.text('home'))
hono.use(honoHttpCache({ cache }))
hono.use('/api/*', honoCached(cache))
// @ts-expect-error view options are checked
honoCached(cache, { timeout: [] })

// Fastify: the plugin, cached() as route hooks, httpCache() as a plugin.
const fastify = Fastify()
void fastify.register(fastifyCachette, { cache, timeout: 60 })
fastify.get('/', { ...fastifyCached(cache, { timeout: 60 }) }, async () => 'home')
fastify.get('/cfg', { config: { cache: { timeout: '5m' } } }, async () => 'cfg')
void fastify.register(fastifyHttpCache({ cache }))
// @ts-expect-error view options are checked
fastifyCached(cache, { timeout: false })
