/**
 * What is particular to running the Redis backends on node-redis (the
 * `redis` package), against real servers started by test/servers/redis.ts:
 * adopting an app's client of either kind (never closed by cachette), the
 * options node-redis gets, the configuration errors, the missing package,
 * and the invalidation bus between two caches on every deployment and both
 * clients. The shared cases (contract, failure, failover, cluster slots)
 * run on both clients in test/redis.test.ts.
 */
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { Redis } from 'ioredis'
import { createClient, createCluster, createSentinel } from 'redis'
import {
  RedisBus,
  RedisCache,
  RedisClusterCache,
  RedisSentinelCache,
  redisBus,
} from '../src/backends/redis/index.js'
import { ConfigError } from '../src/core/errors.js'
import { Cache, TieredCache } from '../src/index.js'
import { eventually, Lifetimes, runWithoutPackage, silentLogger } from './helpers.js'
import {
  type ClusterSetup,
  type SentinelSetup,
  startCluster,
  startRedis,
  startSentinelSetup,
} from './servers/redis.js'

const silent = silentLogger
const life = new Lifetimes()
const track = <T extends { close(): Promise<unknown> }>(thing: T): T => life.track(thing)
const lazily = <T extends { stop(): Promise<void> }>(start: () => Promise<T>): (() => Promise<T>) =>
  life.lazily(start, (s) => s.stop())
const plain = lazily(() => startRedis())
const sentinel = lazily<SentinelSetup>(() => startSentinelSetup())
const cluster = lazily<ClusterSetup>(() => startCluster())

/** Clients of the app's own, closed after the file (by the test, never by cachette). */
const owned: (() => Promise<unknown>)[] = []
after(async () => {
  for (const close of owned) await close().catch(() => {})
  await life.stopAll()
})

const KINDS = ['ioredis', 'node-redis'] as const
type Kind = (typeof KINDS)[number]
const pick = (kind: Kind): { client?: Kind } => (kind === 'ioredis' ? {} : { client: kind })

// ---- adopting the app's client ---------------------------------------------------

describe('node-redis: a client of the app is adopted and never closed', () => {
  test('createClient(): shared through CACHE_OPTIONS.client and CACHE_REDIS_HOST, usable after close()', async () => {
    const s = await plain()
    const shared = createClient({ socket: { host: '127.0.0.1', port: s.port } })
    shared.on('error', () => {})
    owned.push(() => shared.close())
    await shared.connect()
    const listeners = shared.listenerCount('error')
    const c = new Cache({
      CACHE_TYPE: RedisCache,
      CACHE_OPTIONS: { client: shared },
      CACHE_KEY_PREFIX: 'adopt:',
      logger: silent,
    })
    assert.equal(await c.set('k', 'v'), true)
    assert.equal(await c.get('k'), 'v')
    assert.equal(await c.inc('n', 3), 3)
    assert.equal(await shared.get('adopt:n'), '3', 'the app reads what the cache wrote')
    assert.equal((c.backend as RedisCache).client, shared, 'client gives the app its own object')
    assert.equal(shared.listenerCount('error'), listeners + 1, 'an error listener while in use')
    await c.close()
    assert.equal(shared.isReady, true, 'still connected after cache.close()')
    assert.equal(await shared.ping(), 'PONG')
    assert.equal(await shared.get('adopt:n'), '3')
    assert.equal(shared.listenerCount('error'), listeners, 'its error listener is removed')
    // CACHE_REDIS_HOST may be the client too (as with ioredis).
    const b = new Cache({
      CACHE_TYPE: RedisCache,
      CACHE_REDIS_HOST: shared,
      CACHE_KEY_PREFIX: 'adopt:',
      logger: silent,
    })
    assert.equal(await b.get('k'), 'v')
    await b.close()
    assert.equal(await shared.ping(), 'PONG')
  })

  test('an ioredis client through CACHE_OPTIONS.client is adopted the same way', async () => {
    const s = await plain()
    const shared = new Redis({ host: '127.0.0.1', port: s.port })
    owned.push(async () => shared.disconnect())
    await shared.ping()
    const c = new Cache({
      CACHE_TYPE: RedisCache,
      CACHE_OPTIONS: { client: shared },
      CACHE_KEY_PREFIX: 'adopt-io:',
      logger: silent,
    })
    assert.equal(await c.set('k', 1), true)
    await c.close()
    assert.equal(shared.status, 'ready')
    assert.equal(await shared.get('adopt-io:k'), '1')
  })

  test('createCluster(): shared and left open; multi-key operations across slots', async () => {
    const setup = await cluster()
    const shared = createCluster({
      rootNodes: setup.nodes.map((n) => ({ socket: { host: '127.0.0.1', port: n.port } })),
    })
    shared.on('error', () => {})
    owned.push(() => shared.close())
    await shared.connect()
    const b = new RedisClusterCache({ client: shared, keyPrefix: 'adopt-c:', logger: silent })
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`)
    assert.deepEqual(await b.setMany(keys.map((k, i) => [k, i])), keys)
    assert.deepEqual(
      await b.getMany(keys),
      keys.map((_, i) => i),
    )
    assert.deepEqual(await b.deleteMany(keys.slice(0, 20)), keys.slice(0, 20))
    await b.close()
    assert.equal(shared.isOpen, true)
    assert.equal(await shared.get('adopt-c:k30'), '30')
  })

  test('createSentinel(): shared and left open', async () => {
    const setup = await sentinel()
    const shared = createSentinel({
      name: setup.masterName,
      sentinelRootNodes: setup.sentinelAddresses.map(([host, port]) => ({ host, port })),
    })
    shared.on('error', () => {})
    owned.push(() => shared.close())
    await shared.connect()
    const b = new RedisSentinelCache({ client: shared, keyPrefix: 'adopt-s:', logger: silent })
    assert.equal(await b.set('k', { deep: [1] }), true)
    assert.deepEqual(await b.get('k'), { deep: [1] })
    await b.close()
    assert.equal(shared.isOpen, true)
    assert.equal(typeof (await shared.get('adopt-s:k')), 'string')
  })
})

// ---- the client cachette opens ----------------------------------------------------

describe('node-redis: the client cachette opens', () => {
  test('fail-fast defaults, CACHE_OPTIONS passed through, the client getter', async () => {
    const s = await plain()
    const c = track(
      new Cache({
        CACHE_TYPE: RedisCache,
        CACHE_REDIS_URL: `redis://127.0.0.1:${s.port}/3`,
        CACHE_OPTIONS: { client: 'node-redis', name: 'cachette-node', command_timeout: 500 },
        logger: silent,
      }),
    )
    const backend = (await c.ready()) as RedisCache
    const raw = backend.client as ReturnType<typeof createClient>
    assert.equal(typeof raw.withTypeMapping, 'function', 'a node-redis client')
    const options = raw.options as Record<string, unknown> & {
      socket: Record<string, unknown>
    }
    assert.equal(options.disableOfflineQueue, true)
    assert.equal(options.database, 3)
    assert.equal(options.socket.connectTimeout, 2000)
    assert.equal(typeof options.socket.reconnectStrategy, 'function')
    assert.equal(await c.set('k', 1), true)
    const probe = new Redis({ port: s.port, db: 3 })
    owned.push(async () => probe.disconnect())
    assert.equal(await probe.get('flask_cache_k'), '1', 'database 3 of the URL')
    const list = String(await probe.call('CLIENT', 'LIST'))
    assert.match(list, /name=cachette-node/, 'the pass-through option reached node-redis')
    assert.ok(raw.listenerCount('error') >= 1, 'an error listener is always attached')
    await c.close()
    assert.equal(raw.isOpen, false, 'cachette closes the client it opened')
  })

  test('a cache used right after construction waits for the first connection; lazyConnect connects on first use', async () => {
    const s = await plain()
    const eager = track(
      new RedisCache({ client: 'node-redis', host: '127.0.0.1', port: s.port, keyPrefix: 'e:' }),
    )
    assert.equal((eager.client as { isReady: boolean }).isReady, false)
    assert.equal(await eager.set('k', 1), true)
    const lazy = track(
      RedisCache.factory(
        undefined,
        { CACHE_REDIS_HOST: '127.0.0.1', CACHE_REDIS_PORT: s.port, CACHE_KEY_PREFIX: 'e:' },
        [],
        {
          defaultTimeout: 300,
          ignoreDeleteManyErrors: false,
          logger: silent,
          client: 'node-redis',
          lazyConnect: true,
        },
      ),
    )
    assert.equal((lazy.client as { isOpen: boolean }).isOpen, false, 'not connected yet')
    assert.equal(await lazy.get('k'), 1)
    assert.equal((lazy.client as { isReady: boolean }).isReady, true)
  })
})

// ---- configuration errors and the missing package --------------------------------------

describe('node-redis: configuration errors and the missing package', () => {
  const rejectsWithKey = (fn: () => unknown, key: string, message?: RegExp) =>
    assert.throws(fn, (error: unknown) => {
      assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`)
      assert.equal(error.key, key)
      if (message) assert.match(error.message, message)
      return true
    })

  test('an unknown client name or a wrong object names the key', async () => {
    rejectsWithKey(
      () => new Cache({ CACHE_TYPE: RedisCache, CACHE_OPTIONS: { client: 'node_redis' } }).backend,
      'CACHE_OPTIONS',
      /'ioredis', 'node-redis'/,
    )
    rejectsWithKey(() => new RedisCache({ client: 42 }), 'CACHE_OPTIONS')
    rejectsWithKey(() => new RedisSentinelCache({ client: 'redis' }), 'CACHE_OPTIONS')
    rejectsWithKey(() => new RedisClusterCache({ cluster: 'h:1', client: true }), 'CACHE_OPTIONS')
    rejectsWithKey(() => new RedisCache({ client: { get() {} } }), 'CACHE_REDIS_HOST', /node-redis/)
    rejectsWithKey(() => new RedisBus({ client: 'nope' }), 'CACHE_OPTIONS')
    const s = await plain()
    const standalone = createClient({ socket: { host: '127.0.0.1', port: s.port } })
    rejectsWithKey(
      () => new RedisClusterCache({ client: standalone }),
      'CACHE_REDIS_HOST',
      /cluster client/,
    )
    const nodes = createCluster({ rootNodes: [{ socket: { host: '127.0.0.1', port: 1 } }] })
    rejectsWithKey(() => new RedisBus({ client: nodes }), 'CACHE_OPTIONS', /Cluster/)
    // Other options are still checked with node-redis.
    rejectsWithKey(
      () => new RedisCache({ client: 'node-redis', clientOptions: { decodeResponses: true } }),
      'CACHE_OPTIONS',
    )
    rejectsWithKey(() => new RedisCache({ client: 'node-redis', port: 0 }), 'CACHE_REDIS_PORT')
  })

  test('without redis: choosing node-redis names the package; ioredis needs nothing more', async () => {
    const code = `
      import { Cache } from './src/index.ts'
      import { RedisCache, RedisSentinelCache, RedisClusterCache, RedisBus } from './src/backends/redis/index.ts'
      const out = []
      for (const make of [
        () => new RedisCache({ client: 'node-redis' }),
        () => new RedisSentinelCache({ client: 'node-redis' }),
        () => new RedisClusterCache({ cluster: 'h:1', client: 'node-redis' }),
        () => new Cache({ CACHE_TYPE: 'redis', CACHE_OPTIONS: { client: 'node-redis' } }).backend,
        () => new RedisBus({ client: 'node-redis' }),
      ]) {
        try { make(); out.push('constructed') } catch (e) { out.push([e.name, e.packageName, e.message]) }
      }
      const io = new RedisCache({ port: 1, logger: { warn() {}, error() {} } })
      out.push(io.constructor.name)
      await io.close()
      console.log(JSON.stringify(out))`
    const out = (await runWithoutPackage('redis', code)) as unknown[]
    const missing = (who: string) => [
      'MissingDependencyError',
      'redis',
      `${who} needs the package "redis": npm install redis`,
    ]
    assert.deepEqual(out, [
      missing('RedisCache'),
      missing('RedisSentinelCache'),
      missing('RedisClusterCache'),
      missing('RedisCache'),
      missing('RedisBus'),
      'RedisCache',
    ])
  })
})

// ---- the invalidation bus between two caches, every deployment, both clients ------------

interface BusDeployment {
  name: string
  /** The Cache configuration of one process's cache (bus included) for `kind`. */
  config(kind: Kind): Promise<Record<string, unknown>>
}

const busDeployments: BusDeployment[] = [
  {
    name: 'RedisCache',
    config: async (kind) => ({
      CACHE_TYPE: TieredCache.over(RedisCache, { bus: redisBus(), firstTimeout: 60 }),
      CACHE_REDIS_URL: `redis://127.0.0.1:${(await plain()).port}`,
      CACHE_OPTIONS: pick(kind),
    }),
  },
  {
    name: 'RedisSentinelCache',
    config: async (kind) => ({
      CACHE_TYPE: TieredCache.over(RedisSentinelCache, { bus: redisBus(), firstTimeout: 60 }),
      CACHE_REDIS_SENTINELS: (await sentinel()).sentinelAddresses,
      CACHE_OPTIONS: pick(kind),
    }),
  },
  {
    name: 'RedisClusterCache',
    config: async (kind) => {
      const setup = await cluster()
      // PUBLISH on any cluster node reaches every node: the bus names one.
      const node = `redis://127.0.0.1:${(setup.nodes[0] as { port: number }).port}`
      return {
        CACHE_TYPE: TieredCache.over(RedisClusterCache, {
          bus: redisBus({ url: node, ...pick(kind) }),
          firstTimeout: 60,
        }),
        CACHE_REDIS_CLUSTER: setup.clusterString,
        CACHE_OPTIONS: pick(kind),
      }
    },
  },
]

for (const kind of KINDS) {
  for (const d of busDeployments) {
    describe(`RedisBus on ${kind}: ${d.name} tiers invalidate each other`, () => {
      test('a set and a delete in one cache drop the copy in the other first tier', async () => {
        const prefix = `bus-${kind}-${d.name}:`
        const make = async () =>
          track(new Cache({ ...(await d.config(kind)), CACHE_KEY_PREFIX: prefix, logger: silent }))
        const one = await make()
        const two = await make()
        const tiers = [(await one.ready()) as TieredCache, (await two.ready()) as TieredCache]
        await eventually(async () => tiers.every((t) => t.busConnected), 15_000, 'buses subscribed')
        // Behind both caches' backs (no message): the second tier alone.
        const behind = (await two.ready()) as TieredCache
        // two's own write fills its first tier (a cache ignores its own messages).
        await two.set('k', 'v1')
        assert.equal(await behind.first.has('k'), true)
        await behind.second.set('k', 'behind')
        assert.equal(await two.get('k'), 'v1', 'two answers from its first tier')
        await one.set('k', 'v2')
        await eventually(async () => (await two.get('k')) === 'v2', 5000, 'two sees the set')
        await one.delete('k')
        await eventually(
          async () => (await two.get('k')) === undefined,
          5000,
          'two sees the delete',
        )
      })
    })
  }
}

// ---- RedisBus on a node-redis client of the app ---------------------------------------

describe('RedisBus on a node-redis client of the app', () => {
  test('publishes with it, subscribes on a duplicate, and leaves it open', async () => {
    const s = await plain()
    const shared = createClient({ socket: { host: '127.0.0.1', port: s.port } })
    shared.on('error', () => {})
    owned.push(() => shared.close())
    await shared.connect()
    const bus = new RedisBus({ client: shared, logger: silent })
    const other = new RedisBus({ url: `redis://127.0.0.1:${s.port}`, client: 'node-redis' })
    const got: string[] = []
    let up = 0
    await other.subscribe('ch', {
      message: (m) => got.push(m.type),
      up: () => up++,
      down: () => {},
    })
    await eventually(async () => up === 1, 5000, 'subscribed')
    await bus.publish('ch', { type: 'clear', source: 's' })
    await eventually(async () => got.length === 1, 5000, 'delivered')
    assert.deepEqual(got, ['clear'])
    await bus.close()
    await other.close()
    assert.equal(shared.isReady, true)
    assert.equal(await shared.ping(), 'PONG')
  })
})
