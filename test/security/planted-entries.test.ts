/**
 * Issue item 6: a stored entry is data, not trust. Entries planted in the
 * backend (by anyone with access to it) at the key a view or `httpCache`
 * reads are validated on read: an invalid one is a miss and is deleted,
 * never a crash, a 500 or a stall. Real sockets, the four frameworks.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, test } from 'node:test'
import { Cache } from '../../src/index.js'
import { eventually, silentLogger } from '../helpers.js'
import { FRAMEWORKS, rawGet, startApp } from './apps.js'

function newCache(): Cache {
  return new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_DEFAULT_TIMEOUT: 60, logger: silentLogger })
}

const body = Buffer.from('planted')

/** Entries a view could never have stored, each planted at `view//fresh`. */
const BAD_VIEWS: Record<string, unknown> = {
  'status 1000': { status: 1000, headers: [['X-A', 'b']], body },
  'status 99.5': { status: 99.5, headers: [], body },
  'a header value with CR/LF': { status: 200, headers: [['X-A', 'b\r\nSet-Cookie: s=1']], body },
  'a header value with NUL': { status: 200, headers: [['X-A', 'b\u0000c']], body },
  'a header name that is not a token': { status: 200, headers: [['X A:', 'b']], body },
  'a huge sparse header list': { status: 200, headers: new Array(2 ** 32 - 1), body },
  'a body that is not bytes': { status: 200, headers: [], body: 'planted' },
  'a body of bad JSON bytes': { status: 200, headers: [], body: { type: 'Buffer', data: [1e9] } },
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex')
const metaKey = (resource: string) => `http:m:${sha(`\u0000${resource}`)}`
const variantKey = (resource: string, salt: string) =>
  `http:r:${sha(`\u0000${resource}\u0000${salt}\u0000`)}`

/** `httpCache` responses it could never have stored. */
const BAD_RESPONSES: Record<string, (now: number) => unknown> = {
  'status 1000': (now) => stored(1000, [['Cache-Control', 'public, max-age=60']], now),
  'a header value with CR/LF': (now) =>
    stored(200, [['Cache-Control', 'public, max-age=60\r\nSet-Cookie: s=1']], now),
  'a header name that is not a token': (now) => stored(200, [['X A:', 'b']], now),
  'a Content-Length that is not the body length': (now) =>
    stored(200, [['Content-Length', '99']], now),
  'times that are not numbers': () => ({
    ...(stored(200, [], 0) as object),
    responseTime: 'soon',
  }),
}

function stored(status: number, headers: [string, string][], now: number): unknown {
  return { status, headers, body, requestTime: now, responseTime: now, initialAge: 0 }
}

describe('planted view entries are misses, and are deleted (cached())', () => {
  for (const framework of FRAMEWORKS) {
    for (const [what, entry] of Object.entries(BAD_VIEWS)) {
      test(`${framework}: ${what}`, { timeout: 15_000 }, async () => {
        const cache = newCache()
        const app = await startApp(framework, 'cached', cache)
        try {
          await cache.set('view//fresh', entry)
          const reply = await rawGet(app.port, '/fresh')
          assert.equal(reply.status, 200)
          assert.equal(reply.body, 'fresh#1', 'the handler ran')
          assert.equal(app.calls.get('/fresh'), 1)
          // `/fresh` says no-store, so nothing replaces the planted entry: it is gone.
          await eventually(async () => !(await cache.has('view//fresh')), 5000, 'deletion')
          const again = await rawGet(app.port, '/fresh')
          assert.equal(again.body, 'fresh#2', 'and the server is still up')
        } finally {
          await app.close()
        }
      })
    }
  }
})

describe('planted httpCache entries are misses, and are deleted (httpCache)', () => {
  for (const framework of FRAMEWORKS) {
    for (const [what, make] of Object.entries(BAD_RESPONSES)) {
      test(`${framework}: a stored response with ${what}`, { timeout: 15_000 }, async () => {
        const cache = newCache()
        const app = await startApp(framework, 'http', cache)
        try {
          const resource = `127.0.0.1:${app.port}/fresh`
          await cache.set(metaKey(resource), { salt: 's1', vary: [] })
          await cache.set(variantKey(resource, 's1'), make(Date.now()))
          const reply = await rawGet(app.port, '/fresh')
          assert.equal(reply.status, 200)
          assert.equal(reply.body, 'fresh#1', 'the handler ran')
          assert.ok(reply.wellFramed, reply.framing)
          assert.equal(await cache.has(variantKey(resource, 's1')), false, 'the entry is gone')
          const again = await rawGet(app.port, '/fresh')
          assert.equal(again.body, 'fresh#2', 'and the server is still up')
        } finally {
          await app.close()
        }
      })
    }

    for (const length of [1e9, 2 ** 32 - 1]) {
      test(`${framework}: metadata with a sparse vary list of length ${length} does not stall`, {
        timeout: 10_000,
      }, async () => {
        const cache = newCache()
        const app = await startApp(framework, 'http', cache)
        try {
          const resource = `127.0.0.1:${app.port}/ok`
          await cache.set(metaKey(resource), { salt: 's1', vary: new Array(length) })
          const reply = await rawGet(app.port, '/ok')
          assert.equal(reply.status, 200)
          assert.equal(reply.body, 'ok#1')
          const hit = await rawGet(app.port, '/ok')
          assert.equal(hit.body, 'ok#1', 'the fresh response was stored instead')
          const meta = (await cache.get(metaKey(resource))) as { vary: unknown[] }
          assert.deepEqual(meta.vary, [], 'the planted metadata was replaced')
        } finally {
          await app.close()
        }
      })
    }
  }
})
