/**
 * Internal: how `SpreadSASLMemcachedCache` stores a value larger than its
 * `chunkSize`. The chunks carry a fresh random id per write and are keyed
 * from the logical key (`key + NUL + id + NUL + i`), so they are hashed like
 * any unsafe key and land on any server; the value's key holds a manifest
 * (`~chunks:<id>:<count>:<bytes>`), which the codec's first bytes (digits,
 * `"`, `!`) can never be confused with. A read never mixes chunks of two
 * writes, and a missing chunk (evicted) is a miss, never a truncated value.
 */
import { randomBytes } from 'node:crypto'
import { BackendError, UnserializableValueError } from '../../core/errors.js'
import { Op } from './protocol.js'

/** The default `chunkSize`: 1 MiB minus room for the key and the item header. */
export const DEFAULT_CHUNK_SIZE = 1048576 - 512
/** The default `maxChunks`. */
export const DEFAULT_MAX_CHUNKS = 32

const MANIFEST = Buffer.from('~chunks:')

/** A chunked value's manifest: `~chunks:<id>:<count>:<bytes>`. */
export interface Manifest {
  id: string
  count: number
  bytes: number
}

/** The manifest `data` is, or `undefined` when it is a value's own bytes. */
export function parseManifest(data: Buffer): Manifest | undefined {
  if (
    data.length < MANIFEST.length ||
    data.compare(MANIFEST, 0, MANIFEST.length, 0, MANIFEST.length) !== 0
  ) {
    return undefined
  }
  const [id, count, bytes] = data.subarray(MANIFEST.length).toString('latin1').split(':')
  if (id === undefined || count === undefined || bytes === undefined) return undefined
  return { id, count: Number(count), bytes: Number(bytes) }
}

/** The keys of a manifest's chunks. */
export function chunkKeys(key: string, m: Manifest): string[] {
  return Array.from({ length: m.count }, (_, i) => `${key}\u0000${m.id}\u0000${i}`)
}

/** The raw item operations the chunks are written, read and deleted with (the cache's own). */
export interface ItemStore {
  /** The bytes at each key (`undefined`: missing); rejects when a server fails. */
  getManyRaw(keys: readonly string[]): Promise<(Buffer | undefined)[]>
  /** A `Set` (or `Add`) of bytes; resolves whether memcached stored them. */
  store(opcode: number, key: string, data: Buffer, expiration: number): Promise<boolean>
  /** Deletes keys, best effort. */
  deleteRaw(keys: readonly string[]): Promise<unknown>
}

/** The chunking of one spread cache. */
export class Chunks {
  /** The largest value stored in one item. */
  readonly size: number
  /** The most chunks one value may take. */
  readonly maxChunks: number
  readonly #name: string
  readonly #items: ItemStore

  constructor(size: number, maxChunks: number, name: string, items: ItemStore) {
    this.size = size
    this.maxChunks = maxChunks
    this.#name = name
    this.#items = items
  }

  /** Whether `data` must be stored as chunks. */
  needed(data: Buffer): boolean {
    return data.length > this.size
  }

  /** Writes `data` as chunks under a fresh id; resolves the manifest to store at the key. */
  async write(key: string, data: Buffer, expiration: number): Promise<Buffer> {
    const size = this.size
    const count = Math.ceil(data.length / size)
    if (count > this.maxChunks) {
      throw new UnserializableValueError(
        `${this.#name}: a value of ${data.length} bytes needs ${count} chunks of ${size} bytes, more than maxChunks (${this.maxChunks})`,
      )
    }
    const m: Manifest = { id: randomBytes(6).toString('base64url'), count, bytes: data.length }
    const keys = chunkKeys(key, m)
    const stored = await Promise.all(
      keys.map((k, i) =>
        this.#items.store(Op.Set, k, data.subarray(i * size, (i + 1) * size), expiration),
      ),
    )
    if (stored.includes(false)) {
      await this.#items.deleteRaw(keys)
      throw new BackendError(
        'ERR_CACHETTE_BACKEND_FAILED',
        `${this.#name}: a chunk was not stored (is chunkSize over the item size limit?)`,
      )
    }
    return Buffer.concat([MANIFEST, Buffer.from(`${m.id}:${m.count}:${m.bytes}`, 'latin1')])
  }

  /** Deletes the chunks a manifest just written names (an `add` that lost). */
  async discard(key: string, manifest: Buffer): Promise<void> {
    await this.#items.deleteRaw(chunkKeys(key, parseManifest(manifest) as Manifest))
  }

  /** The whole value of a manifest, or `undefined` if a chunk is gone. */
  async #read(key: string, m: Manifest): Promise<Buffer | undefined> {
    const parts = await this.#items.getManyRaw(chunkKeys(key, m))
    if (parts.some((p) => p === undefined)) return undefined
    const whole = Buffer.concat(parts as Buffer[])
    return whole.length === m.bytes ? whole : undefined
  }

  /** Bytes as stored at `key` to the value's bytes: chunks are joined; `undefined` when incomplete. */
  async resolve(key: string, data: Buffer | undefined): Promise<Buffer | undefined> {
    if (data === undefined) return data
    const m = parseManifest(data)
    return m === undefined ? data : this.#read(key, m)
  }

  /** Deletes the chunks of what is stored at each of `keys`, where it is a manifest (best effort). */
  async drop(keys: readonly string[]): Promise<void> {
    const raws = await this.#items.getManyRaw(keys)
    const chunks: string[] = []
    raws.forEach((data, i) => {
      const m = data === undefined ? undefined : parseManifest(data)
      if (m !== undefined) chunks.push(...chunkKeys(keys[i] as string, m))
    })
    if (chunks.length > 0) await this.#items.deleteRaw(chunks)
  }
}
