/**
 * The measuring worker of the cluster bench group (forked by
 * bench/cluster/primary.ts): get (hit) and set through a ClusterCache (the
 * store in the primary, one IPC round trip per call), against a SimpleCache
 * in this process (the limit: what a cache without IPC costs) and against a
 * RedisCache on the local redis-server (the shared cache one would run
 * otherwise); then 64 concurrent gets per op, where ClusterCache batches the
 * calls of one tick into one message. Sends `{ comparisons }` to the primary.
 *
 * argv: the Redis URL; env BENCH_QUICK=1 for a quick run.
 */
import { Cache } from '../../src/index.js'
import {
  checkReads,
  compareGetSet,
  KEYS,
  key,
  prefill,
  type Subject,
  TTL_S,
  value,
} from '../lib/kv.js'
import { type Comparison, compare, OPS_PER_SEC, opLoop } from '../lib/measure.js'
import { redisFacade } from '../lib/redis.js'
import { CLUSTER, CONCURRENT, REDIS, SIMPLE } from './names.js'

const send = (message: unknown) => (process.send as NonNullable<typeof process.send>)(message)
const log = (line: string) => send({ log: line })
const quick = process.env.BENCH_QUICK === '1'
const rounds = quick ? 3 : 9
const sliceMs = quick ? 30 : 300

const simple = new Cache({
  CACHE_TYPE: 'SimpleCache',
  CACHE_THRESHOLD: 10_000,
  CACHE_DEFAULT_TIMEOUT: TTL_S,
})
const clustered = new Cache({
  CACHE_TYPE: 'ClusterCache',
  CACHE_THRESHOLD: 10_000,
  CACHE_DEFAULT_TIMEOUT: TTL_S,
})
const redis = redisFacade(process.argv[2] as string)

const subjects: Subject[] = [
  {
    name: SIMPLE,
    role: 'limit',
    get: (i) => simple.get(key(i)),
    set: (i) => simple.set(key(i), value(i), TTL_S),
  },
  {
    name: CLUSTER,
    role: 'subject',
    get: (i) => clustered.get(key(i)),
    set: (i) => clustered.set(key(i), value(i), TTL_S),
  },
  {
    name: REDIS,
    role: 'reference',
    get: (i) => redis.get(key(i)),
    set: (i) => redis.set(key(i), value(i), TTL_S),
  },
]

/** `CONCURRENT` gets started together and awaited together: one op. */
const together = (cache: Cache) => (i: number) => {
  const gets: Promise<unknown>[] = new Array(CONCURRENT)
  for (let j = 0; j < CONCURRENT; j++) gets[j] = cache.get(key(i * CONCURRENT + j))
  return Promise.all(gets)
}

try {
  await redis.ready()
  await prefill(subjects, KEYS)
  await checkReads('cluster', subjects, (got) => got === value(7))
  const comparisons: Comparison[] = await compareGetSet({
    group: 'cluster',
    subjects,
    rounds,
    sliceMs,
    batch: 20,
    pairs: [
      [CLUSTER, SIMPLE],
      [CLUSTER, REDIS],
    ],
    log,
  })
  log(`cluster: ${CONCURRENT} concurrent gets`)
  const loop = (op: (i: number) => unknown) => opLoop(op, { sliceMs, batch: 2, unit: OPS_PER_SEC })
  comparisons.push(
    await compare({
      id: 'cluster.concurrent',
      title: `cluster: ${CONCURRENT} concurrent gets (hits) per op, from one worker`,
      unit: OPS_PER_SEC,
      rounds,
      contenders: [
        { name: SIMPLE, role: 'limit', sample: loop(together(simple)) },
        { name: CLUSTER, role: 'subject', sample: loop(together(clustered)) },
        { name: REDIS, role: 'reference', sample: loop(together(redis)) },
      ],
      pairs: [
        [CLUSTER, SIMPLE],
        [CLUSTER, REDIS],
      ],
      log,
    }),
  )
  send({ comparisons })
} catch (error) {
  send({ error: String((error as Error)?.stack ?? error) })
} finally {
  await Promise.all([simple.close(), clustered.close(), redis.close()])
  process.disconnect()
}
