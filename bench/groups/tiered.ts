/**
 * tiered: the hit path of a two-tier cache (in-process memory in front of
 * Redis). cachette's TieredCache over RedisCache, every get a first-tier
 * hit, against a RedisCache hit (one round trip), the raw ioredis `get` of
 * the same bytes (the least a Redis hit can cost), bentocache with a memory
 * L1 over a redis L2 (an L1 hit; with its default JSON-serialized L1 and
 * with `serialize: false`), bentocache on redis alone, and a plain
 * SimpleCache hit (what the first tier is, without the tiering).
 */
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { redisDriver } from 'bentocache/drivers/redis'
import { Redis as IORedis } from 'ioredis'
import { RedisCache } from '../../src/backends/redis/index.js'
import { Cache, encodeValue, TieredCache, v8Serializer } from '../../src/index.js'
import type { Group, GroupContext } from '../lib/group.js'
import { checkReads, KEYS, key, MASK, TTL_S, value } from '../lib/kv.js'
import {
  type Comparison,
  type ContenderSpec,
  compare,
  OPS_PER_SEC,
  opLoop,
  type Role,
  ratioOf,
} from '../lib/measure.js'
import { commandsProcessed, infoOverhead, redisFacade, startBenchRedis } from '../lib/redis.js'
import type { GroupResult, Headline } from '../lib/report.js'

const RAW = 'raw ioredis get (same bytes)'
const REDIS = 'cachette Cache facade (RedisCache), Redis hit'
const TIERED = 'cachette Cache facade (TieredCache over RedisCache), first-tier hit'
const SIMPLE = 'cachette Cache facade (SimpleCache), memory hit'
const BENTO_TIERED = 'bentocache get, memory L1 + redis L2 (L1 hit)'
const BENTO_REDIS = 'bentocache get, redis driver only'
const BENTO_UNSERIALIZED = 'bentocache get, L1 serialize: false + redis L2 (L1 hit)'

/** Seconds an entry may stay in a first tier: longer than a slice plus its refill. */
const FIRST_TIMEOUT_S = 60
/** First-tier capacity: above KEYS (both libraries default to 1,000 entries, fewer than KEYS). */
const FIRST_CAPACITY = 4 * KEYS

/** One contender of the get comparison. */
interface Reader {
  readonly name: string
  readonly role: Role
  readonly get: (i: number) => Promise<unknown>
  /** In-memory hits (ops/s in the millions): more ops between clock reads. */
  readonly fast: boolean
  /** A two-tier contender: every key is read once before each slice, untimed, so the slice sees first-tier hits only. */
  readonly prime: boolean
}

export const tieredGroup: Group = {
  name: 'tiered',
  async run(ctx: GroupContext): Promise<GroupResult> {
    const rounds = ctx.quick ? 3 : 9
    const sliceMs = ctx.quick ? 30 : 300
    const { server, url, connection } = await startBenchRedis()
    const raw = new IORedis(connection)
    const probe = new IORedis(connection)
    // No key prefix: the Redis-only and the tiered cache read the same keys.
    const redis = redisFacade(url)
    // No bus: a first-tier hit does not use it (with one, a hit only also checks that it is up).
    const tiered = redisFacade(
      url,
      TieredCache.over(RedisCache, {
        firstTimeout: FIRST_TIMEOUT_S,
        firstThreshold: FIRST_CAPACITY,
      }),
    )
    const simple = new Cache({
      CACHE_TYPE: 'SimpleCache',
      CACHE_THRESHOLD: FIRST_CAPACITY,
      CACHE_DEFAULT_TIMEOUT: TTL_S,
    })
    const bentoTiered = new BentoCache({
      default: 'tiered',
      stores: {
        tiered: bentostore()
          .useL1Layer(memoryDriver({ maxItems: FIRST_CAPACITY }))
          .useL2Layer(redisDriver({ connection, prefix: 'bt' })),
      },
    })
    // bentocache's L1 keeps serialized (JSON) entries by default; `serialize: false` keeps the
    // entry objects and is its fastest L1 hit.
    const bentoUnserialized = new BentoCache({
      default: 'tiered',
      stores: {
        tiered: bentostore()
          .useL1Layer(memoryDriver({ maxItems: FIRST_CAPACITY, serialize: false }))
          .useL2Layer(redisDriver({ connection, prefix: 'bu' })),
      },
    })
    const bentoRedis = new BentoCache({
      default: 'redis',
      stores: { redis: bentostore().useL2Layer(redisDriver({ connection, prefix: 'br' })) },
    })
    try {
      const tieredBackend = await tiered.ready()
      if (!(tieredBackend instanceof TieredCache)) {
        throw new Error('tiered: the tiered Cache did not build a TieredCache')
      }
      await redis.ready()
      const encoded = Array.from({ length: KEYS }, (_, i) => encodeValue(value(i), v8Serializer))
      ctx.log(`tiered: writing ${KEYS} keys per store`)
      for (let i = 0; i < KEYS; i++) {
        // One write through the tiered cache serves it and the Redis-only cache (same key names);
        // the raw client reads those bytes too.
        await tiered.set(key(i), value(i), TTL_S)
        await simple.set(key(i), value(i), TTL_S)
        await bentoTiered.set({ key: key(i), value: value(i), ttl: TTL_S * 1000 })
        await bentoUnserialized.set({ key: key(i), value: value(i), ttl: TTL_S * 1000 })
        await bentoRedis.set({ key: key(i), value: value(i), ttl: TTL_S * 1000 })
      }
      const stored = await raw.getBuffer(key(7))
      if (!stored?.equals(encoded[7 & MASK] as Buffer)) {
        throw new Error('tiered: Redis does not hold the bytes the raw client is compared with')
      }

      const readers: Reader[] = [
        { name: RAW, role: 'limit', get: (i) => raw.getBuffer(key(i)), fast: false, prime: false },
        {
          name: REDIS,
          role: 'reference',
          get: (i) => redis.get(key(i)),
          fast: false,
          prime: false,
        },
        { name: TIERED, role: 'subject', get: (i) => tiered.get(key(i)), fast: true, prime: true },
        {
          name: SIMPLE,
          role: 'reference',
          get: (i) => simple.get(key(i)),
          fast: true,
          prime: false,
        },
        {
          name: BENTO_TIERED,
          role: 'peer',
          get: (i) => bentoTiered.get({ key: key(i) }),
          fast: true,
          prime: true,
        },
        {
          name: BENTO_UNSERIALIZED,
          role: 'peer',
          get: (i) => bentoUnserialized.get({ key: key(i) }),
          fast: true,
          prime: true,
        },
        {
          name: BENTO_REDIS,
          role: 'peer',
          get: (i) => bentoRedis.get({ key: key(i) }),
          fast: false,
          prime: false,
        },
      ]
      // The raw client reads the stored bytes; the others the string.
      await checkReads('tiered', readers, (got) =>
        Buffer.isBuffer(got) ? got.equals(encoded[7 & MASK] as Buffer) : got === value(7),
      )

      /** Redis commands counted during each two-tier contender's timed slices (must stay 0). */
      const commandsDuring = new Map<string, number[]>()
      const overhead = await infoOverhead(probe, 'tiered')
      const contenders: ContenderSpec[] = readers.map((r) => {
        const timed = opLoop(r.get, {
          sliceMs,
          batch: r.fast ? 1000 : 50,
          unit: OPS_PER_SEC,
        })
        if (!r.prime) return { name: r.name, role: r.role, sample: timed }
        const counts: number[] = []
        commandsDuring.set(r.name, counts)
        return {
          name: r.name,
          role: r.role,
          sample: async () => {
            // Refill the first tier (entries expire after FIRST_TIMEOUT_S), untimed.
            for (let i = 0; i < KEYS; i++) await r.get(i)
            const before = await commandsProcessed(probe, 'tiered')
            const rate = await timed()
            counts.push((await commandsProcessed(probe, 'tiered')) - before - overhead)
            return rate
          },
        }
      })
      ctx.log('tiered: get')
      const getC = await compare({
        id: 'tiered.get',
        title: 'tiered: get (hit), small string value, awaited one at a time',
        unit: OPS_PER_SEC,
        rounds,
        contenders,
        pairs: [
          [TIERED, REDIS],
          [TIERED, RAW],
          [TIERED, BENTO_TIERED],
          [TIERED, BENTO_UNSERIALIZED],
          [TIERED, SIMPLE],
          [BENTO_TIERED, BENTO_REDIS],
          [REDIS, RAW],
        ],
        log: ctx.log,
      })
      const comparisons: Comparison[] = [getC]
      const vsRedis = ratioOf(getC, TIERED, REDIS)
      const headlines: Headline[] = [
        { label: 'get: two-tier hit ÷ RedisCache hit (ops/s)', ratio: vsRedis },
        { label: 'get: two-tier hit ÷ raw ioredis get (ops/s)', ratio: ratioOf(getC, TIERED, RAW) },
        {
          label: 'get: cachette two-tier ÷ bentocache two-tier (ops/s)',
          ratio: ratioOf(getC, TIERED, BENTO_TIERED),
        },
        {
          label: 'get: cachette two-tier ÷ bentocache two-tier, L1 serialize: false (ops/s)',
          ratio: ratioOf(getC, TIERED, BENTO_UNSERIALIZED),
        },
        {
          label: 'get: two-tier hit ÷ SimpleCache hit (ops/s)',
          ratio: ratioOf(getC, TIERED, SIMPLE),
        },
        {
          label: 'get: bentocache two-tier ÷ bentocache redis (ops/s)',
          ratio: ratioOf(getC, BENTO_TIERED, BENTO_REDIS),
        },
      ]
      const during = [...commandsDuring]
        .map(([name, counts]) => `${name}: ${counts.reduce((a, b) => a + b, 0)}`)
        .join('; ')
      return {
        group: 'tiered',
        description:
          `A redis-server 7 on loopback started for the run; ${KEYS} keys of 32-character strings ` +
          `(the kv groups' keys and values), no key prefix, every get a hit, awaited one at a time. ` +
          'The two-tier contenders are timed on first-tier (in-process memory) hits only; the ' +
          'others make one Redis round trip per get.',
        measuredAt: new Date().toISOString(),
        mode: ctx.quick ? 'quick' : 'full',
        settings: {
          rounds,
          sliceMs,
          keys: KEYS,
          firstTimeout: FIRST_TIMEOUT_S,
          firstCapacity: FIRST_CAPACITY,
        },
        comparisons,
        headlines,
        notes: [
          `TieredCache.over(RedisCache, { firstTimeout: ${FIRST_TIMEOUT_S}, firstThreshold: ${FIRST_CAPACITY} }) ` +
            'as CACHE_TYPE of a Cache, no invalidation bus; bentocache with memoryDriver({ maxItems: ' +
            `${FIRST_CAPACITY} }) as L1 and redisDriver as L2, no bus. Both first tiers default to 1,000 ` +
            `entries, fewer than the ${KEYS} keys read in a cycle, which would make every read an L2 read.`,
          'Each two-tier slice starts, untimed, by reading every key once (refilling the first tier); ' +
            `Redis commands processed during the timed slices (must be 0): ${during}.`,
          'The raw client reads the bytes cachette stores (a 1-byte marker plus the string) and ' +
            'decodes nothing: the least a Redis hit can cost. bentocache wraps each value in an entry ' +
            '(value, creation time, logical expiry), stored as JSON in Redis and, by default, in its L1 ' +
            'too, so its default L1 hit parses JSON; with `serialize: false` its L1 keeps the entry ' +
            'objects (and hands out stored references). cachette’s first tier is a SimpleCache, which ' +
            'hands strings back as they are (objects would be copied).',
        ],
      }
    } finally {
      await tiered.close()
      await redis.close()
      await simple.close()
      await bentoTiered.disconnectAll()
      await bentoUnserialized.disconnectAll()
      await bentoRedis.disconnectAll()
      raw.disconnect()
      probe.disconnect()
      await server.stop()
    }
  },
}
