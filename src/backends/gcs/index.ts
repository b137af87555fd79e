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
 *
 * @module cachette/gcs
 */
import type { BackendFactoryOptions, BaseCacheOptions } from '../../core/backend.js'
import { ConfigError } from '../../core/errors.js'
import { checkObjectPrefix } from '../../core/objectstore.js'
import { type ObjectStoreBehaviour, ObjectStoreCache } from '../objectstore/cache.js'
import {
  anonymousAuthClient,
  type BucketHandle,
  GoogleCloudStorageError,
  type LifecycleRuleLike,
  loadStorage,
  type StorageLike,
} from './client.js'
import { GcsDriver } from './driver.js'
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

/** Attempts of a compare-and-swap (`inc`) before it gives up. */
const MAX_CAS_ATTEMPTS = 100

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

/** Where GCS's cache behaves differently from S3's (see {@link ObjectStoreBehaviour}). */
function behaviourOf(name: string, bucket: string): ObjectStoreBehaviour {
  const quoted = JSON.stringify(bucket)
  return {
    tag: 'GCS',
    // An object deleted or replaced between the tries is looked at again.
    addAttempts: 5,
    purgeOnHas: true,
    reportPartialFailures: true,
    corruptEntryNames: 'key',
    probes: false,
    counter: {
      attempts: MAX_CAS_ATTEMPTS,
      backoff: true,
      combine: true,
      keepExpiry: true,
      checkOverflow: true,
      purge: false,
    },
    flushRefused: `clear() without a key prefix would delete every object in the bucket ${quoted}; set CACHE_KEY_PREFIX (or CACHE_GCS_KEY_PREFIX), or pass CACHE_OPTIONS: { allowFlush: true }`,
    flushWarning: {
      code: 'CACHETTE_GCS_FLUSH',
      message: `${name}.clear(): no key prefix, so every object in the bucket ${quoted} is deleted (allowFlush is set)`,
    },
    // GCS always honours ifGenerationMatch: never probed, never said.
    noConditionalWrites: `${name}: the store ignores ifGenerationMatch, so add() and inc() are not atomic`,
  }
}

/**
 * Checks the options, in the order the errors are documented (configuration
 * before a missing client package), and builds the driver (no request is made).
 */
function setupOf(options: GoogleCloudStorageCacheOptions, name: string) {
  const bucket = checkBucket(options.bucket, name)
  const keyPrefix = checkObjectPrefix(options.keyPrefix)
  const deleteExpiredOnRead = checkFlag(
    options.deleteExpiredOnRead,
    'deleteExpiredOnRead',
    'CACHE_GCS_DELETE_EXPIRED_ON_READ',
  )
  const allowFlush = checkFlag(options.allowFlush, 'allowFlush')
  const timeout = checkPositive(options.timeout, 'timeout', 2000)
  const concurrency = checkPositive(options.concurrency, 'concurrency', 16, { integer: true })
  const pageSize = checkPositive(options.pageSize, 'pageSize', 1000, { integer: true, max: 1000 })
  const anonymous = checkFlag(options.anonymous, 'anonymous')
  const apiEndpoint = checkEndpoint(options.apiEndpoint)
  const projectId = checkString(options.projectId, 'projectId')
  const clientOptions = checkClientOptions(options.clientOptions)
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
    const { Storage } = loadStorage(name)
    const settings: Record<string, unknown> = {
      retryOptions: { autoRetry: false },
      // The client's own timeout, a little later than the deadline, only
      // reclaims the socket of a request the deadline has given up on.
      timeout: timeout + 1000,
      ...clientOptions,
    }
    if (apiEndpoint !== undefined) settings.apiEndpoint = apiEndpoint
    if (projectId !== undefined) settings.projectId = projectId
    if (anonymous && settings.authClient === undefined) {
      settings.authClient = anonymousAuthClient(name)
    }
    client = new Storage(settings)
  }
  const handle = client.bucket(bucket) as BucketHandle
  return {
    name,
    driver: new GcsDriver({ name, bucket: handle, timeout, concurrency, pageSize }),
    bucket,
    keyPrefix,
    timeout,
    concurrency,
    purgeExpiredOnRead: deleteExpiredOnRead,
    allowFlush,
    conditionalWrites: true,
    behaviour: behaviourOf(name, bucket),
  }
}

/**
 * A cache in a Google Cloud Storage bucket (Flask-Caching's
 * `flask_caching.contrib.googlecloudstoragecache.GoogleCloudStorageCache`).
 * See the module documentation.
 *
 * A hit costs two requests: the object's metadata (its expiry), then the
 * bytes of exactly that generation (the client library does not expose an
 * object's metadata with a media download). A miss costs one, and so does
 * `has`. `getMany`, `setMany`, `deleteMany` and each page of `clear` run in
 * parallel, at most `concurrency` requests at a time; `clear` lists a page
 * (`pageSize`) at a time and deletes each object at the generation listed,
 * so an entry written meanwhile stays. With `deleteExpiredOnRead`, `get` and
 * `has` delete an expired object they find (that generation only). `keys`
 * lists each object's expiry, so expired objects the bucket still holds are
 * left out.
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
 *
 * `inc` is atomic, by compare-and-swap on the object's generation: read the
 * generation and value, write with `ifGenerationMatch`, and start again
 * (after a short random pause) when another writer got there first.
 * Concurrent calls on one key in this process are combined: they queue
 * behind the write in flight and the next write adds all their deltas at
 * once, each call resolving the value its own delta produced (as if they
 * had run one after another). GCS allows about one write per second to one
 * object, so this keeps a busy counter within it; a counter shared by many
 * processes under heavy load still belongs in Redis or memcached.
 */
export class GoogleCloudStorageCache extends ObjectStoreCache {
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

  /** Whether a read deletes the expired object it finds. */
  readonly deleteExpiredOnRead: boolean
  /** Milliseconds each request may take. */
  readonly timeout: number
  /** Parallel requests of the multi-key operations and `clear()`. */
  readonly concurrency: number
  readonly #driver: GcsDriver

  /**
   * Creates the client (no request is made).
   * @throws {ConfigError} naming `CACHE_GCS_BUCKET` when it is missing, or the key of a bad option.
   * @throws {MissingDependencyError} when `@google-cloud/storage` is not installed.
   */
  constructor(options: GoogleCloudStorageCacheOptions = {}) {
    const setup = setupOf(options, new.target.name || 'GoogleCloudStorageCache')
    super(options, setup)
    this.deleteExpiredOnRead = setup.purgeExpiredOnRead
    this.timeout = setup.timeout
    this.concurrency = setup.concurrency
    this.#driver = setup.driver
  }

  /** The object name of `key`: `keyPrefix + key`, or a hash of the key when it cannot be one. */
  override objectName(key: string): string {
    return super.objectName(key)
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
    const bucket = this.#driver.bucket
    const [meta] = await this.#driver.call('applyLifecycleRule', () => bucket.getMetadata())
    const rules = meta.lifecycle?.rule ?? []
    if (rules.some((r) => sameRule(r, rule))) return false
    const precondition =
      meta.metageneration === undefined ? {} : { ifMetagenerationMatch: meta.metageneration }
    await this.#driver.call('applyLifecycleRule', () =>
      bucket.setMetadata({ lifecycle: { rule: [...rules, rule] } }, precondition),
    )
    return true
  }
}
