/**
 * growth: what the in-memory backends cost as the number of entries grows.
 * SimpleCache (through the `Cache` facade and directly) against the limits
 * (an async wrapper around a raw Map, and around lru-cache), at 1,000 to
 * 1,000,000 entries: ns per `get` (hit) and per `set` (overwrite), and
 * bytes per entry (JS heap plus ArrayBuffer memory: typed arrays keep their
 * elements outside the heap).
 *
 * Layout of the run, chosen to keep the 1M-entry full run short:
 * - one key array and one value array of the largest size are built once;
 *   every size uses a prefix of them, and every store shares the strings;
 * - memory: per size, one comparison whose contenders (SimpleCache, Map,
 *   lru-cache) each build and fill a fresh store per round, between two full
 *   GCs, and drop it afterwards;
 * - time: per store kind, every size is built at once (the sizes are the
 *   contenders of one comparison, so per-round paired ratios N ÷ 1,000 come
 *   out of `compare` as in the filesystem group), measured, then dropped
 *   before the next kind is built. Only one kind's stores live at a time,
 *   which keeps the heap (and opLoop's full GC before every sample) small.
 */
import { LRUCache } from 'lru-cache'
import { Cache, SimpleCache } from '../../src/index.js'
import type { Group, GroupContext } from '../lib/group.js'
import { TTL_S, value } from '../lib/kv.js'
import {
  COUNT,
  type Comparison,
  type ContenderSpec,
  collectGarbage,
  compare,
  NS_PER_OP,
  opLoop,
  type Role,
  ratioOf,
} from '../lib/measure.js'
import { type GroupResult, type Headline, target } from '../lib/report.js'
import { shuffled } from './filesystem.js'

const TTL_MS = TTL_S * 1000
/** Entries per setMany call when prefilling a SimpleCache. */
const FILL_BATCH = 10_000
/** Seed of the fixed shuffled key order (the filesystem group's). */
const SEED = 0x9e3779b9

const FACADE = 'cachette Cache facade (SimpleCache)'
const BACKEND = 'cachette SimpleCache backend'
const MAP = 'Map (async wrapper)'
const LRU = 'lru-cache (async wrapper)'
/** The memory comparison has no separate facade row: the facade holds a SimpleCache. */
const SIMPLE = 'cachette SimpleCache'

const label = (n: number): string => `${n.toLocaleString('en-US')} entries`
const short = (n: number): string => (n >= 1e6 ? `${n / 1e6}M` : `${n / 1e3}k`)

/** The stored keys; shaped like an app's keys (about 20 characters). */
const keyOf = (i: number): string => `user:${i}:profile`

/** One store of one size, seen through the two timed ops. */
interface Store {
  /** Checks a key is present (prefill verification, not timed). */
  readonly has: (j: number) => Promise<boolean>
  readonly get: (i: number) => Promise<unknown>
  readonly set: (i: number) => Promise<unknown>
}

/** A store kind: how to build and fill one of `n` entries. */
interface Kind {
  readonly name: string
  readonly id: string
  readonly build: (n: number, keys: readonly string[], values: readonly string[]) => Promise<Store>
}

/**
 * Fills a SimpleCache (or a facade's backend) by setMany in big batches: a
 * million single awaited sets would cost seconds per store.
 */
async function fillSimple(
  simple: { setMany(e: readonly (readonly [string, unknown])[], t?: number): Promise<unknown> },
  n: number,
  keys: readonly string[],
  values: readonly string[],
): Promise<void> {
  for (let start = 0; start < n; start += FILL_BATCH) {
    const end = Math.min(n, start + FILL_BATCH)
    const batch: (readonly [string, string])[] = []
    for (let j = start; j < end; j++) batch.push([keys[j] as string, values[j] as string])
    await simple.setMany(batch, TTL_S)
  }
}

function fillMap(
  map: Map<string, unknown>,
  n: number,
  keys: readonly string[],
  values: readonly string[],
): void {
  for (let j = 0; j < n; j++) map.set(keys[j] as string, values[j])
}

function fillLru(
  lru: LRUCache<string, string>,
  n: number,
  keys: readonly string[],
  values: readonly string[],
): void {
  for (let j = 0; j < n; j++) lru.set(keys[j] as string, values[j] as string)
}

/**
 * The op closures take opLoop's running index `i` and map it through the
 * size's shuffled order, so consecutive ops touch unrelated entries across
 * the whole key set. Each op is a literal arrow of its own (as in the memory
 * group) so V8 keeps separate type feedback per store.
 */
function kinds(orders: ReadonlyMap<number, Uint32Array>): Kind[] {
  const orderOf = (n: number): Uint32Array => orders.get(n) as Uint32Array
  return [
    {
      name: FACADE,
      id: 'facade',
      build: async (n, keys, values) => {
        const cache = new Cache({
          CACHE_TYPE: 'SimpleCache',
          CACHE_THRESHOLD: n,
          CACHE_DEFAULT_TIMEOUT: TTL_S,
        })
        await fillSimple(cache.backend, n, keys, values)
        const order = orderOf(n)
        return {
          has: (j) => cache.has(keys[j] as string),
          get: (i) => cache.get(keys[order[i % n] as number] as string),
          set: (i) => {
            const j = order[i % n] as number
            return cache.set(keys[j] as string, values[j], TTL_S)
          },
        }
      },
    },
    {
      name: BACKEND,
      id: 'backend',
      build: async (n, keys, values) => {
        const simple = new SimpleCache({ threshold: n, defaultTimeout: TTL_S })
        await fillSimple(simple, n, keys, values)
        const order = orderOf(n)
        return {
          has: (j) => simple.has(keys[j] as string),
          get: (i) => simple.get(keys[order[i % n] as number] as string),
          set: (i) => {
            const j = order[i % n] as number
            return simple.set(keys[j] as string, values[j], TTL_S)
          },
        }
      },
    },
    {
      name: MAP,
      id: 'map',
      build: async (n, keys, values) => {
        const map = new Map<string, unknown>()
        fillMap(map, n, keys, values)
        const order = orderOf(n)
        return {
          has: async (j) => map.has(keys[j] as string),
          get: async (i) => map.get(keys[order[i % n] as number] as string),
          set: async (i) => {
            const j = order[i % n] as number
            map.set(keys[j] as string, values[j])
            return true
          },
        }
      },
    },
    {
      name: LRU,
      id: 'lru',
      build: async (n, keys, values) => {
        const lru = new LRUCache<string, string>({ max: n, ttl: TTL_MS })
        fillLru(lru, n, keys, values)
        const order = orderOf(n)
        return {
          has: async (j) => lru.has(keys[j] as string),
          get: async (i) => lru.get(keys[order[i % n] as number] as string),
          set: async (i) => {
            const j = order[i % n] as number
            lru.set(keys[j] as string, values[j] as string)
            return true
          },
        }
      },
    },
  ]
}

/**
 * The bytes allocated for JS: the heap's, plus ArrayBuffer backing stores,
 * which live outside the heap (lru-cache and SimpleCache keep their index,
 * expiry and link arrays in typed arrays; `heapUsed` alone misses them).
 */
function allocated(): number {
  const usage = process.memoryUsage()
  return usage.heapUsed + usage.arrayBuffers
}

/**
 * Bytes per entry of a store built and filled by `fill`: {@link allocated}
 * after a full GC, before and after building `copies` such stores of `n`
 * entries, divided by `copies * n`. The keys and values already exist
 * (shared arrays), so this is what the store itself adds per entry:
 * hash-table slots, entry objects or slot arrays, lru-cache's index arrays.
 */
async function bytesPerEntry(
  n: number,
  copies: number,
  fill: () => Promise<{ size: number }>,
): Promise<number> {
  collectGarbage()
  collectGarbage()
  const before = allocated()
  const stores: { size: number }[] = []
  for (let c = 0; c < copies; c++) stores.push(await fill())
  collectGarbage()
  const after = allocated()
  // Read after the second heap snapshot, so the stores are live through it.
  for (const store of stores) {
    if (store.size !== n) throw new Error(`growth: store holds ${store.size} entries, not ${n}`)
  }
  return (after - before) / (copies * n)
}

export const growthGroup: Group = {
  name: 'growth',
  async run(ctx: GroupContext): Promise<GroupResult> {
    const sizes = ctx.quick ? [1_000, 10_000, 100_000] : [1_000, 10_000, 100_000, 1_000_000]
    const rounds = ctx.quick ? 3 : 5
    const memoryRounds = ctx.quick ? 2 : 3
    const sliceMs = ctx.quick ? 15 : 100
    const largest = sizes[sizes.length - 1] as number
    const small = sizes[0] as number
    const gcExposed = typeof (globalThis as { gc?: unknown }).gc === 'function'

    // Key and value strings, measured on their own: what an entry costs on
    // top of the store's bytes per entry below (the strings plus 2 array slots).
    collectGarbage()
    const heap0 = allocated()
    const keys = Array.from({ length: largest }, (_, i) => keyOf(i))
    // kv's 32-character values, each its own flat string.
    const values = Array.from({ length: largest }, (_, i) => flat(value(i)))
    collectGarbage()
    const stringBytes = (allocated() - heap0) / largest
    const orders = new Map(sizes.map((n) => [n, Uint32Array.from(shuffled(n, SEED))]))

    const comparisons: Comparison[] = []

    // ---- time per op ---------------------------------------------------------------
    // First: run after the memory phase, the first kind measured was disturbed
    // (the heap had just grown and shrunk by gigabytes; medians 3-5x high).
    const t0 = performance.now()
    const pairs = sizes.slice(1).map((n) => [label(n), label(small)] as const)
    const timed = new Map<string, Comparison>()
    for (const kind of kinds(orders)) {
      ctx.log(`growth: ${kind.name}: build ${sizes.map(short).join(', ')}`)
      const stores: Store[] = []
      for (const n of sizes) stores.push(await kind.build(n, keys, values))
      // Every store hits on a spread of its keys before anything is timed.
      for (let s = 0; s < sizes.length; s++) {
        const n = sizes[s] as number
        for (let j = 0; j < n; j += 997) {
          if (!(await (stores[s] as Store).has(j))) {
            throw new Error(`growth: ${kind.name} at ${label(n)} misses key ${j}`)
          }
        }
      }
      for (const op of ['get', 'set'] as const) {
        ctx.log(`growth: ${kind.name}: ${op}`)
        const c = await compare({
          id: `growth.${op}.${kind.id}`,
          title: `growth: ${kind.name} ${op === 'get' ? 'get (hit)' : 'set (overwrite)'}, keys in a fixed shuffled order over all entries`,
          unit: NS_PER_OP,
          rounds,
          contenders: sizes.map(
            (n, s): ContenderSpec => ({
              name: label(n),
              role: (s === 0 ? 'reference' : 'subject') as Role,
              sample: opLoop((stores[s] as Store)[op], { sliceMs, batch: 1000, unit: NS_PER_OP }),
            }),
          ),
          pairs,
          log: ctx.log,
        })
        comparisons.push(c)
        timed.set(c.id, c)
      }
      // Dropped before the next kind is built (the array is the only reference).
      stores.length = 0
    }

    // ---- memory ----------------------------------------------------------------
    const t1 = performance.now()
    for (const n of sizes) {
      // Small stores are built in several copies per sample (at least 100,000
      // entries in all), so the heap's own noise (a few hundred kB) stays
      // below 1% of what is measured.
      const copies = Math.ceil(100_000 / n)
      ctx.log(`growth: memory at ${label(n)}`)
      const contenders: ContenderSpec[] = [
        {
          name: SIMPLE,
          role: 'subject',
          sample: () =>
            bytesPerEntry(n, copies, async () => {
              const s = new SimpleCache({ threshold: n, defaultTimeout: TTL_S })
              await fillSimple(s, n, keys, values)
              return s
            }),
        },
        {
          name: MAP,
          role: 'limit',
          sample: () =>
            bytesPerEntry(n, copies, async () => {
              const m = new Map<string, unknown>()
              fillMap(m, n, keys, values)
              return m
            }),
        },
        {
          name: LRU,
          role: 'limit',
          sample: () =>
            bytesPerEntry(n, copies, async () => {
              const l = new LRUCache<string, string>({ max: n, ttl: TTL_MS })
              fillLru(l, n, keys, values)
              return l
            }),
        },
      ]
      comparisons.push(
        await compare({
          id: `growth.memory.${short(n)}`,
          title: `growth: bytes per entry (heap + ArrayBuffers) at ${label(n)} (count = bytes)`,
          unit: COUNT,
          rounds: memoryRounds,
          // Nothing to warm up: allocation sizes do not depend on the JIT.
          warmupRounds: 0,
          contenders,
          pairs: [
            [SIMPLE, MAP],
            [SIMPLE, LRU],
          ],
          log: ctx.log,
        }),
      )
    }

    const phaseSeconds = {
      time: Math.round(t1 - t0) / 1000,
      memory: Math.round(performance.now() - t1) / 1000,
    }
    const headlines: Headline[] = []
    for (const op of ['get', 'set'] as const) {
      for (const [id, name] of [
        ['backend', 'SimpleCache backend'],
        ['facade', 'facade'],
        ['map', 'Map'],
      ] as const) {
        const c = timed.get(`growth.${op}.${id}`) as Comparison
        const ratio = ratioOf(c, label(largest), label(small))
        headlines.push({
          label: `${op}: ${name} ${short(largest)} ÷ ${short(small)} entries (time)`,
          ratio,
          // SimpleCache's own growth carries the target, as FileSystemCache's rows do.
          ...(id === 'backend' ? { target: target('<=', 1.5, ratio) } : {}),
        })
      }
    }
    const memLargest = comparisons.find(
      (c) => c.id === `growth.memory.${short(largest)}`,
    ) as Comparison
    headlines.push(
      {
        label: `memory at ${short(largest)}: SimpleCache ÷ Map (bytes/entry)`,
        ratio: ratioOf(memLargest, SIMPLE, MAP),
      },
      {
        label: `memory at ${short(largest)}: SimpleCache ÷ lru-cache (bytes/entry)`,
        ratio: ratioOf(memLargest, SIMPLE, LRU),
        target: target('<=', 1, ratioOf(memLargest, SIMPLE, LRU)),
      },
    )

    return {
      group: 'growth',
      description:
        `In-memory stores at ${sizes.map((n) => n.toLocaleString('en-US')).join(', ')} entries: ` +
        'SimpleCache through the Cache facade and directly (threshold = entry count, so nothing is ' +
        'evicted), and the limits: async wrappers around a raw Map and around lru-cache (max = entry ' +
        `count). ${TTL_S} s TTL where the store supports one. ns per awaited get (hit) and set ` +
        '(overwrite), keys visited in a fixed shuffled order over the whole key set; values are the ' +
        '32-character strings of bench/lib/kv.ts. Bytes per entry: heapUsed + arrayBuffers (typed arrays ' +
        'live outside the heap) after a full GC before and after filling fresh stores (several copies ' +
        'below 100,000 entries), ÷ entries; key and value ' +
        'strings are shared and not counted ' +
        '(see the notes for their size).',
      measuredAt: new Date().toISOString(),
      mode: ctx.quick ? 'quick' : 'full',
      settings: {
        sizes,
        rounds,
        memoryRounds,
        sliceMs,
        ttlSeconds: TTL_S,
        fillBatch: FILL_BATCH,
        memoryMinEntries: 100_000,
        gcExposed,
        phaseSeconds,
      },
      comparisons,
      headlines,
      notes: [
        `The key (\`user:<i>:profile\`) and value strings themselves took ${stringBytes.toFixed(0)} bytes ` +
          'per entry (with two array slots); add that to the bytes per entry above for the total cost of an entry.',
        'Get ratios above 1 at large sizes come mostly from CPU cache and TLB misses on a heap that no ' +
          'longer fits in cache: the raw Map pays them too, so compare the SimpleCache rows with the Map rows.',
        'Timed stores are built one kind at a time, all sizes of that kind alive at once; opLoop runs a ' +
          'full GC before every sample, outside the timed part. Timing runs before the memory phase ' +
          `(time ${phaseSeconds.time.toFixed(0)} s, memory ${phaseSeconds.memory.toFixed(0)} s).`,
      ],
    }
  },
}

/**
 * A flat (sequential) copy of `s`: template literals build cons strings (a
 * tree of pieces), while a value read from a socket or a file is one flat
 * string; a JSON round trip returns a fresh flat string.
 */
function flat(s: string): string {
  return JSON.parse(JSON.stringify(s)) as string
}
