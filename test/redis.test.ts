/**
 * The Redis backends against real servers started by test/servers/redis.ts:
 * a standalone redis-server (with and without a password), a Sentinel set-up
 * (master, replica, three sentinels) and a 3-master Cluster.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { Cluster, Redis } from 'ioredis'
import {
  BaseRedisCache,
  RedisCache,
  RedisClusterCache,
  RedisSentinelCache,
} from '../src/backends/redis/index.js'
import {
  escapeGlob,
  parseClusterNodes,
  parseRedisUrl,
  parseSentinels,
} from '../src/backends/redis/options.js'
import type { BackendFactoryOptions } from '../src/core/backend.js'
import { encodeValue } from '../src/core/codec.js'
import { ConfigError, NotAnIntegerError } from '../src/core/errors.js'
import { v8Serializer } from '../src/core/serializers.js'
import { Cache } from '../src/index.js'
import { backendContract } from '../src/testing/index.js'
import {
  collectingLogger,
  eventually,
  Lifetimes,
  runWithoutPackage,
  silentLogger,
  storesSettled,
} from './helpers.js'
import { expressDriver } from './matrix/express.js'
import {
  type ClusterSetup,
  type RedisServer,
  type SentinelSetup,
  startCluster,
  startRedis,
  startSentinelSetup,
} from './servers/redis.js'

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const silent = silentLogger

const life = new Lifetimes()
const track = <T extends { close(): Promise<unknown> }>(thing: T): T => life.track(thing)
const lazily = <T extends { stop(): Promise<void> }>(start: () => Promise<T>): (() => Promise<T>) =>
  life.lazily(start, (s) => s.stop())
const plain = lazily(() => startRedis())
const withPassword = lazily(() => startRedis({ password: 's3cret@pass' }))
const sentinel = lazily<SentinelSetup>(() => startSentinelSetup())
const cluster = lazily<ClusterSetup>(() => startCluster())

/** Raw clients opened by the tests, closed after the file. */
const raws: (Redis | Cluster)[] = []
function raw(server: { port: number; password?: string }, db = 0): Redis {
  const r = new Redis({ host: '127.0.0.1', port: server.port, password: server.password, db })
  raws.push(r)
  return r
}
function rawCluster(setup: ClusterSetup): Cluster {
  const c = new Cluster(setup.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })))
  raws.push(c)
  return c
}

after(async () => {
  for (const r of raws) r.disconnect()
  await life.stopAll()
})

/** The client packages every deployment runs on: ioredis (the default), and node-redis. */
const KINDS = ['ioredis', 'node-redis'] as const
type Kind = (typeof KINDS)[number]
/** The options choosing `kind`: none for ioredis (the default), `client: 'node-redis'` otherwise. */
const pick = (kind: Kind): { client?: Kind } => (kind === 'ioredis' ? {} : { client: kind })
/** Test names stay as they were on ioredis. */
const on = (kind: Kind): string => (kind === 'ioredis' ? '' : ' on node-redis')

/** What `new Cache()` hands a backend factory, for calling `factory` directly. */
function factoryOptions(extra: Record<string, unknown> = {}): BackendFactoryOptions {
  return { defaultTimeout: 300, ignoreDeleteManyErrors: false, logger: silent, ...extra }
}

// ---- the contract suite on every deployment ----------------------------------

for (const kind of KINDS) {
  backendContract(`RedisCache${on(kind)}`, {
    create: async () => {
      const s = await plain()
      return new RedisCache({
        host: s.host,
        port: s.port,
        keyPrefix: 'contract:',
        logger: silent,
        ...pick(kind),
      })
    },
    writeRaw: async (key, bytes) => {
      await raw(await plain()).set(`contract:${key}`, bytes)
    },
  })

  backendContract(`RedisCache (password in CACHE_REDIS_URL)${on(kind)}`, {
    create: async () => {
      const s = await withPassword()
      const url = `redis://:${encodeURIComponent(s.password as string)}@127.0.0.1:${s.port}/1`
      return RedisCache.factory(
        undefined,
        { CACHE_REDIS_URL: url, CACHE_KEY_PREFIX: 'contract-url:' },
        [],
        factoryOptions(pick(kind)),
      )
    },
  })

  backendContract(`RedisCache (CACHE_REDIS_PASSWORD)${on(kind)}`, {
    create: async () => {
      const s = await withPassword()
      return RedisCache.factory(
        undefined,
        {
          CACHE_REDIS_HOST: '127.0.0.1',
          CACHE_REDIS_PORT: s.port,
          CACHE_REDIS_PASSWORD: s.password,
          CACHE_REDIS_DB: 2,
          CACHE_KEY_PREFIX: 'contract-pw:',
        },
        [],
        factoryOptions(pick(kind)),
      )
    },
  })

  backendContract(`RedisSentinelCache${on(kind)}`, {
    create: async () => {
      const setup = await sentinel()
      return RedisSentinelCache.factory(
        undefined,
        {
          CACHE_REDIS_SENTINELS: setup.sentinelAddresses,
          CACHE_REDIS_SENTINEL_MASTER: setup.masterName,
          CACHE_KEY_PREFIX: 'contract:',
        },
        [],
        factoryOptions(pick(kind)),
      )
    },
  })

  backendContract(`RedisClusterCache${on(kind)}`, {
    create: async () => {
      const setup = await cluster()
      return RedisClusterCache.factory(
        undefined,
        { CACHE_REDIS_CLUSTER: setup.clusterString, CACHE_KEY_PREFIX: 'contract:' },
        [],
        factoryOptions(pick(kind)),
      )
    },
  })
}

// ---- through the Cache facade: a cached Express view and a memoized function --

interface Deployment {
  name: string
  config(): Promise<Record<string, unknown>>
  /** A raw client that can read the cache's keys. */
  rawClient(): Promise<Redis | Cluster>
}

const deployments: Deployment[] = [
  {
    name: 'RedisCache',
    config: async () => {
      const s = await plain()
      return { CACHE_TYPE: RedisCache, CACHE_REDIS_HOST: '127.0.0.1', CACHE_REDIS_PORT: s.port }
    },
    rawClient: async () => raw(await plain()),
  },
  {
    name: 'RedisSentinelCache',
    config: async () => ({
      CACHE_TYPE: RedisSentinelCache,
      CACHE_REDIS_SENTINELS: (await sentinel()).sentinelAddresses,
    }),
    rawClient: async () => {
      const setup = await sentinel()
      return raw({ port: await setup.currentMasterPort() })
    },
  },
  {
    name: 'RedisClusterCache',
    config: async () => ({
      CACHE_TYPE: RedisClusterCache,
      CACHE_REDIS_CLUSTER: (await cluster()).clusterString,
    }),
    rawClient: async () => rawCluster(await cluster()),
  },
]

for (const [kind, d] of KINDS.flatMap((k) => deployments.map((d) => [k, d] as const))) {
  describe(`${d.name}${on(kind)} through new Cache()`, () => {
    let cache: Cache
    let client: Redis | Cluster
    before(async () => {
      cache = new Cache({ ...(await d.config()), CACHE_OPTIONS: pick(kind), logger: silent })
      await cache.ready()
      client = await d.rawClient()
    })
    after(async () => {
      await cache.backend.close?.()
    })

    test('an Express cached route is served from Redis the second time', async () => {
      const path = `/hello-${d.name}${kind === 'ioredis' ? '' : `-${kind}`}`
      const app = await expressDriver.start(cache, [
        { path, label: 'hello', options: {}, respond: { kind: 'text' } },
      ])
      try {
        const first = await fetch(app.url + path)
        assert.equal(await first.text(), 'hello#1')
        const second = await fetch(app.url + path)
        assert.equal(second.status, 200)
        assert.equal(await second.text(), 'hello#1')
        assert.equal(app.calls.get(path), 1)
        assert.equal(await client.exists(`flask_cache_view/${path}`), 1)
      } finally {
        await app.close()
      }
    })

    test('a memoized function is computed once', async () => {
      let calls = 0
      const double = cache.memoize(async (x: number) => {
        calls++
        return { doubled: x * 2 }
      })
      // Another argument per client kind: both runs share the server's keys.
      const x = kind === 'ioredis' ? 21 : 22
      assert.deepEqual(await double(x), { doubled: x * 2 })
      assert.deepEqual(await double(x), { doubled: x * 2 })
      assert.equal(calls, 1)
      assert.equal(await client.exists(`flask_cache_${double.memoizeName}_memver`), 1)
    })
  })
}

// ---- Redis specifics on the standalone server --------------------------------

for (const kind of KINDS) {
  describe(`RedisCache${on(kind)}: Redis specifics`, () => {
    let server: RedisServer
    let r: Redis
    let cache: Cache
    before(async () => {
      server = await plain()
      r = raw(server, 5)
      cache = track(
        new Cache({
          CACHE_TYPE: RedisCache,
          CACHE_REDIS_URL: `redis://127.0.0.1:${server.port}/5`,
          CACHE_KEY_PREFIX: 'spec:',
          CACHE_OPTIONS: pick(kind),
          logger: silent,
        }),
      )
      await cache.ready()
      await r.flushdb()
    })

    test('integers are stored as decimal digits, strings as " + UTF-8, other values as ! + serializer bytes', async () => {
      await cache.set('five', 5)
      await cache.set('minus', -12)
      await cache.set('text', 'str ☃')
      await cache.set('obj', { a: 1 })
      assert.equal(await r.get('spec:five'), '5')
      assert.equal(await r.get('spec:minus'), '-12')
      assert.equal(await r.get('spec:text'), '"str ☃')
      const stored = await r.getBuffer('spec:obj')
      assert.ok(stored?.equals(encodeValue({ a: 1 }, v8Serializer)))
      assert.equal(stored?.[0], 0x21)
      assert.equal(await cache.inc('five', 2), 7)
      assert.equal(await r.incrby('spec:five', 3), 10, 'INCRBY works on what cachette wrote')
      assert.equal(await cache.get('five'), 10)
    })

    test('inc is atomic under 100 parallel calls', async () => {
      const results = await Promise.all(Array.from({ length: 100 }, () => cache.inc('par')))
      assert.deepEqual(
        [...results].sort((a, b) => a - b),
        Array.from({ length: 100 }, (_, i) => i + 1),
      )
      assert.equal(await r.get('spec:par'), '100')
      assert.equal(await cache.dec('par', 40), 60)
    })

    test('a counter created by inc gets the default timeout; an existing one keeps its own', async () => {
      await cache.inc('fresh')
      const ttl = await r.ttl('spec:fresh')
      // Wide bands throughout: a loaded machine may take seconds between the write and the read.
      assert.ok(ttl > 240 && ttl <= 300, `TTL ${ttl}`)
      await cache.set('forever', 1, 0)
      await cache.inc('forever')
      assert.equal(await r.ttl('spec:forever'), -1)
      await cache.set('short', 1, 1000)
      await cache.inc('short')
      const shortTtl = await r.ttl('spec:short')
      assert.ok(shortTtl > 900 && shortTtl <= 1000, `TTL ${shortTtl}`)
    })

    test('a counter under CACHE_DEFAULT_TIMEOUT 0 never expires', async () => {
      const c = track(
        new Cache({
          CACHE_TYPE: RedisCache,
          CACHE_REDIS_URL: `redis://127.0.0.1:${server.port}/5`,
          CACHE_KEY_PREFIX: 'spec0:',
          CACHE_DEFAULT_TIMEOUT: 0,
          CACHE_OPTIONS: pick(kind),
          logger: silent,
        }),
      )
      await c.inc('n', 3)
      assert.equal(await r.ttl('spec0:n'), -1)
    })

    test('inc on a non-integer rejects with NotAnIntegerError and leaves the value', async () => {
      for (const value of ['text', 1.5, true, { n: 1 }]) {
        await cache.set('bad', value)
        await assert.rejects(cache.inc('bad'), NotAnIntegerError)
        assert.deepEqual(await cache.get('bad'), value)
      }
    })

    test('add is SET NX with the expiry in the same command', async () => {
      assert.equal(await cache.add('once', 'first', 1000), true)
      assert.equal(await cache.add('once', 'second', 1000), false)
      assert.equal(await cache.get('once'), 'first')
      const ttl = await r.ttl('spec:once')
      assert.ok(ttl > 900 && ttl <= 1000, `TTL ${ttl}`)
      // Concurrent adds: exactly one wins.
      const wins = await Promise.all(Array.from({ length: 20 }, (_, i) => cache.add('race', i)))
      assert.equal(wins.filter(Boolean).length, 1)
    })

    test('timeout 0 stores without expiry, whole seconds use EX, fractions use PX', async () => {
      await cache.set('t0', 'x', 0)
      assert.equal(await r.ttl('spec:t0'), -1)
      // Long timeouts with wide bands: a loaded machine may take seconds between the write and the read.
      await cache.set('t10', 'x', 1000)
      const ttl = await r.ttl('spec:t10')
      assert.ok(ttl > 900 && ttl <= 1000, `TTL ${ttl}`)
      // PX keeps the fraction: never more than 100.5 s (EX would round it up to 101).
      await cache.set('t15', 'x', 100.5)
      const pttl = await r.pttl('spec:t15')
      assert.ok(pttl > 50_000 && pttl <= 100_500, `PTTL ${pttl}`)
      await cache.set('dur', 'x', '2m')
      const minutes = await r.ttl('spec:dur')
      assert.ok(minutes > 60 && minutes <= 120, `TTL ${minutes}`)
      await cache.setMany({ m: 1 }, 100.25)
      const mpttl = await r.pttl('spec:m')
      assert.ok(mpttl > 50_000 && mpttl <= 100_250, `PTTL ${mpttl}`)
    })

    test('keys with spaces, newlines, control characters and any unicode are binary safe', async () => {
      const keys = [
        'with space',
        'line\nbreak\r\n',
        'tab\there',
        'nul\u0000byte',
        '\u0001\u007f\u00ff',
        'emoji 🎉 and 日本',
        '* ? [glob] \\',
        'x'.repeat(1000),
      ]
      for (const [i, key] of keys.entries()) {
        assert.equal(await cache.set(key, { i }), true)
        assert.deepEqual(await cache.get(key), { i }, JSON.stringify(key))
        assert.equal(await r.exists(Buffer.from(`spec:${key}`, 'utf8')), 1)
      }
      assert.deepEqual(
        await cache.getMany(keys),
        keys.map((_, i) => ({ i })),
      )
      assert.deepEqual(await cache.deleteMany(keys), keys)
      assert.deepEqual(
        await cache.getMany(keys),
        keys.map(() => undefined),
      )
    })

    test('a binary value round-trips byte for byte', async () => {
      const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
      await cache.set('bytes', bytes)
      assert.ok(bytes.equals((await cache.get('bytes')) as Buffer))
    })

    test('an entry that cannot be decoded reads as a miss and is logged once', async () => {
      const logger = collectingLogger()
      const b = track(
        new RedisCache({
          ...pick(kind),
          port: server.port,
          host: '127.0.0.1',
          db: 5,
          keyPrefix: 'spec:',
          logger,
        }),
      )
      await r.set('spec:legacy', 'not a cachette entry')
      await r.set(Buffer.from('spec:garbled'), Buffer.from([0x21, 0xff, 0x00, 0x13]))
      assert.equal(await b.get('legacy'), undefined)
      assert.deepEqual(await b.getMany(['garbled', 'legacy']), [undefined, undefined])
      assert.equal(logger.warnings.length, 1)
      assert.match(logger.warnings[0] as string, /could not be decoded/)
    })

    test('delete, has and unlink answer from DEL, EXISTS and UNLINK', async () => {
      await cache.setMany({ u1: 1, u2: 2, u3: 3 })
      assert.equal(await cache.has('u1'), true)
      assert.equal(await cache.delete('u1'), true)
      assert.equal(await cache.delete('u1'), false)
      assert.equal(await cache.has('u1'), false)
      assert.equal(await cache.unlink('u2', 'u3', 'u-missing'), 2)
      assert.equal(await r.exists('spec:u2', 'spec:u3'), 0)
    })

    test('getMany and setMany are one round trip each (MGET, one pipeline)', async () => {
      const before = await r.info('commandstats')
      const count = (info: string, cmd: string): number =>
        Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(info)?.[1] ?? 0)
      const entries = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`rt${i}`, i]))
      assert.equal((await cache.setMany(entries)).length, 50)
      const values = await cache.getMany(Object.keys(entries))
      assert.deepEqual(values, Object.values(entries))
      const afterInfo = await r.info('commandstats')
      assert.equal(count(afterInfo, 'mget') - count(before, 'mget'), 1)
      assert.equal(count(afterInfo, 'set') - count(before, 'set'), 50)
      assert.equal(count(afterInfo, 'get') - count(before, 'get'), 0)
    })

    test('clear removes only the keys under the prefix (glob characters in it are escaped)', async () => {
      const b = track(
        new RedisCache({
          ...pick(kind),
          port: server.port,
          host: '127.0.0.1',
          db: 6,
          keyPrefix: 'a*[b]?\\:',
        }),
      )
      const r6 = raw(server, 6)
      await r6.flushdb()
      await b.setMany([
        ['one', 1],
        ['two', 2],
      ])
      // Foreign keys, including ones the unescaped pattern `a*[b]?\:*` would match.
      await r6.mset({ foreign: 'x', 'aXb?:x': 'y', 'ab!:z': 'z', 'a*[b]?': 'no colon' })
      assert.equal(await b.clear(), true)
      assert.deepEqual((await r6.keys('*')).sort(), ['a*[b]?', 'aXb?:x', 'ab!:z', 'foreign'])
      assert.equal(await b.get('one'), undefined)
    })

    test('clear uses SCAN and UNLINK in batches over 5,000 keys, never KEYS or FLUSHDB', async () => {
      const b = track(
        new RedisCache({
          ...pick(kind),
          port: server.port,
          host: '127.0.0.1',
          db: 7,
          keyPrefix: 'bulk:',
        }),
      )
      const r7 = raw(server, 7)
      await r7.flushdb()
      const entries = Array.from({ length: 5000 }, (_, i) => [`k${i}`, i] as const)
      assert.equal((await b.setMany(entries)).length, 5000)
      for (let i = 0; i < 100; i++) await r7.set(`other:${i}`, i)
      await r7.config('RESETSTAT')
      const started = Date.now()
      assert.equal(await b.clear(), true)
      const elapsed = Date.now() - started
      assert.equal(await r7.dbsize(), 100)
      const stats = await r7.info('commandstats')
      assert.doesNotMatch(stats, /cmdstat_keys:/)
      assert.doesNotMatch(stats, /cmdstat_flushdb:/)
      assert.match(stats, /cmdstat_scan:calls=\d+/)
      const unlinks = Number(/cmdstat_unlink:calls=(\d+)/.exec(stats)?.[1])
      assert.ok(unlinks >= 3 && unlinks <= 20, `UNLINK in batches: ${unlinks} calls`)
      assert.ok(elapsed < 60_000, `clear took ${elapsed} ms (it hangs)`)
    })

    test('clear without a prefix refuses with a ConfigError naming CACHE_KEY_PREFIX', async () => {
      const c = track(
        new Cache({
          CACHE_TYPE: RedisCache,
          CACHE_REDIS_PORT: server.port,
          CACHE_REDIS_HOST: '127.0.0.1',
          CACHE_REDIS_DB: 8,
          CACHE_KEY_PREFIX: '',
          CACHE_OPTIONS: pick(kind),
          logger: silent,
        }),
      )
      const r8 = raw(server, 8)
      await r8.set('precious', 'data')
      await c.set('k', 1)
      await assert.rejects(c.clear(), (error: unknown) => {
        assert.ok(error instanceof ConfigError)
        assert.equal(error.key, 'CACHE_KEY_PREFIX')
        assert.match(error.message, /whole database/)
        assert.match(error.message, /allowFlush/)
        return true
      })
      assert.equal(await r8.get('precious'), 'data')
      // The class default is no prefix, so a bare RedisCache refuses too.
      const bare = track(
        new RedisCache({ ...pick(kind), port: server.port, host: '127.0.0.1', db: 8 }),
      )
      await assert.rejects(bare.clear(), ConfigError)
    })

    test('allowFlush lets clear without a prefix run FLUSHDB, with a warning', async () => {
      const logger = collectingLogger()
      const c = track(
        new Cache({
          CACHE_TYPE: RedisCache,
          CACHE_REDIS_PORT: server.port,
          CACHE_REDIS_HOST: '127.0.0.1',
          CACHE_REDIS_DB: 9,
          CACHE_KEY_PREFIX: '',
          CACHE_OPTIONS: { allow_flush: true, ...pick(kind) },
          logger,
        }),
      )
      const r9 = raw(server, 9)
      await r9.set('other', 'x')
      await c.set('k', 1)
      assert.equal(await c.clear(), true)
      assert.equal(await r9.dbsize(), 0)
      assert.equal(await r.exists('spec:five'), 1, 'other databases are untouched')
      assert.equal(logger.warnings.length, 1)
      assert.match(logger.warnings[0] as string, /FLUSHDB/)
    })

    if (kind === 'ioredis')
      test('an existing client is shared and not closed by close()', async () => {
        const shared = raw(server, 10)
        await shared.ping()
        const listeners = shared.listenerCount('error')
        const c = new Cache({
          CACHE_TYPE: RedisCache,
          CACHE_REDIS_HOST: shared,
          CACHE_KEY_PREFIX: 'shared:',
          logger: silent,
        })
        await c.set('k', 'v')
        assert.ok((await shared.getBuffer('shared:k'))?.equals(encodeValue('v', v8Serializer)))
        assert.equal((c.backend as RedisCache).client, shared)
        assert.equal(shared.listenerCount('error'), listeners + 1)
        await c.backend.close?.()
        assert.equal(shared.status, 'ready')
        assert.equal(await shared.ping(), 'PONG')
        assert.equal(shared.listenerCount('error'), listeners)
        // The constructor takes one too.
        const b = track(new RedisCache({ client: shared, keyPrefix: 'shared:' }))
        assert.equal(await b.get('k'), 'v')
      })

    test('unix:// URL with ?db=', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'cachette-sock-'))
      const socket = join(dir, 'redis.sock')
      const s = await startRedis({ extraArgs: ['--unixsocket', socket, '--unixsocketperm', '700'] })
      try {
        const c = new Cache({
          CACHE_TYPE: RedisCache,
          CACHE_REDIS_URL: `unix://${socket}?db=3`,
          CACHE_REDIS_DB: 1,
          CACHE_OPTIONS: pick(kind),
          logger: silent,
        })
        await c.set('via-socket', 42)
        assert.equal(await c.get('via-socket'), 42)
        const r3 = new Redis({ port: s.port, db: 3 })
        assert.equal(await r3.get('flask_cache_via-socket'), '42')
        r3.disconnect()
        await c.backend.close?.()
      } finally {
        await s.stop()
        rmSync(dir, { recursive: true, force: true })
      }
    })

    if (kind === 'ioredis')
      test('rediss:// configures TLS (construction only, no TLS server)', async () => {
        const b = new RedisCache({ url: 'rediss://user:p%40ss@127.0.0.1:1/4', logger: silent })
        try {
          const options = (b.client as Redis).options
          assert.ok(options.tls, 'tls options are set')
          assert.equal(options.host, '127.0.0.1')
          assert.equal(options.port, 1)
          assert.equal(options.username, 'user')
          assert.equal(options.password, 'p@ss')
          assert.equal(options.db, 4)
        } finally {
          await b.close()
        }
      })

    if (kind === 'ioredis')
      test('a cache used right after construction waits for the first connection', async () => {
        const eager = track(
          new RedisCache({ port: server.port, host: '127.0.0.1', keyPrefix: 'e:' }),
        )
        assert.notEqual((eager.client as Redis).status, 'ready')
        assert.equal(await eager.set('k', 1), true)
        // lazyConnect (through CACHE_OPTIONS): the first command connects.
        const lazy = track(
          RedisCache.factory(
            undefined,
            {
              CACHE_REDIS_PORT: server.port,
              CACHE_REDIS_HOST: '127.0.0.1',
              CACHE_KEY_PREFIX: 'e:',
            },
            [],
            factoryOptions({ lazyConnect: true }),
          ),
        )
        await sleep(100)
        assert.equal((lazy.client as Redis).status, 'wait')
        assert.equal(await lazy.get('k'), 1)
      })

    if (kind === 'ioredis')
      test('CACHE_OPTIONS reach ioredis; the fail-fast defaults are set', async () => {
        const c = track(
          new Cache({
            CACHE_TYPE: RedisCache,
            CACHE_REDIS_PORT: server.port,
            CACHE_REDIS_HOST: '127.0.0.1',
            CACHE_OPTIONS: { connection_name: 'cachette-test', command_timeout: 500 },
            logger: silent,
          }),
        )
        const options = ((await c.ready()) as RedisCache).client as Redis
        assert.equal(options.options.connectionName, 'cachette-test')
        assert.equal(options.options.commandTimeout, 500)
        assert.equal(options.options.enableOfflineQueue, false)
        assert.equal(options.options.maxRetriesPerRequest, 1)
        assert.equal(options.options.connectTimeout, 2000)
        assert.equal(typeof options.options.retryStrategy, 'function')
        assert.ok(options.listenerCount('error') >= 1)
      })
  })
}

// ---- configuration errors ----------------------------------------------------

describe('Redis backends: configuration errors name the key', () => {
  const rejectsWithKey = (fn: () => unknown, key: string) =>
    assert.throws(fn, (error: unknown) => {
      assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`)
      assert.equal(error.key, key)
      return true
    })

  test('malformed CACHE_REDIS_URL', () => {
    for (const url of [
      'not a url',
      'http://localhost:6379',
      'redis://',
      'redis://localhost:99999',
      'redis://localhost/abc',
      'redis://localhost:6379/0?db=x',
      'unix://',
      'unix://host/path.sock',
      'redis://:%zz@localhost',
    ]) {
      rejectsWithKey(() => new RedisCache({ url }), 'CACHE_REDIS_URL')
      rejectsWithKey(
        () => RedisCache.factory(undefined, { CACHE_REDIS_URL: url }, [], factoryOptions()),
        'CACHE_REDIS_URL',
      )
    }
    rejectsWithKey(
      () => new Cache({ CACHE_TYPE: RedisCache, CACHE_REDIS_URL: 'ftp://x' }).backend,
      'CACHE_REDIS_URL',
    )
  })

  test('the URL password is not echoed in the error', () => {
    assert.throws(
      () => new RedisCache({ url: 'redis://:hunter2@localhost:notaport' }),
      (error: Error) => !error.message.includes('hunter2'),
    )
  })

  test('sentinel list of the wrong shape', () => {
    for (const sentinels of [
      [],
      [['127.0.0.1']],
      [['127.0.0.1', 'port']],
      [['127.0.0.1', 26379, 'extra']],
      ['127.0.0.1'],
      ['127.0.0.1:abc'],
      [{ host: '127.0.0.1' }],
      [{ host: '', port: 26379 }],
      [42],
      '127.0.0.1:26379',
      { host: '127.0.0.1', port: 26379 },
    ]) {
      rejectsWithKey(
        () => new RedisSentinelCache({ sentinels: sentinels as never }),
        'CACHE_REDIS_SENTINELS',
      )
      rejectsWithKey(
        () =>
          RedisSentinelCache.factory(
            undefined,
            { CACHE_REDIS_SENTINELS: sentinels },
            [],
            factoryOptions(),
          ),
        'CACHE_REDIS_SENTINELS',
      )
    }
    rejectsWithKey(
      () => new RedisSentinelCache({ sentinels: [['h', 1]], master: '' }),
      'CACHE_REDIS_SENTINEL_MASTER',
    )
  })

  test('cluster string without ports', () => {
    for (const clusterString of [
      '',
      'host1,host2',
      'host1:7000,host2',
      'host1:abc',
      'host1:0',
      ':7000',
      'a b:7000',
    ]) {
      rejectsWithKey(() => new RedisClusterCache({ cluster: clusterString }), 'CACHE_REDIS_CLUSTER')
      rejectsWithKey(
        () =>
          RedisClusterCache.factory(
            undefined,
            { CACHE_REDIS_CLUSTER: clusterString },
            [],
            factoryOptions(),
          ),
        'CACHE_REDIS_CLUSTER',
      )
    }
    rejectsWithKey(() => new RedisClusterCache({ url: 'unix:///tmp/x.sock' }), 'CACHE_REDIS_URL')
    rejectsWithKey(() => new RedisClusterCache({ url: 'redis://h:7000/3' }), 'CACHE_REDIS_URL')
  })

  test('options that would corrupt binary values or the key prefix', () => {
    rejectsWithKey(
      () => new RedisCache({ clientOptions: { decodeResponses: true } }),
      'CACHE_OPTIONS',
    )
    rejectsWithKey(
      () =>
        RedisCache.factory(
          undefined,
          {},
          [],
          factoryOptions({ decodeResponses: true }) /* CACHE_OPTIONS camelized */,
        ),
      'CACHE_OPTIONS',
    )
    rejectsWithKey(
      () => RedisCache.factory(undefined, {}, [], factoryOptions({ keyPrefix: 'x' })),
      'CACHE_OPTIONS',
    )
    rejectsWithKey(
      () => new RedisClusterCache({ cluster: 'h:1', clientOptions: { decodeResponses: true } }),
      'CACHE_OPTIONS',
    )
  })

  test('bad port, db, host, prefix and client', () => {
    rejectsWithKey(() => new RedisCache({ port: 70000 }), 'CACHE_REDIS_PORT')
    rejectsWithKey(() => new RedisCache({ db: -1 }), 'CACHE_REDIS_DB')
    rejectsWithKey(() => new RedisCache({ host: '' }), 'CACHE_REDIS_HOST')
    rejectsWithKey(() => new RedisCache({ keyPrefix: 3 as never }), 'CACHE_KEY_PREFIX')
    rejectsWithKey(() => new RedisCache({ client: { not: 'a client' } }), 'CACHE_REDIS_HOST')
    rejectsWithKey(
      () => RedisCache.factory(undefined, { CACHE_REDIS_HOST: { get() {} } }, [], factoryOptions()),
      'CACHE_REDIS_HOST',
    )
  })

  test('URL parsing: forms, credentials and db precedence', () => {
    assert.deepEqual(parseRedisUrl('redis://localhost'), {
      tls: false,
      host: 'localhost',
      port: 6379,
    })
    assert.deepEqual(parseRedisUrl('redis://u:p%3Aw@10.0.0.1:7000/3'), {
      tls: false,
      username: 'u',
      password: 'p:w',
      host: '10.0.0.1',
      port: 7000,
      db: 3,
    })
    assert.deepEqual(parseRedisUrl('rediss://:pw@[::1]:6380/2?db=5'), {
      tls: true,
      password: 'pw',
      host: '::1',
      port: 6380,
      db: 5,
    })
    assert.deepEqual(parseRedisUrl('unix:///var/run/redis.sock?db=4&password=x'), {
      tls: false,
      password: 'x',
      path: '/var/run/redis.sock',
      db: 4,
    })
  })

  test('sentinel and cluster address forms', () => {
    assert.deepEqual(parseSentinels([['a', 1], 'b:2', { host: 'c', port: 3 }, ['d', '4']]), [
      { host: 'a', port: 1 },
      { host: 'b', port: 2 },
      { host: 'c', port: 3 },
      { host: 'd', port: 4 },
    ])
    assert.deepEqual(parseClusterNodes(' a:1, [::1]:2 ,c.example:3'), [
      { host: 'a', port: 1 },
      { host: '::1', port: 2 },
      { host: 'c.example', port: 3 },
    ])
    assert.equal(escapeGlob('a*b?c[d]e\\f'), 'a\\*b\\?c\\[d\\]e\\\\f')
  })

  test('the three classes share BaseRedisCache', () => {
    const b = new RedisCache({ port: 1, logger: silent })
    assert.ok(b instanceof BaseRedisCache)
    return b.close()
  })

  test('without ioredis: importing works, constructing names the package', async () => {
    const code = `
      import { Cache } from './src/index.ts'
      import { RedisCache, RedisSentinelCache, RedisClusterCache } from './src/backends/redis/index.ts'
      const out = []
      for (const make of [
        () => new RedisCache(),
        () => new RedisSentinelCache(),
        () => new RedisClusterCache({ cluster: 'h:1' }),
        () => new Cache({ CACHE_TYPE: 'redis' }).backend,
      ]) {
        try { make(); out.push('constructed') } catch (e) { out.push([e.name, e.packageName, e.message]) }
      }
      try { new RedisCache({ url: 'nope' }) } catch (e) { out.push([e.name, e.key]) }
      console.log(JSON.stringify(out))`
    {
      const out = (await runWithoutPackage('ioredis', code)) as unknown[]
      assert.deepEqual(out.slice(0, 4), [
        [
          'MissingDependencyError',
          'ioredis',
          'RedisCache needs the package "ioredis": npm install ioredis',
        ],
        [
          'MissingDependencyError',
          'ioredis',
          'RedisSentinelCache needs the package "ioredis": npm install ioredis',
        ],
        [
          'MissingDependencyError',
          'ioredis',
          'RedisClusterCache needs the package "ioredis": npm install ioredis',
        ],
        [
          'MissingDependencyError',
          'ioredis',
          'RedisCache needs the package "ioredis": npm install ioredis',
        ],
      ])
      assert.deepEqual(out[4], ['ConfigError', 'CACHE_REDIS_URL'], 'config is checked first')
    }
  })
})

// ---- failure behaviour: the server dies and comes back -----------------------

for (const kind of KINDS) {
  describe(`RedisCache${on(kind)}: server killed mid-test and restarted`, () => {
    let server: RedisServer
    let cache: Cache
    const logger = collectingLogger()
    const uncaught: unknown[] = []
    const guard = (error: unknown) => {
      uncaught.push(error)
    }
    before(async () => {
      process.on('uncaughtException', guard)
      // DEBUG SLEEP (to hang the server) is refused unless enabled.
      server = await startRedis({ extraArgs: ['--enable-debug-command', 'local'] })
      life.defer(() => server.stop())
      cache = track(
        new Cache({
          CACHE_TYPE: RedisCache,
          CACHE_REDIS_HOST: '127.0.0.1',
          CACHE_OPTIONS: pick(kind),
          CACHE_REDIS_PORT: server.port,
          logger,
        }),
      )
    })
    after(() => {
      process.off('uncaughtException', guard)
    })

    test('fails fast and uncached while down, resumes on its own when back', async () => {
      const path = '/report'
      let computed = 0
      const report = cache.memoize(async (id: number) => {
        computed++
        return `report ${id}`
      })
      const app = await expressDriver.start(cache, [
        { path, label: 'r', options: {}, respond: { kind: 'text' } },
      ])
      try {
        assert.equal(await cache.set('k', 'v'), true)
        assert.equal(await report(1), 'report 1')
        assert.equal(await report(1), 'report 1')
        assert.equal(computed, 1)
        assert.equal(await (await fetch(app.url + path)).text(), 'r#1')
        assert.equal(await (await fetch(app.url + path)).text(), 'r#1')

        await server.kill()

        // Fail-open answers, not errors, and no waiting for the server to come back
        // (a generous bound: it fails only on a hang, not on a slow machine).
        const started = Date.now()
        assert.equal(await cache.get('k'), undefined)
        assert.equal(await cache.set('k', 'v2'), false)
        assert.ok(Date.now() - started < 15_000, `get and set took ${Date.now() - started} ms`)
        assert.deepEqual(await cache.getMany('k', 'j'), [undefined, undefined])
        assert.equal(await cache.has('k'), false)

        // Views answer, computed each time; memoized functions too.
        for (let i = 2; i <= 4; i++) {
          const res = await fetch(app.url + path)
          assert.equal(res.status, 200)
          assert.equal(await res.text(), `r#${i}`)
        }
        assert.equal(await report(1), 'report 1')
        assert.equal(await report(1), 'report 1')
        assert.equal(computed, 3)
        await assert.rejects(cache.inc('n'), /not connected/, 'inc rejects (no fallback number)')
        assert.ok(logger.errors.length > 0, 'the failures were logged')
        assert.ok(logger.errors.length < 20, `logging is rate-limited: ${logger.errors.length}`)

        await sleep(500)
        await server.start()

        await eventually(async () => (await cache.set('k', 'back')) === true, 15_000, 'reconnect')
        assert.equal(await cache.get('k'), 'back')
        const before = app.calls.get(path) ?? 0
        await (await fetch(app.url + path)).text()
        await storesSettled() // the view's store, after the response
        await (await fetch(app.url + path)).text()
        assert.equal(app.calls.get(path), before + 1, 'the view is cached again')
        assert.deepEqual(uncaught, [], 'no uncaught exception (no unhandled error event)')
      } finally {
        await app.close()
      }
    })

    test('a server that stops answering: commands time out after commandTimeout', async () => {
      await eventually(async () => (await cache.set('k', 1)) === true, 5000, 'connected')
      const blocker = new Redis({ port: server.port })
      raws.push(blocker)
      // DEBUG SLEEP blocks the whole server, like a hung machine (local connections only);
      // 4 s: well past the 1 s commandTimeout even when the get is sent late.
      // The server is blocked once a PING on another (already connected) connection goes unanswered.
      const probe = new Redis({ port: server.port })
      raws.push(probe)
      await probe.ping()
      await blocker.ping()
      const blocked = blocker.call('DEBUG', 'SLEEP', '4').catch(() => {})
      await eventually(
        async () =>
          await Promise.race([probe.ping().then(() => false), sleep(200).then(() => true)]),
        5000,
        'the server blocking',
      )
      const started = Date.now()
      assert.equal(await cache.get('k'), undefined, 'the get gave up (fail-open), not waited')
      const elapsed = Date.now() - started
      // It waited for commandTimeout (a timer never fires early); no upper bound: the
      // undefined above already shows it did not wait for the server to wake.
      assert.ok(elapsed >= 800, `get gave up after ${elapsed} ms`)
      await blocked
      await eventually(async () => (await cache.get('k')) === 1, 15_000, 'answers again')
      assert.deepEqual(uncaught, [])
    })

    test('a cache whose server is unreachable from the start fails fast too', async () => {
      const c = track(
        new Cache({
          CACHE_TYPE: RedisCache,
          CACHE_REDIS_HOST: '127.0.0.1',
          CACHE_OPTIONS: pick(kind),
          CACHE_REDIS_PORT: 1,
          logger: silent,
        }),
      )
      // Fail-open answers, not errors; the bound is generous: it fails only on a hang.
      const started = Date.now()
      assert.equal(await c.get('x'), undefined)
      assert.equal(await c.set('x', 1), false)
      assert.equal(await c.get('x'), undefined, 'after the first attempt too')
      assert.ok(Date.now() - started < 15_000, `took ${Date.now() - started} ms`)
    })
  })
}

// ---- Sentinel failover --------------------------------------------------------

for (const kind of KINDS) {
  /** Apart per client kind: both runs share the servers. */
  const fo = kind === 'ioredis' ? 'fo:' : 'fo-node:'
  describe(`RedisSentinelCache${on(kind)}: failover`, () => {
    test('discovers the master and keeps working after a failover', async () => {
      const setup = await sentinel()
      const logger = collectingLogger()
      const cache = track(
        new Cache({
          CACHE_TYPE: RedisSentinelCache,
          CACHE_REDIS_SENTINELS: setup.sentinelAddresses,
          CACHE_KEY_PREFIX: fo,
          CACHE_OPTIONS: pick(kind),
          logger,
        }),
      )
      const oldMaster = await setup.currentMasterPort()
      assert.equal(await cache.set('before', 'x', 0), true)
      const onOld = raw({ port: oldMaster })
      assert.equal(await onOld.exists(`${fo}before`), 1, 'the write went to the master')

      await setup.failover()
      const newMaster = await setup.currentMasterPort()
      assert.notEqual(newMaster, oldMaster)

      // Writes accepted by the old master in the moments before the sentinels
      // demote it are lost (Redis replication is asynchronous); soon every
      // write lands on the new master.
      const onNew = raw({ port: newMaster })
      let n = 0
      await eventually(
        async () => {
          n++
          return (
            (await cache.set(`after${n}`, n)) && (await onNew.get(`${fo}after${n}`)) === String(n)
          )
        },
        15_000,
        'writes reaching the new master',
      )
      assert.equal(await cache.get(`after${n}`), n)
      assert.equal(await cache.get('before'), 'x', 'replicated data is still there')
      assert.equal(await cache.inc('counter'), 1)
    })
  })
}

// ---- Cluster: multi-key operations across slots -------------------------------

for (const kind of KINDS) {
  /** Apart per client kind: both runs share the servers. */
  const multi = kind === 'ioredis' ? 'multi:' : 'multi-node:'
  describe(`RedisClusterCache${on(kind)}: across hash slots`, () => {
    let setup: ClusterSetup
    let backend: RedisClusterCache
    let client: Cluster
    before(async () => {
      setup = await cluster()
      backend = track(
        new RedisClusterCache({
          cluster: setup.clusterString,
          keyPrefix: multi,
          logger: silent,
          ...pick(kind),
        }),
      )
      client = rawCluster(setup)
    })

    const keys = Array.from({ length: 200 }, (_, i) => `key-${i}`)

    test('setMany, getMany and deleteMany over 200 keys in many slots', async () => {
      const stored = await backend.setMany(
        keys.map((k, i) => [k, { i }]),
        60,
      )
      assert.deepEqual(stored, keys)
      const values = await backend.getMany([...keys, 'missing'])
      assert.deepEqual(
        values,
        [...keys.map((_, i) => ({ i })), undefined],
        'values come back in key order',
      )
      // The keys really are spread over the three masters.
      const perNode = await Promise.all(
        setup.nodes.map(async (n) => {
          const r = raw(n)
          return (await r.keys(`${multi}*`)).length
        }),
      )
      assert.equal(
        perNode.reduce((a, b) => a + b, 0),
        200,
      )
      assert.ok(
        perNode.every((c) => c > 20),
        `keys on every master: ${perNode}`,
      )
      assert.equal(await backend.unlink(keys.slice(0, 10)), 10)
      assert.deepEqual(await backend.deleteMany(keys), keys)
      assert.deepEqual(
        await backend.getMany(keys),
        keys.map(() => undefined),
      )
    })

    test('clear scans every master and leaves foreign keys', async () => {
      await backend.setMany(keys.map((k, i) => [k, i]))
      for (let i = 0; i < 30; i++) await client.set(`foreign-${i}`, i)
      assert.equal(await backend.clear(), true)
      assert.deepEqual(
        await backend.getMany(keys),
        keys.map(() => undefined),
      )
      const perNode = await Promise.all(setup.nodes.map((n) => raw(n).keys('*')))
      const all = perNode.flat()
      assert.equal(all.filter((k) => k.startsWith('foreign-')).length, 30)
      assert.deepEqual(
        all.filter((k) => k.startsWith(multi)),
        [],
      )
    })

    test('inc, add and hash-tagged keys', async () => {
      assert.equal(await backend.inc('{user1}:visits', 2), 2)
      assert.equal(await backend.inc('{user1}:visits', 3), 5)
      assert.equal(await backend.add('{user1}:once', 'a'), true)
      assert.equal(await backend.add('{user1}:once', 'b'), false)
      assert.deepEqual(await backend.getMany(['{user1}:visits', '{user1}:once']), [5, 'a'])
    })

    if (kind === 'ioredis')
      test('an existing Cluster client is shared and not closed', async () => {
        const shared = rawCluster(setup)
        const b = new RedisClusterCache({ client: shared, keyPrefix: multi })
        await b.set('shared', 1)
        await b.close()
        assert.equal(await shared.get(`${multi}shared`), '1')
        assert.equal(shared.status, 'ready')
      })
  })
}
