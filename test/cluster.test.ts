/**
 * ClusterCache: in this process (no cluster: the store is here) and in a real
 * node:cluster of three workers (test/fixtures/cluster-primary.ts and
 * cluster-worker.ts), each an Express app on its own port.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, fork } from 'node:child_process'
import { once } from 'node:events'
import { after, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { Cache, ClusterCache, ConfigError, isCachetteMessage } from '../src/index.js'
import { backendContract } from '../src/testing/index.js'
import { collectingLogger, eventually } from './helpers.js'

const PRIMARY = fileURLToPath(new URL('./fixtures/cluster-primary.ts', import.meta.url))

interface Message {
  ready?: boolean
  ports?: Record<string, number>
  blocking?: boolean
  replaced?: boolean
  id?: number
  port?: number
  ipc?: { cachette: number; app: unknown[] }
}

/** A running test cluster: the primary process and each worker's HTTP port. */
class TestCluster {
  readonly ports = new Map<number, number>()
  readonly #primary: ChildProcess
  readonly #inbox: Message[] = []
  #waiter: (() => void) | undefined

  private constructor(primary: ChildProcess) {
    this.#primary = primary
    primary.on('message', (message: Message) => {
      this.#inbox.push(message)
      this.#waiter?.()
    })
  }

  static async start(workers: number, env: Record<string, string> = {}): Promise<TestCluster> {
    const primary = fork(PRIMARY, [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, CLUSTER_WORKERS: String(workers), ...env },
    })
    const cluster = new TestCluster(primary)
    const ready = await cluster.next((m) => m.ready === true, 60_000)
    for (const [id, port] of Object.entries(ready.ports ?? {})) cluster.ports.set(Number(id), port)
    return cluster
  }

  /** The next message from the primary that `match` accepts. */
  async next(match: (m: Message) => boolean, ms = 30_000): Promise<Message> {
    const deadline = Date.now() + ms
    for (;;) {
      const i = this.#inbox.findIndex(match)
      if (i >= 0) return this.#inbox.splice(i, 1)[0] as Message
      if (this.#primary.exitCode !== null) throw new Error('the cluster primary exited')
      if (Date.now() > deadline) throw new Error('no answer from the cluster primary')
      await new Promise<void>((resolve) => {
        this.#waiter = resolve
        setTimeout(resolve, 100)
      })
    }
  }

  /** The ids of the running workers, in order. */
  get workers(): number[] {
    return [...this.ports.keys()]
  }

  async fetch(worker: number, path: string, init: RequestInit = {}): Promise<Response> {
    const port = this.ports.get(worker)
    if (port === undefined) throw new Error(`no worker ${worker}`)
    return fetch(`http://127.0.0.1:${port}${path}`, init)
  }

  async json<T = unknown>(worker: number, path: string, init: RequestInit = {}): Promise<T> {
    const response = await this.fetch(worker, path, init)
    assert.equal(response.status, 200, `${path} on worker ${worker}`)
    return (await response.json()) as T
  }

  set(worker: number, key: string, value: unknown): Promise<unknown> {
    return this.json(worker, `/set/${encodeURIComponent(key)}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(value),
    })
  }

  async get(worker: number, key: string): Promise<unknown> {
    return (await this.json<{ value: unknown }>(worker, `/get/${encodeURIComponent(key)}`)).value
  }

  /** Blocks the primary's event loop for `ms`; resolves when the block starts. */
  async block(ms: number): Promise<void> {
    this.#primary.send({ cmd: 'block', ms })
    await this.next((m) => m.blocking === true)
  }

  /** Kills a worker (SIGKILL); the primary forks a replacement. Resolves the new worker's id. */
  async kill(id: number): Promise<number> {
    this.#primary.send({ cmd: 'kill', id })
    const replaced = await this.next((m) => m.replaced === true)
    this.ports.delete(id)
    this.ports.set(replaced.id as number, replaced.port as number)
    return replaced.id as number
  }

  /** What the primary's own `cluster.on('message')` listener received, sorted by isCachetteMessage. */
  async ipc(): Promise<{ cachette: number; app: unknown[] }> {
    this.#primary.send({ cmd: 'ipc' })
    return (await this.next((m) => m.ipc !== undefined)).ipc as { cachette: number; app: unknown[] }
  }

  async stop(): Promise<void> {
    if (this.#primary.exitCode !== null) return
    const exited = once(this.#primary, 'exit')
    this.#primary.send({ cmd: 'stop' })
    await exited
  }
}

describe('ClusterCache outside a cluster', () => {
  backendContract('ClusterCache (store in this process)', {
    create: () => new ClusterCache({ name: 'contract-local', threshold: 10_000 }),
  })

  it('behaves as a SimpleCache: a store in this process, not guarded, bounded by threshold', async () => {
    const cache = new Cache({
      CACHE_TYPE: 'ClusterCache',
      CACHE_THRESHOLD: 3,
      CACHE_UWSGI_NAME: 'small',
    })
    const backend = await cache.ready()
    assert.ok(backend instanceof ClusterCache)
    assert.equal(backend.remote, false)
    assert.equal(backend.name, 'small')
    for (const key of ['a', 'b', 'c', 'd']) await cache.set(key, key)
    assert.deepEqual(await cache.getMany('a', 'b', 'c', 'd'), [undefined, 'b', 'c', 'd'])
    assert.deepEqual(await backend.stats(), { entries: 3, threshold: 3, workers: 0 })
  })

  it('ClusterCaches with the same name share entries; other names are separate stores', async () => {
    const a = new ClusterCache({ name: 'shared' })
    const b = new ClusterCache({ name: 'shared' })
    const other = new ClusterCache({ name: 'other' })
    await a.set('k', { deep: [1, new Date(0)] })
    assert.deepEqual(await b.get('k'), { deep: [1, new Date(0)] })
    assert.equal(await other.get('k'), undefined)
    // A copy, not the stored object: changing what get returned changes nothing.
    const got = (await b.get('k')) as { deep: unknown[] }
    got.deep.push(2)
    assert.deepEqual(await a.get('k'), { deep: [1, new Date(0)] })
  })

  it('round-trips values JSON cannot carry (null, -0, NaN, Infinity, bigint, Buffer)', async () => {
    const cache = new ClusterCache({ name: 'values' })
    const values: unknown[] = [
      null,
      -0,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      10n ** 30n,
      Buffer.from('hi'),
    ]
    for (const [i, value] of values.entries()) await cache.set(`v${i}`, value)
    assert.deepEqual(await cache.getMany(values.map((_, i) => `v${i}`)), values)
    assert.ok(Object.is(await cache.get('v1'), -0))
  })

  it("CACHE_TYPE 'cluster', 'UWSGICache' and 'uwsgi' build a ClusterCache; the uWSGI names say once what they map to", async () => {
    const logger = collectingLogger()
    for (const type of [
      'ClusterCache',
      'cluster',
      'UWSGICache',
      'uwsgi',
      'flask_caching.contrib.uwsgicache.UWSGICache',
    ]) {
      const cache = new Cache({ CACHE_TYPE: type, logger })
      assert.ok((await cache.ready()) instanceof ClusterCache, type)
    }
    const notes = logger.warnings.filter((w) => w.includes('CACHETTE_UWSGI'))
    assert.equal(notes.length, 1)
    assert.match(notes[0] as string, /Node has no uWSGI.*ClusterCache\.serve\(\)/)
  })

  it('CACHE_UWSGI_NAME names the store (an @host part is dropped)', async () => {
    const cache = new Cache({
      CACHE_TYPE: 'uwsgi',
      CACHE_UWSGI_NAME: 'mycache@localhost:3031',
      logger: collectingLogger(),
    })
    assert.equal(((await cache.ready()) as ClusterCache).name, 'mycache')
  })

  it('bad options throw at construction, naming the option', () => {
    const names = (key: string) => (e: unknown) => e instanceof ConfigError && e.key === key
    assert.throws(() => new ClusterCache({ name: '' }), names('name'))
    assert.throws(() => new ClusterCache({ requestTimeout: 0 }), names('requestTimeout'))
    assert.throws(() => new ClusterCache({ requestTimeout: Number.NaN }), names('requestTimeout'))
    assert.throws(() => new ClusterCache({ threshold: -1 }), names('threshold'))
    assert.throws(() => ClusterCache.serve({ threshold: 1.5 }), names('threshold'))
    assert.throws(
      () => new Cache({ CACHE_TYPE: 'ClusterCache', CACHE_OPTIONS: { requestTimeout: -1 } }),
      names('requestTimeout'),
    )
  })

  it('inc is atomic and an unstorable value is a TypeError before anything is sent', async () => {
    const cache = new ClusterCache({ name: 'inc' })
    const values = await Promise.all(Array.from({ length: 100 }, () => cache.inc('n', 1)))
    assert.deepEqual(
      [...values].sort((a, b) => a - b),
      Array.from({ length: 100 }, (_, i) => i + 1),
    )
    await assert.rejects(
      cache.set('f', () => 1),
      TypeError,
    )
    await cache.set('s', 'text')
    await assert.rejects(cache.inc('s', 1), TypeError)
  })
})

// One cluster for the tests below (three workers); started here so that the
// contract tests run in a worker can be registered one by one.
const cluster = await TestCluster.start(3)
after(() => cluster.stop())
const [w1, w2, w3] = cluster.workers as [number, number, number]
const contract = await cluster.json<string[]>(w1, '/contract')

describe('ClusterCache in a cluster worker: the backend contract over IPC', () => {
  after(() => cluster.json(w1, '/contract-after', { method: 'POST' }))
  for (const [i, name] of contract.entries()) {
    it(name, async () => {
      const result = await cluster.json<{ ok: boolean; error?: string }>(w1, `/contract/${i}`, {
        method: 'POST',
      })
      assert.ok(result.ok, result.error)
    })
  }
})

describe('isCachetteMessage', () => {
  it("accepts ClusterCache's batches and answers, and nothing else", () => {
    assert.equal(isCachetteMessage({ cachette: 'cluster', q: [] }), true)
    assert.equal(isCachetteMessage({ cachette: 'cluster', r: [] }), true)
    for (const other of [
      null,
      undefined,
      'cluster',
      1,
      [],
      {},
      { cachette: 'other' },
      { app: 'cluster' },
    ]) {
      assert.equal(isCachetteMessage(other), false, JSON.stringify(other))
    }
  })
})

describe('ClusterCache in a real cluster (three workers)', () => {
  it("isCachetteMessage tells ClusterCache's IPC traffic from the app's own, in the primary and in a worker", async () => {
    await cluster.set(w1, 'ipc-key', 'v')
    assert.equal(await cluster.get(w1, 'ipc-key'), 'v')
    await cluster.json(w1, '/ipc/hello', { method: 'POST' })
    await cluster.json(w2, '/ipc/world', { method: 'POST' })
    const primary = await cluster.ipc()
    // The app's messages (and the fixture's own `listening` reports) pass; the operations do not.
    assert.ok(primary.cachette >= 2, `cachette messages seen by the primary: ${primary.cachette}`)
    assert.deepEqual(
      primary.app.filter((m) => (m as { app?: string }).app !== undefined),
      [{ app: 'hello' }, { app: 'world' }],
    )
    assert.ok(primary.app.every((m) => !isCachetteMessage(m)))
    // A worker's `process.on('message')` sees the primary's answers, and nothing else here.
    const worker = await cluster.json<{ cachette: number; app: unknown[] }>(w1, '/ipc')
    assert.ok(worker.cachette >= 2, `cachette messages seen by the worker: ${worker.cachette}`)
    assert.deepEqual(worker.app, [])
  })

  it('what one worker stores, the others read; a delete in one is seen by all', async () => {
    const value = { name: 'ada', tags: ['x', 'y'], n: 1.5, nil: null }
    await cluster.set(w1, 'shared', value)
    assert.deepEqual(await cluster.get(w2, 'shared'), value)
    assert.deepEqual(await cluster.get(w3, 'shared'), value)
    await cluster.json(w3, '/key/shared', { method: 'DELETE' })
    assert.equal(await cluster.get(w1, 'shared'), '(miss)')
  })

  it('inc is atomic across workers: 3 × 300 concurrent increments give 1..900, each once', async () => {
    const results = await Promise.all(
      [w1, w2, w3].map((w) =>
        cluster.json<{ values: number[] }>(w, '/inc/counter?n=300', { method: 'POST' }),
      ),
    )
    const all = results.flatMap((r) => r.values).sort((a, b) => a - b)
    assert.deepEqual(
      all,
      Array.from({ length: 900 }, (_, i) => i + 1),
    )
    assert.equal(await cluster.get(w2, 'counter'), 900)
  })

  it('a memoized result computed in one worker is a hit in the others; deleteMemoized in any worker forgets it', async () => {
    const first = await cluster.json<{ by: number; run: number }>(w1, '/memo/7')
    assert.deepEqual(first, { square: 49, by: w1, run: 1 })
    assert.deepEqual(await cluster.json(w2, '/memo/7'), first)
    assert.deepEqual(await cluster.json(w3, '/memo/7'), first)
    await cluster.json(w3, '/memo/7', { method: 'DELETE' })
    assert.deepEqual(await cluster.json(w2, '/memo/7'), { square: 49, by: w2, run: 1 })
  })

  it('a cached view rendered by one worker is a hit in the others (status, headers and body)', async () => {
    const first = await cluster.fetch(w2, '/page')
    const body = await first.text()
    assert.equal(body, `page by worker ${w2} (1)`)
    // The page is stored once its response has gone out: wait for that write to reach the primary.
    await eventually(
      async () => (await cluster.get(w1, 'view//page')) !== '(miss)',
      10_000,
      'the page reaching the primary',
    )
    for (const w of [w1, w3, w2]) {
      const response = await cluster.fetch(w, '/page')
      assert.equal(response.status, 200)
      assert.equal(response.headers.get('x-rendered-by'), String(w2))
      assert.equal(await response.text(), body)
    }
  })

  it('getOrSet with a lock runs the factory once for concurrent misses in all workers', async () => {
    const replies = await Promise.all(
      [w1, w2, w3].flatMap((w) =>
        Array.from({ length: 10 }, () => cluster.json<{ value: string }>(w, '/locked/report')),
      ),
    )
    assert.equal(new Set(replies.map((r) => r.value)).size, 1)
    assert.equal(await cluster.get(w1, 'runs:report'), 1)
  })

  it('a worker that is killed and replaced loses nothing', async () => {
    await cluster.set(w3, 'survivor', { kept: true })
    const replacement = await cluster.kill(w3)
    assert.notEqual(replacement, w3)
    assert.deepEqual(await cluster.get(replacement, 'survivor'), { kept: true })
    assert.equal(await cluster.get(replacement, 'counter'), 900)
  })

  it('a busy primary never hangs a request: the call times out (requestTimeout), the request gets a miss', async () => {
    const worker = cluster.workers[0] as number
    await cluster.set(worker, 'slow', 'value')
    // 5 s: still blocked when the request's call arrives, even if this process hears late.
    await cluster.block(5000)
    const timed = await cluster.json<{ value: unknown; ms: number }>(worker, '/timed/slow')
    assert.equal(timed.value, '(miss)', 'a miss, not the value after the block')
    // It waited for requestTimeout (a timer never fires early); the miss shows it did not wait out the block.
    assert.ok(timed.ms >= 250, `answered after ${timed.ms} ms`)
    // Once the primary is back, the late answer is dropped and calls work again.
    await eventually(
      async () => (await cluster.json<{ value: unknown }>(worker, '/timed/slow')).value === 'value',
      20_000,
      'calls working again after the block',
    )
    const warnings = await cluster.json<string[]>(worker, '/warnings')
    assert.ok(
      warnings.some((w) =>
        /ClusterCache\.get: no answer from the primary process within 300 ms/.test(w),
      ),
      warnings.join('\n'),
    )
  })
})

describe('ClusterCache when the primary does not serve the store', () => {
  it('every call is a miss after requestTimeout, and the worker says why, once', async () => {
    const unserved = await TestCluster.start(1, { CLUSTER_SERVE: '0' })
    try {
      const worker = unserved.workers[0] as number
      const timed = await unserved.json<{ value: unknown; ms: number }>(worker, '/timed/anything')
      assert.equal(timed.value, '(miss)')
      assert.ok(timed.ms < 1200, `answered after ${timed.ms} ms`)
      const warnings = await unserved.json<string[]>(worker, '/warnings')
      const notes = warnings.filter((w) => w.includes('CACHETTE_CLUSTER_NO_PRIMARY'))
      assert.equal(notes.length, 1, warnings.join('\n'))
      assert.match(notes[0] as string, /call ClusterCache\.serve\(\) in the primary/)
    } finally {
      await unserved.stop()
    }
  })
})
