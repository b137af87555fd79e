import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Cache, ConfigError, type Serializer, SimpleCache } from '../src/index.js'
import { collectingLogger, fakeClock } from './helpers.js'

const user = () => ({ id: 1, name: 'ada', roles: ['reader'] })

describe('SimpleCache stores copies of objects by default', () => {
  for (const [name, make] of [
    ['the backend', () => new SimpleCache()],
    ['the Cache facade', () => new Cache({ CACHE_TYPE: 'SimpleCache' })],
  ] as const) {
    it(`${name}: mutating the object given to set does not change the cache`, async () => {
      const cache = make()
      const value = user()
      await cache.set('u', value)
      value.name = 'changed'
      value.roles.push('admin')
      assert.deepEqual(await cache.get('u'), user())
    })

    it(`${name}: mutating a returned object does not change the cache`, async () => {
      const cache = make()
      await cache.set('u', user())
      const first = (await cache.get('u')) as ReturnType<typeof user>
      first.name = 'changed'
      first.roles.push('admin')
      const second = await cache.get('u')
      assert.notEqual(second, first)
      assert.deepEqual(second, user())
      const [many] = (await cache.getMany(['u'])) as [ReturnType<typeof user>]
      assert.notEqual(many, first)
      assert.deepEqual(many, user())
    })
  }

  it('the option is off unless set', () => {
    assert.equal(new SimpleCache().byReference, false)
    assert.equal(new SimpleCache({ byReference: undefined }).byReference, false)
    // null is "not set", as for the other boolean options of CACHE_OPTIONS.
    assert.equal(new SimpleCache({ byReference: null as never }).byReference, false)
  })
})

describe('SimpleCache byReference', () => {
  it('get returns the very object given to set, and mutations are shared', async () => {
    const cache = new SimpleCache({ byReference: true })
    const value = user()
    await cache.set('u', value)
    assert.equal(await cache.get('u'), value)
    assert.equal(((await cache.getMany(['u'])) as unknown[])[0], value)
    value.name = 'changed'
    assert.equal(((await cache.get('u')) as ReturnType<typeof user>).name, 'changed')
    await cache.setMany([['v', value]])
    assert.equal(await cache.get('v'), value)
    assert.equal(await cache.add('w', value), true)
    assert.equal(await cache.get('w'), value)
  })

  it('through the Cache facade, set by CACHE_OPTIONS (either spelling)', async () => {
    for (const options of [{ byReference: true }, { by_reference: true }]) {
      const cache = new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_OPTIONS: options })
      assert.equal((cache.backend as SimpleCache).byReference, true)
      const value = user()
      await cache.set('u', value)
      assert.equal(await cache.get('u'), value)
      assert.equal(((await cache.getMany('u')) as unknown[])[0], value)
    }
    const copying = new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_OPTIONS: { byReference: false } })
    assert.equal((copying.backend as SimpleCache).byReference, false)
  })

  it('keeps objects a copy could not hold, and never calls the serializer', async () => {
    const refusing: Serializer = {
      name: 'refusing',
      dumps: () => {
        throw new Error('dumps called')
      },
      loads: () => {
        throw new Error('loads called')
      },
    }
    class Point {
      constructor(readonly x: number) {}
      norm() {
        return Math.abs(this.x)
      }
    }
    const cache = new SimpleCache({ byReference: true, serializer: refusing })
    const value = { point: new Point(-2), callback: () => 1 }
    await cache.set('p', value)
    assert.equal(await cache.get('p'), value)
  })

  it('still refuses undefined, a function and a symbol as the value', async () => {
    const cache = new SimpleCache({ byReference: true })
    await cache.set('k', 'kept')
    await assert.rejects(cache.set('k', undefined), { name: 'UnserializableValueError' })
    await assert.rejects(
      cache.set('k', () => 1),
      TypeError,
    )
    await assert.rejects(cache.set('k', Symbol('s')), TypeError)
    await assert.rejects(
      cache.setMany([
        ['k', 1],
        ['j', () => 1],
      ]),
      TypeError,
    )
    assert.equal(await cache.get('k'), 'kept')
    assert.equal(await cache.get('j'), undefined)
  })

  it('a non-boolean is a ConfigError naming CACHE_OPTIONS and the option', () => {
    for (const bad of ['yes', 1, 'false', {}]) {
      const check = (error: unknown) => {
        assert.ok(error instanceof ConfigError)
        assert.equal(error.key, 'CACHE_OPTIONS')
        assert.match(error.message, /byReference must be true or false/)
        return true
      }
      assert.throws(() => new SimpleCache({ byReference: bad as never }), check)
      assert.throws(
        () =>
          new Cache({
            CACHE_TYPE: 'SimpleCache',
            CACHE_OPTIONS: { byReference: bad },
            logger: collectingLogger(),
          }),
        check,
      )
    }
  })
})

describe('the Cache facade over SimpleCache', () => {
  it('calls a get or set replaced on the backend instance', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    const backend = cache.backend as SimpleCache
    const calls: string[] = []
    const { get, set } = backend
    backend.get = async (key: string) => {
      calls.push(`get ${key}`)
      return get.call(backend, key)
    }
    backend.set = async (key: string, value: unknown, timeout?: number) => {
      calls.push(`set ${key}`)
      return set.call(backend, key, value, timeout)
    }
    assert.equal(await cache.set('k', 'v'), true)
    assert.equal(await cache.get('k'), 'v')
    assert.deepEqual(calls, ['set k', 'get k'])
  })

  it('absorbs a failing read and write, and propagates refused values', async () => {
    const unreadable: Serializer = {
      name: 'unreadable',
      dumps: () => new Uint8Array([1]),
      loads: () => {
        throw new Error('cannot read')
      },
    }
    const unwritable: Serializer = {
      name: 'unwritable',
      dumps: () => {
        throw new Error('cannot write')
      },
      loads: () => null,
    }
    const logger = collectingLogger()
    const reads = new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_SERIALIZER: unreadable, logger })
    assert.equal(await reads.set('k', { a: 1 }), true)
    assert.equal(await reads.get('k'), undefined)
    assert.match(logger.errors.join('\n'), /cache\.get.*cannot read/)
    const writes = new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_SERIALIZER: unwritable, logger })
    assert.equal(await writes.set('k', { a: 1 }), false)
    assert.match(logger.errors.join('\n'), /cache\.set.*cannot write/)
    await assert.rejects(writes.set('k', undefined), { name: 'UnserializableValueError' })
    await assert.rejects(writes.get(''), { name: 'InvalidKeyError' })
    const raising = new Cache({
      CACHE_TYPE: 'SimpleCache',
      CACHE_SERIALIZER: unreadable,
      CACHE_RAISE_ERRORS: true,
    })
    await raising.set('k', { a: 1 })
    await assert.rejects(raising.get('k'), /cannot read/)
  })

  it('expires entries by the backend clock', async () => {
    const c = fakeClock()
    const cache = new Cache({ CACHE_TYPE: () => new SimpleCache({ clock: c.now }) })
    await cache.set('k', 'v', 1)
    c.advance(999)
    assert.equal(await cache.get('k'), 'v')
    c.advance(1)
    assert.equal(await cache.get('k'), undefined)
  })
})

describe('SimpleCache storage', () => {
  const collect = async (keys: AsyncIterable<string>) => {
    const out: string[] = []
    for await (const key of keys) out.push(key)
    return out
  }

  it('keeps the most recently written entries as it grows past its first slots', async () => {
    const cache = new SimpleCache({ threshold: 100 })
    for (let i = 0; i < 1000; i++) await cache.set(`k${i}`, i)
    assert.equal(cache.size, 100)
    assert.deepEqual(
      await collect(cache.keys('k')),
      Array.from({ length: 100 }, (_, i) => `k${900 + i}`),
    )
    assert.equal(await cache.get('k899'), undefined)
    assert.equal(await cache.get('k900'), 900)
  })

  it('reuses the slots of deleted and expired entries, and lists keys oldest write first', async () => {
    const c = fakeClock()
    const cache = new SimpleCache({ threshold: 4, clock: c.now })
    await cache.setMany(
      [
        ['a', 1],
        ['b', 2],
        ['c', 3],
      ],
      10,
    )
    await cache.delete('b')
    await cache.set('d', { d: 4 }, 1)
    await cache.set('a', 'again')
    assert.deepEqual(await collect(cache.keys('')), ['c', 'd', 'a'])
    c.advance(1000)
    assert.equal(await cache.has('d'), false)
    await cache.set('e', 5)
    await cache.set('f', 6)
    assert.deepEqual(await collect(cache.keys('')), ['c', 'a', 'e', 'f'])
    assert.deepEqual(await cache.getMany(['a', 'b', 'c', 'd', 'e', 'f']), [
      'again',
      undefined,
      3,
      undefined,
      5,
      6,
    ])
    assert.deepEqual(await cache.stats(), { entries: 4, threshold: 4 })
    await cache.clear()
    assert.equal(cache.size, 0)
    await cache.set('g', 7)
    assert.deepEqual(await collect(cache.keys('')), ['g'])
  })

  it('an overwrite makes an entry the most recently written, a read only marks it', async () => {
    const cache = new SimpleCache({ threshold: 3 })
    await cache.set('a', 1)
    await cache.set('b', 2)
    await cache.set('c', 3)
    await cache.set('a', 10) // order b, c, a
    await cache.get('b') // b marked: it gets a second chance
    await cache.set('d', 4) // b moves to the young end; c is evicted
    assert.deepEqual(await cache.getMany(['a', 'b', 'c', 'd']), [10, 2, undefined, 4])
    assert.deepEqual(await collect(cache.keys('')), ['a', 'd', 'b'])
  })
})
