import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { RedisCache } from '../src/backends/redis/index.js'
import { Cache, type Logger, SimpleCache } from '../src/index.js'
import { collectingLogger, DownBackend, eventually, silentLogger, sleep } from './helpers.js'
import { type RedisServer, startRedis } from './servers/redis.js'

const run = promisify(execFile)
const worker = fileURLToPath(new URL('./fixtures/getorset-worker.ts', import.meta.url))

function memory(logger: Logger = silentLogger): Cache {
  return new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_THRESHOLD: 10_000, logger })
}

/** A factory that counts its runs (and finished runs) and returns `${label}${run}` after `ms`. */
function counted(label = 'v', ms = 20) {
  const f = async () => {
    const run = ++f.runs
    await sleep(ms)
    f.finished++
    return `${label}${run}`
  }
  f.runs = 0
  f.finished = 0
  return f
}

describe('getOrSet', () => {
  it('computes on a miss, stores, and serves the stored value after', async () => {
    const cache = memory()
    const f = counted()
    assert.equal(await cache.getOrSet('k', f, { timeout: 60 }), 'v1')
    assert.equal(await cache.getOrSet('k', f, { timeout: 60 }), 'v1')
    assert.equal(f.runs, 1)
    assert.equal(await cache.get('k'), 'v1', 'an entry without grace or tags is the bare value')
  })

  it('a factory error reaches the caller and nothing is stored', async () => {
    const cache = memory()
    await assert.rejects(
      cache.getOrSet('k', async () => {
        throw new Error('db down')
      }),
      /db down/,
    )
    assert.equal(await cache.has('k'), false)
    assert.equal(await cache.getOrSet('k', () => 'ok'), 'ok')
  })

  it('an undefined result is returned and not stored; null is stored', async () => {
    const cache = memory()
    assert.equal(await cache.getOrSet('u', () => undefined), undefined)
    assert.equal(await cache.has('u'), false)
    assert.equal(await cache.getOrSet('n', () => null), null)
    assert.equal(await cache.has('n'), true)
  })

  it('rejects bad arguments with a clear error', async () => {
    const cache = memory()
    await assert.rejects(cache.getOrSet('k', 42 as never), /factory must be a function/)
    await assert.rejects(
      cache.getOrSet('k', () => 1, { ttl: 5 } as never),
      /unknown option "ttl"/,
    )
    await assert.rejects(
      cache.getOrSet('k', () => 1, { grace: -1 }),
      /grace/,
    )
    await assert.rejects(
      cache.getOrSet('k', () => 1, { lock: { ttl: 0 } }),
      /lock.ttl must be more than 0/,
    )
    await assert.rejects(
      cache.getOrSet('k', () => 1, { lock: 'yes' as never }),
      /lock must be/,
    )
  })

  it('a backend that is down makes it compute every time, logged, never fail', async () => {
    const logger = collectingLogger()
    const cache = new Cache({ CACHE_TYPE: () => new DownBackend(), logger })
    const f = counted()
    assert.equal(await cache.getOrSet('k', f), 'v1')
    assert.equal(await cache.getOrSet('k', f), 'v2')
    assert.ok(logger.errors.some((e) => e.includes('getOrSet')))
  })
})

describe('stampede protection', () => {
  it('with lock, a backend that is down does not make the call wait for the lock', async () => {
    const cache = new Cache({ CACHE_TYPE: () => new DownBackend(), logger: silentLogger })
    const started = Date.now()
    assert.equal(await cache.getOrSet('k', () => 'v', { lock: { wait: 5 } }), 'v')
    // Well under the 5 s lock wait (generous: a loaded machine is slow, not 5 s slow).
    assert.ok(Date.now() - started < 4000, `took ${Date.now() - started} ms`)
  })

  it('200 concurrent calls on a cold key run the factory once (SimpleCache)', async () => {
    const cache = memory()
    const f = counted('v', 50)
    const values = await Promise.all(Array.from({ length: 200 }, () => cache.getOrSet('cold', f)))
    assert.equal(f.runs, 1)
    assert.deepEqual(new Set(values), new Set(['v1']))
  })

  it('calls that join a miss in flight do not read the backend again', async () => {
    let reads = 0
    class CountingCache extends SimpleCache {
      override async get(key: string): Promise<unknown> {
        reads++
        return super.get(key)
      }
    }
    const cache = new Cache({ CACHE_TYPE: () => new CountingCache() })
    const f = counted('v', 30)
    const first = cache.getOrSet('k', f)
    await sleep(5)
    await Promise.all([first, ...Array.from({ length: 100 }, () => cache.getOrSet('k', f))])
    assert.equal(f.runs, 1)
    assert.equal(reads, 1, 'only the first call read the backend')
  })

  it('callers sharing a failed call all get its error, and the next call runs again', async () => {
    const cache = memory()
    let runs = 0
    const failing = async () => {
      runs++
      await sleep(20)
      throw new Error(`failure ${runs}`)
    }
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () => cache.getOrSet('f', failing)),
    )
    assert.equal(runs, 1)
    assert.ok(results.every((r) => r.status === 'rejected' && /failure 1/.test(String(r.reason))))
    await assert.rejects(cache.getOrSet('f', failing), /failure 2/)
  })

  it('memoize: 200 concurrent calls with the same arguments run the function once', async () => {
    const cache = memory()
    let runs = 0
    const load = cache.memoize(async (id: number) => {
      runs++
      await sleep(50)
      return { id }
    })
    const values = await Promise.all(Array.from({ length: 200 }, () => load(7)))
    assert.equal(runs, 1)
    assert.ok(values.every((v) => v.id === 7))
    await Promise.all([load(8), load(8), load(9)])
    assert.equal(runs, 3, 'different arguments are different calls')
  })
})

describe('grace and stale-while-revalidate', () => {
  it('a stale entry is served at once while one background call refreshes it', async () => {
    const cache = memory()
    const f = counted('v', 100)
    assert.equal(await cache.getOrSet('g', f, { timeout: 0.1, grace: 60 }), 'v1')
    await sleep(150) // past its 0.1 s: stale
    // The refresh stores for 60 s, so the fresh value is still fresh when read back below.
    const long = { timeout: 60, grace: 60 }
    const stale = await Promise.all(Array.from({ length: 50 }, () => cache.getOrSet('g', f, long)))
    assert.equal(f.finished, 1, 'stale reads returned before the refresh finished')
    assert.deepEqual(new Set(stale), new Set(['v1']))
    assert.equal(f.runs, 2, 'one background refresh for 50 stale reads')
    await eventually(
      async () => (await cache.getOrSet('g', f, long)) === 'v2',
      10_000,
      'the refreshed value',
    )
    assert.equal(await cache.get('g'), 'v2', 'a plain get sees the fresh value')
  })

  it('a plain get does not return a stale value; has() is false for it', async () => {
    const cache = memory()
    await cache.getOrSet('g', () => 'old', { timeout: 0.05, grace: 60 })
    await sleep(80)
    assert.equal(await cache.get('g'), undefined)
    assert.equal(await cache.has('g'), false)
    assert.deepEqual(await cache.getMany('g'), [undefined])
  })

  it('when the refresh fails, the stale value keeps being served, with back-off', async () => {
    const logger = collectingLogger()
    const cache = memory(logger)
    let calls = 0
    // A 1 s back-off: the ten reads below stay inside it on a loaded machine.
    const opts = { timeout: 0.05, grace: 60, graceBackoff: 1 }
    await cache.getOrSet('b', () => 'good', opts)
    const failing = async () => {
      calls++
      throw new Error('db down')
    }
    await sleep(80)
    for (let i = 0; i < 10; i++) assert.equal(await cache.getOrSet('b', failing, opts), 'good')
    await eventually(async () => calls === 1, 10_000, 'the background call')
    await sleep(50)
    assert.equal(calls, 1, 'no new factory call during the back-off')
    assert.ok(logger.errors.some((e) => e.includes('serving the stale value')))
    await sleep(1000) // past the back-off
    assert.equal(await cache.getOrSet('b', failing, opts), 'good')
    await eventually(async () => calls === 2, 10_000, 'a retry after the back-off')
  })

  it('a miss (no stale value) with a failing factory rejects', async () => {
    const cache = memory()
    await assert.rejects(
      cache.getOrSet('none', () => Promise.reject(new Error('boom')), { grace: 60 }),
      /boom/,
    )
  })

  it('past the grace period the entry is gone and the caller waits for the factory', async () => {
    const cache = memory()
    const f = counted('v', 10)
    await cache.getOrSet('p', f, { timeout: 0.05, grace: 0.05 })
    await sleep(150)
    assert.equal(await cache.getOrSet('p', f, { timeout: 0.05, grace: 0.05 }), 'v2')
  })

  it('memoize with grace serves the stale result and refreshes it in the background', async () => {
    const cache = memory()
    let n = 0
    const load = cache.memoize(async (id: number) => `${id}:${++n}`, { timeout: 0.05, grace: 60 })
    assert.equal(await load(1), '1:1')
    await sleep(80)
    assert.equal(await load(1), '1:1')
    await eventually(async () => (await load(1)) === '1:2', 10_000, 'the refreshed result')
  })
})

describe('tags', () => {
  it('invalidateTags makes tagged entries misses, untagged ones stay', async () => {
    const cache = memory()
    await cache.set('a', 1, { tags: ['users'] })
    await cache.set('b', 2, { tags: ['users', 'posts'] })
    await cache.set('c', 3, { tags: ['posts'] })
    await cache.set('d', 4)
    assert.deepEqual(await cache.getMany('a', 'b', 'c', 'd'), [1, 2, 3, 4])
    await cache.invalidateTags(['users'])
    assert.deepEqual(await cache.getMany('a', 'b', 'c', 'd'), [undefined, undefined, 3, 4])
    assert.equal(await cache.has('a'), false, 'has() agrees with get() (bentocache #64)')
    assert.equal(await cache.get('a'), undefined)
  })

  it('getOrSet recomputes after its tag is invalidated', async () => {
    const cache = memory()
    const f = counted()
    assert.equal(await cache.getOrSet('t', f, { tags: ['x'] }), 'v1')
    assert.equal(await cache.getOrSet('t', f, { tags: ['x'] }), 'v1')
    await cache.invalidateTags(['x'])
    assert.equal(await cache.getOrSet('t', f, { tags: ['x'] }), 'v2')
  })

  it('an invalidated entry is never served stale, even inside its grace period (bentocache #71)', async () => {
    const cache = memory()
    const f = counted('v', 30)
    const opts = { timeout: 60, grace: 3600, tags: ['t'] }
    assert.equal(await cache.getOrSet('g', f, opts), 'v1')
    await cache.invalidateTags(['t'])
    assert.equal(await cache.getOrSet('g', f, opts), 'v2', 'the caller waits for a fresh value')
  })

  it('an invalidation while the factory runs makes its result a miss next time', async () => {
    const cache = memory()
    let n = 0
    const slow = async () => {
      n++
      await sleep(60)
      return `v${n}`
    }
    const first = cache.getOrSet('r', slow, { tags: ['t'] })
    await sleep(20)
    await cache.invalidateTags(['t'])
    assert.equal(await first, 'v1', 'the caller still gets its result')
    assert.equal(await cache.getOrSet('r', slow, { tags: ['t'] }), 'v2')
  })

  it('a lost tag token never brings an invalidated entry back', async () => {
    const cache = memory()
    await cache.set('e', 'old', { tags: ['t'] })
    await cache.invalidateTags(['t'])
    await cache.delete('_cachette_tag_t')
    assert.equal(await cache.get('e'), undefined)
  })

  it('memoize takes tags, also as a function of the arguments', async () => {
    const cache = memory()
    let n = 0
    const load = cache.memoize(async (id: number) => `${id}:${++n}`, {
      tags: (id: number) => [`user:${id}`, 'users'],
    })
    assert.equal(await load(1), '1:1')
    assert.equal(await load(2), '2:2')
    await cache.invalidateTags(['user:1'])
    assert.equal(await load(1), '1:3')
    assert.equal(await load(2), '2:2')
    await cache.invalidateTags(['users'])
    assert.equal(await load(2), '2:4')
  })

  it('invalid tags are rejected with a clear error', async () => {
    const cache = memory()
    await assert.rejects(cache.set('k', 1, { tags: [''] }), /non-empty string/)
    await assert.rejects(cache.set('k', 1, { tags: 'users' as never }), /array of strings/)
    await assert.rejects(cache.invalidateTags(['a\nb']), /control character/)
    await assert.rejects(
      cache.getOrSet('k', () => 1, { tags: [42 as never] }),
      /got number/,
    )
    await assert.rejects(cache.set('k', 1, { tags: ['x'.repeat(201)] }), /at most 200/)
    assert.throws(() => cache.memoize(async () => 1, { tags: [''] }), /non-empty string/)
    await assert.rejects(cache.set('k', 1, { ttl: 3 } as never), /unknown option "ttl"/)
  })

  it('tagged entries keep their type (JSON serializer too)', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_SERIALIZER: 'json' })
    await cache.set('o', { a: [1, 2], b: null }, { tags: ['t'] })
    assert.deepEqual(await cache.get('o'), { a: [1, 2], b: null })
  })
})

describe('with Redis', () => {
  let redis: RedisServer
  before(async () => {
    redis = await startRedis()
  })
  after(() => redis?.stop())

  const redisCache = (prefix = 'gs:') =>
    new Cache({
      CACHE_TYPE: RedisCache,
      CACHE_REDIS_HOST: '127.0.0.1',
      CACHE_REDIS_PORT: redis.port,
      CACHE_KEY_PREFIX: prefix,
      logger: silentLogger,
    })

  it('200 concurrent calls on a cold key run the factory once', async () => {
    const cache = redisCache()
    const f = counted('r', 50)
    const values = await Promise.all(Array.from({ length: 200 }, () => cache.getOrSet('cold', f)))
    assert.equal(f.runs, 1)
    assert.deepEqual(new Set(values), new Set(['r1']))
    await cache.close()
  })

  it('two processes with the lock: one factory run across both', async () => {
    const key = `cross-${Date.now()}`
    const startAt = String(Date.now() + 1500)
    const spawn = () =>
      run(process.execPath, ['--import', 'tsx', worker, String(redis.port), key, startAt, 'lock'])
    const [a, b] = await Promise.all([spawn(), spawn()])
    const ra = JSON.parse(a.stdout) as { values: string[]; runs: number }
    const rb = JSON.parse(b.stdout) as { values: string[]; runs: number }
    assert.equal(ra.runs + rb.runs, 1, 'one computation in the whole deployment')
    assert.deepEqual(ra.values, rb.values, 'both processes got the one value')
    assert.equal(ra.values.length, 1)
    const cache = redisCache('stampede:')
    assert.equal(await cache.get(`${key}:runs`), 1)
    await cache.close()
  })

  it('a lock whose holder never releases it expires; waiters fall back after their wait', async () => {
    const cache = redisCache()
    await cache.ready()
    const backend = cache.backend as RedisCache
    assert.equal(await backend.acquireLock('_cachette_lock_held', 'someone-else', 600), true)
    const f = counted('mine', 0)
    const started = Date.now()
    const value = await cache.getOrSet('held', f, { lock: { ttl: 10, wait: 0.2 } })
    assert.equal(value, 'mine1', 'the fallback ran the factory itself after the wait')
    assert.ok(Date.now() - started >= 190, 'it waited for the holder first')
    await eventually(async () => !(await backend.has('_cachette_lock_held')), 10_000, 'lock expiry')
    assert.equal(await backend.releaseLock('_cachette_lock_held', 'someone-else'), false)
    await cache.close()
  })

  it('releaseLock leaves a lock taken by someone else alone', async () => {
    const cache = redisCache()
    await cache.ready()
    const backend = cache.backend as RedisCache
    assert.equal(await backend.acquireLock('L', 'a', 5000), true)
    assert.equal(await backend.acquireLock('L', 'b', 5000), false)
    assert.equal(await backend.releaseLock('L', 'b'), false)
    assert.equal(await backend.releaseLock('L', 'a'), true)
    assert.equal(await backend.acquireLock('L', 'b', 5000), true)
    await cache.close()
  })

  it('an invalidation from one Cache is seen by another on the same Redis', async () => {
    const a = redisCache('tags:')
    const b = redisCache('tags:')
    await a.set('e', 'v', { tags: ['t'] })
    assert.equal(await b.get('e'), 'v')
    await b.invalidateTags(['t'])
    assert.equal(await a.get('e'), undefined)
    await a.close()
    await b.close()
  })

  it('the lock option works without native locks too (add() on SimpleCache)', async () => {
    const cache = new Cache({ CACHE_TYPE: () => new SimpleCache({ threshold: 1000 }) })
    const f = counted('s', 30)
    const values = await Promise.all(
      Array.from({ length: 50 }, () => cache.getOrSet('k', f, { lock: true })),
    )
    assert.equal(f.runs, 1)
    assert.deepEqual(new Set(values), new Set(['s1']))
    assert.equal(await cache.has('_cachette_lock_k'), false, 'released')
  })
})
