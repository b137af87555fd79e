import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { describe, it } from 'node:test'
import { Hono } from 'hono'
import Koa from 'koa'
import { cached as honoCached } from '../src/frameworks/hono/index.js'
import { cached as koaCached } from '../src/frameworks/koa/index.js'
import { Cache } from '../src/index.js'
import { storesSettled } from './helpers.js'

/** Waits until the view's store (after the response) was made. */
const settle = () => storesSettled()

describe('deleteCached(middleware) for every adapter', () => {
  it('Koa: the middleware knows its options (queryString) and deletes one entry', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    const view = koaCached(cache, { queryString: true, keyPrefix: 'k/%s' })
    let n = 0
    const app = new Koa()
    app.use((ctx) =>
      view(ctx, async () => {
        ctx.body = `n${++n}`
      }),
    )
    const server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      await fetch(`${url}/p?a=1`).then((r) => r.text())
      await settle()
      assert.equal(await fetch(`${url}/p?a=1`).then((r) => r.text()), 'n1')
      const key = await view.makeCacheKey({ path: '/p', queryArgs: { a: '1' } })
      assert.match(key, /^k\/\/p[0-9a-f]{64}$/)
      assert.equal(await cache.deleteCached(view, { path: '/p', queryArgs: 'a=1' }), true)
      assert.equal(await fetch(`${url}/p?a=1`).then((r) => r.text()), 'n2')
    } finally {
      server.closeAllConnections()
      server.close()
    }
  })

  it('Hono: the handler knows its options and deletes one entry', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    const view = honoCached(cache, { keyPrefix: 'h/%s' })
    let n = 0
    const app = new Hono()
    app.get('/p', view, (c) => c.text(`n${++n}`))
    // The entry is stored once the response body has been read through.
    await (await app.request('/p')).text()
    await settle()
    assert.equal(await (await app.request('/p')).text(), 'n1')
    assert.equal(await cache.has('h//p'), true)
    assert.equal(await cache.deleteCached(view, { path: '/p' }), true)
    assert.equal(await (await app.request('/p')).text(), 'n2')
  })

  it('a function that is not a cachette middleware is rejected', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    await assert.rejects(
      cache.deleteCached((() => {}) as never),
      /pass a path, the middleware a cachette cached\(\) returned, or a handler decorated with @Cached\(\)/,
    )
  })
})
