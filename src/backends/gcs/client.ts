/**
 * Internal: loading `@google-cloud/storage` lazily, the few client methods the
 * Google Cloud Storage backend calls (as structural types, so no public type
 * depends on the package), and reading the HTTP status of its errors.
 */
import { createRequire } from 'node:module'
import { loadOptional, resolveOptional } from '../../core/optional.js'

/**
 * What the backend needs of a `Storage` instance from `@google-cloud/storage`
 * (any 7.x `Storage` fits): a way to reach a bucket.
 */
export interface StorageLike {
  /** The bucket of that name (no request is made). */
  bucket(name: string): object
}

/** Custom metadata of an object: string values, as the JSON API keeps them. */
export type CustomMetadata = { [key: string]: string | boolean | number | null }

/** The fields of an object resource (JSON API) the backend reads. */
export interface ObjectMetadata {
  name?: string
  generation?: string | number
  customTime?: string
  metadata?: CustomMetadata
}

/** What `file.save` is given: a one-request (multipart) upload. */
export interface SaveOptions {
  resumable: false
  /**
   * Off: the MD5 sent in `metadata.md5Hash` makes GCS check the bytes before
   * it creates the object, so the client need not check afterwards (and
   * delete, without a precondition, what it finds wrong).
   */
  validation: false
  metadata: {
    contentType: string
    md5Hash: string
    customTime?: string
    metadata?: Record<string, string>
  }
  preconditionOpts?: { ifGenerationMatch: number | string }
}

/** The methods of a `File` the backend calls. */
export interface FileHandle {
  save(data: Buffer, options: SaveOptions): Promise<unknown>
  download(options?: { validation?: boolean | 'crc32c' | 'md5' }): Promise<[Buffer, ...unknown[]]>
  getMetadata(): Promise<[ObjectMetadata, ...unknown[]]>
  delete(options?: {
    ignoreNotFound?: boolean
    ifGenerationMatch?: number | string
  }): Promise<unknown>
}

/** A bucket lifecycle rule, as the JSON API writes it. */
export interface LifecycleRuleLike {
  action: { type: string; storageClass?: string }
  condition: { [key: string]: unknown }
}

/** The fields of a bucket resource the backend reads. */
export interface BucketMetadata {
  metageneration?: string | number
  lifecycle?: { rule?: LifecycleRuleLike[] } | null
}

/** One page of `objects.list`. */
export interface ListQuery {
  prefix?: string
  maxResults: number
  pageToken?: string
  autoPaginate: false
  /** Partial response: only the fields the backend reads. */
  fields: string
}

/** The methods of a `Bucket` the backend calls. */
export interface BucketHandle {
  readonly name: string
  file(name: string, options?: { generation?: number | string }): FileHandle
  getFiles(
    query: ListQuery,
  ): Promise<[ObjectMetadata[], unknown, { nextPageToken?: string } | undefined, ...unknown[]]>
  getMetadata(): Promise<[BucketMetadata, ...unknown[]]>
  setMetadata(
    metadata: { lifecycle: { rule: LifecycleRuleLike[] } },
    options?: { ifMetagenerationMatch?: number | string },
  ): Promise<unknown>
}

/** What `require('@google-cloud/storage')` gives. */
export interface StorageModule {
  Storage: new (options: Record<string, unknown>) => StorageLike
}

/** What `require('google-auth-library')` (a dependency of `@google-cloud/storage`) gives. */
interface AuthModule {
  PassThroughClient: new () => object
}

/** The client package this backend loads. */
export const STORAGE_PACKAGE = '@google-cloud/storage'

/**
 * Loads `@google-cloud/storage` synchronously on first use, so importing
 * `cachette/gcs` (or `cachette`, whose registry names this backend) never
 * needs it.
 * @throws {MissingDependencyError} naming the package when it is not installed.
 */
export function loadStorage(forWhat: string): StorageModule {
  return loadOptional<StorageModule>(STORAGE_PACKAGE, forWhat)
}

/**
 * An auth client that adds no credentials (google-auth-library's
 * `PassThroughClient`, resolved from `@google-cloud/storage`'s own location:
 * it is that package's dependency, not ours): anonymous access to public
 * buckets, emulators and test servers.
 */
export function anonymousAuthClient(forWhat: string): object {
  loadStorage(forWhat)
  const fromStorage = createRequire(resolveOptional(STORAGE_PACKAGE))
  const auth = fromStorage('google-auth-library') as AuthModule
  return new auth.PassThroughClient()
}

/** The HTTP status of an error from the client library (`ApiError.code`), if it has one. */
export function statusOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined
  const code = (error as { code?: unknown }).code
  return typeof code === 'number' ? code : undefined
}

/** A request to Google Cloud Storage failed (HTTP error, network error, bad response). */
export class GoogleCloudStorageError extends Error {
  override name = 'GoogleCloudStorageError'
  /** Always `'ERR_CACHETTE_GCS_REQUEST'`; `status` tells the failures apart. */
  readonly code = 'ERR_CACHETTE_GCS_REQUEST' as const
  /** The HTTP status GCS answered, when it answered. */
  readonly status: number | undefined
  constructor(what: string, cause: unknown) {
    const status = statusOf(cause)
    const message = cause instanceof Error ? cause.message : String(cause)
    const first = message.split('\n')[0]?.slice(0, 300) ?? ''
    super(`${what}: ${status === undefined ? '' : `HTTP ${status}: `}${first}`, { cause })
    this.status = status
  }
}
