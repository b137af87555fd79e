/**
 * The Memcached backends against real memcached processes started by
 * test/servers/memcached.ts: plain servers (one and three), and a server with
 * SASL authentication (`-S`, sasldb made by saslpasswd2).
 */
import assert from 'node:assert/strict'
import { createServer, type Server, type Socket } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { MemcachedAuthError } from '../src/backends/memcached/connection.js'
import {
  MemcachedCache,
  SASLMemcachedCache,
  SpreadSASLMemcachedCache,
} from '../src/backends/memcached/index.js'
import { parseServer, parseServers } from '../src/backends/memcached/options.js'
import { HashRing } from '../src/backends/memcached/ring.js'
import type { BackendFactoryOptions } from '../src/core/backend.js'
import { ConfigError, NotAnIntegerError, UnserializableValueError } from '../src/core/errors.js'
import { Cache } from '../src/index.js'
import { backendContract } from '../src/testing/index.js'
import { collectingLogger, eventually, Lifetimes, silentLogger, storesSettled } from './helpers.js'
import { expressDriver } from './matrix/express.js'
import {
  itemCount,
  type MemcachedServer,
  startMemcached,
  textCommand,
  ttlOf,
} from './servers/memcached.js'

const silent = silentLogger
const USER = 'cachette'
const PASSWORD = 's3cret pass'

const life = new Lifetimes()
const track = <T extends { close(): Promise<unknown> }>(thing: T): T => life.track(thing)
const plain = life.lazily(
  () => startMemcached(),
  (s) => s.stop(),
)
const trio = life.lazily(
  () => Promise.all([startMemcached(), startMemcached(), startMemcached()]),
  (all) => Promise.all(all.map((s) => s.stop())),
)
const sasl = life.lazily(
  () => startMemcached({ sasl: { username: USER, password: PASSWORD } }),
  (s) => s.stop(),
)
/** A server of the test's own (killed, flushed or restarted), stopped after the file. */
async function ownServer(options?: Parameters<typeof startMemcached>[0]): Promise<MemcachedServer> {
  const s = await startMemcached(options)
  life.defer(() => s.stop())
  return s
}

after(() => life.stopAll())

function factoryOptions(extra: Record<string, unknown> = {}): BackendFactoryOptions {
  return { defaultTimeout: 300, ignoreDeleteManyErrors: false, logger: silent, ...extra }
}

// ---- the contract suite --------------------------------------------------------

backendContract('MemcachedCache (one server, key prefix)', {
  create: async () =>
    new MemcachedCache({
      servers: [(await plain()).address],
      keyPrefix: 'contract1_',
      logger: silent,
    }),
  // memcached's default item size limit is 1 MiB, key and item header included.
  largeValueBytes: 1000 * 1000,
})

backendContract('MemcachedCache (three servers, key prefix)', {
  create: async () =>
    new MemcachedCache({
      servers: (await trio()).map((s) => s.address),
      keyPrefix: 'contract3_',
      logger: silent,
    }),
  largeValueBytes: 1000 * 1000,
})

backendContract('MemcachedCache (no prefix, allowFlush)', {
  create: async () => {
    const server = await ownServer()
    return new MemcachedCache({ servers: [server.address], allowFlush: true, logger: silent })
  },
  largeValueBytes: 1000 * 1000,
})

backendContract('SASLMemcachedCache', {
  create: async () =>
    new SASLMemcachedCache({
      servers: [(await sasl()).address],
      username: USER,
      password: PASSWORD,
      keyPrefix: 'sasl_',
      logger: silent,
    }),
  largeValueBytes: 1000 * 1000,
})

backendContract('SpreadSASLMemcachedCache (three servers, 5 MiB values)', {
  create: async () =>
    new SpreadSASLMemcachedCache({
      servers: (await trio()).map((s) => s.address),
      keyPrefix: 'spread_',
      logger: silent,
    }),
  largeValueBytes: 5 << 20,
})

// ---- through new Cache() -------------------------------------------------------

describe('Memcached backends through new Cache()', () => {
  test('CACHE_TYPE names, aliases and Flask paths build the three classes from CACHE_MEMCACHED_*', async () => {
    const s = await sasl()
    const cases: [string, Function][] = [
      ['MemcachedCache', MemcachedCache],
      ['memcached', MemcachedCache],
      ['gaememcached', MemcachedCache],
      ['flask_caching.backends.memcache.MemcachedCache', MemcachedCache],
      ['SASLMemcachedCache', SASLMemcachedCache],
      ['saslmemcached', SASLMemcachedCache],
      ['SpreadSASLMemcachedCache', SpreadSASLMemcachedCache],
      ['spreadsaslmemcached', SpreadSASLMemcachedCache],
    ]
    for (const [type, cls] of cases) {
      const cache = new Cache({
        CACHE_TYPE: type,
        CACHE_MEMCACHED_SERVERS: [s.address],
        CACHE_MEMCACHED_USERNAME: USER,
        CACHE_MEMCACHED_PASSWORD: PASSWORD,
        logger: silent,
      })
      await cache.ready()
      try {
        assert.equal(cache.backend.constructor, cls, type)
        assert.equal(await cache.set('k', type), true, type)
        assert.equal(await cache.get('k'), type, type)
      } finally {
        await cache.backend.close?.()
      }
    }
  })

  test('camelCase keys and Cache.fromEnv (a comma-separated server list) configure it too', async () => {
    const [a, b] = await trio()
    const camel = new Cache({
      type: 'SASLMemcachedCache',
      memcachedServers: [(await sasl()).address],
      memcachedUsername: USER,
      memcachedPassword: PASSWORD,
      keyPrefix: 'camel_',
      options: { commandTimeout: 500 },
      logger: silent,
    })
    const fromEnv = Cache.fromEnv(
      {
        CACHE_TYPE: 'MemcachedCache',
        CACHE_MEMCACHED_SERVERS: `${a?.address},${b?.address}`,
        CACHE_KEY_PREFIX: 'env_',
      },
      { logger: silent },
    )
    try {
      await camel.ready()
      await fromEnv.ready()
      assert.equal(await camel.set('k', 'camel'), true)
      assert.equal(await camel.get('k'), 'camel')
      const backend = fromEnv.backend as MemcachedCache
      assert.deepEqual(backend.servers, [a?.address, b?.address])
      assert.equal(backend.keyPrefix, 'env_')
      assert.equal(await fromEnv.set('k', 'env'), true)
      assert.equal(await fromEnv.get('k'), 'env')
    } finally {
      await camel.backend.close?.()
      await fromEnv.backend.close?.()
    }
  })

  test('an Express cached route and a memoized function are served from memcached', async () => {
    const s = await plain()
    const cache = new Cache({
      CACHE_TYPE: 'MemcachedCache',
      CACHE_MEMCACHED_SERVERS: s.address,
      logger: silent,
    })
    await cache.ready()
    const path = '/hello-memcached'
    const app = await expressDriver.start(cache, [
      { path, label: 'hello', options: {}, respond: { kind: 'text' } },
    ])
    try {
      assert.equal(await (await fetch(app.url + path)).text(), 'hello#1')
      assert.equal(await (await fetch(app.url + path)).text(), 'hello#1')
      assert.equal(app.calls.get(path), 1)
      let calls = 0
      const double = cache.memoize(async (x: number) => {
        calls++
        return { doubled: x * 2 }
      })
      assert.deepEqual(await double(21), { doubled: 42 })
      assert.deepEqual(await double(21), { doubled: 42 })
      assert.equal(calls, 1)
      await cache.deleteMemoized(double, 21)
      await double(21)
      assert.equal(calls, 2)
    } finally {
      await app.close()
      await cache.backend.close?.()
    }
  })
})

// ---- keys, timeouts, counters ---------------------------------------------------

describe('MemcachedCache: keys, timeouts and counters (no prefix, so raw keys are visible)', () => {
  let server: MemcachedServer
  let cache: MemcachedCache
  before(async () => {
    server = await plain()
    cache = track(
      new MemcachedCache({ servers: [server.address], allowFlush: true, logger: silent }),
    )
  })

  test('a safe key is stored as is; unsafe or over-long keys are hashed, not dropped', async () => {
    const exact = 'k'.repeat(250)
    await cache.set('plain-key', 1)
    await cache.set(exact, 2)
    assert.notEqual(await ttlOf(server.port, 'plain-key'), undefined, 'stored under its own name')
    assert.notEqual(await ttlOf(server.port, exact), undefined, 'a 250-byte key is taken as is')
    const unsafe = [
      'k'.repeat(251),
      'with space',
      'tab\there',
      'new\nline',
      'nul\u0000',
      'del\u007f',
      'ключ '.repeat(60),
    ]
    for (const [i, key] of unsafe.entries()) {
      assert.equal(await cache.set(key, i), true, JSON.stringify(key))
      assert.equal(await cache.get(key), i, JSON.stringify(key))
      assert.equal(await cache.has(key), true)
    }
    // Unicode without spaces or controls fits memcached's keys and is kept readable.
    await cache.set('ключ', 'v')
    assert.notEqual(await ttlOf(server.port, 'ключ'), undefined)
  })

  test('hashed keys do not collide with keys that look like them, nor lone surrogates with U+FFFD', async () => {
    const hashedLookalike = `~h~${'0'.repeat(64)}`
    await cache.set('with space', 'a')
    await cache.set(hashedLookalike, 'b')
    await cache.set('\ud800x', 'c')
    await cache.set('\ufffdx', 'd')
    assert.deepEqual(await cache.getMany(['with space', hashedLookalike, '\ud800x', '\ufffdx']), [
      'a',
      'b',
      'c',
      'd',
    ])
  })

  test('timeouts: seconds up to 30 days are relative, longer ones are sent as absolute times', async () => {
    await cache.set('t-short', 1, 100)
    await cache.set('t-forever', 1, 0)
    await cache.set('t-30d', 1, 2592000)
    await cache.set('t-huge', 1, 2592000 + 100)
    await cache.set('t-frac', 1, 0.2)
    // Wide bands: a loaded machine may take seconds between the set and the read.
    const short = (await ttlOf(server.port, 't-short')) as number
    assert.ok(short >= 60 && short <= 100, `${short}`)
    assert.equal(await ttlOf(server.port, 't-forever'), -1)
    const month = (await ttlOf(server.port, 't-30d')) as number
    assert.ok(month > 2591940 && month <= 2592001, `${month}`)
    // Sent as a relative 2592100, memcached would take it for a date in 1970 and drop the item.
    const huge = (await ttlOf(server.port, 't-huge')) as number
    // memcached's clock ticks in whole seconds, so an absolute time can read one second longer.
    assert.ok(huge > 2592040 && huge <= 2592101, `${huge}`)
    assert.equal(await cache.get('t-huge'), 1)
    // Rounded up to 1 s, so it may be gone by now; what must not happen is that
    // it becomes 0 ("never expires", ttl -1) or anything longer than 1 s.
    const frac = await ttlOf(server.port, 't-frac')
    assert.ok(
      frac === undefined || frac === 0 || frac === 1,
      `a fraction rounds up to 1 s (not to "never"), got ${frac}`,
    )
    await assert.rejects(cache.set('t-bad', 1, -1), TypeError)
  })

  test('inc: memcached incr for positive deltas, atomic, and a new counter gets the default timeout', async () => {
    await Promise.all(Array.from({ length: 100 }, () => cache.inc('ctr', 1)))
    assert.equal(await cache.get('ctr'), 100)
    const ttl = (await ttlOf(server.port, 'ctr')) as number
    assert.ok(ttl > 240 && ttl <= 300, `the counter got the default timeout: ${ttl}`)
    await cache.set('kept', 5, 1000)
    await cache.inc('kept', 2)
    const kept = (await ttlOf(server.port, 'kept')) as number
    assert.ok(kept > 900 && kept <= 1000, `incr keeps the expiry (not the default 300): ${kept}`)
  })

  test('dec goes below zero (memcached decr would stop at 0) and stays atomic', async () => {
    assert.equal(await cache.inc('down', -3), -3)
    assert.equal(
      await cache.inc('down', 1),
      -2,
      'incr on a negative value falls back to compare-and-swap',
    )
    await cache.set('many', 0)
    await Promise.all(Array.from({ length: 40 }, () => cache.inc('many', -1)))
    assert.equal(await cache.get('many'), -40)
  })

  test('inc on a string or a float rejects with NotAnIntegerError and leaves the value', async () => {
    await cache.set('s', 'text')
    await cache.set('f', 1.5)
    await assert.rejects(cache.inc('s', 1), NotAnIntegerError)
    await assert.rejects(cache.inc('f', -1), NotAnIntegerError)
    assert.equal(await cache.get('s'), 'text')
    assert.equal(await cache.get('f'), 1.5)
  })

  test('a value over the item size limit is not stored: set resolves false, warned once, the old value kept', async () => {
    const logger = collectingLogger()
    const c = track(new MemcachedCache({ servers: [server.address], allowFlush: true, logger }))
    await c.set('big', 'old')
    assert.equal(await c.set('big', Buffer.alloc(2 << 20)), false)
    assert.equal(await c.set('big2', Buffer.alloc(2 << 20)), false)
    // Checked before sending (memcached would drop the old item), so the old value stays.
    assert.equal(await c.get('big'), 'old')
    assert.equal(logger.warnings.filter((w) => w.includes('item size limit')).length, 1)
  })

  test('add is atomic: of 20 concurrent adds exactly one wins', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => cache.add('race', i)))
    assert.equal(results.filter(Boolean).length, 1)
  })

  test('has does not fetch the value: it appends nothing and leaves value and expiry', async () => {
    await cache.set('h', 'value', 60)
    assert.equal(await cache.has('h'), true)
    assert.equal(await cache.get('h'), 'value')
    const ttl = (await ttlOf(server.port, 'h')) as number
    assert.ok(ttl > 30 && ttl <= 60, `${ttl}`)
  })
})

// ---- consistent hashing --------------------------------------------------------

describe('MemcachedCache: keys spread over servers by consistent hashing', () => {
  test('each key lives on the server the ring names, and all servers get a share', async () => {
    const servers = await trio()
    const cache = track(
      new MemcachedCache({
        servers: servers.map((s) => s.address),
        allowFlush: true,
        logger: silent,
      }),
    )
    const keys = Array.from({ length: 300 }, (_, i) => `spread-${i}`)
    await cache.setMany(keys.map((k) => [k, k]))
    const perServer = new Map<string, number>()
    for (const key of keys) {
      const owner = cache.serverOf(key)
      perServer.set(owner, (perServer.get(owner) ?? 0) + 1)
      const port = Number(owner.split(':')[1])
      assert.notEqual(await ttlOf(port, key), undefined, `${key} is on ${owner}`)
    }
    assert.equal(perServer.size, 3)
    for (const [owner, n] of perServer) assert.ok(n > 50, `${owner} holds ${n} of 300`)
    assert.deepEqual(await cache.getMany(keys), keys)
  })

  test('adding a fourth server moves about a quarter of the keys, all to the new server', () => {
    const three = new HashRing(['10.0.0.1:11211', '10.0.0.2:11211', '10.0.0.3:11211'])
    const four = new HashRing([
      '10.0.0.1:11211',
      '10.0.0.2:11211',
      '10.0.0.3:11211',
      '10.0.0.4:11211',
    ])
    let moved = 0
    const n = 20000
    for (let i = 0; i < n; i++) {
      const before = three.serverOf(`key:${i}`)
      const after = four.serverOf(`key:${i}`)
      if (before !== after) {
        moved++
        assert.equal(after, 3, 'a key only ever moves to the new server')
      }
    }
    const share = moved / n
    assert.ok(
      share > 0.15 && share < 0.35,
      `moved ${(share * 100).toFixed(1)}% (modulo hashing would move 75%)`,
    )
  })

  test('removing a server moves only its own keys', () => {
    const labels = ['a:1', 'b:1', 'c:1', 'd:1']
    const all = new HashRing(labels)
    const without = new HashRing(['a:1', 'b:1', 'd:1'])
    const map = [0, 1, 3]
    for (let i = 0; i < 5000; i++) {
      const before = all.serverOf(`k${i}`)
      const after = map[without.serverOf(`k${i}`)]
      if (before !== 2) assert.equal(after, before)
    }
  })
})

// ---- SASL ----------------------------------------------------------------------

describe('SASLMemcachedCache: authentication', () => {
  test('authenticates with PLAIN and works', async () => {
    const s = await sasl()
    const cache = track(
      new SASLMemcachedCache({
        servers: [s.address],
        username: USER,
        password: PASSWORD,
        logger: silent,
      }),
    )
    assert.equal(await cache.set('a', 1), true)
    assert.equal(await cache.get('a'), 1)
  })

  test('wrong credentials reject with MemcachedAuthError naming the keys to check', async () => {
    const s = await sasl()
    const cache = track(
      new SASLMemcachedCache({
        servers: [s.address],
        username: USER,
        password: 'wrong',
        logger: silent,
      }),
    )
    await assert.rejects(cache.get('a'), (error: Error) => {
      assert.ok(error instanceof MemcachedAuthError)
      assert.match(error.message, /rejected the credentials of user "cachette"/)
      assert.match(error.message, /CACHE_MEMCACHED_PASSWORD/)
      return true
    })
  })

  test('through a Cache, wrong credentials miss and are logged, never thrown at the app', async () => {
    const s = await sasl()
    const logger = collectingLogger()
    const cache = new Cache({
      CACHE_TYPE: 'SASLMemcachedCache',
      CACHE_MEMCACHED_SERVERS: [s.address],
      CACHE_MEMCACHED_USERNAME: USER,
      CACHE_MEMCACHED_PASSWORD: 'wrong',
      logger,
    })
    try {
      assert.equal(await cache.get('a'), undefined)
      assert.equal(await cache.set('a', 1), false)
      assert.ok(
        logger.errors.some((e) => /rejected the credentials/.test(e)),
        logger.errors.join('\n'),
      )
    } finally {
      await cache.backend.close?.()
    }
  })

  test('no credentials against a SASL server: a clear error', async () => {
    const s = await sasl()
    const cache = track(new MemcachedCache({ servers: [s.address], logger: silent }))
    await assert.rejects(
      cache.get('a'),
      /requires SASL authentication; set CACHE_MEMCACHED_USERNAME/,
    )
  })

  test('credentials against a server without SASL: a clear error', async () => {
    const s = await plain()
    const cache = track(
      new SASLMemcachedCache({
        servers: [s.address],
        username: USER,
        password: PASSWORD,
        logger: silent,
      }),
    )
    await assert.rejects(cache.get('a'), /does not support SASL/)
  })
})

// ---- TLS -----------------------------------------------------------------------

describe('MemcachedCache: TLS (memcached -Z)', () => {
  test('connects with tls options, and refuses an untrusted certificate', async () => {
    const s = await ownServer({ tls: true })
    const trusted = track(
      new MemcachedCache({
        servers: [s.address],
        tls: { ca: s.ca },
        keyPrefix: 'tls_',
        logger: silent,
      }),
    )
    assert.equal(await trusted.set('k', 'over tls'), true)
    assert.equal(await trusted.get('k'), 'over tls')
    assert.equal(await trusted.inc('n', 2), 2)
    const untrusted = track(new MemcachedCache({ servers: [s.address], tls: true, logger: silent }))
    await assert.rejects(untrusted.get('k'), /self[- ]signed/)
    const plainClient = track(
      new MemcachedCache({ servers: [s.address], commandTimeout: 300, logger: silent }),
    )
    await assert.rejects(plainClient.get('k'))
  })
})

// ---- chunked values ------------------------------------------------------------

describe('SpreadSASLMemcachedCache: values larger than the item size limit', () => {
  let servers: MemcachedServer[]
  let cache: SpreadSASLMemcachedCache
  before(async () => {
    servers = await trio()
    cache = track(
      new SpreadSASLMemcachedCache({
        servers: servers.map((s) => s.address),
        keyPrefix: 'chunks_',
        chunkSize: 1000,
        maxChunks: 64,
        logger: silent,
      }),
    )
  })

  const bytes = (n: number, seed: number) =>
    Buffer.from(Array.from({ length: n }, (_, i) => (i * seed) & 0xff))

  test('a chunked value reads back whole; has, add and getMany see it', async () => {
    const value = bytes(20_000, 7)
    assert.equal(await cache.set('big', value), true)
    assert.ok(value.equals((await cache.get('big')) as Buffer))
    assert.equal(await cache.has('big'), true, "Flask-Caching's has() says false here")
    assert.equal(await cache.add('big', 'other'), false)
    const [big, small, missing] = await cache.getMany(['big', 'small-none', 'missing'])
    assert.ok(value.equals(big as Buffer))
    assert.equal(small, undefined)
    assert.equal(missing, undefined)
    assert.equal(await cache.add('fresh-big', value), true)
    assert.ok(value.equals((await cache.get('fresh-big')) as Buffer))
  })

  test('a shorter value over a longer one never picks up the old chunks', async () => {
    await cache.set('shrink', bytes(30_000, 3))
    const shorter = bytes(2_500, 5)
    await cache.set('shrink', shorter)
    assert.ok(shorter.equals((await cache.get('shrink')) as Buffer))
    await cache.set('shrink', 'small now')
    assert.equal(await cache.get('shrink'), 'small now')
  })

  test('a missing chunk makes the value a miss, never a truncated value', async () => {
    const value = bytes(40_000, 11)
    await cache.set('lossy', value)
    // Flush one server that holds chunks but not the manifest (chunks land on every server).
    const manifestOn = cache.serverOf('lossy')
    const victim = servers.find((s) => s.address !== manifestOn) as MemcachedServer
    await textCommand(victim.port, 'flush_all')
    assert.equal(await cache.get('lossy'), undefined)
    assert.equal(await cache.has('lossy'), false)
  })

  test('delete and deleteMany remove the chunks too', async () => {
    // Servers of its own: item counts on the shared ones move as other tests' entries expire.
    const own = await Promise.all([ownServer(), ownServer(), ownServer()])
    const c = track(
      new SpreadSASLMemcachedCache({
        servers: own.map((s) => s.address),
        keyPrefix: 'chunks_',
        chunkSize: 1000,
        maxChunks: 64,
        logger: silent,
      }),
    )
    const count = async () =>
      (await Promise.all(own.map((s) => itemCount(s.port)))).reduce((a, b) => a + b, 0)
    // Reads on every server create their namespace keys first.
    await c.getMany(Array.from({ length: 60 }, (_, i) => `warm${i}`))
    const before = await count()
    await c.set('gone1', bytes(10_000, 13))
    await c.set('gone2', bytes(10_000, 17))
    // 10,000 bytes plus the encoding's few header bytes: eleven 1,000-byte chunks and a manifest each.
    assert.equal((await count()) - before, 24)
    assert.equal(await c.delete('gone1'), true)
    assert.deepEqual(await c.deleteMany(['gone2']), ['gone2'])
    assert.equal(await count(), before)
  })

  test('a value needing more than maxChunks is a TypeError and stores nothing', async () => {
    await cache.set('huge', 'old')
    await assert.rejects(cache.set('huge', bytes(65_001, 1)), UnserializableValueError)
    assert.equal(await cache.get('huge'), 'old')
  })

  test('CACHE_OPTIONS chunksize and maxchunk (Flask spellings) configure it', async () => {
    const c = new Cache({
      CACHE_TYPE: 'SpreadSASLMemcachedCache',
      CACHE_MEMCACHED_SERVERS: servers.map((s) => s.address),
      CACHE_OPTIONS: { chunksize: 100, maxchunk: 2 },
      logger: silent,
    })
    try {
      assert.equal(await c.set('two', Buffer.alloc(150)), true)
      await assert.rejects(c.set('three', Buffer.alloc(250)), TypeError)
    } finally {
      await c.backend.close?.()
    }
  })
})

// ---- clear ---------------------------------------------------------------------

describe('MemcachedCache: clear', () => {
  test('with a prefix: a new namespace, seen at once by other instances; other apps keep their keys', async () => {
    const s = await plain()
    const mine = track(
      new MemcachedCache({ servers: [s.address], keyPrefix: 'app1_', logger: silent }),
    )
    const otherProcess = track(
      new MemcachedCache({ servers: [s.address], keyPrefix: 'app1_', logger: silent }),
    )
    const otherApp = track(
      new MemcachedCache({ servers: [s.address], keyPrefix: 'app2_', logger: silent }),
    )
    await textCommand(s.port, 'set foreign 0 0 3\r\nabc')
    await mine.set('a', 1)
    await otherApp.set('a', 2)
    assert.equal(await otherProcess.get('a'), 1)
    assert.equal(await mine.clear(), true)
    assert.equal(await mine.get('a'), undefined)
    assert.equal(
      await otherProcess.get('a'),
      undefined,
      'another instance sees the clear immediately',
    )
    assert.equal(await otherProcess.has('a'), false)
    await otherProcess.set('b', 'after')
    assert.equal(await mine.get('b'), 'after')
    assert.equal(await otherApp.get('a'), 2, 'another prefix is untouched')
    assert.match(
      await textCommand(s.port, 'get foreign'),
      /abc/,
      'keys outside cachette are untouched',
    )
  })

  test('a namespace lost to a restart or eviction starts a new one, never reviving old entries', async () => {
    const s = await plain()
    const cache = track(
      new MemcachedCache({ servers: [s.address], keyPrefix: 'evict_', logger: silent }),
    )
    await cache.set('x', 'old')
    await textCommand(s.port, 'delete evict_~ns')
    assert.equal(await cache.get('x'), undefined)
    await cache.set('x', 'new')
    assert.equal(await cache.get('x'), 'new')
  })

  test('without a prefix it refuses, naming CACHE_KEY_PREFIX; allowFlush flushes with a warning', async () => {
    const s = await plain()
    const refusing = track(new MemcachedCache({ servers: [s.address], logger: silent }))
    await assert.rejects(refusing.clear(), (error: Error) => {
      assert.ok(error instanceof ConfigError)
      assert.equal(error.key, 'CACHE_KEY_PREFIX')
      return true
    })
    const logger = collectingLogger()
    const flushing = track(new MemcachedCache({ servers: [s.address], allowFlush: true, logger }))
    await flushing.set('f', 1)
    assert.equal(await flushing.clear(), true)
    assert.equal(await flushing.get('f'), undefined)
    assert.ok(logger.warnings.some((w) => w.includes('flush_all')))
  })
})

// ---- failures ------------------------------------------------------------------

describe('MemcachedCache: a server killed mid-test and restarted', () => {
  test('fails fast and uncached while down, other servers keep serving, resumes on its own', async () => {
    const a = await ownServer()
    const b = await ownServer()
    const logger = collectingLogger()
    const cache = new Cache({
      CACHE_TYPE: 'MemcachedCache',
      CACHE_MEMCACHED_SERVERS: [a.address, b.address],
      logger,
    })
    await cache.ready()
    const backend = cache.backend as MemcachedCache
    track(backend)
    const onA = Array.from({ length: 50 }, (_, i) => `k${i}`).filter(
      (k) => backend.serverOf(k) === a.address,
    )
    const onB = Array.from({ length: 50 }, (_, i) => `k${i}`).filter(
      (k) => backend.serverOf(k) === b.address,
    )
    assert.ok(onA.length > 0 && onB.length > 0)
    const keyA = onA[0] as string
    const keyB = onB[0] as string
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
      await cache.set(keyA, 'a')
      await cache.set(keyB, 'b')
      await report(1)
      await fetch(app.url + path)

      await a.kill()
      await b.kill()
      assert.equal(await cache.get(keyA), undefined)
      const logged = logger.errors.length
      assert.equal(await cache.set(keyA, 'x'), false)
      assert.ok(
        logger.errors.slice(logged).some((m) => /is down .*the request was not sent/.test(m)),
        `a second call fails without touching the network: ${logger.errors.slice(logged).join('\n')}`,
      )
      for (let i = 2; i <= 4; i++) {
        const res = await fetch(app.url + path)
        assert.equal(res.status, 200)
        assert.equal(await res.text(), `r#${i}`)
      }
      assert.equal(await report(1), 'report 1')
      assert.equal(await report(1), 'report 1')
      assert.ok(computed >= 3, 'memoize computes while the cache is down')
      await assert.rejects(cache.inc('n'), /memcached/, 'inc rejects (no made-up number)')
      assert.ok(
        logger.errors.length > 0 && logger.errors.length < 20,
        `${logger.errors.length} logged`,
      )

      // b comes back (empty, as after a crash): its keys are cached again, a's still miss.
      await b.start()
      await eventually(async () => (await cache.set(keyB, 'b2')) === true, 15_000, 'reconnect to b')
      assert.equal(await cache.get(keyB), 'b2')
      assert.equal(await cache.get(keyA), undefined)
      await a.start()
      await eventually(async () => (await cache.set(keyA, 'a2')) === true, 15_000, 'reconnect to a')
      assert.equal(await cache.get(keyA), 'a2')
      const calls = app.calls.get(path) ?? 0
      await (await fetch(app.url + path)).text()
      await storesSettled() // the view's store, after the response
      await (await fetch(app.url + path)).text()
      assert.equal(app.calls.get(path), calls + 1, 'the view is cached again')
    } finally {
      await app.close()
    }
  })

  test('a server that accepts but never answers: calls time out after commandTimeout', async () => {
    const sockets = new Set<Socket>()
    const silentServer: Server = createServer((socket) => {
      sockets.add(socket)
      socket.on('error', () => {})
    })
    await new Promise<void>((resolve) => silentServer.listen(0, '127.0.0.1', resolve))
    const { port } = silentServer.address() as { port: number }
    const cache = track(
      new MemcachedCache({ servers: [`127.0.0.1:${port}`], commandTimeout: 300, logger: silent }),
    )
    try {
      const started = Date.now()
      await assert.rejects(cache.get('k'), /no answer within 300 ms \(commandTimeout\)/)
      const elapsed = Date.now() - started
      // It waited for the timeout (a timer never fires early); no upper bound:
      // a loaded machine may take longer, and the message names the timeout.
      assert.ok(elapsed >= 250, `gave up after ${elapsed} ms`)
      // Then the server is skipped, nothing sent, until its retry delay passes.
      await assert.rejects(cache.get('k'), /is down .*the request was not sent/)
    } finally {
      for (const s of sockets) s.destroy()
      silentServer.close()
    }
  })

  test('an unreachable server fails fast from the start; nothing is thrown unhandled', async () => {
    const cache = track(new MemcachedCache({ servers: ['127.0.0.1:1'], logger: silent }))
    await assert.rejects(cache.get('k'), /ECONNREFUSED/)
    await assert.rejects(cache.setMany([['a', 1]]), /is down .*the request was not sent/)
  })
})

// ---- configuration -------------------------------------------------------------

describe('Memcached backends: configuration errors name the key', () => {
  const configError = (fn: () => unknown, key: string, pattern?: RegExp) =>
    assert.throws(fn, (error: Error) => {
      assert.ok(error instanceof ConfigError, String(error))
      assert.equal(error.key, key)
      if (pattern) assert.match(error.message, pattern)
      return true
    })

  test('server addresses', () => {
    assert.deepEqual(parseServer('cache.local'), {
      host: 'cache.local',
      port: 11211,
      label: 'cache.local:11211',
    })
    assert.deepEqual(parseServer('[::1]:11300'), { host: '::1', port: 11300, label: '[::1]:11300' })
    assert.deepEqual(parseServer('/run/memcached.sock'), {
      path: '/run/memcached.sock',
      label: '/run/memcached.sock',
    })
    assert.deepEqual(
      parseServers('a:1, b:2').map((s) => s.label),
      ['a:1', 'b:2'],
    )
    configError(
      () => new MemcachedCache({ servers: ['host:99999'] }),
      'CACHE_MEMCACHED_SERVERS',
      /out of range/,
    )
    configError(() => new MemcachedCache({ servers: ['a b'] }), 'CACHE_MEMCACHED_SERVERS')
    configError(() => new MemcachedCache({ servers: [] }), 'CACHE_MEMCACHED_SERVERS')
    configError(
      () => new MemcachedCache({ servers: ['a:1', 'a:1'] }),
      'CACHE_MEMCACHED_SERVERS',
      /twice/,
    )
  })

  test('prefix, credentials and options', () => {
    configError(() => new MemcachedCache({ keyPrefix: 'has space' }), 'CACHE_KEY_PREFIX')
    configError(() => new MemcachedCache({ keyPrefix: 'p'.repeat(161) }), 'CACHE_KEY_PREFIX')
    configError(() => new SASLMemcachedCache({ username: 'u' }), 'CACHE_MEMCACHED_PASSWORD')
    configError(() => new SASLMemcachedCache({ password: 'p' }), 'CACHE_MEMCACHED_USERNAME')
    configError(() => new MemcachedCache({ commandTimeout: 0 }), 'CACHE_OPTIONS', /commandTimeout/)
    configError(() => new MemcachedCache({ tls: 'yes' as never }), 'CACHE_OPTIONS', /tls/)
    configError(
      () => new MemcachedCache({ chunkSize: 10 }),
      'CACHE_OPTIONS',
      /SpreadSASLMemcachedCache only/,
    )
    configError(() => new SpreadSASLMemcachedCache({ maxChunks: 0 }), 'CACHE_OPTIONS', /maxChunks/)
    configError(
      () => MemcachedCache.factory(undefined, {}, [], factoryOptions({ behaviors: {} })),
      'CACHE_OPTIONS',
      /unknown option "behaviors"/,
    )
    configError(
      () => new Cache({ CACHE_TYPE: 'MemcachedCache', CACHE_MEMCACHED_SERVERS: ['x:0'] }),
      'CACHE_MEMCACHED_SERVERS',
    )
  })

  test("pylibmc's pool options are accepted (one pipelined connection needs no pool)", () => {
    const c = MemcachedCache.factory(
      undefined,
      {},
      [],
      factoryOptions({ poolSize: 4, poolBlocking: false }),
    )
    assert.ok(c instanceof MemcachedCache)
  })

  test('the three classes form Flask-Caching hierarchy', () => {
    assert.ok(new SpreadSASLMemcachedCache() instanceof SASLMemcachedCache)
    assert.ok(new SASLMemcachedCache() instanceof MemcachedCache)
  })
})
