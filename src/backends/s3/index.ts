/**
 * `S3Cache`: a cache in an S3 bucket (flask-cache-s3's backend, done right),
 * on `@aws-sdk/client-s3` (`npm install @aws-sdk/client-s3`), loaded when
 * the backend is constructed. Works with AWS S3 and S3-compatible stores
 * (`endpointUrl`: MinIO, R2, s3rver, ...).
 *
 * ```ts
 * import { Cache } from 'cachette'
 * import { S3Cache } from 'cachette/s3'
 * const cache = new Cache({ CACHE_TYPE: S3Cache, CACHE_S3_BUCKET: 'my-cache', CACHE_KEY_PREFIX: 'app1/' })
 * await cache.set('report', bigReport, 3600)
 * ```
 *
 * One object per key, named `keyPrefix + key` (a key that is too long or
 * holds control characters is stored under a SHA-256 of it). The value is the
 * object's body in cachette's byte format; the expiry is the object's
 * `cachette-expires` metadata (ms since the epoch), so an expired object is
 * a miss even while S3 still holds it. S3 does not delete expired objects by
 * itself: {@link S3Cache.purgeExpiredOnRead} deletes them when read, and a
 * bucket lifecycle rule ({@link S3Cache.lifecycleRule}) removes the rest.
 *
 * Every call has a deadline (`timeout`, 2 s), so a slow or unreachable store
 * makes the cache miss instead of hanging the request.
 * @packageDocumentation
 */
import {
  type BackendFactoryOptions,
  BaseCache,
  type BaseCacheOptions,
  integerOf,
} from '../../core/backend.js'
import { decodeOrMiss, encodeValue } from '../../core/codec.js'
import { ConfigError, DeleteManyError, NotAnIntegerError } from '../../core/errors.js'
import { warnOnce } from '../../core/log.js'
import {
  allValues,
  checkObjectPrefix,
  expiryOf,
  isLive,
  mapLimit,
  objectName,
  withDeadline,
} from '../../core/objectstore.js'
import {
  isNotFound,
  isPreconditionFailed,
  loadS3,
  type S3ClientLike,
  type S3Module,
} from './client.js'

export type { S3ClientLike }

/** Options of {@link S3Cache}. */
export interface S3CacheOptions extends BaseCacheOptions {
  /** The bucket. Required. `CACHE_S3_BUCKET`. */
  bucket?: string
  /**
   * Prepended to every object name; `clear()` removes exactly the objects
   * under it. Use a folder-like prefix (`'cache/'`). `CACHE_KEY_PREFIX`.
   * @default ''
   */
  keyPrefix?: string
  /** An S3-compatible endpoint (`http://127.0.0.1:9000`). `CACHE_S3_ENDPOINT_URL`. */
  endpointUrl?: string
  /** The region; by default the AWS SDK's chain (`AWS_REGION`, profile), else `us-east-1` with an endpoint. */
  region?: string
  /** Credentials (`{ accessKeyId, secretAccessKey, sessionToken? }` or a provider); by default the AWS SDK's chain. */
  credentials?: unknown
  /** Path-style addressing (`endpoint/bucket/key`). @default true with `endpointUrl`, else false */
  forcePathStyle?: boolean
  /** An existing `S3Client` to share; the backend never destroys it. */
  client?: S3ClientLike
  /**
   * Delete an expired object when a read finds it (flask-cache-s3's
   * `purge_expired_on_read`). `CACHE_OPTIONS: { purge_expired_on_read: true }`.
   * @default false
   */
  purgeExpiredOnRead?: boolean
  /**
   * Conditional writes (`If-None-Match: *`, `If-Match`) make `add` and
   * `inc` atomic. AWS S3, MinIO and R2 support them; `'auto'` checks once,
   * on first use, whether the store honours them, and falls back to
   * read-then-write (not atomic) if it ignores them.
   * @default 'auto'
   */
  conditionalWrites?: boolean | 'auto'
  /** Milliseconds each call may take before it is abandoned and the cache misses. @default 2000 */
  timeout?: number
  /** Parallel requests for `getMany`, `setMany` and `deleteMany`'s lookups. @default 16 */
  concurrency?: number
  /** Let `clear()` without a key prefix delete every object in the bucket. @default false */
  allowFlush?: boolean
  /** Other `S3Client` options (`maxAttempts`, `requestHandler`, ...). Unknown `CACHE_OPTIONS` land here. */
  clientOptions?: Record<string, unknown>
}

/** A constructor of {@link S3Cache} or a subclass, as its static `factory` uses through `this`. */
export type S3CacheClass = new (options: S3CacheOptions) => S3Cache

/** One rule of an S3 bucket lifecycle configuration, as `PutBucketLifecycleConfiguration` takes it. */
export interface S3LifecycleRule {
  ID: string
  Status: 'Enabled'
  Filter: { Prefix: string }
  Expiration: { Days: number }
}

const META = 'cachette-expires'
const DAY = 86400
const DELETE_BATCH = 1000
const OWN_OPTIONS = new Set([
  'purgeExpiredOnRead',
  'conditionalWrites',
  'timeout',
  'concurrency',
  'allowFlush',
  'region',
  'credentials',
  'forcePathStyle',
  'client',
])

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  return value === null ? 'null' : typeof value
}

function positive(value: unknown, name: string, fallback: number, integer = false): number {
  if (value === undefined || value === null) return fallback
  const ok = typeof value === 'number' && value > 0 && Number.isFinite(value)
  if (!ok || (integer && !Number.isInteger(value))) {
    throw new ConfigError(
      'CACHE_OPTIONS',
      `${name} must be a positive ${integer ? 'integer' : 'number'}, got ${describe(value)}`,
    )
  }
  return value as number
}

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

/** A read object: its bytes (undefined when expired) and its ETag. */
interface Found {
  data: Buffer | undefined
  etag: string | undefined
}

/**
 * A cache in an S3 bucket. See the module documentation.
 *
 * Differs from flask-cache-s3 on purpose: `clear()` without a key prefix
 * refuses instead of emptying the bucket; `add` and `inc` are atomic where
 * the store honours conditional writes; `delete` says whether the key
 * existed; `getMany` runs in parallel; every call has a deadline; keys that
 * are not valid object names are hashed.
 */
export class S3Cache extends BaseCache {
  /**
   * Builds the cache from configuration: `CACHE_S3_BUCKET` (required),
   * `CACHE_S3_ENDPOINT_URL`, `CACHE_KEY_PREFIX`, `CACHE_DEFAULT_TIMEOUT`, and
   * `CACHE_OPTIONS` (`purge_expired_on_read`, `conditional_writes`,
   * `timeout`, `concurrency`, `allow_flush`, `region`, `credentials`,
   * `force_path_style`, `client`; anything else goes to the `S3Client`).
   */
  static factory(
    this: S3CacheClass,
    _app: object | undefined,
    config: Readonly<Record<string, unknown>>,
    _args: unknown[],
    options: BackendFactoryOptions,
  ): S3Cache {
    const { defaultTimeout, ignoreDeleteManyErrors, serializer, logger, ...rest } = options
    const own: Record<string, unknown> = {}
    const clientOptions: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(rest)) {
      if (OWN_OPTIONS.has(k)) own[k] = v
      else clientOptions[k] = v
    }
    return new this({
      ...(own as S3CacheOptions),
      clientOptions,
      defaultTimeout,
      ignoreDeleteManyErrors,
      serializer,
      logger,
      bucket: config.CACHE_S3_BUCKET as string | undefined,
      endpointUrl: config.CACHE_S3_ENDPOINT_URL as string | undefined,
      keyPrefix: config.CACHE_KEY_PREFIX as string | undefined,
    })
  }

  /** The bucket. */
  readonly bucket: string
  /** Prepended to every object name. */
  readonly keyPrefix: string
  /** Whether a read deletes the expired object it finds. */
  readonly purgeExpiredOnRead: boolean
  /** Whether `clear()` without a prefix may empty the bucket. */
  readonly allowFlush: boolean
  readonly #name: string
  readonly #sdk: S3Module
  readonly #client: S3ClientLike
  readonly #owned: boolean
  readonly #timeout: number
  readonly #concurrency: number
  #conditional: boolean | Promise<boolean> | 'auto'

  /**
   * @throws {ConfigError} naming `CACHE_S3_BUCKET` when it is missing, or the key of a bad option.
   * @throws {MissingDependencyError} when `@aws-sdk/client-s3` is not installed.
   */
  constructor(options: S3CacheOptions = {}) {
    super(options)
    this.#name = new.target.name || 'S3Cache'
    const bucket = options.bucket
    if (typeof bucket !== 'string' || bucket === '') {
      throw new ConfigError(
        'CACHE_S3_BUCKET',
        `${this.#name} needs a bucket name, got ${describe(bucket)}`,
      )
    }
    this.bucket = bucket
    this.keyPrefix = checkObjectPrefix(options.keyPrefix)
    this.purgeExpiredOnRead = options.purgeExpiredOnRead === true
    this.allowFlush = options.allowFlush === true
    this.#timeout = positive(options.timeout, 'timeout', 2000)
    this.#concurrency = positive(options.concurrency, 'concurrency', 16, true)
    const conditional = options.conditionalWrites ?? 'auto'
    if (conditional !== true && conditional !== false && conditional !== 'auto') {
      throw new ConfigError(
        'CACHE_OPTIONS',
        `conditionalWrites must be true, false or 'auto', got ${describe(conditional)}`,
      )
    }
    this.#conditional = conditional
    const endpoint = options.endpointUrl
    if (endpoint !== undefined && endpoint !== null && endpoint !== '') {
      try {
        new URL(endpoint)
      } catch (error) {
        throw new ConfigError('CACHE_S3_ENDPOINT_URL', `not a URL: ${describe(endpoint)}`, {
          cause: error,
        })
      }
    }
    this.#sdk = loadS3(this.#name)
    if (options.client !== undefined && options.client !== null) {
      const c = options.client as Partial<S3ClientLike>
      if (typeof c.send !== 'function') {
        throw new ConfigError('CACHE_OPTIONS', 'client must be an S3Client (an object with send())')
      }
      this.#client = options.client
      this.#owned = false
    } else {
      const hasEndpoint = typeof endpoint === 'string' && endpoint !== ''
      const config: Record<string, unknown> = {
        // Fail fast: one retry at most; the deadline bounds the rest.
        maxAttempts: 2,
        ...(hasEndpoint ? { endpoint, forcePathStyle: true, region: 'us-east-1' } : {}),
        ...(options.clientOptions ?? {}),
      }
      if (options.region !== undefined) config.region = options.region
      if (options.credentials !== undefined) config.credentials = options.credentials
      if (options.forcePathStyle !== undefined) config.forcePathStyle = options.forcePathStyle
      this.#client = new this.#sdk.S3Client(config)
      this.#owned = true
    }
  }

  /** The `S3Client`, for calls cachette does not wrap. Object names there carry the prefix. */
  get client(): S3ClientLike {
    return this.#client
  }

  // ---- helpers -------------------------------------------------------------------

  #key(key: string): string {
    return objectName(this.keyPrefix, key)
  }

  /** Sends one command under the deadline. */
  #send<T>(command: keyof S3Module, input: Record<string, unknown>, what: string): Promise<T> {
    const Command = this.#sdk[command] as new (input: Record<string, unknown>) => unknown
    return withDeadline(this.#timeout, `${this.#name}.${what}`, (abortSignal) =>
      this.#client.send(new Command({ Bucket: this.bucket, ...input }), { abortSignal }),
    ) as Promise<T>
  }

  /** Reads an object: `undefined` if absent; `data` undefined if expired (purged when configured). */
  async #read(key: string, what: string): Promise<Found | undefined> {
    const Key = this.#key(key)
    return withDeadline(this.#timeout, `${this.#name}.${what}`, async (abortSignal) => {
      let out: GetOutput
      try {
        out = (await this.#client.send(
          new this.#sdk.GetObjectCommand({ Bucket: this.bucket, Key }),
          {
            abortSignal,
          },
        )) as GetOutput
      } catch (error) {
        if (isNotFound(error)) return undefined
        throw error
      }
      if (!isLive(expiryIn(out.Metadata))) {
        out.Body?.destroy?.()
        if (this.purgeExpiredOnRead) {
          await this.#client.send(new this.#sdk.DeleteObjectCommand({ Bucket: this.bucket, Key }), {
            abortSignal,
          })
        }
        return { data: undefined, etag: out.ETag }
      }
      const bytes = (await out.Body?.transformToByteArray()) ?? new Uint8Array()
      return { data: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), etag: out.ETag }
    })
  }

  /** HEAD: the object's ETag and whether it is live; `undefined` if absent. */
  async #head(key: string, what: string): Promise<{ live: boolean; etag?: string } | undefined> {
    try {
      const out = await this.#send<HeadOutput>('HeadObjectCommand', { Key: this.#key(key) }, what)
      return { live: isLive(expiryIn(out.Metadata)), etag: out.ETag }
    } catch (error) {
      if (isNotFound(error)) return undefined
      throw error
    }
  }

  #put(
    key: string,
    data: Buffer,
    expiresAt: number | undefined,
    what: string,
    condition?: Record<string, string>,
  ) {
    return this.#send(
      'PutObjectCommand',
      {
        Key: this.#key(key),
        Body: data,
        ContentType: 'application/octet-stream',
        Metadata: expiresAt === undefined ? {} : { [META]: String(expiresAt) },
        ...condition,
      },
      what,
    )
  }

  #decode(data: Buffer, key: string): unknown {
    return decodeOrMiss(data, this.serializer, {
      logger: this.logger,
      code: 'CACHETTE_S3_CORRUPT_ENTRY',
      backend: this.#name,
      key: this.#key(key),
    })
  }

  /** Whether the store honours conditional writes (checked once in `'auto'` mode). */
  #conditionalWrites(): boolean | Promise<boolean> {
    const c = this.#conditional
    if (c !== 'auto') return c
    const probe = this.#probe().then(
      (supported) => {
        this.#conditional = supported
        if (!supported) {
          warnOnce(
            this.logger,
            'CACHETTE_S3_NO_CONDITIONAL_WRITES',
            `${this.#name}: the store ignores conditional writes (If-None-Match), so add() and inc() read then write and are not atomic`,
          )
        }
        return supported
      },
      (error) => {
        this.#conditional = 'auto'
        throw error
      },
    )
    this.#conditional = probe
    return probe
  }

  /** Writes a probe object twice, the second time with `If-None-Match: *`: a store that honours it refuses. */
  async #probe(): Promise<boolean> {
    const key = `~probe~${process.pid}~${Date.now()}`
    const data = Buffer.from('probe')
    await this.#put(key, data, Date.now() + 60_000, 'probe')
    try {
      await this.#put(key, data, Date.now() + 60_000, 'probe', { IfNoneMatch: '*' })
      return false
    } catch (error) {
      if (isPreconditionFailed(error)) return true
      throw error
    } finally {
      await this.#send('DeleteObjectCommand', { Key: this.#key(key) }, 'probe').catch(() => {})
    }
  }

  // ---- the backend API -----------------------------------------------------------

  /** `GetObject`; an expired object is a miss (and deleted with `purgeExpiredOnRead`). */
  async get(key: string): Promise<unknown> {
    const found = await this.#read(key, 'get')
    return found?.data === undefined ? undefined : this.#decode(found.data, key)
  }

  /** `PutObject` with the expiry in the object's metadata. */
  async set(key: string, value: unknown, timeout?: number): Promise<boolean> {
    const data = encodeValue(value, this.serializer)
    await this.#put(key, data, expiryOf(this.ttl(timeout), this.#name), 'set')
    return true
  }

  /**
   * Stores only if no live object exists. With conditional writes: one
   * `PutObject` with `If-None-Match: *`, and over an expired object a
   * `PutObject` with `If-Match` on its ETag, so two concurrent adds never
   * both win. Without: `HeadObject` then `PutObject` (racy).
   */
  async add(key: string, value: unknown, timeout?: number): Promise<boolean> {
    const data = encodeValue(value, this.serializer)
    const expiresAt = expiryOf(this.ttl(timeout), this.#name)
    const mode = this.#conditionalWrites()
    if (!(mode instanceof Promise ? await mode : mode)) {
      if ((await this.#head(key, 'add'))?.live) return false
      await this.#put(key, data, expiresAt, 'add')
      return true
    }
    try {
      await this.#put(key, data, expiresAt, 'add', { IfNoneMatch: '*' })
      return true
    } catch (error) {
      if (!isPreconditionFailed(error)) throw error
    }
    const current = await this.#head(key, 'add')
    if (current?.live !== false || current.etag === undefined) return false
    try {
      await this.#put(key, data, expiresAt, 'add', { IfMatch: current.etag })
      return true
    } catch (error) {
      if (isPreconditionFailed(error)) return false
      throw error
    }
  }

  /** `HeadObject` then `DeleteObject` (S3's delete does not say whether the object existed). */
  async delete(key: string): Promise<boolean> {
    const current = await this.#head(key, 'delete')
    if (current === undefined) return false
    await this.#send('DeleteObjectCommand', { Key: this.#key(key) }, 'delete')
    return current.live
  }

  /** `HeadObject`, with the expiry check. */
  async has(key: string): Promise<boolean> {
    return (await this.#head(key, 'has'))?.live === true
  }

  /** `GetObject` per key, at most `concurrency` at a time. */
  override async getMany(keys: readonly string[]): Promise<unknown[]> {
    const found = allValues(
      await mapLimit(keys, this.#concurrency, (key) => this.#read(key, 'getMany')),
    )
    return found.map((f, i) =>
      f?.data === undefined ? undefined : this.#decode(f.data, keys[i] as string),
    )
  }

  /** Encodes every value first (one unstorable value writes nothing), then `PutObject`s, `concurrency` at a time. */
  override async setMany(
    entries: readonly (readonly [string, unknown])[],
    timeout?: number,
  ): Promise<string[]> {
    const expiresAt = expiryOf(this.ttl(timeout), this.#name)
    const encoded = entries.map(([, value]) => encodeValue(value, this.serializer))
    const settled = await mapLimit(entries, this.#concurrency, ([key], i) =>
      this.#put(key, encoded[i] as Buffer, expiresAt, 'setMany'),
    )
    const stored = entries.filter((_, i) => settled[i]?.status === 'fulfilled').map(([key]) => key)
    const failed = settled.find((s) => s.status === 'rejected')
    if (failed !== undefined && stored.length === 0) throw (failed as PromiseRejectedResult).reason
    return stored
  }

  /** `DeleteObjects` in batches of 1,000 names; missing keys count as deleted. */
  override async deleteMany(keys: readonly string[]): Promise<string[]> {
    if (keys.length === 0) return []
    const names = keys.map((k) => this.#key(k))
    const failed = new Set(await this.#deleteNames(names, 'deleteMany'))
    const left = keys.filter((_, i) => failed.has(names[i] as string))
    if (left.length > 0 && !this.ignoreDeleteManyErrors) throw new DeleteManyError(left)
    return keys.filter((_, i) => !failed.has(names[i] as string))
  }

  /** Deletes object names in batches of 1,000; resolves the names S3 reported as not deleted. */
  async #deleteNames(names: readonly string[], what: string): Promise<string[]> {
    const batches: string[][] = []
    for (let i = 0; i < names.length; i += DELETE_BATCH)
      batches.push(names.slice(i, i + DELETE_BATCH))
    const results = allValues(
      await mapLimit(batches, 4, (batch) =>
        this.#send<{ Errors?: { Key?: string }[] }>(
          'DeleteObjectsCommand',
          { Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } },
          what,
        ),
      ),
    )
    return results.flatMap((r) => (r.Errors ?? []).map((e) => e.Key ?? ''))
  }

  /**
   * Adds `delta`. With conditional writes it is atomic: read with the ETag,
   * write with `If-Match` (or `If-None-Match: *` for a new counter), retry
   * on conflict. Without, it is a plain read then write. The counter gets the
   * default timeout on every write.
   * @throws {NotAnIntegerError} if the stored value is not an integer.
   */
  override async inc(key: string, delta: number): Promise<number> {
    if (!Number.isSafeInteger(delta)) {
      throw new NotAnIntegerError(`inc/dec: delta must be an integer, got ${String(delta)}`)
    }
    const mode = this.#conditionalWrites()
    const atomic = mode instanceof Promise ? await mode : mode
    for (let attempt = 0; attempt < 50; attempt++) {
      const found = await this.#read(key, 'inc')
      const current = found?.data === undefined ? undefined : this.#decode(found.data, key)
      const next = integerOf(key, current) + delta
      const expiresAt = expiryOf(this.defaultTimeout, this.#name)
      const data = encodeValue(next, this.serializer)
      if (!atomic) {
        await this.#put(key, data, expiresAt, 'inc')
        return next
      }
      const condition: Record<string, string> =
        found?.etag !== undefined ? { IfMatch: found.etag } : { IfNoneMatch: '*' }
      try {
        await this.#put(key, data, expiresAt, 'inc', condition)
        return next
      } catch (error) {
        if (!isPreconditionFailed(error)) throw error
      }
    }
    throw new Error(
      `${this.#name}.inc: the counter at ${JSON.stringify(key)} changes too often to update`,
    )
  }

  /**
   * Deletes every object under the key prefix: `ListObjectsV2` page by page,
   * `DeleteObjects` per page of up to 1,000. Without a prefix it refuses
   * (flask-cache-s3 empties the whole bucket there) unless `allowFlush`.
   * @throws {ConfigError} with key `CACHE_KEY_PREFIX` when there is no prefix and `allowFlush` is off.
   */
  async clear(): Promise<boolean> {
    if (this.keyPrefix === '') {
      if (!this.allowFlush) {
        throw new ConfigError(
          'CACHE_KEY_PREFIX',
          'clear() without a key prefix would delete every object in the bucket; set CACHE_KEY_PREFIX, or pass CACHE_OPTIONS: { allowFlush: true }',
        )
      }
      warnOnce(
        this.logger,
        'CACHETTE_S3_CLEAR_ALL',
        `${this.#name}.clear(): no key prefix, so every object in bucket ${this.bucket} is deleted (allowFlush is set)`,
      )
    }
    let left: string[] = []
    for await (const names of this.#listPages(this.keyPrefix, 'clear')) {
      if (names.length > 0) left = left.concat(await this.#deleteNames(names, 'clear'))
    }
    if (left.length > 0)
      throw new Error(`${this.#name}.clear: ${left.length} objects could not be deleted`)
    return true
  }

  /**
   * The keys under `keyPrefix + prefix`, with the key prefix removed:
   * `ListObjectsV2`, a page of up to 1,000 names at a time. Objects stored
   * under a hash of their key (`~h~...`: keys too long for an object name,
   * with control characters, or with empty `/` segments such as view keys)
   * cannot be turned back into keys and are skipped, as is the short-lived
   * probe object of `conditionalWrites: 'auto'` (`~probe~...`). A listing
   * carries no metadata, so objects that have expired but are still in the
   * bucket are listed too.
   */
  async *keys(prefix: string): AsyncIterable<string> {
    const under = this.keyPrefix + prefix
    for await (const names of this.#listPages(under, 'keys')) {
      for (const name of names) {
        if (!name.startsWith(under)) continue
        const key = name.slice(this.keyPrefix.length)
        // A name that is not the plain name of its key is a hash (or a foreign object).
        if (key === '' || key.startsWith('~probe~') || this.#key(key) !== name) continue
        yield key
      }
    }
  }

  /** The object names under `prefix`, one `ListObjectsV2` page (up to 1,000) at a time. */
  async *#listPages(prefix: string, op: string): AsyncIterable<string[]> {
    let token: string | undefined
    do {
      const page = await this.#send<{
        Contents?: { Key?: string }[]
        NextContinuationToken?: string
        IsTruncated?: boolean
      }>(
        'ListObjectsV2Command',
        {
          Prefix: prefix === '' ? undefined : prefix,
          ContinuationToken: token,
          MaxKeys: DELETE_BATCH,
        },
        op,
      )
      yield (page.Contents ?? []).map((o) => o.Key).filter((k): k is string => k !== undefined)
      token = page.IsTruncated ? page.NextContinuationToken : undefined
    } while (token !== undefined)
  }

  /**
   * A bucket lifecycle rule that deletes this cache's objects (those under
   * the key prefix) `days` after they were written, so expired entries do not
   * accumulate. S3 expires objects by age, not by the expiry cachette keeps
   * in their metadata: pick `days` above the longest timeout you use (the
   * default is the default timeout, rounded up to whole days, plus one), and
   * know that entries stored with timeout `0` are deleted too.
   */
  lifecycleRule(days?: number): S3LifecycleRule {
    const d = days ?? Math.ceil(this.defaultTimeout / DAY) + 1
    if (!Number.isInteger(d) || d < 1) {
      throw new RangeError(`lifecycleRule: days must be a positive integer, got ${String(d)}`)
    }
    return {
      ID: `cachette-expire-${this.keyPrefix === '' ? 'all' : this.keyPrefix}`.slice(0, 255),
      Status: 'Enabled',
      Filter: { Prefix: this.keyPrefix },
      Expiration: { Days: d },
    }
  }

  /**
   * The `aws` CLI command that installs {@link lifecycleRule} (replacing the
   * bucket's lifecycle configuration), for review before running it.
   */
  lifecycleCommand(days?: number): string {
    const config = JSON.stringify({ Rules: [this.lifecycleRule(days)] })
    return `aws s3api put-bucket-lifecycle-configuration --bucket ${this.bucket} --lifecycle-configuration '${config}'`
  }

  /**
   * Installs {@link lifecycleRule} on the bucket, keeping its other rules
   * (read, merge by rule ID, write back).
   */
  async applyLifecycleRule(days?: number): Promise<S3LifecycleRule> {
    const rule = this.lifecycleRule(days)
    let rules: { ID?: string }[] = []
    try {
      const current = await this.#send<{ Rules?: { ID?: string }[] }>(
        'GetBucketLifecycleConfigurationCommand',
        {},
        'applyLifecycleRule',
      )
      rules = current.Rules ?? []
    } catch (error) {
      if ((error as { name?: string }).name !== 'NoSuchLifecycleConfiguration') throw error
    }
    const merged = [...rules.filter((r) => r.ID !== rule.ID), rule]
    await this.#send(
      'PutBucketLifecycleConfigurationCommand',
      { LifecycleConfiguration: { Rules: merged } },
      'applyLifecycleRule',
    )
    return rule
  }

  /** Destroys the S3 client this backend created (a client passed in is left alone). */
  override async close(): Promise<void> {
    if (this.#owned) this.#client.destroy()
  }
}
