import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Cache, NullCache, SimpleCache } from '../src/index.js'
import { backendContract, sampleValues } from '../src/testing/index.js'
import { collectingLogger, fakeClock } from './helpers.js'

const clock = fakeClock()
backendContract('NullCache', { create: () => new NullCache(), storesNothing: true })

backendContract('SimpleCache', {
  create: () => new SimpleCache({ clock: clock.now, threshold: 10_000 }),
  advanceTime: (ms) => clock.advance(ms),
})

describe('SimpleCache specifics', () => {
  it('never holds more than threshold entries and evicts the least recently used', async () => {
    const cache = new SimpleCache({ threshold: 3 })
    await cache.set('a', 1)
    await cache.set('b', 2)
    await cache.set('c', 3)
    await cache.get('a') // a is now the most recently used
    await cache.set('d', 4)
    assert.equal(cache.size, 3)
    assert.deepEqual(await cache.getMany(['a', 'b', 'c', 'd']), [1, undefined, 3, 4])
  })

  it('evicts expired entries before live ones', async () => {
    const c = fakeClock()
    const cache = new SimpleCache({ threshold: 2, clock: c.now })
    await cache.set('old', 1, 1)
    await cache.set('keep', 2, 0)
    c.advance(5000)
    await cache.set('new', 3)
    assert.deepEqual(await cache.getMany(['old', 'keep', 'new']), [undefined, 2, 3])
  })

  it('a never-expiring entry is not evicted before an expiring one of the same age (Flask quirk fixed)', async () => {
    const cache = new SimpleCache({ threshold: 2 })
    await cache.set('forever', 1, 0)
    await cache.set('expiring', 2, 60)
    await cache.get('forever')
    await cache.set('third', 3)
    assert.equal(await cache.get('forever'), 1)
    assert.equal(await cache.get('expiring'), undefined)
  })

  it('the first eviction at the default CACHE_THRESHOLD warns once, naming the setting; a chosen threshold never warns', async () => {
    const logger = collectingLogger()
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache', logger })
    for (let i = 0; i < 500; i++) await cache.set(`k${i}`, i)
    assert.deepEqual(logger.warnings, [], 'no warning while it holds 500')
    for (let i = 500; i < 700; i++) await cache.set(`k${i}`, i)
    assert.equal(logger.warnings.length, 1, logger.warnings.join('\n'))
    assert.match(
      logger.warnings.join('\n'),
      /full at the default CACHE_THRESHOLD of 500 entries.*set CACHE_THRESHOLD/,
    )
    assert.equal(await cache.get('k0'), undefined, 'the oldest entry was evicted')

    const chosen = collectingLogger()
    const sized = new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_THRESHOLD: 500, logger: chosen })
    for (let i = 0; i < 700; i++) await sized.set(`k${i}`, i)
    assert.deepEqual(chosen.warnings, [])

    // Entries that expire are removed without a warning: the cache is not too small for them.
    const clock = fakeClock()
    const expiring = collectingLogger()
    const backend = new SimpleCache({ clock: clock.now, logger: expiring })
    for (let i = 0; i < 500; i++) await backend.set(`e${i}`, i, 1)
    clock.advance(2000)
    for (let i = 0; i < 500; i++) await backend.set(`f${i}`, i)
    assert.deepEqual(expiring.warnings, [])
  })

  it('threshold 0 means 500, as in Flask-Caching', () => {
    assert.equal(new SimpleCache({ threshold: 0 }).threshold, 500)
  })

  it('rejects a bad threshold naming it', () => {
    assert.throws(() => new SimpleCache({ threshold: -1 }), /threshold/)
    assert.throws(
      () => new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_THRESHOLD: 1.5 }),
      /CACHE_THRESHOLD/,
    )
  })

  it('CACHE_THRESHOLD and CACHE_DEFAULT_TIMEOUT reach the backend', async () => {
    const cache = new Cache({
      CACHE_TYPE: 'SimpleCache',
      CACHE_THRESHOLD: 7,
      CACHE_DEFAULT_TIMEOUT: '2m',
    })
    const backend = (await cache.ready()) as SimpleCache
    assert.equal(backend.threshold, 7)
    assert.equal(backend.defaultTimeout, 120)
  })

  it('fractional timeouts keep millisecond precision', async () => {
    const c = fakeClock()
    const cache = new SimpleCache({ clock: c.now })
    await cache.set('k', 1, 0.5)
    c.advance(400)
    assert.equal(await cache.get('k'), 1)
    c.advance(200)
    assert.equal(await cache.get('k'), undefined)
  })

  it('inc keeps the remaining lifetime of an existing counter', async () => {
    const c = fakeClock()
    const cache = new SimpleCache({ clock: c.now })
    await cache.set('n', 1, 10)
    c.advance(6000)
    assert.equal(await cache.inc('n', 1), 2)
    c.advance(5000)
    assert.equal(await cache.get('n'), undefined)
  })
})

describe('NullCache', () => {
  it('misses every read and accepts every write', async () => {
    const cache = new NullCache()
    assert.equal(await cache.set('a', 1), true)
    assert.equal(await cache.add('a', 1), true)
    assert.equal(await cache.get('a'), undefined)
    assert.equal(await cache.has('a'), false)
    assert.equal(await cache.delete('a'), true)
    assert.deepEqual(await cache.deleteMany(['a', 'b']), ['a', 'b'])
    assert.deepEqual(await cache.getMany(['a', 'b']), [undefined, undefined])
    assert.equal(await cache.inc('a', 5), 5)
    assert.equal(await cache.clear(), true)
  })

  it('warns once that caching is disabled, unless CACHE_NO_NULL_WARNING', async () => {
    const logger = collectingLogger()
    new Cache({ CACHE_TYPE: 'NullCache', logger })
    new Cache({ CACHE_TYPE: 'null', logger })
    assert.equal(logger.warnings.length, 1)
    assert.match(logger.warnings[0] as string, /NullCache.*disabled/)
    const quiet = collectingLogger()
    new Cache({ CACHE_TYPE: 'NullCache', CACHE_NO_NULL_WARNING: true, logger: quiet })
    assert.equal(quiet.warnings.length, 0)
  })
})

describe('SimpleCache copies of objects', () => {
  it('the fast copy gives what a V8 serializer round trip gives', async () => {
    const { deserialize, serialize } = await import('node:v8')
    const cache = new SimpleCache()
    const shared = { s: 1 }
    const cyclic: Record<string, unknown> = { name: 'c' }
    cyclic.self = cyclic
    const values: unknown[] = [
      ...Object.values(sampleValues()),
      { shared, again: shared },
      cyclic,
      [1, [2, [3, { deep: new Map([[{ k: 1 }, new Set([new Date(5)])]]) }]]],
      { re: /a+b/gi, f32: new Float32Array([1.5, 2]), u: undefined },
      Object.assign(Object.create(null), { bare: true }),
    ]
    for (const value of values) {
      await cache.set('v', value)
      const got = await cache.get('v')
      assert.deepStrictEqual(got, deserialize(serialize(value)))
    }
    await cache.set('shared', { shared, again: shared })
    const sharedBack = (await cache.get('shared')) as { shared: object; again: object }
    assert.equal(sharedBack.shared, sharedBack.again, 'shared references stay shared')
    assert.notEqual(sharedBack.shared, shared, 'but are copies')
    await cache.set('cyc', cyclic)
    const cycBack = (await cache.get('cyc')) as Record<string, unknown>
    assert.equal(cycBack.self, cycBack)
  })

  it('class instances, Errors and sparse arrays take the serializer path with the same result', async () => {
    const { deserialize, serialize } = await import('node:v8')
    class Point {
      constructor(
        public x: number,
        public y: number,
      ) {}
    }
    const cache = new SimpleCache()
    // biome-ignore lint/suspicious/noSparseArray: the sparse array is the point of the test
    for (const value of [new Point(1, 2), { p: new Point(3, 4) }, new Error('e'), [1, , 3]]) {
      await cache.set('v', value)
      assert.deepStrictEqual(await cache.get('v'), deserialize(serialize(value)))
    }
  })

  it('a function or symbol nested anywhere is a TypeError', async () => {
    const cache = new SimpleCache()
    await assert.rejects(cache.set('v', { a: [{ f() {} }] }), TypeError)
    await assert.rejects(cache.set('v', new Map([['k', Symbol('s')]])), TypeError)
    assert.equal(await cache.get('v'), undefined)
  })
})
