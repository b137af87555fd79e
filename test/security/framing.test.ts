/**
 * Issue item 5: a response that failed is never stored, and whatever is
 * replayed is well-framed. Every attack runs over real sockets on Express,
 * Fastify, Koa and Hono, for `cached()` and for `httpCache`.
 *
 * "Not stored" is checked by asking again: a view miss's render is waited for
 * by the next request of the same page (it reads the store again once the
 * first render was stored or abandoned), and `httpCache` stores before it
 * answers, so the second request tells, without sleeping.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { Cache } from '../../src/index.js'
import { silentLogger } from '../helpers.js'
import { ERROR_PAGE, FRAMEWORKS, type Framework, type Mode, rawGet, withApp } from './apps.js'

const MODES: readonly Mode[] = ['cached', 'http']

function newCache(): Cache {
  return new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_DEFAULT_TIMEOUT: 60, logger: silentLogger })
}

/** Requests `path` twice and checks that the second request ran the handler again. */
async function assertNotStored(
  framework: Framework,
  mode: Mode,
  path: string,
  check?: (body: string) => void,
): Promise<void> {
  await withApp(framework, mode, newCache(), async (app) => {
    const first = await rawGet(app.port, path)
    check?.(first.body)
    const second = await rawGet(app.port, path)
    assert.notEqual(second.headers['x-cache'], 'hit', `${path}: answered from the cache`)
    assert.notEqual(second.headers.hit_cache, 'True', `${path}: answered from the cache`)
    assert.equal(app.calls.get(path), 2, `${path}: the second request must run the handler`)
  })
}

for (const mode of MODES) {
  describe(`a failed response is never stored (${mode === 'http' ? 'httpCache' : 'cached()'})`, () => {
    for (const framework of FRAMEWORKS) {
      test(`${framework}: the store works at all (a plain 200 is stored, and replayed well-framed)`, {
        timeout: 15_000,
      }, async () => {
        await withApp(framework, mode, newCache(), async (app) => {
          const first = await rawGet(app.port, '/ok')
          assert.equal(first.body, 'ok#1')
          const second = await rawGet(app.port, '/ok')
          assert.equal(second.body, 'ok#1', 'the second request is a hit')
          assert.equal(app.calls.get('/ok'), 1)
          assert.ok(second.wellFramed, second.framing)
        })
      })

      test(`${framework}: a first chunk, then an error answered 200 by the error handler, is not stored`, {
        timeout: 15_000,
      }, async () => {
        await assertNotStored(framework, mode, '/chunk-then-throw')
      })

      test(`${framework}: a handler that threw, answered 200 by the error handler, is not stored`, {
        timeout: 15_000,
      }, async () => {
        await assertNotStored(framework, mode, '/throw', (body) => assert.equal(body, ERROR_PAGE))
      })

      test(`${framework}: a body shorter than its Content-Length is not stored`, {
        timeout: 15_000,
      }, async () => {
        await assertNotStored(framework, mode, '/short')
      })

      test(`${framework}: a streamed body whose source emitted an error is not stored`, {
        timeout: 15_000,
      }, async () => {
        await assertNotStored(framework, mode, '/stream-error')
      })
    }
  })
}
