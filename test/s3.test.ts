/**
 * S3Cache against a real S3 HTTP server (s3rver, test/servers/s3.ts), and
 * TieredCache (the in-memory first tier) in front of it.
 */
import assert from 'node:assert/strict'
import { createServer, type Server, type Socket } from 'node:net'
import { after, before, describe, test } from 'node:test'
import {
  DeleteObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3'
import { S3Cache } from '../src/backends/s3/index.js'
import { ConfigError, NotAnIntegerError } from '../src/core/errors.js'
import { Cache, TieredCache } from '../src/index.js'
import { backendContract } from '../src/testing/index.js'
import {
  collectingLogger,
  eventually,
  Lifetimes,
  runWithoutPackage,
  silentLogger as silent,
} from './helpers.js'
import { expressDriver } from './matrix/express.js'
import { S3_CREDENTIALS, type S3Server, startS3 } from './servers/s3.js'

const BUCKET = 'cache'
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const life = new Lifetimes()
const track = <T extends { close(): Promise<unknown> }>(thing: T): T => life.track(thing)
const s3 = life.lazily(
  () => startS3([BUCKET, 'other']),
  (s) => s.destroy(),
)
after(() => life.stopAll())

/** An S3Cache on the shared test server. */
async function s3Cache(options: ConstructorParameters<typeof S3Cache>[0] = {}): Promise<S3Cache> {
  const server = await s3()
  return track(
    new S3Cache({
      bucket: BUCKET,
      endpointUrl: server.endpoint,
      credentials: S3_CREDENTIALS,
      logger: silent,
      // A deadline for a hang, not a race: a busy machine may take seconds to answer.
      timeout: 20_000,
      ...options,
    }),
  )
}

/** A raw SDK client on the test server, to look at what the cache stored. */
async function raw(server?: S3Server): Promise<S3Client> {
  const s = server ?? (await s3())
  const client = new S3Client({
    endpoint: s.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: S3_CREDENTIALS,
  })
  life.defer(async () => client.destroy())
  return client
}

async function exists(client: S3Client, key: string, bucket = BUCKET): Promise<boolean> {
  try {
    await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))
    return true
  } catch {
    return false
  }
}

async function listed(client: S3Client, prefix: string): Promise<string[]> {
  const names: string[] = []
  let token: string | undefined
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ContinuationToken: token }),
    )
    for (const o of page.Contents ?? []) names.push(o.Key as string)
    token = page.IsTruncated ? page.NextContinuationToken : undefined
  } while (token)
  return names
}

// ---- the contract suite --------------------------------------------------------

backendContract('S3Cache (s3rver, key prefix)', {
  create: () => s3Cache({ keyPrefix: 'contract/' }),
  // s3rver ignores conditional writes, so inc is read-then-write there.
  atomicIncrement: false,
  largeValueBytes: 5 << 20,
})

backendContract('TieredCache over S3Cache', {
  create: async () =>
    new TieredCache({ second: await s3Cache({ keyPrefix: 'tiered/' }), firstTimeout: 5 }),
  atomicIncrement: false,
})

// ---- configuration -------------------------------------------------------------

describe('S3Cache: configuration', () => {
  test("CACHE_TYPE 'S3Cache', 's3' and 'flask_caching_s3.S3Cache' build it from CACHE_S3_* keys", async () => {
    const server = await s3()
    for (const type of ['S3Cache', 's3', 'flask_caching_s3.S3Cache']) {
      const cache = new Cache({
        CACHE_TYPE: type,
        CACHE_S3_BUCKET: BUCKET,
        CACHE_S3_ENDPOINT_URL: server.endpoint,
        CACHE_KEY_PREFIX: 'factory/',
        CACHE_DEFAULT_TIMEOUT: 60,
        CACHE_OPTIONS: {
          purge_expired_on_read: true,
          credentials: S3_CREDENTIALS,
          max_attempts: 1,
        },
        logger: silent,
      })
      await cache.ready()
      try {
        const backend = cache.backend as S3Cache
        assert.ok(backend instanceof S3Cache, type)
        assert.equal(backend.keyPrefix, 'factory/')
        assert.equal(backend.purgeExpiredOnRead, true)
        assert.equal(backend.defaultTimeout, 60)
        assert.equal(await cache.set('k', type), true)
        assert.equal(await cache.get('k'), type)
        assert.ok(await exists(await raw(), 'factory/k'))
      } finally {
        await cache.backend.close?.()
      }
    }
  })

  test('camelCase keys work too', async () => {
    const server = await s3()
    const cache = new Cache({
      type: 'S3Cache',
      s3Bucket: BUCKET,
      s3EndpointUrl: server.endpoint,
      keyPrefix: 'camel/',
      options: { credentials: S3_CREDENTIALS, purgeExpiredOnRead: true },
      logger: silent,
    })
    try {
      assert.equal(await cache.set('k', 1), true)
      assert.equal(await cache.get('k'), 1)
      assert.equal((cache.backend as S3Cache).purgeExpiredOnRead, true)
    } finally {
      await cache.backend.close?.()
    }
  })

  test('errors name the key: bucket, endpoint, options, prefix', () => {
    const configError = (fn: () => unknown, key: string) =>
      assert.throws(fn, (e: Error) => e instanceof ConfigError && e.key === key)
    configError(() => new S3Cache({}), 'CACHE_S3_BUCKET')
    configError(() => new Cache({ CACHE_TYPE: 'S3Cache' }), 'CACHE_S3_BUCKET')
    configError(
      () => new S3Cache({ bucket: 'b', endpointUrl: 'not a url' }),
      'CACHE_S3_ENDPOINT_URL',
    )
    configError(() => new S3Cache({ bucket: 'b', timeout: -1 }), 'CACHE_OPTIONS')
    configError(() => new S3Cache({ bucket: 'b', concurrency: 1.5 }), 'CACHE_OPTIONS')
    configError(
      () => new S3Cache({ bucket: 'b', conditionalWrites: 'yes' as never }),
      'CACHE_OPTIONS',
    )
    configError(() => new S3Cache({ bucket: 'b', keyPrefix: 'a\nb' }), 'CACHE_KEY_PREFIX')
    configError(() => new S3Cache({ bucket: 'b', client: {} as never }), 'CACHE_OPTIONS')
  })

  test('an existing S3Client is used and not destroyed by close()', async () => {
    const client = await raw()
    const cache = new S3Cache({ bucket: BUCKET, client, keyPrefix: 'shared/', logger: silent })
    assert.equal(cache.client, client)
    await cache.set('a', 1)
    await cache.close()
    assert.ok(await exists(client, 'shared/a'), 'the client still works after close()')
  })

  test('without @aws-sdk/client-s3: importing works, constructing names the package', async () => {
    const out = await runWithoutPackage(
      '@aws-sdk/client-s3',
      `import { S3Cache } from './src/backends/s3/index.ts'
       import { Cache } from './src/index.ts'
       const out = []
       for (const make of [() => new S3Cache({ bucket: 'b' }), () => new Cache({ CACHE_TYPE: 'S3Cache', CACHE_S3_BUCKET: 'b' }).backend]) {
         try { make(); out.push('constructed') } catch (e) { out.push([e.name, e.packageName]) }
       }
       try { new S3Cache({}) } catch (e) { out.push([e.name, e.key]) }
       console.log(JSON.stringify(out))`,
    )
    assert.deepEqual(out, [
      ['MissingDependencyError', '@aws-sdk/client-s3'],
      ['MissingDependencyError', '@aws-sdk/client-s3'],
      ['ConfigError', 'CACHE_S3_BUCKET'],
    ])
  })
})

// ---- objects, expiry, keys -----------------------------------------------------

describe('S3Cache: objects and expiry', () => {
  test('the expiry is in the object metadata: an expired object is a miss while it still exists', async () => {
    const client = await raw()
    const cache = await s3Cache({ keyPrefix: 'exp/' })
    const before = Date.now()
    await cache.set('short', 'v', 1)
    const after = Date.now()
    await cache.set('forever', 'f', 0)
    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'exp/short' }))
    const at = Number(head.Metadata?.['cachette-expires'])
    // One second after the write, by the writer's clock.
    assert.ok(at >= before + 1000 && at <= after + 1000, `expires ${at}`)
    const forever = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'exp/forever' }))
    assert.equal(forever.Metadata?.['cachette-expires'], undefined)
    await sleep(1100)
    assert.equal(await cache.get('short'), undefined)
    assert.equal(await cache.has('short'), false)
    assert.ok(await exists(client, 'exp/short'), 'without purgeExpiredOnRead the object stays')
    assert.equal(await cache.get('forever'), 'f')
  })

  test('purgeExpiredOnRead deletes an expired object when a read finds it', async () => {
    const client = await raw()
    const cache = await s3Cache({ keyPrefix: 'purge/', purgeExpiredOnRead: true })
    await cache.set('old', 'v', 1)
    await sleep(1100)
    assert.ok(await exists(client, 'purge/old'))
    assert.equal(await cache.get('old'), undefined)
    assert.equal(await exists(client, 'purge/old'), false)
  })

  test('keys with slashes and unicode are object names; a 2,000-character key is hashed', async () => {
    const client = await raw()
    const cache = await s3Cache({ keyPrefix: 'names/' })
    const long = 'k'.repeat(2000)
    const segment = `${'s'.repeat(300)}/short`
    const keys = [
      'a/b/c',
      'view//users/1',
      'ключ/日本/🎉',
      'with space',
      long,
      'ctl\u0001',
      segment,
    ]
    for (const k of keys) {
      await cache.set(k, k.length)
      assert.equal(await cache.get(k), k.length, k.slice(0, 20))
    }
    const names = await listed(client, 'names/')
    assert.ok(names.includes('names/a/b/c'))
    assert.ok(names.includes('names/ключ/日本/🎉'))
    const hashed = names.filter((n) => n.startsWith('names/~h~'))
    assert.equal(
      hashed.length,
      4,
      'the long key, the long segment, the empty segment (//) and the control character are hashed',
    )
    for (const n of hashed) assert.match(n, /^names\/~h~[0-9a-f]{64}$/)
  })

  test('a several-MB value round-trips byte for byte', async () => {
    const cache = await s3Cache({ keyPrefix: 'big/' })
    const big = Buffer.alloc(8 << 20)
    for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff
    await cache.set('big', big)
    assert.ok(big.equals((await cache.get('big')) as Buffer))
  })

  test('an object not written by cachette reads as a miss, logged once', async () => {
    const client = await raw()
    const logger = collectingLogger()
    const cache = await s3Cache({ keyPrefix: 'foreign/', logger })
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'foreign/x', Body: 'not ours' }))
    assert.equal(await cache.get('x'), undefined)
    assert.equal(await cache.get('x'), undefined)
    assert.equal(logger.warnings.filter((w) => w.includes('could not be decoded')).length, 1)
  })

  test('conditional writes: auto mode finds that s3rver ignores them and says so once', async () => {
    const logger = collectingLogger()
    const cache = await s3Cache({ keyPrefix: 'cond/', logger })
    assert.equal(await cache.add('a', 1), true)
    assert.equal(await cache.add('a', 2), false)
    assert.equal(await cache.get('a'), 1)
    assert.equal(await cache.inc('n', 2), 2)
    assert.equal(logger.warnings.filter((w) => w.includes('ignores conditional writes')).length, 1)
    const names = await listed(await raw(), 'cond/')
    assert.deepEqual(names.sort(), ['cond/a', 'cond/n'], 'the probe object is removed')
  })

  test('delete says whether a live object existed', async () => {
    const cache = await s3Cache({ keyPrefix: 'del/' })
    await cache.set('a', 1)
    await cache.set('gone', 1, 1)
    assert.equal(await cache.delete('a'), true)
    assert.equal(await cache.delete('a'), false)
    await sleep(1100)
    assert.equal(await cache.delete('gone'), false, 'an expired object did not exist as an entry')
  })

  test('inc on a non-integer rejects with NotAnIntegerError', async () => {
    const cache = await s3Cache({ keyPrefix: 'inc/', conditionalWrites: false })
    await cache.set('s', 'text')
    await assert.rejects(cache.inc('s', 1), NotAnIntegerError)
  })
})

// ---- batches and clear ---------------------------------------------------------

describe('S3Cache: batches and clear', () => {
  test('deleteMany over 1,000 keys is batched; clear removes only the prefix, over several pages', async () => {
    const client = await raw()
    const cache = await s3Cache({ keyPrefix: 'many/', concurrency: 32 })
    const other = await s3Cache({ keyPrefix: 'keep/' })
    const keys = Array.from({ length: 1200 }, (_, i) => `k${i}`)
    assert.equal((await cache.setMany(keys.map((k) => [k, 1]))).length, 1200)
    await other.set('survivor', 1)
    await client.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: 'many-not-a-prefix-match', Body: 'x' }),
    )
    const gone = await cache.deleteMany([...keys.slice(0, 1100), 'never-set'])
    assert.equal(gone.length, 1101)
    assert.equal((await listed(client, 'many/')).length, 100)
    await cache.setMany(keys.slice(0, 1100).map((k) => [k, 2]))
    assert.equal((await listed(client, 'many/')).length, 1200)
    assert.equal(await cache.clear(), true)
    assert.deepEqual(await listed(client, 'many/'), [])
    assert.equal(await other.get('survivor'), 1)
    assert.ok(await exists(client, 'many-not-a-prefix-match'))
  })

  test('getMany reads in parallel, in key order', async () => {
    const cache = await s3Cache({ keyPrefix: 'gm/', concurrency: 4 })
    const keys = Array.from({ length: 30 }, (_, i) => `g${i}`)
    await cache.setMany(keys.filter((_, i) => i % 3 !== 0).map((k) => [k, k]))
    assert.deepEqual(
      await cache.getMany(keys),
      keys.map((k, i) => (i % 3 === 0 ? undefined : k)),
    )
  })

  test('clear without a prefix refuses, naming CACHE_KEY_PREFIX; allowFlush empties the bucket', async () => {
    const server = await s3()
    const client = await raw()
    const refusing = new S3Cache({
      bucket: 'other',
      endpointUrl: server.endpoint,
      credentials: S3_CREDENTIALS,
      logger: silent,
    })
    track(refusing)
    await refusing.set('a', 1)
    await assert.rejects(
      refusing.clear(),
      (e: Error) => e instanceof ConfigError && e.key === 'CACHE_KEY_PREFIX',
    )
    assert.ok(await exists(client, 'a', 'other'))
    const logger = collectingLogger()
    const flushing = track(
      new S3Cache({
        bucket: 'other',
        endpointUrl: server.endpoint,
        credentials: S3_CREDENTIALS,
        allowFlush: true,
        logger,
      }),
    )
    assert.equal(await flushing.clear(), true)
    assert.equal(await exists(client, 'a', 'other'), false)
    assert.ok(logger.warnings.some((w) => w.includes('every object in bucket other')))
  })
})

// ---- lifecycle rule --------------------------------------------------------------

describe('S3Cache: lifecycle rule', () => {
  test('the rule expires objects under the prefix after the longest timeout', async () => {
    const cache = await s3Cache({ keyPrefix: 'app1/', defaultTimeout: 3 * 86400 })
    assert.deepEqual(cache.lifecycleRule(), {
      ID: 'cachette-expire-app1/',
      Status: 'Enabled',
      Filter: { Prefix: 'app1/' },
      Expiration: { Days: 4 },
    })
    assert.equal(cache.lifecycleRule(30).Expiration.Days, 30)
    assert.throws(() => cache.lifecycleRule(0), RangeError)
    const command = cache.lifecycleCommand(7)
    assert.match(
      command,
      /^aws s3api put-bucket-lifecycle-configuration --bucket cache --lifecycle-configuration '/,
    )
    const json = JSON.parse(command.slice(command.indexOf("'") + 1, -1))
    assert.deepEqual(json, { Rules: [cache.lifecycleRule(7)] })
  })

  test('applyLifecycleRule sends the configuration (s3rver answers NotImplemented)', async () => {
    const cache = await s3Cache({ keyPrefix: 'app1/' })
    await assert.rejects(cache.applyLifecycleRule(), /NotImplemented|not implemented/i)
  })
})

// ---- failures --------------------------------------------------------------------

describe('S3Cache: a slow or failing store never hangs a request', () => {
  test('a store that accepts connections but never answers: calls reject after the timeout', async () => {
    const sockets = new Set<Socket>()
    const blackHole: Server = createServer((socket) => {
      sockets.add(socket)
      socket.on('error', () => {})
    })
    await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve))
    const { port } = blackHole.address() as { port: number }
    try {
      const cache = track(
        new S3Cache({
          bucket: BUCKET,
          endpointUrl: `http://127.0.0.1:${port}`,
          credentials: S3_CREDENTIALS,
          timeout: 300,
          logger: silent,
        }),
      )
      const started = Date.now()
      await assert.rejects(cache.get('k'), /no answer within 300 ms/)
      const elapsed = Date.now() - started
      // It waited for the timeout (a timer never fires early); no upper bound:
      // a loaded machine may take longer, and the message names the timeout.
      assert.ok(elapsed >= 250, `gave up after ${elapsed} ms`)
      const facade = new Cache({ CACHE_TYPE: () => cache, logger: silent })
      const t = Date.now()
      assert.equal(await facade.get('k'), undefined)
      assert.equal(await facade.set('k', 1), false)
      assert.ok(
        Date.now() - t < 15_000,
        `the facade fails open, it does not hang: ${Date.now() - t} ms`,
      )
    } finally {
      for (const s of sockets) s.destroy()
      blackHole.close()
    }
  })

  test('the store stopped mid-test: views and memoize serve uncached; caching resumes when it is back', async () => {
    const server = await startS3([BUCKET])
    life.defer(() => server.destroy())
    const logger = collectingLogger()
    const cache = new Cache({
      CACHE_TYPE: 'S3Cache',
      CACHE_S3_BUCKET: BUCKET,
      CACHE_S3_ENDPOINT_URL: server.endpoint,
      CACHE_OPTIONS: { credentials: S3_CREDENTIALS, timeout: 1000 },
      logger,
    })
    await cache.ready()
    track(cache.backend as S3Cache)
    const path = '/report'
    let computed = 0
    const report = cache.memoize(async (id: number) => {
      computed++
      return `report ${id}`
    })
    const app = await expressDriver.start(cache, [
      { path, label: 'r', options: {}, respond: { kind: 'text' } },
    ])
    try {
      assert.equal(await (await fetch(app.url + path)).text(), 'r#1')
      // The view is stored after its response is sent: give the upload a moment.
      await eventually(
        async () => (await cache.has('view//report')) === true,
        10_000,
        'view stored',
      )
      assert.equal(await (await fetch(app.url + path)).text(), 'r#1')
      await report(1)
      await report(1)
      assert.equal(computed, 1)
      await server.stop()
      for (let i = 2; i <= 3; i++) {
        const res = await fetch(app.url + path)
        assert.equal(await res.text(), `r#${i}`)
      }
      assert.equal(await report(1), 'report 1')
      assert.equal(computed, 2)
      assert.ok(logger.errors.length > 0)
      await server.start()
      await eventually(async () => (await cache.set('k', 'back')) === true, 15_000, 'store back')
      // The store kept its objects through the outage: the page stored before it is served again.
      const calls = app.calls.get(path) ?? 0
      assert.equal(await (await fetch(app.url + path)).text(), 'r#1')
      assert.equal(await (await fetch(app.url + path)).text(), 'r#1')
      assert.equal(app.calls.get(path), calls, 'served from the cache again')
    } finally {
      await app.close()
    }
  })
})

// ---- the first tier ----------------------------------------------------------------

describe('TieredCache: an in-memory first tier in front of S3', () => {
  test('hits come from memory; writes and deletes reach both tiers', async () => {
    const client = await raw()
    const s3c = await s3Cache({ keyPrefix: 't1/' })
    const cache = new TieredCache({ second: s3c, firstTimeout: 30 })
    await cache.set('a', { n: 1 })
    assert.ok(await exists(client, 't1/a'), 'written through to S3')
    // Remove it behind the cache's back: the first tier still answers.
    await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 't1/a' }))
    assert.deepEqual(await cache.get('a'), { n: 1 })
    await cache.delete('a')
    assert.equal(await cache.get('a'), undefined)
  })

  test('a second-tier hit is copied into memory, and served from there while S3 is down', async () => {
    const server = await startS3([BUCKET])
    life.defer(() => server.destroy())
    const make = () =>
      new S3Cache({
        bucket: BUCKET,
        endpointUrl: server.endpoint,
        credentials: S3_CREDENTIALS,
        keyPrefix: 't2/',
        timeout: 500,
        logger: silent,
      })
    const writer = track(make())
    await writer.set('hot', 'value')
    const cache = new Cache({
      CACHE_TYPE: () => new TieredCache({ second: track(make()), firstTimeout: 60 }),
      logger: silent,
    })
    assert.equal(await cache.get('hot'), 'value')
    await server.stop()
    // S3 is stopped: the value can only come from the first tier.
    assert.equal(await cache.get('hot'), 'value', 'served from memory')
    assert.equal(await cache.get('cold'), undefined, 'a miss while S3 is down is a miss')
    await server.start()
  })

  test("another process's change is seen within firstTimeout", async () => {
    const s3a = await s3Cache({ keyPrefix: 't3/' })
    const s3b = await s3Cache({ keyPrefix: 't3/' })
    // 5 s: the S3 round trips below stay well inside it on a loaded machine.
    const a = new TieredCache({ second: s3a, firstTimeout: 5 })
    const b = new TieredCache({ second: s3b, firstTimeout: 5 })
    await a.set('k', 'one')
    assert.equal(await b.get('k'), 'one')
    await a.set('k', 'two')
    assert.equal(await a.get('k'), 'two', 'the writer sees its write at once')
    assert.equal(await b.get('k'), 'one', 'the other process still has its first-tier copy')
    await sleep(5100)
    assert.equal(await b.get('k'), 'two')
  })

  test('TieredCache.over(S3Cache) is a CACHE_TYPE that reads the usual configuration', async () => {
    const server = await s3()
    const cache = new Cache({
      CACHE_TYPE: TieredCache.over(S3Cache, { firstTimeout: 10, firstThreshold: 50 }),
      CACHE_S3_BUCKET: BUCKET,
      CACHE_S3_ENDPOINT_URL: server.endpoint,
      CACHE_KEY_PREFIX: 'over/',
      CACHE_OPTIONS: { credentials: S3_CREDENTIALS },
      logger: silent,
    })
    await cache.ready()
    const tiered = cache.backend as TieredCache
    try {
      assert.ok(tiered instanceof TieredCache)
      assert.ok(tiered.second instanceof S3Cache)
      assert.equal((tiered.second as S3Cache).keyPrefix, 'over/')
      assert.equal(tiered.firstTimeout, 10)
      assert.equal(tiered.first.threshold, 50)
      await cache.set('x', 1)
      assert.equal(await cache.get('x'), 1)
      assert.throws(() => new TieredCache({ second: tiered.second, firstTimeout: 0 }), ConfigError)
    } finally {
      await tiered.close()
    }
  })
})

before(async () => {
  // Start the shared server before the first suite, so its start-up is not counted in a test.
  await s3()
})
