/**
 * Issue item 7: a custom backend can never turn a request into a 500. A
 * class with only the single-key methods gets the bulk ones derived; a
 * class missing a required one is refused at construction; an error thrown
 * inside a backend call, whatever its class, is a backend failure (logged,
 * the view runs uncached), while the facade's own input errors still reach
 * the caller. Real sockets, the four frameworks, `cached()` and `httpCache`.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { Cache, ConfigError, InvalidKeyError, UnserializableValueError } from '../../src/index.js'
import { collectingLogger } from '../helpers.js'
import { FRAMEWORKS, type Mode, rawGet, withApp } from './apps.js'

/**
 * A backend written from scratch (as a JavaScript user would, so `as never` where
 * TypeScript asks for a full CacheBackend), with the six single-key methods only:
 * no getMany, setMany, deleteMany, inc.
 */
class MinimalBackend {
  readonly defaultTimeout = 60
  readonly #map = new Map<string, unknown>()
  async get(key: string): Promise<unknown> {
    return this.#map.get(key)
  }
  async set(key: string, value: unknown): Promise<boolean> {
    this.#map.set(key, value)
    return true
  }
  async add(key: string, value: unknown): Promise<boolean> {
    if (this.#map.has(key)) return false
    this.#map.set(key, value)
    return true
  }
  async delete(key: string): Promise<boolean> {
    return this.#map.delete(key)
  }
  async has(key: string): Promise<boolean> {
    return this.#map.has(key)
  }
  async clear(): Promise<boolean> {
    this.#map.clear()
    return true
  }
}

/** A backend whose client library has a bug: every read throws a plain TypeError. */
class BuggyClientBackend extends MinimalBackend {
  override async get(): Promise<unknown> {
    const client = undefined as unknown as { read(): unknown }
    return client.read()
  }
}

/** Without `has`. */
class NoHasBackend {
  async get(): Promise<unknown> {
    return undefined
  }
  async set(): Promise<boolean> {
    return true
  }
  async add(): Promise<boolean> {
    return true
  }
  async delete(): Promise<boolean> {
    return true
  }
  async clear(): Promise<boolean> {
    return true
  }
}

const MODES: readonly Mode[] = ['cached', 'http']

for (const mode of MODES) {
  const what = mode === 'http' ? 'httpCache' : 'cached()'
  describe(`a backend with only the single-key methods serves views (${what})`, () => {
    for (const framework of FRAMEWORKS) {
      test(`${framework}: a client accepting gzip (a multi-key read) gets a miss, then a hit`, {
        timeout: 15_000,
      }, async () => {
        const logger = collectingLogger()
        const cache = new Cache({ CACHE_TYPE: MinimalBackend as never, logger })
        await withApp(framework, mode, cache, async (app) => {
          const headers = { 'Accept-Encoding': 'gzip, br' }
          const first = await rawGet(app.port, '/ok', headers)
          assert.equal(first.status, 200)
          assert.equal(first.body, 'ok#1')
          const second = await rawGet(app.port, '/ok', headers)
          assert.equal(second.status, 200)
          assert.equal(second.body, 'ok#1', 'a hit')
          assert.deepEqual(logger.errors, [])
        })
      })
    }
  })

  describe(`an error thrown inside a backend call runs the view uncached (${what})`, () => {
    for (const framework of FRAMEWORKS) {
      test(`${framework}: a TypeError from a client library's bug is logged, never a 500`, {
        timeout: 15_000,
      }, async () => {
        const logger = collectingLogger()
        const cache = new Cache({ CACHE_TYPE: BuggyClientBackend as never, logger })
        await withApp(framework, mode, cache, async (app) => {
          for (const n of [1, 2]) {
            const reply = await rawGet(app.port, '/ok')
            assert.equal(reply.status, 200)
            assert.equal(reply.body, `ok#${n}`, 'the handler ran, uncached')
          }
          assert.ok(
            logger.errors.some((e) => e.includes('read')),
            `logged: ${JSON.stringify(logger.errors)}`,
          )
        })
      })
    }
  })
}

describe('the facade over a custom backend', () => {
  test('derives getMany, setMany, deleteMany, getDict, inc and dec from the single-key methods', async () => {
    const cache = new Cache({ CACHE_TYPE: MinimalBackend as never })
    assert.deepEqual(await cache.setMany({ a: 1, b: 2 }), ['a', 'b'])
    assert.deepEqual(await cache.getMany('a', 'b', 'c'), [1, 2, undefined])
    assert.deepEqual(await cache.getDict('a', 'b'), { a: 1, b: 2 })
    assert.equal(await cache.inc('n', 5), 5)
    assert.equal(await cache.dec('n', 2), 3)
    assert.deepEqual(await cache.deleteMany('a', 'b'), ['a', 'b'])
    assert.equal(await cache.has('a'), false)
    assert.ok(cache.backend instanceof MinimalBackend, 'still the same class')
  })

  test('a class without a required method is refused at construction, naming it', () => {
    assert.throws(
      () => new Cache({ CACHE_TYPE: NoHasBackend as never }),
      (e: unknown) => e instanceof ConfigError && /NoHasBackend.*\bhas\b/.test(e.message),
    )
  })

  test('a TypeError thrown inside the backend is absorbed: get is a miss, set is false, both logged', async () => {
    const logger = collectingLogger()
    const cache = new Cache({ CACHE_TYPE: BuggyClientBackend as never, logger })
    assert.equal(await cache.get('k'), undefined)
    assert.equal(await cache.getOrSet('k', () => 'computed'), 'computed')
    assert.ok(logger.errors.length > 0)
  })

  test('the facade’s own input errors still reach the caller', async () => {
    const cache = new Cache({ CACHE_TYPE: BuggyClientBackend as never, logger: collectingLogger() })
    await assert.rejects(cache.get(''), InvalidKeyError)
    const simple = new Cache({ CACHE_TYPE: 'SimpleCache' })
    await assert.rejects(
      simple.set('k', () => 1),
      UnserializableValueError,
    )
  })

  test('a custom serializer’s TypeError for an unstorable value is still an input error', async () => {
    const serializer = {
      name: 'picky',
      dumps(value: unknown): Uint8Array {
        if (typeof value === 'bigint') throw new TypeError('no bigints')
        return new TextEncoder().encode(JSON.stringify(value))
      },
      loads: (data: Uint8Array): unknown => JSON.parse(new TextDecoder().decode(data)),
    }
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_SERIALIZER: serializer })
    await assert.rejects(cache.set('k', { n: 1n }), TypeError)
    assert.equal(await cache.set('k', { n: 1 }), true)
  })
})
