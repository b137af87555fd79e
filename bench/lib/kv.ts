/**
 * What the key-value groups (memory, redis, memcached, s3) share: the key
 * set, the values, the TTL, the shape of a contender's operations, the
 * prefill and read-back check, and the get/set and getMany comparisons.
 */
import {
  type Comparison,
  type ContenderSpec,
  compare,
  OPS_PER_SEC,
  opLoop,
  type Role,
} from './measure.js'

/** Distinct keys per group; a power of two so `i & MASK` cycles through them. */
export const KEYS = 1024
export const MASK = KEYS - 1
/** The TTL every store gets, in seconds. */
export const TTL_S = 300
/** Keys per multi-key operation. */
export const BATCH = 100

/** The i-th key, cycling over {@link KEYS}. */
export const key = (i: number): string => `bench:${i & MASK}`
/** The i-th value: a 32-character string. */
export const value = (i: number): string =>
  `value-${String(i & MASK).padStart(6, '0')}-abcdefghijklmnopqr`

/** One contender: its single-key operations, and a multi-key get where the group measures one. */
export interface Subject {
  readonly name: string
  readonly role: Role
  readonly get: (i: number) => Promise<unknown>
  readonly set: (i: number) => Promise<unknown>
  readonly getMany?: (keys: string[]) => Promise<unknown>
}

/** How {@link compareOp} runs one operation over a group's subjects. */
export interface CompareOpOptions {
  /** The group's name, for the id, title and log (`'redis'`). */
  readonly group: string
  readonly op: 'get' | 'set'
  readonly subjects: readonly Subject[]
  readonly rounds: number
  readonly sliceMs: number
  /** Ops between clock reads. */
  readonly batch: number
  readonly pairs: readonly (readonly [string, string])[]
  /** Contenders measured with the subjects that are not plain {@link Subject}s. */
  readonly extra?: readonly ContenderSpec[]
  readonly log: (line: string) => void
}

/** One interleaved comparison of `op` (awaited one at a time, ops/s) over every subject. */
export function compareOp(o: CompareOpOptions): Promise<Comparison> {
  o.log(`${o.group}: ${o.op}`)
  return compare({
    id: `${o.group}.${o.op}`,
    title: `${o.group}: ${o.op === 'get' ? 'get (hit)' : 'set'}, small string value, awaited one at a time`,
    unit: OPS_PER_SEC,
    rounds: o.rounds,
    contenders: [
      ...o.subjects.map(
        (s): ContenderSpec => ({
          name: s.name,
          role: s.role,
          sample: opLoop(s[o.op], { sliceMs: o.sliceMs, batch: o.batch, unit: OPS_PER_SEC }),
        }),
      ),
      ...(o.extra ?? []),
    ],
    pairs: o.pairs,
    log: o.log,
  })
}

/**
 * Writes keys 0..keys-1 through every subject, one subject after the other,
 * each set awaited (untimed; every later get is then a hit).
 */
export async function prefill(
  subjects: readonly Pick<Subject, 'set'>[],
  keys: number = KEYS,
): Promise<void> {
  for (const s of subjects) for (let i = 0; i < keys; i++) await s.set(i)
}

/**
 * Reads key 7 through every reader before anything is timed and throws
 * `<group>: <name> did not return the stored <what>` unless `ok` accepts
 * what came back: a contender that misses or reads something else would be
 * measuring another operation.
 */
export async function checkReads(
  group: string,
  readers: readonly Pick<Subject, 'name' | 'get'>[],
  ok: (got: unknown) => boolean,
  what = 'value',
): Promise<void> {
  for (const r of readers) {
    if (!ok(await r.get(7)))
      throw new Error(`${group}: ${r.name} did not return the stored ${what}`)
  }
}

/**
 * {@link compareOp} for `get`, then for `set`, with the same options:
 * `[get, set]`, in that order.
 */
export async function compareGetSet(
  o: Omit<CompareOpOptions, 'op'>,
): Promise<[Comparison, Comparison]> {
  const get = await compareOp({ ...o, op: 'get' })
  const set = await compareOp({ ...o, op: 'set' })
  return [get, set]
}

/**
 * The key batches of the getMany comparisons: {@link KEYS} / {@link BATCH}
 * arrays of {@link BATCH} consecutive keys, built once per call (per group
 * run); the returned function gives the batch for opLoop's running index,
 * cycling through them.
 */
export function keyBatches(): (i: number) => string[] {
  const batches = Array.from({ length: KEYS / BATCH }, (_, b) =>
    Array.from({ length: BATCH }, (_, j) => key(b * BATCH + j)),
  )
  return (i) => batches[i % batches.length] as string[]
}

/** The name of the {@link singleGets} contender. */
export const SINGLES = `${BATCH} cachette gets, one after another`

/**
 * The reference of a getMany comparison: the batch's keys read through
 * `cache.get` one at a time, awaited in turn (one op = one batch, so its
 * ops/s compare with a getMany's).
 */
export function singleGets(
  cache: { get(key: string): Promise<unknown> },
  batchOf: (i: number) => string[],
  sliceMs: number,
): ContenderSpec {
  return {
    name: SINGLES,
    role: 'reference',
    sample: opLoop(
      async (i) => {
        for (const k of batchOf(i)) await cache.get(k)
      },
      { sliceMs, batch: 1, unit: OPS_PER_SEC },
    ),
  }
}
