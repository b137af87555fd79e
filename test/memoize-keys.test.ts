// Memoize keys without a hash for short arguments, and the SimpleCache hit path that
// answers without the getOrSet engine: what each keeps of the documented behaviour.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, it } from 'node:test'
import { RAW_KEY_MAX } from '../src/core/memoize.js'
import { Cache } from '../src/index.js'

describe('memoize keys', () => {
  it('CACHE_HASH_METHOD hashes the function prefix and long arguments; short arguments are raw', async () => {
    const seen: string[] = []
    const custom = (data: string) => {
      seen.push(data)
      return createHash('sha512').update(data).digest()
    }
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_HASH_METHOD: custom })
    const m = cache.memoize((x: string) => x, { makeName: () => 'hashed.by.user' })
    const short = await m.makeCacheKey('a')
    assert.deepEqual(seen, ['"hashed.by.user"'], 'the name, once')
    const expected = createHash('sha512').update('"hashed.by.user"').digest('base64url')
    assert.equal(short.slice(0, 22), expected.slice(0, 22))
    assert.equal(short.slice(28), ':("a")')
    await m.makeCacheKey('b')
    assert.equal(seen.length, 1, 'the prefix is computed once per function')
    const longArg = 'x'.repeat(RAW_KEY_MAX)
    const long = await m.makeCacheKey(longArg)
    assert.deepEqual(seen.slice(1), [`("${longArg}")`])
    const digest = createHash('sha512').update(`("${longArg}")`).digest('base64url')
    assert.equal(long.slice(28), `#${digest.slice(0, 22)}`)
    // The memoize option wins over the configuration, for the prefix too.
    const md5 = cache.memoize((x: string) => x, {
      makeName: () => 'hashed.by.user',
      hashMethod: 'md5',
    })
    const md5Key = await md5.makeCacheKey('a')
    assert.equal(
      md5Key.slice(0, 22),
      createHash('md5').update('"hashed.by.user"').digest('base64url').slice(0, 22),
    )
  })

  it('sourceCheck is part of the prefix', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    const fn = (x: number) => x
    const plain = cache.memoize(fn, { makeName: () => 'sc' })
    const checked = cache.memoize(fn, { makeName: () => 'sc', sourceCheck: true })
    const source = Function.prototype.toString.call(fn)
    const sha = (s: string) => createHash('sha256').update(s).digest('base64url').slice(0, 22)
    assert.equal((await plain.makeCacheKey(1)).slice(0, 22), sha('"sc"'))
    assert.equal((await checked.makeCacheKey(1)).slice(0, 22), sha(`"sc"${source}`))
  })

  it('each app keeps the keys of its own CACHE_HASH_METHOD', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    const appA = {}
    const appB = {}
    cache.initApp(appA, { CACHE_TYPE: 'SimpleCache', CACHE_HASH_METHOD: 'sha256' })
    cache.initApp(appB, { CACHE_TYPE: 'SimpleCache', CACHE_HASH_METHOD: 'md5' })
    const m = cache.memoize((x: number) => x, { makeName: () => 'apps' })
    const prefixOf = async (app: object) =>
      (await cache.runWithApp(app, () => m.makeCacheKey(1))).slice(0, 22)
    const sha = createHash('sha256').update('"apps"').digest('base64url').slice(0, 22)
    const md5 = createHash('md5').update('"apps"').digest('base64url').slice(0, 22)
    for (let i = 0; i < 3; i++) {
      assert.equal(await prefixOf(appA), sha)
      assert.equal(await prefixOf(appB), md5)
    }
  })

  it('a hit returns a copy of an object result, never the stored one', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    let calls = 0
    const load = cache.memoize(async (id: number) => {
      calls++
      return { id, tags: ['a'] }
    })
    const first = await load(1)
    first.tags.push('mutated')
    const second = await load(1)
    assert.deepEqual(second, { id: 1, tags: ['a'] })
    second.tags.push('again')
    assert.deepEqual(await load(1), { id: 1, tags: ['a'] })
    assert.equal(calls, 1)
  })

  it('hits are counted in stats(); null is a hit only with cacheNone', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    let calls = 0
    const load = cache.memoize(
      async (id: number) => {
        calls++
        return id === 0 ? null : `v${id}`
      },
      { makeName: () => 'counted' },
    )
    await load(1)
    await load(1)
    await load(1)
    await load(0)
    await load(0)
    assert.deepEqual(cache.stats().memoized.counted, { hits: 2, misses: 3, stale: 0, bypass: 0 })
    assert.equal(calls, 3)
    const withNone = cache.memoize(
      async () => {
        calls++
        return null
      },
      { makeName: () => 'none', cacheNone: true },
    )
    await withNone()
    assert.equal(await withNone(), null)
    assert.equal(calls, 4)
    assert.deepEqual(cache.stats().memoized.none, { hits: 1, misses: 1, stale: 0, bypass: 0 })
  })

  it('options that act on a hit (forcedUpdate, isStale, tags, grace) still do', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    let calls = 0
    const compute = async (x: number) => `${x}:${++calls}`
    let force = false
    const forced = cache.memoize(compute, { makeName: () => 'f', forcedUpdate: () => force })
    assert.equal(await forced(1), '1:1')
    assert.equal(await forced(1), '1:1')
    force = true
    assert.equal(await forced(1), '1:2')
    let stale = false
    const checked = cache.memoize(compute, { makeName: () => 's', isStale: () => stale })
    assert.equal(await checked(1), '1:3')
    assert.equal(await checked(1), '1:3')
    stale = true
    assert.equal(await checked(1), '1:4')
    const tagged = cache.memoize(compute, { makeName: () => 't', tags: ['users'] })
    assert.equal(await tagged(1), '1:5')
    assert.equal(await tagged(1), '1:5')
    await cache.invalidateTags(['users'])
    assert.equal(await tagged(1), '1:6')
  })

  it('a version key lost from the backend is created again on the next call', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    let calls = 0
    const m = cache.memoize(async (x: number) => `${x}:${++calls}`, { makeName: () => 'lost' })
    assert.equal(await m(1), '1:1')
    assert.equal(await m(1), '1:1')
    await cache.delete('lost_memver')
    assert.equal(await m(1), '1:2')
    assert.equal(typeof (await cache.get('lost_memver')), 'string')
    assert.equal(await m(1), '1:2')
  })
})
