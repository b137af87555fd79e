/**
 * The Varnish harness (test/servers/varnish.ts) against a tiny node:http
 * origin: Varnish caches what the origin's Cache-Control allows, passes
 * `private` responses through, answers (503) before its backend is up, takes
 * a custom VCL, and `stop()` ends it.
 */
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { after, before, describe, test } from 'node:test'
import { httpRequest, Lifetimes } from './helpers.js'
import { freePort, HOST } from './servers/process.js'
import { defaultVcl, startVarnish } from './servers/varnish.js'

const life = new Lifetimes()
after(() => life.stopAll())

/** An origin counting its requests per path. */
async function startOrigin(): Promise<{ port: number; hits: Map<string, number> }> {
  const hits = new Map<string, number>()
  const server: Server = createServer((req, res) => {
    const path = req.url ?? ''
    const n = (hits.get(path) ?? 0) + 1
    hits.set(path, n)
    if (path === '/cacheable') res.setHeader('Cache-Control', 'max-age=60')
    else if (path === '/private') res.setHeader('Cache-Control', 'private')
    else res.statusCode = 404
    res.end(`${path} ${n}`)
  })
  const port = await freePort()
  await new Promise<void>((resolve) => server.listen(port, HOST, resolve))
  life.defer(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return { port, hits }
}

describe('Varnish in front of an origin', () => {
  let origin: Awaited<ReturnType<typeof startOrigin>>
  let varnish: Awaited<ReturnType<typeof startVarnish>>

  before(async () => {
    origin = await startOrigin()
    varnish = await startVarnish({ backendPort: origin.port })
    life.defer(() => varnish.stop())
  })

  test('the readiness probe reaches no backend', () => {
    assert.equal(origin.hits.size, 0)
    assert.equal(varnish.url, `http://${HOST}:${varnish.port}`)
  })

  test('max-age=60: the second request is a hit with an Age header', async () => {
    const first = await httpRequest(varnish.port, '/cacheable')
    const second = await httpRequest(varnish.port, '/cacheable')
    assert.equal(first.status, 200)
    assert.equal(first.text, '/cacheable 1')
    assert.equal(second.text, '/cacheable 1')
    assert.equal(origin.hits.get('/cacheable'), 1)
    assert.match(String(second.headers.age), /^\d+$/)
    // X-Varnish carries the request's id, plus the cached object's on a hit.
    assert.match(String(second.headers['x-varnish']), /^\d+ \d+$/)
  })

  test('private: every request goes to the origin', async () => {
    const first = await httpRequest(varnish.port, '/private')
    const second = await httpRequest(varnish.port, '/private')
    assert.equal(first.text, '/private 1')
    assert.equal(second.text, '/private 2')
    assert.equal(origin.hits.get('/private'), 2)
  })

  test('stop() ends varnishd: connections are refused afterwards', async () => {
    await varnish.stop()
    await assert.rejects(httpRequest(varnish.port, '/cacheable'), { code: 'ECONNREFUSED' })
  })
})

test('Varnish starts before its backend (503), with a custom VCL', async () => {
  const backendPort = await freePort()
  const varnish = await startVarnish({
    backendPort,
    vcl: `${defaultVcl(backendPort)}
sub vcl_deliver {
  set resp.http.X-Harness = "custom";
}
`,
  })
  life.defer(() => varnish.stop())
  const reply = await httpRequest(varnish.port, '/')
  assert.equal(reply.status, 503)
  assert.equal(reply.headers['x-harness'], 'custom')
})
