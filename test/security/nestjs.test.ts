/**
 * The view-caching attacks of view-keys.test.ts on `@Cached()` handlers of a
 * real Nest application (test/fixtures/nest/app.ts), on Express and on
 * Fastify, over real sockets: headers set outside the handler veto storage,
 * encoded paths never poison static routes, the response's `Vary` splits the
 * cache, `Proxy-Authorization` bypasses.
 */
import assert from 'node:assert/strict'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { after, before, describe, it } from 'node:test'
import type { INestApplication } from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import { ExpressAdapter } from '@nestjs/platform-express'
import { FastifyAdapter } from '@nestjs/platform-fastify'
import type { FastifyInstance } from 'fastify'
import { Cache } from '../../src/index.js'
import { compileFixture } from '../fixtures/nest/compile.js'
import { get, storesSettled } from '../helpers.js'
import { outerNode } from './outer.js'

const fixture = await compileFixture('security')
const count = (name: string): number => fixture.runs[name] ?? 0

for (const platform of ['express', 'fastify'] as const) {
  describe(`security: @Cached() on NestJS (${platform})`, () => {
    let app: INestApplication
    let port = 0
    const request = async (path: string, headers: Record<string, string> = {}) => {
      const reply = await get(port, path, headers)
      await storesSettled()
      return reply
    }

    before(async () => {
      app = await NestFactory.create(
        fixture.appModule({ CACHE_TYPE: 'SimpleCache' }),
        platform === 'express' ? new ExpressAdapter() : new FastifyAdapter(),
        { logger: false, abortOnError: false },
      )
      if (platform === 'express') {
        app.use((req: IncomingMessage, res: ServerResponse, next: () => void) => {
          outerNode(req, res)
          next()
        })
      } else {
        const fastify = app.getHttpAdapter().getInstance() as FastifyInstance
        fastify.addHook('onRequest', async (req, reply) => outerNode(req.raw, reply.raw))
      }
      await app.listen(0, '127.0.0.1')
      port = Number(new URL((await app.getUrl()).replace('[::1]', '127.0.0.1')).port)
    })
    after(() => app.close())

    for (const what of ['private', 'cookie', 'late-cookie'] as const) {
      it(`outer ${what}: alice's page is never replayed to an anonymous user`, async () => {
        const user = `alice-${what}`
        await app.get(Cache).deleteCached('/sec/account')
        const alice = await request('/sec/account', { 'x-outer': what, 'x-user': user })
        assert.equal(alice.body, `account of ${user}`)
        const anon = await request('/sec/account')
        assert.equal(anon.body, 'account of anon')
        assert.equal(anon.headers['set-cookie'], undefined)
      })
    }

    it('Proxy-Authorization bypasses the cache like Authorization', async () => {
      const before = count('sec-account')
      await request('/sec/account', { 'proxy-authorization': 'Basic eA==', 'x-user': 'mallory' })
      const anon = await request('/sec/account')
      assert.notEqual(anon.body, 'account of mallory')
      assert.ok(count('sec-account') > before)
    })

    it('an encoded slash (/sec/docs%2Fintro) never poisons the static /sec/docs/intro', async () => {
      await request('/sec/docs%2Fintro')
      assert.equal((await request('/sec/docs/intro')).body, 'intro (static)')
    })

    it("the response's Vary: Accept-Language keeps one variant per language", async () => {
      const runs = count('sec-lang')
      assert.equal((await request('/sec/lang', { 'accept-language': 'fr' })).body, 'lang fr')
      assert.equal((await request('/sec/lang', { 'accept-language': 'en' })).body, 'lang en')
      assert.equal((await request('/sec/lang', { 'accept-language': 'fr' })).body, 'lang fr')
      assert.equal(count('sec-lang') - runs, 2)
    })
  })
}
