/**
 * Observability: events (cache.on), outcome counters (cache.stats), the
 * diagnostics channel, cachette/prometheus and cachette/otel, on SimpleCache
 * and on a real Redis (started here), including the backend calls the
 * memoize and view engines make.
 */
import assert from 'node:assert/strict'
import { AsyncLocalStorage } from 'node:async_hooks'
import { after, before, describe, test } from 'node:test'
import {
  type Context,
  type ContextManager,
  context,
  ROOT_CONTEXT,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api'
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base'
import express from 'express'
import { Registry } from 'prom-client'
import { PEEK, type PeekableBackend } from '../src/core/backend.js'
import {
  type CacheEventName,
  type CacheEvents,
  MAX_OUTCOME_NAMES,
  type OperationEvent,
  OVERFLOW_NAME,
} from '../src/core/events.js'
import { VIEW_SLOT } from '../src/core/slot.js'
import { Cache, SimpleCache } from '../src/index.js'
import {
  enableCacheTracing,
  instrumentCache,
  observeAllCaches,
  operationChannel,
} from '../src/observability/otel.js'
import { registerCacheMetrics } from '../src/observability/prometheus.js'
import {
  collectingLogger,
  httpRequest,
  Lifetimes,
  listen,
  runWithoutPackage,
  silentLogger,
  storesSettled,
} from './helpers.js'
import { type RedisServer, startRedis } from './servers/redis.js'

const life = new Lifetimes()
after(() => life.stopAll())

/** A SimpleCache-backed Cache, closed after the file. */
function simple(extra: Record<string, unknown> = {}): Cache {
  return life.track(new Cache({ CACHE_TYPE: 'SimpleCache', logger: silentLogger, ...extra }))
}

/** Records every event of `cache` as `[name, event]`, in order. */
function record(cache: Cache): {
  all: [CacheEventName, OperationEvent][]
  of<E extends CacheEventName>(name: E): CacheEvents[E][]
  ops(): string[]
  stop(): void
} {
  const all: [CacheEventName, OperationEvent][] = []
  const names: CacheEventName[] = ['hit', 'miss', 'set', 'delete', 'clear', 'error', 'operation']
  const listeners = names.map((name) => {
    const l = (e: OperationEvent) => {
      all.push([name, e])
    }
    cache.on(name, l)
    return [name, l] as const
  })
  return {
    all,
    of: <E extends CacheEventName>(name: E) =>
      all.filter(([n]) => n === name).map(([, e]) => e as CacheEvents[E]),
    ops: () => all.filter(([n]) => n === 'operation').map(([, e]) => e.operation),
    stop: () => {
      for (const [name, l] of listeners) cache.off(name, l)
    },
  }
}

/** Starts an Express app on a free port, closed after the file. */
async function serve(app: express.Express): Promise<number> {
  const s = await listen(app as unknown as import('node:http').RequestListener)
  life.defer(() => s.close())
  return s.port
}

/**
 * Waits for every view's store (after `finish`), then lets listeners' async
 * work run (it is promise jobs, all run before the next macrotask).
 */
async function settle(): Promise<void> {
  await storesSettled()
  await new Promise((resolve) => setImmediate(resolve))
}

// ---------------------------------------------------------------- zero overhead

describe('without listeners nothing is wrapped', () => {
  test('cache.backend is the original backend until a listener is attached, and again after the last is removed', async () => {
    const cache = simple()
    const raw = cache.backend
    assert.ok(raw instanceof SimpleCache)
    assert.equal(typeof (raw as PeekableBackend)[PEEK], 'function', 'SimpleCache peeks')
    assert.equal(cache.backend, raw)
    assert.equal(await cache.ready(), raw)

    const hit = () => {}
    const miss = () => {}
    cache.on('hit', hit).on('miss', miss)
    const wrapped = cache.backend
    assert.notEqual(wrapped, raw)
    assert.ok(wrapped instanceof SimpleCache, 'instanceof still holds')
    assert.equal((wrapped as PeekableBackend)[PEEK], undefined, 'PEEK is hidden while observed')
    assert.equal(PEEK in wrapped, false)
    assert.equal(await cache.ready(), wrapped, 'ready() resolves to the backend in use')
    // Everything else reaches the backend: fields, and methods bound to it.
    assert.equal(wrapped.defaultTimeout, raw.defaultTimeout)
    assert.equal((wrapped as SimpleCache).serializer, (raw as SimpleCache).serializer)

    cache.off('hit', hit)
    assert.equal(cache.backend, wrapped, 'still observed: one listener left')
    cache.off('miss', miss)
    assert.equal(cache.backend, raw, 'the original is back')
    assert.equal(await cache.ready(), raw)
  })

  test('backend totals count only while observed; outcome counters always', async () => {
    const cache = simple()
    await cache.set('a', 1)
    await cache.get('a')
    assert.deepEqual(cache.stats().backend, { hits: 0, misses: 0, sets: 0, deletes: 0, errors: 0 })
    const l = () => {}
    cache.on('operation', l)
    await cache.get('a')
    await cache.get('zz')
    cache.off('operation', l)
    await cache.get('a')
    assert.deepEqual(cache.stats().backend, { hits: 1, misses: 1, sets: 0, deletes: 0, errors: 0 })
  })
})

// ---------------------------------------------------------------- events on SimpleCache

describe('events on SimpleCache', () => {
  test('every facade operation emits one operation event, with backend, key(s) and a duration', async () => {
    const cache = simple()
    const rec = record(cache)
    await cache.set('a', 1)
    await cache.get('a')
    await cache.get('missing')
    await cache.getMany('a', 'missing')
    await cache.setMany({ b: 2, c: 3 })
    assert.equal(await cache.add('a', 9), false)
    assert.equal(await cache.add('d', 4), true)
    await cache.delete('b')
    await cache.deleteMany('c', 'd')
    await cache.inc('n', 2)
    await cache.clear()
    rec.stop()

    assert.deepEqual(rec.ops(), [
      'set',
      'get',
      'get',
      'getMany',
      'setMany',
      'add',
      'add',
      'delete',
      'deleteMany',
      'inc',
      'clear',
    ])
    for (const e of rec.of('operation')) {
      assert.equal(e.backend, 'SimpleCache')
      assert.ok(e.durationMs > 0, `${e.operation} took ${e.durationMs} ms`)
      assert.equal(e.app, undefined)
      assert.notEqual(e.status, 'error')
    }
    const ops = rec.of('operation')
    assert.equal(ops[0]?.key, 'a')
    assert.deepEqual(ops[3]?.keys, ['a', 'missing'])
    assert.deepEqual([ops[3]?.hits, ops[3]?.misses], [1, 1])
    assert.deepEqual(ops[4]?.keys, ['b', 'c'])
    assert.deepEqual(
      ops.map((e) => e.status),
      ['ok', 'hit', 'miss', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok'],
    )

    // hit/miss: one per key read (get, and each key of getMany); has is not a read.
    assert.deepEqual(
      rec.of('hit').map((e) => [e.operation, e.key]),
      [
        ['get', 'a'],
        ['getMany', 'a'],
      ],
    )
    assert.deepEqual(
      rec.of('miss').map((e) => [e.operation, e.key]),
      [
        ['get', 'missing'],
        ['getMany', 'missing'],
      ],
    )
    // set: only writes that stored (the add of an existing key did not).
    assert.deepEqual(
      rec.of('set').map((e) => [e.operation, e.key ?? e.keys]),
      [
        ['set', 'a'],
        ['setMany', ['b', 'c']],
        ['add', 'd'],
        ['inc', 'n'],
      ],
    )
    assert.deepEqual(
      rec.of('delete').map((e) => [e.operation, e.key ?? e.keys]),
      [
        ['delete', 'b'],
        ['deleteMany', ['c', 'd']],
      ],
    )
    assert.deepEqual(
      rec.of('clear').map((e) => e.operation),
      ['clear'],
    )
    assert.equal(rec.of('error').length, 0)

    const stats = cache.stats()
    assert.deepEqual(stats.backend, { hits: 2, misses: 2, sets: 5, deletes: 3, errors: 0 })
    const count = (operation: string, status: string) =>
      stats.operations.find((o) => o.operation === operation && o.status === status)?.count
    assert.equal(count('get', 'hit'), 1)
    assert.equal(count('get', 'miss'), 1)
    assert.equal(count('add', 'ok'), 2)

    // has: status hit/miss, but no hit/miss events (it reads no value). The
    // facade may read the entry too (tagged entries), which is a get of its own.
    await cache.set('h', 1)
    const probe = record(cache)
    assert.equal(await cache.has('h'), true)
    assert.equal(await cache.has('nothing'), false)
    probe.stop()
    const has = probe.of('operation').filter((e) => e.operation === 'has')
    assert.deepEqual(
      has.map((e) => [e.key, e.status]),
      [
        ['h', 'hit'],
        ['nothing', 'miss'],
      ],
    )
    assert.ok(probe.of('hit').every((e) => e.operation === 'get'))
  })

  test('listeners are typed by event name', async () => {
    const cache = simple()
    const keys: string[] = []
    // `e.key` is a string for hit (KeyEvent), not string | undefined: this line type-checks only so.
    cache.on('hit', (e) => {
      const k: string = e.key
      keys.push(k)
    })
    cache.on('error', (e) => {
      const status: 'error' = e.status
      keys.push(status)
    })
    await cache.set('x', 1)
    await cache.get('x')
    assert.deepEqual(keys, ['x'])
  })

  test('once() fires once; off() of a once listener removes it', async () => {
    const cache = simple()
    const seen: string[] = []
    const l = (e: OperationEvent) => {
      seen.push(e.operation)
    }
    cache.once('operation', l)
    await cache.set('a', 1)
    await cache.set('a', 2)
    assert.deepEqual(seen, ['set'])
    assert.equal(cache.observation.listenerCount(), 0)
    cache.once('operation', l)
    cache.off('operation', l)
    await cache.set('a', 3)
    assert.deepEqual(seen, ['set'])
    assert.equal(cache.observation.observed, false)
  })

  test('unknown events and non-function listeners are TypeErrors', () => {
    const cache = simple()
    assert.throws(() => cache.on('nope' as CacheEventName, () => {}), TypeError)
    assert.throws(() => cache.on('hit', 'x' as unknown as () => void), TypeError)
  })

  test('a listener that throws or rejects never breaks the call, and is logged once', async () => {
    const logger = collectingLogger()
    const cache = simple({ logger })
    const seen: string[] = []
    cache.on('set', () => {
      throw new Error('listener boom')
    })
    cache.on('set', async () => {
      throw new Error('async listener boom')
    })
    cache.on('set', (e) => {
      seen.push(e.key ?? '')
    })
    assert.equal(await cache.set('a', 1), true)
    assert.equal(await cache.set('b', 2), true)
    assert.equal(await cache.get('a'), 1)
    await settle()
    assert.deepEqual(seen, ['a', 'b'], 'later listeners still run')
    const logged = logger.errors.filter((m) => m.includes('cache event listener'))
    assert.equal(logged.length, 2, logged.join('\n'))
    assert.ok(logged.some((m) => m.includes('listener boom')))
    assert.ok(logged.some((m) => m.includes('async listener boom')))
  })

  test('a backend still loading is wrapped once built; ready() resolves to the wrapper', async () => {
    let release: (() => void) | undefined
    const gate = new Promise<void>((r) => {
      release = r
    })
    const cache = life.track(
      new Cache({
        CACHE_TYPE: async () => {
          await gate
          return new SimpleCache()
        },
        logger: silentLogger,
      }),
    )
    assert.throws(() => cache.backend, /still loading/)
    const rec = record(cache)
    const pending = cache.set('k', 'v')
    release?.()
    assert.equal(await pending, true)
    assert.equal(await cache.get('k'), 'v')
    assert.deepEqual(rec.ops(), ['set', 'get'])
    const wrapped = await cache.ready()
    assert.equal((wrapped as PeekableBackend)[PEEK], undefined)
    rec.stop()
    const raw = await cache.ready()
    assert.notEqual(raw, wrapped)
    assert.equal(typeof (raw as PeekableBackend)[PEEK], 'function')
  })

  test('slots initApp builds later are observed too, and events name the app', async () => {
    const cache = new Cache()
    life.track(cache)
    const rec = record(cache)
    const appA = { name: 'a', config: { CACHE_TYPE: 'SimpleCache', CACHE_KEY_PREFIX: 'a' } }
    const appB = { name: 'b', config: { CACHE_TYPE: 'SimpleCache', CACHE_KEY_PREFIX: 'b' } }
    cache.initApp(appA).initApp(appB)
    await cache.runWithApp(appA, () => cache.set('k', 1))
    await cache.runWithApp(appB, () => cache.get('k'))
    assert.deepEqual(
      rec.of('operation').map((e) => [e.operation, e.app]),
      [
        ['set', appA],
        ['get', appB],
      ],
    )
    assert.equal(rec.of('miss')[0]?.key, 'k', "app b's backend is its own")
    rec.stop()
  })

  test('memoize: the engine’s internal backend calls are observed, and its outcomes counted', async () => {
    const cache = simple()
    const rec = record(cache)
    let runs = 0
    const double = cache.memoize(async (x: number) => {
      runs++
      return x * 2
    })
    assert.equal(await double(21), 42)
    assert.equal(await double(21), 42)
    assert.equal(runs, 1)
    rec.stop()
    const ops = rec.ops()
    assert.ok(ops.includes('set'), ops.join())
    assert.ok(ops.filter((o) => o === 'get' || o === 'getMany').length >= 3, ops.join())
    assert.ok(rec.of('hit').length >= 1)
    assert.ok(rec.of('miss').length >= 1)
    assert.deepEqual(cache.stats().memoized[double.memoizeName], {
      hits: 1,
      misses: 1,
      stale: 0,
      bypass: 0,
    })
  })

  test('cached views: hits go through the instrumented get (PEEK hidden), misses and stores too', async () => {
    const cache = simple()
    const app = express()
    app.get('/page', cache.cached({ timeout: 60 }), (_req, res) => {
      res.send('hello')
    })
    const port = await serve(app)
    const rec = record(cache)
    assert.equal((await httpRequest(port, '/page')).text, 'hello')
    await settle()
    assert.equal((await httpRequest(port, '/page')).text, 'hello')
    await settle()
    rec.stop()
    assert.deepEqual(
      rec.of('miss').map((e) => e.key),
      ['view//page'],
    )
    assert.deepEqual(
      rec.of('set').map((e) => e.key),
      ['view//page'],
    )
    assert.deepEqual(
      rec.of('hit').map((e) => e.key),
      ['view//page'],
      'the second request is a hit read through get()',
    )
  })

  test('fragments: cache.fragment reads and writes through the observed backend', async () => {
    const cache = simple()
    const rec = record(cache)
    let renders = 0
    const render = () => {
      renders++
      return '<nav/>'
    }
    assert.equal(await cache.fragment('nav', 60, render, ['u1']), '<nav/>')
    assert.equal(await cache.fragment('nav', 60, render, ['u1']), '<nav/>')
    rec.stop()
    assert.equal(renders, 1)
    const key = '_template_fragment_cache_nav_u1'
    assert.deepEqual(
      rec.all.filter(([n]) => n !== 'operation').map(([n, e]) => [n, e.key]),
      [
        ['miss', key],
        ['set', key],
        ['hit', key],
      ],
    )
  })
})

// ---------------------------------------------------------------- stats

describe('stats', () => {
  test('outcome() counts per kind and name; stats() sums slots; resetStats() zeroes', () => {
    const cache = simple()
    const observer = cache[VIEW_SLOT]().observer
    observer.outcome('view', 'GET /users/:id', 'hit')
    observer.outcome('view', 'GET /users/:id', 'hit')
    observer.outcome('view', 'GET /users/:id', 'miss')
    observer.outcome('view', 'GET /', 'bypass')
    observer.outcome('memoize', 'load', 'stale')
    observer.outcome('getOrSet', 'user', 'miss')
    observer.outcome('fragment', 'nav', 'hit')
    const s = cache.stats()
    assert.deepEqual(s.views, {
      'GET /users/:id': { hits: 2, misses: 1, stale: 0, bypass: 0 },
      'GET /': { hits: 0, misses: 0, stale: 0, bypass: 1 },
    })
    assert.deepEqual(s.memoized, { load: { hits: 0, misses: 0, stale: 1, bypass: 0 } })
    assert.deepEqual(s.getOrSet, { user: { hits: 0, misses: 1, stale: 0, bypass: 0 } })
    assert.deepEqual(s.fragments, { nav: { hits: 1, misses: 0, stale: 0, bypass: 0 } })
    cache.resetStats()
    assert.deepEqual(cache.stats(), {
      views: {},
      memoized: {},
      getOrSet: {},
      fragments: {},
      backend: { hits: 0, misses: 0, sets: 0, deletes: 0, errors: 0 },
      operations: [],
    })
  })

  test('stats() adds up the slots of several apps', () => {
    const cache = life.track(new Cache())
    const a = { config: { CACHE_TYPE: 'SimpleCache', CACHE_KEY_PREFIX: 'a' } }
    const b = { config: { CACHE_TYPE: 'SimpleCache', CACHE_KEY_PREFIX: 'b' } }
    cache.initApp(a).initApp(b)
    cache[VIEW_SLOT](a).observer.outcome('view', 'home', 'hit')
    cache[VIEW_SLOT](b).observer.outcome('view', 'home', 'miss')
    assert.notEqual(cache[VIEW_SLOT](a), cache[VIEW_SLOT](b))
    assert.deepEqual(cache.stats().views, { home: { hits: 1, misses: 1, stale: 0, bypass: 0 } })
  })

  test(`names past ${MAX_OUTCOME_NAMES} count as ${OVERFLOW_NAME}, with one warning`, () => {
    const logger = collectingLogger()
    const cache = simple({ logger })
    const observer = cache[VIEW_SLOT]().observer
    for (let i = 0; i < MAX_OUTCOME_NAMES + 5; i++) observer.outcome('view', `/item/${i}`, 'miss')
    const views = cache.stats().views
    assert.equal(Object.keys(views).length, MAX_OUTCOME_NAMES + 1)
    assert.equal(views[OVERFLOW_NAME]?.misses, 5)
    assert.equal(logger.warnings.filter((w) => w.includes('CACHETTE_STATS_NAMES')).length, 1)
  })

  test('cached views count outcomes per view (named by the route) through cache.cached()', async () => {
    const cache = simple()
    const app = express()
    app.get('/counted', cache.cached({ timeout: 60 }), (_req, res) => {
      res.send('x')
    })
    const port = await serve(app)
    await httpRequest(port, '/counted')
    await settle()
    await httpRequest(port, '/counted')
    await httpRequest(port, '/counted', { headers: { authorization: 'Bearer x' } })
    assert.deepEqual(cache.stats().views, {
      '/counted': { hits: 1, misses: 1, stale: 0, bypass: 1 },
    })
  })

  test('cache.fragment() and cache.getOrSet() count outcomes', async () => {
    const cache = simple()
    await cache.fragment('nav', 60, () => '<nav/>')
    await cache.fragment('nav', 60, () => '<nav/>')
    assert.deepEqual(cache.stats().fragments.nav, { hits: 1, misses: 1, stale: 0, bypass: 0 })
    await cache.getOrSet('user:1', () => 'ann')
    await cache.getOrSet('user:1', () => 'ann')
    await cache.getOrSet('report', () => 'r', { name: 'reports' })
    assert.deepEqual(cache.stats().getOrSet, {
      user: { hits: 1, misses: 1, stale: 0, bypass: 0 },
      reports: { hits: 0, misses: 1, stale: 0, bypass: 0 },
    })
  })
})

// ---------------------------------------------------------------- diagnostics_channel

describe('diagnostics_channel cachette:operation', () => {
  test('observed operations are published start → end → asyncStart → asyncEnd with one context, never the value', async () => {
    const cache = simple()
    await cache.set('secret', 'value')
    const seen: [string, OperationEvent][] = []
    const handlers = {
      start: (m: OperationEvent) => seen.push(['start', m]),
      end: (m: OperationEvent) => seen.push(['end', m]),
      asyncStart: (m: OperationEvent) => seen.push(['asyncStart', m]),
      asyncEnd: (m: OperationEvent) => seen.push(['asyncEnd', m]),
      error: (m: OperationEvent) => seen.push(['error', m]),
    }
    operationChannel.subscribe(handlers)
    try {
      await cache.get('secret')
      assert.equal(seen.length, 0, 'an unobserved cache publishes nothing')
      const undo = observeAllCaches()
      try {
        assert.notEqual(cache.backend, undefined)
        assert.equal(cache.observation.observed, true)
        await cache.get('secret')
      } finally {
        undo()
      }
      assert.equal(cache.observation.observed, false)
      assert.deepEqual(
        seen.map(([n]) => n),
        ['start', 'end', 'asyncStart', 'asyncEnd'],
      )
      const message = seen[0]?.[1] as OperationEvent
      assert.ok(
        seen.every(([, m]) => m === message),
        'one context object',
      )
      assert.equal(message.operation, 'get')
      assert.equal(message.key, 'secret')
      assert.equal(message.status, 'hit')
      assert.ok(message.durationMs > 0)
      assert.equal('result' in message, false)
      assert.ok(!Object.values(message).includes('value'), 'the cached value is not published')
    } finally {
      operationChannel.unsubscribe(handlers)
    }
  })
})

// ---------------------------------------------------------------- real Redis

describe('on a real Redis', () => {
  let server: RedisServer
  let cache: Cache
  before(async () => {
    server = await startRedis()
    life.defer(() => server.stop())
    cache = life.track(
      new Cache({
        CACHE_TYPE: 'RedisCache',
        CACHE_REDIS_HOST: server.host,
        CACHE_REDIS_PORT: server.port,
        CACHE_KEY_PREFIX: 'obs:',
        logger: silentLogger,
      }),
    )
    await cache.ready()
  })

  test('every operation emits its events with backend RedisCache', async () => {
    const rec = record(cache)
    await cache.set('a', 1)
    await cache.get('a')
    await cache.get('nope')
    await cache.getMany('a', 'nope')
    await cache.setMany({ b: 2, c: 3 })
    await cache.add('a', 5)
    await cache.delete('b')
    await cache.deleteMany('c')
    await cache.unlink('a')
    await cache.inc('n')
    await cache.clear()
    rec.stop()
    assert.deepEqual(rec.ops(), [
      'set',
      'get',
      'get',
      'getMany',
      'setMany',
      'add',
      'delete',
      'deleteMany',
      'unlink',
      'inc',
      'clear',
    ])
    for (const e of rec.of('operation')) {
      assert.equal(e.backend, 'RedisCache')
      assert.ok(e.durationMs > 0)
    }
    assert.deepEqual(
      rec.of('hit').map((e) => e.key),
      ['a', 'a'],
    )
    assert.deepEqual(
      rec.of('miss').map((e) => e.key),
      ['nope', 'nope'],
    )
    assert.deepEqual(
      rec.of('delete').map((e) => e.operation),
      ['delete', 'deleteMany', 'unlink'],
    )
    assert.deepEqual(
      rec.of('set').map((e) => e.operation),
      ['set', 'setMany', 'inc'],
    )
  })

  test('memoize and cached views on Redis: internal calls are observed', async () => {
    const rec = record(cache)
    const square = cache.memoize(async (x: number) => x * x)
    assert.equal(await square(4), 16)
    assert.equal(await square(4), 16)
    const app = express()
    app.get('/r', cache.cached({ timeout: 60 }), (_req, res) => {
      res.send('redis view')
    })
    const port = await serve(app)
    await httpRequest(port, '/r')
    await settle()
    assert.equal((await httpRequest(port, '/r')).text, 'redis view')
    rec.stop()
    assert.ok(rec.of('operation').every((e) => e.backend === 'RedisCache'))
    assert.ok(rec.of('set').some((e) => e.key === 'view//r'))
    assert.ok(rec.of('hit').some((e) => e.key === 'view//r'))
    assert.ok(rec.of('hit').length >= 2, 'the memoized value and the view')
  })
})

describe('Redis stopped', () => {
  let server: RedisServer
  let cache: Cache
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  before(async () => {
    server = await startRedis()
    life.defer(() => server.stop())
    cache = life.track(
      new Cache({
        CACHE_TYPE: 'RedisCache',
        CACHE_REDIS_HOST: server.host,
        CACHE_REDIS_PORT: server.port,
        logger: silentLogger,
      }),
    )
    assert.equal(await cache.set('k', 'v'), true)
  })

  test('error events carry the error; calls still answer; errors are counted and traced', async () => {
    const rec = record(cache)
    const tracing = instrumentCache(cache, { tracer: provider.getTracer('test') })
    try {
      await server.kill()
      assert.equal(await cache.get('k'), undefined, 'the facade absorbs the error')
      assert.equal(await cache.set('k', 'v2'), false)
      const load = cache.memoize(async (id: number) => `row ${id}`)
      assert.equal(await load(1), 'row 1', 'memoize computes')
    } finally {
      rec.stop()
      tracing.disable()
    }
    const errors = rec.of('error')
    assert.ok(errors.length >= 3, `${errors.length} error events`)
    for (const e of errors) {
      assert.equal(e.status, 'error')
      assert.equal(e.backend, 'RedisCache')
      assert.ok(e.error instanceof Error)
      assert.ok(e.durationMs > 0)
    }
    assert.deepEqual(
      errors.slice(0, 2).map((e) => [e.operation, e.key]),
      [
        ['get', 'k'],
        ['set', 'k'],
      ],
    )
    assert.equal(rec.of('hit').length + rec.of('miss').length, 0)
    assert.ok(cache.stats().backend.errors >= 3)

    const spans = exporter.getFinishedSpans()
    const failed = spans.filter((s) => s.status.code === SpanStatusCode.ERROR)
    assert.ok(failed.length >= 3, `${failed.length} failed spans`)
    const get = failed.find((s) => s.name === 'cache get') as ReadableSpan
    assert.equal(get.attributes['cache.key'], 'k')
    assert.ok(get.events.some((ev) => ev.name === 'exception'))
  })
})

// ---------------------------------------------------------------- Prometheus

describe('cachette/prometheus', () => {
  /** The value of one sample line of the text exposition, or undefined. */
  function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${name}{`)) continue
      const inner = line.slice(name.length + 1, line.lastIndexOf('}'))
      const got = Object.fromEntries(
        [...inner.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
      )
      const same = Object.entries(labels).every(([k, v]) => got[k] === v)
      if (same && Object.keys(got).length === Object.keys(labels).length) {
        return Number(line.slice(line.lastIndexOf(' ') + 1))
      }
    }
    return undefined
  }

  test('operations, durations and outcome counters, with their labels and counts', async () => {
    const registry = new Registry()
    const cache = simple()
    const metrics = registerCacheMetrics(cache, { registry })
    await cache.set('a', 1)
    await cache.get('a')
    await cache.get('a')
    await cache.get('b')
    await cache.getMany('a', 'b', 'c')
    const fn = cache.memoize(async (x: number) => x + 1)
    await fn(1)
    await fn(1)
    cache[VIEW_SLOT]().observer.outcome('view', 'GET /home', 'hit')
    cache[VIEW_SLOT]().observer.outcome('view', 'GET /home', 'miss')
    const text = await registry.metrics()

    const op = (operation: string, result: string) =>
      sample(text, 'cachette_operations_total', { operation, backend: 'SimpleCache', result })
    // The memoize engine's own calls are in there too: compare with stats().
    const counted = (operation: string, status: string) =>
      cache.stats().operations.find((o) => o.operation === operation && o.status === status)?.count
    assert.ok((op('get', 'hit') ?? 0) >= 3, 'two get hits here, and the memoized hit')
    assert.equal(op('get', 'hit'), counted('get', 'hit'))
    assert.ok((op('get', 'miss') ?? 0) >= 1)
    assert.equal(op('get', 'miss'), counted('get', 'miss'))
    assert.ok((op('set', 'ok') ?? 0) >= 2, 'a.set and the memoized result')
    assert.equal(op('set', 'ok'), counted('set', 'ok'))
    assert.ok((op('getMany', 'ok') ?? 0) >= 1)
    assert.equal(
      sample(text, 'cachette_key_lookups_total', { result: 'hit' }),
      cache.stats().backend.hits,
    )
    assert.equal(
      sample(text, 'cachette_key_lookups_total', { result: 'miss' }),
      cache.stats().backend.misses,
    )

    const getCount = sample(text, 'cachette_operation_duration_seconds_count', {
      operation: 'get',
      backend: 'SimpleCache',
    })
    assert.equal(getCount, (op('get', 'hit') ?? 0) + (op('get', 'miss') ?? 0))
    assert.ok(
      (sample(text, 'cachette_operation_duration_seconds_sum', {
        operation: 'get',
        backend: 'SimpleCache',
      }) ?? 0) > 0,
    )
    assert.match(text, /cachette_operation_duration_seconds_bucket\{le="0.00005",operation="get"/)

    assert.equal(
      sample(text, 'cachette_memoize_calls_total', { function: fn.memoizeName, outcome: 'hit' }),
      1,
    )
    assert.equal(
      sample(text, 'cachette_memoize_calls_total', { function: fn.memoizeName, outcome: 'miss' }),
      1,
    )
    assert.equal(
      sample(text, 'cachette_view_requests_total', { view: 'GET /home', outcome: 'hit' }),
      1,
    )
    assert.equal(
      sample(text, 'cachette_view_requests_total', { view: 'GET /home', outcome: 'stale' }),
      0,
    )
    assert.match(text, /# TYPE cachette_operations_total counter/)
    assert.match(text, /# TYPE cachette_operation_duration_seconds histogram/)

    // Counting again: counters are read at scrape time, never doubled.
    await cache.get('a')
    const again = await registry.metrics()
    assert.equal(
      sample(again, 'cachette_operations_total', {
        operation: 'get',
        backend: 'SimpleCache',
        result: 'hit',
      }),
      (op('get', 'hit') ?? 0) + 1,
    )

    metrics.unregister()
    assert.equal(cache.observation.observed, false, 'the listener is gone')
    assert.equal(registry.getMetricsAsArray().length, 0)
  })

  test('two caches in one registry add up; a prefix separates metric sets', async () => {
    const registry = new Registry()
    const a = simple()
    const b = simple()
    const ma = registerCacheMetrics(a, { registry })
    const mb = registerCacheMetrics(b, { registry })
    const mc = registerCacheMetrics(b, { registry, prefix: 'other_' })
    assert.throws(() => registerCacheMetrics(a, { registry }), /already registered/)
    await a.get('x')
    await b.get('x')
    const text = await registry.metrics()
    assert.equal(
      sample(text, 'cachette_operations_total', {
        operation: 'get',
        backend: 'SimpleCache',
        result: 'miss',
      }),
      2,
    )
    assert.equal(
      sample(text, 'other_operations_total', {
        operation: 'get',
        backend: 'SimpleCache',
        result: 'miss',
      }),
      1,
    )
    ma.unregister()
    assert.match(await registry.metrics(), /cachette_operations_total/, 'b still exports')
    mb.unregister()
    mc.unregister()
    assert.equal(registry.getMetricsAsArray().length, 0)
  })

  test('without prom-client: registerCacheMetrics names the package', async () => {
    const out = await runWithoutPackage(
      'prom-client',
      `import { Cache } from './src/index.ts'
       import { registerCacheMetrics } from './src/observability/prometheus.ts'
       try { registerCacheMetrics(new Cache({ CACHE_TYPE: 'SimpleCache' })); console.log('null') }
       catch (e) { console.log(JSON.stringify([e.name, e.packageName])) }`,
    )
    assert.deepEqual(out, ['MissingDependencyError', 'prom-client'])
  })
})

// ---------------------------------------------------------------- OpenTelemetry

/** A context manager on AsyncLocalStorage (what @opentelemetry/context-async-hooks provides). */
class AlsContextManager implements ContextManager {
  readonly #als = new AsyncLocalStorage<Context>()
  active(): Context {
    return this.#als.getStore() ?? ROOT_CONTEXT
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.#als.run(ctx, () => fn.apply(thisArg, args))
  }
  bind<T>(_ctx: Context, target: T): T {
    return target
  }
  enable(): this {
    return this
  }
  disable(): this {
    return this
  }
}

describe('cachette/otel', () => {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const tracer = provider.getTracer('cachette-test')
  before(() => {
    context.setGlobalContextManager(new AlsContextManager())
  })
  after(() => {
    context.disable()
  })
  const spans = (): ReadableSpan[] => {
    const s = exporter.getFinishedSpans()
    exporter.reset()
    return s
  }

  test('instrumentCache: one span per operation with its attributes, for that cache only', async () => {
    const cache = simple()
    const other = simple()
    const raw = cache.backend
    other.on('operation', () => {}) // observed, but not traced
    const tracing = instrumentCache(cache, { tracer })
    spans()
    await cache.set('user:1', 'ann')
    await cache.get('user:1')
    await cache.get('user:2')
    await cache.getMany('user:1', 'user:2')
    await other.get('user:1')
    const got = spans()
    assert.deepEqual(
      got.map((s) => s.name),
      ['cache set', 'cache get', 'cache get', 'cache getMany'],
    )
    const [set, hit, miss, many] = got as [ReadableSpan, ReadableSpan, ReadableSpan, ReadableSpan]
    assert.deepEqual(set.attributes, {
      'cache.operation': 'set',
      'cache.backend': 'SimpleCache',
      'cache.key': 'user:1',
    })
    assert.equal(hit.attributes['cache.hit'], true)
    assert.equal(miss.attributes['cache.hit'], false)
    assert.deepEqual(many.attributes['cache.keys'], ['user:1', 'user:2'])
    assert.equal(many.attributes['cache.key_count'], 2)
    assert.deepEqual([many.attributes['cache.hits'], many.attributes['cache.misses']], [1, 1])
    assert.equal(hit.status.code, SpanStatusCode.UNSET)
    await cache.has('user:1')
    const has = spans().find((s) => s.name === 'cache has')
    assert.equal(has?.attributes['cache.hit'], true)

    tracing.disable()
    assert.equal(cache.backend, raw, 'no longer observed')
    await cache.get('user:1')
    assert.equal(spans().length, 0)
  })

  test('memoize calls become child spans of the active span', async () => {
    const cache = simple()
    const tracing = instrumentCache(cache, { tracer })
    spans()
    const fn = cache.memoize(async (x: number) => x)
    const parent = tracer.startSpan('request')
    await context.with(trace.setSpan(context.active(), parent), () => fn(7))
    parent.end()
    tracing.disable()
    const got = spans()
    const parentId = parent.spanContext().spanId
    const children = got.filter((s) => s.parentSpanContext?.spanId === parentId)
    assert.ok(children.length >= 2, got.map((s) => s.name).join())
    assert.ok(children.some((s) => s.name === 'cache set'))
  })

  test("keys: 'hash' and 'omit' keep user data out of spans; requireParentSpan skips root work", async () => {
    const cache = simple()
    let tracing = instrumentCache(cache, { tracer, keys: 'hash' })
    spans()
    await cache.get('email:ann@example.com')
    tracing.disable()
    let [span] = spans()
    assert.match(String(span?.attributes['cache.key']), /^[0-9a-f]{16}$/)

    tracing = instrumentCache(cache, { tracer, keys: 'omit' })
    await cache.getMany('email:ann@example.com', 'b')
    tracing.disable()
    ;[span] = spans()
    assert.equal(span?.attributes['cache.key'], undefined)
    assert.equal(span?.attributes['cache.keys'], undefined)
    assert.equal(span?.attributes['cache.key_count'], 2)

    tracing = instrumentCache(cache, { tracer, requireParentSpan: true })
    await cache.get('a')
    const parent = tracer.startSpan('job')
    await context.with(trace.setSpan(context.active(), parent), () => cache.get('b'))
    parent.end()
    tracing.disable()
    assert.deepEqual(
      spans()
        .filter((s) => s.name.startsWith('cache'))
        .map((s) => s.attributes['cache.key']),
      ['b'],
    )
    assert.throws(() => instrumentCache(cache, { tracer, keys: 'sha1' as 'hash' }), /keys must be/)
  })

  test('enableCacheTracing traces every cache, existing and created later, once each', async () => {
    const before = simple()
    const tracing = enableCacheTracing({ tracer })
    const alsoInstrumented = instrumentCache(before, { tracer })
    const later = simple()
    spans()
    await before.get('x')
    await later.set('y', 1)
    alsoInstrumented.disable()
    tracing.disable()
    assert.deepEqual(
      spans().map((s) => s.name),
      ['cache get', 'cache set'],
    )
    assert.equal(before.observation.observed, false)
    assert.equal(later.observation.observed, false)
    assert.equal(typeof (later.backend as PeekableBackend)[PEEK], 'function')
  })

  test('without @opentelemetry/api: instrumentCache names the package', async () => {
    const out = await runWithoutPackage(
      '@opentelemetry/api',
      `import { Cache } from './src/index.ts'
       import { instrumentCache } from './src/observability/otel.ts'
       try { instrumentCache(new Cache({ CACHE_TYPE: 'SimpleCache' })); console.log('null') }
       catch (e) { console.log(JSON.stringify([e.name, e.packageName])) }`,
    )
    assert.deepEqual(out, ['MissingDependencyError', '@opentelemetry/api'])
  })
})
