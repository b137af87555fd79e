import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { FileSystemCache, type FileSystemCacheOptions } from '../src/backends/filesystem/index.js'
import { encodeValue } from '../src/core/codec.js'
import {
  ConfigError,
  DeleteManyError,
  NotAnIntegerError,
  UnserializableValueError,
} from '../src/core/errors.js'
import { v8Serializer } from '../src/core/serializers.js'
import { backendContract } from '../src/testing/index.js'

const run = promisify(execFile)
const dirs: string[] = []
const caches: FileSystemCache[] = []

after(async () => {
  await Promise.all(caches.map((c) => c.close()))
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })))
})

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cachette-fs-'))
  dirs.push(dir)
  return dir
}

const silent = { warn: () => {}, error: () => {} }

const contractClock = { now: 1_700_000_000_000 }
backendContract('FileSystemCache', {
  create: async () =>
    new FileSystemCache({ dir: await tempDir(), threshold: 0, clock: () => contractClock.now }),
  advanceTime: (ms) => {
    contractClock.now += ms
  },
  writeRaw: async (key, bytes, backend) => {
    const path = entryPath((backend as FileSystemCache).dir, key)
    await mkdir(join(path, '..'), { recursive: true })
    const header = Buffer.alloc(16)
    header.write('CCFS', 'latin1')
    header[4] = 1
    await writeFile(path, Buffer.concat([header, bytes]))
  },
})

/** A cache on a fresh directory with a manual clock. */
async function setup(options: Partial<FileSystemCacheOptions> = {}) {
  const dir = options.dir ?? (await tempDir())
  const time = { now: 1_700_000_000_000 }
  const cache = new FileSystemCache({ logger: silent, clock: () => time.now, ...options, dir })
  caches.push(cache)
  return { dir, cache, time }
}

function entryPath(dir: string, key: string, algorithm = 'sha256'): string {
  const name = createHash(algorithm).update(key).digest('hex')
  return join(dir, name.slice(0, 2), name)
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  )
}

/** Every file below the fan-out subdirectories, temp files included. */
async function filesIn(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const sub of await readdir(dir, { withFileTypes: true })) {
    if (!sub.isDirectory()) continue
    for (const name of await readdir(join(dir, sub.name))) out.push(name)
  }
  return out
}

async function entryCount(dir: string): Promise<number> {
  return (await filesIn(dir)).filter((n) => /^[0-9a-f]+$/.test(n)).length
}

describe('FileSystemCache: values and format', () => {
  test('round-trips every supported kind of value', async () => {
    const { cache } = await setup()
    const nested = {
      a: [1, { b: 'c' }],
      d: new Date(5),
      e: null,
      f: new Map([['x', new Set([1])]]),
    }
    const values: [string, unknown][] = [
      ['string', 'hello'],
      ['empty', ''],
      ['int', 42],
      ['negative', -7],
      ['float', 1.5],
      ['null', null],
      ['true', true],
      ['false', false],
      ['date', new Date('2024-01-02T03:04:05Z')],
      [
        'map',
        new Map<unknown, unknown>([
          [1, 'one'],
          ['two', { n: 2 }],
        ]),
      ],
      ['set', new Set(['a', 'b'])],
      ['buffer', Buffer.from([0, 1, 2, 255])],
      ['bigint', 12345678901234567890n],
      ['nested', nested],
    ]
    for (const [key, value] of values) assert.equal(await cache.set(key, value), true)
    for (const [key, value] of values) assert.deepEqual(await cache.get(key), value, key)
    assert.equal(await cache.get('missing'), undefined)
  })

  test('stores one file per key in a fan-out subdirectory, with a versioned header', async () => {
    const { dir, cache, time } = await setup()
    await cache.set('k', { v: 1 })
    await cache.set('forever', 'x', 0)
    const data = await readFile(entryPath(dir, 'k'))
    assert.equal(data.subarray(0, 4).toString('latin1'), 'CCFS')
    assert.equal(data[4], 1)
    assert.equal(data.readDoubleLE(8), time.now + 300_000)
    assert.deepEqual(data.subarray(16), encodeValue({ v: 1 }, v8Serializer))
    assert.equal((await readFile(entryPath(dir, 'forever'))).readDoubleLE(8), 0)
    // Nothing but the fan-out subdirectories at the top level.
    for (const name of await readdir(dir)) assert.match(name, /^[0-9a-f]{2}$/)
  })

  test('getMany and setMany', async () => {
    const { cache } = await setup()
    assert.deepEqual(
      await cache.setMany([
        ['a', 1],
        ['b', { x: 2 }],
      ]),
      ['a', 'b'],
    )
    assert.deepEqual(await cache.getMany(['a', 'nope', 'b']), [1, undefined, { x: 2 }])
  })
})

describe('FileSystemCache: timeouts', () => {
  test('the default timeout applies to set without one', async () => {
    const { dir, cache, time } = await setup({ defaultTimeout: 300 })
    await cache.set('k', 'v')
    time.now += 299_999
    assert.equal(await cache.get('k'), 'v')
    assert.equal(await cache.has('k'), true)
    time.now += 1
    assert.equal(await cache.get('k'), undefined)
    assert.equal(await exists(entryPath(dir, 'k')), false, 'expired file removed on read')
  })

  test('explicit and fractional timeouts', async () => {
    const { dir, cache, time } = await setup()
    await cache.set('ten', 'v', 10)
    await cache.set('half', 'v', 0.5)
    time.now += 499
    assert.equal(await cache.get('half'), 'v')
    time.now += 1
    assert.equal(await cache.has('half'), false)
    assert.equal(await exists(entryPath(dir, 'half')), false, 'expired file removed by has')
    assert.equal(await cache.get('ten'), 'v')
    time.now += 9_500
    assert.equal(await cache.get('ten'), undefined)
  })

  test('0 means never expires, as a default and explicitly', async () => {
    const { cache, time } = await setup({ defaultTimeout: 0 })
    await cache.set('default', 'd')
    await cache.set('explicit', 'e', 0)
    time.now += 1e13
    assert.equal(await cache.get('default'), 'd')
    assert.equal(await cache.get('explicit'), 'e')
  })
})

describe('FileSystemCache: add, delete, clear', () => {
  test('add stores only when absent; an expired entry counts as absent', async () => {
    const { dir, cache, time } = await setup()
    assert.equal(await cache.add('k', 'first', 10), true)
    assert.equal(await cache.add('k', 'second'), false)
    assert.equal(await cache.get('k'), 'first')
    time.now += 10_000
    assert.equal(await cache.add('k', 'third', 0), true)
    assert.equal(await cache.get('k'), 'third')
    assert.equal((await stat(entryPath(dir, 'k'))).nlink, 1, 'the temp link is gone')
    assert.deepEqual(
      (await filesIn(dir)).filter((n) => n.startsWith('.tmp-')),
      [],
    )
  })

  test('add over a corrupt entry replaces it', async () => {
    const { dir, cache } = await setup()
    await cache.set('k', 'v')
    await writeFile(entryPath(dir, 'k'), 'garbage')
    assert.equal(await cache.add('k', 'new'), true)
    assert.equal(await cache.get('k'), 'new')
  })

  test('delete resolves whether a file was removed', async () => {
    const { dir, cache, time } = await setup()
    await cache.set('k', 'v')
    assert.equal(await cache.delete('k'), true)
    assert.equal(await exists(entryPath(dir, 'k')), false)
    assert.equal(await cache.delete('k'), false)
    assert.equal(await cache.delete('never-set'), false)
    await cache.set('old', 'v', 1)
    time.now += 2_000
    assert.equal(await cache.delete('old'), true, 'an expired file still existed')
  })

  test('deleteMany counts missing keys as deleted', async () => {
    const { dir, cache } = await setup()
    await cache.setMany([
      ['a', 1],
      ['b', 2],
    ])
    assert.deepEqual(await cache.deleteMany(['a', 'missing', 'b']), ['a', 'missing', 'b'])
    assert.equal(await exists(entryPath(dir, 'a')), false)
    assert.equal(await exists(entryPath(dir, 'b')), false)
  })

  test('deleteMany reports keys it could not remove', async () => {
    const { dir, cache } = await setup()
    await cache.set('a', 1)
    // A directory where the entry file should be: unlink fails with EISDIR/EPERM, not ENOENT.
    await mkdir(entryPath(dir, 'stuck'), { recursive: true })
    await assert.rejects(cache.deleteMany(['a', 'stuck']), (error: unknown) => {
      assert.ok(error instanceof DeleteManyError)
      assert.deepEqual(error.keys, ['stuck'])
      return true
    })
    assert.equal(await cache.get('a'), undefined, 'the other key was still deleted')
    const lenient = new FileSystemCache({ dir, ignoreDeleteManyErrors: true, logger: silent })
    assert.deepEqual(await lenient.deleteMany(['stuck', 'gone']), ['gone'])
  })

  test('clear removes entries and stale temp files, nothing else', async () => {
    const { dir, cache } = await setup()
    await cache.setMany([
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ])
    await writeFile(join(dir, 'README'), 'not a cache entry')
    const sub = join(dir, 'ab')
    await mkdir(sub, { recursive: true })
    await writeFile(join(sub, 'notes.txt'), 'foreign')
    await writeFile(join(sub, '.tmp-1-abcdef'), 'left by a crash')
    const old = new Date(Date.now() - 3_600_000)
    await utimes(join(sub, '.tmp-1-abcdef'), old, old)
    await writeFile(join(sub, '.tmp-2-abcdef'), 'a write in flight')

    assert.equal(await cache.clear(), true)
    assert.equal(await entryCount(dir), 0)
    assert.equal(await readFile(join(dir, 'README'), 'utf8'), 'not a cache entry')
    assert.equal(await exists(join(sub, 'notes.txt')), true)
    assert.equal(await exists(join(sub, '.tmp-1-abcdef')), false, 'stale temp removed')
    assert.equal(await exists(join(sub, '.tmp-2-abcdef')), true, 'fresh temp kept')
    assert.equal(await cache.get('a'), undefined)
    await cache.set('a', 'again')
    assert.equal(await cache.get('a'), 'again')
  })
})

describe('FileSystemCache: damaged entries and bad values', () => {
  test('short, foreign or undecodable files are misses and are removed', async () => {
    const warnings: string[] = []
    const { dir, cache } = await setup({
      logger: { warn: (m) => warnings.push(m), error: () => {} },
    })
    const header = Buffer.alloc(16)
    header.write('CCFS', 0, 'latin1')
    header[4] = 1
    const damage: [string, Buffer][] = [
      ['truncated', Buffer.from('CCFS')],
      ['garbage', Buffer.from('this is not a cache entry at all, just text')],
      ['bad-payload', Buffer.concat([header, Buffer.from('hello')])],
      ['empty-payload', header],
      [
        'bad-version',
        Buffer.concat([Buffer.from('CCFS\x09\0\0\0', 'latin1'), Buffer.alloc(8), Buffer.from('1')]),
      ],
    ]
    for (const [key, bytes] of damage) {
      await cache.set(key, 'good')
      await writeFile(entryPath(dir, key), bytes)
      assert.equal(await cache.get(key), undefined, key)
      assert.equal(await exists(entryPath(dir, key)), false, `${key} removed`)
    }
    await cache.set('via-has', 'good')
    await writeFile(entryPath(dir, 'via-has'), 'xx')
    assert.equal(await cache.has('via-has'), false)
    assert.equal(await exists(entryPath(dir, 'via-has')), false)
    assert.equal(warnings.length, 1, 'warned once')
  })

  test('an unserializable value throws before touching the disk', async () => {
    const { dir, cache } = await setup()
    await cache.set('k', 'old')
    const before = await filesIn(dir)
    await assert.rejects(
      cache.set('k', () => 1),
      TypeError,
    )
    await assert.rejects(cache.set('k', { f: Symbol('s') }), UnserializableValueError)
    await assert.rejects(
      cache.add('new', () => 1),
      TypeError,
    )
    await assert.rejects(
      cache.setMany([
        ['k', 'newer'],
        ['other', () => 1],
      ]),
      TypeError,
    )
    assert.equal(await cache.get('k'), 'old')
    assert.equal(await cache.has('new'), false)
    assert.equal(await cache.has('other'), false)
    assert.deepEqual(await filesIn(dir), before, 'no temp files, no new entries')
  })

  test('entry files get mode 0o600 by default, or the given mode', async () => {
    const { dir, cache } = await setup()
    await cache.set('s', 1)
    await cache.add('a', 1)
    await cache.inc('i', 1)
    for (const key of ['s', 'a', 'i']) {
      assert.equal((await stat(entryPath(dir, key))).mode & 0o777, 0o600, key)
    }
    // The mode is applied with chmod, so a restrictive umask does not narrow it.
    const umask = process.umask(0o077)
    try {
      const custom = new FileSystemCache({ dir, mode: 0o640, logger: silent })
      await custom.set('c', 1)
      await custom.add('d', 1)
      assert.equal((await stat(entryPath(dir, 'c'))).mode & 0o777, 0o640)
      assert.equal((await stat(entryPath(dir, 'd'))).mode & 0o777, 0o640)
    } finally {
      process.umask(umask)
    }
  })

  test('invalid options throw a TypeError naming the option', async () => {
    const dir = await tempDir()
    for (const threshold of [-1, 1.5, Number.NaN]) {
      assert.throws(() => new FileSystemCache({ dir, threshold }), /threshold/)
    }
    for (const mode of [-1, 0o10000, 0o200, 1.5]) {
      assert.throws(() => new FileSystemCache({ dir, mode }), /mode/)
    }
    assert.throws(() => new FileSystemCache({ dir, hashMethod: 'nope' }), /hashMethod/)
  })
})

describe('FileSystemCache: threshold', () => {
  test('stays within the threshold and evicts never-expiring entries last', async () => {
    const { dir, cache } = await setup({ threshold: 10 })
    const forever = ['f0', 'f1', 'f2', 'f3', 'f4']
    for (const key of forever) await cache.set(key, key, 0)
    await Promise.all(Array.from({ length: 25 }, (_, i) => cache.set(`k${i}`, i, 60 + i)))
    assert.ok((await entryCount(dir)) <= 10, `${await entryCount(dir)} files`)
    for (const key of forever) assert.equal(await cache.get(key), key, key)
  })

  test('evicts expired entries first, then the soonest to expire', async () => {
    const { dir, cache, time } = await setup({ threshold: 10 })
    for (let i = 0; i < 6; i++) await cache.set(`old${i}`, i, 1)
    time.now += 2_000
    for (let i = 0; i < 5; i++) await cache.set(`live${i}`, i, 100)
    // The 11th file triggered a prune: the 6 expired went, the live ones stayed.
    assert.equal(await entryCount(dir), 5)
    for (let i = 0; i < 5; i++) assert.equal(await cache.get(`live${i}`), i)

    await cache.clear()
    for (let i = 0; i < 11; i++) await cache.set(`t${i}`, i, 10 + i)
    assert.equal(await entryCount(dir), 9, 'pruned to 90% of the threshold')
    assert.equal(await cache.has('t0'), false)
    assert.equal(await cache.has('t1'), false)
    for (let i = 2; i < 11; i++) assert.equal(await cache.has(`t${i}`), true, `t${i}`)
  })

  test('the initial count comes from the files already there', async () => {
    const dir = await tempDir()
    const unlimited = new FileSystemCache({ dir, threshold: 0, logger: silent })
    for (let i = 0; i < 30; i++) await unlimited.set(`k${i}`, i)
    assert.equal(await entryCount(dir), 30, 'threshold 0 means unlimited')
    const bounded = new FileSystemCache({ dir, threshold: 10, logger: silent })
    await bounded.set('one-more', 1)
    assert.ok((await entryCount(dir)) <= 10)
  })
})

describe('FileSystemCache: sharing and counters', () => {
  test('two instances on one directory see each other', async () => {
    const { dir, cache: a, time } = await setup()
    const b = new FileSystemCache({ dir, logger: silent, clock: () => time.now })
    await a.set('k', { from: 'a' })
    assert.deepEqual(await b.get('k'), { from: 'a' })
    assert.equal(await b.add('k', 'b'), false)
    assert.equal(await b.delete('k'), true)
    assert.equal(await a.get('k'), undefined)
    assert.equal(await b.add('k', 'b'), true)
    assert.equal(await a.get('k'), 'b')
  })

  test('100 concurrent increments in one process add up', async () => {
    const { cache } = await setup()
    const results = await Promise.all(Array.from({ length: 100 }, () => cache.inc('n', 1)))
    assert.equal(await cache.get('n'), 100)
    assert.deepEqual(
      [...results].sort((x, y) => x - y),
      Array.from({ length: 100 }, (_, i) => i + 1),
    )
    assert.equal(await cache.inc('n', -30), 70)
  })

  test('inc keeps the expiry; a new counter gets the default timeout', async () => {
    const { cache, time } = await setup({ defaultTimeout: 100 })
    await cache.set('c', 5, 10)
    time.now += 5_000
    assert.equal(await cache.inc('c', 2), 7)
    time.now += 5_000
    assert.equal(await cache.get('c'), undefined, 'the original 10 s still apply')
    assert.equal(await cache.inc('fresh', 3), 3)
    time.now += 99_999
    assert.equal(await cache.get('fresh'), 3)
    time.now += 1
    assert.equal(await cache.get('fresh'), undefined)
  })

  test('inc on a non-integer throws NotAnIntegerError', async () => {
    const { cache } = await setup()
    await cache.set('s', 'text')
    await assert.rejects(cache.inc('s', 1), NotAnIntegerError)
    await cache.set('f', 1.5)
    await assert.rejects(cache.inc('f', 1), NotAnIntegerError)
    assert.equal(await cache.get('s'), 'text')
  })

  test('two processes writing and reading one directory', { timeout: 120_000 }, async () => {
    const dir = await tempDir()
    const worker = fileURLToPath(new URL('./fixtures/filesystem-worker.ts', import.meta.url))
    const cwd = fileURLToPath(new URL('..', import.meta.url))
    const spawnWorker = (id: string) =>
      run(process.execPath, ['--import', 'tsx', worker, dir, id, '300'], { cwd, timeout: 110_000 })
    const reader = new FileSystemCache({ dir, threshold: 15, logger: silent })
    let done = false
    const torn: string[] = []
    const readLoop = (async () => {
      while (!done) {
        const v = (await reader.get(`k${Math.floor(Math.random() * 20)}`)) as
          | { i: number; blob: Buffer }
          | undefined
        if (v !== undefined && !v.blob.equals(Buffer.alloc(v.blob.length, v.i % 251))) {
          torn.push(String(v.i))
        }
        await new Promise((resolve) => setImmediate(resolve))
      }
    })()
    const outputs = await Promise.all([spawnWorker('1'), spawnWorker('2')]).finally(() => {
      done = true
    })
    await readLoop
    for (const { stdout } of outputs) {
      const report = JSON.parse(stdout) as { id: string; hits: number; problems: string[] }
      assert.deepEqual(report.problems, [], `worker ${report.id}`)
      assert.ok(report.hits > 0, `worker ${report.id} read something`)
    }
    assert.deepEqual(torn, [])
    const files = await filesIn(dir)
    assert.deepEqual(
      files.filter((n) => n.startsWith('.tmp-')),
      [],
      'no temp files left',
    )
    assert.ok(files.length <= 24, `${files.length} files for a threshold of 15 (approximate)`)
  })
})

describe('FileSystemCache: configuration', () => {
  test('factory reads CACHE_DIR, CACHE_THRESHOLD and the options', async () => {
    const dir = await tempDir()
    const cache = FileSystemCache.factory(undefined, { CACHE_DIR: dir, CACHE_THRESHOLD: 5 }, [], {
      defaultTimeout: 300,
      ignoreDeleteManyErrors: false,
      mode: 0o640,
      logger: silent,
    })
    assert.ok(cache instanceof FileSystemCache)
    assert.equal(cache.dir, dir)
    assert.equal(cache.threshold, 5)
    assert.equal(cache.mode, 0o640)
    assert.equal(cache.defaultTimeout, 300)
    await cache.set('k', 'v')
    assert.equal(await readFile(entryPath(dir, 'k')).then(() => true), true, 'sha256 names')
    for (let i = 0; i < 10; i++) await cache.set(`x${i}`, i)
    assert.ok((await entryCount(dir)) <= 5)
  })

  test('factory: CACHE_ARGS[0] wins, CACHE_FILE_HASH_METHOD names files, subclasses are built', async () => {
    const dir = await tempDir()
    class Custom extends FileSystemCache {}
    const cache = Custom.factory(
      undefined,
      { CACHE_DIR: '/nonexistent/never', CACHE_FILE_HASH_METHOD: 'md5' },
      [dir],
      { defaultTimeout: 300, ignoreDeleteManyErrors: false, logger: silent },
    )
    assert.ok(cache instanceof Custom)
    assert.equal(cache.dir, dir)
    await cache.set('k', 'v')
    assert.equal(await exists(entryPath(dir, 'k', 'md5')), true)
    assert.throws(
      () =>
        FileSystemCache.factory(undefined, { CACHE_DIR: dir, CACHE_FILE_HASH_METHOD: 'nope' }, [], {
          defaultTimeout: 300,
          ignoreDeleteManyErrors: false,
        }),
      (error: unknown) => error instanceof ConfigError && error.key === 'CACHE_FILE_HASH_METHOD',
    )
  })

  test('a missing directory is a ConfigError naming CACHE_DIR', () => {
    const isDirError = (error: unknown) => error instanceof ConfigError && error.key === 'CACHE_DIR'
    assert.throws(
      () =>
        FileSystemCache.factory(undefined, {}, [], {
          defaultTimeout: 300,
          ignoreDeleteManyErrors: false,
        }),
      isDirError,
    )
    assert.throws(() => new FileSystemCache({} as FileSystemCacheOptions), isDirError)
    assert.throws(
      () => new FileSystemCache({ dir: 42 } as unknown as FileSystemCacheOptions),
      isDirError,
    )
  })
})
