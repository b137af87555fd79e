/**
 * Internal: the Google Cloud Storage side of the object-store cache, on the
 * client library's `Bucket`. Every request has the deadline, and the
 * library's errors become {@link GoogleCloudStorageError}; a read is two
 * requests (the metadata, then the bytes of exactly that generation: the
 * library does not expose an object's metadata with a media download); the
 * expiry is `customTime` and, to the millisecond, the custom metadata
 * `cachette-expires`; conditional writes and deletes are `ifGenerationMatch`
 * (`0`: no object); uploads are one multipart request carrying their MD5.
 */
import { createHash } from 'node:crypto'
import { isLive, mapLimit, StoreTimeoutError, withDeadline } from '../../core/objectstore.js'
import {
  CHANGED,
  type ListedObject,
  type ObjectMeta,
  type ObjectRef,
  type ObjectStoreDriver,
  type RemoveFailure,
  type StoredObject,
  type WriteCondition,
} from '../objectstore/driver.js'
import { storeCode, withCode } from '../objectstore/errors.js'
import {
  type BucketHandle,
  GoogleCloudStorageError,
  type ObjectMetadata,
  type SaveOptions,
} from './client.js'

/** Custom metadata holding the expiry, in ms since the epoch. */
const META = 'cachette-expires'
const CONTENT_TYPE = 'application/octet-stream'
const FIELDS = {
  versions: 'items(name,generation),nextPageToken',
  expiry: 'items(name,customTime,metadata),nextPageToken',
} as const

function expiryIn(meta: ObjectMetadata): number | undefined {
  const raw = meta.metadata?.[META]
  if (raw !== undefined && raw !== null && raw !== '') {
    const at = Number(raw)
    if (Number.isFinite(at)) return at
  }
  // Objects written by Flask-Caching carry only customTime.
  if (typeof meta.customTime === 'string') {
    const at = Date.parse(meta.customTime)
    if (Number.isFinite(at)) return at
  }
  return undefined
}

/**
 * The object resource of a listed item: the client library lists `File`
 * objects whose `metadata` is the resource; a plain resource is taken as is.
 */
function resourceOf(item: ObjectMetadata): ObjectMetadata {
  const inner = item.metadata as { name?: unknown } | undefined
  return typeof inner === 'object' && inner !== null && typeof inner.name === 'string'
    ? (inner as ObjectMetadata)
    : item
}

function hasStatus(error: unknown, ...statuses: number[]): boolean {
  return (
    error instanceof GoogleCloudStorageError &&
    error.status !== undefined &&
    statuses.includes(error.status)
  )
}

/** What the GCS driver is built with. */
export interface GcsDriverOptions {
  /** The backend's class name, for messages. */
  name: string
  bucket: BucketHandle
  /** Milliseconds each request may take. */
  timeout: number
  /** Parallel deletes of `removeMany`. */
  concurrency: number
  /** Objects listed per request (`maxResults`). */
  pageSize: number
}

/** The {@link ObjectStoreDriver} of `GoogleCloudStorageCache`. */
export class GcsDriver implements ObjectStoreDriver {
  readonly #name: string
  readonly bucket: BucketHandle
  readonly #timeout: number
  readonly #concurrency: number
  readonly #pageSize: number
  #closed = false

  constructor(options: GcsDriverOptions) {
    this.#name = options.name
    this.bucket = options.bucket
    this.#timeout = options.timeout
    this.#concurrency = options.concurrency
    this.#pageSize = options.pageSize
  }

  /**
   * One request, with the deadline; library errors become
   * {@link GoogleCloudStorageError}. After `close()` it rejects at once
   * (`ERR_CACHETTE_GCS_CLOSED`).
   */
  async call<T>(op: string, request: () => Promise<T>): Promise<T> {
    const what = `${this.#name}.${op}`
    if (this.#closed) {
      throw withCode(new Error(`${what}: the cache is closed`), storeCode('GCS', 'CLOSED'))
    }
    try {
      return await withDeadline(this.#timeout, what, async () => request())
    } catch (error) {
      if (error instanceof StoreTimeoutError) throw error
      throw new GoogleCloudStorageError(what, error)
    }
  }

  /** `objects.get` (metadata): the generation and the expiry. */
  async stat(name: string, op: string): Promise<ObjectMeta | undefined> {
    try {
      const [meta] = await this.call(op, () => this.bucket.file(name).getMetadata())
      return { expiresAt: expiryIn(meta), version: String(meta.generation ?? '') }
    } catch (error) {
      if (hasStatus(error, 404)) return undefined
      throw error
    }
  }

  /**
   * The metadata, then (if the object is live) the bytes of that
   * generation; an expired object is deleted first with `purge` (only the
   * generation read, so a fresh value written meanwhile stays).
   * {@link CHANGED} when that generation is gone by the second request.
   */
  async read(
    name: string,
    op: string,
    purge: boolean,
  ): Promise<StoredObject | typeof CHANGED | undefined> {
    const meta = await this.stat(name, op)
    if (meta === undefined) return undefined
    if (!isLive(meta.expiresAt)) {
      if (purge) await this.remove(name, op, meta.version)
      return { meta, body: undefined }
    }
    const generation = meta.version as string
    try {
      const [data] = await this.call(op, () => this.bucket.file(name, { generation }).download())
      return { meta, body: data }
    } catch (error) {
      if (hasStatus(error, 404)) return CHANGED
      throw error
    }
  }

  /**
   * One upload (multipart: metadata and bytes in one request). With a
   * condition (`ifGenerationMatch`, `0` for no object) resolves `false` when
   * it fails (HTTP 412).
   */
  async write(
    name: string,
    body: Buffer,
    expiresAt: number | undefined,
    op: string,
    condition?: WriteCondition,
  ): Promise<boolean> {
    const options: SaveOptions = {
      resumable: false,
      validation: false,
      metadata: {
        contentType: CONTENT_TYPE,
        md5Hash: createHash('md5').update(body).digest('base64'),
        ...(expiresAt === undefined
          ? {}
          : {
              customTime: new Date(expiresAt).toISOString(),
              metadata: { [META]: String(expiresAt) },
            }),
      },
    }
    if (condition !== undefined) {
      const ifGenerationMatch = 'ifAbsent' in condition ? 0 : condition.ifVersion
      options.preconditionOpts = { ifGenerationMatch }
    }
    try {
      await this.call(op, () => this.bucket.file(name).save(body, options))
      return true
    } catch (error) {
      if (condition !== undefined && hasStatus(error, 412)) return false
      throw error
    }
  }

  /**
   * Deletes the object (only that generation, when given). Resolves whether
   * this call deleted it: `false` when it was already gone or replaced.
   */
  async remove(name: string, op: string, version?: string): Promise<boolean> {
    try {
      await this.call(op, () =>
        this.bucket.file(name).delete(version === undefined ? {} : { ifGenerationMatch: version }),
      )
      return true
    } catch (error) {
      if (hasStatus(error, 404, 412)) return false
      throw error
    }
  }

  /** One delete per object, `concurrency` at a time; the ones that failed, with their errors. */
  async removeMany(objects: readonly ObjectRef[], op: string): Promise<RemoveFailure[]> {
    const settled = await mapLimit(objects, this.#concurrency, (o) =>
      this.remove(o.name, op, o.version),
    )
    const failures: RemoveFailure[] = []
    for (const [i, s] of settled.entries()) {
      if (s.status === 'rejected') failures.push({ name: objects[i]?.name ?? '', error: s.reason })
    }
    return failures
  }

  /** `objects.list`, a page (`pageSize`) at a time, with only the fields asked for. */
  async *list(
    prefix: string,
    op: string,
    fields: 'versions' | 'expiry',
  ): AsyncIterable<ListedObject[]> {
    let pageToken: string | undefined
    do {
      const token = pageToken
      const [items, , response] = await this.call(op, () =>
        this.bucket.getFiles({
          ...(prefix === '' ? {} : { prefix }),
          maxResults: this.#pageSize,
          ...(token === undefined ? {} : { pageToken: token }),
          autoPaginate: false,
          fields: FIELDS[fields],
        }),
      )
      const listed: ListedObject[] = []
      for (const item of items) {
        const name = item.name
        if (typeof name !== 'string' || name === '') continue
        listed.push(
          fields === 'versions'
            ? {
                name,
                version: item.generation === undefined ? undefined : String(item.generation),
              }
            : { name, expiresAt: expiryIn(resourceOf(item)) },
        )
      }
      yield listed
      pageToken = response?.nextPageToken || undefined
    } while (pageToken !== undefined)
  }

  /**
   * Calls after it reject. The client holds no connection to close (idle
   * keep-alive sockets close by themselves); a shared `client` is left as is.
   */
  async close(): Promise<void> {
    this.#closed = true
  }
}
