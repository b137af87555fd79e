/**
 * The view engine's hit path on the in-memory backend: entries read without
 * a copy (`PEEK`), hits made once per stored entry, decisions taken without
 * waiting when no user callback runs, and what user code may and may not see.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { PEEK, type PeekableBackend } from '../src/core/backend.js'
import { VIEW_SLOT } from '../src/core/slot.js'
import {
  type RequestView,
  requestViewOf,
  type StoredView,
  ViewCache,
  type ViewCacheOptions,
  type ViewHit,
} from '../src/core/view/index.js'
import { Cache, SimpleCache } from '../src/index.js'

const ENTRY: StoredView = {
  status: 200,
  headers: [
    ['Content-Type', 'text/html'],
    ['Link', '</a>'],
    ['Link', '</b>'],
  ],
  body: Buffer.from('<p>page</p>'),
}

function viewAt(path: string, headers: Record<string, string> = {}): RequestView {
  return requestViewOf('GET', path, headers, {})
}

/** A Cache on SimpleCache, its slot, and an engine with `options`, with `ENTRY` stored at `/page`. */
async function setUp(
  options: ViewCacheOptions = {},
  cache = new Cache({ CACHE_TYPE: 'SimpleCache' }),
) {
  const slot = cache[VIEW_SLOT]()
  const engine = new ViewCache(options)
  await cache.set('view//page', ENTRY)
  return { cache, slot, engine }
}

describe('SimpleCache PEEK', () => {
  test('reads the held value synchronously, without a copy; misses and expired entries are undefined', async () => {
    let now = 1000
    const backend = new SimpleCache({ clock: () => now })
    const peek = (backend as PeekableBackend)[PEEK] as (key: string) => unknown
    await backend.set('k', { a: [1] }, 1)
    const first = peek.call(backend, 'k')
    assert.deepEqual(first, { a: [1] })
    assert.equal(peek.call(backend, 'k'), first, 'the same object each time')
    assert.notEqual(await backend.get('k'), first, 'get still copies')
    assert.equal(peek.call(backend, 'missing'), undefined)
    now += 1000
    assert.equal(peek.call(backend, 'k'), undefined)
  })

  test('a subclass that changes get has no PEEK, so its reads are used', async () => {
    class Counting extends SimpleCache {
      gets = 0
      override async get(key: string): Promise<unknown> {
        this.gets++
        return super.get(key)
      }
    }
    const backend = new Counting()
    assert.equal((backend as PeekableBackend)[PEEK], undefined)
    const cache = new Cache({ CACHE_TYPE: () => backend })
    const { slot, engine } = await setUp({}, cache)
    assert.equal(engine.lookupNow(viewAt('/page'), slot), undefined)
    assert.equal((await engine.lookup(viewAt('/page'), slot)).kind, 'hit')
    assert.equal(backend.gets, 1)
  })
})

describe('ViewCache hits on SimpleCache', () => {
  test('are decided at once and made once per stored entry', async () => {
    const { cache, slot, engine } = await setUp()
    const hit = engine.lookupNow(viewAt('/page'), slot) as ViewHit
    assert.equal(hit.kind, 'hit')
    assert.equal(engine.lookupNow(viewAt('/page'), slot), hit)
    assert.equal(await engine.lookup(viewAt('/page'), slot), hit)
    assert.deepEqual(hit.grouped, [
      ['Content-Type', 'text/html'],
      ['Link', ['</a>', '</b>']],
      ['Content-Length', String(ENTRY.body.length)],
    ])
    const head = engine.lookupNow(requestViewOf('HEAD', '/page', {}, {}), slot) as ViewHit
    assert.equal(head.body, undefined)
    assert.deepEqual(head.headers, hit.headers)
    // A new entry at the key makes a new hit.
    await cache.set('view//page', { ...ENTRY, body: Buffer.from('<p>new</p>') })
    const next = engine.lookupNow(viewAt('/page'), slot) as ViewHit
    assert.notEqual(next, hit)
    assert.equal(String(next.body), '<p>new</p>')
  })

  test('misses and bypasses are decided at once too', async () => {
    const { slot, engine } = await setUp()
    assert.equal(engine.lookupNow(viewAt('/other'), slot)?.kind, 'miss')
    assert.equal(engine.lookupNow(requestViewOf('POST', '/page', {}, {}), slot)?.kind, 'bypass')
    const authorized = viewAt('/page', { authorization: 'Basic eDp5' })
    assert.deepEqual(engine.lookupNow(authorized, slot), {
      kind: 'bypass',
      reason: 'authorization',
    })
  })

  test('a route with a user callback is never decided at once, and still hits', async () => {
    for (const options of [
      { unless: () => false },
      { forcedUpdate: () => false },
      { isStale: () => false },
      { keyPrefix: () => 'view//page' },
      { makeCacheKey: () => 'view//page' },
    ] as ViewCacheOptions[]) {
      const { slot, engine } = await setUp(options)
      assert.equal(engine.lookupNow(viewAt('/page'), slot), undefined)
      assert.equal((await engine.lookup(viewAt('/page'), slot)).kind, 'hit')
    }
  })

  test('isStale gets a copy of the entry: changing it changes nothing stored', async () => {
    let calls = 0
    const { cache, slot, engine } = await setUp({
      isStale: (entry) => {
        calls++
        entry.body.fill(0)
        entry.headers.length = 0
        return false
      },
    })
    await engine.lookup(viewAt('/page'), slot)
    await engine.lookup(viewAt('/page'), slot)
    assert.equal(calls, 2)
    assert.deepEqual(await cache.get('view//page'), ENTRY)
  })

  test('the Accept-Encoding variants are read the same way', async () => {
    const { cache, slot, engine } = await setUp()
    const gz = { ...ENTRY, headers: [...ENTRY.headers, ['Content-Encoding', 'gzip']] }
    await cache.set('view//page|gzip', gz as StoredView)
    const gzip = { 'accept-encoding': 'gzip, deflate, br' }
    const hit = engine.lookupNow(viewAt('/page', gzip), slot) as ViewHit
    assert.equal(hit.key, 'view//page|gzip')
    assert.equal(engine.lookupNow(viewAt('/page', gzip), slot), hit)
    const plain = engine.lookupNow(viewAt('/page', { 'accept-encoding': 'identity' }), slot)
    assert.equal((plain as ViewHit).key, 'view//page')
  })
})

describe('ViewCache keys', () => {
  test('%s in keyPrefix is replaced by the path literally, as Flask-Caching does', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    const engine = new ViewCache({ keyPrefix: 'v/%s/x' })
    const key = await engine.keyFor(viewAt("/a$&b$'c"), cache[VIEW_SLOT]().settings)
    assert.equal(key, "v//a$&b$'c/x")
  })
})
