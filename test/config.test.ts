import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  type BackendFactoryOptions,
  BaseCache,
  Cache,
  type CacheBackend,
  ClusterCache,
  ConfigError,
  DeleteManyError,
  FileSystemCache,
  InvalidKeyError,
  InvalidTimeoutError,
  NotAnIntegerError,
  NullCache,
  type Serializer,
  SimpleCache,
  UnserializableValueError,
} from '../src/index.js'
import { collectingLogger } from './helpers.js'

const configError = (key: string) => (err: unknown) =>
  err instanceof ConfigError && err.key === key && err instanceof TypeError

describe('configuration', () => {
  it('accepts Flask-Caching keys verbatim and camelCase keys alike', async () => {
    const a = new Cache({
      CACHE_TYPE: 'SimpleCache',
      CACHE_DEFAULT_TIMEOUT: 60,
      CACHE_THRESHOLD: 9,
    })
    const b = new Cache({ type: 'SimpleCache', defaultTimeout: 60, threshold: 9 })
    for (const c of [a, b]) {
      const backend = (await c.ready()) as SimpleCache
      assert.ok(backend instanceof SimpleCache)
      assert.equal(backend.defaultTimeout, 60)
      assert.equal(backend.threshold, 9)
    }
  })

  it('reports an unknown key by name, with a hint for a near miss', () => {
    assert.throws(() => new Cache({ CACHE_TYPO: 1 } as never), configError('CACHE_TYPO'))
    assert.throws(
      () => new Cache({ cache_default_timeout: 1 } as never),
      (e: Error) =>
        configError('cache_default_timeout')(e) &&
        /did you mean CACHE_DEFAULT_TIMEOUT/.test(e.message),
    )
  })

  it('reports wrong types by key name', () => {
    assert.throws(
      () => new Cache({ CACHE_DEFAULT_TIMEOUT: 'soon' }),
      configError('CACHE_DEFAULT_TIMEOUT'),
    )
    assert.throws(
      () => new Cache({ CACHE_DEFAULT_TIMEOUT: -5 }),
      configError('CACHE_DEFAULT_TIMEOUT'),
    )
    assert.throws(
      () => new Cache({ CACHE_THRESHOLD: '5' as never }),
      configError('CACHE_THRESHOLD'),
    )
    assert.throws(() => new Cache({ CACHE_OPTIONS: [] as never }), configError('CACHE_OPTIONS'))
    assert.throws(() => new Cache({ CACHE_ARGS: 'x' as never }), configError('CACHE_ARGS'))
    assert.throws(
      () => new Cache({ CACHE_NO_NULL_WARNING: 'yes' as never }),
      configError('CACHE_NO_NULL_WARNING'),
    )
    assert.throws(() => new Cache({ keyPrefix: 3 as never }), configError('keyPrefix'))
    assert.throws(() => new Cache({ CACHE_TYPE: 42 as never }), configError('CACHE_TYPE'))
  })

  it('rejects a key given in both spellings', () => {
    assert.throws(
      () => new Cache({ CACHE_DEFAULT_TIMEOUT: 1, defaultTimeout: 2 }),
      (e: Error) => e instanceof ConfigError && /given twice/.test(e.message),
    )
  })

  it('validates the hash method and serializer before building the backend', () => {
    let built = 0
    const factory = () => {
      built++
      return new SimpleCache()
    }
    assert.throws(
      () => new Cache({ CACHE_TYPE: factory, CACHE_HASH_METHOD: 'nope' }),
      configError('CACHE_HASH_METHOD'),
    )
    assert.throws(
      () => new Cache({ CACHE_TYPE: factory, CACHE_SERIALIZER: 'pickle' as never }),
      configError('CACHE_SERIALIZER'),
    )
    assert.throws(
      () =>
        new Cache({
          CACHE_TYPE: factory,
          CACHE_SERIALIZER: class {
            constructor() {
              throw new Error('no')
            }
          } as never,
        }),
      configError('CACHE_SERIALIZER'),
    )
    assert.equal(built, 0)
  })

  it('FileSystemCache without CACHE_DIR fails at construction naming CACHE_DIR', () => {
    assert.throws(() => new Cache({ CACHE_TYPE: 'FileSystemCache' }), configError('CACHE_DIR'))
  })
})

describe('CACHE_TYPE resolution', () => {
  it('takes class names, old aliases and dotted Flask paths', async () => {
    const cases: [string, Function][] = [
      ['SimpleCache', SimpleCache],
      ['simple', SimpleCache],
      ['NullCache', NullCache],
      ['null', NullCache],
      ['flask_caching.backends.SimpleCache', SimpleCache],
      ['cachelib.SimpleCache', SimpleCache],
      ['flask_caching.backends.filesystemcache.FileSystemCache', FileSystemCache],
      ['filesystem', FileSystemCache],
    ]
    for (const [type, cls] of cases) {
      const cache = new Cache({
        CACHE_TYPE: type,
        CACHE_DIR: '/tmp/cachette-test-types',
        CACHE_NO_NULL_WARNING: true,
      })
      assert.ok((await cache.ready()) instanceof cls, type)
    }
  })

  it('names an unknown backend and lists the known ones', () => {
    assert.throws(
      () => new Cache({ CACHE_TYPE: 'MongoCache' }),
      (e: Error) => configError('CACHE_TYPE')(e) && /known: .*SimpleCache/.test(e.message),
    )
  })

  it("maps Flask-Caching's UWSGICache to ClusterCache", async () => {
    const cache = new Cache({ CACHE_TYPE: 'UWSGICache', logger: collectingLogger() })
    assert.equal((await cache.ready()).constructor, ClusterCache)
  })

  it('calls a class static factory with (app, config, args, options)', async () => {
    let seen: unknown[] = []
    class MyCache extends SimpleCache {
      static override factory(
        this: new (
          o: object,
        ) => SimpleCache,
        app: object | undefined,
        config: Readonly<Record<string, unknown>>,
        args: unknown[],
        options: BackendFactoryOptions,
      ): SimpleCache {
        seen = [app, config, args, options]
        return new this(options)
      }
    }
    const app = {}
    const cache = new Cache().initApp(app, {
      CACHE_TYPE: MyCache,
      CACHE_ARGS: ['a', 1],
      CACHE_OPTIONS: { some_option: true },
      CACHE_DEFAULT_TIMEOUT: 42,
      CACHE_KEY_PREFIX: 'p_',
    })
    assert.ok((await cache.ready()) instanceof MyCache)
    const [gotApp, config, args, options] = seen as [
      object,
      Record<string, unknown>,
      unknown[],
      Record<string, unknown>,
    ]
    assert.equal(gotApp, app)
    assert.equal(config.CACHE_KEY_PREFIX, 'p_')
    assert.equal(config.CACHE_DEFAULT_TIMEOUT, 42)
    assert.deepEqual(args, ['a', 1])
    assert.equal(options.defaultTimeout, 42)
    assert.equal(options.someOption, true, 'CACHE_OPTIONS snake_case keys arrive camelCased')
    assert.equal(options.ignoreDeleteManyErrors, false)
  })

  it('calls a plain factory function', async () => {
    const backend = new SimpleCache()
    const cache = new Cache({ CACHE_TYPE: () => backend })
    assert.equal(await cache.ready(), backend)
  })

  it("loads 'module#Export' and a module's default export, relative to the working directory", async () => {
    const named = new Cache({ CACHE_TYPE: './test/fixtures/custom-backend.mjs#TaggedCache' })
    assert.equal(((await named.ready()) as SimpleCache & { tag: string }).tag, 'custom')
    await named.set('k', 1)
    assert.equal(await named.get('k'), 1)
    const byDefault = new Cache({
      CACHE_TYPE: './test/fixtures/custom-backend.mjs',
      CACHE_ARGS: ['x'],
      CACHE_KEY_PREFIX: 'pre',
    })
    assert.equal(((await byDefault.ready()) as SimpleCache & { label: string }).label, 'pre:x')
  })

  it('a module that does not load fails on first use with a ConfigError, never unhandled', async () => {
    const cache = new Cache({ CACHE_TYPE: './test/fixtures/missing.mjs#X' })
    await assert.rejects(cache.ready(), configError('CACHE_TYPE'))
    await assert.rejects(cache.get('k'), configError('CACHE_TYPE'))
    const noExport = new Cache({ CACHE_TYPE: './test/fixtures/custom-backend.mjs#Nope' })
    await assert.rejects(noExport.ready(), /no export "Nope"/)
  })
})

describe('Cache.fromEnv', () => {
  it('reads CACHE_* variables and converts them to each key type', async () => {
    const cache = Cache.fromEnv({
      CACHE_TYPE: 'SimpleCache',
      CACHE_DEFAULT_TIMEOUT: '10m',
      CACHE_THRESHOLD: '12',
      CACHE_NO_NULL_WARNING: 'true',
      CACHE_OPTIONS: '{"clock_skew": 1}',
      PATH: '/usr/bin',
    })
    const backend = (await cache.ready()) as SimpleCache
    assert.equal(backend.defaultTimeout, 600)
    assert.equal(backend.threshold, 12)
  })

  it('applies overrides on top and rejects unknown or malformed variables', () => {
    assert.throws(() => Cache.fromEnv({ CACHE_TYPPE: 'x' }), configError('CACHE_TYPPE'))
    assert.throws(() => Cache.fromEnv({ CACHE_THRESHOLD: 'many' }), configError('CACHE_THRESHOLD'))
    assert.throws(
      () => Cache.fromEnv({ CACHE_NO_NULL_WARNING: 'perhaps' }),
      configError('CACHE_NO_NULL_WARNING'),
    )
    assert.throws(() => Cache.fromEnv({ CACHE_OPTIONS: '{bad' }), configError('CACHE_OPTIONS'))
    const cache = Cache.fromEnv({ CACHE_TYPE: 'NullCache' }, { CACHE_TYPE: 'SimpleCache' })
    assert.equal(cache.config.type, 'SimpleCache')
  })
})

describe('initApp and the three set-up patterns', () => {
  it('merges app config, then constructor config, then initApp config (later wins), without writing back', async () => {
    const app = {
      config: {
        CACHE_TYPE: 'SimpleCache',
        CACHE_DEFAULT_TIMEOUT: 1,
        CACHE_THRESHOLD: 5,
        OTHER: 'x',
      },
    }
    const cache = new Cache({ CACHE_DEFAULT_TIMEOUT: 2 } as never)
    cache.initApp(app, { CACHE_THRESHOLD: 6 })
    const backend = (await cache.ready()) as SimpleCache
    assert.equal(backend.defaultTimeout, 2)
    assert.equal(backend.threshold, 6)
    assert.equal(app.config.CACHE_THRESHOLD, 5)
    assert.equal(cache.app, app)
  })

  it("reads Express's app.set('CACHE_TYPE', ...) settings", async () => {
    const settings: Record<string, unknown> = {
      CACHE_TYPE: 'SimpleCache',
      CACHE_THRESHOLD: 3,
      etag: 'weak',
    }
    const app = { settings }
    const cache = new Cache().initApp(app)
    assert.equal(((await cache.ready()) as SimpleCache).threshold, 3)
  })

  it('app factory: one Cache serves several apps, each with its own backend', async () => {
    const cache = new Cache()
    const app1 = {}
    const app2 = {}
    cache.initApp(app1, { CACHE_TYPE: 'SimpleCache' })
    cache.initApp(app2, { CACHE_TYPE: 'SimpleCache' })
    await cache.runWithApp(app1, () => cache.set('k', 'one'))
    await cache.runWithApp(app2, () => cache.set('k', 'two'))
    assert.equal(await cache.runWithApp(app1, () => cache.get('k')), 'one')
    assert.equal(await cache.runWithApp(app2, () => cache.get('k')), 'two')
    assert.equal(await cache.get('k'), 'two', 'outside any app: the last app initialised')
  })

  it('several Cache objects with different backends on one app', async () => {
    const app = {}
    const fast = new Cache().initApp(app, { CACHE_TYPE: 'SimpleCache' })
    const off = new Cache().initApp(app, { CACHE_TYPE: 'NullCache', CACHE_NO_NULL_WARNING: true })
    await fast.set('k', 1)
    await off.set('k', 1)
    assert.equal(await fast.get('k'), 1)
    assert.equal(await off.get('k'), undefined)
  })

  it('config at construction reuses its backend for an app without its own settings', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    const before = await cache.ready()
    cache.initApp({})
    assert.equal(await cache.ready(), before)
  })

  it('rejects a non-object app', () => {
    assert.throws(() => new Cache().initApp(null as never), TypeError)
  })
})

describe('cache operations through the facade', () => {
  const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })

  it('rejects bad keys with InvalidKeyError and leaves content untouched', async () => {
    await cache.set('k', 'v')
    for (const bad of [undefined, null, 1, '', ['k'], {}]) {
      await assert.rejects(cache.get(bad as never), InvalidKeyError)
      await assert.rejects(cache.set(bad as never, 1), InvalidKeyError)
      await assert.rejects(cache.getMany('k', bad as never), InvalidKeyError)
    }
    assert.equal(await cache.get('k'), 'v')
  })

  it('rejects bad timeouts with InvalidTimeoutError and leaves content untouched', async () => {
    await cache.set('t', 'v')
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY, 'ten', true, '5 lightyears']) {
      await assert.rejects(cache.set('t', 'w', bad as never), InvalidTimeoutError)
    }
    await assert.rejects(cache.set('t', 'w', { timeout: 'ten' }), InvalidTimeoutError)
    assert.equal(await cache.get('t'), 'v')
  })

  it('accepts timeouts as seconds and duration strings', async () => {
    for (const ok of [0, 1, 1.5, '30s', '10m', '1h30m', '2d', '500ms', '1 hour']) {
      assert.equal(await cache.set('d', 1, ok), true, String(ok))
    }
  })

  it('a value that cannot be stored is a TypeError naming the problem, and nothing is lost', async () => {
    await cache.set('v', { ok: true })
    await assert.rejects(cache.set('v', { f: () => 1 }), UnserializableValueError)
    await assert.rejects(cache.set('v', Symbol('x')), TypeError)
    await assert.rejects(cache.set('v', undefined), /store null instead/)
    await assert.rejects(cache.setMany({ a: 1, v: () => 2 }), TypeError)
    assert.deepEqual(await cache.get('v'), { ok: true })
    assert.equal(await cache.get('a'), undefined)
  })

  it('circular structures round-trip with the default serializer', async () => {
    const a: Record<string, unknown> = { name: 'a' }
    a.self = a
    await cache.set('cyc', a)
    const back = (await cache.get('cyc')) as Record<string, unknown>
    assert.equal(back.self, back)
  })

  it('multi-key methods take variadic keys or an array', async () => {
    await cache.setMany({ m1: 1, m2: 2 })
    await cache.setMany(new Map([['m3', 3]]))
    await cache.setMany([['m4', 4]])
    assert.deepEqual(await cache.getMany('m1', 'm2'), [1, 2])
    assert.deepEqual(await cache.getMany(['m3', 'm4', 'nope']), [3, 4, undefined])
    assert.deepEqual(await cache.getDict('m1', 'nope'), { m1: 1, nope: undefined })
    assert.deepEqual(await cache.deleteMany('m1', 'm2'), ['m1', 'm2'])
    assert.equal(await cache.unlink(['m3', 'm4']), 2)
    assert.deepEqual(await cache.getMany(['m1', 'm3']), [undefined, undefined])
  })

  it('inc and dec, with a clear error for a non-integer delta', async () => {
    assert.equal(await cache.inc('n'), 1)
    assert.equal(await cache.inc('n', 4), 5)
    assert.equal(await cache.dec('n', 2), 3)
    assert.equal(await cache.dec('n'), 2)
    await assert.rejects(cache.inc('n', 1.5), NotAnIntegerError)
    await assert.rejects(cache.dec('n', Number.NaN), NotAnIntegerError)
  })

  it('add, has, delete and clear', async () => {
    assert.equal(await cache.add('once', 1), true)
    assert.equal(await cache.add('once', 2), false)
    assert.equal(await cache.has('once'), true)
    assert.equal(await cache.delete('once'), true)
    assert.equal(await cache.delete('once'), false)
    assert.equal(await cache.clear(), true)
    assert.equal(await cache.has('n'), false)
  })

  it('exposes the backend as cache.backend and cache.cache', () => {
    assert.ok(cache.backend instanceof SimpleCache)
    assert.equal(cache.cache, cache.backend)
  })
})

class BrokenCache extends BaseCache {
  async get(): Promise<unknown> {
    throw new Error('connection refused')
  }
  async set(): Promise<boolean> {
    throw new Error('connection refused')
  }
  async add(): Promise<boolean> {
    throw new Error('connection refused')
  }
  async delete(): Promise<boolean> {
    return false
  }
  async has(): Promise<boolean> {
    return true
  }
  async clear(): Promise<boolean> {
    throw new Error('connection refused')
  }
}

describe('a failing backend', () => {
  it('makes reads miss and writes fail, logging once instead of throwing', async () => {
    const logger = collectingLogger()
    const cache = new Cache({ CACHE_TYPE: () => new BrokenCache(), logger })
    for (let i = 0; i < 5; i++) assert.equal(await cache.get('k'), undefined)
    assert.equal(await cache.set('k', 1), false)
    assert.equal(await cache.clear(), false)
    assert.deepEqual(await cache.getMany(['a', 'b']), [undefined, undefined])
    assert.equal(logger.errors.filter((m) => m.startsWith('cache.get:')).length, 1)
  })

  it('propagates errors when CACHE_RAISE_ERRORS is set', async () => {
    const cache = new Cache({ CACHE_TYPE: () => new BrokenCache(), CACHE_RAISE_ERRORS: true })
    await assert.rejects(cache.get('k'), /connection refused/)
  })

  it('deleteMany raises DeleteManyError for surviving keys unless CACHE_IGNORE_ERRORS', async () => {
    const strict = new Cache({ CACHE_TYPE: BrokenCache as never })
    await assert.rejects(strict.deleteMany('a', 'b'), DeleteManyError)
    const lenient = new Cache({ CACHE_TYPE: BrokenCache as never, CACHE_IGNORE_ERRORS: true })
    assert.deepEqual(await lenient.deleteMany('a', 'b'), [])
  })
})

describe('serializers', () => {
  it("CACHE_SERIALIZER 'json' stores JSON and rejects what JSON cannot hold", async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_SERIALIZER: 'json' })
    await cache.set('d', { when: new Date(0) })
    assert.deepEqual(await cache.get('d'), { when: '1970-01-01T00:00:00.000Z' })
    await assert.rejects(cache.set('f', { f: () => 1 }), /cannot store a function/)
    await assert.rejects(cache.set('b', { n: 1n }), /BigInt/)
  })

  it('a custom serializer object or class is used for objects', async () => {
    const calls: string[] = []
    const custom: Serializer = {
      name: 'tagged',
      dumps: (v) => {
        calls.push('dumps')
        return Buffer.from(JSON.stringify(v))
      },
      loads: (d) => {
        calls.push('loads')
        return JSON.parse(Buffer.from(d).toString())
      },
    }
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_SERIALIZER: custom })
    await cache.set('o', { a: 1 })
    assert.deepEqual(await cache.get('o'), { a: 1 })
    assert.deepEqual(calls, ['dumps', 'loads'])
    class Ser implements Serializer {
      name = 'cls'
      dumps = custom.dumps
      loads = custom.loads
    }
    const viaClass = new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_SERIALIZER: Ser })
    assert.equal(
      ((await viaClass.ready()) as CacheBackend & { serializer: Serializer }).serializer.name,
      'cls',
    )
  })
})
