/**
 * Internal: the generation counters of `TieredCache`. A read of the second
 * tier fills the first tier only if `epoch + gens[bucket(key)]` did not change
 * meanwhile: every received invalidation, every local write and every bus
 * state change bumps one of them. Both only grow, so their sum changes
 * whenever either does; a bucket collision only costs a skipped fill.
 */

/** The generation counters: one per hash bucket of keys. */
const GEN_BUCKETS = 4096

/** FNV-1a of the key's UTF-16 code units, reduced to a generation bucket. */
export function bucketOf(key: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return (h >>> 0) & (GEN_BUCKETS - 1)
}

/** One cache's counters: an epoch for everything, a generation per bucket of keys. */
export class Generations {
  #epoch = 0
  readonly #gens = new Uint32Array(GEN_BUCKETS)

  /** Every key changes (a clear, a bus state change). */
  bumpAll(): void {
    this.#epoch++
  }

  /** `key` changes. */
  bump(key: string): void {
    const b = bucketOf(key)
    // A Uint32Array wraps around; a read would have to span 2^32 bumps to be fooled.
    this.#gens[b] = (this.#gens[b] as number) + 1
  }

  /** Each of `keys` changes. */
  bumpKeys(keys: readonly string[]): void {
    for (const key of keys) this.bump(key)
  }

  /** The generation of a bucket now (compare before and after a second-tier read). */
  ticket(bucket: number): number {
    return this.#epoch + (this.#gens[bucket] as number)
  }
}
