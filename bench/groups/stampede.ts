/**
 * stampede: 1,000 concurrent calls on one cold key whose value comes from a
 * slow "database" (a 20 ms timer), repeated over rounds with a fresh key
 * each time. Per contender and round: how often the factory ran, the p50
 * and p99 latency of the 1,000 calls (call start to resolution), the time
 * until the last one resolved, and the Redis commands the burst sent.
 *
 * Contenders: cachette `getOrSet` on SimpleCache, on RedisCache, and on
 * RedisCache with `lock: true`; cache-manager 7 `wrap` (memory and
 * @keyv/redis); bentocache `getOrSet` (memory and redis drivers); "no
 * protection" (get, factory, set: what an app writes by hand) on SimpleCache
 * and RedisCache; and the limit, the factory called once and its promise
 * shared by all 1,000 callers with no cache at all.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import KeyvRedis from '@keyv/redis'
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { redisDriver } from 'bentocache/drivers/redis'
import { createCache } from 'cache-manager'
import { Redis as IORedis } from 'ioredis'
import { Keyv } from 'keyv'
import { Cache } from '../../src/index.js'
import type { Group, GroupContext } from '../lib/group.js'
import { TTL_S } from '../lib/kv.js'
import {
  COUNT,
  type Comparison,
  collectGarbage,
  compareMetrics,
  MS,
  type MultiContenderSpec,
  percentile,
  type Role,
  ratioOf,
  spreadOf,
} from '../lib/measure.js'
import { commandsProcessed, infoOverhead, redisFacade, startBenchRedis } from '../lib/redis.js'
import type { GroupResult, Headline } from '../lib/report.js'

/** Concurrent calls per burst. */
const CALLS = 1000
/** The fake database call's duration. */
const FACTORY_MS = 20
const TTL_MS = TTL_S * 1000

const LIMIT = 'one factory call shared by all callers (no cache)'
const C_MEM = 'cachette getOrSet, SimpleCache'
const C_REDIS = 'cachette getOrSet, RedisCache'
const C_LOCK = 'cachette getOrSet lock: true, RedisCache'
const CM_MEM = 'cache-manager v7 wrap, memory'
const CM_REDIS = 'cache-manager v7 wrap, @keyv/redis'
const BENTO_MEM = 'bentocache getOrSet, memory driver'
const BENTO_REDIS = 'bentocache getOrSet, redis driver'
const NONE_MEM = 'no protection (get, factory, set), SimpleCache'
const NONE_REDIS = 'no protection (get, factory, set), RedisCache'

/** The row the fake database returns (the memory group's object value). */
interface Row {
  readonly id: number
  readonly name: string
  readonly email: string
  readonly active: boolean
  readonly roles: string[]
}

type Factory = () => Promise<Row>

/** One contender: `start` is called once per burst and returns what each of the calls does. */
interface Stampeder {
  readonly name: string
  readonly role: Role
  /** Whether the contender talks to Redis (its command count is then meaningful). */
  readonly redis: boolean
  start(key: string, factory: Factory): () => Promise<unknown>
}

type Metric = 'runs' | 'p50' | 'p99' | 'total' | 'commands'

export const stampedeGroup: Group = {
  name: 'stampede',
  async run(ctx: GroupContext): Promise<GroupResult> {
    const rounds = ctx.quick ? 3 : 15
    const { server, url, connection } = await startBenchRedis()
    const probe = new IORedis(connection)
    const mem = new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_THRESHOLD: 10_000 })
    const red = redisFacade(url)
    await red.ready()
    const cmMem = createCache()
    const cmRedis = createCache({
      stores: [new Keyv({ store: new KeyvRedis(url), namespace: 'cm' })],
    })
    const bentoMem = new BentoCache({
      default: 'memory',
      stores: { memory: bentostore().useL1Layer(memoryDriver({ maxItems: 10_000 })) },
    })
    const bentoRedis = new BentoCache({
      default: 'redis',
      stores: {
        redis: bentostore().useL2Layer(redisDriver({ connection })),
      },
    })

    // Each `start` returns a literal arrow of its own, so every contender
    // keeps its own call site (and type feedback).
    const contenders: Stampeder[] = [
      {
        name: LIMIT,
        role: 'limit',
        redis: false,
        start: (_key, factory) => {
          let shared: Promise<Row> | undefined
          return () => {
            shared ??= factory()
            return shared
          }
        },
      },
      {
        name: C_MEM,
        role: 'subject',
        redis: false,
        start: (key, factory) => () => mem.getOrSet(key, factory, { timeout: TTL_S }),
      },
      {
        name: C_REDIS,
        role: 'subject',
        redis: true,
        start: (key, factory) => () => red.getOrSet(key, factory, { timeout: TTL_S }),
      },
      {
        name: C_LOCK,
        role: 'subject',
        redis: true,
        start: (key, factory) => () => red.getOrSet(key, factory, { timeout: TTL_S, lock: true }),
      },
      {
        name: CM_MEM,
        role: 'peer',
        redis: false,
        start: (key, factory) => () => cmMem.wrap(key, factory, TTL_MS),
      },
      {
        name: CM_REDIS,
        role: 'peer',
        redis: true,
        start: (key, factory) => () => cmRedis.wrap(key, factory, TTL_MS),
      },
      {
        name: BENTO_MEM,
        role: 'peer',
        redis: false,
        start: (key, factory) => () => bentoMem.getOrSet({ key, factory, ttl: TTL_MS }),
      },
      {
        name: BENTO_REDIS,
        role: 'peer',
        redis: true,
        start: (key, factory) => () => bentoRedis.getOrSet({ key, factory, ttl: TTL_MS }),
      },
      {
        name: NONE_MEM,
        role: 'reference',
        redis: false,
        start: (key, factory) => async () => {
          const hit = await mem.get(key)
          if (hit !== undefined) return hit
          const row = await factory()
          await mem.set(key, row, TTL_S)
          return row
        },
      },
      {
        name: NONE_REDIS,
        role: 'reference',
        redis: true,
        start: (key, factory) => async () => {
          const hit = await red.get(key)
          if (hit !== undefined) return hit
          const row = await factory()
          await red.set(key, row, TTL_S)
          return row
        },
      },
    ]

    // What reading total_commands_processed twice in a row adds (the INFO
    // itself): subtracted from every burst's count.
    const overhead = await infoOverhead(probe, 'stampede')

    let burstNo = 0
    /** One burst: CALLS calls on a fresh key, all started in one synchronous loop. */
    const burst = async (s: Stampeder): Promise<Record<Metric, number>> => {
      const key = `stampede:${++burstNo}`
      let runs = 0
      const id = burstNo
      const factory: Factory = async () => {
        runs++
        await sleep(FACTORY_MS)
        return {
          id,
          name: `user-${id}`,
          email: `user${id}@example.com`,
          active: true,
          roles: ['reader'],
        }
      }
      const call = s.start(key, factory)
      collectGarbage()
      const before = await commandsProcessed(probe, 'stampede')
      const latency = new Float64Array(CALLS)
      let wrong = 0
      const pending: Promise<void>[] = new Array(CALLS)
      const t0 = performance.now()
      for (let i = 0; i < CALLS; i++) {
        const started = performance.now()
        pending[i] = call().then((v) => {
          latency[i] = performance.now() - started
          if ((v as Row | undefined)?.id !== id) wrong++
        })
      }
      await Promise.all(pending)
      const total = performance.now() - t0
      // Writes some libraries make after answering (none should, but count them here
      // rather than in the next contender's burst).
      await sleep(10)
      const commands = (await commandsProcessed(probe, 'stampede')) - before - overhead
      if (wrong > 0)
        throw new Error(`stampede: ${s.name}: ${wrong} of ${CALLS} calls got a wrong value`)
      latency.sort()
      return {
        runs,
        p50: percentile(latency, 0.5),
        p99: percentile(latency, 0.99),
        total,
        commands: s.redis ? commands : 0,
      }
    }

    const specs: MultiContenderSpec<Metric>[] = contenders.map((s) => ({
      name: s.name,
      role: s.role,
      sample: () => burst(s),
    }))
    const vsAll = [
      [C_MEM, LIMIT],
      [C_MEM, CM_MEM],
      [C_MEM, BENTO_MEM],
      [C_MEM, NONE_MEM],
      [C_REDIS, LIMIT],
      [C_REDIS, CM_REDIS],
      [C_REDIS, BENTO_REDIS],
      [C_REDIS, NONE_REDIS],
      [C_LOCK, LIMIT],
      [C_LOCK, CM_REDIS],
      [C_LOCK, BENTO_REDIS],
      [C_LOCK, NONE_REDIS],
      [C_LOCK, C_REDIS],
    ] as const
    const what = `${CALLS.toLocaleString('en-US')} concurrent calls on a cold key, ${FACTORY_MS} ms factory`
    try {
      ctx.log(`stampede: ${contenders.length} contenders, ${rounds} rounds`)
      const comparisons: Comparison[] = await compareMetrics<Metric>({
        id: 'stampede',
        rounds,
        contenders: specs,
        metrics: [
          {
            key: 'runs',
            id: 'stampede.runs',
            title: `stampede: factory runs per round (${what})`,
            unit: COUNT,
            pairs: [],
          },
          {
            key: 'p99',
            id: 'stampede.p99',
            title: `stampede: p99 latency of the ${CALLS.toLocaleString('en-US')} calls (call start to resolution)`,
            unit: MS,
            pairs: vsAll,
          },
          {
            key: 'p50',
            id: 'stampede.p50',
            title: `stampede: p50 latency of the ${CALLS.toLocaleString('en-US')} calls`,
            unit: MS,
            pairs: [],
          },
          {
            key: 'total',
            id: 'stampede.total',
            title: 'stampede: time per round (first call started to last call resolved)',
            unit: MS,
            pairs: [],
          },
          {
            key: 'commands',
            id: 'stampede.commands',
            title: 'stampede: Redis commands per round (0 for the in-memory contenders)',
            unit: COUNT,
            pairs: [],
          },
        ],
        log: ctx.log,
      })
      const [runsC, p99C] = comparisons as [Comparison, Comparison]
      const runsOf = (name: string) => {
        const c = runsC.contenders.find((x) => x.name === name)
        if (!c) throw new Error(`stampede: no contender ${name}`)
        return c
      }
      const headlines: Headline[] = [C_MEM, C_REDIS, C_LOCK].map((name) => {
        const r = runsOf(name)
        return {
          label: `${name.replace('cachette ', '')}: factory runs per round ÷ 1`,
          ratio: spreadOf(r.samples),
          // Every round, not the median: a single double run is a failure of single flight.
          target: { op: '<=', value: 1, met: r.max <= 1 },
        }
      })
      const p99 = (subject: string, other: string, label: string): Headline => ({
        label: `p99: ${label} (time)`,
        ratio: ratioOf(p99C, subject, other),
      })
      headlines.push(
        p99(C_MEM, LIMIT, 'getOrSet SimpleCache ÷ shared factory call'),
        p99(C_MEM, CM_MEM, 'getOrSet SimpleCache ÷ cache-manager memory'),
        p99(C_MEM, BENTO_MEM, 'getOrSet SimpleCache ÷ bentocache memory'),
        p99(C_REDIS, LIMIT, 'getOrSet Redis ÷ shared factory call'),
        p99(C_REDIS, CM_REDIS, 'getOrSet Redis ÷ cache-manager Redis'),
        p99(C_REDIS, BENTO_REDIS, 'getOrSet Redis ÷ bentocache Redis'),
        p99(C_REDIS, NONE_REDIS, 'getOrSet Redis ÷ no protection Redis'),
        p99(C_LOCK, C_REDIS, 'getOrSet Redis lock ÷ without lock'),
      )
      const runsLine = contenders
        .map((s) => {
          const r = runsOf(s.name)
          return `${s.name} ${r.median}${r.max !== r.min ? ` (${r.min}–${r.max})` : ''}`
        })
        .join('; ')
      return {
        group: 'stampede',
        description:
          `${CALLS.toLocaleString('en-US')} calls for one missing key, all started in the same tick; the ` +
          `value comes from a fake database call (a ${FACTORY_MS} ms timer returning a small object). ` +
          'Each round is one such burst per contender, on a fresh key, in interleaved order; the ' +
          'Redis contenders share one redis-server 7 on loopback started for the run. Per round: how ' +
          'often the factory ran, the p50 and p99 of the calls’ latencies (each call timed from its ' +
          'start to its resolution), the time until the last call resolved, and the commands Redis ' +
          'processed.',
        measuredAt: new Date().toISOString(),
        mode: ctx.quick ? 'quick' : 'full',
        settings: { rounds, calls: CALLS, factoryMs: FACTORY_MS, ttlSeconds: TTL_S },
        comparisons,
        headlines,
        notes: [
          `Factory runs per round, median (min–max when they differ): ${runsLine}.`,
          'The limit calls the factory on the first call and hands its promise to the other 999: ' +
            'the least a stampede-protected read can cost (the factory time plus promise resolution), ' +
            'with no cache read or write at all.',
          'cachette: concurrent calls for a key share one read and, on a miss, one factory call ' +
            '(one GET and one SET per burst); `lock: true` adds a Redis lock (SET NX PX with a ' +
            'token, released by a script) around the factory, for other processes, plus a second read ' +
            'after taking it. cache-manager 7 `wrap` also coalesces concurrent calls for a key before ' +
            'reading the store (one read per burst). bentocache `getOrSet` takes an in-process lock ' +
            'per key (async-mutex) and reads the store again once it holds it.',
          'No protection: `cache.get`, then the factory on a miss, then `cache.set` (cachette facade): ' +
            'every call misses and runs the factory. The fake database answers any number of ' +
            'concurrent queries in 20 ms, so its latency hardly suffers; what the stampede costs is ' +
            'the database load (one query per call instead of one per key) and, on Redis, the writes.',
          'Redis commands are the server’s total_commands_processed before and after the burst ' +
            '(read on a separate connection, the INFO itself subtracted), 10 ms after the last call ' +
            'resolved so that trailing writes count for the contender that made them.',
          'TTL 300 s everywhere (cachette `timeout`, cache-manager and bentocache `ttl` in ms). No ' +
            'grace periods or tags. bentocache 1.6 declares ioredis ^5 as its peer; it runs here on ' +
            'the repository’s ioredis 6.',
        ],
      }
    } finally {
      await mem.close()
      await red.close()
      await cmRedis.disconnect()
      await bentoMem.disconnectAll()
      await bentoRedis.disconnectAll()
      probe.disconnect()
      await server.stop()
    }
  },
}
