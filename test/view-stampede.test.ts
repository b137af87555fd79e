import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { request } from 'node:http'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import express from 'express'
import { RedisCache } from '../src/backends/redis/index.js'
import { Cache } from '../src/index.js'
import { eventually, httpRequest, listen, silentLogger, sleep } from './helpers.js'
import { type RedisServer, startRedis } from './servers/redis.js'

const serverScript = fileURLToPath(new URL('./fixtures/view-lock-server.ts', import.meta.url))

/** Starts the fixture server in a child process; resolves it and its port. */
async function startServer(redisPort: number): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', serverScript, String(redisPort)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const [line] = (await once(child.stdout as NodeJS.ReadableStream, 'data')) as [Buffer]
  return { child, port: Number(line.toString().trim()) }
}

describe('cached views: stampede protection over Redis', () => {
  let redis: RedisServer
  const children: ChildProcess[] = []
  before(async () => {
    redis = await startRedis()
  })
  after(async () => {
    for (const c of children) c.kill()
    await redis?.stop()
  })

  it('two processes with lock: 200 concurrent requests on a cold page render it once', async () => {
    const a = await startServer(redis.port)
    const b = await startServer(redis.port)
    children.push(a.child, b.child)
    const replies = await Promise.all(
      Array.from({ length: 200 }, (_, i) => httpRequest(i % 2 === 0 ? a.port : b.port, '/page')),
    )
    assert.ok(replies.every((r) => r.status === 200))
    const bodies = new Set(replies.map((r) => r.body.toString()))
    assert.equal(bodies.size, 1, [...bodies].join(' | '))
    const check = new Cache({
      CACHE_TYPE: RedisCache,
      CACHE_REDIS_HOST: '127.0.0.1',
      CACHE_REDIS_PORT: redis.port,
      CACHE_KEY_PREFIX: 'viewlock:',
    })
    assert.equal(await check.get('runs'), 1, 'one render in the whole deployment')
    await check.close()
  })

  it('without lock, each process renders once (not once per request)', async () => {
    const cache = new Cache({
      CACHE_TYPE: RedisCache,
      CACHE_REDIS_HOST: '127.0.0.1',
      CACHE_REDIS_PORT: redis.port,
      CACHE_KEY_PREFIX: 'nolock:',
      logger: silentLogger,
    })
    let runs = 0
    const app = express()
    app.get('/p', cache.cached({ timeout: 60 }), async (_req, res) => {
      runs++
      await new Promise((resolve) => setTimeout(resolve, 200))
      res.send('p')
    })
    const server = await listen(app)
    try {
      const replies = await Promise.all(
        Array.from({ length: 200 }, () => httpRequest(server.port, '/p')),
      )
      assert.ok(replies.every((r) => r.status === 200 && r.body.toString() === 'p'))
      assert.equal(runs, 1)
    } finally {
      await server.close()
      await cache.close()
    }
  })

  it('a client that goes away mid-render does not hold the others up', async () => {
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
    let runs = 0
    const app = express()
    app.get('/abandoned', cache.cached({ timeout: 60 }), async (_req, res) => {
      runs++
      if (runs === 1) {
        // The first render never answers: its client gives up.
        return
      }
      res.send(`ok${runs}`)
    })
    const server = await listen(app)
    try {
      let leave: () => void = () => {}
      const first = new Promise<string>((resolve) => {
        const req = request({
          host: '127.0.0.1',
          port: server.port,
          path: '/abandoned',
          agent: false,
        })
        req.on('error', () => resolve('gone'))
        req.end()
        leave = () => req.destroy()
      })
      // The first request is the render the second one waits for.
      await eventually(async () => runs === 1, 10_000, 'the first render starting')
      const started = Date.now()
      const second = httpRequest(server.port, '/abandoned')
      await sleep(100) // lets the second request reach its wait (either way it must get ok2)
      leave()
      assert.equal(await first, 'gone')
      assert.equal((await second).body.toString(), 'ok2')
      // Well under the 10 s render wait: generous for a loaded machine.
      assert.ok(Date.now() - started < 8000, 'the waiter stopped waiting when the client left')
    } finally {
      await server.close()
    }
  })
})
