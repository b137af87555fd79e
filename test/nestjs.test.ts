/**
 * cachette/nestjs with a real Nest application (test/fixtures/nest/app.ts,
 * compiled as `tsc` compiles a Nest app: legacy decorators and their
 * metadata) on both platforms, Express and Fastify, over real sockets; in
 * memory, and on a real redis-server shared by an Express and a Fastify app.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { Controller, Get, type INestApplication, Module } from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import { ExpressAdapter } from '@nestjs/platform-express'
import { FastifyAdapter } from '@nestjs/platform-fastify'
import {
  Cached,
  CachetteInterceptor,
  CachetteModule,
  Memoize,
} from '../src/frameworks/nestjs/index.js'
import { Cache, type CacheConfig, ConfigError } from '../src/index.js'
import { compileFixture } from './fixtures/nest/compile.js'
import { storesSettled } from './helpers.js'
import { type RedisServer, startRedis } from './servers/redis.js'

const fixture = await compileFixture()
const { runs } = fixture
const count = (name: string): number => runs[name] ?? 0

type Platform = 'express' | 'fastify'

/** A Nest app listening on a free loopback port. */
async function startApp(
  platform: Platform,
  config: CacheConfig,
  async = false,
): Promise<{ app: INestApplication; url: string }> {
  const app = await NestFactory.create(
    fixture.appModule(config, async),
    platform === 'express' ? new ExpressAdapter() : new FastifyAdapter(),
    { logger: false, abortOnError: false },
  )
  await app.listen(0, '127.0.0.1')
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1')
  return { app, url }
}

for (const platform of ['express', 'fastify'] as const) {
  describe(`cachette/nestjs on ${platform}`, () => {
    let app: INestApplication
    let url = ''
    const get = (path: string, init?: RequestInit) => fetch(`${url}${path}`, init)
    const json = async (path: string, init?: RequestInit) => (await get(path, init)).json()
    /** Runs `fn` and returns how many times handler `name` ran meanwhile. */
    const ranDuring = async (name: string, fn: () => Promise<unknown>) => {
      const before = count(name)
      await fn()
      return count(name) - before
    }

    before(async () => {
      ;({ app, url } = await startApp(platform, {
        CACHE_TYPE: 'SimpleCache',
        CACHE_THRESHOLD: 1000,
      }))
    })
    after(() => app?.close())

    it('provides the Cache and the interceptor, which serves the views from that Cache', async () => {
      const cache = app.get(Cache)
      assert.ok(cache instanceof Cache)
      assert.ok(app.get(CachetteInterceptor) instanceof CachetteInterceptor)
      assert.equal(app.get(CachetteInterceptor).cache, cache)
    })

    it('a cached handler runs once; the hit replays status, headers and body', async () => {
      const first = await get('/users/1')
      const body = await first.text()
      let second: Response | undefined
      const ran = await ranDuring('user', async () => {
        second = await get('/users/1')
      })
      assert.equal(ran, 0)
      assert.equal(second?.status, 200)
      assert.equal(await second?.text(), body)
      assert.match(second?.headers.get('content-type') ?? '', /^application\/json/)
      assert.equal(second?.headers.get('x-handler'), 'user')
      assert.equal(second?.headers.get('content-length'), String(Buffer.byteLength(body)))
    })

    it('a handler that is not @Cached runs every time', async () => {
      assert.equal(
        await ranDuring('uncached', async () => {
          await get('/uncached')
          await get('/uncached')
        }),
        2,
      )
    })

    it('@Memoize on a provider method: one run per argument; deleteMemoized and deleteCached from the service', async () => {
      const users = app.get(fixture.UsersService)
      const loads = await ranDuring('find', async () => {
        await users.find(77)
        await users.find(77)
        await users.find(78)
      })
      assert.equal(loads, 2)
      const page = (await json('/users/5')) as { loads: number; renders: number }
      assert.deepEqual(await json('/users/5'), page)
      // The service forgets the memoized user and the cached page.
      const renamed = await get('/users/5/rename', { method: 'POST' })
      assert.equal(renamed.status, 201, await renamed.text())
      const fresh = (await json('/users/5')) as { loads: number; renders: number }
      assert.ok(fresh.renders > page.renders, 'the page was rendered again')
      assert.ok(fresh.loads > page.loads, 'the user was loaded again')
    })

    it('invalidateTags drops the views tagged with it', async () => {
      const first = await (await get('/report')).text()
      assert.equal(await (await get('/report')).text(), first)
      await get('/reports/invalidate', { method: 'POST' })
      assert.notEqual(await (await get('/report')).text(), first)
    })

    it('a StreamableFile is cached with its type and disposition', async () => {
      const first = await get('/file')
      const body = await first.text()
      let hit: Response | undefined
      assert.equal(await ranDuring('file', async () => (hit = await get('/file'))), 0)
      assert.equal(await hit?.text(), body)
      assert.match(hit?.headers.get('content-type') ?? '', /^text\/plain/)
      assert.equal(hit?.headers.get('content-disposition'), 'attachment; filename="report.txt"')
    })

    it('a web Response the handler returns is cached with its own headers', async () => {
      const body = await (await get('/web')).text()
      let hit: Response | undefined
      assert.equal(await ranDuring('web', async () => (hit = await get('/web'))), 0)
      assert.equal(await hit?.text(), body)
      assert.match(hit?.headers.get('content-type') ?? '', /^text\/csv/)
      assert.equal(hit?.headers.get('x-web'), 'yes')
    })

    it('a handler that answers through @Res() is cached too (status 203 and its header replayed)', async () => {
      const first = await get('/raw')
      assert.equal(first.status, 203)
      const body = await first.text()
      let hit: Response | undefined
      assert.equal(await ranDuring('raw', async () => (hit = await get('/raw'))), 0)
      assert.equal(hit?.status, 203)
      assert.equal(hit?.headers.get('x-raw'), 'yes')
      assert.equal(await hit?.text(), body)
    })

    it('@HttpCode(202) is replayed', async () => {
      await get('/accepted')
      let hit: Response | undefined
      assert.equal(await ranDuring('accepted', async () => (hit = await get('/accepted'))), 0)
      assert.equal(hit?.status, 202)
    })

    it('queryString: true keys on the query', async () => {
      const ran = await ranDuring('search', async () => {
        const a = await json('/search?q=a')
        assert.deepEqual(await json('/search?q=a'), a)
        const b = (await json('/search?q=b')) as { q: string }
        assert.equal(b.q, 'b')
      })
      assert.equal(ran, 2)
    })

    it('requests with Authorization bypass the cache unless the handler allows them', async () => {
      const auth = { headers: { authorization: 'Bearer x' } }
      assert.equal(
        await ranDuring('private', async () => {
          await get('/private', auth)
          await get('/private', auth)
        }),
        2,
      )
      assert.equal(
        await ranDuring('shared', async () => {
          await get('/shared', auth)
          await get('/shared', auth)
        }),
        1,
      )
    })

    it('a response that sets a cookie is never stored', async () => {
      let last: Response | undefined
      const ran = await ranDuring('cookie', async () => {
        await get('/cookie')
        last = await get('/cookie')
      })
      assert.equal(ran, 2)
      assert.equal(last?.headers.get('set-cookie'), 'session=1')
    })

    it('an exception is never cached: the 404 is computed each time', async () => {
      const ran = await ranDuring('missing', async () => {
        assert.equal((await get('/missing')).status, 404)
        assert.equal((await get('/missing')).status, 404)
      })
      assert.equal(ran, 2)
    })

    it('@Cached() on a controller caches its GET handlers, never its POST ones', async () => {
      assert.equal(
        await ranDuring('class-a', async () => {
          await get('/class/a')
          await get('/class/a')
        }),
        1,
      )
      assert.equal(
        await ranDuring('class-b', async () => {
          await get('/class/b', { method: 'POST' })
          await get('/class/b', { method: 'POST' })
        }),
        2,
      )
    })

    it('closing the app closes the Cache the module built', async () => {
      const { app: other } = await startApp(platform, { CACHE_TYPE: 'SimpleCache' })
      const cache = other.get(Cache)
      let closed = 0
      const close = cache.close.bind(cache)
      cache.close = async () => {
        closed++
        await close()
      }
      await other.close()
      assert.equal(closed, 1)
    })
  })
}

describe('cachette/nestjs on Redis (forRootAsync), an Express and a Fastify app sharing it', () => {
  let redis: RedisServer
  const apps: INestApplication[] = []
  before(async () => {
    redis = await startRedis()
  })
  after(async () => {
    for (const app of apps) await app.close()
    await redis?.stop()
  })

  it('a page rendered by the Express app is a hit in the Fastify app; a rename in one is seen by the other', async () => {
    const config: CacheConfig = {
      CACHE_TYPE: 'RedisCache',
      CACHE_REDIS_URL: `redis://127.0.0.1:${redis.port}`,
      CACHE_KEY_PREFIX: 'nest:',
    }
    const express = await startApp('express', config, true)
    const fastify = await startApp('fastify', config, true)
    apps.push(express.app, fastify.app)
    const first = await (await fetch(`${express.url}/users/42`)).text()
    const before = count('user')
    const hit = await fetch(`${fastify.url}/users/42`)
    assert.equal(await hit.text(), first)
    assert.equal(count('user'), before, 'the Fastify app did not render it')
    assert.equal(hit.headers.get('x-handler'), 'user')
    await fetch(`${fastify.url}/users/42/rename`, { method: 'POST' })
    const again = await (await fetch(`${express.url}/users/42`)).text()
    assert.notEqual(again, first)
  })
})

/** Two versions of one controller: the same route, handlers whose source differs. */
class PageV1 {
  page() {
    return 'page, version 1'
  }
}
class PageV2 {
  page() {
    return 'page, version 2, changed'
  }
}
/** A controller with `@Cached({ sourceCheck: true })` on the class: each handler keys on its own source. */
class WholeSourced {
  whole() {
    return 'whole'
  }
}
// Applied as `tsc` applies `@Controller('sc') class { @Get('page') @Cached({ sourceCheck: true }) page() }`.
for (const target of [PageV1, PageV2]) {
  const proto = target.prototype
  const d = Object.getOwnPropertyDescriptor(proto, 'page') as PropertyDescriptor
  Cached({ sourceCheck: true })(proto, 'page', d)
  Get('page')(proto, 'page', d)
  Object.defineProperty(proto, 'page', d)
  Controller('sc')(target)
}
{
  const proto = WholeSourced.prototype
  const d = Object.getOwnPropertyDescriptor(proto, 'whole') as PropertyDescriptor
  Get('whole')(proto, 'whole', d)
  Object.defineProperty(proto, 'whole', d)
  Cached({ sourceCheck: true })(WholeSourced)
  Controller('sc')(WholeSourced)
}

describe('cachette/nestjs: sourceCheck', () => {
  const digest = (fn: Function) => createHash('sha256').update(fn.toString()).digest('hex')

  for (const platform of ['express', 'fastify'] as const) {
    it(`on ${platform}: keys change with the handler's source; deleteCached(Controller.prototype.method) removes them`, async () => {
      const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
      const apps: INestApplication[] = []
      try {
        for (const controller of [PageV1, PageV2]) {
          const root = class SourcedModule {}
          Module({
            imports: [CachetteModule.forRoot(cache)],
            controllers: [controller, WholeSourced],
          })(root)
          const app = await NestFactory.create(
            root,
            platform === 'express' ? new ExpressAdapter() : new FastifyAdapter(),
            { logger: false, abortOnError: false },
          )
          apps.push(app)
          await app.listen(0, '127.0.0.1')
          const url = (await app.getUrl()).replace('[::1]', '127.0.0.1')
          assert.equal(await (await fetch(`${url}/sc/page`)).text(), new controller().page())
          assert.equal(await (await fetch(`${url}/sc/whole`)).text(), 'whole')
          await storesSettled()
        }
        const v1 = `view//sc/page${digest(PageV1.prototype.page)}`
        const v2 = `view//sc/page${digest(PageV2.prototype.page)}`
        assert.notEqual(v1, v2)
        assert.equal(await cache.has(v1), true)
        assert.equal(await cache.has(v2), true)
        assert.equal(await cache.has('view//sc/page'), false)
        assert.equal(await cache.has(`view//sc/whole${digest(WholeSourced.prototype.whole)}`), true)

        assert.equal(await cache.deleteCached(PageV1.prototype.page, { path: '/sc/page' }), true)
        assert.equal(await cache.has(v1), false)
        assert.equal(await cache.has(v2), true)
        assert.equal(await cache.deleteCached(PageV2.prototype.page, { path: '/sc/page' }), true)
        assert.equal(await cache.has(v2), false)
      } finally {
        for (const app of apps) await app.close()
      }
    })
  }
})

describe('cachette/nestjs: bad input', () => {
  it('a bad @Cached option throws when the class is defined, naming it', () => {
    assert.throws(() => Cached({ timeout: -1 }), /timeout/)
    assert.throws(() => Cached({ nope: true } as never), /nope/)
  })

  it('standard (TC39) decorator calls get a TypeError that says to use legacy decorators', () => {
    const context = { kind: 'method', name: 'm' }
    assert.throws(
      () => (Cached() as unknown as (v: unknown, c: unknown) => void)(() => 1, context),
      /experimentalDecorators/,
    )
    assert.throws(
      () => (Memoize() as unknown as (v: unknown, c: unknown) => void)(() => 1, context),
      /experimentalDecorators/,
    )
  })

  it('a bad CACHE_TYPE fails the bootstrap with a ConfigError naming it', async () => {
    await assert.rejects(
      startApp('express', { CACHE_TYPE: 'NoSuchCache' }),
      (e: unknown) => e instanceof ConfigError && e.key === 'CACHE_TYPE',
    )
  })
})
