/**
 * Attacks on cached views (`cached()`), each run on Express, Fastify, Koa and
 * Hono over real sockets: a page made for one user must never be replayed to
 * another. Every app below is built the way that framework's users write it:
 * outer middleware in front of the cache, a router, handlers.
 *
 * The attacks: headers set outside the cache (Cache-Control private/no-store,
 * Set-Cookie before the route or at header-write time) must veto storage; the
 * key must not merge paths the router tells apart (`%2F`, `%62`); the
 * response's `Vary` splits the cache; the key is what the router routed
 * (URL rewrites); `Proxy-Authorization` bypasses; repeated query parameters
 * keep their order.
 */
import assert from 'node:assert/strict'
import type { IncomingMessage, Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, describe, it } from 'node:test'
import { serve } from '@hono/node-server'
import express from 'express'
import Fastify from 'fastify'
import { Hono } from 'hono'
import Koa, { type Context as KoaContext } from 'koa'
import { cachette as fastifyCachette } from '../../src/frameworks/fastify/index.js'
import { cached as honoCached } from '../../src/frameworks/hono/index.js'
import { cached as koaCached } from '../../src/frameworks/koa/index.js'
import { Cache } from '../../src/index.js'
import { get, storesSettled } from '../helpers.js'
import { outerHono, outerNode } from './outer.js'

/** A request, then the wait for its store decision. */
async function request(port: number, path: string, headers: Record<string, string> = {}) {
  const reply = await get(port, path, headers)
  await storesSettled()
  return reply
}

/** Per-route options the apps use. */
const OPTIONS = {
  plain: { timeout: 300 },
  query: { timeout: 300, queryString: true },
  tenant: { timeout: 300, varyHeaders: ['host'] },
} as const

/** The body of each route, from the request's facts. */
const body = {
  account: (user: string | undefined) => `account of ${user ?? 'anon'}`,
  page: (page: string) => `page ${page}`,
  lang: (lang: string | undefined) => `lang ${lang ?? '-'}`,
  me: (cookie: string | undefined) => `me ${cookie ?? '-'}`,
  tenant: (host: string | undefined) => `tenant ${host ?? '-'}`,
  query: (values: string[]) => `a=${values.join(',')}`,
}

interface Running {
  port: number
  cache: Cache
  calls(path: string): number
  close(): Promise<void>
}

/** Counts handler runs by route name. */
function counter() {
  const calls = new Map<string, number>()
  return {
    hit(name: string) {
      calls.set(name, (calls.get(name) ?? 0) + 1)
    },
    calls: (name: string) => calls.get(name) ?? 0,
  }
}

async function listening(
  server: Server,
  calls: (p: string) => number,
  cache: Cache,
): Promise<Running> {
  if (!server.listening) await new Promise<void>((resolve) => server.once('listening', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    cache,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name]
  return Array.isArray(v) ? v.join(', ') : v
}

const frameworks: { name: string; start(cache: Cache): Promise<Running> }[] = [
  {
    name: 'express',
    async start(cache) {
      const { hit, calls } = counter()
      const app = express()
      app.use((req, res, next) => {
        outerNode(req, res)
        if (req.headers['x-admin'] === '1' && req.url === '/public') req.url = '/admin'
        next()
      })
      const c = (o: object = OPTIONS.plain) => cache.cached(o)
      app.get('/account', c(), (req, res) => {
        hit('account')
        res.send(body.account(header(req, 'x-user')))
      })
      app.get('/admin', c(), (_req, res) => {
        hit('admin')
        res.send('admin page')
      })
      app.get('/public', c(), (_req, res) => {
        hit('public')
        res.send('public page')
      })
      app.get('/lang', c(), (req, res) => {
        hit('lang')
        res.set('Vary', 'Accept-Language').send(body.lang(header(req, 'accept-language')))
      })
      app.get('/me', c(), (req, res) => {
        hit('me')
        res.set('Vary', 'Cookie').send(body.me(header(req, 'cookie')))
      })
      app.get('/star', c(), (_req, res) => {
        hit('star')
        res.set('Vary', '*').send('star')
      })
      app.get('/tenant', c(OPTIONS.tenant), (req, res) => {
        hit('tenant')
        res.send(body.tenant(header(req, 'host')))
      })
      app.get('/q', c(OPTIONS.query), (req, res) => {
        hit('q')
        const a = req.query.a
        res.send(body.query(Array.isArray(a) ? a.map(String) : [String(a)]))
      })
      app.get('/docs/intro', c(), (_req, res) => {
        hit('intro')
        res.send('intro (static)')
      })
      app.get('/a/b', c(), (_req, res) => {
        hit('a/b')
        res.send('static b')
      })
      app.get('/a/:x', c(), (req, res) => {
        hit('a/:x')
        res.send(`param ${req.params.x}`)
      })
      app.get('/:page', c(), (req, res) => {
        hit('page')
        res.send(body.page(req.params.page as string))
      })
      const server = app.listen(0, '127.0.0.1')
      return listening(server, calls, cache)
    },
  },
  {
    name: 'fastify',
    async start(cache) {
      const { hit, calls } = counter()
      const app = Fastify({
        rewriteUrl: (req) =>
          req.headers['x-admin'] === '1' && req.url === '/public' ? '/admin' : (req.url ?? '/'),
      })
      app.addHook('onRequest', async (request, reply) => {
        outerNode(request.raw, reply.raw)
        const outer = request.headers['x-outer']
        if (outer === 'private') reply.header('Cache-Control', 'private')
      })
      await app.register(fastifyCachette, { cache })
      const route = (
        path: string,
        options: object,
        handler: (
          h: (n: string) => string | undefined,
          params: Record<string, string>,
        ) => {
          body: string
          headers?: Record<string, string>
        },
        name: string,
      ) =>
        app.get(path, { config: { cache: options } }, async (request, reply) => {
          hit(name)
          const h = (n: string) => header(request.raw, n)
          const out = handler(h, request.params as Record<string, string>)
          for (const [k, v] of Object.entries(out.headers ?? {})) reply.header(k, v)
          return reply.type('text/html; charset=utf-8').send(out.body)
        })
      route('/account', OPTIONS.plain, (h) => ({ body: body.account(h('x-user')) }), 'account')
      route('/admin', OPTIONS.plain, () => ({ body: 'admin page' }), 'admin')
      route('/public', OPTIONS.plain, () => ({ body: 'public page' }), 'public')
      route(
        '/lang',
        OPTIONS.plain,
        (h) => ({ body: body.lang(h('accept-language')), headers: { Vary: 'Accept-Language' } }),
        'lang',
      )
      route(
        '/me',
        OPTIONS.plain,
        (h) => ({ body: body.me(h('cookie')), headers: { Vary: 'Cookie' } }),
        'me',
      )
      route('/star', OPTIONS.plain, () => ({ body: 'star', headers: { Vary: '*' } }), 'star')
      route('/tenant', OPTIONS.tenant, (h) => ({ body: body.tenant(h('host')) }), 'tenant')
      app.get('/q', { config: { cache: OPTIONS.query } }, async (request, reply) => {
        hit('q')
        const a = (request.query as Record<string, string | string[]>).a
        return reply
          .type('text/html; charset=utf-8')
          .send(body.query(Array.isArray(a) ? a : [String(a)]))
      })
      route('/docs/intro', OPTIONS.plain, () => ({ body: 'intro (static)' }), 'intro')
      route('/a/b', OPTIONS.plain, () => ({ body: 'static b' }), 'a/b')
      route('/a/:x', OPTIONS.plain, (_h, p) => ({ body: `param ${p.x}` }), 'a/:x')
      route('/:page', OPTIONS.plain, (_h, p) => ({ body: body.page(p.page as string) }), 'page')
      await app.listen({ port: 0, host: '127.0.0.1' })
      return listening(app.server, calls, cache)
    },
  },
  {
    name: 'koa',
    async start(cache) {
      const { hit, calls } = counter()
      const app = new Koa()
      type Handler = (ctx: KoaContext, params: string[]) => string
      // A router in the manner of @koa/router: patterns over the raw `ctx.path`, params decoded.
      const table: [RegExp, object, string, Handler][] = [
        [
          /^\/account$/,
          OPTIONS.plain,
          'account',
          (ctx) => body.account(ctx.get('x-user') || undefined),
        ],
        [/^\/admin$/, OPTIONS.plain, 'admin', () => 'admin page'],
        [/^\/public$/, OPTIONS.plain, 'public', () => 'public page'],
        [
          /^\/lang$/,
          OPTIONS.plain,
          'lang',
          (ctx) => {
            ctx.set('Vary', 'Accept-Language')
            return body.lang(ctx.get('accept-language') || undefined)
          },
        ],
        [
          /^\/me$/,
          OPTIONS.plain,
          'me',
          (ctx) => {
            ctx.set('Vary', 'Cookie')
            return body.me(ctx.get('cookie') || undefined)
          },
        ],
        [
          /^\/star$/,
          OPTIONS.plain,
          'star',
          (ctx) => {
            ctx.set('Vary', '*')
            return 'star'
          },
        ],
        [
          /^\/tenant$/,
          OPTIONS.tenant,
          'tenant',
          (ctx) => body.tenant(ctx.get('host') || undefined),
        ],
        [
          /^\/q$/,
          OPTIONS.query,
          'q',
          (ctx) => {
            const a = ctx.query.a
            return body.query(Array.isArray(a) ? a : [String(a)])
          },
        ],
        [/^\/docs\/intro$/, OPTIONS.plain, 'intro', () => 'intro (static)'],
        [/^\/a\/b$/, OPTIONS.plain, 'a/b', () => 'static b'],
        [/^\/a\/([^/]+)$/, OPTIONS.plain, 'a/:x', (_ctx, p) => `param ${p[0]}`],
        [/^\/([^/]+)$/, OPTIONS.plain, 'page', (_ctx, p) => body.page(p[0] as string)],
      ]
      const routes = table.map(
        ([re, options, name, fn]) => [re, koaCached(cache, options), name, fn] as const,
      )
      app.use(async (ctx, next) => {
        outerNode(ctx.req, ctx.res)
        if (ctx.get('x-outer') === 'late-cookie') {
          await next()
          ctx.set('Set-Cookie', `sid=${ctx.get('x-user') || 'anon'}-late`)
          return
        }
        await next()
      })
      app.use(async (ctx, next) => {
        if (ctx.get('x-admin') === '1' && ctx.path === '/public') ctx.url = '/admin'
        await next()
      })
      app.use(async (ctx) => {
        for (const [re, middleware, name, fn] of routes) {
          const m = re.exec(ctx.path)
          if (m === null) continue
          const params = m.slice(1).map((p) => decodeURIComponent(p))
          await middleware(ctx, async () => {
            hit(name)
            ctx.type = 'text/html; charset=utf-8'
            ctx.body = fn(ctx, params)
          })
          return
        }
      })
      const server = app.listen(0, '127.0.0.1')
      return listening(server, calls, cache)
    },
  },
  {
    name: 'hono',
    async start(cache) {
      const { hit, calls } = counter()
      const app = new Hono()
      app.use('*', outerHono)
      const c = (o: object = OPTIONS.plain) => honoCached(cache, o)
      app.get('/account', c(), (ctx) => {
        hit('account')
        return ctx.html(body.account(ctx.req.header('x-user')))
      })
      app.get('/admin', c(), (ctx) => {
        hit('admin')
        return ctx.html('admin page')
      })
      app.get('/public', c(), (ctx) => {
        hit('public')
        return ctx.html('public page')
      })
      app.get('/lang', c(), (ctx) => {
        hit('lang')
        ctx.header('Vary', 'Accept-Language')
        return ctx.html(body.lang(ctx.req.header('accept-language')))
      })
      app.get('/me', c(), (ctx) => {
        hit('me')
        ctx.header('Vary', 'Cookie')
        return ctx.html(body.me(ctx.req.header('cookie')))
      })
      app.get('/star', c(), (ctx) => {
        hit('star')
        ctx.header('Vary', '*')
        return ctx.html('star')
      })
      app.get('/tenant', c(OPTIONS.tenant), (ctx) => {
        hit('tenant')
        return ctx.html(body.tenant(ctx.req.header('host')))
      })
      app.get('/q', c(OPTIONS.query), (ctx) => {
        hit('q')
        return ctx.html(body.query(ctx.req.queries('a') ?? []))
      })
      app.get('/docs/intro', c(), (ctx) => {
        hit('intro')
        return ctx.html('intro (static)')
      })
      app.get('/a/b', c(), (ctx) => {
        hit('a/b')
        return ctx.html('static b')
      })
      app.get('/a/:x', c(), (ctx) => {
        hit('a/:x')
        return ctx.html(`param ${ctx.req.param('x')}`)
      })
      app.get('/:page', c(), (ctx) => {
        hit('page')
        return ctx.html(body.page(ctx.req.param('page')))
      })
      const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server
      return listening(server, calls, cache)
    },
  },
]

const caches: Cache[] = []
after(async () => {
  for (const cache of caches) await cache.close()
})

for (const framework of frameworks) {
  describe(`security: view keys and storage on ${framework.name}`, () => {
    /** A server on a fresh in-memory cache. */
    async function start(): Promise<Running> {
      const cache = new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_DEFAULT_TIMEOUT: 300 })
      caches.push(cache)
      return framework.start(cache)
    }

    for (const outer of ['private', 'no-store', 'cookie', 'late-cookie'] as const) {
      it(`outer ${outer}: alice's page is never replayed to an anonymous user`, async () => {
        const s = await start()
        try {
          const alice = await request(s.port, '/account', { 'x-outer': outer, 'x-user': 'alice' })
          assert.equal(alice.body, 'account of alice')
          const anon = await request(s.port, '/account')
          assert.equal(anon.body, 'account of anon')
          assert.equal(anon.headers['set-cookie'], undefined, 'no cookie of alice')
          // The anonymous page itself is cacheable: the veto was per response.
          assert.equal((await request(s.port, '/account')).body, 'account of anon')
          assert.equal(s.calls('account'), 2)
        } finally {
          await s.close()
        }
      })
    }

    it('an encoded slash (/docs%2Fintro) never poisons the static /docs/intro', async () => {
      const s = await start()
      try {
        const attack = await request(s.port, '/docs%2Fintro')
        assert.equal(attack.status, 200)
        assert.equal((await request(s.port, '/docs/intro')).body, 'intro (static)')
      } finally {
        await s.close()
      }
    })

    it('an encoded letter (/a/%62) never poisons the static /a/b', async () => {
      const s = await start()
      try {
        await request(s.port, '/a/%62')
        assert.equal((await request(s.port, '/a/b')).body, 'static b')
      } finally {
        await s.close()
      }
    })

    it("the response's Vary: Accept-Language keeps one variant per language", async () => {
      const s = await start()
      try {
        assert.equal((await request(s.port, '/lang', { 'accept-language': 'fr' })).body, 'lang fr')
        assert.equal((await request(s.port, '/lang', { 'accept-language': 'en' })).body, 'lang en')
        assert.equal((await request(s.port, '/lang', { 'accept-language': 'fr' })).body, 'lang fr')
        assert.equal((await request(s.port, '/lang', { 'accept-language': 'en' })).body, 'lang en')
        assert.equal((await request(s.port, '/lang')).body, 'lang -')
        assert.equal(s.calls('lang'), 3, 'fr and en each rendered once, then served from the cache')
      } finally {
        await s.close()
      }
    })

    it("the response's Vary: Cookie keeps one user's page from another", async () => {
      const s = await start()
      try {
        assert.equal((await request(s.port, '/me', { cookie: 'sid=a' })).body, 'me sid=a')
        assert.equal((await request(s.port, '/me', { cookie: 'sid=b' })).body, 'me sid=b')
        assert.equal((await request(s.port, '/me')).body, 'me -')
      } finally {
        await s.close()
      }
    })

    it('deleteCached forgets every variant of a page that varies', async () => {
      const s = await start()
      try {
        await request(s.port, '/lang', { 'accept-language': 'fr' })
        await request(s.port, '/lang', { 'accept-language': 'en' })
        await s.cache.deleteCached('/lang')
        assert.equal((await request(s.port, '/lang', { 'accept-language': 'fr' })).body, 'lang fr')
        assert.equal((await request(s.port, '/lang', { 'accept-language': 'en' })).body, 'lang en')
        assert.equal(s.calls('lang'), 4, 'both variants rendered again')
      } finally {
        await s.close()
      }
    })

    it('deleteCached with a decoded path forgets the page requested encoded', async () => {
      const s = await start()
      try {
        assert.equal((await request(s.port, '/caf%C3%A9')).body, 'page café')
        await request(s.port, '/caf%C3%A9')
        assert.equal(s.calls('page'), 1)
        await s.cache.deleteCached('/café')
        await request(s.port, '/caf%C3%A9')
        assert.equal(s.calls('page'), 2)
      } finally {
        await s.close()
      }
    })

    it('a response with Vary: * is never stored', async () => {
      const s = await start()
      try {
        await request(s.port, '/star')
        await request(s.port, '/star')
        assert.equal(s.calls('star'), 2)
      } finally {
        await s.close()
      }
    })

    it('varyHeaders: ["host"] keys each tenant apart', async () => {
      const s = await start()
      try {
        const a = await request(s.port, '/tenant', { host: 'a.example' })
        assert.equal(a.body, 'tenant a.example')
        const b = await request(s.port, '/tenant', { host: 'b.example' })
        assert.equal(b.body, 'tenant b.example')
        assert.equal((await request(s.port, '/tenant', { host: 'a.example' })).body, a.body)
        assert.equal(s.calls('tenant'), 2)
      } finally {
        await s.close()
      }
    })

    if (framework.name !== 'hono') {
      it('the key is what the router routed: a URL rewritten to /admin never fills /public', async () => {
        const s = await start()
        try {
          const admin = await request(s.port, '/public', { 'x-admin': '1' })
          assert.equal(admin.body, 'admin page')
          assert.equal((await request(s.port, '/public')).body, 'public page')
        } finally {
          await s.close()
        }
      })
    }

    it('Proxy-Authorization bypasses the cache like Authorization', async () => {
      const s = await start()
      try {
        const alice = await request(s.port, '/account', {
          'proxy-authorization': 'Basic YWxpY2U6eA==',
          'x-user': 'alice',
        })
        assert.equal(alice.body, 'account of alice')
        assert.equal((await request(s.port, '/account')).body, 'account of anon')
      } finally {
        await s.close()
      }
    })

    it('repeated query parameters keep their order in the key', async () => {
      const s = await start()
      try {
        assert.equal((await request(s.port, '/q?a=2&a=1')).body, 'a=2,1')
        assert.equal((await request(s.port, '/q?a=1&a=2')).body, 'a=1,2')
        assert.equal((await request(s.port, '/q?a=2&a=1')).body, 'a=2,1')
        assert.equal(s.calls('q'), 2)
      } finally {
        await s.close()
      }
    })
  })
}
