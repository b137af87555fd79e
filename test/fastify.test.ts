/**
 * Fastify-specific behaviour of `cachette/fastify` that the framework-neutral
 * matrix (test/matrix.test.ts) does not cover: the two registration forms,
 * encapsulation, payload kinds, what runs on a hit, set-up errors and
 * `initApp`. Most tests use `app.inject()`; the ones about the socket use a
 * real server on a loopback port.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { describe, test } from 'node:test'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import {
  type CachedHooks,
  cached,
  cachette,
  type StoredView,
  setCacheTimeout,
} from '../src/frameworks/fastify/index.js'
import { Cache, ConfigError, InvalidTimeoutError } from '../src/index.js'
import { collectingLogger, storesSettled } from './helpers.js'

const TEXT = 'text/plain; charset=utf-8'

/** Waits until every render's store decision (made in `finish` listeners) was made. */
const settle = () => storesSettled()

function newCache(): Cache {
  return new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_DEFAULT_TIMEOUT: 300 })
}

/** A Fastify app with the plugin registered (awaited) and closed after the test. */
async function appWith(
  t: { after(fn: () => unknown): void },
  cache: Cache,
  options: Record<string, unknown> = {},
): Promise<FastifyInstance> {
  const app = Fastify()
  t.after(() => app.close())
  await app.register(cachette, { cache, ...options })
  return app
}

async function get(app: FastifyInstance, url: string, method: 'GET' | 'HEAD' = 'GET') {
  const res = await app.inject({ method, url })
  await settle()
  return res
}

describe('registration: the plugin and route config', () => {
  test('config.cache: true uses the plugin options; an object overrides them', async (t) => {
    const cache = newCache()
    const app = await appWith(t, cache, { responseHitIndication: true, timeout: 60 })
    let calls = 0
    app.get('/a', { config: { cache: true } }, async () => `a#${++calls}`)
    app.get('/b', { config: { cache: { keyPrefix: 'mine/%s', timeout: 5 } } }, async () => 'b')
    assert.equal((await get(app, '/a')).body, 'a#1')
    const hit = await get(app, '/a')
    assert.equal(hit.body, 'a#1')
    assert.equal(hit.headers.hit_cache, 'True')
    assert.equal(calls, 1)
    assert.equal(((await cache.get('view//a')) as StoredView).timeout, 60)

    await get(app, '/b')
    assert.equal((await get(app, '/b')).headers.hit_cache, 'True', 'plugin options still apply')
    assert.equal(((await cache.get('mine//b')) as StoredView).timeout, 5)
    assert.equal(await cache.get('view//b'), undefined)
  })

  test('sourceCheck digests the route handler; deleteCached removes default-keyed views', async (t) => {
    const cache = newCache()
    const app = await appWith(t, cache)
    const v1 = async () => 'one'
    const v2 = async () => 'two, changed'
    app.get('/v1', { config: { cache: { sourceCheck: true } } }, v1)
    app.get('/v2', { config: { cache: { sourceCheck: true } } }, v2)
    app.get('/plain', { config: { cache: true } }, async () => 'plain')
    for (const path of ['/v1', '/v2', '/plain']) await get(app, path)
    const digest = (fn: Function) => createHash('sha256').update(fn.toString()).digest('hex')
    assert.ok(await cache.has(`view//v1${digest(v1)}`))
    assert.ok(await cache.has(`view//v2${digest(v2)}`))
    assert.equal(await cache.has('view//v1'), false)
    assert.ok(await cache.has('view//plain'))
    assert.equal(await cache.deleteCached('/plain'), true)
    assert.equal(await cache.has('view//plain'), false)
  })

  test('routes without config.cache get no hooks and are never cached', async (t) => {
    const cache = newCache()
    const app = await appWith(t, cache)
    let calls = 0
    app.get('/plain', async () => `p#${++calls}`)
    app.get('/off', { config: { cache: false } }, async () => `o#${++calls}`)
    await app.ready()
    const routes = app.printRoutes({ includeHooks: true, commonPrefix: false })
    // Only the instance-level check for routes the plugin could not see.
    assert.doesNotMatch(routes, /cachetteOn(Request|Send|Error)/)
    assert.match(routes, /cachetteUnseenRoute/)
    await get(app, '/plain')
    await get(app, '/plain')
    await get(app, '/off')
    assert.equal(calls, 3)
    assert.equal(await cache.has('view//plain'), false)
  })

  test('the plugin decorates the instance with the Cache', async (t) => {
    const cache = newCache()
    const app = await appWith(t, cache)
    assert.equal(app.cache, cache)
    app.get('/memo', async (request) => {
      const load = request.server.cache.memoize(async (x: number) => x * 2)
      return String(await load(21))
    })
    assert.equal((await get(app, '/memo')).body, '42')
  })

  test('a route declared before the plugin loaded (register not awaited) warns once, naming it', async (t) => {
    const logger = collectingLogger()
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache', logger })
    const app = Fastify()
    t.after(() => app.close())
    app.register(cachette, { cache })
    let calls = 0
    app.get('/users/:id', { config: { cache: true } }, async () => `u#${++calls}`)
    app.get('/plain', async () => 'plain')
    for (let i = 0; i < 3; i++) await get(app, '/users/1')
    await get(app, '/users/2')
    await get(app, '/plain')
    assert.equal(calls, 4, 'not cached')
    assert.equal(logger.warnings.length, 1, logger.warnings.join('\n'))
    assert.match(
      logger.warnings[0] as string,
      /route GET \/users\/:id has config\.cache but is not cached: it was declared before the cachette plugin loaded\. Await the registration .*\[CACHETTE_FASTIFY_ROUTE_UNSEEN\]/,
    )
    // Awaited: cached, and nothing to warn about.
    const quiet = collectingLogger()
    const awaited = await appWith(t, new Cache({ CACHE_TYPE: 'SimpleCache', logger: quiet }))
    let n = 0
    awaited.get('/users/:id', { config: { cache: true } }, async () => `u#${++n}`)
    await get(awaited, '/users/1')
    await get(awaited, '/users/1')
    assert.deepEqual([n, quiet.warnings], [1, []])
  })

  test('config.cache on a route declared inside a plugin registered later needs no await', async (t) => {
    const cache = newCache()
    const app = Fastify()
    t.after(() => app.close())
    app.register(cachette, { cache })
    let calls = 0
    app.register(async (child) => {
      child.get('/later', { config: { cache: true } }, async () => `l#${++calls}`)
    })
    await get(app, '/later')
    await get(app, '/later')
    assert.equal(calls, 1)
  })

  test('the automatic HEAD route answers from the cached GET with its Content-Length', async (t) => {
    const cache = newCache()
    const app = await appWith(t, cache)
    app.get('/h', { config: { cache: true } }, async () => 'twelve bytes')
    await get(app, '/h')
    const head = await get(app, '/h', 'HEAD')
    assert.equal(head.statusCode, 200)
    assert.equal(head.headers['content-length'], '12')
    assert.equal(head.body, '')
  })
})

describe('registration: cached(cache, options) hooks', () => {
  test('spread into route options, or passed as the options', async (t) => {
    const cache = newCache()
    const app = Fastify()
    t.after(() => app.close())
    let calls = 0
    app.get('/spread', { ...cached(cache, { timeout: 50 }) }, async () => `s#${++calls}`)
    app.get('/direct', cached(cache, { keyPrefix: 'direct' }), async () => `d#${++calls}`)
    await get(app, '/spread')
    assert.equal((await get(app, '/spread')).body, 's#1')
    await get(app, '/direct')
    assert.equal((await get(app, '/direct')).body, 'd#2')
    assert.equal(calls, 2)
    assert.equal(((await cache.get('view//spread')) as StoredView).timeout, 50)
    assert.ok(await cache.has('direct'))
  })

  test('combined with route hooks of its own: those listed first run first, hits included', async (t) => {
    const cache = newCache()
    const app = Fastify()
    t.after(() => app.close())
    const view = cached(cache)
    const seen: string[] = []
    app.get(
      '/guarded',
      {
        onRequest: [
          (request, _reply, done) => {
            seen.push(`auth ${request.headers['x-user'] ?? '-'}`)
            done()
          },
          view.onRequest,
        ],
        onSend: view.onSend,
        onError: view.onError,
      },
      async () => 'secret',
    )
    await get(app, '/guarded')
    await get(app, '/guarded')
    assert.deepEqual(seen, ['auth -', 'auth -'])
  })

  test('the hooks object carries cacheTimeout, options and makeCacheKey, not enumerable', async () => {
    const cache = newCache()
    const view: CachedHooks = cached(cache, { queryString: true, timeout: 10 })
    assert.deepEqual(Object.keys(view).sort(), ['onError', 'onRequest', 'onSend'])
    assert.equal(view.cacheTimeout, 10)
    view.cacheTimeout = '1m'
    assert.equal(view.cacheTimeout, 60)
    assert.equal(view.options.queryString, true)
    const key = await view.makeCacheKey({ path: '/search', queryArgs: 'b=2&a=1' })
    assert.match(key, /^view\/\/search[0-9a-f]{64}$/)
    assert.equal(key, await view.makeCacheKey({ path: '/search', queryArgs: { a: 1, b: 2 } }))
  })

  test('cache.deleteCached(hooks, { path, queryArgs }) deletes with the hooks options', async (t) => {
    const cache = newCache()
    const app = Fastify()
    t.after(() => app.close())
    const view = cached(cache, { queryString: true, keyPrefix: 'f/%s' })
    let calls = 0
    app.get('/p', view, async () => `n${++calls}`)
    await get(app, '/p?a=1')
    assert.equal((await get(app, '/p?a=1')).body, 'n1')
    assert.equal(await cache.deleteCached(view, { path: '/p', queryArgs: 'a=1' }), true)
    assert.equal((await get(app, '/p?a=1')).body, 'n2')
  })

  test('cacheTimeout set on the hooks applies to new entries', async (t) => {
    const cache = newCache()
    const app = Fastify()
    t.after(() => app.close())
    const view = cached(cache, { timeout: 10 })
    view.cacheTimeout = 99
    app.get('/ct', view, async () => 'x')
    await get(app, '/ct')
    assert.equal(((await cache.get('view//ct')) as StoredView).timeout, 99)
  })

  test('a route with both forms is cached once, with its config.cache options', async (t) => {
    const cache = newCache()
    const app = await appWith(t, cache)
    app.get(
      '/both',
      { ...cached(cache, { keyPrefix: 'hooks' }), config: { cache: { keyPrefix: 'config' } } },
      async () => 'x',
    )
    await app.ready()
    const routes = app.printRoutes({ includeHooks: true, commonPrefix: false })
    assert.equal(routes.match(/cachetteOnRequest/g)?.length, 2, 'one per method (GET, HEAD)')
    await get(app, '/both')
    assert.ok(await cache.has('config'))
    assert.equal(await cache.has('hooks'), false)
  })

  test('typed routes accept the hooks', async (t) => {
    const cache = newCache()
    const app = Fastify()
    t.after(() => app.close())
    app.get<{ Querystring: { q: string } }>(
      '/typed',
      {
        ...cached<FastifyRequest<{ Querystring: { q: string } }>>(cache, {
          keyPrefix: (req) => `typed/${req.query.q}`,
        }),
      },
      async (request) => request.query.q,
    )
    await get(app, '/typed?q=shoes')
    assert.ok(await cache.has('typed/shoes'))
  })

  test('sourceCheck: the config form keys each version of the handler apart; the hooks cannot see it, so the option throws and CACHE_SOURCE_CHECK warns once', async (t) => {
    const digest = (fn: Function) => createHash('sha256').update(fn.toString()).digest('hex')
    // The config form sees route.handler: CACHE_SOURCE_CHECK keys each version apart.
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_SOURCE_CHECK: true })
    const v1 = async () => 'version 1'
    const v2 = async () => 'version 2, changed'
    for (const handler of [v1, v2]) {
      const app = await appWith(t, cache)
      app.get('/sc', { config: { cache: true } }, handler)
      await get(app, '/sc')
    }
    assert.ok(await cache.has(`view//sc${digest(v1)}`))
    assert.ok(await cache.has(`view//sc${digest(v2)}`))

    // The hooks see only Fastify's bound copy of the handler (its source is
    // `function () { [native code] }` for every route): sourceCheck: true is refused.
    assert.throws(
      () => cached(newCache(), { sourceCheck: true }),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.code === 'ERR_CACHETTE_CONFIG' &&
        e.key === 'sourceCheck' &&
        /cached\(cache, options\).*cannot see the route handler.*config: \{ cache: \{ sourceCheck: true \} \}/.test(
          e.message,
        ),
    )
    assert.doesNotThrow(() => cached(newCache(), { sourceCheck: false }))

    // CACHE_SOURCE_CHECK applies to every route: on the hooks it warns once and caches without the digest.
    const logger = collectingLogger()
    const flagged = new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_SOURCE_CHECK: true, logger })
    const app = Fastify()
    t.after(() => app.close())
    let calls = 0
    app.get('/h', cached(flagged), async () => `h#${++calls}`)
    app.get('/i', cached(flagged), async () => `i#${++calls}`)
    assert.equal((await get(app, '/h')).body, 'h#1')
    assert.equal((await get(app, '/h')).body, 'h#1')
    assert.equal((await get(app, '/i')).body, 'i#2')
    assert.ok(await flagged.has('view//h'))
    assert.ok(await flagged.has('view//i'))
    assert.equal(logger.warnings.length, 1, logger.warnings.join('\n'))
    assert.match(logger.warnings[0] as string, /sourceCheck.*\[CACHETTE_SOURCE_CHECK_UNAVAILABLE\]/)
  })
})

describe('encapsulation', () => {
  test('registered in a child context it caches only there; the decorator stays there', async (t) => {
    const cache = newCache()
    const app = Fastify()
    t.after(() => app.close())
    const calls = new Map<string, number>()
    const handler = (name: string) => async () => {
      const n = (calls.get(name) ?? 0) + 1
      calls.set(name, n)
      return `${name}#${n}`
    }
    let childCache: unknown
    let grandchildCache: unknown
    app.get('/root', { config: { cache: true } }, handler('root'))
    app.register(async (child) => {
      await child.register(cachette, { cache })
      childCache = child.cache
      child.get('/child', { config: { cache: true } }, handler('child'))
      child.register(async (grandchild) => {
        grandchildCache = grandchild.cache
        grandchild.get('/grandchild', { config: { cache: true } }, handler('grandchild'))
      })
    })
    app.register(async (sibling) => {
      assert.equal(sibling.hasDecorator('cache'), false)
      sibling.get('/sibling', { config: { cache: true } }, handler('sibling'))
    })
    await app.ready()
    assert.equal(app.hasDecorator('cache'), false, 'not visible to the parent')
    assert.equal(childCache, cache)
    assert.equal(grandchildCache, cache, 'visible to children')
    for (const path of ['/root', '/child', '/grandchild', '/sibling']) {
      await get(app, path)
      await get(app, path)
    }
    assert.deepEqual(Object.fromEntries(calls), { root: 2, child: 1, grandchild: 1, sibling: 2 })
  })

  test('a child registration overrides the parent options for its routes, without a second set of hooks', async (t) => {
    const cache = newCache()
    const app = await appWith(t, cache, { responseHitIndication: true })
    app.register(async (child) => {
      await child.register(cachette, { cache, keyPrefix: 'child/%s' })
      child.get('/x', { config: { cache: true } }, async () => 'x')
    })
    await app.ready()
    const routes = app.printRoutes({ includeHooks: true, commonPrefix: false })
    assert.equal(routes.match(/cachetteOnRequest/g)?.length, 2, 'one per method (GET, HEAD)')
    await get(app, '/x')
    const hit = await get(app, '/x')
    assert.equal(
      hit.headers.hit_cache,
      undefined,
      "the child's options, not merged with the parent's",
    )
    assert.ok(await cache.has('child//x'))
    assert.equal(await cache.has('view//x'), false)
  })

  test('the key is the full path as received, plugin prefix included', async (t) => {
    const cache = newCache()
    const app = await appWith(t, cache)
    app.register(
      async (api) => {
        api.get(
          '/users/:id',
          { config: { cache: true } },
          async (req) => (req.params as { id: string }).id,
        )
      },
      { prefix: '/api' },
    )
    await get(app, '/api/users/caf%C3%A9')
    assert.ok(await cache.has('view//api/users/caf%C3%A9'))
  })
})

describe('payloads are stored byte for byte', () => {
  const unicode = 'héllo ✓ 𝄞'

  async function twice(app: FastifyInstance, url: string) {
    const first = await get(app, url)
    const second = await get(app, url)
    return { first, second }
  }

  test('string, Buffer, object, returned value, schema-serialized object', async (t) => {
    const cache = newCache()
    const app = await appWith(t, cache, { responseHitIndication: true })
    const bytes = randomBytes(5000)
    const on = { config: { cache: true } }
    app.get('/string', on, (_req, reply) => {
      reply.type(TEXT).send(unicode)
    })
    app.get('/buffer', on, (_req, reply) => {
      reply.send(bytes)
    })
    app.get('/object', on, (_req, reply) => {
      reply.send({ text: unicode, n: 1, nested: [null, true] })
    })
    app.get('/returned', on, async () => ({ returned: unicode }))
    app.get(
      '/schema',
      {
        ...on,
        schema: {
          response: { 200: { type: 'object', properties: { kept: { type: 'string' } } } },
        },
      },
      async () => ({ kept: unicode, dropped: 'not in the schema' }),
    )
    const expected: Record<string, Buffer> = {
      '/string': Buffer.from(unicode),
      '/buffer': bytes,
      '/object': Buffer.from(JSON.stringify({ text: unicode, n: 1, nested: [null, true] })),
      '/returned': Buffer.from(JSON.stringify({ returned: unicode })),
      '/schema': Buffer.from(JSON.stringify({ kept: unicode })),
    }
    for (const [url, body] of Object.entries(expected)) {
      const { first, second } = await twice(app, url)
      assert.deepEqual(first.rawPayload, body, url)
      assert.equal(second.headers.hit_cache, 'True', url)
      assert.deepEqual(second.rawPayload, body, url)
      assert.equal(second.headers['content-type'], first.headers['content-type'], url)
      assert.deepEqual(((await cache.get(`view/${url}`)) as StoredView).body, body, url)
    }
  })

  test('a Node stream, a web ReadableStream and a Response', async (t) => {
    const cache = newCache()
    const app = await appWith(t, cache, { responseHitIndication: true })
    const on = { config: { cache: true } }
    const whole = Buffer.from(`${unicode} streamed`)
    // Split inside a multi-byte character, so chunks are not valid UTF-8 alone.
    const parts = [whole.subarray(0, 2), whole.subarray(2, 9), whole.subarray(9)]
    app.get('/node', on, (_req, reply) => {
      reply.type(TEXT).send(Readable.from(parts))
    })
    app.get('/strings', on, (_req, reply) => {
      reply.type(TEXT).send(Readable.from(['a', 'é', 'z']))
    })
    app.get('/web', on, (_req, reply) => {
      reply.type(TEXT).send(Readable.toWeb(Readable.from(parts)))
    })
    app.get('/response', on, (_req, reply) => {
      reply.send(
        new Response(Readable.toWeb(Readable.from(parts)) as ReadableStream, {
          status: 201,
          headers: { 'content-type': TEXT, 'x-from': 'response' },
        }),
      )
    })
    for (const url of ['/node', '/web', '/response']) {
      const { first, second } = await twice(app, url)
      assert.deepEqual(first.rawPayload, whole, url)
      assert.equal(second.headers.hit_cache, 'True', url)
      assert.deepEqual(second.rawPayload, whole, url)
    }
    const replayed = await get(app, '/response')
    assert.equal(replayed.statusCode, 201)
    assert.equal(replayed.headers['x-from'], 'response')
    assert.equal((await twice(app, '/strings')).second.body, 'aéz')
  })

  test('a stream over maxBodySize is sent whole and not stored', async (t) => {
    const cache = newCache()
    const app = await appWith(t, cache, { maxBodySize: 1000 })
    const big = randomBytes(5000)
    let calls = 0
    app.get('/big', { config: { cache: true } }, (_req, reply) => {
      calls++
      reply.send(Readable.from([big.subarray(0, 600), big.subarray(600)]))
    })
    const { first, second } = await twice(app, '/big')
    assert.deepEqual(first.rawPayload, big)
    assert.deepEqual(second.rawPayload, big)
    assert.equal(calls, 2)
    assert.equal(await cache.has('view//big'), false)
  })

  test('a client that goes away mid-stream leaves nothing stored', async (t) => {
    const cache = newCache()
    const app = await appWith(t, cache)
    let release: () => void = () => {}
    const released = new Promise<void>((r) => {
      release = r
    })
    let closed: () => void = () => {}
    const serverSawClose = new Promise<void>((r) => {
      closed = r
    })
    app.get('/slow', { config: { cache: true } }, (_req, reply) => {
      reply.raw.once('close', () => closed())
      reply.type(TEXT).send(
        Readable.from(
          (async function* () {
            yield 'first|'
            await released
            yield 'second'
          })(),
        ),
      )
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const port = (app.server.address() as AddressInfo).port
    await new Promise<void>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/slow', agent: false }, (res) => {
        res.once('data', () => {
          req.destroy()
          resolve()
        })
      })
      req.on('error', () => {})
    })
    await serverSawClose // the stream ends only after the server knows the client left
    release()
    await settle()
    assert.equal(await cache.has('view//slow'), false)
  })
})

describe('a hit is served in onRequest', () => {
  test('no parsing, validation, preHandler, handler or preSerialization; outer onRequest and onSend still run', async (t) => {
    const cache = newCache()
    const app = await appWith(t, cache)
    const ran: string[] = []
    let id = 0
    app.addHook('onRequest', (_req, reply, done) => {
      ran.push('global onRequest')
      reply.header('x-request-id', String(++id))
      done()
    })
    app.addHook('onSend', (_req, _reply, payload, done) => {
      ran.push('global onSend')
      done(null, payload)
    })
    const mark =
      (name: string) =>
      (_req: unknown, _reply: unknown, ...rest: unknown[]) => {
        ran.push(name)
        const done = rest[rest.length - 1] as (err: null, p?: unknown) => void
        if (name === 'preSerialization') done(null, rest[0])
        else done(null)
      }
    app.get(
      '/hooked',
      {
        config: { cache: true },
        preParsing: mark('preParsing') as never,
        preValidation: mark('preValidation') as never,
        preHandler: mark('preHandler') as never,
        preSerialization: mark('preSerialization') as never,
      },
      async () => {
        ran.push('handler')
        return { ok: true }
      },
    )
    const miss = await get(app, '/hooked')
    assert.deepEqual(ran, [
      'global onRequest',
      'preParsing',
      'preValidation',
      'preHandler',
      'handler',
      'preSerialization',
      'global onSend',
    ])
    ran.length = 0
    const hit = await get(app, '/hooked')
    assert.deepEqual(ran, ['global onRequest', 'global onSend'])
    assert.equal(hit.body, miss.body)
    assert.equal(miss.headers['x-request-id'], '1')
    assert.equal(hit.headers['x-request-id'], '2', 'headers set before the cache are not stored')
    const stored = (await cache.get('view//hooked')) as StoredView
    assert.equal(
      stored.headers.some(([n]) => n === 'x-request-id'),
      false,
    )
  })
})

describe('errors', () => {
  test('a handler that throws is not stored even when the error handler answers 200', async (t) => {
    const cache = newCache()
    const app = await appWith(t, cache)
    let calls = 0
    const seen: unknown[] = []
    const boom = new Error('boom')
    app.setErrorHandler((error, _req, reply) => {
      seen.push(error)
      reply.code(200).send('recovered')
    })
    app.get('/fails', { config: { cache: true } }, async () => {
      calls++
      throw boom
    })
    assert.equal((await get(app, '/fails')).body, 'recovered')
    assert.equal((await get(app, '/fails')).body, 'recovered')
    assert.equal(calls, 2)
    assert.deepEqual(seen, [boom, boom], 'the error reaches the error handler unchanged')
    assert.equal(await cache.has('view//fails'), false)
  })

  test('a preHandler that fails marks the response too', async (t) => {
    const cache = newCache()
    const app = await appWith(t, cache)
    app.setErrorHandler((_error, _req, reply) => {
      reply.code(200).send('fallback')
    })
    app.get(
      '/pre',
      {
        config: { cache: true },
        preHandler: async () => {
          throw new Error('nope')
        },
      },
      async () => 'never',
    )
    await get(app, '/pre')
    assert.equal(await cache.has('view//pre'), false)
  })

  test('setCacheTimeout accepts the reply or reply.raw', async (t) => {
    const cache = newCache()
    const app = await appWith(t, cache, { timeout: 100 })
    app.get('/r', { config: { cache: true } }, async (_req, reply) => {
      setCacheTimeout(reply, '2m')
      return 'r'
    })
    app.get('/raw', { config: { cache: true } }, async (_req, reply) => {
      setCacheTimeout(reply.raw, 7)
      return 'raw'
    })
    await get(app, '/r')
    await get(app, '/raw')
    assert.equal(((await cache.get('view//r')) as StoredView).timeout, 120)
    assert.equal(((await cache.get('view//raw')) as StoredView).timeout, 7)
  })
})

describe('bad input fails at set-up', () => {
  async function readyError(register: (app: FastifyInstance) => void): Promise<Error> {
    const app = Fastify()
    try {
      register(app)
      await app.ready()
    } catch (error) {
      return error as Error
    } finally {
      await app.close().catch(() => {})
    }
    assert.fail('expected a set-up error')
  }

  test('register without a cache, or with something else', async () => {
    for (const options of [{}, { cache: {} }, { cache: 'SimpleCache' }]) {
      const error = await readyError((app) => {
        app.register(cachette, options as never)
      })
      assert.ok(error instanceof TypeError, String(error))
      assert.match(error.message, /^cachette\/fastify: fastify\.register\(cachette, \{ cache \}\)/)
      assert.match(error.message, /needs a cachette Cache as `cache`/)
    }
  })

  test('unknown plugin options and bad values', async () => {
    const cache = newCache()
    const unknown = await readyError((app) => {
      app.register(cachette, { cache, tiemout: 5 } as never)
    })
    assert.ok(unknown instanceof TypeError)
    assert.match(unknown.message, /fastify\.register\(cachette/)
    assert.match(unknown.message, /unknown option "tiemout"/)

    const badTimeout = await readyError((app) => {
      app.register(cachette, { cache, timeout: 'soon' })
    })
    assert.ok(badTimeout instanceof InvalidTimeoutError)
    assert.match(badTimeout.message, /fastify\.register\(cachette/)

    const badType = await readyError((app) => {
      app.register(cachette, { cache, queryString: 'yes' as never })
    })
    assert.match(badType.message, /queryString must be a boolean/)
  })

  test('Fastify register options (prefix, logLevel) are not view options', async (t) => {
    const app = Fastify()
    t.after(() => app.close())
    await app.register(cachette, { cache: newCache(), prefix: '/x', logLevel: 'warn' } as never)
  })

  test('a bad config.cache names the route', async (t) => {
    const cache = newCache()
    const app = await appWith(t, cache)
    assert.throws(
      () => app.get('/a', { config: { cache: 'yes' as never } }, async () => 'a'),
      /cachette\/fastify: route GET \/a config\.cache must be true or an options object/,
    )
    assert.throws(
      () => app.get('/b', { config: { cache: { bogus: 1 } as never } }, async () => 'b'),
      (e: Error) =>
        e instanceof TypeError &&
        /route GET \/b config\.cache: unknown option "bogus"/.test(e.message),
    )
  })

  test('cached() without a cache, with unknown options, or with sourceCheck', () => {
    assert.throws(
      () => cached(undefined as never),
      /^TypeError: cachette\/fastify: cached\(cache, options\) needs a cachette Cache as its first argument/,
    )
    assert.throws(() => cached({} as never), /needs a cachette Cache as its first argument/)
    assert.throws(
      () => cached(newCache(), { bogus: true } as never),
      /cachette\/fastify: cached\(cache, options\): unknown option "bogus"/,
    )
    assert.throws(
      () => cached(newCache(), { sourceCheck: true }),
      /sourceCheck needs the route config form/,
    )
  })

  test('initApp on an instance that is already ready', async (t) => {
    const app = Fastify()
    t.after(() => app.close())
    await app.ready()
    assert.throws(
      () => newCache().initApp(app, { CACHE_TYPE: 'SimpleCache' }),
      /cachette\/fastify: call cache\.initApp\(fastify\) before the Fastify instance is ready/,
    )
  })
})

/** POSTs JSON over a real socket, sending the body 20 ms after the headers. */
function postSlowly(port: number, path: string, json: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) },
      },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          body += c
        })
        res.on('end', () => resolve(body))
      },
    )
    req.on('error', reject)
    req.flushHeaders()
    setTimeout(() => req.end(json), 20)
  })
}

describe('initApp: the app context', () => {
  test('two apps on one Cache: memoize in plain and nested routes (GET, POST) and cached routes use each app backend', async (t) => {
    const cache = new Cache()
    let loads = 0
    const load = cache.memoize(async (id: string) => `${id}@${++loads}`, { timeout: 60 })
    const apps: FastifyInstance[] = [Fastify(), Fastify()]
    for (const [i, app] of apps.entries()) {
      t.after(() => app.close())
      if (i === 0) cache.initApp(app, { CACHE_TYPE: 'SimpleCache' })
      await app.register(cachette, { cache })
      app.get('/plain', async () => load('x'))
      app.post('/body', async (request) => load((request.body as { id: string }).id))
      app.get('/view', { config: { cache: true } }, async () => `view of app ${i}`)
      app.register(async (child) => {
        child.get('/nested', async () => load('nested'))
      })
      // The second app is bound after its routes and plugins: lifecycle
      // hooks reach them whenever they were declared.
      if (i === 1) cache.initApp(app, { CACHE_TYPE: 'SimpleCache' })
    }
    const [app1, app2] = apps as [FastifyInstance, FastifyInstance]

    assert.equal((await get(app1, '/plain')).body, 'x@1')
    assert.equal((await get(app1, '/plain')).body, 'x@1')
    assert.equal((await get(app2, '/plain')).body, 'x@2', "app2 must not see app1's entry")
    assert.equal((await get(app2, '/plain')).body, 'x@2')

    // Over a real socket, the body arriving after the headers: the handler
    // runs from the body's stream events, after the onRequest hooks.
    const post = async (app: FastifyInstance) => {
      if (!app.server.listening) await app.listen({ port: 0, host: '127.0.0.1' })
      return postSlowly((app.server.address() as AddressInfo).port, '/body', '{"id":"p"}')
    }
    assert.equal(await post(app1), 'p@3')
    assert.equal(await post(app1), 'p@3', 'after body parsing too')
    assert.equal(await post(app2), 'p@4')

    assert.equal((await get(app1, '/nested')).body, 'nested@5')
    assert.equal((await get(app2, '/nested')).body, 'nested@6')

    await get(app1, '/view')
    await get(app2, '/view')
    const stored = (app: object) =>
      cache.runWithApp(app, async () =>
        ((await cache.get('view//view')) as StoredView).body.toString(),
      )
    assert.equal(await stored(app1), 'view of app 0')
    assert.equal(await stored(app2), 'view of app 1')
  })
})

describe('invalidateOnUnsafe', () => {
  test('a successful POST on a route with config.cache deletes the page of its URL', async (t) => {
    const cache = newCache()
    const app = await appWith(t, cache, { responseHitIndication: true })
    let renders = 0
    app.route({
      method: ['GET', 'POST'],
      url: '/items/:id',
      config: { cache: { invalidateOnUnsafe: true } },
      handler: async (request, reply) => {
        if (request.method === 'GET') return `item #${++renders}`
        reply.code((request.query as { fail?: string }).fail === '1' ? 500 : 201)
        return 'saved'
      },
    })
    const inject = async (url: string, method: 'GET' | 'POST' = 'GET') => {
      const res = await app.inject({ method, url })
      await settle()
      return res
    }
    await inject('/items/1')
    await inject('/items/2')
    assert.equal((await inject('/items/1')).headers.hit_cache, 'True')
    await inject('/items/1?fail=1', 'POST')
    assert.equal((await inject('/items/1')).headers.hit_cache, 'True', 'a failed write keeps it')
    assert.equal((await inject('/items/1', 'POST')).statusCode, 201)
    assert.equal((await inject('/items/1')).headers.hit_cache, undefined)
    assert.equal((await inject('/items/2')).headers.hit_cache, 'True')
  })
})
