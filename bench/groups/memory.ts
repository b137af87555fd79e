/**
 * memory: `get` (hit) and `set` on SimpleCache, through the `Cache` facade and
 * directly on the backend, against the limit (an async wrapper around a raw
 * Map, and around lru-cache) and against cache-manager v7 and keyv v5.
 */
import { createCache } from 'cache-manager'
import { Keyv } from 'keyv'
import { LRUCache } from 'lru-cache'
import { Cache, SimpleCache } from '../../src/index.js'
import type { Group, GroupContext } from '../lib/group.js'
import { checkReads, KEYS, MASK, prefill, type Subject, TTL_S } from '../lib/kv.js'
import {
  type Comparison,
  type ContenderSpec,
  compare,
  OPS_PER_SEC,
  opLoop,
  ratioOf,
} from '../lib/measure.js'
import type { GroupResult, Headline } from '../lib/report.js'

const TTL_MS = TTL_S * 1000
/** Above KEYS, so no store evicts during the run. */
const CAPACITY = 10_000

const FACADE = 'cachette Cache facade (SimpleCache)'
const BACKEND = 'cachette SimpleCache backend'
const MAP = 'Map (async wrapper)'
const LRU = 'lru-cache (async wrapper)'
const CACHE_MANAGER = 'cache-manager v7 createCache()'
const KEYV = 'keyv v5 new Keyv()'

/**
 * One store per contender, all over the same keys and values. Each op is a
 * literal arrow of its own so that V8 keeps separate type feedback per
 * contender.
 */
function subjects(keys: readonly string[], values: readonly unknown[]): Subject[] {
  const cache = new Cache({
    CACHE_TYPE: 'SimpleCache',
    CACHE_THRESHOLD: CAPACITY,
    CACHE_DEFAULT_TIMEOUT: TTL_S,
  })
  const simple = new SimpleCache({ threshold: CAPACITY, defaultTimeout: TTL_S })
  const map = new Map<string, unknown>()
  const lru = new LRUCache<string, object | string>({ max: CAPACITY, ttl: TTL_MS })
  const cm = createCache()
  const kv = new Keyv()
  const k = (i: number): string => keys[i & MASK] as string
  const v = (i: number): unknown => values[i & MASK]
  return [
    {
      name: MAP,
      role: 'limit',
      get: async (i) => map.get(k(i)),
      set: async (i) => {
        map.set(k(i), v(i))
        return true
      },
    },
    {
      name: LRU,
      role: 'limit',
      get: async (i) => lru.get(k(i)),
      set: async (i) => {
        lru.set(k(i), v(i) as object | string)
        return true
      },
    },
    {
      name: FACADE,
      role: 'subject',
      get: (i) => cache.get(k(i)),
      set: (i) => cache.set(k(i), v(i), TTL_S),
    },
    {
      name: BACKEND,
      role: 'subject',
      get: (i) => simple.get(k(i)),
      set: (i) => simple.set(k(i), v(i), TTL_S),
    },
    {
      name: CACHE_MANAGER,
      role: 'peer',
      get: (i) => cm.get(k(i)),
      set: (i) => cm.set(k(i), v(i), TTL_MS),
    },
    {
      name: KEYV,
      role: 'peer',
      get: (i) => kv.get(k(i)),
      set: (i) => kv.set(k(i), v(i), TTL_MS),
    },
  ]
}

const PAIRS = [
  [FACADE, BACKEND],
  [FACADE, MAP],
  [FACADE, LRU],
  [FACADE, CACHE_MANAGER],
  [FACADE, KEYV],
  [BACKEND, MAP],
  [BACKEND, LRU],
  [BACKEND, CACHE_MANAGER],
  [BACKEND, KEYV],
] as const

function stringValue(i: number): string {
  // 32 characters, distinct per key.
  return `value-${String(i).padStart(6, '0')}-abcdefghijklmnopqr`
}

function objectValue(i: number): object {
  return {
    id: i,
    name: `user-${i}`,
    email: `user${i}@example.com`,
    active: true,
    roles: ['reader'],
  }
}

export const memoryGroup: Group = {
  name: 'memory',
  async run(ctx: GroupContext): Promise<GroupResult> {
    const rounds = ctx.quick ? 3 : 11
    const sliceMs = ctx.quick ? 15 : 200
    const comparisons: Comparison[] = []
    for (const [kind, make] of [
      ['string', stringValue],
      ['object', objectValue],
    ] as const) {
      const keys = Array.from({ length: KEYS }, (_, i) => `bench:${kind}:${i}`)
      const values = Array.from({ length: KEYS }, (_, i) => make(i))
      const subs = subjects(keys, values)
      // Prefill every store, then check each one hits with an equal value.
      await prefill(subs)
      await checkReads(
        'memory',
        subs,
        (got) => JSON.stringify(got) === JSON.stringify(values[7]),
        `${kind} value`,
      )
      for (const op of ['get', 'set'] as const) {
        const contenders: ContenderSpec[] = subs.map((s) => ({
          name: s.name,
          role: s.role,
          sample: opLoop(s[op], { sliceMs, batch: 1000, unit: OPS_PER_SEC }),
        }))
        ctx.log(`memory: ${op} (${kind} value)`)
        comparisons.push(
          await compare({
            id: `memory.${op}.${kind}`,
            title: `memory: ${op === 'get' ? 'get (hit)' : 'set (overwrite)'}, small ${kind} value`,
            unit: OPS_PER_SEC,
            rounds,
            contenders,
            pairs: PAIRS,
            log: ctx.log,
          }),
        )
      }
    }
    const headlines: Headline[] = []
    for (const c of comparisons) {
      const label = c.id.replace('memory.', '')
      headlines.push(
        { label: `${label}: facade ÷ Map limit (ops/s)`, ratio: ratioOf(c, FACADE, MAP) },
        { label: `${label}: facade ÷ backend (ops/s)`, ratio: ratioOf(c, FACADE, BACKEND) },
        {
          label: `${label}: facade ÷ cache-manager (ops/s)`,
          ratio: ratioOf(c, FACADE, CACHE_MANAGER),
        },
      )
    }
    return {
      group: 'memory',
      description:
        'Sequentially awaited single-key ops on 1,024 keys, all stores pre-filled (every get hits). ' +
        `Entries get a ${TTL_S} s TTL where the store supports one (all but the raw Map); ` +
        `capacity ${CAPACITY} so nothing is evicted. Ops/s per contender.`,
      measuredAt: new Date().toISOString(),
      mode: ctx.quick ? 'quick' : 'full',
      settings: { rounds, sliceMs, keys: KEYS, ttlSeconds: TTL_S, capacity: CAPACITY },
      comparisons,
      headlines,
      notes: [
        'Object values: cachette SimpleCache stores copies of objects (copied again on get, so callers ' +
          'cannot mutate cached state); keyv JSON-serializes by default; the Map, lru-cache and ' +
          'cache-manager (serialization switched off by createCache) keep the reference. The object ' +
          'rows therefore compare different guarantees, not only speed.',
      ],
    }
  },
}
