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
 *
 * @module cachette/s3
 */
import type { BackendFactoryOptions, BaseCacheOptions } from '../../core/backend.js'
import { ConfigError } from '../../core/errors.js'
import { checkObjectPrefix } from '../../core/objectstore.js'
import { type ObjectStoreBehaviour, ObjectStoreCache } from '../objectstore/cache.js'
import { storeCode, withCode } from '../objectstore/errors.js'
import { loadS3, type S3ClientLike } from './client.js'
import { S3Driver } from './driver.js'

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

const DAY = 86400
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

/** Where S3's cache behaves differently from GCS's (see {@link ObjectStoreBehaviour}). */
function behaviourOf(name: string, bucket: string): ObjectStoreBehaviour {
  return {
    tag: 'S3',
    // One conditional create, then one conditional replace of an expired object.
    addAttempts: 1,
    purgeOnHas: false,
    reportPartialFailures: false,
    corruptEntryNames: 'object',
    probes: true,
    counter: {
      attempts: 50,
      backoff: false,
      combine: false,
      keepExpiry: false,
      checkOverflow: false,
      purge: true,
    },
    flushRefused:
      'clear() without a key prefix would delete every object in the bucket; set CACHE_KEY_PREFIX, or pass CACHE_OPTIONS: { allowFlush: true }',
    flushWarning: {
      code: 'CACHETTE_S3_CLEAR_ALL',
      message: `${name}.clear(): no key prefix, so every object in bucket ${bucket} is deleted (allowFlush is set)`,
    },
    noConditionalWrites: `${name}: the store ignores conditional writes (If-None-Match), so add() and inc() read then write and are not atomic`,
  }
}

/**
 * Checks the options, in the order the errors are documented (configuration
 * before a missing SDK), and builds the driver.
 */
function setupOf(options: S3CacheOptions, name: string) {
  const bucket = options.bucket
  if (typeof bucket !== 'string' || bucket === '') {
    throw new ConfigError('CACHE_S3_BUCKET', `${name} needs a bucket name, got ${describe(bucket)}`)
  }
  const keyPrefix = checkObjectPrefix(options.keyPrefix)
  const timeout = positive(options.timeout, 'timeout', 2000)
  const concurrency = positive(options.concurrency, 'concurrency', 16, true)
  const conditional = options.conditionalWrites ?? 'auto'
  if (conditional !== true && conditional !== false && conditional !== 'auto') {
    throw new ConfigError(
      'CACHE_OPTIONS',
      `conditionalWrites must be true, false or 'auto', got ${describe(conditional)}`,
    )
  }
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
  const sdk = loadS3(name)
  let client: S3ClientLike
  let owned: boolean
  if (options.client !== undefined && options.client !== null) {
    const c = options.client as Partial<S3ClientLike>
    if (typeof c.send !== 'function') {
      throw new ConfigError('CACHE_OPTIONS', 'client must be an S3Client (an object with send())')
    }
    client = options.client
    owned = false
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
    client = new sdk.S3Client(config)
    owned = true
  }
  return {
    name,
    driver: new S3Driver({ name, sdk, client, owned, bucket, timeout }),
    bucket,
    keyPrefix,
    concurrency,
    purgeExpiredOnRead: options.purgeExpiredOnRead === true,
    allowFlush: options.allowFlush === true,
    conditionalWrites: conditional,
    behaviour: behaviourOf(name, bucket),
  }
}

/**
 * A cache in an S3 bucket. See the module documentation.
 *
 * The requests: `get` is one `GetObject` (metadata and bytes), `has` a
 * `HeadObject`, `set` a `PutObject`; `add` a `PutObject` with
 * `If-None-Match: *` (over an expired object, with `If-Match` on its ETag);
 * `delete` a `HeadObject` then a `DeleteObject` (S3's delete does not say
 * whether the object existed); `getMany`/`setMany` one request per key,
 * `concurrency` at a time; `deleteMany` `DeleteObjects` in batches of 1,000
 * names; `clear` and `keys` `ListObjectsV2`, a page of up to 1,000 names at a
 * time. `inc` reads with the ETag and writes with `If-Match` (or
 * `If-None-Match: *` for a new counter), retrying on conflict; the counter
 * gets the default timeout on every write. `keys` lists objects that have
 * expired but are still in the bucket too (a listing carries no metadata),
 * and skips the short-lived probe objects of `conditionalWrites: 'auto'`
 * (`~probe~...`).
 *
 * Differs from flask-cache-s3 on purpose: `clear()` without a key prefix
 * refuses instead of emptying the bucket; `add` and `inc` are atomic where
 * the store honours conditional writes; `delete` says whether the key
 * existed; `getMany` runs in parallel; every call has a deadline; keys that
 * are not valid object names are hashed.
 */
export class S3Cache extends ObjectStoreCache {
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

  /** Whether a read deletes the expired object it finds. */
  readonly purgeExpiredOnRead: boolean
  readonly #driver: S3Driver

  /**
   * @throws {ConfigError} naming `CACHE_S3_BUCKET` when it is missing, or the key of a bad option.
   * @throws {MissingDependencyError} when `@aws-sdk/client-s3` is not installed.
   */
  constructor(options: S3CacheOptions = {}) {
    const setup = setupOf(options, new.target.name || 'S3Cache')
    super(options, setup)
    this.purgeExpiredOnRead = setup.purgeExpiredOnRead
    this.#driver = setup.driver
  }

  /** The `S3Client`, for calls cachette does not wrap. Object names there carry the prefix. */
  get client(): S3ClientLike {
    return this.#driver.client
  }

  /**
   * A bucket lifecycle rule that deletes this cache's objects (those under
   * the key prefix) `days` after they were written, so expired entries do not
   * accumulate. S3 expires objects by age, not by the expiry cachette keeps
   * in their metadata: pick `days` above the longest timeout you use (the
   * default is the default timeout, rounded up to whole days, plus one), and
   * know that entries stored with timeout `0` are deleted too.
   * @throws {RangeError} (code `ERR_CACHETTE_S3_LIFECYCLE_DAYS`) unless `days` is a positive integer.
   */
  lifecycleRule(days?: number): S3LifecycleRule {
    const d = days ?? Math.ceil(this.defaultTimeout / DAY) + 1
    if (!Number.isInteger(d) || d < 1) {
      throw withCode(
        new RangeError(`lifecycleRule: days must be a positive integer, got ${String(d)}`),
        storeCode('S3', 'LIFECYCLE_DAYS'),
      )
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
      const current = await this.#driver.send<{ Rules?: { ID?: string }[] }>(
        'GetBucketLifecycleConfigurationCommand',
        {},
        'applyLifecycleRule',
      )
      rules = current.Rules ?? []
    } catch (error) {
      if ((error as { name?: string }).name !== 'NoSuchLifecycleConfiguration') throw error
    }
    const merged = [...rules.filter((r) => r.ID !== rule.ID), rule]
    await this.#driver.send(
      'PutBucketLifecycleConfigurationCommand',
      { LifecycleConfiguration: { Rules: merged } },
      'applyLifecycleRule',
    )
    return rule
  }
}
