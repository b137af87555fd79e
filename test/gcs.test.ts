/**
 * GoogleCloudStorageCache, on the real `@google-cloud/storage` client, against
 * the small GCS JSON API test server of test/servers/gcs.ts (in memory, on a
 * loopback port): the contract suite (directly and through the factory),
 * expiry, object names, atomic add and inc, clear with pagination, failures
 * (a hanging, failing and stopped server), configuration errors, and the
 * package missing.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, describe, test } from 'node:test'
import { Storage } from '@google-cloud/storage'
import {
  GoogleCloudStorageCache,
  type GoogleCloudStorageCacheOptions,
  GoogleCloudStorageError,
} from '../src/backends/gcs/index.js'
import type { BackendFactoryOptions } from '../src/core/backend.js'
import { encodeValue } from '../src/core/codec.js'
import { ConfigError, DeleteManyError, NotAnIntegerError } from '../src/core/errors.js'
import { objectName, StoreTimeoutError } from '../src/core/objectstore.js'
import { v8Serializer } from '../src/core/serializers.js'
import { Cache, TieredCache } from '../src/index.js'
import { backendContract } from '../src/testing/index.js'
import { collectingLogger, Lifetimes, runWithoutPackage, silentLogger } from './helpers.js'
import { type GcsServer, startGcsServer, TEST_BUCKET } from './servers/gcs.js'

const silent = silentLogger
const life = new Lifetimes()
const track = <T extends { close(): Promise<unknown> }>(thing: T): T => life.track(thing)
/** The server most tests share; each test uses its own key prefix. */
const shared = life.lazily(
  () => startGcsServer(),
  (s) => s.stop(),
)
/** A server of the test's own (hung, failed or stopped), stopped after the file. */
async function ownServer(): Promise<GcsServer> {
  const s = await startGcsServer()
  life.defer(() => s.stop())
  return s
}
after(() => life.stopAll())

function make(
  server: GcsServer,
  options: GoogleCloudStorageCacheOptions = {},
): GoogleCloudStorageCache {
  return track(
    new GoogleCloudStorageCache({
      bucket: TEST_BUCKET,
      apiEndpoint: server.endpoint,
      anonymous: true,
      logger: silent,
      // A deadline for a hang, not a race: a busy machine may take seconds to answer.
      timeout: 20_000,
      ...options,
    }),
  )
}

function factoryOptions(extra: Record<string, unknown> = {}): BackendFactoryOptions {
  return { defaultTimeout: 300, ignoreDeleteManyErrors: false, logger: silent, ...extra }
}

/** Asserts that `fn` throws a ConfigError naming `key`. */
function throwsConfig(fn: () => unknown, key: string, message?: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ConfigError, String(error))
    assert.equal(error.key, key, error.message)
    if (message) assert.match(error.message, message)
    return true
  })
}

/** Polls `check` every 5 ms, failing after 10 s (a deadline for a hang, not a latency bound). */
async function waitFor(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`${what}: not within 10 s`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

const expiresOf = (s: GcsServer, name: string) =>
  Number(s.object(name)?.metadata?.['cachette-expires'])

// ---- the contract suite --------------------------------------------------------

backendContract('GoogleCloudStorageCache (test server, key prefix)', {
  create: async () => make(await shared(), { keyPrefix: 'contract/' }),
  largeValueBytes: 5 << 20,
})

backendContract('GoogleCloudStorageCache through new Cache() and its factory', {
  create: async () => {
    const s = await shared()
    const cache = new Cache({
      CACHE_TYPE: GoogleCloudStorageCache,
      CACHE_GCS_BUCKET: TEST_BUCKET,
      CACHE_KEY_PREFIX: 'factory_',
      CACHE_OPTIONS: { api_endpoint: s.endpoint, anonymous: true },
      logger: silent,
    })
    return cache.ready()
  },
  largeValueBytes: 5 << 20,
})

// ---- configuration -------------------------------------------------------------

describe('GoogleCloudStorageCache: configuration', () => {
  test('the factory reads CACHE_GCS_*: the GCS prefix wins, delete-on-read, the default timeout', async () => {
    const s = await shared()
    const cache = new Cache({
      CACHE_TYPE: GoogleCloudStorageCache,
      CACHE_GCS_BUCKET: TEST_BUCKET,
      CACHE_KEY_PREFIX: 'ignored_',
      CACHE_GCS_KEY_PREFIX: 'gcs-prefix/',
      CACHE_GCS_DELETE_EXPIRED_ON_READ: true,
      CACHE_DEFAULT_TIMEOUT: 120,
      CACHE_OPTIONS: { api_endpoint: s.endpoint, anonymous: true, timeout: 1500, concurrency: 4 },
      logger: silent,
    })
    const backend = track((await cache.ready()) as GoogleCloudStorageCache)
    assert.ok(backend instanceof GoogleCloudStorageCache)
    assert.equal(backend.bucket, TEST_BUCKET)
    assert.equal(backend.keyPrefix, 'gcs-prefix/')
    assert.equal(backend.deleteExpiredOnRead, true)
    assert.equal(backend.timeout, 1500)
    assert.equal(backend.concurrency, 4)
    assert.equal(backend.defaultTimeout, 120)
    const before = Date.now()
    assert.equal(await cache.set('k', 'v'), true)
    assert.ok(s.object('gcs-prefix/k') !== undefined)
    assert.equal(s.object('ignored_k'), undefined)
    const expires = expiresOf(s, 'gcs-prefix/k')
    assert.ok(expires >= before + 120_000 && expires <= Date.now() + 120_000, `${expires}`)
    assert.equal(await cache.get('k'), 'v')
  })

  test('camelCase config keys and Flask-Caching option spellings work too', async () => {
    const s = await shared()
    const cache = new Cache({
      type: GoogleCloudStorageCache,
      gcsBucket: TEST_BUCKET,
      keyPrefix: 'camel/',
      options: {
        apiEndpoint: s.endpoint,
        anonymous: true,
        delete_expired_objects_on_read: true,
        page_size: 10,
      },
      logger: silent,
    })
    const backend = track((await cache.ready()) as GoogleCloudStorageCache)
    assert.equal(backend.keyPrefix, 'camel/')
    assert.equal(backend.deleteExpiredOnRead, true)
    assert.equal(await cache.set('k', 1), true)
    assert.equal(await cache.get('k'), 1)
  })

  test('unknown CACHE_OPTIONS go to the Storage constructor (userAgent reaches the server)', async () => {
    const s = await ownServer()
    const backend = GoogleCloudStorageCache.factory(
      undefined,
      { CACHE_GCS_BUCKET: TEST_BUCKET, CACHE_KEY_PREFIX: 'ua/' },
      [],
      factoryOptions({ apiEndpoint: s.endpoint, anonymous: true, userAgent: 'cachette-test/1.0' }),
    )
    track(backend)
    await backend.set('k', 1)
    const ua = s.requests.at(-1)?.headers['user-agent'] ?? ''
    assert.match(String(ua), /^cachette-test\/1\.0 /)
  })

  test('errors name the key at fault', () => {
    const base = { apiEndpoint: 'http://127.0.0.1:1', anonymous: true }
    throwsConfig(() => new GoogleCloudStorageCache(base), 'CACHE_GCS_BUCKET', /needs a bucket/)
    throwsConfig(() => new GoogleCloudStorageCache({ ...base, bucket: '' }), 'CACHE_GCS_BUCKET')
    throwsConfig(
      () => new GoogleCloudStorageCache({ ...base, bucket: 'My_Bucket' }),
      'CACHE_GCS_BUCKET',
      /not a bucket name/,
    )
    throwsConfig(
      () => GoogleCloudStorageCache.factory(undefined, {}, [], factoryOptions(base)),
      'CACHE_GCS_BUCKET',
    )
    const ok = { ...base, bucket: TEST_BUCKET }
    throwsConfig(
      () => new GoogleCloudStorageCache({ ...ok, keyPrefix: 'bad\nprefix' }),
      'CACHE_KEY_PREFIX',
    )
    throwsConfig(
      () => new GoogleCloudStorageCache({ ...ok, keyPrefix: 'p'.repeat(1000) }),
      'CACHE_KEY_PREFIX',
    )
    throwsConfig(
      () =>
        GoogleCloudStorageCache.factory(
          undefined,
          { CACHE_GCS_BUCKET: TEST_BUCKET, CACHE_GCS_KEY_PREFIX: 'tab\there' },
          [],
          factoryOptions(base),
        ),
      'CACHE_GCS_KEY_PREFIX',
    )
    throwsConfig(
      () =>
        GoogleCloudStorageCache.factory(
          undefined,
          { CACHE_GCS_BUCKET: TEST_BUCKET, CACHE_GCS_DELETE_EXPIRED_ON_READ: 'yes' },
          [],
          factoryOptions(base),
        ),
      'CACHE_GCS_DELETE_EXPIRED_ON_READ',
    )
    for (const [option, value] of [
      ['timeout', -1],
      ['timeout', 0],
      ['timeout', '300'],
      ['timeout', Number.POSITIVE_INFINITY],
      ['concurrency', 0],
      ['concurrency', 1.5],
      ['pageSize', 5000],
      ['anonymous', 'yes'],
      ['allowFlush', 1],
      ['apiEndpoint', 'ftp://example.com'],
      ['apiEndpoint', 'http://'],
      ['projectId', 42],
      ['client', { notAStorage: true }],
      ['clientOptions', 'nope'],
    ] as const) {
      throwsConfig(
        () => new GoogleCloudStorageCache({ ...ok, [option]: value }),
        'CACHE_OPTIONS',
        new RegExp(option),
      )
    }
    throwsConfig(
      () =>
        GoogleCloudStorageCache.factory(
          undefined,
          { CACHE_GCS_BUCKET: TEST_BUCKET },
          [],
          factoryOptions({ ...base, bucket: 'other' }),
        ),
      'CACHE_OPTIONS',
      /CACHE_GCS_BUCKET/,
    )
    throwsConfig(
      () =>
        new GoogleCloudStorageCache({
          bucket: TEST_BUCKET,
          client: new Storage(),
          apiEndpoint: 'http://127.0.0.1:1',
        }),
      'CACHE_OPTIONS',
      /apiEndpoint/,
    )
  })

  test('an existing Storage client is shared, and close() leaves it working', async () => {
    const s = await shared()
    const client = new Storage({ apiEndpoint: s.endpoint, projectId: 'test' })
    const one = new GoogleCloudStorageCache({ bucket: TEST_BUCKET, client, keyPrefix: 'shared/' })
    const two = make(s, { client: undefined, keyPrefix: 'shared/' })
    await one.set('k', 'from one')
    assert.equal(await two.get('k'), 'from one')
    await one.close()
    await assert.rejects(one.get('k'), /closed/)
    const again = track(
      new GoogleCloudStorageCache({ bucket: TEST_BUCKET, client, keyPrefix: 'shared/' }),
    )
    assert.equal(await again.get('k'), 'from one')
    const [exists] = await client.bucket(TEST_BUCKET).file('shared/k').exists()
    assert.equal(exists, true)
  })

  test('without @google-cloud/storage: importing works, constructing names the package', async () => {
    const out = await runWithoutPackage(
      '@google-cloud/storage',
      `
      import { Cache } from './src/index.ts'
      import { GoogleCloudStorageCache } from './src/backends/gcs/index.ts'
      const out = []
      for (const make of [
        () => new GoogleCloudStorageCache({ bucket: 'my-bucket' }),
        () => new Cache({ CACHE_TYPE: GoogleCloudStorageCache, CACHE_GCS_BUCKET: 'my-bucket' }).backend,
      ]) {
        try { make(); out.push('constructed') } catch (e) { out.push([e.name, e.packageName, e.message]) }
      }
      try { new GoogleCloudStorageCache({}) } catch (e) { out.push([e.name, e.key]) }
      console.log(JSON.stringify(out))`,
    )
    const message =
      'GoogleCloudStorageCache needs the package "@google-cloud/storage": npm install @google-cloud/storage'
    assert.deepEqual(out, [
      ['MissingDependencyError', '@google-cloud/storage', message],
      ['MissingDependencyError', '@google-cloud/storage', message],
      ['ConfigError', 'CACHE_GCS_BUCKET'],
    ])
  })
})

// ---- storage format and expiry ------------------------------------------------------

describe('GoogleCloudStorageCache: objects and expiry', () => {
  test('an object per key: the encoded bytes, octet-stream, MD5 sent, customTime and cachette-expires', async () => {
    const s = await shared()
    const cache = make(s, { keyPrefix: 'format/' })
    s.clearLog()
    const before = Date.now()
    await cache.set('v', { a: [1, 2] }, 60)
    const after = Date.now()
    const obj = s.object('format/v')
    assert.ok(obj !== undefined)
    assert.ok(obj.data.equals(encodeValue({ a: [1, 2] }, v8Serializer)))
    assert.equal(obj.contentType, 'application/octet-stream')
    const expires = Number(obj.metadata?.['cachette-expires'])
    assert.ok(expires >= before + 60_000 && expires <= after + 60_000, `${expires}`)
    assert.equal(obj.customTime, new Date(expires).toISOString())
    const upload = s.requests.find((r) => r.method === 'POST')
    assert.equal(upload?.query.uploadType, 'multipart', 'one request, metadata and bytes together')
    assert.equal(upload?.upload?.md5Hash, createHash('md5').update(obj.data).digest('base64'))

    await cache.set('forever', 'f', 0)
    const forever = s.object('format/forever')
    assert.equal(forever?.customTime, undefined)
    assert.equal(forever?.metadata, undefined)
    assert.ok(forever?.data.equals(Buffer.from('"f')))
  })

  test('a hit is two requests (metadata, then that generation), a miss and has one', async () => {
    const s = await shared()
    const cache = make(s, { keyPrefix: 'requests/' })
    await cache.set('k', 'v')
    const generation = s.object('requests/k')?.generation
    s.clearLog()
    assert.equal(await cache.get('k'), 'v')
    assert.deepEqual(
      s.requests.map((r) => [r.method, r.path, r.query.alt, r.query.generation]),
      [
        ['GET', `/storage/v1/b/${TEST_BUCKET}/o/requests/k`, undefined, undefined],
        ['GET', `/storage/v1/b/${TEST_BUCKET}/o/requests/k`, 'media', generation],
      ],
    )
    s.clearLog()
    assert.equal(await cache.get('nothing'), undefined)
    assert.equal(await cache.has('k'), true)
    assert.equal(s.requests.length, 2)
    assert.ok(s.requests.every((r) => r.query.alt === undefined))
  })

  test('an expired object is a miss while the bucket still holds it', async () => {
    const s = await shared()
    const cache = make(s, { keyPrefix: 'expiry/' })
    await cache.set('old', 'value', 60)
    assert.equal(await cache.get('old'), 'value')
    const past = Date.now() - 1000
    s.editObject('expiry/old', {
      customTime: new Date(past).toISOString(),
      metadata: { 'cachette-expires': String(past) },
    })
    assert.equal(await cache.get('old'), undefined)
    assert.equal(await cache.has('old'), false)
    assert.deepEqual(await cache.getMany(['old']), [undefined])
    assert.ok(s.object('expiry/old') !== undefined, 'still in the bucket')
    assert.equal(await cache.delete('old'), false, 'an expired entry did not exist')
    assert.equal(s.object('expiry/old'), undefined, 'but delete removed the object')
  })

  test('deleteExpiredOnRead deletes the expired object when read', async () => {
    const s = await shared()
    const cache = make(s, { keyPrefix: 'purge/', deleteExpiredOnRead: true })
    await cache.set('old', 'value', 60)
    await cache.set('live', 'value', 60)
    s.editObject('purge/old', { metadata: { 'cachette-expires': String(Date.now() - 1) } })
    assert.equal(await cache.get('old'), undefined)
    assert.equal(s.object('purge/old'), undefined, 'deleted on read')
    await cache.set('old2', 'value', 60)
    s.editObject('purge/old2', { metadata: { 'cachette-expires': String(Date.now() - 1) } })
    assert.equal(await cache.has('old2'), false)
    assert.equal(s.object('purge/old2'), undefined, 'has deletes it too')
    assert.equal(await cache.get('live'), 'value')
    assert.ok(s.object('purge/live') !== undefined)
  })

  test('objects with only customTime (as Flask-Caching writes them) expire by it', async () => {
    const s = await shared()
    const cache = make(s, { keyPrefix: 'flask/' })
    const data = encodeValue('x', v8Serializer)
    s.putObject('flask/past', data, { customTime: new Date(Date.now() - 1000).toISOString() })
    s.putObject('flask/future', data, { customTime: new Date(Date.now() + 60_000).toISOString() })
    s.putObject('flask/none', data)
    assert.deepEqual(await cache.getMany(['past', 'future', 'none']), [undefined, 'x', 'x'])
  })

  test('an entry that cannot be decoded is a miss, warned about once', async () => {
    const s = await shared()
    const logger = collectingLogger()
    const cache = make(s, { keyPrefix: 'corrupt/', logger })
    s.putObject('corrupt/a', Buffer.from('{"json": "from another program"}'))
    s.putObject('corrupt/b', Buffer.from('not cachette'))
    assert.equal(await cache.get('a'), undefined)
    assert.equal(await cache.get('b'), undefined)
    assert.equal(logger.warnings.filter((w) => w.includes('CACHETTE_GCS_CORRUPT_ENTRY')).length, 1)
  })

  test('bytes that do not match the stored CRC32C are an error, never a value', async () => {
    const s = await shared()
    const cache = make(s, { keyPrefix: 'crc/' })
    await cache.set('k', 'value')
    const obj = s.object('crc/k')
    assert.ok(obj !== undefined)
    obj.crc32c = Buffer.from([1, 2, 3, 4]).toString('base64')
    await assert.rejects(cache.get('k'), GoogleCloudStorageError)
  })
})

// ---- object names ----------------------------------------------------------------

describe('GoogleCloudStorageCache: keys and object names', () => {
  test('slashes and unicode are kept; long, control-character, `//` and ~h~ keys are hashed', async () => {
    const s = await shared()
    const cache = make(s, { keyPrefix: 'names/' })
    const long = 'k'.repeat(2000)
    const hashed = (key: string) =>
      `names/~h~${createHash('sha256').update(key, 'utf16le').digest('hex')}`
    // Four 250-byte segments: 1,009 bytes with the prefix, within GCS's 1,024.
    const deep = Array.from({ length: 4 }, (_, i) => String(i).repeat(250)).join('/')
    const tooDeep = `${deep}/${'x'.repeat(20)}`
    const cases: [string, string][] = [
      ['a/b/c', 'names/a/b/c'],
      ['ключ ☃ 日本/🎉', 'names/ключ ☃ 日本/🎉'],
      ['with space?&#%+=', 'names/with space?&#%+='],
      [deep, `names/${deep}`],
      [tooDeep, hashed(tooDeep)],
      [long, hashed(long)],
      ['view//users/1', hashed('view//users/1')],
      ['trailing/', hashed('trailing/')],
      ['new\nline', hashed('new\nline')],
      ['tab\t', hashed('tab\t')],
      ['\ud800lone', hashed('\ud800lone')],
      [`~h~${'0'.repeat(64)}`, hashed(`~h~${'0'.repeat(64)}`)],
    ]
    for (const [i, [key, name]] of cases.entries()) {
      assert.equal(cache.objectName(key), name, JSON.stringify(key).slice(0, 40))
      assert.equal(objectName('names/', key), name)
      assert.equal(await cache.set(key, i), true)
      assert.ok(s.object(name) !== undefined, `stored as ${name.slice(0, 40)}`)
      assert.equal(await cache.get(key), i)
      assert.equal(await cache.has(key), true)
    }
    assert.equal(s.names('names/').length, cases.length)
    assert.deepEqual(
      await cache.deleteMany(cases.map(([k]) => k)),
      cases.map(([k]) => k),
    )
    assert.deepEqual(s.names('names/'), [])
  })
})

// ---- atomic add and inc -------------------------------------------------------------

describe('GoogleCloudStorageCache: atomic add and inc', () => {
  test('of 20 concurrent adds exactly one wins, and its value stays', async () => {
    const s = await shared()
    const cache = make(s, { keyPrefix: 'add/' })
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => cache.add('race', i)))
    assert.equal(results.filter(Boolean).length, 1)
    assert.equal(await cache.get('race'), results.indexOf(true))
    const creates = s.requests.filter(
      (r) =>
        r.method === 'POST' && r.query.name === 'add/race' && r.query.ifGenerationMatch === '0',
    )
    assert.equal(creates.length, 20, 'every add is a create with ifGenerationMatch=0')
  })

  test('add replaces an expired object atomically, and not a live one', async () => {
    const s = await shared()
    const cache = make(s, { keyPrefix: 'add2/' })
    await cache.set('k', 'old', 60)
    assert.equal(await cache.add('k', 'new'), false)
    assert.equal(await cache.get('k'), 'old')
    s.editObject('add2/k', { metadata: { 'cachette-expires': String(Date.now() - 1) } })
    const expiredGeneration = s.object('add2/k')?.generation
    s.clearLog()
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => cache.add('k', i)))
    assert.equal(results.filter(Boolean).length, 1, 'one of the adds replaced the expired entry')
    assert.equal(await cache.get('k'), results.indexOf(true))
    assert.ok(
      s.requests.some(
        (r) => r.method === 'POST' && r.query.ifGenerationMatch === expiredGeneration,
      ),
      'the replacement was conditional on the expired generation',
    )
  })

  test('inc is atomic across instances (as across processes), by generation preconditions', async () => {
    const s = await shared()
    const caches = Array.from({ length: 5 }, () => make(s, { keyPrefix: 'inc/' }))
    s.clearLog()
    const up = await Promise.all(
      caches.flatMap((c) => Array.from({ length: 10 }, () => c.inc('n', 1))),
    )
    assert.equal(await caches[0]?.get('n'), 50)
    assert.deepEqual(
      [...up].sort((a, b) => a - b),
      Array.from({ length: 50 }, (_, i) => i + 1),
      'each call resolves the value its own increment produced',
    )
    const writes = s.requests.filter((r) => r.method === 'POST' && r.query.name === 'inc/n')
    assert.ok(
      writes.every((r) => r.query.ifGenerationMatch !== undefined),
      'every write is conditional',
    )
    assert.ok(
      writes.some((r) => r.query.ifGenerationMatch !== '0'),
      'and updates match the generation',
    )
    assert.ok(
      writes.some((r) => r.status === 412),
      'some writes lost the race (412) and were retried',
    )
    await Promise.all(caches.flatMap((c) => Array.from({ length: 4 }, () => c.inc('n', -3))))
    assert.equal(await caches[0]?.get('n'), -10)
  })

  test('concurrent increments in one instance are combined into one write', async () => {
    const s = await shared()
    const cache = make(s, { keyPrefix: 'inc4/' })
    await cache.set('n', 100)
    s.clearLog()
    const results = await Promise.all([
      cache.inc('n', 1),
      cache.inc('n', 10),
      cache.inc('n', -5),
      cache.inc('other', 7),
    ])
    assert.deepEqual(results, [101, 111, 106, 7], 'as if they had run one after another')
    assert.equal(await cache.get('n'), 106)
    assert.equal(s.requests.filter((r) => r.method === 'POST').length, 2, 'one write per key')
    await cache.set('s', 'text')
    const failing = await Promise.allSettled([cache.inc('s', 1), cache.inc('s', 2)])
    assert.ok(
      failing.every((r) => r.status === 'rejected' && r.reason instanceof NotAnIntegerError),
    )
    assert.equal(await cache.inc('s2', 1), 1, 'the queue is empty again')
  })

  test('a new counter gets the default timeout; an existing one keeps its expiry', async () => {
    const s = await shared()
    const cache = make(s, { keyPrefix: 'inc2/', defaultTimeout: 100 })
    const before = Date.now()
    assert.equal(await cache.inc('fresh', 2), 2)
    const fresh = expiresOf(s, 'inc2/fresh')
    assert.ok(fresh >= before + 100_000 && fresh <= Date.now() + 100_000, `${fresh}`)
    await cache.set('kept', 5, 30)
    const kept = expiresOf(s, 'inc2/kept')
    assert.equal(await cache.inc('kept', 1), 6)
    assert.equal(expiresOf(s, 'inc2/kept'), kept)
    await cache.set('forever', 1, 0)
    assert.equal(await cache.inc('forever', 1), 2)
    assert.equal(s.object('inc2/forever')?.metadata, undefined)
    // An expired counter starts again from the delta.
    s.editObject('inc2/kept', { metadata: { 'cachette-expires': String(Date.now() - 1) } })
    assert.equal(await cache.inc('kept', 1), 1)
  })

  test('inc on a non-integer rejects with NotAnIntegerError and leaves the value', async () => {
    const s = await shared()
    const cache = make(s, { keyPrefix: 'inc3/' })
    await cache.set('s', 'text')
    await cache.set('f', 1.5)
    await assert.rejects(cache.inc('s', 1), NotAnIntegerError)
    await assert.rejects(cache.inc('f', 1), NotAnIntegerError)
    await assert.rejects(cache.inc('n', 0.5), NotAnIntegerError)
    assert.equal(await cache.get('s'), 'text')
    assert.equal(await cache.get('f'), 1.5)
  })
})

// ---- clear ---------------------------------------------------------------------------

describe('GoogleCloudStorageCache: clear', () => {
  test('deletes only the objects under the prefix, page after page', async () => {
    const s = await ownServer()
    const cache = make(s, { keyPrefix: 'app/', pageSize: 4, concurrency: 3 })
    const other = make(s, { keyPrefix: 'app2/' })
    await cache.setMany(Array.from({ length: 11 }, (_, i) => [`k${i}`, i] as const))
    await other.set('k', 'other app')
    s.putObject('outside', Buffer.from('"x'))
    s.clearLog()
    assert.equal(await cache.clear(), true)
    assert.deepEqual(s.names('app/'), [])
    assert.deepEqual(s.names(), ['app2/k', 'outside'])
    const lists = s.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/o'))
    assert.equal(lists.length, 3, '11 objects in pages of 4')
    assert.ok(lists.every((r) => r.query.prefix === 'app/' && r.query.maxResults === '4'))
    assert.equal(lists[0]?.query.pageToken, undefined)
    assert.ok(lists[1]?.query.pageToken && lists[2]?.query.pageToken)
    assert.equal(s.requests.filter((r) => r.method === 'DELETE').length, 11)
    assert.equal(await other.get('k'), 'other app')
  })

  test('follows the pages the server chooses, even when smaller than asked', async () => {
    const s = await ownServer()
    s.maxPageSize = 5
    const cache = make(s, { keyPrefix: 'p/' })
    await cache.setMany(Array.from({ length: 23 }, (_, i) => [`k${i}`, i] as const))
    s.clearLog()
    assert.equal(await cache.clear(), true)
    assert.deepEqual(s.names(), [])
    assert.equal(s.requests.filter((r) => r.path.endsWith('/o')).length, 5)
  })

  test('without a prefix it refuses, naming CACHE_KEY_PREFIX; allowFlush empties the bucket with a warning', async () => {
    const s = await ownServer()
    s.createBucket('flush-me')
    const refusing = make(s, { bucket: 'flush-me' })
    await refusing.set('a', 1)
    await assert.rejects(refusing.clear(), (error: unknown) => {
      assert.ok(error instanceof ConfigError)
      assert.equal(error.key, 'CACHE_KEY_PREFIX')
      return true
    })
    assert.deepEqual(s.names('', 'flush-me'), ['a'])
    const logger = collectingLogger()
    const flushing = make(s, { bucket: 'flush-me', allowFlush: true, logger })
    s.putObject('not/ours', Buffer.from('1'), { bucket: 'flush-me' })
    assert.equal(await flushing.clear(), true)
    assert.deepEqual(s.names('', 'flush-me'), [])
    assert.equal(logger.warnings.filter((w) => w.includes('CACHETTE_GCS_FLUSH')).length, 1)
    await flushing.clear()
    assert.equal(logger.warnings.length, 1, 'warned once')
  })

  test('a delete that fails makes clear reject after trying the others', async () => {
    const s = await ownServer()
    const cache = make(s, { keyPrefix: 'c/' })
    await cache.setMany([
      ['a', 1],
      ['stuck', 2],
      ['b', 3],
    ])
    s.failWith(503, (r) => r.method === 'DELETE' && r.path.endsWith('/stuck'))
    await assert.rejects(cache.clear(), /1 objects could not be deleted/)
    assert.deepEqual(s.names(), ['c/stuck'])
  })
})

// ---- deleteMany and setMany -------------------------------------------------------------

describe('GoogleCloudStorageCache: multi-key operations', () => {
  test('deleteMany: a failed key is a DeleteManyError naming it, unless ignoreDeleteManyErrors', async () => {
    const s = await ownServer()
    const strict = make(s, { keyPrefix: 'm/' })
    const lenient = make(s, { keyPrefix: 'm/', ignoreDeleteManyErrors: true })
    await strict.setMany([
      ['a', 1],
      ['bad', 2],
      ['c', 3],
    ])
    s.failWith(503, (r) => r.method === 'DELETE' && r.path.endsWith('/bad'))
    await assert.rejects(strict.deleteMany(['a', 'bad', 'missing']), (error: unknown) => {
      assert.ok(error instanceof DeleteManyError)
      assert.deepEqual(error.keys, ['bad'])
      return true
    })
    assert.deepEqual(await lenient.deleteMany(['bad', 'c']), ['c'])
    assert.deepEqual(s.names(), ['m/bad'])
    s.failWith(503)
    await assert.rejects(
      strict.deleteMany(['bad']),
      (error: unknown) => error instanceof GoogleCloudStorageError && error.status === 503,
      'when every delete failed, the store error itself',
    )
  })

  test('setMany runs at most `concurrency` uploads at a time; a partial failure resolves the keys stored', async () => {
    const s = await ownServer()
    const logger = collectingLogger()
    const cache = make(s, { keyPrefix: 'par/', concurrency: 4, logger })
    const keys = Array.from({ length: 10 }, (_, i) => `k${i}`)
    s.hang(true)
    const pending = cache.setMany(keys.map((k, i) => [k, i] as const))
    await waitFor(() => s.requests.length === 4, 'four uploads in flight')
    await new Promise((resolve) => setTimeout(resolve, 50))
    assert.equal(s.requests.length, 4, 'no fifth upload while four are in flight')
    // Answering again drops the four held uploads: they fail, the other six are stored.
    s.hang(false)
    const stored = await pending
    assert.deepEqual(stored, keys.slice(4))
    assert.deepEqual(
      s.names('par/'),
      keys.slice(4).map((k) => `par/${k}`),
    )
    assert.equal(logger.errors.length, 1, 'the failure is reported')
    assert.deepEqual(await cache.getMany(keys), [...Array(4).fill(undefined), 4, 5, 6, 7, 8, 9])

    s.failWith(503)
    await assert.rejects(
      cache.setMany([['x', 1]]),
      (error: unknown) => error instanceof GoogleCloudStorageError && error.status === 503,
      'nothing stored: the store error',
    )
    await assert.rejects(cache.getMany(['k4', 'k5']), GoogleCloudStorageError)
  })
})

// ---- lifecycle rule ----------------------------------------------------------------------

describe('GoogleCloudStorageCache: bucket lifecycle rule', () => {
  test('lifecycleRule() deletes objects past their customTime, under the prefix', async () => {
    const s = await shared()
    assert.deepEqual(make(s, { keyPrefix: 'cache/' }).lifecycleRule(), {
      action: { type: 'Delete' },
      condition: { daysSinceCustomTime: 0, matchesPrefix: ['cache/'] },
    })
    assert.deepEqual(make(s).lifecycleRule(), {
      action: { type: 'Delete' },
      condition: { daysSinceCustomTime: 0 },
    })
  })

  test('applyLifecycleRule() adds it once, keeping the bucket’s other rules', async () => {
    const s = await ownServer()
    s.createBucket('with-rules')
    const keep = { action: { type: 'Delete' }, condition: { age: 30 } }
    s.bucket('with-rules').fields.lifecycle = { rule: [keep] }
    const cache = make(s, { bucket: 'with-rules', keyPrefix: 'cache/' })
    assert.equal(await cache.applyLifecycleRule(), true)
    assert.deepEqual(s.bucket('with-rules').fields.lifecycle, {
      rule: [keep, cache.lifecycleRule()],
    })
    const patch = s.requests.find((r) => r.method === 'PATCH')
    assert.equal(patch?.query.ifMetagenerationMatch, '1', 'patched conditionally')
    assert.equal(await cache.applyLifecycleRule(), false, 'already there')
    assert.equal(s.requests.filter((r) => r.method === 'PATCH').length, 1)
    const otherPrefix = make(s, { bucket: 'with-rules', keyPrefix: 'other/' })
    assert.equal(await otherPrefix.applyLifecycleRule(), true)
    assert.equal((s.bucket('with-rules').fields.lifecycle as { rule: unknown[] }).rule.length, 3)
  })
})

// ---- failures ------------------------------------------------------------------------------

describe('GoogleCloudStorageCache: a slow, failing or stopped store', () => {
  test('behind a TieredCache, memory hits keep being served while the store hangs', async () => {
    const s = await ownServer()
    const cache = new Cache({
      CACHE_TYPE: TieredCache.over(GoogleCloudStorageCache, { firstTimeout: 60 }),
      CACHE_GCS_BUCKET: TEST_BUCKET,
      CACHE_KEY_PREFIX: 'tier/',
      CACHE_OPTIONS: { apiEndpoint: s.endpoint, anonymous: true, timeout: 300 },
      logger: silent,
    })
    await cache.ready()
    track(cache.backend as TieredCache)
    await cache.set('hot', 'value')
    assert.equal(await cache.get('hot'), 'value')
    s.hang(true)
    s.clearLog()
    assert.equal(await cache.get('hot'), 'value', 'from memory, no request')
    assert.equal(s.requests.length, 0, 'no request for a first-tier hit')
    assert.equal(
      await cache.get('cold'),
      undefined,
      'a miss goes to the store and times out as a miss',
    )
    s.hang(false)
  })

  test('a server that never answers: each call rejects after `timeout`', async () => {
    const s = await ownServer()
    const cache = make(s, { keyPrefix: 'hang/', timeout: 300 })
    await cache.set('k', 'v')
    s.hang(true)
    for (const call of [
      () => cache.get('k'),
      () => cache.set('k', 'w'),
      () => cache.has('k'),
      () => cache.add('new', 1),
      () => cache.inc('n', 1),
      () => cache.clear(),
    ]) {
      const started = Date.now()
      await assert.rejects(call(), (error: unknown) => {
        assert.ok(error instanceof StoreTimeoutError, String(error))
        assert.match(error.message, /no answer within 300 ms/)
        return true
      })
      // It waited for the timeout (a timer never fires early); no upper bound:
      // a loaded machine may take longer, and the message names the timeout.
      const took = Date.now() - started
      assert.ok(took >= 280, `took ${took} ms`)
    }
    s.hang(false)
    assert.equal(await cache.get('k'), 'v', 'answers again')
  })

  test('through new Cache(): get misses and set resolves false within the timeout, logged', async () => {
    const s = await ownServer()
    const logger = collectingLogger()
    const cache = new Cache({
      CACHE_TYPE: GoogleCloudStorageCache,
      CACHE_GCS_BUCKET: TEST_BUCKET,
      CACHE_OPTIONS: { api_endpoint: s.endpoint, anonymous: true, timeout: 300 },
      logger,
    })
    track((await cache.ready()) as GoogleCloudStorageCache)
    assert.equal(await cache.set('k', 'v'), true)
    s.hang(true)
    const started = Date.now()
    assert.equal(await cache.get('k'), undefined)
    assert.equal(await cache.set('k', 'w'), false)
    assert.equal(await cache.has('k'), false)
    // A generous bound: it fails on a hang, not on a slow machine.
    assert.ok(Date.now() - started < 15_000, `took ${Date.now() - started} ms`)
    let computed = 0
    const square = cache.memoize(async (n: number) => {
      computed++
      return n * n
    })
    assert.equal(await square(3), 9)
    assert.equal(computed, 1, 'memoize computes while the store hangs')
    assert.ok(logger.errors.some((e) => /no answer within 300 ms/.test(e)))

    s.hang(false)
    s.failWith(503)
    s.clearLog()
    const logged = logger.errors.length
    assert.equal(await cache.get('k'), undefined)
    assert.equal(s.requests.length, 1, 'no retries')
    const fresh = logger.errors.slice(logged)
    assert.ok(
      fresh.some((e) => /HTTP 503/.test(e)),
      fresh.join('\n'),
    )
    assert.ok(
      !fresh.some((e) => /no answer within/.test(e)),
      `a 503 fails at once, not after the timeout: ${fresh.join('\n')}`,
    )

    s.failWith(undefined)
    assert.equal(await cache.get('k'), 'v', 'recovers when the store answers again')
    assert.equal(await cache.set('k', 'x'), true)
    assert.equal(await cache.get('k'), 'x')
  })

  test('a stopped server misses at once, and the cache recovers when it is back', async () => {
    const s = await ownServer()
    const logger = collectingLogger()
    const cache = new Cache({
      CACHE_TYPE: GoogleCloudStorageCache,
      CACHE_GCS_BUCKET: TEST_BUCKET,
      CACHE_OPTIONS: { api_endpoint: s.endpoint, anonymous: true, timeout: 300 },
      logger,
    })
    track((await cache.ready()) as GoogleCloudStorageCache)
    await cache.set('k', 'v')
    await s.stop()
    const started = Date.now()
    assert.equal(await cache.get('k'), undefined)
    assert.equal(await cache.set('k', 'w'), false)
    // A generous bound: it fails on a hang, not on a slow machine.
    assert.ok(Date.now() - started < 15_000, `took ${Date.now() - started} ms`)
    assert.ok(
      logger.errors.some((e) => e.includes('GoogleCloudStorageCache.get')),
      logger.errors.join('\n'),
    )
    await assert.rejects(cache.inc('n'), GoogleCloudStorageError, 'inc rejects (no made-up number)')
    await s.start()
    assert.equal(await cache.get('k'), 'v')
  })

  test('a missing bucket is an error naming it (HTTP 404), a miss through a Cache', async () => {
    const s = await shared()
    const cache = make(s, { bucket: 'no-such-bucket', keyPrefix: 'x/' })
    await assert.rejects(cache.set('k', 1), /HTTP 404.*bucket does not exist/)
    await assert.rejects(cache.clear(), /HTTP 404/)
    // A missing object in a missing bucket is a 404 too: a miss.
    assert.equal(await cache.get('k'), undefined)
  })
})
