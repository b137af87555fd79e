/**
 * TieredCache's invalidation bus: in one process with MemoryBus (two caches
 * over one shared second tier), the read/invalidate race, the retry queue and
 * the bus-down rules; then two real processes on a real redis-server with
 * RedisBus, including a server restart.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { RedisBus, redisBus } from '../src/backends/redis/index.js'
import {
  BaseCache,
  type Bus,
  type BusListener,
  type BusMessage,
  type BusSubscription,
  Cache,
  ConfigError,
  decodeBusMessage,
  encodeBusMessage,
  encodeValue,
  MemoryBus,
  SimpleCache,
  TieredCache,
  v8Serializer,
} from '../src/index.js'
import { collectingLogger, eventually, Lifetimes, silentLogger } from './helpers.js'
import { type RedisServer, startRedis } from './servers/redis.js'

const life = new Lifetimes()
after(() => life.stopAll())

/** Two TieredCaches (first tiers of 60 s) over one shared in-process store, on one MemoryBus. */
function pair(
  options: { bus?: MemoryBus | Bus | false; logger?: ReturnType<typeof collectingLogger> } = {},
) {
  const shared = new SimpleCache({ threshold: 10_000 })
  const bus = options.bus === undefined ? new MemoryBus() : options.bus
  const make = () =>
    new TieredCache({
      second: shared,
      firstTimeout: 60,
      logger: options.logger ?? silentLogger,
      ...(bus === false ? {} : { bus }),
    })
  return { shared, a: make(), b: make() }
}

describe('TieredCache with a MemoryBus', () => {
  test('the control: without a bus, the other cache keeps serving its first-tier copy', async () => {
    const { shared, a, b } = pair({ bus: false })
    await shared.set('k', 'v1')
    assert.equal(await b.get('k'), 'v1')
    await a.set('k', 'v2')
    assert.equal(await b.get('k'), 'v1', 'first tier of 60 s: stale without a bus')
  })

  test('every write and delete drops the key from the other first tiers', async () => {
    const { shared, a, b } = pair()
    const prime = async (key: string, value: unknown) => {
      await shared.set(key, value)
      assert.deepEqual(await b.get(key), value)
      assert.equal(await b.first.has(key), true, `${key} is in b's first tier`)
    }
    await prime('set', 1)
    await a.set('set', 2)
    assert.equal(await b.get('set'), 2)

    await prime('add', 1)
    await shared.delete('add') // behind b's back: b still holds 1
    assert.equal(await a.add('add', 2), true)
    assert.equal(await b.get('add'), 2)

    await prime('delete', 1)
    await a.delete('delete')
    assert.equal(await b.get('delete'), undefined)

    await prime('m1', 1)
    await prime('m2', 1)
    await a.setMany([
      ['m1', 2],
      ['m2', 2],
    ])
    assert.deepEqual(await b.getMany(['m1', 'm2']), [2, 2])

    await prime('d1', 1)
    await prime('d2', 1)
    await a.deleteMany(['d1', 'd2'])
    assert.deepEqual(await b.getMany(['d1', 'd2']), [undefined, undefined])

    await prime('u1', 1)
    assert.equal(await a.unlink(['u1']), 1)
    assert.equal(await b.get('u1'), undefined)

    await prime('n', 1)
    assert.equal(await a.inc('n', 5), 6)
    assert.equal(await b.get('n'), 6)

    await prime('c1', 1)
    await prime('c2', 1)
    await a.clear()
    assert.equal(b.first.size, 0, 'clear empties the other first tiers')
    assert.deepEqual(await b.getMany(['c1', 'c2']), [undefined, undefined])
  })

  test('a cache ignores its own messages (its first tier keeps what it just wrote)', async () => {
    const { shared, a } = pair()
    await a.set('k', 'mine')
    // Changed behind a's back, without a message: a's own first tier answers.
    await shared.set('k', 'behind')
    assert.equal(await a.get('k'), 'mine')
  })

  test('caches on other channels ignore each other; the channel defaults to the key prefix', async () => {
    const bus = new MemoryBus()
    const shared = new SimpleCache()
    const a = new TieredCache({ second: shared, bus, firstTimeout: 60 })
    const other = new TieredCache({ second: shared, bus, firstTimeout: 60, channel: 'other' })
    await shared.set('k', 'v1')
    assert.equal(await other.get('k'), 'v1')
    await a.set('k', 'v2')
    assert.equal(await other.get('k'), 'v1', 'a message of another channel is not heard')
    assert.equal(other.channel, 'cachette:tiered:other')
    const prefixed = Object.assign(new SimpleCache(), { keyPrefix: 'app1_' })
    assert.equal(new TieredCache({ second: prefixed }).channel, 'cachette:tiered:app1_')
  })

  test('a drop that overtakes a slow second-tier read is not undone by it (generations)', async () => {
    const bus = new MemoryBus()
    const shared = new SimpleCache()
    const slow = new PausingBackend(shared)
    const a = new TieredCache({ second: slow, bus, firstTimeout: 60 })
    const b = new TieredCache({ second: shared, bus, firstTimeout: 60 })
    await shared.set('k', 'old')

    // a misses its first tier and reads 'old' from the second; the read is held.
    const reading = a.get('k')
    await slow.reached
    // Meanwhile b writes and publishes; a hears the drop before its read returns.
    await b.set('k', 'new')
    slow.release()
    assert.equal(await reading, 'old', 'that read itself began before the write')
    assert.equal(await a.get('k'), 'new', "the old value did not land in a's first tier")
    assert.equal(slow.reads, 2)

    // The same with getMany, and with a's own write during its read.
    slow.pause()
    await shared.set('j', 'old')
    const many = a.getMany(['j'])
    await slow.reached
    await a.set('j', 'new')
    slow.release()
    assert.deepEqual(await many, ['old'])
    assert.equal(await a.get('j'), 'new')
  })

  test('without the drop, the same slow read does fill the first tier (the race test can fail)', async () => {
    const shared = new SimpleCache()
    const slow = new PausingBackend(shared)
    const a = new TieredCache({ second: slow, bus: new MemoryBus(), firstTimeout: 60 })
    await shared.set('k', 'old')
    const reading = a.get('k')
    await slow.reached
    await shared.set('k', 'new') // no message
    slow.release()
    assert.equal(await reading, 'old')
    assert.equal(await a.get('k'), 'old', 'filled: only the generation check prevents it')
  })

  test('failed publishes are kept and sent when the bus works again', async () => {
    const logger = collectingLogger()
    const bus = new FlakyBus(new MemoryBus())
    const { shared, a, b } = pair({ bus, logger })
    await shared.set('k', 'v1')
    assert.equal(await b.get('k'), 'v1')
    bus.failing = true
    await a.set('k', 'v2')
    await a.flushBus()
    assert.equal(await b.get('k'), 'v1', 'the message did not go out')
    assert.ok(
      logger.errors.some((m) => m.includes('bus publish') && m.includes('kept for a retry')),
      logger.errors.join('\n'),
    )
    bus.failing = false
    // The retry timer sends it (every second) without anyone asking.
    await eventually(async () => (await b.get('k')) === 'v2', 5000, 'the retried message arrives')
  })

  test('past busRetryLimit the queue becomes one clear, so nothing is lost', async () => {
    const logger = collectingLogger()
    const bus = new FlakyBus(new MemoryBus())
    const shared = new SimpleCache()
    const a = new TieredCache({ second: shared, bus, logger, busRetryLimit: 3, firstTimeout: 60 })
    const b = new TieredCache({ second: shared, bus, logger: silentLogger, firstTimeout: 60 })
    await shared.set('untouched', 'u')
    assert.equal(await b.get('untouched'), 'u')
    bus.failing = true
    for (let i = 0; i < 5; i++) await a.set(`k${i}`, i)
    await a.flushBus()
    assert.ok(logger.warnings.some((m) => m.includes('CACHETTE_BUS_QUEUE_FULL')))
    assert.equal(await b.first.has('untouched'), true)
    bus.failing = false
    await a.flushBus()
    assert.equal(bus.sent.at(-1)?.type, 'clear')
    assert.equal(b.first.size, 0, "b's first tier was cleared")
    await a.close()
    await b.close()
  })

  test('while the bus is down: the first tier is served (busDownTimeout) but not filled; back up, it is emptied', async () => {
    const logger = collectingLogger()
    const bus = new MemoryBus()
    const { shared, b } = pair({ bus, logger })
    await shared.set('k', 'v1')
    assert.equal(await b.get('k'), 'v1')
    bus.disconnect()
    assert.equal(b.busConnected, false)
    assert.ok(logger.warnings.some((m) => m.includes('CACHETTE_BUS_DOWN')))
    await shared.set('k', 'v2')
    assert.equal(await b.get('k'), 'v1', 'served from the first tier within busDownTimeout')
    await shared.set('j', 'j1')
    assert.equal(await b.get('j'), 'j1')
    assert.equal(await b.first.has('j'), false, 'not filled while the bus is down')
    await b.set('w', 'w1')
    assert.equal(await b.first.has('w'), false, 'nor by writes')
    bus.reconnect()
    assert.equal(b.busConnected, true)
    assert.equal(b.first.size, 0, 'emptied on reconnection: messages may have been missed')
    assert.ok(logger.warnings.some((m) => m.includes('CACHETTE_BUS_UP')))
    assert.equal(await b.get('k'), 'v2')
    assert.equal(await b.first.has('k'), true, 'filled again')
  })

  test('busDownTimeout: 0 stops serving the first tier as soon as the bus is down', async () => {
    const bus = new MemoryBus()
    const shared = new SimpleCache()
    const b = new TieredCache({
      second: shared,
      bus,
      firstTimeout: 60,
      busDownTimeout: 0,
      logger: silentLogger,
    })
    await shared.set('k', 'v1')
    assert.equal(await b.get('k'), 'v1')
    bus.disconnect()
    await shared.set('k', 'v2')
    assert.equal(await b.get('k'), 'v2')
    assert.equal(await b.has('gone'), false)
  })

  test('through the Cache facade: deleteMemoized in one process is seen by the other at once', async () => {
    const bus = new MemoryBus()
    const shared = new SimpleCache({ threshold: 10_000 })
    const config = {
      CACHE_TYPE: () => new TieredCache({ second: shared, bus, firstTimeout: 60 }),
      logger: silentLogger,
    }
    const one = new Cache(config)
    const two = new Cache(config)
    let calls = 0
    const load = async (id: number) => `${id}:${++calls}`
    // Memoized on one line, as the same code in two processes would be (same name).
    const memoized = (cache: Cache) => cache.memoize(load, { timeout: 300 })
    const loadOne = memoized(one)
    const loadTwo = memoized(two)
    assert.equal(await loadOne(1), '1:1')
    assert.equal(await loadTwo(1), '1:1', 'shared through the second tier')
    assert.equal(await loadTwo(1), '1:1')
    await one.deleteMemoized(loadOne)
    assert.equal(await loadTwo(1), '1:2', "the version record's drop reached two's first tier")
  })

  test('bad options and a redisBus() over a store that is not Redis are ConfigErrors', async () => {
    const second = new SimpleCache()
    assert.throws(
      () => new TieredCache({ second, bus: {} as unknown as Bus }),
      (e: unknown) => e instanceof ConfigError && /bus must be a Bus/.test(e.message),
    )
    assert.throws(() => new TieredCache({ second, busDownTimeout: -1 }), ConfigError)
    assert.throws(() => new TieredCache({ second, busRetryLimit: 0 }), ConfigError)
    assert.throws(
      () => new TieredCache({ second, bus: redisBus() }),
      (e: unknown) =>
        e instanceof ConfigError && e.key === 'CACHE_TYPE' && /redisBus\(\)/.test(e.message),
    )
    const cache = new Cache({ CACHE_TYPE: TieredCache.over(SimpleCache, { bus: redisBus() }) })
    await assert.rejects(cache.ready(), ConfigError)
  })

  test('the message format round-trips any key and rejects garbage', () => {
    const keys = ['a', '', 'view//x?y=1', 'ключ', '\u0000nul', '"quoted"']
    const m: BusMessage = { type: 'delete', keys, source: 'abc' }
    assert.deepEqual(decodeBusMessage(encodeBusMessage(m)), m)
    assert.deepEqual(decodeBusMessage(encodeBusMessage({ type: 'clear', source: 's' })), {
      type: 'clear',
      source: 's',
    })
    for (const bad of [
      '',
      'null',
      '{}',
      '{"v":2,"s":"x","t":"c"}',
      '{"v":1,"s":"x","t":"d","k":[1]}',
      'nope',
    ]) {
      assert.equal(decodeBusMessage(bad), undefined, bad)
    }
  })
})

// ---- two processes on a real Redis ------------------------------------------------

/** The client packages the Redis parts run on: ioredis (the default), and node-redis. */
const KINDS = ['ioredis', 'node-redis'] as const
type Kind = (typeof KINDS)[number]
/** The options choosing `kind`: none for ioredis (the default). */
const pick = (kind: Kind): { client?: Kind } => (kind === 'ioredis' ? {} : { client: kind })
/** Test names stay as they were on ioredis. */
const on = (kind: Kind): string => (kind === 'ioredis' ? '' : ' on node-redis')

const worker = fileURLToPath(new URL('./fixtures/tiered-bus-worker.ts', import.meta.url))

/** A child process running the worker fixture, driven by JSON commands. */
class Worker {
  readonly #child: ChildProcess
  readonly #waiting = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void }
  >()
  #next = 1
  stderr = ''
  readonly started: Promise<unknown>

  constructor(port: number, prefix: string, kind: Kind = 'ioredis') {
    const args = [
      '--import',
      'tsx',
      worker,
      String(port),
      prefix,
      ...(kind === 'ioredis' ? [] : [kind]),
    ]
    this.#child = spawn(process.execPath, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    this.#child.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString()
    })
    this.started = new Promise((resolve, reject) => {
      this.#waiting.set(0, { resolve, reject })
    })
    createInterface({ input: this.#child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const reply = JSON.parse(line) as { id: number; value?: unknown; error?: string }
      const waiter = this.#waiting.get(reply.id)
      this.#waiting.delete(reply.id)
      if (reply.error !== undefined) waiter?.reject(new Error(reply.error))
      else waiter?.resolve(reply.value)
    })
    this.#child.once('exit', (code) => {
      for (const w of this.#waiting.values())
        w.reject(new Error(`worker exited (${code}): ${this.stderr}`))
      this.#waiting.clear()
    })
  }

  call(op: string, key?: string, value?: unknown): Promise<unknown> {
    const id = this.#next++
    const reply = new Promise((resolve, reject) => this.#waiting.set(id, { resolve, reject }))
    this.#child.stdin?.write(`${JSON.stringify({ id, op, key, value })}\n`)
    return reply
  }

  get = (key: string) => this.call('get', key)
  set = (key: string, value: unknown) => this.call('set', key, value)

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null) return
    const gone = new Promise((resolve) => this.#child.once('exit', resolve))
    this.#child.stdin?.end()
    await gone
  }
}

for (const kind of KINDS) {
  describe(`TieredCache with RedisBus${on(kind)}, two processes on one redis-server`, () => {
    let server: RedisServer & { dir: string }
    let raw: Redis
    let p1: Worker
    let p2: Worker
    let p3: Worker
    /**
     * Reads `key` in `p` until its first tier holds `value`. A read whose key
     * was invalidated while it was under way (the writer's own message can
     * arrive during it) rightly does not fill the first tier, so one read may
     * not be enough.
     */
    const primed = (p: Worker, key: string, value: unknown) =>
      eventually(
        async () => (await p.get(key)) === value && (await p.call('firstHas', key)) === true,
        5000,
        `${key} in the first tier`,
      )
    /** Writes behind every cache's back (no message), in cachette's value format. */
    const behind = (key: string, value: unknown) =>
      raw.set(`app_${key}`, encodeValue(value, v8Serializer))

    before(async () => {
      server = await startRedis()
      life.defer(() => server.stop())
      raw = new Redis({ host: '127.0.0.1', port: server.port })
      raw.on('error', () => {}) // refused while the server is down in the restart test
      life.defer(async () => raw.disconnect())
      p1 = new Worker(server.port, 'app_', kind)
      p2 = new Worker(server.port, 'app_', kind)
      p3 = new Worker(server.port, 'other_', kind)
      for (const p of [p1, p2, p3]) life.defer(() => p.stop())
      await Promise.all([p1.started, p2.started, p3.started])
      for (const p of [p1, p2, p3]) {
        await eventually(async () => (await p.call('connected')) === true, 10_000, 'bus subscribed')
      }
    })

    test('a set, a delete and a clear in one process are seen by the other', async () => {
      await p2.set('k', 'v1')
      await primed(p1, 'k', 'v1')
      await behind('k', 'raw')
      assert.equal(await p1.get('k'), 'v1', 'p1 answers from its first tier (60 s)')

      await p2.set('k', 'v2')
      await eventually(async () => (await p1.get('k')) === 'v2', 5000, 'p1 sees the set')

      await p2.call('delete', 'k')
      await eventually(async () => (await p1.get('k')) === undefined, 5000, 'p1 sees the delete')

      await p2.set('a', 1)
      await primed(p1, 'a', 1)
      await p2.call('clear')
      await eventually(async () => (await p1.get('a')) === undefined, 5000, 'p1 sees the clear')
    })

    test('own messages and those of a cache with another prefix are ignored', async () => {
      // A barrier key: once p1 sees it change, every message published before has reached p1.
      await p2.set('barrier', 'b0')
      await primed(p1, 'barrier', 'b0')
      await p2.set('theirs', 't0')
      await primed(p1, 'theirs', 't0')

      await p1.set('own', 'mine')
      await p1.call('flush')
      await behind('own', 'behind')
      await behind('theirs', 'behind')
      await p3.set('theirs', 'other prefix')
      await p3.call('flush')
      await p2.set('barrier', 'b1')
      await p2.call('flush')
      await eventually(async () => (await p1.get('barrier')) === 'b1', 5000, 'p1 sees the barrier')

      assert.equal(await p1.get('own'), 'mine', "p1's own message did not drop its copy")
      assert.equal(await p1.get('theirs'), 't0', "the other prefix's message did not reach p1")
    })

    test('after the Redis connection comes back, the first tier is emptied', async () => {
      await p2.set('r', 'before')
      await primed(p1, 'r', 'before')
      await server.kill()
      await eventually(
        async () => (await p1.call('connected')) === false,
        10_000,
        'p1 sees the bus down',
      )
      assert.equal(await p1.get('r'), 'before', 'served from the first tier while Redis is down')
      await server.start()
      // The restarted server is empty; this write sends no message.
      await eventually(async () => (await behind('r', 'after')) === 'OK', 10_000, 'raw write')
      await eventually(async () => (await p1.call('connected')) === true, 15_000, 'p1 resubscribed')
      await eventually(
        async () => (await p1.get('r')) === 'after',
        15_000,
        'p1 reads the new value',
      )
      assert.match(p1.stderr, /CACHETTE_BUS_UP/)
    })
  })
}

// ---- RedisBus on its own --------------------------------------------------------

for (const kind of KINDS) {
  describe(`RedisBus${on(kind)}`, () => {
    test('delivers to every subscriber of a channel, namespaced by database; closes cleanly', async () => {
      const server = await startRedis()
      life.defer(() => server.stop())
      const url = `redis://127.0.0.1:${server.port}`
      const one = new RedisBus({ url, logger: silentLogger, ...pick(kind) })
      const two = new RedisBus({ url, logger: silentLogger, ...pick(kind) })
      const db1 = new RedisBus({ url: `${url}/1`, logger: silentLogger, ...pick(kind) })
      const got: string[] = []
      const up: string[] = []
      const listener = (name: string): BusListener => ({
        message: (m) =>
          got.push(`${name}:${m.type}:${m.type === 'delete' ? m.keys.join(',') : ''}`),
        up: () => up.push(name),
        down: () => {},
      })
      const subs: BusSubscription[] = [
        await two.subscribe('ch', listener('two')),
        await db1.subscribe('ch', listener('db1')),
      ]
      await eventually(async () => up.length === 2, 5000, 'subscribed')
      await one.publish('ch', { type: 'delete', keys: ['x', 'y'], source: 's' })
      await one.publish('other', { type: 'clear', source: 's' })
      await one.publish('ch', { type: 'clear', source: 's' })
      // Published after the others: once db1 has it, it would have had theirs too.
      await db1.publish('ch', { type: 'delete', keys: ['barrier'], source: 's' })
      await eventually(async () => got.length >= 3, 5000, 'delivered')
      assert.deepEqual(got.sort(), ['db1:delete:barrier', 'two:clear:', 'two:delete:x,y'])
      for (const s of subs) await s.unsubscribe()
      await Promise.all([one.close(), two.close(), db1.close()])
    })
  })
}

// ---- test buses and backends ------------------------------------------------------

/**
 * A second tier whose reads can be held after they have read: `reached`
 * resolves when a read has its value, `release()` lets it return. A test
 * backend around a real SimpleCache, for the read/invalidate race.
 */
class PausingBackend extends BaseCache {
  reads = 0
  reached!: Promise<void>
  #arrived!: () => void
  #gate!: Promise<void>
  #open!: () => void
  constructor(readonly inner: SimpleCache) {
    super({ defaultTimeout: 300 })
    this.pause()
  }
  /** Holds the next read. */
  pause(): void {
    this.reached = new Promise((resolve) => {
      this.#arrived = resolve
    })
    this.#gate = new Promise((resolve) => {
      this.#open = resolve
    })
  }
  release(): void {
    this.#open()
  }
  async #held<T>(read: Promise<T>): Promise<T> {
    this.reads++
    const value = await read
    this.#arrived()
    await this.#gate
    return value
  }
  get(key: string) {
    return this.#held(this.inner.get(key))
  }
  override getMany(keys: readonly string[]) {
    return this.#held(this.inner.getMany(keys))
  }
  set(key: string, value: unknown, timeout?: number) {
    return this.inner.set(key, value, timeout)
  }
  add(key: string, value: unknown, timeout?: number) {
    return this.inner.add(key, value, timeout)
  }
  delete(key: string) {
    return this.inner.delete(key)
  }
  has(key: string) {
    return this.inner.has(key)
  }
  clear() {
    return this.inner.clear()
  }
}

/** A Bus whose publishes can be made to fail (a test transport around a MemoryBus). */
class FlakyBus implements Bus {
  failing = false
  readonly sent: BusMessage[] = []
  constructor(readonly inner: MemoryBus) {}
  async publish(channel: string, message: BusMessage): Promise<void> {
    if (this.failing) throw new Error('FlakyBus: publish failed')
    this.sent.push(message)
    await this.inner.publish(channel, message)
  }
  subscribe(channel: string, listener: BusListener): Promise<BusSubscription> {
    return this.inner.subscribe(channel, listener)
  }
}
