/**
 * memoize: a hit of `cache.memoize(fn)` on SimpleCache against calling the
 * plain async function, plus a hand-written cache-aside (`cache.get` with a
 * precomputed key) as a reference that separates the memoize machinery
 * (version key, argument key, hashing of long argument texts) from the cache
 * lookup itself. The string and object rows take a number (a key used as
 * is); the hashed row takes a 200-character string, over the raw-key limit,
 * so its key is hashed.
 */
import { Cache } from '../../src/index.js'
import type { Group, GroupContext } from '../lib/group.js'
import { type Comparison, compare, NS_PER_OP, opLoop, ratioOf } from '../lib/measure.js'
import type { GroupResult, Headline } from '../lib/report.js'

const IDS = 256
const MASK = IDS - 1
const TTL_S = 300

const PLAIN = 'plain async function'
const MEMOIZED = 'cachette cache.memoize(fn) hit'
const ASIDE = 'cache-aside: cache.get(precomputed key)'

interface Calls {
  n: number
}

export const memoizeGroup: Group = {
  name: 'memoize',
  async run(ctx: GroupContext): Promise<GroupResult> {
    const rounds = ctx.quick ? 3 : 11
    const sliceMs = ctx.quick ? 15 : 200
    const cache = new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_THRESHOLD: 10_000 })
    const comparisons: Comparison[] = []

    const queries = Array.from({ length: IDS }, (_, id) => `${id}:`.padEnd(200, 'q'))
    const variants: readonly {
      kind: string
      /** The argument of call `id`; without it, `id` itself (called directly, no indirection). */
      arg?: (id: number) => unknown
      make: (calls: Calls) => (arg: never) => Promise<unknown>
    }[] = [
      {
        kind: 'string',
        // Separate but identical functions, so the memoized one's call count proves every call hit.
        make: (calls: Calls) =>
          async function loadName(id: number): Promise<string> {
            calls.n++
            return `user-${id}`
          },
      },
      {
        kind: 'object',
        make: (calls: Calls) =>
          async function loadUser(id: number): Promise<object> {
            calls.n++
            return { id, name: `user-${id}`, email: `user${id}@example.com`, active: true }
          },
      },
      {
        kind: 'hashed',
        arg: (id) => queries[id],
        make: (calls: Calls) =>
          async function search(q: string): Promise<string> {
            calls.n++
            return `results for ${q.slice(0, 4)}`
          },
      },
    ]

    for (const { kind, arg, make } of variants) {
      const plainCalls = { n: 0 }
      const memoCalls = { n: 0 }
      const plainFn = make(plainCalls)
      const memoizedFn = cache.memoize(make(memoCalls), { timeout: TTL_S })
      const innerFn = make({ n: 0 })
      const args = Array.from({ length: IDS }, (_, id) => (arg ? arg(id) : id) as never)
      const byId = (f: (arg: never) => Promise<unknown>) =>
        arg ? (id: number) => f(args[id] as never) : (f as (id: number) => Promise<unknown>)
      const plain = byId(plainFn)
      const memoized = byId(memoizedFn)
      const asideKeys = Array.from({ length: IDS }, (_, id) => `aside:${kind}:${id}`)
      const aside = async (id: number): Promise<unknown> => {
        const key = asideKeys[id] as string
        const hit = await cache.get(key)
        if (hit !== undefined) return hit
        const value = await innerFn(args[id] as never)
        await cache.set(key, value, TTL_S)
        return value
      }
      for (let id = 0; id < IDS; id++) {
        await memoized(id)
        await aside(id)
      }
      const warmCalls = memoCalls.n
      comparisons.push(
        await compare({
          id: `memoize.${kind}`,
          title:
            kind === 'hashed'
              ? `memoize: hit with a 200-character argument (hashed key), ${IDS} distinct arguments`
              : `memoize: hit returning a small ${kind}, ${IDS} distinct arguments`,
          unit: NS_PER_OP,
          rounds,
          contenders: [
            {
              name: PLAIN,
              role: 'limit',
              sample: opLoop((i) => plain(i & MASK), { sliceMs, batch: 1000, unit: NS_PER_OP }),
            },
            {
              name: MEMOIZED,
              role: 'subject',
              sample: opLoop((i) => memoized(i & MASK), { sliceMs, batch: 1000, unit: NS_PER_OP }),
            },
            {
              name: ASIDE,
              role: 'reference',
              sample: opLoop((i) => aside(i & MASK), { sliceMs, batch: 1000, unit: NS_PER_OP }),
            },
          ],
          log: ctx.log,
        }),
      )
      if (memoCalls.n !== warmCalls) {
        throw new Error(`memoize: ${memoCalls.n - warmCalls} calls missed the cache during the run`)
      }
    }
    const headlines: Headline[] = comparisons.flatMap((c) => [
      { label: `${c.id}: memoized hit ÷ plain call (time)`, ratio: ratioOf(c, MEMOIZED, PLAIN) },
      {
        label: `${c.id}: memoized hit ÷ cache-aside get (time)`,
        ratio: ratioOf(c, MEMOIZED, ASIDE),
      },
    ])
    return {
      group: 'memoize',
      description:
        'ns per awaited call. The limit is the plain async function (it does no real work, so the ' +
        'ratio is the full fixed cost of a memoize hit, not a realistic speed-up or slow-down). ' +
        'The cache-aside reference is one facade `get` with a key the caller already has. The ' +
        'string and object rows key a number (the key holds the argument text as is); the hashed ' +
        'row keys a 200-character string, over the raw-key limit, so each hit hashes it.',
      measuredAt: new Date().toISOString(),
      mode: ctx.quick ? 'quick' : 'full',
      settings: { rounds, sliceMs, distinctArguments: IDS, timeoutSeconds: TTL_S },
      comparisons,
      headlines,
      notes: [
        'Every memoized call in the measured rounds was a hit (checked by counting calls of the wrapped function).',
      ],
    }
  },
}
