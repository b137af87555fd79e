/**
 * cachette/keyv: KeyvCache on real Keyv adapters (@keyv/postgres against a
 * PostgreSQL server the harness starts, @keyv/sqlite on a temporary file),
 * through the contract suite and the Cache facade; and toKeyvStore under
 * Keyv and cache-manager 7.
 */
import assert from 'node:assert/strict'
import type { EventEmitter } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import KeyvPostgres from '@keyv/postgres'
import KeyvSqlite from '@keyv/sqlite'
import { createCache } from 'cache-manager'
import Keyv, { type KeyvStoreAdapter } from 'keyv'
import { KeyvCache, type KeyvStoreLike, toKeyvStore } from '../src/backends/keyv/index.js'
import { ConfigError } from '../src/core/errors.js'
import { Cache, SimpleCache } from '../src/index.js'
import { backendContract } from '../src/testing/index.js'
import { collectingLogger, eventually, fakeClock, Lifetimes, silentLogger } from './helpers.js'
import { type PostgresServer, startPostgres } from './servers/postgres.js'

const life = new Lifetimes()
const postgres = life.lazily(startPostgres, (s: PostgresServer) => s.destroy())
const dir = mkdtempSync(join(tmpdir(), 'cachette-keyv-'))
life.defer(async () => rmSync(dir, { recursive: true, force: true }))
after(() => life.stopAll())

// @keyv/postgres leaves its pg Pool without an 'error' listener, so a
// database restart that ends idle connections would crash the process
// through the pool; the application (here, the test) attaches one.
const poolErrors: unknown[] = []
const pg = createRequire(import.meta.url)('pg') as {
  Pool: new (...args: unknown[]) => EventEmitter
}
const BasePool = pg.Pool
pg.Pool = class extends BasePool {
  constructor(...args: unknown[]) {
    super(...args)
    this.on('error', (error: unknown) => poolErrors.push(error))
  }
}

let tables = 0
async function postgresStore(): Promise<KeyvPostgres> {
  const server = await postgres()
  tables++
  return new KeyvPostgres({
    uri: server.uri,
    table: `cache_${tables}`,
    max: 4,
    connectionTimeoutMillis: 2000,
  })
}

let files = 0
function sqliteStore(): KeyvSqlite {
  files++
  return new KeyvSqlite({
    uri: `sqlite://${join(dir, `cache-${files}.sqlite`)}`,
    busyTimeout: 2000,
  })
}

// ---- the contract suite --------------------------------------------------------

const pgClock = fakeClock(Date.now())
backendContract('KeyvCache on @keyv/postgres (key prefix)', {
  create: async () =>
    new KeyvCache({ store: await postgresStore(), keyPrefix: 'contract/', clock: pgClock.now }),
  advanceTime: (ms) => pgClock.advance(ms),
  atomicIncrement: false,
})

const sqliteClock = fakeClock(Date.now())
backendContract('KeyvCache on @keyv/sqlite', {
  create: () => new KeyvCache({ store: sqliteStore(), clock: sqliteClock.now }),
  advanceTime: (ms) => sqliteClock.advance(ms),
  atomicIncrement: false,
  // Another program's entry: no expiry, then the bytes in base64 (no key prefix here).
  writeRaw: async (key, bytes, backend) => {
    await (backend as KeyvCache).store.set(key, `:${bytes.toString('base64')}`)
  },
})

const keyvClock = fakeClock(Date.now())
backendContract('KeyvCache on a Keyv instance over @keyv/sqlite (key prefix)', {
  create: () =>
    new KeyvCache({
      store: new Keyv({ store: sqliteStore(), namespace: 'app' }),
      keyPrefix: 'p/',
      clock: keyvClock.now,
    }),
  advanceTime: (ms) => keyvClock.advance(ms),
  atomicIncrement: false,
})

// ---- configuration -------------------------------------------------------------

describe('KeyvCache: configuration', () => {
  test('no store, or one that is not a Keyv adapter, is a ConfigError naming CACHE_OPTIONS.store', () => {
    for (const options of [
      {},
      { store: 42 },
      { store: { get() {} } },
      { store: () => null },
      { store: async () => new Map() },
    ]) {
      assert.throws(
        () => new Cache({ CACHE_TYPE: 'KeyvCache', CACHE_OPTIONS: options }),
        (error: unknown) =>
          error instanceof ConfigError &&
          error.key === 'CACHE_OPTIONS.store' &&
          error.message.includes('CACHE_OPTIONS.store'),
        JSON.stringify(options),
      )
    }
    assert.throws(() => new KeyvCache({}), ConfigError)
  })

  test('an unknown CACHE_OPTIONS key is a ConfigError naming it', () => {
    assert.throws(
      () =>
        new Cache({
          CACHE_TYPE: 'keyv',
          CACHE_OPTIONS: { store: new Map(), max_key_lenght: 10 },
        }),
      (error: unknown) => error instanceof ConfigError && error.message.includes('maxKeyLenght'),
    )
  })

  test("CACHE_TYPE 'KeyvCache' and 'keyv' take the store, or a factory of it, from CACHE_OPTIONS", async () => {
    for (const [type, store] of [
      ['KeyvCache', sqliteStore()],
      ['keyv', () => sqliteStore()],
    ] as const) {
      const cache = new Cache({
        CACHE_TYPE: type,
        CACHE_KEY_PREFIX: 'f/',
        CACHE_DEFAULT_TIMEOUT: 60,
        CACHE_OPTIONS: { store },
      })
      assert.ok(cache.backend instanceof KeyvCache)
      assert.equal((cache.backend as KeyvCache).keyPrefix, 'f/')
      assert.equal(cache.backend.defaultTimeout, 60)
      await cache.set('when', new Date(0))
      assert.deepStrictEqual(await cache.get('when'), new Date(0))
      await cache.close()
    }
  })

  test('values are stored as cachette bytes with their expiry, not as Keyv JSON', async () => {
    const store = new Map<string, unknown>()
    const clock = fakeClock()
    const cache = new KeyvCache({ store, keyPrefix: 'x/', clock: clock.now })
    await cache.set('m', new Map([[1, 2]]), 10)
    const raw = store.get('x/m')
    assert.equal(typeof raw, 'string')
    assert.match(raw as string, new RegExp(`^${clock.now() + 10_000}:`))
    assert.deepStrictEqual(await cache.get('m'), new Map([[1, 2]]))
    clock.advance(10_000)
    assert.equal(await cache.get('m'), undefined, 'expired on read though the store keeps it')
    assert.ok(store.has('x/m'))
  })

  test('the TTL reaches the adapter in milliseconds; 0 means none', async () => {
    const ttls: (number | undefined)[] = []
    const store = new Map<string, unknown>()
    const adapter = {
      get: (k: string) => store.get(k),
      set: (k: string, v: unknown, ttl?: number) => {
        ttls.push(ttl)
        store.set(k, v)
      },
      delete: (k: string) => store.delete(k),
      clear: () => store.clear(),
    }
    const clock = fakeClock()
    const cache = new KeyvCache({ store: adapter, clock: clock.now })
    await cache.set('a', 1, 2.5)
    await cache.set('b', 1, 0)
    assert.deepStrictEqual(ttls, [2500, undefined])
  })

  test("an adapter's 'error' event is logged, never a crash", async () => {
    const logger = collectingLogger()
    const store = sqliteStore()
    const cache = new KeyvCache({ store, logger })
    store.emit('error', Object.assign(new Error('disk on fire'), { code: 'SQLITE_IOERR' }))
    assert.ok(logger.warnings.some((w) => w.includes('disk on fire')))
    await cache.close()
  })

  test('clear() with a key prefix removes only its own keys; keys() lists live ones', async () => {
    const store = sqliteStore()
    const a = new KeyvCache({ store, keyPrefix: 'a/', disconnectOnClose: false })
    const b = new KeyvCache({ store, keyPrefix: 'b/' })
    await a.setMany([
      ['one', 1],
      ['two', 2],
      ['x'.repeat(400), 'hashed'],
    ])
    await b.set('one', 'b1')
    const listed: string[] = []
    for await (const k of a.keys('')) listed.push(k)
    assert.deepStrictEqual(listed.sort(), ['one', 'two'])
    assert.equal(await a.clear(), true)
    assert.deepStrictEqual(await a.getMany(['one', 'two', 'x'.repeat(400)]), [
      undefined,
      undefined,
      undefined,
    ])
    assert.equal(await b.get('one'), 'b1')
    await b.close()
  })
})

// ---- through the facade ------------------------------------------------------

describe('KeyvCache: through the Cache facade', () => {
  test('memoize and getOrSet work on @keyv/postgres', async () => {
    const cache = new Cache({
      CACHE_TYPE: 'KeyvCache',
      CACHE_KEY_PREFIX: 'facade/',
      CACHE_OPTIONS: { store: await postgresStore() },
    })
    let calls = 0
    const load = cache.memoize(
      async (id: number) => {
        calls++
        return { id, at: new Date(id) }
      },
      { timeout: 60 },
    )
    assert.deepStrictEqual(await load(5), { id: 5, at: new Date(5) })
    assert.deepStrictEqual(await load(5), { id: 5, at: new Date(5) })
    assert.equal(calls, 1)
    await cache.deleteMemoized(load, 5)
    await load(5)
    assert.equal(calls, 2)

    let made = 0
    const factory = async () => {
      made++
      return 12345678901234567890n
    }
    assert.equal(await cache.getOrSet('big', factory, { timeout: 60 }), 12345678901234567890n)
    assert.equal(await cache.getOrSet('big', factory, { timeout: 60 }), 12345678901234567890n)
    assert.equal(made, 1)
    await cache.close()
  })

  test('PostgreSQL down: a miss, logged; back up: works again', async () => {
    const server = await postgres()
    const logger = collectingLogger()
    const cache = new Cache({
      CACHE_TYPE: 'KeyvCache',
      CACHE_OPTIONS: { store: await postgresStore() },
      CACHE_OPERATION_TIMEOUT: 3,
      logger,
    })
    assert.equal(await cache.set('k', 'before'), true)
    assert.equal(await cache.get('k'), 'before')
    await server.shutdown()
    try {
      assert.equal(await cache.get('k'), undefined)
      assert.equal(await cache.set('k2', 'during'), false)
      assert.ok(logger.errors.length > 0, 'the failure is logged')
    } finally {
      await server.start()
    }
    await eventually(async () => (await cache.get('k')) === 'before', 10_000, 'reads work again')
    assert.equal(await cache.set('k2', 'after'), true)
    assert.equal(await cache.get('k2'), 'after')
    await cache.close()
  })
})

// ---- toKeyvStore ---------------------------------------------------------------

describe('toKeyvStore: a cachette Cache under Keyv and cache-manager', () => {
  test("the types fit Keyv's own: the store is a KeyvStoreAdapter, Keyv and its adapters are KeyvStoreLike", () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    const adapter: KeyvStoreAdapter = toKeyvStore(cache)
    const stores: KeyvStoreLike[] = [new Keyv(), new Map(), adapter]
    assert.equal(stores.length, 3)
    assert.equal(typeof adapter.on, 'function')
  })

  test('Keyv over a SimpleCache: TTL in ms becomes seconds, namespaces clear apart', async () => {
    const clock = fakeClock(Date.now())
    const cache = new Cache({ CACHE_TYPE: SimpleCache, CACHE_OPTIONS: { clock: clock.now } })
    const one = new Keyv({ store: toKeyvStore(cache), namespace: 'one' })
    const two = new Keyv({ store: toKeyvStore(cache), namespace: 'two' })
    assert.equal(await one.set('k', { a: 1 }, 1500), true)
    assert.equal(await two.set('k', 'second'), true)
    assert.deepStrictEqual(await one.get('k'), { a: 1 })
    assert.equal(await cache.has('one:k'), true, 'Keyv prefixes with its namespace')
    clock.advance(1500)
    assert.equal(await cache.has('one:k'), false, 'the cache expires it after 1.5 s')
    await one.set('j', 1)
    await one.clear()
    assert.equal(await one.get('j'), undefined)
    assert.equal(await two.get('k'), 'second', 'clear() keeps other namespaces')
  })

  test('without Keyv serialization, values keep their type through cachette', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    const keyv = new Keyv({
      store: toKeyvStore(cache),
      serialize: undefined,
      deserialize: undefined,
    })
    const value = { when: new Date(7), tags: new Set(['a']), n: 2n ** 70n }
    await keyv.set('typed', value)
    assert.deepStrictEqual(await keyv.get('typed'), value)
  })

  test('cache-manager 7 wrap calls the function once for two calls and honours the ttl', async () => {
    const clock = fakeClock(Date.now())
    const cache = new Cache({ CACHE_TYPE: SimpleCache, CACHE_OPTIONS: { clock: clock.now } })
    const manager = createCache({ stores: [new Keyv({ store: toKeyvStore(cache) })] })
    let calls = 0
    const fn = async () => {
      calls++
      return `v${calls}`
    }
    assert.equal(await manager.wrap('w', fn, 2000), 'v1')
    assert.equal(await manager.wrap('w', fn, 2000), 'v1')
    assert.equal(calls, 1)
    assert.equal(await cache.has('keyv:w'), true)
    clock.advance(2000)
    assert.equal(await cache.has('keyv:w'), false, 'the 2 s ttl reached the cache')
    assert.equal(await manager.wrap('w', fn, 2000), 'v2')
    assert.equal(calls, 2)
    await manager.disconnect()
  })

  test('a backend that is down reads as a miss under Keyv, logged by the facade', async () => {
    const logger = collectingLogger()
    const store = sqliteStore()
    const cache = new Cache({
      CACHE_TYPE: KeyvCache,
      CACHE_OPTIONS: { store },
      logger,
    })
    const keyv = new Keyv({ store: toKeyvStore(cache) })
    await keyv.set('k', 'v')
    assert.equal(await keyv.get('k'), 'v')
    await store.disconnect()
    assert.equal(await keyv.get('k'), undefined)
    assert.ok(logger.errors.length > 0)
    void silentLogger
  })
})
