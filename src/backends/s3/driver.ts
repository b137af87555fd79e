/**
 * Internal: the S3 side of the object-store cache. One command per request,
 * each under the deadline (`GetObject` brings the metadata and the bytes in
 * one); the expiry is the `cachette-expires` metadata; conditional writes are
 * `If-None-Match: *` and `If-Match` on the ETag; deletes are `DeleteObjects`
 * batches of 1,000; listing is `ListObjectsV2`.
 */
import { allValues, isLive, mapLimit, withDeadline } from '../../core/objectstore.js'
import type {
  ListedObject,
  ObjectMeta,
  ObjectRef,
  ObjectStoreDriver,
  RemoveFailure,
  StoredObject,
  WriteCondition,
} from '../objectstore/driver.js'
import { isNotFound, isPreconditionFailed, type S3ClientLike, type S3Module } from './client.js'

/** The object metadata key holding the expiry, in ms since the epoch. */
export const META = 'cachette-expires'
/** The most names one `DeleteObjects` (and one `ListObjectsV2` page) holds. */
const BATCH = 1000

interface GetOutput {
  Body?: { transformToByteArray(): Promise<Uint8Array>; destroy?(): void }
  Metadata?: Record<string, string>
  ETag?: string
}

interface HeadOutput {
  Metadata?: Record<string, string>
  ETag?: string
}

function expiryIn(metadata: Record<string, string> | undefined): number | undefined {
  const raw = metadata?.[META]
  if (raw === undefined || raw === '') return undefined
  const at = Number(raw)
  return Number.isFinite(at) ? at : undefined
}

function metaOf(out: HeadOutput): ObjectMeta {
  return { expiresAt: expiryIn(out.Metadata), version: out.ETag }
}

/** What the S3 driver is built with. */
export interface S3DriverOptions {
  /** The backend's class name, for messages. */
  name: string
  sdk: S3Module
  client: S3ClientLike
  /** Whether the backend created the client (and so destroys it on close). */
  owned: boolean
  bucket: string
  /** Milliseconds each request may take. */
  timeout: number
}

/** The {@link ObjectStoreDriver} of `S3Cache`. */
export class S3Driver implements ObjectStoreDriver {
  readonly #name: string
  readonly #sdk: S3Module
  readonly client: S3ClientLike
  readonly #owned: boolean
  readonly #bucket: string
  readonly #timeout: number

  constructor(options: S3DriverOptions) {
    this.#name = options.name
    this.#sdk = options.sdk
    this.client = options.client
    this.#owned = options.owned
    this.#bucket = options.bucket
    this.#timeout = options.timeout
  }

  /** Sends one command on the bucket, under the deadline. */
  send<T>(command: keyof S3Module, input: Record<string, unknown>, op: string): Promise<T> {
    const Command = this.#sdk[command] as new (input: Record<string, unknown>) => unknown
    return withDeadline(this.#timeout, `${this.#name}.${op}`, (abortSignal) =>
      this.client.send(new Command({ Bucket: this.#bucket, ...input }), { abortSignal }),
    ) as Promise<T>
  }

  /** `HeadObject`. */
  async stat(name: string, op: string): Promise<ObjectMeta | undefined> {
    try {
      return metaOf(await this.send<HeadOutput>('HeadObjectCommand', { Key: name }, op))
    } catch (error) {
      if (isNotFound(error)) return undefined
      throw error
    }
  }

  /**
   * `GetObject`, its body read only when the object is live; with `purge`
   * an expired object is deleted (`DeleteObject`) within the same deadline.
   * Never `CHANGED`: metadata and bytes come in one answer.
   */
  read(name: string, op: string, purge: boolean): Promise<StoredObject | undefined> {
    const Key = name
    return withDeadline(this.#timeout, `${this.#name}.${op}`, async (abortSignal) => {
      let out: GetOutput
      try {
        out = (await this.client.send(
          new this.#sdk.GetObjectCommand({ Bucket: this.#bucket, Key }),
          { abortSignal },
        )) as GetOutput
      } catch (error) {
        if (isNotFound(error)) return undefined
        throw error
      }
      const meta = metaOf(out)
      if (!isLive(meta.expiresAt)) {
        out.Body?.destroy?.()
        if (purge) {
          await this.client.send(new this.#sdk.DeleteObjectCommand({ Bucket: this.#bucket, Key }), {
            abortSignal,
          })
        }
        return { meta, body: undefined }
      }
      const bytes = (await out.Body?.transformToByteArray()) ?? new Uint8Array()
      return { meta, body: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) }
    })
  }

  /** `PutObject` with the expiry in the metadata; `If-None-Match: *` or `If-Match` for a condition. */
  async write(
    name: string,
    body: Buffer,
    expiresAt: number | undefined,
    op: string,
    condition?: WriteCondition,
  ): Promise<boolean> {
    const input = {
      Key: name,
      Body: body,
      ContentType: 'application/octet-stream',
      Metadata: expiresAt === undefined ? {} : { [META]: String(expiresAt) },
      ...(condition === undefined
        ? {}
        : 'ifAbsent' in condition
          ? { IfNoneMatch: '*' }
          : { IfMatch: condition.ifVersion }),
    }
    try {
      await this.send('PutObjectCommand', input, op)
      return true
    } catch (error) {
      if (condition !== undefined && isPreconditionFailed(error)) return false
      // `If-Match` on an object that is gone: S3 answers 404 NoSuchKey, a failed precondition too.
      if (condition !== undefined && 'ifVersion' in condition && isNotFound(error)) return false
      throw error
    }
  }

  /** `DeleteObject`, unconditional (S3 does not say whether the object existed). */
  async remove(name: string, op: string): Promise<boolean> {
    await this.send('DeleteObjectCommand', { Key: name }, op)
    return true
  }

  /** `DeleteObjects` in batches of 1,000 names, four at a time; the names S3 reported as not deleted. */
  async removeMany(objects: readonly ObjectRef[], op: string): Promise<RemoveFailure[]> {
    const batches: string[][] = []
    for (let i = 0; i < objects.length; i += BATCH) {
      batches.push(objects.slice(i, i + BATCH).map((o) => o.name))
    }
    const results = allValues(
      await mapLimit(batches, 4, (batch) =>
        this.send<{ Errors?: { Key?: string }[] }>(
          'DeleteObjectsCommand',
          { Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } },
          op,
        ),
      ),
    )
    return results.flatMap((r) => (r.Errors ?? []).map((e) => ({ name: e.Key ?? '' })))
  }

  /** `ListObjectsV2`, a page of up to 1,000 names at a time (a listing carries no metadata). */
  async *list(prefix: string, op: string): AsyncIterable<ListedObject[]> {
    let token: string | undefined
    do {
      const page = await this.send<{
        Contents?: { Key?: string }[]
        NextContinuationToken?: string
        IsTruncated?: boolean
      }>(
        'ListObjectsV2Command',
        { Prefix: prefix === '' ? undefined : prefix, ContinuationToken: token, MaxKeys: BATCH },
        op,
      )
      const names = (page.Contents ?? []).map((o) => o.Key)
      yield names.filter((k): k is string => k !== undefined).map((name) => ({ name }))
      token = page.IsTruncated ? page.NextContinuationToken : undefined
    } while (token !== undefined)
  }

  /** Destroys the client if the backend created it. */
  async close(): Promise<void> {
    if (this.#owned) this.client.destroy()
  }
}
