/**
 * `GoogleCloudStorageCache`: a cache in a Google Cloud Storage bucket
 * (Flask-Caching's contrib backend, done right), on `@google-cloud/storage`
 * (`npm install @google-cloud/storage`), loaded when the backend is
 * constructed, so importing this module costs nothing without it.
 *
 * ```ts
 * import { Cache } from 'cachette'
 * import { GoogleCloudStorageCache } from 'cachette/gcs'
 * const cache = new Cache({
 *   CACHE_TYPE: GoogleCloudStorageCache,
 *   CACHE_GCS_BUCKET: 'my-cache-bucket',
 *   CACHE_KEY_PREFIX: 'app1/',
 * })
 * await cache.set('report', bigReport, 3600)
 * ```
 *
 * One object per key, named `keyPrefix + key` (a key that cannot be a
 * portable object name as it is, because it is over 1,024 bytes, holds
 * control characters or an empty or over-255-byte `/` segment, as view
 * keys' `//` do, is stored under a SHA-256 of it). The object's
 * bytes are the value in cachette's byte format; its expiry is the object's
 * `customTime` (as Flask-Caching writes it, so a bucket lifecycle rule with
 * `daysSinceCustomTime` can purge expired objects: see
 * {@link GoogleCloudStorageCache.lifecycleRule}) and, to the millisecond, its
 * custom metadata `cachette-expires`. An expired object is a miss even while
 * the bucket still holds it.
 *
 * Credentials come from the client library's usual chain (Application
 * Default Credentials). **When the store is slow or down** nothing hangs:
 * every request has a deadline (`timeout`, 2 s) and the library's own retries
 * are off, so a call rejects within about `timeout` and, through a `Cache`,
 * the app gets a miss and a (rate-limited) log line.
 * @packageDocumentation
 */
import { createHash } from 'node:crypto'
import {
  type BackendFactoryOptions,
  BaseCache,
  type BaseCacheOptions,
  integerOf,
} from '../../core/backend.js'
import { decodeOrMiss, encodeValue } from '../../core/codec.js'
import { ConfigError, DeleteManyError, NotAnIntegerError } from '../../core/errors.js'
import { ErrorReporter, warnOnce } from '../../core/log.js'
import {
  allValues,
  checkObjectPrefix,
  expiryOf,
  isLive,
  mapLimit,
  objectName,
  StoreTimeoutError,
  withDeadline,
} from '../../core/objectstore.js'
import {
  anonymousAuthClient,
  type BucketHandle,
  GoogleCloudStorageError,
  type LifecycleRuleLike,
  loadStorage,
  type ObjectMetadata,
  type SaveOptions,
  type StorageLike,
} from './client.js'
import {
  checkBucket,
  checkClient,
  checkClientOptions,
  checkEndpoint,
  checkFlag,
  checkPositive,
  checkString,
  GCS_OPTIONS,
} from './options.js'

export { GoogleCloudStorageError, type StorageLike }

/** Options of {@link GoogleCloudStorageCache}. */
export interface GoogleCloudStorageCacheOptions extends BaseCacheOptions {
  /** The bucket (it must exist). Required. `CACHE_GCS_BUCKET`. */
  bucket?: string
  /**
   * Prepended to every object name; `clear()` deletes exactly the objects
   * under it, so prefer a folder-like prefix (`'cache/'`). Through a
   * factory, `CACHE_GCS_KEY_PREFIX` when set, else `CACHE_KEY_PREFIX`
   * (default `'flask_cache_'` there). At most 924 bytes, no control characters.
   * @default ''
   */
  keyPrefix?: string
  /**
   * Delete an expired object when a read finds it (Flask-Caching's
   * `delete_expired_objects_on_read`). `CACHE_GCS_DELETE_EXPIRED_ON_READ`.
   * A lifecycle rule ({@link GoogleCloudStorageCache.applyLifecycleRule})
   * removes the ones nobody reads.
   * @default false
   */
  deleteExpiredOnRead?: boolean
  /**
   * No credentials at all: for public buckets, emulators and test servers
   * (Flask-Caching's `anonymous`).
   * @default false
   */
  anonymous?: boolean
  /**
   * Another endpoint than `https://storage.googleapis.com`: an emulator or a
   * test server (`http://127.0.0.1:4443`). Requests to a custom endpoint are
   * not authenticated unless `useAuthWithCustomEndpoint: true` is passed in
   * the client options.
   */
  apiEndpoint?: string
  /** The project id, for the client library (objects need none). */
  projectId?: string
  /**
   * An existing `Storage` instance to share with the app; the backend never
   * closes it and leaves its retry settings alone (the deadline still
   * applies). `anonymous`, `apiEndpoint`, `projectId` and `clientOptions`
   * cannot be combined with it.
   */
  client?: StorageLike
  /**
   * Milliseconds each request to GCS may take; then it is abandoned (and
   * the cache misses). Raise it for values of several megabytes over a slow
   * link.
   * @default 2000
   */
  timeout?: number
  /** Parallel requests of `getMany`, `setMany`, `deleteMany` and `clear`. @default 16 */
  concurrency?: number
  /** Objects listed per request by `clear()` (`maxResults`, at most 1000). @default 1000 */
  pageSize?: number
  /**
   * Let `clear()` without a key prefix delete every object in the bucket
   * (what Flask-Caching does). Without it, that `clear()` refuses.
   * @default false
   */
  allowFlush?: boolean
  /**
   * Other `Storage` constructor options (`keyFilename`, `credentials`,
   * `retryOptions`, `useAuthWithCustomEndpoint`, ...), on top of the
   * fail-fast defaults (`retryOptions: { autoRetry: false }`, and a request
   * `timeout` one second past the backend's).
   * Through a factory, every `CACHE_OPTIONS` key the backend does not read
   * lands here.
   */
  clientOptions?: Record<string, unknown>
}

/** A constructor of {@link GoogleCloudStorageCache} or a subclass, as its static `factory` uses through `this`. */
export type GoogleCloudStorageCacheClass = new (
  options: GoogleCloudStorageCacheOptions,
) => GoogleCloudStorageCache

/** The bucket lifecycle rule that deletes expired cache entries, as the JSON API writes it. */
export interface GcsLifecycleRule {
  action: { type: 'Delete' }
  condition: {
    /** `0`: the object's `customTime` (its expiry) has passed. */
    daysSinceCustomTime: number
    /** Only this cache's objects (absent without a key prefix). */
    matchesPrefix?: string[]
  }
}

/** Custom metadata holding the expiry, in ms since the epoch. */
const META = 'cachette-expires'
const CONTENT_TYPE = 'application/octet-stream'
/** Attempts of a compare-and-swap (`inc`) before it gives up. */
const MAX_CAS_ATTEMPTS = 100

/** What `objects.get` (metadata) says about an object. */
interface Stat {
  generation: string
  /** Ms since the epoch; `undefined` = never. */
  expiresAt: number | undefined
}

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

function statOf(meta: ObjectMetadata): Stat {
  return { generation: String(meta.generation ?? ''), expiresAt: expiryIn(meta) }
}

function hasStatus(error: unknown, ...statuses: number[]): boolean {
  return (
    error instanceof GoogleCloudStorageError &&
    error.status !== undefined &&
    statuses.includes(error.status)
  )
}

/** A call of `inc` waiting for its turn. */
interface IncWaiter {
  delta: number
  resolve(value: number): void
  reject(error: unknown): void
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

function sameRule(rule: LifecycleRuleLike, wanted: GcsLifecycleRule): boolean {
  if (rule.action?.type !== wanted.action.type) return false
  const have = rule.condition ?? {}
  const want = wanted.condition
  const keys = Object.keys(have).filter((k) => have[k] !== undefined)
  if (keys.length !== Object.keys(want).length) return false
  if (Number(have.daysSinceCustomTime) !== want.daysSinceCustomTime) return false
  if (want.matchesPrefix === undefined) return true
  const prefixes = have.matchesPrefix
  return (
    Array.isArray(prefixes) &&
    prefixes.length === want.matchesPrefix.length &&
    prefixes.every((p, i) => p === want.matchesPrefix?.[i])
  )
}

/**
 * A cache in a Google Cloud Storage bucket (Flask-Caching's
 * `flask_caching.contrib.googlecloudstoragecache.GoogleCloudStorageCache`).
 * See the module documentation.
 *
 * A hit costs two requests: the object's metadata (its expiry), then the
 * bytes of exactly that generation (the client library does not expose an
 * object's metadata with a media download). A miss costs one.
 *
 * Differs from Flask-Caching on purpose:
 * - any value cachette can serialize is stored, in its byte format (Flask:
 *   JSON, or raw `str`/`bytes`, anything else fails);
 * - the expiry is also kept to the millisecond (`cachette-expires`); objects
 *   Flask-Caching wrote (`customTime` only) expire on time too;
 * - `add` is atomic: a create with `ifGenerationMatch: 0`, and an expired
 *   entry is replaced with `ifGenerationMatch` on its generation (Flask: `has`
 *   then `set`, racy);
 * - `inc`/`dec` are atomic by compare-and-swap on the generation, and
 *   concurrent calls on one key in a process share one write; a new counter
 *   gets the default timeout, an existing one keeps its expiry (Flask: get
 *   then set);
 * - `delete` says whether a live entry existed and `deleteMany` returns the
 *   keys gone (Flask: always `True`);
 * - `clear()` without a key prefix refuses unless `allowFlush` (Flask deletes
 *   every object in the bucket);
 * - keys that cannot be object names as they are (too long, control
 *   characters, `//`) are hashed (Flask: an error from GCS, or an object
 *   name that tools cannot show);
 * - every request has a deadline and the library's retries are off, so an
 *   outage costs `timeout`, not minutes of retries;
 * - uploads carry their MD5, which GCS checks before it creates the object;
 * - `ignore_delete_many_errors` is not passed on to the storage client.
 */
export class GoogleCloudStorageCache extends BaseCache {
  /**
   * Builds the cache from configuration: `CACHE_GCS_BUCKET` (required),
   * `CACHE_GCS_KEY_PREFIX` (wins when set) or `CACHE_KEY_PREFIX`,
   * `CACHE_GCS_DELETE_EXPIRED_ON_READ`, `CACHE_DEFAULT_TIMEOUT`, and
   * `CACHE_OPTIONS` (`anonymous`, `api_endpoint`, `project_id`, `client`,
   * `timeout`, `concurrency`, `page_size`, `allow_flush`,
   * `delete_expired_objects_on_read`; anything else goes to the `Storage`
   * constructor). `CACHE_ARGS` is not used.
   */
  static factory(
    this: GoogleCloudStorageCacheClass,
    _app: object | undefined,
    config: Readonly<Record<string, unknown>>,
    _args: unknown[],
    options: BackendFactoryOptions,
  ): GoogleCloudStorageCache {
    const { defaultTimeout, ignoreDeleteManyErrors, serializer, logger, ...rest } = options
    const own: Record<string, unknown> = {}
    const clientOptions: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(rest)) {
      if (k === 'bucket' || k === 'keyPrefix') {
        const key = k === 'bucket' ? 'CACHE_GCS_BUCKET' : 'CACHE_GCS_KEY_PREFIX'
        throw new ConfigError('CACHE_OPTIONS', `${k}: set ${key} instead`)
      }
      if (k === 'clientOptions') Object.assign(clientOptions, checkClientOptions(v))
      else if (GCS_OPTIONS.has(k)) own[k] = v
      else clientOptions[k] = v
    }
    const { deleteExpiredObjectsOnRead, ...ownRest } = own
    const gcsPrefix = config.CACHE_GCS_KEY_PREFIX
    const keyPrefix =
      gcsPrefix === undefined || gcsPrefix === null
        ? config.CACHE_KEY_PREFIX
        : checkObjectPrefix(gcsPrefix, 'CACHE_GCS_KEY_PREFIX')
    const deleteExpired =
      config.CACHE_GCS_DELETE_EXPIRED_ON_READ ??
      ownRest.deleteExpiredOnRead ??
      deleteExpiredObjectsOnRead
    return new this({
      ...(ownRest as GoogleCloudStorageCacheOptions),
      clientOptions,
      defaultTimeout,
      ignoreDeleteManyErrors,
      serializer,
      logger,
      bucket: config.CACHE_GCS_BUCKET as string | undefined,
      keyPrefix: keyPrefix as string | undefined,
      deleteExpiredOnRead: checkFlag(
        deleteExpired,
        'deleteExpiredOnRead',
        'CACHE_GCS_DELETE_EXPIRED_ON_READ',
      ),
    })
  }

  /** The bucket. */
  readonly bucket: string
  /** Prepended to every object name. */
  readonly keyPrefix: string
  /** Whether a read deletes the expired object it finds. */
  readonly deleteExpiredOnRead: boolean
  /** Whether `clear()` without a prefix may delete every object in the bucket. */
  readonly allowFlush: boolean
  /** Milliseconds each request may take. */
  readonly timeout: number
  /** Parallel requests of the multi-key operations and `clear()`. */
  readonly concurrency: number
  readonly #name: string
  readonly #bucket: BucketHandle
  readonly #pageSize: number
  readonly #reporter: ErrorReporter
  /** Increments waiting for the write in flight on their object, by object name. */
  readonly #increments = new Map<string, IncWaiter[]>()
  #closed = false

  /**
   * Creates the client (no request is made).
   * @throws {ConfigError} naming `CACHE_GCS_BUCKET` when it is missing, or the key of a bad option.
   * @throws {MissingDependencyError} when `@google-cloud/storage` is not installed.
   */
  constructor(options: GoogleCloudStorageCacheOptions = {}) {
    super(options)
    this.#name = new.target.name || 'GoogleCloudStorageCache'
    this.bucket = checkBucket(options.bucket, this.#name)
    this.keyPrefix = checkObjectPrefix(options.keyPrefix)
    this.deleteExpiredOnRead = checkFlag(
      options.deleteExpiredOnRead,
      'deleteExpiredOnRead',
      'CACHE_GCS_DELETE_EXPIRED_ON_READ',
    )
    this.allowFlush = checkFlag(options.allowFlush, 'allowFlush')
    this.timeout = checkPositive(options.timeout, 'timeout', 2000)
    this.concurrency = checkPositive(options.concurrency, 'concurrency', 16, { integer: true })
    this.#pageSize = checkPositive(options.pageSize, 'pageSize', 1000, {
      integer: true,
      max: 1000,
    })
    const anonymous = checkFlag(options.anonymous, 'anonymous')
    const apiEndpoint = checkEndpoint(options.apiEndpoint)
    const projectId = checkString(options.projectId, 'projectId')
    const clientOptions = checkClientOptions(options.clientOptions)
    this.#reporter = new ErrorReporter(this.logger)
    let client = checkClient(options.client)
    if (client !== undefined) {
      const clash = [
        anonymous ? 'anonymous' : '',
        apiEndpoint !== undefined ? 'apiEndpoint' : '',
        projectId !== undefined ? 'projectId' : '',
        Object.keys(clientOptions).length > 0 ? Object.keys(clientOptions).join(', ') : '',
      ].filter((s) => s !== '')
      if (clash.length > 0) {
        throw new ConfigError(
          'CACHE_OPTIONS',
          `client is an existing Storage, so ${clash.join(', ')} cannot apply; configure the client itself`,
        )
      }
    } else {
      const { Storage } = loadStorage(this.#name)
      const settings: Record<string, unknown> = {
        retryOptions: { autoRetry: false },
        // The client's own timeout, a little later than the deadline, only
        // reclaims the socket of a request the deadline has given up on.
        timeout: this.timeout + 1000,
        ...clientOptions,
      }
      if (apiEndpoint !== undefined) settings.apiEndpoint = apiEndpoint
      if (projectId !== undefined) settings.projectId = projectId
      if (anonymous && settings.authClient === undefined) {
        settings.authClient = anonymousAuthClient(this.#name)
      }
      client = new Storage(settings)
    }
    this.#bucket = client.bucket(this.bucket) as BucketHandle
  }

  /** The object name of `key`: `keyPrefix + key`, or a hash of the key when it cannot be one. */
  objectName(key: string): string {
    return objectName(this.keyPrefix, key)
  }

  /**
   * The bucket lifecycle rule that deletes this cache's expired objects:
   * `Delete` when `daysSinceCustomTime` is 0 (the expiry has passed), limited
   * to the key prefix. GCS applies lifecycle rules about once a day;
   * entries without a timeout carry no `customTime` and are kept.
   */
  lifecycleRule(): GcsLifecycleRule {
    return {
      action: { type: 'Delete' },
      condition:
        this.keyPrefix === ''
          ? { daysSinceCustomTime: 0 }
          : { daysSinceCustomTime: 0, matchesPrefix: [this.keyPrefix] },
    }
  }

  /**
   * Adds {@link GoogleCloudStorageCache.lifecycleRule} to the bucket's
   * lifecycle configuration, keeping its other rules (read, then patched
   * with `ifMetagenerationMatch`, so a concurrent change is not lost). Needs
   * the `storage.buckets.update` permission; run it once at deploy time
   * rather than at every start.
   * @returns `true` if the rule was added, `false` if the bucket had it already.
   */
  async applyLifecycleRule(): Promise<boolean> {
    const rule = this.lifecycleRule()
    const [meta] = await this.#call('applyLifecycleRule', () => this.#bucket.getMetadata())
    const rules = meta.lifecycle?.rule ?? []
    if (rules.some((r) => sameRule(r, rule))) return false
    const precondition =
      meta.metageneration === undefined ? {} : { ifMetagenerationMatch: meta.metageneration }
    await this.#call('applyLifecycleRule', () =>
      this.#bucket.setMetadata({ lifecycle: { rule: [...rules, rule] } }, precondition),
    )
    return true
  }

  // ---- requests ------------------------------------------------------------------

  /** One request, with the deadline; library errors become {@link GoogleCloudStorageError}. */
  async #call<T>(op: string, request: () => Promise<T>): Promise<T> {
    const what = `${this.#name}.${op}`
    if (this.#closed) throw new Error(`${what}: the cache is closed`)
    try {
      return await withDeadline(this.timeout, what, async () => request())
    } catch (error) {
      if (error instanceof StoreTimeoutError) throw error
      throw new GoogleCloudStorageError(what, error)
    }
  }

  /** The object's generation and expiry, or `undefined` if there is none. */
  async #stat(op: string, name: string): Promise<Stat | undefined> {
    try {
      const [meta] = await this.#call(op, () => this.#bucket.file(name).getMetadata())
      return statOf(meta)
    } catch (error) {
      if (hasStatus(error, 404)) return undefined
      throw error
    }
  }

  /** The bytes of one generation, or `undefined` if it is gone (replaced or deleted since). */
  async #download(op: string, name: string, generation: string): Promise<Buffer | undefined> {
    try {
      const [data] = await this.#call(op, () => this.#bucket.file(name, { generation }).download())
      return data
    } catch (error) {
      if (hasStatus(error, 404)) return undefined
      throw error
    }
  }

  /**
   * Uploads `data` in one request. With `ifGenerationMatch` (`0`: must not
   * exist) resolves `false` when the precondition fails.
   */
  async #write(
    op: string,
    name: string,
    data: Buffer,
    expiresAt: number | undefined,
    ifGenerationMatch?: string | number,
  ): Promise<boolean> {
    const options: SaveOptions = {
      resumable: false,
      validation: false,
      metadata: {
        contentType: CONTENT_TYPE,
        md5Hash: createHash('md5').update(data).digest('base64'),
        ...(expiresAt === undefined
          ? {}
          : {
              customTime: new Date(expiresAt).toISOString(),
              metadata: { [META]: String(expiresAt) },
            }),
      },
    }
    if (ifGenerationMatch !== undefined) options.preconditionOpts = { ifGenerationMatch }
    try {
      await this.#call(op, () => this.#bucket.file(name).save(data, options))
      return true
    } catch (error) {
      if (ifGenerationMatch !== undefined && hasStatus(error, 412)) return false
      throw error
    }
  }

  /**
   * Deletes the object (only that generation, when given). Resolves whether
   * this call deleted it: `false` when it was already gone or replaced.
   */
  async #remove(op: string, name: string, generation?: string | number): Promise<boolean> {
    try {
      await this.#call(op, () =>
        this.#bucket
          .file(name)
          .delete(generation === undefined ? {} : { ifGenerationMatch: generation }),
      )
      return true
    } catch (error) {
      if (hasStatus(error, 404, 412)) return false
      throw error
    }
  }

  #expiry(timeout: number | undefined): number | undefined {
    return expiryOf(this.ttl(timeout), this.#name)
  }

  #decode(data: Buffer, key: string): unknown {
    return decodeOrMiss(data, this.serializer, {
      logger: this.logger,
      code: 'CACHETTE_GCS_CORRUPT_ENTRY',
      backend: this.#name,
      key,
    })
  }

  // ---- the backend API -----------------------------------------------------------

  /**
   * The object's metadata, then (if it is live) the bytes of that generation.
   * An expired object is a miss, deleted first with `deleteExpiredOnRead`
   * (only the generation read, so a fresh value written meanwhile stays).
   * An entry that cannot be decoded reads as a miss.
   */
  async get(key: string): Promise<unknown> {
    const name = this.objectName(key)
    const stat = await this.#stat('get', name)
    if (stat === undefined) return undefined
    if (!isLive(stat.expiresAt)) {
      if (this.deleteExpiredOnRead) await this.#remove('get', name, stat.generation)
      return undefined
    }
    const data = await this.#download('get', name, stat.generation)
    return data === undefined ? undefined : this.#decode(data, key)
  }

  /** Whether a live entry exists: the object's metadata only. */
  async has(key: string): Promise<boolean> {
    const name = this.objectName(key)
    const stat = await this.#stat('has', name)
    if (stat === undefined) return false
    if (isLive(stat.expiresAt)) return true
    if (this.deleteExpiredOnRead) await this.#remove('has', name, stat.generation)
    return false
  }

  /** One upload (multipart: metadata and bytes in one request). */
  async set(key: string, value: unknown, timeout?: number): Promise<boolean> {
    const data = encodeValue(value, this.serializer)
    return this.#write('set', this.objectName(key), data, this.#expiry(timeout))
  }

  /**
   * Atomic: creates the object with `ifGenerationMatch: 0`. If one exists and
   * has expired, replaces it with `ifGenerationMatch` on its generation, so of
   * concurrent adds exactly one wins.
   */
  async add(key: string, value: unknown, timeout?: number): Promise<boolean> {
    const data = encodeValue(value, this.serializer)
    const expiresAt = this.#expiry(timeout)
    const name = this.objectName(key)
    for (let attempt = 0; attempt < 5; attempt++) {
      if (await this.#write('add', name, data, expiresAt, 0)) return true
      const stat = await this.#stat('add', name)
      // Deleted since: try to create it again.
      if (stat === undefined) continue
      if (isLive(stat.expiresAt)) return false
      if (await this.#write('add', name, data, expiresAt, stat.generation)) return true
      // Replaced since by another writer: look again.
    }
    return false
  }

  /** Resolves whether a live entry existed (its metadata, then the delete). */
  async delete(key: string): Promise<boolean> {
    const name = this.objectName(key)
    const stat = await this.#stat('delete', name)
    if (stat === undefined) return false
    const deleted = await this.#remove('delete', name)
    return deleted && isLive(stat.expiresAt)
  }

  /** In parallel (at most `concurrency` requests at a time). */
  override async getMany(keys: readonly string[]): Promise<unknown[]> {
    return allValues(await mapLimit(keys, this.concurrency, (key) => this.get(key)))
  }

  /**
   * Encodes every value first (one unstorable value writes nothing), then
   * uploads in parallel. Resolves the keys stored; rejects if none was.
   */
  override async setMany(
    entries: readonly (readonly [string, unknown])[],
    timeout?: number,
  ): Promise<string[]> {
    const encoded = entries.map(([, value]) => encodeValue(value, this.serializer))
    const expiresAt = this.#expiry(timeout)
    if (entries.length === 0) return []
    const settled = await mapLimit(entries, this.concurrency, ([key], i) =>
      this.#write('setMany', this.objectName(key), encoded[i] as Buffer, expiresAt),
    )
    const stored = entries.filter((_, i) => settled[i]?.status === 'fulfilled').map(([k]) => k)
    const failed = settled.find((s) => s.status === 'rejected')
    if (failed !== undefined) {
      if (stored.length === 0) throw failed.reason
      this.#reporter.report(`${this.#name}.setMany`, failed.reason)
    }
    return stored
  }

  /**
   * Deletes in parallel; a missing object counts as deleted. Keys whose
   * delete failed are left: then {@link DeleteManyError} unless
   * `ignoreDeleteManyErrors` (when every delete failed, the first error).
   */
  override async deleteMany(keys: readonly string[]): Promise<string[]> {
    if (keys.length === 0) return []
    const settled = await mapLimit(keys, this.concurrency, (key) =>
      this.#remove('deleteMany', this.objectName(key)),
    )
    const failed = settled.find((s) => s.status === 'rejected')
    if (failed === undefined) return [...keys]
    const gone = keys.filter((_, i) => settled[i]?.status === 'fulfilled')
    if (gone.length === 0) throw failed.reason
    const left = keys.filter((_, i) => settled[i]?.status === 'rejected')
    if (!this.ignoreDeleteManyErrors) throw new DeleteManyError(left)
    this.#reporter.report(`${this.#name}.deleteMany`, failed.reason)
    return gone
  }

  /**
   * Atomic, by compare-and-swap on the object's generation: read the
   * generation and value, write with `ifGenerationMatch`, and start again
   * (after a short random pause) when another writer got there first. A new
   * (or expired) counter is created with the default timeout; an existing one
   * keeps its expiry.
   *
   * Concurrent calls on one key in this process are combined: they queue
   * behind the write in flight and the next write adds all their deltas at
   * once, each call resolving the value its own delta produced (as if they
   * had run one after another). GCS allows about one write per second to one
   * object, so this keeps a busy counter within it; a counter shared by many
   * processes under heavy load still belongs in Redis or memcached.
   * @throws {NotAnIntegerError} if the stored value is not an integer (it is left unchanged).
   */
  override async inc(key: string, delta: number): Promise<number> {
    if (!Number.isSafeInteger(delta)) {
      throw new NotAnIntegerError(`inc/dec: delta must be an integer, got ${String(delta)}`)
    }
    const name = this.objectName(key)
    return new Promise<number>((resolve, reject) => {
      const waiter: IncWaiter = { delta, resolve, reject }
      const queued = this.#increments.get(name)
      if (queued !== undefined) {
        queued.push(waiter)
        return
      }
      this.#increments.set(name, [waiter])
      void this.#runIncrements(key, name)
    })
  }

  /** Applies the queued increments of one object, a combined write at a time, until none is left. */
  async #runIncrements(key: string, name: string): Promise<void> {
    // Let the calls made in the same tick join the first write.
    await Promise.resolve()
    for (;;) {
      const batch = this.#increments.get(name) ?? []
      if (batch.length === 0) {
        this.#increments.delete(name)
        return
      }
      this.#increments.set(name, [])
      try {
        const total = batch.reduce((sum, w) => sum + w.delta, 0)
        let value = await this.#addToCounter(key, name, total)
        for (const w of batch) {
          value += w.delta
          w.resolve(value)
        }
      } catch (error) {
        for (const w of batch) w.reject(error)
      }
    }
  }

  /** One compare-and-swap loop adding `delta`; resolves the value before it. */
  async #addToCounter(key: string, name: string, delta: number): Promise<number> {
    const overflow = () =>
      new NotAnIntegerError(`inc/dec: the counter at ${JSON.stringify(key)} would overflow`)
    if (!Number.isSafeInteger(delta)) throw overflow()
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      if (attempt > 0) await sleep(Math.random() * Math.min(200, 4 * 2 ** attempt))
      const stat = await this.#stat('inc', name)
      let current: unknown
      let expiresAt: number | undefined
      let precondition: string | number
      if (stat === undefined || !isLive(stat.expiresAt)) {
        expiresAt = this.#expiry(undefined)
        precondition = stat?.generation ?? 0
      } else {
        const data = await this.#download('inc', name, stat.generation)
        if (data === undefined) continue
        current = this.#decode(data, key)
        expiresAt = stat.expiresAt
        precondition = stat.generation
      }
      const before = integerOf(key, current)
      if (!Number.isSafeInteger(before + delta)) throw overflow()
      const data = encodeValue(before + delta, this.serializer)
      if (await this.#write('inc', name, data, expiresAt, precondition)) return before
    }
    throw new Error(
      `${this.#name}.inc: the counter at ${JSON.stringify(key)} changes too often to update`,
    )
  }

  /**
   * Lists the objects under the key prefix, a page (`pageSize`) at a time,
   * and deletes each page's objects in parallel (each at the generation
   * listed, so an entry written meanwhile stays). Rejects, after trying them
   * all, if some could not be deleted.
   *
   * Without a prefix it refuses unless `allowFlush` is set; then it deletes
   * every object in the bucket, warning once.
   * @throws {ConfigError} with key `CACHE_KEY_PREFIX` when there is no prefix and `allowFlush` is off.
   */
  async clear(): Promise<boolean> {
    const prefix = this.keyPrefix
    if (prefix === '') {
      if (!this.allowFlush) {
        throw new ConfigError(
          'CACHE_KEY_PREFIX',
          `clear() without a key prefix would delete every object in the bucket ${JSON.stringify(this.bucket)}; set CACHE_KEY_PREFIX (or CACHE_GCS_KEY_PREFIX), or pass CACHE_OPTIONS: { allowFlush: true }`,
        )
      }
      warnOnce(
        this.logger,
        'CACHETTE_GCS_FLUSH',
        `${this.#name}.clear(): no key prefix, so every object in the bucket ${JSON.stringify(this.bucket)} is deleted (allowFlush is set)`,
      )
    }
    let failures = 0
    let firstError: unknown
    for await (const items of this.#listPages(
      prefix,
      'clear',
      'items(name,generation),nextPageToken',
    )) {
      const named = items.filter((item) => typeof item.name === 'string' && item.name !== '')
      const settled = await mapLimit(named, this.concurrency, (item) =>
        this.#remove('clear', item.name as string, item.generation),
      )
      for (const s of settled) {
        if (s.status === 'fulfilled') continue
        failures++
        firstError ??= s.reason
      }
    }
    if (failures > 0) {
      const reason = firstError instanceof Error ? firstError.message : String(firstError)
      throw new Error(`${this.#name}.clear: ${failures} objects could not be deleted (${reason})`, {
        cause: firstError,
      })
    }
    return true
  }

  /**
   * The keys of live entries under `keyPrefix + prefix`, with the key prefix
   * removed: `objects.list`, a page (`pageSize`) at a time, with each
   * object's expiry, so expired objects the bucket still holds are left out.
   * Objects stored under a hash of their key (`~h~...`: keys too long for an
   * object name, with control characters, or with empty `/` segments such
   * as view keys) cannot be turned back into keys and are skipped.
   */
  async *keys(prefix: string): AsyncIterable<string> {
    const under = this.keyPrefix + prefix
    for await (const items of this.#listPages(
      under,
      'keys',
      'items(name,customTime,metadata),nextPageToken',
    )) {
      const now = Date.now()
      for (const item of items) {
        const name = item.name
        if (typeof name !== 'string' || !name.startsWith(under)) continue
        const key = name.slice(this.keyPrefix.length)
        // A name that is not the plain name of its key is a hash (or a foreign object).
        if (key === '' || this.objectName(key) !== name) continue
        if (isLive(expiryIn(resourceOf(item)), now)) yield key
      }
    }
  }

  /** The objects under `prefix` with the given `fields`, one `objects.list` page (`pageSize`) at a time. */
  async *#listPages(prefix: string, op: string, fields: string) {
    let pageToken: string | undefined
    do {
      const token = pageToken
      const [items, , response] = await this.#call(op, () =>
        this.#bucket.getFiles({
          ...(prefix === '' ? {} : { prefix }),
          maxResults: this.#pageSize,
          ...(token === undefined ? {} : { pageToken: token }),
          autoPaginate: false,
          fields,
        }),
      )
      yield items
      pageToken = response?.nextPageToken || undefined
    } while (pageToken !== undefined)
  }

  /**
   * Calls after it reject. The client holds no connection to close (idle
   * keep-alive sockets close by themselves); a shared `client` is left as is.
   */
  override async close(): Promise<void> {
    this.#closed = true
  }
}
