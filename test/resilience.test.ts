/**
 * The guard around network backends (core/guard.ts): per-call timeouts and the
 * circuit breaker, on test backends that hang or fail on command; its wiring
 * by `new Cache()`; then an Express app under continuous load while its
 * redis-server is stopped and restarted, with and without the first tier.
 */
import assert from 'node:assert/strict'
import http from 'node:http'
import { after, describe, test } from 'node:test'
import express from 'express'
import { Redis } from 'ioredis'
import { RedisCache, redisBus } from '../src/backends/redis/index.js'
import { PEEK } from '../src/core/backend.js'
import {
  BackendTimeoutError,
  BaseCache,
  Cache,
  type CacheConfig,
  CircuitOpenError,
  ConfigError,
  guardBackend,
  guardOf,
  NotAnIntegerError,
  SimpleCache,
  TieredCache,
} from '../src/index.js'
import { collectingLogger, eventually, Lifetimes, listen, silentLogger, sleep } from './helpers.js'
import { freePort, type RedisServer, startRedis } from './servers/redis.js'

const life = new Lifetimes()
after(() => life.stopAll())

type Mode = 'ok' | 'fail' | 'hang' | 'slow' | 'typeError'

/**
 * A test backend that answers, fails, hangs or answers late on command
 * (storage is a Map). Not a stand-in for a real server: the real-server
 * behaviour is tested against redis-server below.
 */
class Controlled extends BaseCache {
  mode: Mode = 'ok'
  slowMs = 200
  calls = 0
  readonly #data = new Map<string, unknown>()
  readonly #secret = 'private field'
  get secret(): string {
    return this.#secret
  }
  ping(): string {
    return this.#secret
  }
  async #op<T>(answer: () => T): Promise<T> {
    this.calls++
    switch (this.mode) {
      case 'ok':
        return answer()
      case 'fail':
        throw new Error('backend unreachable')
      case 'typeError':
        throw new NotAnIntegerError('not an integer')
      case 'hang':
        return new Promise<T>(() => {})
      case 'slow':
        await sleep(this.slowMs)
        return answer()
    }
  }
  get(key: string) {
    return this.#op(() => this.#data.get(key))
  }
  set(key: string, value: unknown) {
    return this.#op(() => {
      this.#data.set(key, value)
      return true
    })
  }
  add(key: string, value: unknown) {
    return this.#op(() => {
      if (this.#data.has(key)) return false
      this.#data.set(key, value)
      return true
    })
  }
  delete(key: string) {
    return this.#op(() => this.#data.delete(key))
  }
  has(key: string) {
    return this.#op(() => this.#data.has(key))
  }
  clear() {
    return this.#op(() => {
      this.#data.clear()
      return true
    })
  }
}

describe('guardBackend: timeouts', () => {
  test('a call that never answers rejects with BackendTimeoutError after the timeout', async () => {
    const backend = guardBackend(new Controlled(), { timeout: 0.2, breaker: false })
    ;(backend as Controlled).mode = 'hang'
    const started = Date.now()
    await assert.rejects(backend.get('k'), (e: unknown) => {
      assert.ok(e instanceof BackendTimeoutError)
      assert.equal(e.code, 'ERR_CACHETTE_BACKEND_TIMEOUT')
      assert.match(e.message, /Controlled\.get: no answer within 200 ms/)
      return true
    })
    const took = Date.now() - started
    // At least the timeout (a timer never fires early); the upper bound only catches a hang.
    assert.ok(took >= 190 && took < 15_000, `took ${took} ms`)
    assert.equal(guardOf(backend)?.pendingCalls, 0)
  })

  test('the late result of a timed-out call is ignored (no unhandled rejection either)', async () => {
    const unhandled: unknown[] = []
    const spy = (e: unknown) => unhandled.push(e)
    process.on('unhandledRejection', spy)
    try {
      const raw = new Controlled()
      const backend = guardBackend(raw, { timeout: 0.05, breaker: false })
      raw.mode = 'slow'
      raw.slowMs = 300
      await assert.rejects(backend.set('k', 'late'), BackendTimeoutError)
      raw.mode = 'ok'
      // The write still lands in the backend (it cannot be taken back), but the caller was answered.
      await eventually(async () => (await raw.get('k')) === 'late', 10_000, 'late write')
      // A late failure after the deadline is swallowed by the guard.
      const failing = guardBackend(new FailLate(), { timeout: 0.05, breaker: false })
      await assert.rejects(failing.get('k'), BackendTimeoutError)
      await sleep(400)
      assert.deepEqual(unhandled, [])
    } finally {
      process.off('unhandledRejection', spy)
    }
  })

  test('timeout 0 means no deadline', async () => {
    const raw = new Controlled()
    const backend = guardBackend(raw, { timeout: 0, breaker: false })
    raw.mode = 'slow'
    raw.slowMs = 100
    assert.equal(await backend.set('k', 1), true)
  })
})

describe('guardBackend: the circuit breaker', () => {
  test('opens after N consecutive failures, fails fast without calling, probes once, closes', async () => {
    const logger = collectingLogger()
    const raw = new Controlled()
    const backend = guardBackend(raw, {
      timeout: 2,
      breaker: { failures: 3, openFor: 0.3 },
      logger,
    })
    const guard = guardOf(backend)
    assert.ok(guard)
    raw.mode = 'fail'
    for (let i = 0; i < 3; i++) await assert.rejects(backend.get('k'), /backend unreachable/)
    assert.equal(guard.state, 'open')
    assert.equal(logger.warnings.filter((m) => m.includes('CACHETTE_CIRCUIT_OPEN')).length, 1)
    assert.match(
      logger.warnings[0] as string,
      /Controlled: circuit breaker opened after 3 consecutive failures \(last: backend unreachable\)/,
    )

    const before = raw.calls
    await assert.rejects(backend.get('k'), (e: unknown) => {
      assert.ok(e instanceof CircuitOpenError)
      assert.equal(e.code, 'ERR_CACHETTE_CIRCUIT_OPEN')
      assert.match(e.message, /circuit open .*last: backend unreachable/)
      return true
    })
    await assert.rejects(backend.set('k', 1), CircuitOpenError)
    assert.equal(raw.calls, before, 'the backend was not called while open')

    raw.mode = 'slow'
    raw.slowMs = 200
    await eventually(async () => guard.state === 'half-open', 3000, 'half-open')
    const probe = backend.set('k', 'probe')
    // While the probe is under way, the others still fail fast.
    await assert.rejects(backend.get('k'), CircuitOpenError)
    assert.equal(raw.calls, before + 1, 'one probe only')
    assert.equal(await probe, true)
    assert.equal(guard.state, 'closed')
    assert.ok(logger.warnings.some((m) => m.includes('CACHETTE_CIRCUIT_CLOSED')))
    raw.mode = 'ok'
    assert.equal(await backend.get('k'), 'probe')
  })

  test('a failed probe opens it again, quietly: one warning per outage', async () => {
    const logger = collectingLogger()
    const raw = new Controlled()
    const backend = guardBackend(raw, { breaker: { failures: 2, openFor: 0.1 }, logger })
    const guard = guardOf(backend)
    raw.mode = 'fail'
    for (let i = 0; i < 2; i++) await assert.rejects(backend.get('k'))
    for (let round = 0; round < 3; round++) {
      await eventually(async () => guard?.state === 'half-open', 3000, 'half-open')
      const calls = raw.calls
      await assert.rejects(backend.get('k'), /backend unreachable/)
      assert.equal(raw.calls, calls + 1, 'the probe reached the backend')
      assert.equal(guard?.state, 'open')
    }
    assert.equal(logger.warnings.length, 1, logger.warnings.join('\n'))
  })

  test('without a timeout, a probe that never answers does not keep the circuit open forever', async () => {
    const raw = new Controlled()
    const backend = guardBackend(raw, {
      timeout: 0,
      breaker: { failures: 1, openFor: 0.1 },
      logger: silentLogger,
    })
    raw.mode = 'fail'
    await assert.rejects(backend.get('k'), /backend unreachable/)
    raw.mode = 'hang'
    await eventually(async () => guardOf(backend)?.state === 'half-open', 3000, 'half-open')
    void backend.get('probe') // hangs
    const calls = raw.calls
    await assert.rejects(backend.get('k'), CircuitOpenError)
    raw.mode = 'ok'
    await eventually(
      async () => (await backend.get('k').catch(() => 'refused')) === undefined,
      3000,
      'a new probe once openFor passed, which succeeds',
    )
    assert.ok(raw.calls > calls)
    assert.equal(guardOf(backend)?.state, 'closed')
  })

  test('timeouts count as failures', async () => {
    const raw = new Controlled()
    const backend = guardBackend(raw, {
      timeout: 0.05,
      breaker: { failures: 2, openFor: 10 },
      logger: silentLogger,
    })
    raw.mode = 'hang'
    await assert.rejects(backend.get('a'), BackendTimeoutError)
    await assert.rejects(backend.get('b'), BackendTimeoutError)
    await assert.rejects(backend.get('c'), CircuitOpenError)
  })

  test('TypeErrors (bad values, non-integers) are answers, not failures', async () => {
    const raw = new Controlled()
    const backend = guardBackend(raw, { breaker: { failures: 2, openFor: 10 } })
    raw.mode = 'typeError'
    for (let i = 0; i < 5; i++) await assert.rejects(backend.get('k'), NotAnIntegerError)
    assert.equal(guardOf(backend)?.state, 'closed')
  })
})

describe('guardBackend: the same object to everyone', () => {
  test('instanceof, constructor, getters and methods on private fields, optional methods', async () => {
    const raw = new Controlled()
    const backend = guardBackend(raw, { breaker: false })
    assert.ok(backend instanceof Controlled)
    assert.equal(backend.constructor, Controlled)
    assert.equal((backend as Controlled).secret, 'private field')
    assert.equal((backend as Controlled).ping(), 'private field')
    ;(backend as Controlled).slowMs = 7
    assert.equal(raw.slowMs, 7, 'writes reach the backend')
    assert.equal('acquireLock' in backend, false, 'no optional method appears')
    assert.equal(guardBackend(backend), backend, 'guarding twice is a no-op')
    assert.equal(guardOf(raw), undefined)
    assert.equal(backend.get, backend.get, 'methods are built once')
    await backend.close?.()
  })
})

describe('new Cache(): where the guard goes, and its configuration', () => {
  test('network backends are guarded with the defaults; in-process ones are not', async () => {
    const guarded = new Cache({ CACHE_TYPE: () => new Controlled(), logger: silentLogger })
    const guard = guardOf(guarded.backend)
    assert.ok(guard)
    assert.equal(guard.timeoutMs, 5000)
    assert.equal(guard.failuresToOpen, 10)
    assert.equal(guard.openForMs, 5000)
    assert.ok(guarded.backend instanceof Controlled)

    const simple = new Cache({ CACHE_TYPE: 'SimpleCache' })
    assert.ok(simple.backend instanceof SimpleCache)
    assert.equal(guardOf(simple.backend), undefined)
    assert.equal(typeof (simple.backend as { [PEEK]?: unknown })[PEEK], 'function', 'PEEK intact')

    const off = new Cache({
      CACHE_TYPE: () => new Controlled(),
      CACHE_OPERATION_TIMEOUT: 0,
      CACHE_CIRCUIT_BREAKER: false,
    })
    assert.equal(guardOf(off.backend), undefined, 'both off: not wrapped at all')

    const tiered = new Cache({
      CACHE_TYPE: () => new TieredCache({ second: new Controlled() }),
      operationTimeout: '250ms',
      circuitBreaker: { failures: 2, openFor: '2s' },
    })
    const t = tiered.backend as TieredCache
    assert.ok(t instanceof TieredCache)
    assert.equal(guardOf(t), undefined, 'not the TieredCache itself')
    assert.equal(guardOf(t.first), undefined, 'nor its first tier')
    const second = guardOf(t.second)
    assert.equal(second?.timeoutMs, 250, 'its second tier')
    assert.equal(second?.failuresToOpen, 2)
    assert.equal(second?.openForMs, 2000)
  })

  test('the facade absorbs timeouts and open circuits: misses and false', async () => {
    const raw = new Controlled()
    const cache = new Cache({
      CACHE_TYPE: () => raw,
      CACHE_OPERATION_TIMEOUT: 0.1,
      CACHE_CIRCUIT_BREAKER: { failures: 2, openFor: 60 },
      logger: silentLogger,
    })
    raw.mode = 'hang'
    const started = Date.now()
    assert.equal(await cache.get('k'), undefined)
    assert.equal(await cache.set('k', 1), false)
    assert.equal(await cache.get('k'), undefined, 'open: fails fast')
    // A generous bound: it fails on a hang, not on a slow machine.
    assert.ok(Date.now() - started < 15_000)
    const memo = cache.memoize(async (n: number) => n * 2)
    assert.equal(await memo(21), 42)
  })

  test('a TieredCache keeps serving first-tier hits while its second tier is down', async () => {
    const raw = new Controlled()
    const cache = new Cache({
      CACHE_TYPE: () => new TieredCache({ second: raw, firstTimeout: 60 }),
      CACHE_CIRCUIT_BREAKER: { failures: 1, openFor: 60 },
      logger: silentLogger,
    })
    await cache.set('k', 'v')
    raw.mode = 'fail'
    assert.equal(await cache.get('missing'), undefined)
    assert.equal(guardOf((cache.backend as TieredCache).second)?.state, 'open')
    assert.equal(await cache.get('k'), 'v')
  })

  test('bad values are ConfigErrors naming the key, at construction', () => {
    const bad: [CacheConfig, string][] = [
      [{ CACHE_CIRCUIT_BREAKER: { failures: 0 } as never }, 'CACHE_CIRCUIT_BREAKER'],
      [{ CACHE_CIRCUIT_BREAKER: { failures: 1.5 } as never }, 'CACHE_CIRCUIT_BREAKER'],
      [{ CACHE_CIRCUIT_BREAKER: { openFor: 0 } as never }, 'CACHE_CIRCUIT_BREAKER'],
      [{ CACHE_CIRCUIT_BREAKER: { openFor: 'soon' } as never }, 'CACHE_CIRCUIT_BREAKER'],
      [{ CACHE_CIRCUIT_BREAKER: { failure: 3 } as never }, 'CACHE_CIRCUIT_BREAKER'],
      [{ CACHE_CIRCUIT_BREAKER: 'sometimes' as never }, 'CACHE_CIRCUIT_BREAKER'],
      [{ CACHE_CIRCUIT_BREAKER: 3 as never }, 'CACHE_CIRCUIT_BREAKER'],
      [{ CACHE_OPERATION_TIMEOUT: -1 }, 'CACHE_OPERATION_TIMEOUT'],
      [{ CACHE_OPERATION_TIMEOUT: 'later' }, 'CACHE_OPERATION_TIMEOUT'],
      [{ operationTimeout: -1 }, 'operationTimeout'],
    ]
    for (const [config, key] of bad) {
      assert.throws(
        () => new Cache({ CACHE_TYPE: () => new Controlled(), ...config }),
        (e: unknown) => e instanceof ConfigError && e.key === key,
        JSON.stringify(config),
      )
    }
  })

  test('from the environment: a duration and JSON', async () => {
    const port = await freePort()
    const cache = Cache.fromEnv({
      CACHE_TYPE: 'RedisCache',
      CACHE_REDIS_HOST: '127.0.0.1',
      CACHE_REDIS_PORT: String(port),
      CACHE_OPERATION_TIMEOUT: '250ms',
      CACHE_CIRCUIT_BREAKER: '{"failures": 2, "openFor": "1m"}',
    })
    life.track(cache)
    const guard = guardOf(cache.backend)
    assert.equal(guard?.timeoutMs, 250)
    assert.equal(guard?.failuresToOpen, 2)
    assert.equal(guard?.openForMs, 60_000)
    assert.ok(cache.backend instanceof RedisCache, 'still a RedisCache to its users')
    assert.ok((cache.backend as RedisCache).client, 'and its client getter works')
    const off = Cache.fromEnv({
      CACHE_TYPE: 'RedisCache',
      CACHE_REDIS_PORT: String(port),
      CACHE_OPERATION_TIMEOUT: '0',
      CACHE_CIRCUIT_BREAKER: 'false',
    })
    life.track(off)
    assert.equal(guardOf(off.backend), undefined)
  })
})

// ---- an Express app under load, Redis stopped and restarted -------------------------

/** What the load loops saw. */
interface Tally {
  requests: number
  failures: string[]
}

/** Keep-alive requests from `loops` concurrent loops until `running()` is false. */
async function load(port: number, loops: number, running: () => boolean, tally: Tally) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: loops })
  const one = (path: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path, agent, timeout: 5000 }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          body += c
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
        res.on('error', reject)
      })
      req.on('timeout', () => req.destroy(new Error(`no answer within 5 s: ${path}`)))
      req.on('error', reject)
    })
  let i = 0
  await Promise.all(
    Array.from({ length: loops }, async (_, loop) => {
      while (running()) {
        const n = (i++ + loop) % 10
        const kind = i % 2 === 0 ? 'page' : 'memo'
        const path = `/${kind}/${n}`
        try {
          const { status, body } = await one(path)
          if (status !== 200 || body !== `${kind} ${n}`) {
            tally.failures.push(`${path}: ${status} ${body.slice(0, 100)}`)
          }
        } catch (error) {
          tally.failures.push(`${path}: ${String(error)}`)
        }
        tally.requests++
      }
    }),
  )
  agent.destroy()
}

/** The app: a cached view and a memoized function, counting what they compute. */
function makeApp(cache: Cache) {
  const counts = { computed: 0 }
  const app = express()
  const memo = cache.memoize(
    async (n: number) => {
      counts.computed++
      return `memo ${n}`
    },
    { timeout: 300 },
  )
  app.get('/page/:n', cache.cached({ timeout: 300 }), (req, res) => {
    counts.computed++
    res.type('text/plain').send(`page ${req.params.n}`)
  })
  app.get('/memo/:n', async (req, res) => {
    res.type('text/plain').send(await memo(Number(req.params.n)))
  })
  return { app, counts }
}

/**
 * Runs the load, stops redis-server for ~1.5 s in the middle, restarts it and
 * keeps going until `recovered()`; returns what happened in each phase.
 */
async function outage(
  cache: Cache,
  server: RedisServer,
  recovered: () => Promise<boolean>,
): Promise<{ tally: Tally; down: { served: number; computed: number } }> {
  const { app, counts } = makeApp(cache)
  const listening = await listen(app as unknown as http.RequestListener)
  const tally: Tally = { requests: 0, failures: [] }
  let running = true
  const loading = load(listening.port, 20, () => running, tally)
  try {
    await sleep(800) // warm: every path computed once and cached
    // Counts, not durations, decide the phases: a loaded machine serves fewer requests a second.
    await eventually(async () => tally.requests >= 100, 30_000, 'the warm-up requests')
    await server.stop()
    const at = { requests: tally.requests, computed: counts.computed }
    await sleep(1500)
    await eventually(
      async () => tally.requests - at.requests >= 50,
      30_000,
      'requests served while down',
    )
    const down = {
      served: tally.requests - at.requests,
      computed: counts.computed - at.computed,
    }
    await server.start()
    await eventually(recovered, 20_000, 'recovery after the restart')
    await sleep(500)
    await eventually(async () => tally.requests > 250, 30_000, 'the requests after recovery')
    return { tally, down }
  } finally {
    running = false
    await loading
    await listening.close()
  }
}

/** The client packages the Redis parts run on: ioredis (the default), and node-redis. */
const KINDS = ['ioredis', 'node-redis'] as const
type Kind = (typeof KINDS)[number]
/** The options choosing `kind`: none for ioredis (the default). */
const pick = (kind: Kind): { client?: Kind } => (kind === 'ioredis' ? {} : { client: kind })
/** Test names stay as they were on ioredis. */
const on = (kind: Kind): string => (kind === 'ioredis' ? '' : ' (node-redis)')

for (const kind of KINDS) {
  describe(`an Express app under load while redis-server is stopped and restarted${on(kind)}`, () => {
    test('TieredCache over RedisCache with RedisBus: zero failed requests, first-tier hits while down', async (t) => {
      const server = await startRedis()
      life.defer(() => server.stop())
      const raw = new Redis({ host: '127.0.0.1', port: server.port })
      raw.on('error', () => {})
      life.defer(async () => raw.disconnect())
      const logger = collectingLogger()
      const cache = life.track(
        new Cache({
          CACHE_TYPE: TieredCache.over(RedisCache, { bus: redisBus(), firstTimeout: 60 }),
          CACHE_REDIS_HOST: '127.0.0.1',
          CACHE_REDIS_PORT: server.port,
          CACHE_CIRCUIT_BREAKER: { failures: 5, openFor: 1 },
          CACHE_OPTIONS: pick(kind),
          logger,
        }),
      )
      const tiered = (await cache.ready()) as TieredCache
      await eventually(async () => tiered.busConnected, 5000, 'bus subscribed')

      const { tally, down } = await outage(cache, server, async () => {
        // Writes reach the restarted (empty) server again.
        const keys = await raw.keys('flask_cache_*').catch(() => [])
        return keys.length > 0 && tiered.busConnected
      })
      t.diagnostic(
        `${tally.requests} requests, ${tally.failures.length} failed; while down: ${down.served} served, ${down.computed} computed`,
      )
      assert.deepEqual(tally.failures.slice(0, 10), [], `${tally.failures.length} failed requests`)
      assert.ok(tally.requests > 200, `${tally.requests} requests`)
      assert.ok(down.served > 20, `served while down: ${down.served}`)
      assert.ok(
        down.computed < down.served / 2,
        `first-tier hits while Redis was down: ${down.served} served, ${down.computed} computed`,
      )
      assert.ok(logger.warnings.some((m) => m.includes('CACHETTE_BUS_DOWN')))
      assert.ok(logger.warnings.some((m) => m.includes('CACHETTE_BUS_UP')))
    })

    test('plain RedisCache: zero failed requests, the breaker opens and closes', async (t) => {
      const server = await startRedis()
      life.defer(() => server.stop())
      const raw = new Redis({ host: '127.0.0.1', port: server.port })
      raw.on('error', () => {})
      life.defer(async () => raw.disconnect())
      const logger = collectingLogger()
      const cache = life.track(
        new Cache({
          CACHE_TYPE: RedisCache,
          CACHE_REDIS_HOST: '127.0.0.1',
          CACHE_REDIS_PORT: server.port,
          CACHE_CIRCUIT_BREAKER: { failures: 5, openFor: 1 },
          CACHE_OPTIONS: pick(kind),
          logger,
        }),
      )
      const { tally, down } = await outage(cache, server, async () => {
        const keys = await raw.keys('flask_cache_*').catch(() => [])
        return keys.length > 0 && logger.warnings.some((m) => m.includes('CACHETTE_CIRCUIT_CLOSED'))
      })
      t.diagnostic(
        `${tally.requests} requests, ${tally.failures.length} failed; while down: ${down.served} served, ${down.computed} computed`,
      )
      assert.deepEqual(tally.failures.slice(0, 10), [], `${tally.failures.length} failed requests`)
      assert.ok(down.served > 20, `served while down: ${down.served}`)
      assert.ok(down.computed > 0, 'misses were computed while down')
      const opened = logger.warnings.filter((m) => m.includes('CACHETTE_CIRCUIT_OPEN'))
      assert.equal(opened.length, 1, logger.warnings.join('\n'))
      assert.match(opened[0] as string, /RedisCache: circuit breaker opened/)
      assert.ok(logger.warnings.some((m) => m.includes('CACHETTE_CIRCUIT_CLOSED')))
      assert.ok(
        logger.errors.length < 50,
        `absorbed errors are rate-limited: ${logger.errors.length}`,
      )
    })
  })
}

/** Rejects every call, but only after 150 ms (later than the guard's deadline in the test). */
class FailLate extends Controlled {
  override get(_key: string): Promise<unknown> {
    return sleep(150).then(() => {
      throw new Error('late failure')
    })
  }
}
