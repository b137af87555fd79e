/**
 * The view-caching behaviour matrix: every behaviour, as one table, run
 * against every framework adapter over real sockets. Each framework's driver
 * (test/matrix/<name>.ts) builds the routes the way that framework's users
 * write them. `MATRIX=koa,hono` runs a subset while developing an adapter.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { Cache, SimpleCache } from '../src/index.js'
import {
  collectingLogger,
  DownBackend,
  eventually,
  fakeClock,
  httpRequest,
  type Reply,
  sleep,
  storesSettled,
} from './helpers.js'
import {
  binaryBody,
  type FrameworkDriver,
  type MatrixOptions,
  type Responder,
  type RouteSpec,
  type Running,
} from './matrix/driver.js'

const DRIVERS: [name: string, module: string, exportName: string][] = [
  ['express', './matrix/express.js', 'expressDriver'],
  ['fastify', './matrix/fastify.js', 'fastifyDriver'],
  ['koa', './matrix/koa.js', 'koaDriver'],
  ['hono', './matrix/hono.js', 'honoDriver'],
  ['hono-wrapped', './matrix/hono.js', 'honoWrappedDriver'],
  ['nestjs', './matrix/nestjs.js', 'nestjsDriver'],
  ['nestjs-fastify', './matrix/nestjs.js', 'nestjsFastifyDriver'],
]
const only = process.env.MATRIX?.split(',').map((s) => s.trim())
const drivers: FrameworkDriver[] = []
for (const [name, module, exportName] of DRIVERS) {
  if (only && !only.includes(name)) continue
  drivers.push(
    ((await import(module)) as Record<string, FrameworkDriver>)[exportName] as FrameworkDriver,
  )
}

/** A raw request to a running server's URL (see `httpRequest`). */
function request(
  base: string,
  path: string,
  init: { method?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  return httpRequest(Number(new URL(base).port), path, init)
}

/** Stores happen once a response has finished: waits until every render's store decision was made. */
const settle = () => storesSettled()

const route = (
  path: string,
  respond: Responder,
  options: MatrixOptions | null = {},
): RouteSpec => ({
  path,
  label: path.slice(1),
  options,
  respond,
})
const text: Responder = { kind: 'text' }

interface Setup {
  server: Running
  cache: Cache
  clock: ReturnType<typeof fakeClock>
  get(path: string, headers?: Record<string, string>): Promise<Reply>
  head(path: string): Promise<Reply>
  calls(path: string): number
}

for (const driver of drivers) {
  describe(`view caching matrix: ${driver.name}`, () => {
    const running: Running[] = []
    after(() => Promise.all(running.map((r) => r.close())))

    async function setup(routes: RouteSpec[], cache?: Cache): Promise<Setup> {
      const clock = fakeClock()
      const c = cache ?? new Cache({ CACHE_TYPE: () => new SimpleCache({ clock: clock.now }) })
      const server = await driver.start(c, routes)
      running.push(server)
      const fetchOne = async (
        path: string,
        init: { method?: string; headers?: Record<string, string> },
      ) => {
        const reply = await request(server.url, path, init)
        await settle()
        return reply
      }
      return {
        server,
        cache: c,
        clock,
        get: (path, headers) => fetchOne(path, { headers }),
        head: (path) => fetchOne(path, { method: 'HEAD' }),
        calls: (path) => server.calls.get(path) ?? 0,
      }
    }

    it('the default key is view/ + path and a hit replays without running the handler', async () => {
      const s = await setup([route('/text', text)])
      assert.equal((await s.get('/text')).body.toString(), 'text#1')
      const hit = await s.get('/text')
      assert.equal(hit.body.toString(), 'text#1')
      assert.match(String(hit.headers['content-type']), /^text\/plain/)
      assert.equal(s.calls('/text'), 1)
      assert.equal(await s.cache.has('view//text'), true)
    })

    it('cache.deleteCached(path) removes the entry', async () => {
      const s = await setup([route('/del', text)])
      await s.get('/del')
      assert.equal(await s.cache.deleteCached('/del'), true)
      assert.equal((await s.get('/del')).body.toString(), 'del#2')
    })

    it('the query string is not part of the default key', async () => {
      const s = await setup([route('/text', text)])
      await s.get('/text?a=1')
      assert.equal((await s.get('/text?a=2')).body.toString(), 'text#1')
    })

    it('queryString keys on the pairs sorted by name, a repeated name keeping its order', async () => {
      const s = await setup([route('/qs', text, { queryString: true })])
      assert.equal((await s.get('/qs?a=1&b=2')).body.toString(), 'qs#1')
      assert.equal((await s.get('/qs?b=2&a=1')).body.toString(), 'qs#1')
      assert.equal((await s.get('/qs?a=2&b=2')).body.toString(), 'qs#2')
      assert.equal((await s.get('/qs?a=1&a=3')).body.toString(), 'qs#3')
      assert.equal((await s.get('/qs?a=3&a=1')).body.toString(), 'qs#4')
      assert.equal((await s.get('/qs?a=1&a=3')).body.toString(), 'qs#3')
    })

    it('a keyPrefix function names the key; a fixed keyPrefix shares one entry', async () => {
      const s = await setup([
        route('/kp', text, { keyPrefix: () => 'custom/key' }),
        route('/fixed1', text, { keyPrefix: 'shared' }),
        route('/fixed2', text, { keyPrefix: 'shared' }),
      ])
      await s.get('/kp')
      assert.equal(await s.cache.has('custom/key'), true)
      await s.get('/fixed1')
      assert.equal((await s.get('/fixed2')).body.toString(), 'fixed1#1')
    })

    it('unless bypasses the cache only on exactly true', async () => {
      let verdict: unknown = true
      const s = await setup([route('/u', text, { unless: () => verdict as boolean })])
      await s.get('/u')
      await s.get('/u')
      assert.equal(s.calls('/u'), 2)
      assert.equal(await s.cache.has('view//u'), false)
      verdict = 1
      await s.get('/u')
      assert.equal((await s.get('/u')).body.toString(), 'u#3')
    })

    it('forcedUpdate recomputes and stores the fresh response', async () => {
      let force = false
      const s = await setup([route('/f', text, { forcedUpdate: () => force })])
      await s.get('/f')
      force = true
      assert.equal((await s.get('/f')).body.toString(), 'f#2')
      force = false
      assert.equal((await s.get('/f')).body.toString(), 'f#2')
    })

    it('isStale on a hit recomputes', async () => {
      let stale = false
      const s = await setup([route('/st', text, { isStale: () => stale })])
      await s.get('/st')
      assert.equal((await s.get('/st')).body.toString(), 'st#1')
      stale = true
      assert.equal((await s.get('/st')).body.toString(), 'st#2')
    })

    it('a falsy responseFilter keeps the response out of the cache', async () => {
      const s = await setup([route('/rf', text, { responseFilter: () => false })])
      await s.get('/rf')
      assert.equal((await s.get('/rf')).body.toString(), 'rf#2')
      assert.equal(await s.cache.has('view//rf'), false)
    })

    it('the hit header is on hits only', async () => {
      const s = await setup([route('/h', text, { responseHitIndication: true })])
      assert.equal((await s.get('/h')).headers.hit_cache, undefined)
      assert.equal((await s.get('/h')).headers.hit_cache, 'True')
    })

    it('the route timeout applies, and a per-response timeout overrides it', async () => {
      const s = await setup([
        route('/long', text, { timeout: 100 }),
        route('/short', { kind: 'timeout', responseTimeout: 1 }, { timeout: 100 }),
      ])
      await s.get('/long')
      await s.get('/short')
      s.clock.advance(2000)
      assert.equal((await s.get('/long')).body.toString(), 'long#1')
      assert.equal((await s.get('/short')).body.toString(), 'short#2')
      s.clock.advance(101_000)
      assert.equal((await s.get('/long')).body.toString(), 'long#2')
    })

    it('status and headers are replayed', async () => {
      const s = await setup([route('/created', { kind: 'status', status: 201 })])
      await s.get('/created')
      const hit = await s.get('/created')
      assert.equal(hit.status, 201)
      assert.equal(hit.headers['x-custom'], 'yes')
      assert.match(String(hit.headers['content-type']), /^text\/plain/)
      assert.equal(hit.body.toString(), 'created#1')
      assert.equal(s.calls('/created'), 1)
    })

    it('404 and 500 are not stored by default; cacheStatuses opts in', async () => {
      const s = await setup([
        route('/missing', { kind: 'status', status: 404 }),
        route('/broken', { kind: 'status', status: 500 }),
        route('/gone', { kind: 'status', status: 404 }, { cacheStatuses: [404] }),
      ])
      for (const p of ['/missing', '/broken', '/gone', '/missing', '/broken', '/gone'])
        await s.get(p)
      assert.equal(s.calls('/missing'), 2)
      assert.equal(s.calls('/broken'), 2)
      assert.equal(s.calls('/gone'), 1)
      assert.equal((await s.get('/gone')).status, 404)
    })

    it('a response that sets a cookie is never stored', async () => {
      const s = await setup([route('/cookie', { kind: 'cookie' })])
      const first = await s.get('/cookie')
      assert.match(String(first.headers['set-cookie']), /session=abc/)
      await s.get('/cookie')
      assert.equal(s.calls('/cookie'), 2)
      assert.equal(await s.cache.has('view//cookie'), false)
    })

    it('HEAD is served from a cached GET; a HEAD miss stores nothing', async () => {
      const s = await setup([
        route('/hd', text, { responseHitIndication: true }),
        route('/headfirst', text),
      ])
      const got = await s.get('/hd')
      const head = await s.head('/hd')
      assert.equal(head.status, 200)
      assert.equal(head.headers.hit_cache, 'True')
      assert.equal(head.body.length, 0)
      assert.equal(head.headers['content-length'], String(got.body.length))
      assert.equal(s.calls('/hd'), 1)
      await s.head('/headfirst')
      assert.equal(await s.cache.has('view//headfirst'), false)
    })

    it('binary bodies are replayed byte for byte', async () => {
      const s = await setup([route('/bin', { kind: 'binary' })])
      await s.get('/bin')
      const hit = await s.get('/bin')
      assert.ok(hit.body.equals(binaryBody(1)))
      assert.equal(hit.headers['content-type'], 'application/octet-stream')
      assert.equal(s.calls('/bin'), 1)
    })

    it('streamed bodies are stored whole and replayed', async () => {
      const s = await setup([route('/stream', { kind: 'stream' })])
      assert.equal((await s.get('/stream')).body.toString(), 'stream#1|middle|end')
      const hit = await s.get('/stream')
      assert.equal(hit.body.toString(), 'stream#1|middle|end')
      assert.equal(s.calls('/stream'), 1)
    })

    it('JSON responses are replayed', async () => {
      const s = await setup([route('/json', { kind: 'json' })])
      await s.get('/json')
      const hit = await s.get('/json')
      assert.deepEqual(JSON.parse(hit.body.toString()), { label: 'json', n: 1 })
      assert.match(String(hit.headers['content-type']), /^application\/json/)
    })

    it('a request with Authorization bypasses the cache unless the route allows it', async () => {
      const s = await setup([
        route('/private', text),
        route('/shared', text, { allowAuthorized: true }),
      ])
      const auth = { authorization: 'Bearer t' }
      await s.get('/private', auth)
      await s.get('/private', auth)
      assert.equal(s.calls('/private'), 2)
      assert.equal(await s.cache.has('view//private'), false)
      await s.get('/shared', auth)
      await s.get('/shared', auth)
      assert.equal(s.calls('/shared'), 1)
    })

    it('a backend that throws: every request is served, uncached, and the error is logged', async () => {
      const logger = collectingLogger()
      const s = await setup(
        [route('/down', text)],
        new Cache({ CACHE_TYPE: () => new DownBackend(), logger }),
      )
      const a = await s.get('/down')
      const b = await s.get('/down')
      assert.equal(a.status, 200)
      assert.equal(b.body.toString(), 'down#2')
      assert.ok(logger.errors.length >= 1)
      assert.match(logger.errors[0] as string, /backend down/)
    })

    it('a handler that throws is not cached and reaches the framework error handler unchanged', async () => {
      const s = await setup([route('/boom', { kind: 'throw' })])
      const first = await s.get('/boom')
      assert.equal(first.status, 500)
      assert.equal(first.headers['x-error-handler'], 'boom boom')
      await s.get('/boom')
      assert.equal(s.calls('/boom'), 2)
      assert.equal(await s.cache.has('view//boom'), false)
    })

    it('50 concurrent requests on a cold page run the handler once', async () => {
      let n = 0
      const slow = async () => {
        await new Promise((resolve) => setTimeout(resolve, 100))
        return `slow#${++n}`
      }
      const s = await setup([route('/slow', { kind: 'call', fn: slow })])
      const replies = await Promise.all(
        Array.from({ length: 50 }, () => request(s.server.url, '/slow')),
      )
      assert.equal(s.calls('/slow'), 1)
      assert.deepEqual(new Set(replies.map((r) => r.body.toString())), new Set(['slow#1']))
      assert.ok(replies.every((r) => r.status === 200))
    })

    it('grace: a stale page is served at once and refreshed in the background', async () => {
      // Freshness is the engine's wall clock: 1 s, so the refreshed page stays
      // fresh while the test reads it back even on a loaded machine.
      const s = await setup([route('/grace', text, { timeout: 1, grace: 60 })])
      assert.equal((await s.get('/grace')).body.toString(), 'grace#1')
      await sleep(1100) // past the timeout: the page is stale
      const stale = (await Promise.all([s.get('/grace'), s.get('/grace'), s.get('/grace')])).map(
        (r) => r.body.toString(),
      )
      // The request that found the page stale was served it; on a loaded
      // machine the others may already get the refreshed page.
      assert.ok(stale.includes('grace#1'), stale.join(', '))
      assert.ok(
        stale.every((b) => b === 'grace#1' || b === 'grace#2'),
        stale.join(', '),
      )
      await eventually(async () => s.calls('/grace') >= 2, 10_000, 'the background render')
      await settle() // its store
      assert.equal(s.calls('/grace'), 2, 'one background render for three stale requests')
      const refreshed = await s.get('/grace')
      assert.equal(refreshed.body.toString(), 'grace#2')
      assert.equal(s.calls('/grace'), 2, 'the refreshed page is served from the cache')
    })

    it('tags: invalidateTags makes the page a miss', async () => {
      const s = await setup([route('/tagged', text, { tags: ['pages'] }), route('/other', text)])
      await s.get('/tagged')
      await s.get('/other')
      assert.equal((await s.get('/tagged')).body.toString(), 'tagged#1')
      await s.cache.invalidateTags(['pages'])
      assert.equal((await s.get('/tagged')).body.toString(), 'tagged#2')
      assert.equal((await s.get('/other')).body.toString(), 'other#1', 'untagged pages stay')
    })

    it('one Cache on two apps: a request uses its own app backend, memoize included', async () => {
      const cache = new Cache()
      let n = 0
      const memo = cache.memoize(async () => `memo${++n}`)
      const routes = [
        route('/memo', { kind: 'call', fn: () => memo() }, null),
        route('/view', text),
      ]
      const one = await driver.start(cache, routes, { initApp: { CACHE_TYPE: 'SimpleCache' } })
      const two = await driver.start(cache, routes, { initApp: { CACHE_TYPE: 'SimpleCache' } })
      running.push(one, two)
      assert.equal((await request(one.url, '/memo')).body.toString(), 'memo1')
      assert.equal((await request(two.url, '/memo')).body.toString(), 'memo2')
      assert.equal((await request(one.url, '/memo')).body.toString(), 'memo1')
      await request(one.url, '/view')
      await settle()
      await request(two.url, '/view')
      await settle()
      assert.equal(one.calls.get('/view'), 1)
      assert.equal(two.calls.get('/view'), 1, 'the second app does not see the first app view')
    })
  })
}
