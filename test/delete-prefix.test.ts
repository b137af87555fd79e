/**
 * cache.deletePrefix(prefix): removes the keys under a prefix, on the
 * backends that can list their keys (SimpleCache, a real Redis, a
 * TieredCache over Redis, both tiers), refuses those that cannot
 * (FileSystemCache, a real Memcached) with a TypeError, and misses (0,
 * logged) when the backend is down.
 */
import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { Cache, type CacheBackend, TieredCache } from '../src/index.js'
import { collectingLogger, DownBackend } from './helpers.js'
import { startMemcached } from './servers/memcached.js'
import { startRedis } from './servers/redis.js'

async function seed(cache: Cache): Promise<void> {
  await cache.setMany({
    'user:1:name': 'ada',
    'user:1:mail': 'ada@example.com',
    'user:10:name': 'bob',
    'user:2:name': 'cy',
    'page:user:1': 'not under the prefix',
  })
}

async function assertDeletesUnderPrefix(cache: Cache): Promise<void> {
  await seed(cache)
  assert.equal(await cache.deletePrefix('user:1:', { batchSize: 1 }), 2)
  assert.deepEqual(await cache.getMany('user:1:name', 'user:1:mail'), [undefined, undefined])
  assert.deepEqual(await cache.getMany('user:10:name', 'user:2:name', 'page:user:1'), [
    'bob',
    'cy',
    'not under the prefix',
  ])
  assert.equal(await cache.deletePrefix('user:'), 2)
  assert.equal(await cache.get('page:user:1'), 'not under the prefix')
  assert.equal(await cache.deletePrefix('nothing:'), 0)
}

describe('cache.deletePrefix', () => {
  const closing: (() => Promise<unknown>)[] = []
  after(async () => {
    for (const close of closing.reverse()) await close()
  })

  test('SimpleCache: removes the keys under the prefix, in batches, and nothing else', async () => {
    await assertDeletesUnderPrefix(new Cache({ CACHE_TYPE: 'SimpleCache' }))
  })

  test('RedisCache on a real server, with a key prefix of its own', async () => {
    const server = await startRedis()
    closing.push(() => server.stop())
    const cache = new Cache({
      CACHE_TYPE: 'RedisCache',
      CACHE_REDIS_HOST: server.host,
      CACHE_REDIS_PORT: server.port,
      CACHE_KEY_PREFIX: 'app:',
    })
    closing.push(() => cache.close())
    await assertDeletesUnderPrefix(cache)
    // Another app's keys on the same server are not touched.
    const other = new Cache({
      CACHE_TYPE: 'RedisCache',
      CACHE_REDIS_HOST: server.host,
      CACHE_REDIS_PORT: server.port,
      CACHE_KEY_PREFIX: 'other:',
    })
    closing.push(() => other.close())
    await other.set('user:1:name', 'kept')
    await cache.set('user:1:name', 'gone')
    assert.equal(await cache.deletePrefix('user:1:'), 1)
    assert.equal(await other.get('user:1:name'), 'kept')
  })

  test('TieredCache over Redis: both tiers lose the keys', async () => {
    const server = await startRedis()
    closing.push(() => server.stop())
    const redis = new Cache({
      CACHE_TYPE: 'RedisCache',
      CACHE_REDIS_HOST: server.host,
      CACHE_REDIS_PORT: server.port,
    })
    closing.push(() => redis.close())
    const tiered = new TieredCache({ second: redis.backend, firstTimeout: 60 })
    const first = tiered.first
    const cache = new Cache({ CACHE_TYPE: () => tiered })
    await seed(cache)
    assert.equal(await cache.get('user:1:name'), 'ada')
    assert.equal(await first.get('user:1:name'), 'ada', 'the read filled the first tier')
    assert.equal(await cache.deletePrefix('user:1:'), 2)
    assert.equal(await first.get('user:1:name'), undefined)
    assert.equal(await redis.get('user:1:name'), undefined)
    assert.equal(await cache.get('user:10:name'), 'bob')
  })

  test('backends that cannot list their keys refuse with a TypeError naming the way out', async () => {
    const fs = new Cache({
      CACHE_TYPE: 'FileSystemCache',
      CACHE_DIR: mkdtempSync(join(tmpdir(), 'cachette-prefix-')),
    })
    await assert.rejects(fs.deletePrefix('user:'), {
      name: 'TypeError',
      message: /FileSystemCache cannot list its keys; delete the keys by name, or clear\(\)/,
    })
    const server = await startMemcached()
    closing.push(() => server.stop())
    const mc = new Cache({
      CACHE_TYPE: 'MemcachedCache',
      CACHE_MEMCACHED_SERVERS: [server.address],
    })
    closing.push(() => mc.close())
    await assert.rejects(mc.deletePrefix('user:'), {
      name: 'TypeError',
      message: /MemcachedCache cannot list its keys/,
    })
  })

  test('bad arguments are TypeErrors', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    await assert.rejects(cache.deletePrefix(''), { name: 'TypeError', message: /clear\(\)/ })
    await assert.rejects(cache.deletePrefix('a', { batchSize: 0 }), {
      name: 'TypeError',
      message: /batchSize must be a positive integer, got 0/,
    })
  })

  test('a backend that is down: resolves 0 and logs, or raises under CACHE_RAISE_ERRORS', async () => {
    class DownListing extends DownBackend {
      // biome-ignore lint/correctness/useYield: it fails before the first key, as a dead connection would
      async *keys(): AsyncIterable<string> {
        throw new Error('backend down')
      }
    }
    const logger = collectingLogger()
    const cache = new Cache({ CACHE_TYPE: () => new DownListing() as CacheBackend, logger })
    assert.equal(await cache.deletePrefix('user:'), 0)
    assert.match(logger.errors.join('\n'), /deletePrefix/)
    const raising = new Cache({ CACHE_TYPE: () => new DownListing(), CACHE_RAISE_ERRORS: true })
    await assert.rejects(raising.deletePrefix('user:'), /backend down/)
  })
})
