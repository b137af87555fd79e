/**
 * memory: `get` (hit) and `set` on SimpleCache, through the `Cache` facade and
 * directly on the backend, against the limit (an async wrapper around a raw
 * Map, and around lru-cache, with its default clock and with exact expiry)
 * and against cache-manager v7 and keyv v5. The object rows add the facade
 * over a SimpleCache with `byReference` (no copies), the guarantee lru-cache
 * and cache-manager give.
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
import { type GroupResult, type Headline, target } from '../lib/report.js'

const TTL_MS = TTL_S * 1000
/** Above KEYS, so no store evicts during the run. */
const CAPACITY = 10_000

const FACADE = 'cachette Cache facade (SimpleCache)'
const BY_REFERENCE = 'cachette Cache facade (SimpleCache, byReference)'
const BACKEND = 'cachette SimpleCache backend'
const MAP = 'Map (async wrapper)'
const LRU = 'lru-cache (async wrapper)'
const LRU_EXACT = 'lru-cache, ttlResolution: 0 (async wrapper)'
const CACHE_MANAGER = 'cache-manager v7 createCache()'
const KEYV = 'keyv v5 new Keyv()'

/**
 * One store per contender, all over the same keys and values. Each op is a
 * literal arrow of its own so that V8 keeps separate type feedback per
 * contender. `byReference`: add the facade over a by-reference SimpleCache
 * (the object rows; for strings it is the same store).
 */
function subjects(
  keys: readonly string[],
  values: readonly unknown[],
  byReference: boolean,
): Subject[] {
  const cache = new Cache({
    CACHE_TYPE: 'SimpleCache',
    CACHE_THRESHOLD: CAPACITY,
    CACHE_DEFAULT_TIMEOUT: TTL_S,
  })
  const byRef = new Cache({
    CACHE_TYPE: 'SimpleCache',
    CACHE_THRESHOLD: CAPACITY,
    CACHE_DEFAULT_TIMEOUT: TTL_S,
    CACHE_OPTIONS: { byReference: true },
  })
  const simple = new SimpleCache({ threshold: CAPACITY, defaultTimeout: TTL_S })
  const map = new Map<string, unknown>()
  const lru = new LRUCache<string, object | string>({ max: CAPACITY, ttl: TTL_MS })
  // lru-cache caches its clock reading for ttlResolution (1 ms by default), and
  // only a timer clears it: inside an op loop it reads the clock on writes
  // only. With 0 it reads it on every get, as SimpleCache does (exact expiry).
  const lruExact = new LRUCache<string, object | string>({
    max: CAPACITY,
    ttl: TTL_MS,
    ttlResolution: 0,
  })
  const cm = createCache()
  const kv = new Keyv()
  const k = (i: number): string => keys[i & MASK] as string
  const v = (i: number): unknown => values[i & MASK]
  /** An lru-cache in an async function: a limit. */
  const lruLimit = (name: string, cache: LRUCache<string, object | string>) => ({
    name,
    role: 'limit' as const,
    get: async (i: number) => cache.get(k(i)),
    set: async (i: number) => {
      cache.set(k(i), v(i) as object | string)
      return true
    },
  })
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
    lruLimit(LRU, lru),
    lruLimit(LRU_EXACT, lruExact),
    {
      name: FACADE,
      role: 'subject',
      get: (i) => cache.get(k(i)),
      set: (i) => cache.set(k(i), v(i), TTL_S),
    },
    ...(byReference
      ? [
          {
            name: BY_REFERENCE,
            role: 'subject',
            get: (i) => byRef.get(k(i)),
            set: (i) => byRef.set(k(i), v(i), TTL_S),
          } satisfies Subject,
        ]
      : []),
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
  [FACADE, LRU_EXACT],
  [FACADE, CACHE_MANAGER],
  [FACADE, KEYV],
  [BACKEND, MAP],
  [BACKEND, LRU],
  [BACKEND, LRU_EXACT],
  [BACKEND, CACHE_MANAGER],
  [BACKEND, KEYV],
] as const

/** The object rows' extra pairs: the by-reference facade against the stores that keep references. */
const BY_REFERENCE_PAIRS = [
  [BY_REFERENCE, FACADE],
  [BY_REFERENCE, MAP],
  [BY_REFERENCE, LRU],
  [BY_REFERENCE, LRU_EXACT],
  [BY_REFERENCE, CACHE_MANAGER],
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
      const subs = subjects(keys, values, kind === 'object')
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
            pairs: kind === 'object' ? [...PAIRS, ...BY_REFERENCE_PAIRS] : PAIRS,
            log: ctx.log,
          }),
        )
      }
    }
    const headlines: Headline[] = []
    for (const c of comparisons) {
      const label = c.id.replace('memory.', '')
      const toLru = ratioOf(c, FACADE, LRU)
      headlines.push(
        { label: `${label}: facade ÷ Map limit (ops/s)`, ratio: ratioOf(c, FACADE, MAP) },
        // The target: small strings through the facade at least as fast as lru-cache.
        label.endsWith('.string')
          ? {
              label: `${label}: facade ÷ lru-cache (ops/s)`,
              ratio: toLru,
              target: target('>=', 1, toLru),
            }
          : { label: `${label}: facade ÷ lru-cache (ops/s)`, ratio: toLru },
        {
          label: `${label}: facade ÷ lru-cache with exact expiry (ops/s)`,
          ratio: ratioOf(c, FACADE, LRU_EXACT),
        },
        { label: `${label}: facade ÷ backend (ops/s)`, ratio: ratioOf(c, FACADE, BACKEND) },
        {
          label: `${label}: facade ÷ cache-manager (ops/s)`,
          ratio: ratioOf(c, FACADE, CACHE_MANAGER),
        },
      )
      if (label.endsWith('.object')) {
        headlines.push(
          {
            label: `${label}: byReference facade ÷ lru-cache (ops/s)`,
            ratio: ratioOf(c, BY_REFERENCE, LRU),
          },
          {
            label: `${label}: byReference facade ÷ copying facade (ops/s)`,
            ratio: ratioOf(c, BY_REFERENCE, FACADE),
          },
        )
      }
    }
    return {
      group: 'memory',
      description:
        'Sequentially awaited single-key ops on 1,024 keys, all stores pre-filled (every get hits). ' +
        `Entries get a ${TTL_S} s TTL where the store supports one (all but the raw Map); ` +
        `capacity ${CAPACITY} so nothing is evicted. Ops/s per contender. The object rows add the ` +
        'facade over a SimpleCache with CACHE_OPTIONS { byReference: true } (no copies).',
      measuredAt: new Date().toISOString(),
      mode: ctx.quick ? 'quick' : 'full',
      settings: { rounds, sliceMs, keys: KEYS, ttlSeconds: TTL_S, capacity: CAPACITY },
      comparisons,
      headlines,
      notes: [
        'Object values: cachette SimpleCache stores copies of objects (copied again on get, so callers ' +
          'cannot mutate cached state); keyv JSON-serializes by default; the Map, lru-cache and ' +
          'cache-manager (serialization switched off by createCache) keep the reference. The object ' +
          'rows therefore compare different guarantees, not only speed; the byReference facade row ' +
          '(CACHE_OPTIONS: { byReference: true }) gives the same guarantee as lru-cache.',
        'Expiry: SimpleCache reads the clock (Date.now) on every get and set, so an entry is never ' +
          'served past its expiry. lru-cache by default reuses a clock reading for ttlResolution (1 ms), ' +
          'cleared by a timer, and no timer runs inside these op loops: its gets read the clock about ' +
          'never here, its sets on every call. The "ttlResolution: 0" row is lru-cache reading it on ' +
          'every get too.',
      ],
    }
  },
}
