/**
 * What the key-value groups (memory, redis, memcached) share: the key set,
 * the values, the TTL and the shape of a contender's operations.
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
