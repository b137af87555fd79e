/**
 * README.md's code: every TypeScript block compiles under `strict`
 * (scripts/readme-blocks.ts: one program, errors reported by README line),
 * and the complete Express, Fastify, Koa, Hono, NestJS and Nunjucks examples
 * run against real servers and behave as the README says.
 */
import 'reflect-metadata'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { INestApplication } from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import type { Express } from 'express'
import type { FastifyInstance } from 'fastify'
import type Koa from 'koa'
import type { Environment } from 'nunjucks'
import {
  checkBlocks,
  extractBlocks,
  type ReadmeBlock,
  ROOT,
  subpathSources,
} from '../scripts/readme-blocks.js'
import { Cache, makeTemplateFragmentKey } from '../src/index.js'
import { servers as honoServers } from './readme/node-server.js'
import { preludes } from './readme/preludes.js'
import { runBlock } from './readme/run.js'
import { type RedisServer, startRedis } from './servers/redis.js'

const README = await readFile(join(ROOT, 'README.md'), 'utf8')
const blocks = extractBlocks(README)
const runnable = (name: string): ReadmeBlock => {
  const found = blocks.filter((b) => b.run === name)
  assert.equal(found.length, 1, `one README block marked run=${name}`)
  return found[0]!
}

// One program for every block, and for two broken copies of one that show the check can fail.
const express = runnable('express')
const broken: ReadmeBlock = {
  ...express,
  code: express.code.replace('req.params.id', 'req.params.id.nope()'),
}
const unmarked: ReadmeBlock = { ...express, prelude: [] }
const errors = checkBlocks([...blocks, broken, unmarked])
const errorsIn = (block: ReadmeBlock) => errors.filter((e) => e.block === block)

describe('README code blocks compile', () => {
  it('finds every TypeScript block, each checked or skipped with a reason', () => {
    const fences = README.match(/^\s*```(ts|typescript|js)\s*$/gm) ?? []
    assert.equal(blocks.length, fences.length)
    assert.ok(blocks.length >= 50, `${blocks.length} blocks`)
    for (const b of blocks) {
      for (const p of b.prelude) assert.ok(p in preludes, `README.md:${b.line}: prelude ${p}`)
    }
    const skipped = blocks.filter((b) => b.skip !== undefined)
    assert.ok(skipped.length <= 2, `skips: ${skipped.map((b) => `README.md:${b.line}`).join(', ')}`)
  })

  it('every block type-checks under strict, NodeNext', () => {
    const found = errors
      .filter((e) => e.block !== broken && e.block !== unmarked)
      .map((e) => `README.md:${e.line}: ${e.message}`)
    assert.deepEqual(found, [], `README blocks that do not compile:\n${found.join('\n')}`)
  })

  it('reports an error in a block at its README line', () => {
    assert.notEqual(broken.code, express.code)
    const line = express.code.split('\n').findIndex((l) => l.includes('req.params.id'))
    const found = errorsIn(broken)
    assert.equal(found.length, 1, JSON.stringify(found))
    assert.equal(found[0]!.line, express.line + line)
    assert.match(found[0]!.message, /^TS2339: Property 'nope' does not exist/)
    // A name the block uses that no prelude declares is an error too.
    assert.match(errorsIn(unmarked)[0]?.message ?? '', /Cannot find name 'loadUser'/)
  })

  it('resolves every package subpath to its source', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
      exports: Record<string, unknown>
    }
    const subpaths = Object.keys(pkg.exports)
      .filter((k) => k !== './package.json')
      .map((k) => (k === '.' ? 'cachette' : `cachette/${k.slice(2)}`))
    assert.deepEqual(Object.keys(subpathSources()).sort(), subpaths.sort())
  })
})

/** Starts a Node server on 127.0.0.1 and a free port; returns its base URL. */
async function listen(server: Server): Promise<string> {
  if (!server.listening) await once(server, 'listening')
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** Counts calls of a fake. */
function counted<A extends unknown[], R>(fn: (...args: A) => R) {
  const wrapped = (...args: A) => {
    wrapped.calls++
    return fn(...args)
  }
  wrapped.calls = 0
  return wrapped
}

const loadUser = () => counted((id: string) => ({ id, name: `user ${id}` }))

/** GET twice; returns both bodies. */
async function twice(url: string, init?: RequestInit): Promise<[string, string]> {
  const first = await fetch(url, init)
  assert.equal(first.status, 200, await first.clone().text())
  const a = await first.text()
  const second = await fetch(url, init)
  assert.equal(second.status, 200)
  return [a, await second.text()]
}

describe('README framework examples run', () => {
  const closers: (() => Promise<unknown>)[] = []
  let redis: RedisServer
  before(async () => {
    redis = await startRedis()
    closers.push(() => redis.stop())
  })
  after(async () => {
    for (const close of closers.reverse()) await close()
  })

  it('Express: the second request is a hit, the handler ran once', async () => {
    const fakes = { loadUser: loadUser() }
    const mod = await runBlock(runnable('express'), fakes)
    const server = (mod.app as Express).listen(0, '127.0.0.1')
    closers.push(async () => server.close())
    const [a, b] = await twice(`${await listen(server)}/users/42`)
    assert.deepEqual(JSON.parse(a), { id: '42', name: 'user 42' })
    assert.equal(b, a)
    assert.equal(fakes.loadUser.calls, 1)
  })

  it('Express behind validation(): a hit answers If-None-Match with 304', async () => {
    const { default: express } = await import('express')
    const fakes = {
      app: express(),
      cache: new Cache({ CACHE_TYPE: 'SimpleCache' }),
      loadUser: loadUser(),
    }
    await runBlock(runnable('express-304'), fakes)
    const server = fakes.app.listen(0, '127.0.0.1')
    closers.push(async () => server.close())
    const url = `${await listen(server)}/users/1`
    const first = await fetch(url)
    const etag = first.headers.get('etag')
    assert.match(etag ?? '', /^"/, 'a strong ETag')
    assert.equal(await first.text(), '{"id":"1","name":"user 1"}')
    const revalidated = await fetch(url, { headers: { 'if-none-match': etag! } })
    assert.equal(revalidated.status, 304)
    assert.equal(await revalidated.text(), '')
    assert.equal(fakes.loadUser.calls, 1)
  })

  it('Fastify: route config cache, typed params, one handler run', async () => {
    const fakes = { loadUser: loadUser() }
    const mod = await runBlock(runnable('fastify'), fakes)
    const app = mod.app as FastifyInstance
    closers.push(() => app.close())
    const url = await app.listen({ port: 0, host: '127.0.0.1' })
    const [a, b] = await twice(`${url}/users/7`)
    assert.deepEqual(JSON.parse(a), { id: '7', name: 'user 7' })
    assert.equal(b, a)
    assert.equal(fakes.loadUser.calls, 1)
  })

  it('Koa: the whole app cached, the page rendered once per path', async () => {
    const fakes = { loadPage: counted((path: string) => `<h1>${path}</h1>`) }
    const mod = await runBlock(runnable('koa'), fakes)
    const server = (mod.app as Koa).listen(0, '127.0.0.1')
    closers.push(async () => server.close())
    const base = await listen(server)
    assert.deepEqual(await twice(`${base}/about`), ['<h1>/about</h1>', '<h1>/about</h1>'])
    await twice(`${base}/contact`)
    assert.equal(fakes.loadPage.calls, 2)
  })

  it('Hono: served with @hono/node-server, the second request is a hit', async () => {
    const fakes = { loadUser: loadUser() }
    const started = honoServers.length
    await runBlock(runnable('hono'), fakes)
    const server = honoServers[started] as Server
    assert.ok(server, 'the block called serve()')
    closers.push(async () => server.close())
    const [a, b] = await twice(`${await listen(server)}/users/3`)
    assert.deepEqual(JSON.parse(a), { id: '3', name: 'user 3' })
    assert.equal(b, a)
    assert.equal(fakes.loadUser.calls, 1)
  })

  it('NestJS: on Redis, the page is cached and the service memoized', async () => {
    const find = counted(async (id: number) => ({ id, name: `user ${id}` }))
    const mod = await runBlock(
      runnable('nestjs'),
      { db: { users: { find } } },
      { 'redis://localhost:6379': `redis://127.0.0.1:${redis.port}` },
    )
    const app: INestApplication = await NestFactory.create(mod.AppModule as new () => object, {
      logger: false,
      abortOnError: false,
    })
    closers.push(() => app.close())
    await app.listen(0, '127.0.0.1')
    const base = (await app.getUrl()).replace('[::1]', '127.0.0.1')
    const [a, b] = await twice(`${base}/users/5`)
    assert.deepEqual(JSON.parse(a), { id: 5, name: 'user 5' })
    assert.equal(b, a)
    assert.equal(find.calls, 1)
    // ParseIntPipe: a non-numeric id is a 400, not a lookup.
    assert.equal((await fetch(`${base}/users/x`)).status, 400)
    assert.equal(find.calls, 1)
  })

  it('Nunjucks: {% cache %} per user on Redis, and a signed-out visitor gets a page', async () => {
    const views = await mkdtemp(join(tmpdir(), 'cachette-readme-views-'))
    closers.push(() => rm(views, { recursive: true, force: true }))
    // The README's sidebar tag, with a body that counts its renders.
    const tag = /\{% cache 300, "sidebar"[^%]*%\}/.exec(README)?.[0]
    assert.ok(tag, 'the README shows the sidebar tag')
    await writeFile(
      join(views, 'page.njk'),
      `<h1>{{ user.name if user else "Welcome" }}</h1>${tag}<aside>{{ built() }}</aside>{% endcache %}`,
    )
    const currentUser = (req: { headers: Record<string, string | string[] | undefined> }) => {
      const id = Number(req.headers['x-user'])
      return id ? { id, name: `user ${id}` } : undefined
    }
    const mod = await runBlock(
      runnable('nunjucks'),
      { currentUser },
      {
        'redis://localhost:6379': `redis://127.0.0.1:${redis.port}`,
        "nunjucks.configure('views'": `nunjucks.configure(${JSON.stringify(views)}`,
      },
    )
    let builds = 0
    ;(mod.env as Environment).addGlobal('built', () => `built ${++builds}`)
    const server = (mod.app as Express).listen(0, '127.0.0.1')
    closers.push(async () => server.close())
    const base = await listen(server)

    const [anon1, anon2] = await twice(base)
    assert.match(anon1, /<h1>Welcome<\/h1><aside>built 1<\/aside>/)
    assert.equal(anon2, anon1)
    const ada = { headers: { 'x-user': '42' } }
    const [u1, u2] = await twice(base, ada)
    assert.match(u1, /<h1>user 42<\/h1><aside>built 2<\/aside>/)
    assert.equal(u2, u1)
    assert.match(await (await fetch(base, { headers: { 'x-user': '7' } })).text(), /built 3/)
    const cache = mod.cache as Cache
    assert.equal(await cache.has(makeTemplateFragmentKey('sidebar', [42])), true)
    assert.equal(await cache.has(makeTemplateFragmentKey('sidebar', ['anonymous'])), true)
    await cache.clear()
    await cache.close()
  })
})
