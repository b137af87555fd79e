/**
 * redis: get (hit), set and getMany(100) on a local redis-server started for
 * the run, through cachette's RedisCache (facade and backend), against the
 * raw ioredis client issuing the same commands with the same bytes (the
 * limit), keyv with @keyv/redis, and cache-manager over that keyv store;
 * the same get and set with RedisCache on node-redis (`client: 'node-redis'`)
 * against the raw node-redis client;
 * then how getMany's cost per key grows from 10 to 100 to 1,000 keys.
 */
import KeyvRedis from '@keyv/redis'
import { createCache } from 'cache-manager'
import { Redis as IORedis } from 'ioredis'
import { Keyv } from 'keyv'
import { createClient, RESP_TYPES } from 'redis'
import { type CacheBackend, encodeValue, v8Serializer } from '../../src/index.js'
import type { Group, GroupContext } from '../lib/group.js'
import {
  BATCH,
  checkReads,
  compareGetSet,
  KEYS,
  key,
  keyBatches,
  MASK,
  prefill,
  SINGLES,
  type Subject,
  singleGets,
  TTL_S,
  value,
} from '../lib/kv.js'
import {
  type Comparison,
  compare,
  OPS_PER_SEC,
  opLoop,
  ratioOf,
  US_PER_OP,
} from '../lib/measure.js'
import { redisFacade, startBenchRedis } from '../lib/redis.js'
import { type GroupResult, type Headline, target } from '../lib/report.js'

const RAW = 'raw ioredis (same commands, same bytes)'
const FACADE = 'cachette Cache facade (RedisCache)'
const BACKEND = 'cachette RedisCache backend'
const RAW_NODE = 'raw node-redis (same commands, same bytes)'
const FACADE_NODE = 'cachette Cache facade (RedisCache on node-redis)'
const BACKEND_NODE = 'cachette RedisCache backend on node-redis'
const KEYV = 'keyv v5 + @keyv/redis'
const CACHE_MANAGER = 'cache-manager v7 over @keyv/redis'
/** Keys per getMany in the growth comparison (at most KEYS: every key of a batch is distinct). */
const GROWTH_SIZES = [10, 100, 1000] as const
const growthName = (n: number) => `cachette getMany(${n.toLocaleString('en-US')})`
/** Batches per size in the growth comparison, cycled through (consecutive keys from shifting starts). */
const GROWTH_BATCHES = 8

export const redisGroup: Group = {
  name: 'redis',
  async run(ctx: GroupContext): Promise<GroupResult> {
    const rounds = ctx.quick ? 3 : 9
    const sliceMs = ctx.quick ? 30 : 300
    const { server, url, connection } = await startBenchRedis()
    const raw = new IORedis(connection)
    // No key prefix: every contender addresses the same key names.
    const cache = redisFacade(url)
    const backend: CacheBackend = await cache.ready()
    const rawNode = createClient({ socket: connection })
    await rawNode.connect()
    const rawNodeBuf = rawNode.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer })
    const cacheNode = redisFacade(url, 'RedisCache', { client: 'node-redis' })
    const backendNode: CacheBackend = await cacheNode.ready()
    const kv = new Keyv({ store: new KeyvRedis(url), namespace: 'kv' })
    const cm = createCache({ stores: [new Keyv({ store: new KeyvRedis(url), namespace: 'cm' })] })
    const encoded = Array.from({ length: KEYS }, (_, i) => encodeValue(value(i), v8Serializer))
    const subjects: Subject[] = [
      {
        name: RAW,
        role: 'limit',
        get: (i) => raw.getBuffer(key(i)),
        set: (i) => raw.set(key(i), encoded[i & MASK] as Buffer, 'EX', TTL_S),
      },
      {
        name: FACADE,
        role: 'subject',
        get: (i) => cache.get(key(i)),
        set: (i) => cache.set(key(i), value(i), TTL_S),
      },
      {
        name: BACKEND,
        role: 'subject',
        get: (i) => backend.get(key(i)),
        set: (i) => backend.set(key(i), value(i), TTL_S),
      },
      {
        name: RAW_NODE,
        role: 'limit',
        get: (i) => rawNodeBuf.get(key(i)),
        set: (i) =>
          rawNode.sendCommand(['SET', key(i), encoded[i & MASK] as Buffer, 'EX', String(TTL_S)]),
      },
      {
        name: FACADE_NODE,
        role: 'subject',
        get: (i) => cacheNode.get(key(i)),
        set: (i) => cacheNode.set(key(i), value(i), TTL_S),
      },
      {
        name: BACKEND_NODE,
        role: 'subject',
        get: (i) => backendNode.get(key(i)),
        set: (i) => backendNode.set(key(i), value(i), TTL_S),
      },
      {
        name: KEYV,
        role: 'peer',
        get: (i) => kv.get(key(i)),
        set: (i) => kv.set(key(i), value(i), TTL_S * 1000),
      },
      {
        name: CACHE_MANAGER,
        role: 'peer',
        get: (i) => cm.get(key(i)),
        set: (i) => cm.set(key(i), value(i), TTL_S * 1000),
      },
    ]
    try {
      await prefill(subjects)
      // The raw client reads the stored bytes (a Buffer, checked for presence); the others the string.
      await checkReads(
        'redis',
        subjects,
        (got) => got !== undefined && got !== null && (Buffer.isBuffer(got) || got === value(7)),
      )
      const comparisons: Comparison[] = await compareGetSet({
        group: 'redis',
        subjects,
        rounds,
        sliceMs,
        batch: 50,
        pairs: [
          [FACADE, RAW],
          [BACKEND, RAW],
          [FACADE, KEYV],
          [FACADE, CACHE_MANAGER],
          [FACADE_NODE, RAW_NODE],
          [BACKEND_NODE, RAW_NODE],
          [FACADE_NODE, FACADE],
        ],
        log: ctx.log,
      })
      // getMany: batches of 100 keys per op.
      const batchOf = keyBatches()
      const MANY = `cachette getMany(${BATCH})`
      const RAW_MGET = `raw ioredis mgetBuffer(${BATCH})`
      ctx.log('redis: getMany')
      comparisons.push(
        await compare({
          id: 'redis.getMany',
          title: `redis: ${BATCH} keys per op`,
          unit: OPS_PER_SEC,
          rounds,
          contenders: [
            {
              name: RAW_MGET,
              role: 'limit',
              sample: opLoop((i) => raw.mgetBuffer(batchOf(i)), {
                sliceMs,
                batch: 5,
                unit: OPS_PER_SEC,
              }),
            },
            {
              name: MANY,
              role: 'subject',
              sample: opLoop((i) => cache.getMany(batchOf(i)), {
                sliceMs,
                batch: 5,
                unit: OPS_PER_SEC,
              }),
            },
            singleGets(cache, batchOf, sliceMs),
          ],
          pairs: [
            [MANY, RAW_MGET],
            [MANY, SINGLES],
          ],
          log: ctx.log,
        }),
      )
      // getMany growth: µs per key read (one getMany of n keys ÷ n), the sizes as contenders.
      ctx.log('redis: getMany growth')
      comparisons.push(
        await compare({
          id: 'redis.getMany.growth',
          title: `redis: getMany cost per key at ${GROWTH_SIZES.join(' / ')} keys per call (µs/op = µs per key: one call's time ÷ its keys)`,
          unit: US_PER_OP,
          rounds,
          contenders: GROWTH_SIZES.map((n, s) => {
            const batches = Array.from({ length: GROWTH_BATCHES }, (_, b) =>
              Array.from({ length: n }, (_, j) => key(b * 128 + j)),
            )
            const perCall = opLoop((i) => cache.getMany(batches[i % GROWTH_BATCHES] as string[]), {
              sliceMs,
              batch: 1,
              unit: US_PER_OP,
            })
            return {
              name: growthName(n),
              role: s === 0 ? ('reference' as const) : ('subject' as const),
              sample: async () => (await perCall()) / n,
            }
          }),
          pairs: [
            [growthName(100), growthName(10)],
            [growthName(1000), growthName(10)],
            [growthName(1000), growthName(100)],
          ],
          log: ctx.log,
        }),
      )
      const [getC, setC, manyC, growthC] = comparisons as [
        Comparison,
        Comparison,
        Comparison,
        Comparison,
      ]
      const getVsRaw = ratioOf(getC, FACADE, RAW)
      const setVsRaw = ratioOf(setC, FACADE, RAW)
      const manyVsSingles = ratioOf(manyC, MANY, SINGLES)
      const headlines: Headline[] = [
        {
          label: 'get: facade ÷ raw client (ops/s)',
          ratio: getVsRaw,
          target: target('>=', 0.9, getVsRaw),
        },
        {
          label: 'set: facade ÷ raw client (ops/s)',
          ratio: setVsRaw,
          target: target('>=', 0.9, setVsRaw),
        },
        {
          label: 'get on node-redis: facade ÷ raw node-redis client (ops/s)',
          ratio: ratioOf(getC, FACADE_NODE, RAW_NODE),
        },
        {
          label: 'set on node-redis: facade ÷ raw node-redis client (ops/s)',
          ratio: ratioOf(setC, FACADE_NODE, RAW_NODE),
        },
        {
          label: 'get on node-redis: backend ÷ raw node-redis client (ops/s)',
          ratio: ratioOf(getC, BACKEND_NODE, RAW_NODE),
        },
        {
          label: 'set on node-redis: backend ÷ raw node-redis client (ops/s)',
          ratio: ratioOf(setC, BACKEND_NODE, RAW_NODE),
        },
        {
          label: 'get: facade on node-redis ÷ facade on ioredis (ops/s)',
          ratio: ratioOf(getC, FACADE_NODE, FACADE),
        },
        { label: 'get: facade ÷ keyv (ops/s)', ratio: ratioOf(getC, FACADE, KEYV) },
        {
          label: 'get: facade ÷ cache-manager (ops/s)',
          ratio: ratioOf(getC, FACADE, CACHE_MANAGER),
        },
        {
          label: `getMany(${BATCH}) ÷ ${BATCH} single gets (ops/s)`,
          ratio: manyVsSingles,
          target: target('>=', 5, manyVsSingles),
        },
        { label: `getMany(${BATCH}) ÷ raw mget (ops/s)`, ratio: ratioOf(manyC, MANY, RAW_MGET) },
        {
          label: 'getMany cost per key: 1,000 ÷ 10 keys per call (time)',
          ratio: ratioOf(growthC, growthName(1000), growthName(10)),
        },
        {
          label: 'getMany cost per key: 1,000 ÷ 100 keys per call (time)',
          ratio: ratioOf(growthC, growthName(1000), growthName(100)),
        },
      ]
      return {
        group: 'redis',
        description:
          `A redis-server 7 on loopback started for the run; ${KEYS} keys of 32-character strings, ` +
          'no key prefix, every get a hit. Ops are awaited one at a time (one round trip each), so ' +
          'the numbers are dominated by loopback latency, as for an app.',
        measuredAt: new Date().toISOString(),
        mode: ctx.quick ? 'quick' : 'full',
        settings: { rounds, sliceMs, keys: KEYS, batch: BATCH, growthSizes: GROWTH_SIZES },
        comparisons,
        headlines,
        notes: [
          'node-redis rows: the same server, RedisCache with CACHE_OPTIONS { client: "node-redis" } against the raw node-redis client (GET with Buffer replies, SET of the same bytes). ' +
            'The raw client sends the bytes cachette stores (a 1-byte marker plus the serialized string), ' +
            'so the limit does the same work on the wire; keyv and cache-manager store JSON.',
          `getMany growth: one MGET per call whatever its size; each size cycles through ${GROWTH_BATCHES} batches of consecutive keys (every key a hit). ` +
            'Per key, a small call is mostly the round trip; the 1,000 ÷ 100 ratio is the growth of what is left (reading and decoding the values): flat means it stays near 1.',
        ],
      }
    } finally {
      await cache.close()
      await cacheNode.close()
      await rawNode.close()
      raw.disconnect()
      await kv.disconnect()
      await cm.disconnect()
      await server.stop()
    }
  },
}
