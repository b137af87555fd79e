/**
 * What the key-value groups (memory, redis, memcached) share: the key set,
 * the values, the TTL and the shape of a contender's operations.
 */
import type { Role } from './measure.js'

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
