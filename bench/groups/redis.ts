/**
 * redis: get (hit), set and getMany(100) on a local redis-server started for
 * the run, through cachette's RedisCache (facade and backend), against the
 * raw ioredis client issuing the same commands with the same bytes (the
 * limit), keyv with @keyv/redis, and cache-manager over that keyv store.
 */
import KeyvRedis from '@keyv/redis'
import { createCache } from 'cache-manager'
import { Redis as IORedis } from 'ioredis'
import { Keyv } from 'keyv'
import { Cache, type CacheBackend, encodeValue, v8Serializer } from '../../src/index.js'
import { startRedis } from '../../test/servers/redis.js'
import type { Group, GroupContext } from '../lib/group.js'
import { BATCH, compareOp, KEYS, key, MASK, type Subject, TTL_S, value } from '../lib/kv.js'
import { type Comparison, compare, OPS_PER_SEC, opLoop, ratioOf } from '../lib/measure.js'
import { type GroupResult, type Headline, target } from '../lib/report.js'

const RAW = 'raw ioredis (same commands, same bytes)'
const FACADE = 'cachette Cache facade (RedisCache)'
const BACKEND = 'cachette RedisCache backend'
const KEYV = 'keyv v5 + @keyv/redis'
const CACHE_MANAGER = 'cache-manager v7 over @keyv/redis'

export const redisGroup: Group = {
  name: 'redis',
  async run(ctx: GroupContext): Promise<GroupResult> {
    const rounds = ctx.quick ? 3 : 9
    const sliceMs = ctx.quick ? 30 : 300
    const server = await startRedis()
    const url = `redis://127.0.0.1:${server.port}`
    const raw = new IORedis({ host: '127.0.0.1', port: server.port })
    // No key prefix: every contender addresses the same key names.
    const cache = new Cache({
      CACHE_TYPE: 'RedisCache',
      CACHE_REDIS_URL: url,
      CACHE_KEY_PREFIX: '',
      CACHE_DEFAULT_TIMEOUT: TTL_S,
    })
    const backend: CacheBackend = await cache.ready()
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
      for (const s of subjects) for (let i = 0; i < KEYS; i++) await s.set(i)
      for (const s of subjects) {
        const got = await s.get(7)
        const text = Buffer.isBuffer(got) ? got.subarray(1).length : got
        if (got === undefined || got === null || (!Buffer.isBuffer(got) && text !== value(7))) {
          throw new Error(`redis: ${s.name} did not return the stored value`)
        }
      }
      const comparisons: Comparison[] = []
      const pairs = [
        [FACADE, RAW],
        [BACKEND, RAW],
        [FACADE, KEYV],
        [FACADE, CACHE_MANAGER],
      ] as const
      for (const op of ['get', 'set'] as const) {
        comparisons.push(
          await compareOp({
            group: 'redis',
            op,
            subjects,
            rounds,
            sliceMs,
            batch: 50,
            pairs,
            log: ctx.log,
          }),
        )
      }
      // getMany: batches of 100 keys per op.
      const batches = Array.from({ length: KEYS / BATCH }, (_, b) =>
        Array.from({ length: BATCH }, (_, j) => key(b * BATCH + j)),
      )
      const batchOf = (i: number): string[] => batches[i % batches.length] as string[]
      const MANY = `cachette getMany(${BATCH})`
      const SINGLES = `${BATCH} cachette gets, one after another`
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
            {
              name: SINGLES,
              role: 'reference',
              sample: opLoop(
                async (i) => {
                  for (const k of batchOf(i)) await cache.get(k)
                },
                { sliceMs, batch: 1, unit: OPS_PER_SEC },
              ),
            },
          ],
          pairs: [
            [MANY, RAW_MGET],
            [MANY, SINGLES],
          ],
          log: ctx.log,
        }),
      )
      const [getC, setC, manyC] = comparisons as [Comparison, Comparison, Comparison]
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
      ]
      return {
        group: 'redis',
        description:
          `A redis-server 7 on loopback started for the run; ${KEYS} keys of 32-character strings, ` +
          'no key prefix, every get a hit. Ops are awaited one at a time (one round trip each), so ' +
          'the numbers are dominated by loopback latency, as for an app.',
        measuredAt: new Date().toISOString(),
        mode: ctx.quick ? 'quick' : 'full',
        settings: { rounds, sliceMs, keys: KEYS, batch: BATCH },
        comparisons,
        headlines,
        notes: [
          'The raw client sends the bytes cachette stores (a 1-byte marker plus the serialized string), ' +
            'so the limit does the same work on the wire; keyv and cache-manager store JSON.',
        ],
      }
    } finally {
      await cache.close()
      raw.disconnect()
      await kv.disconnect()
      await cm.disconnect()
      await server.stop()
    }
  },
}
