// Hostile input against the backends, on real servers: keys that are not
// well-formed UTF-16, values over memcached's item size, non-regular files in
// CACHE_DIR, decimals no double can hold, an outage's log volume, and
// timeouts that are not numbers or too large to represent.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { FileSystemCache } from '../../src/backends/filesystem/index.js'
import { MemcachedCache } from '../../src/backends/memcached/index.js'
import { RedisCache } from '../../src/backends/redis/index.js'
import { decodeValue, encodeValue } from '../../src/core/codec.js'
import { InvalidTimeoutError, NotAnIntegerError } from '../../src/core/errors.js'
import { ErrorReporter } from '../../src/core/log.js'
import { v8Serializer } from '../../src/core/serializers.js'
import { Cache, type Logger } from '../../src/index.js'
import { collectingLogger, DownBackend, fakeClock, Lifetimes, silentLogger } from '../helpers.js'
import { startMemcached } from '../servers/memcached.js'
import { startRedis } from '../servers/redis.js'

const run = promisify(execFile)
const life = new Lifetimes()
const redisServer = life.lazily(
  () => startRedis(),
  (s) => s.stop(),
)
const memcachedServer = life.lazily(
  () => startMemcached(),
  (s) => s.stop(),
)
const dirs: string[] = []
after(async () => {
  await life.stopAll()
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })))
})

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cachette-sec-'))
  dirs.push(dir)
  return dir
}

function entryPath(dir: string, key: string): string {
  const name = createHash('sha256').update(key).digest('hex')
  return join(dir, name.slice(0, 2), name)
}

/** Rejects if `promise` has not settled within `ms`: a hang fails the test instead of stalling it. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)
  })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}

async function mkfifo(path: string): Promise<void> {
  await run('mkfifo', [path])
}

async function redisCache(keyPrefix = 'sec:', logger: Logger = silentLogger): Promise<RedisCache> {
  const s = await redisServer()
  return life.track(new RedisCache({ host: s.host, port: s.port, keyPrefix, logger }))
}

async function rawRedis(): Promise<Redis> {
  const s = await redisServer()
  const r = new Redis({ host: '127.0.0.1', port: s.port })
  life.defer(async () => r.disconnect())
  return r
}

// ---- 11: keys that are not well-formed UTF-16 -----------------------------------

describe('keys that are not well-formed UTF-16', () => {
  const keys = ['\uD800', '\uDC00', '\uFFFD']

  test('FileSystemCache: lone surrogates and U+FFFD are three entries', async () => {
    const cache = life.track(new FileSystemCache({ dir: await tempDir(), logger: silentLogger }))
    for (const [i, key] of keys.entries()) await cache.set(key, i)
    assert.deepEqual(await cache.getMany(keys), [0, 1, 2])
  })

  test('RedisCache: lone surrogates and U+FFFD are three entries, listed by keys()', async () => {
    const cache = await redisCache('sec-keys:')
    await cache.clear()
    for (const [i, key] of keys.entries()) await cache.set(key, i)
    assert.deepEqual(await cache.getMany(keys), [0, 1, 2])
    const listed: string[] = []
    for await (const key of cache.keys('')) listed.push(key)
    assert.deepEqual(listed.sort(), [...keys].sort())
    const under: string[] = []
    for await (const key of cache.keys('\uD800')) under.push(key)
    assert.deepEqual(under, ['\uD800'])
    await cache.clear()
  })

  test('RedisCache: keys(prefix) lists escaped keys under a plain prefix', async () => {
    const cache = await redisCache('sec-keys-prefix:')
    await cache.clear()
    const stored = ['user:a', 'user:\uD800', 'user:a\\b\uDC00', '~u~x', '\uD800\uDC00', 'other']
    for (const key of stored) await cache.set(key, 1)
    const list = async (prefix: string): Promise<string[]> => {
      const out: string[] = []
      for await (const key of cache.keys(prefix)) out.push(key)
      return out.sort()
    }
    assert.deepEqual(await list('user:'), ['user:a', 'user:a\\b\uDC00', 'user:\uD800'].sort())
    assert.deepEqual(await list('user:a\\'), ['user:a\\b\uDC00'])
    assert.deepEqual(await list('~u'), ['~u~x'])
    assert.deepEqual(await list('\uD800'), ['\uD800\uDC00'])
    assert.deepEqual(await list(''), [...stored].sort())
    await cache.clear()
  })

  test('Cache facade over SimpleCache, FileSystemCache and Redis: same three entries', async () => {
    const s = await redisServer()
    const configs = [
      { CACHE_TYPE: 'SimpleCache' },
      { CACHE_TYPE: 'FileSystemCache', CACHE_DIR: await tempDir() },
      {
        CACHE_TYPE: 'RedisCache',
        CACHE_REDIS_HOST: s.host,
        CACHE_REDIS_PORT: s.port,
        CACHE_KEY_PREFIX: 'sec-facade:',
      },
    ]
    for (const config of configs) {
      const cache = new Cache({ ...config, logger: silentLogger })
      for (const [i, key] of keys.entries()) await cache.set(key, i)
      assert.deepEqual(await cache.getMany(keys), [0, 1, 2], config.CACHE_TYPE)
      await cache.clear()
      await (await cache.ready()).close?.()
    }
  })
})

// ---- 12: memcached item size --------------------------------------------------------

describe('memcached item size limit', () => {
  test('MemcachedCache: a set over the item size limit resolves false and the old value survives', async () => {
    const logger = collectingLogger()
    const s = await memcachedServer()
    const cache = life.track(
      new MemcachedCache({ servers: [s.address], keyPrefix: 'big_', logger }),
    )
    await cache.set('big', 'old')
    // Exactly the default limit: the key and item header push it over.
    assert.equal(await cache.set('big', Buffer.alloc(1 << 20)), false)
    assert.equal(await cache.get('big'), 'old')
    assert.equal(await cache.set('big', Buffer.alloc(2 << 20)), false)
    assert.equal(await cache.get('big'), 'old')
    assert.deepEqual(await cache.setMany([['big', Buffer.alloc(2 << 20)]]), [])
    assert.equal(await cache.get('big'), 'old')
    assert.equal(await cache.add('big-add', Buffer.alloc(2 << 20)), false)
    assert.equal(logger.warnings.filter((w) => w.includes('item size limit')).length, 1)
    // A value that fits is still stored.
    assert.equal(await cache.set('big', Buffer.alloc(512 * 1024, 1)), true)
    assert.equal(((await cache.get('big')) as Buffer).length, 512 * 1024)
  })

  test('MemcachedCache: the limit is the server’s own (-I 2m)', async () => {
    const s = await startMemcached({ args: ['-I', '2m'] })
    life.defer(() => s.stop())
    const cache = life.track(new MemcachedCache({ servers: [s.address], logger: silentLogger }))
    await cache.set('k', 'old')
    assert.equal(await cache.set('k', Buffer.alloc(1536 * 1024, 2)), true)
    assert.equal(((await cache.get('k')) as Buffer).length, 1536 * 1024)
    assert.equal(await cache.set('k', Buffer.alloc(3 << 20)), false)
    assert.equal(((await cache.get('k')) as Buffer).length, 1536 * 1024)
  })
})

// ---- 13: hostile files in CACHE_DIR --------------------------------------------

describe('FileSystemCache: non-regular files in CACHE_DIR', () => {
  test("FileSystemCache: a FIFO at an entry's path is a miss, not a hang", async () => {
    const dir = await tempDir()
    const cache = life.track(new FileSystemCache({ dir, logger: silentLogger }))
    const path = entryPath(dir, 'fifo')
    await mkdir(join(path, '..'), { recursive: true })
    await mkfifo(path)
    assert.equal(await within(cache.get('fifo'), 10_000, 'get'), undefined)
    assert.equal(await within(cache.has('fifo'), 10_000, 'has'), false)
    assert.equal(await within(cache.add('fifo', 1), 10_000, 'add'), true)
    assert.equal(await within(cache.get('fifo'), 10_000, 'get after add'), 1)
  })

  test('FileSystemCache: a FIFO in a cache subdirectory does not hang pruning or later writes', async () => {
    const dir = await tempDir()
    const cache = life.track(new FileSystemCache({ dir, threshold: 5, logger: silentLogger }))
    await mkdir(join(dir, 'ab'), { recursive: true })
    await mkfifo(join(dir, 'ab', `ab${'0'.repeat(62)}`))
    const writes = (async () => {
      for (let i = 0; i < 20; i++) await cache.set(`k${i}`, i)
      return cache.get('k19')
    })()
    assert.equal(await within(writes, 10_000, 'writes with pruning'), 19)
    assert.ok(((await cache.stats()).entries as number) <= 6)
  })

  test("FileSystemCache: a symlink to /dev/zero at an entry's path is a miss", async () => {
    const dir = await tempDir()
    const cache = life.track(new FileSystemCache({ dir, logger: silentLogger }))
    const path = entryPath(dir, 'zero')
    await mkdir(join(path, '..'), { recursive: true })
    await symlink('/dev/zero', path)
    assert.equal(await within(cache.get('zero'), 10_000, 'get'), undefined)
    assert.equal(await within(cache.has('zero'), 10_000, 'has'), false)
    assert.equal(await within(cache.inc('zero', 1), 10_000, 'inc'), 1)
  })

  test("FileSystemCache: a symlink to a regular file at an entry's path is a miss", async () => {
    const dir = await tempDir()
    const cache = life.track(new FileSystemCache({ dir, logger: silentLogger }))
    const outside = join(await tempDir(), 'secret')
    await writeFile(outside, Buffer.concat([Buffer.alloc(16), encodeValue('x', v8Serializer)]))
    const path = entryPath(dir, 'link')
    await mkdir(join(path, '..'), { recursive: true })
    await symlink(outside, path)
    assert.equal(await within(cache.get('link'), 10_000, 'get'), undefined)
  })
})

// ---- 14: decimals beyond the safe range ------------------------------------------

describe('decimals beyond the safe integer range', () => {
  const digits = `1${'0'.repeat(399)}`

  test('decodeValue: a 400-digit decimal is an exact BigInt, never Infinity', () => {
    assert.equal(decodeValue(Buffer.from(digits), v8Serializer), BigInt(digits))
    assert.equal(decodeValue(Buffer.from('9007199254740993'), v8Serializer), 9007199254740993n)
    assert.equal(decodeValue(Buffer.from('9007199254740991'), v8Serializer), 9007199254740991)
    for (const n of [2 ** 53 + 2, 1e300, -(2 ** 60)]) {
      assert.equal(decodeValue(encodeValue(n, v8Serializer), v8Serializer), n)
    }
  })

  test('RedisCache: a 400-digit decimal written by another client is not Infinity', async () => {
    const cache = await redisCache('sec-num:')
    const raw = await rawRedis()
    await raw.set('sec-num:huge', digits)
    assert.equal(await cache.get('huge'), BigInt(digits))
  })

  test('RedisCache: inc refuses to leave the safe integer range and leaves the counter', async () => {
    const cache = await redisCache('sec-inc:')
    await cache.set('c', Number.MAX_SAFE_INTEGER - 1)
    assert.equal(await cache.inc('c', 1), Number.MAX_SAFE_INTEGER)
    await assert.rejects(cache.inc('c', 1), NotAnIntegerError)
    assert.equal(await cache.get('c'), Number.MAX_SAFE_INTEGER)
  })
})

// ---- 15: log volume during an outage ---------------------------------------------

describe('error log volume during an outage', () => {
  test('ErrorReporter: 100 keys of one operation log once per window', () => {
    const logger = collectingLogger()
    const clock = fakeClock()
    const reporter = new ErrorReporter(logger, 60_000, clock.now)
    for (let i = 0; i < 100; i++) {
      reporter.report(
        `cached view//page/${i}`,
        new Error('backend down'),
        undefined,
        `view//page/${i}`,
      )
    }
    assert.equal(logger.errors.length, 1)
    assert.match(logger.errors[0] as string, /cached view\/\/page\/0: backend down/)
    clock.advance(60_001)
    reporter.report('cached view//page/100', new Error('backend down'), undefined, 'view//page/100')
    assert.equal(logger.errors.length, 2)
    assert.match(logger.errors[1] as string, /99 more/)
  })

  test('Cache over a down backend: 100 keys through views, getOrSet and memoize log a bounded number of lines', async () => {
    const logger = collectingLogger()
    const cache = new Cache({ CACHE_TYPE: () => new DownBackend(), logger })
    const memoized = cache.memoize(async (n: number) => n * 2)
    const round = async (from: number): Promise<void> => {
      for (let i = from; i < from + 100; i++) {
        assert.equal(await cache.getOrSet(`user:${i}`, () => i), i)
        assert.equal(await memoized(i), i * 2)
        assert.equal(await cache.get(`k${i}`), undefined)
      }
    }
    await round(0)
    // Three operations, two errors each (the failure, then the open circuit).
    assert.ok(logger.errors.length <= 6, logger.errors.join('\n'))
    const lines = logger.errors.length
    await round(100)
    assert.equal(logger.errors.length, lines, 'another 100 keys add no line within the window')
  })
})

// ---- 16: timeouts, cross-process inc, prefixes -------------------------------

describe('timeouts', () => {
  test('Cache.set with a Date as timeout is an InvalidTimeoutError naming the value', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    await cache.set('k', 'old')
    const when = new Date('2030-01-01T00:00:00Z')
    await assert.rejects(cache.set('k', 'v', when as never), (error: unknown) => {
      assert.ok(error instanceof InvalidTimeoutError)
      assert.equal(error.code, 'ERR_CACHETTE_INVALID_TIMEOUT')
      assert.match(error.message, /Date/)
      assert.match(error.message, /2030-01-01/)
      return true
    })
    await assert.rejects(cache.add('k', 'v', when as never), InvalidTimeoutError)
    await assert.rejects(cache.setMany({ k: 'v' }, when as never), InvalidTimeoutError)
    assert.equal(await cache.get('k'), 'old')
  })

  test('FileSystemCache via Cache: set(k, v, 1e306) is readable afterwards', async () => {
    const cache = new Cache({ CACHE_TYPE: 'FileSystemCache', CACHE_DIR: await tempDir() })
    assert.equal(await cache.set('far', 'v', 1e306), true)
    assert.equal(await cache.get('far'), 'v')
  })
})

describe('FileSystemCache: inc across processes', () => {
  test('FileSystemCache: inc is atomic across 4 processes (800 increments, none lost)', async () => {
    const dir = await tempDir()
    const worker = fileURLToPath(new URL('../fixtures/filesystem-inc-worker.ts', import.meta.url))
    const cwd = fileURLToPath(new URL('../..', import.meta.url))
    const spawn = () =>
      run(process.execPath, ['--import', 'tsx', worker, dir, 'counter', '200'], {
        cwd,
        timeout: 110_000,
      })
    await Promise.all([spawn(), spawn(), spawn(), spawn()])
    const cache = life.track(new FileSystemCache({ dir, logger: silentLogger }))
    assert.equal(await cache.get('counter'), 800)
  })
})

describe('RedisCache: key prefix without a separator', () => {
  test('RedisCache: a key prefix without a separator at its end is warned about once', async () => {
    const logger = collectingLogger()
    await redisCache('app', logger)
    await redisCache('app', logger)
    const warned = logger.warnings.filter((w) => w.includes('CACHETTE_REDIS_PREFIX_SEPARATOR'))
    assert.equal(warned.length, 1)
    assert.match(warned[0] as string, /"app"/)
    const quiet = collectingLogger()
    await redisCache('app:', quiet)
    await redisCache('app_', quiet)
    assert.deepEqual(quiet.warnings, [])
  })
})
