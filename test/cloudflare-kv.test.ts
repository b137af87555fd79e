/**
 * CloudflareKVCache against a real local KV namespace: Miniflare's, the
 * storage workerd uses under `wrangler dev`, reached from Node through
 * `getKVNamespace()`. The behaviour in a Worker is covered by
 * test/runtimes.test.ts.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { Miniflare } from 'miniflare'
import { CloudflareKVCache, type KVNamespaceLike } from '../src/backends/cloudflare-kv/index.js'
import { ConfigError } from '../src/core/errors.js'
import { Cache } from '../src/index.js'
import { backendContract } from '../src/testing/index.js'
import { startWorker } from './fixtures/runtimes/harness.js'
import { collectingLogger, silentLogger } from './helpers.js'

let mf: Miniflare | undefined
let kvPromise: Promise<KVNamespaceLike> | undefined

/** The `CACHE` namespace of one Miniflare shared by the file. */
function kv(): Promise<KVNamespaceLike> {
  kvPromise ??= (async () => {
    mf = startWorker('export default { fetch() { return new Response("ok") } }')
    return (await mf.getKVNamespace('CACHE')) as unknown as KVNamespaceLike
  })()
  return kvPromise
}
after(async () => {
  await mf?.dispose()
})

let now = Date.now()
backendContract('CloudflareKVCache', {
  create: async () =>
    new CloudflareKVCache({
      namespace: await kv(),
      keyPrefix: 'contract/',
      clock: () => now,
      logger: silentLogger,
    }),
  advanceTime: (ms) => {
    now += ms
  },
  atomicIncrement: false,
})

describe('CloudflareKVCache', () => {
  let namespace: KVNamespaceLike
  before(async () => {
    namespace = await kv()
  })

  test('a timeout under KV minimum of 60 s expires on time; KV is told 60 s', async () => {
    let clock = 1_000_000
    const cache = new CloudflareKVCache({ namespace, keyPrefix: 'short/', clock: () => clock })
    await cache.set('k', 'v', 5)
    assert.equal(await cache.get('k'), 'v')
    const listed = await namespace.list({ prefix: 'short/' })
    const entry = listed.keys.find((k) => k.name === 'short/k')
    assert.ok(entry, 'the entry is in KV under its prefixed name')
    // KV's own expiry: about a minute from the real now (never under KV's minimum).
    const seconds = (entry.expiration ?? 0) - Date.now() / 1000
    assert.ok(seconds > 55 && seconds <= 61, `KV expiration ${seconds}s from now`)
    assert.deepEqual(entry.metadata, { e: 1_005_000 })
    clock += 4999
    assert.equal(await cache.get('k'), 'v')
    clock += 1
    assert.equal(await cache.get('k'), undefined)
    assert.equal(await cache.has('k'), false)
    assert.equal(await cache.add('k', 'again', 5), true, 'an expired entry counts as absent')
  })

  test('timeout 0 sets no KV expiry', async () => {
    const cache = new CloudflareKVCache({ namespace, keyPrefix: 'forever/' })
    await cache.set('k', 1, 0)
    const { keys } = await namespace.list({ prefix: 'forever/' })
    assert.equal(keys[0]?.expiration, undefined)
  })

  test('clear deletes only its own prefix', async () => {
    const a = new CloudflareKVCache({ namespace, keyPrefix: 'app-a/' })
    const b = new CloudflareKVCache({ namespace, keyPrefix: 'app-b/' })
    await a.set('x', 1)
    await b.set('x', 2)
    await a.clear()
    assert.equal(await a.get('x'), undefined)
    assert.equal(await b.get('x'), 2)
  })

  test('clear without a prefix warns once that it empties the namespace', async () => {
    const logger = collectingLogger()
    const cache = new CloudflareKVCache({ namespace, logger })
    await cache.clear()
    await cache.clear()
    assert.equal(
      logger.warnings.filter((m) => m.includes('every key in the KV namespace')).length,
      1,
    )
  })

  test('keys longer than KV allows are stored as a digest and still listed', async () => {
    const cache = new CloudflareKVCache({ namespace, keyPrefix: 'long/' })
    const key = `list/${'é'.repeat(400)}`
    await cache.set(key, 'big key')
    assert.equal(await cache.get(key), 'big key')
    const names = (await namespace.list({ prefix: 'long/' })).keys.map((k) => k.name)
    assert.ok(names.every((n) => new TextEncoder().encode(n).length <= 512))
    const listed: string[] = []
    for await (const k of cache.keys('list/')) listed.push(k)
    assert.deepEqual(listed, [key])
    assert.equal(await cache.delete(key), true)
    assert.equal(await cache.get(key), undefined)
  })

  test('values are the portable format by default, readable without node:v8', async () => {
    const cache = new CloudflareKVCache({ namespace, keyPrefix: 'fmt/' })
    await cache.set('o', { when: new Date(0), tags: new Set(['a']) })
    const { value } = await namespace.getWithMetadata('fmt/o', { type: 'arrayBuffer' })
    const text = new TextDecoder().decode(new Uint8Array(value as ArrayBuffer))
    assert.equal(text, '!{"when":{"$":"d","v":0},"tags":{"$":"s","v":["a"]}}')
  })

  test('CACHE_TYPE: CloudflareKVCache with CACHE_OPTIONS.namespace and CACHE_KEY_PREFIX', async () => {
    const cache = new Cache({
      CACHE_TYPE: CloudflareKVCache,
      CACHE_KEY_PREFIX: 'cfg/',
      CACHE_OPTIONS: { namespace },
    })
    await cache.set('k', 'v', 30)
    assert.equal(await cache.get('k'), 'v')
    assert.ok((await namespace.list({ prefix: 'cfg/' })).keys.some((k) => k.name === 'cfg/k'))
  })

  test('a missing or wrong namespace is a ConfigError naming CACHE_OPTIONS.namespace', () => {
    assert.throws(
      () => new CloudflareKVCache(),
      (e: unknown) => e instanceof ConfigError && e.key === 'CACHE_OPTIONS.namespace',
    )
    assert.throws(
      () => new Cache({ CACHE_TYPE: CloudflareKVCache, CACHE_OPTIONS: { namespace: {} } }),
      (e: unknown) => e instanceof ConfigError && e.key === 'CACHE_OPTIONS.namespace',
    )
  })
})
