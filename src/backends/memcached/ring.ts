/**
 * Internal: consistent hashing of keys onto servers (ketama, as libmemcached,
 * spymemcached and twemproxy do it). Each server gets 160 points on a 32-bit
 * circle, four per MD5 digest of `"<label>-<i>"`; a key belongs to the first
 * point at or after the first four bytes of its MD5. Adding a server to `n`
 * moves about `1/(n+1)` of the keys; removing one moves only its own keys.
 */
import { createHash } from 'node:crypto'

const POINTS_PER_HASH = 4
const HASHES_PER_SERVER = 40

function md5(text: string): Buffer {
  return createHash('md5').update(text).digest()
}

/** Maps keys to server indexes. */
export class HashRing {
  readonly #points: Uint32Array
  readonly #owners: Uint16Array
  readonly #single: boolean

  /** @param labels one label per server (`host:port`), in server order. */
  constructor(labels: readonly string[]) {
    this.#single = labels.length === 1
    const points: [number, number][] = []
    labels.forEach((label, server) => {
      for (let i = 0; i < HASHES_PER_SERVER; i++) {
        const digest = md5(`${label}-${i}`)
        for (let j = 0; j < POINTS_PER_HASH; j++) {
          points.push([digest.readUInt32LE(j * 4), server])
        }
      }
    })
    points.sort((a, b) => a[0] - b[0] || a[1] - b[1])
    this.#points = Uint32Array.from(points, (p) => p[0])
    this.#owners = Uint16Array.from(points, (p) => p[1])
  }

  /** The index of the server that holds `key`. */
  serverOf(key: string): number {
    if (this.#single) return 0
    const h = md5(key).readUInt32LE(0)
    const points = this.#points
    let lo = 0
    let hi = points.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((points[mid] as number) < h) lo = mid + 1
      else hi = mid
    }
    return this.#owners[lo === points.length ? 0 : lo] as number
  }
}
