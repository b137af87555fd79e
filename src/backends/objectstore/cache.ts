/**
 * Internal: the cache both object-store backends are, over a store's
 * {@link ObjectStoreDriver}: one object per key (named by `objectName`), the
 * value in cachette's byte format, the absolute expiry in the object's
 * metadata, atomic `add`/`inc` by conditional writes, bounded parallelism
 * for the multi-key operations, `clear` and `keys` by listing the key
 * prefix. `S3Cache` and `GoogleCloudStorageCache` are this class with their
 * driver, their options and their lifecycle-rule helpers; where the two
 * stores need the cache to behave differently, their
 * {@link ObjectStoreBehaviour} says so.
 */
import { BaseCache, type BaseCacheOptions, integerOf } from '../../core/backend.js'
import { decodeOrMiss, encodeValue } from '../../core/codec.js'
import { ConfigError, DeleteManyError, NotAnIntegerError } from '../../core/errors.js'
import { ErrorReporter, warnOnce } from '../../core/log.js'
import { allValues, expiryOf, isLive, mapLimit, objectName } from '../../core/objectstore.js'
import { CHANGED, type ObjectStoreDriver, type WriteCondition } from './driver.js'
import { storeCode, withCode } from './errors.js'

/** How `inc` updates a counter on this store. */
export interface CounterBehaviour {
  /** Read-then-conditional-write attempts before `inc` gives up (`ERR_CACHETTE_<tag>_INC_CONTENDED`). */
  attempts: number
  /** A short random pause before each new attempt (GCS allows about one write per second to one object). */
  backoff: boolean
  /**
   * Concurrent calls on one key in this process queue behind the write in
   * flight and share the next one, each resolving the value its own delta
   * produced.
   */
  combine: boolean
  /** A live counter keeps its expiry; otherwise every write gives it the default timeout. */
  keepExpiry: boolean
  /** A delta or result past `Number.MAX_SAFE_INTEGER` is a `NotAnIntegerError` (the value is left). */
  checkOverflow: boolean
  /** With purge on read, `inc`'s read deletes an expired counter it finds. */
  purge: boolean
}

/**
 * What differs between the stores beyond their requests: each field is
 * behaviour one backend documents (or has always had) and the other does not
 * share.
 */
export interface ObjectStoreBehaviour {
  /** Names the store in codes: `ERR_CACHETTE_<tag>_...` errors, `CACHETTE_<tag>_...` warnings. */
  tag: string
  /** Rounds of an atomic `add` (create, else replace an expired object) before it answers `false`. */
  addAttempts: number
  /** With purge on read, `has()` deletes an expired object it finds too. */
  purgeOnHas: boolean
  /** `setMany`/`deleteMany` that stored or deleted some keys log the failure of the others. */
  reportPartialFailures: boolean
  /** What the corrupt-entry warning names: the object, or the key. */
  corruptEntryNames: 'object' | 'key'
  /**
   * Instances may write short-lived probe objects (`~probe~...`, for
   * `conditionalWrites: 'auto'`), which `keys()` skips.
   */
  probes: boolean
  counter: CounterBehaviour
  /** Why `clear()` without a key prefix refuses (a `ConfigError` on `CACHE_KEY_PREFIX`). */
  flushRefused: string
  /** The warning, once, when `clear()` with `allowFlush` empties the bucket. */
  flushWarning: { code: string; message: string }
  /** The warning, once, when `conditionalWrites: 'auto'` finds the store ignores them. */
  noConditionalWrites: string
}

/** What {@link ObjectStoreCache} is built from, checked by the backend. */
export interface ObjectStoreSetup {
  /** The backend's class name, for messages. */
  name: string
  driver: ObjectStoreDriver
  bucket: string
  keyPrefix: string
  /** Parallel requests of `getMany` and `setMany`. */
  concurrency: number
  /** Delete an expired object when a read finds it. */
  purgeExpiredOnRead: boolean
  allowFlush: boolean
  /**
   * Whether the store honours conditional writes; `'auto'` checks once, on
   * first use, by writing a probe object twice.
   */
  conditionalWrites: boolean | 'auto'
  behaviour: ObjectStoreBehaviour
}

/** A call of `inc` waiting for its turn. */
interface IncWaiter {
  delta: number
  resolve(value: number): void
  reject(error: unknown): void
}

const PROBE = '~probe~'
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** The cache of an object store, over its driver. See the module documentation. */
export class ObjectStoreCache extends BaseCache {
  /** The bucket. */
  readonly bucket: string
  /** Prepended to every object name; `clear()` deletes exactly the objects under it. */
  readonly keyPrefix: string
  /** Whether `clear()` without a prefix may delete every object in the bucket. */
  readonly allowFlush: boolean
  readonly #name: string
  readonly #driver: ObjectStoreDriver
  readonly #concurrency: number
  readonly #purge: boolean
  readonly #behaviour: ObjectStoreBehaviour
  readonly #reporter: ErrorReporter
  #conditional: boolean | Promise<boolean> | 'auto'
  /** Increments waiting for the write in flight on their object, by object name. */
  readonly #increments = new Map<string, IncWaiter[]>()

  constructor(options: BaseCacheOptions, setup: ObjectStoreSetup) {
    super(options)
    this.#name = setup.name
    this.#driver = setup.driver
    this.bucket = setup.bucket
    this.keyPrefix = setup.keyPrefix
    this.allowFlush = setup.allowFlush
    this.#concurrency = setup.concurrency
    this.#purge = setup.purgeExpiredOnRead
    this.#conditional = setup.conditionalWrites
    this.#behaviour = setup.behaviour
    this.#reporter = new ErrorReporter(this.logger)
  }

  /** The object name of `key`: `keyPrefix + key`, or a hash of the key when it cannot be one. */
  protected objectName(key: string): string {
    return objectName(this.keyPrefix, key)
  }

  // ---- the backend API -----------------------------------------------------------

  /** The value; an expired object is a miss (deleted first with purge on read), and so is one that cannot be decoded. */
  async get(key: string): Promise<unknown> {
    return this.#get(key, 'get')
  }

  /** One object write, its expiry in its metadata. */
  async set(key: string, value: unknown, timeout?: number): Promise<boolean> {
    const data = encodeValue(value, this.serializer)
    await this.#driver.write(this.objectName(key), data, this.#expiry(timeout), 'set')
    return true
  }

  /**
   * Stores only if no live entry exists. With conditional writes it is
   * atomic: a create that requires no object, and over an expired object a
   * write that requires the version found, so of concurrent adds exactly one
   * wins. Without (a store that ignores them): read the metadata, then write.
   */
  async add(key: string, value: unknown, timeout?: number): Promise<boolean> {
    const data = encodeValue(value, this.serializer)
    const expiresAt = this.#expiry(timeout)
    const name = this.objectName(key)
    const mode = this.#conditionalWrites()
    if (!(mode instanceof Promise ? await mode : mode)) {
      const meta = await this.#driver.stat(name, 'add')
      if (meta !== undefined && isLive(meta.expiresAt)) return false
      await this.#driver.write(name, data, expiresAt, 'add')
      return true
    }
    for (let attempt = 0; attempt < this.#behaviour.addAttempts; attempt++) {
      if (await this.#driver.write(name, data, expiresAt, 'add', { ifAbsent: true })) return true
      const meta = await this.#driver.stat(name, 'add')
      // Deleted since: try to create it again.
      if (meta === undefined) continue
      if (isLive(meta.expiresAt) || meta.version === undefined) return false
      if (await this.#driver.write(name, data, expiresAt, 'add', { ifVersion: meta.version })) {
        return true
      }
      // Replaced since by another writer: look again.
    }
    return false
  }

  /** Resolves whether a live entry existed: the object's metadata, then the delete. */
  async delete(key: string): Promise<boolean> {
    const name = this.objectName(key)
    const meta = await this.#driver.stat(name, 'delete')
    if (meta === undefined) return false
    const deleted = await this.#driver.remove(name, 'delete')
    return deleted && isLive(meta.expiresAt)
  }

  /** Whether a live entry exists: the object's metadata only. */
  async has(key: string): Promise<boolean> {
    const name = this.objectName(key)
    const meta = await this.#driver.stat(name, 'has')
    if (meta === undefined) return false
    if (isLive(meta.expiresAt)) return true
    if (this.#purge && this.#behaviour.purgeOnHas) {
      await this.#driver.remove(name, 'has', meta.version)
    }
    return false
  }

  /** Reads in parallel, at most `concurrency` at a time, in key order. */
  override async getMany(keys: readonly string[]): Promise<unknown[]> {
    return allValues(await mapLimit(keys, this.#concurrency, (key) => this.#get(key, 'getMany')))
  }

  /**
   * Encodes every value first (one unstorable value writes nothing), then
   * writes in parallel, `concurrency` at a time. Resolves the keys stored;
   * rejects if none was.
   */
  override async setMany(
    entries: readonly (readonly [string, unknown])[],
    timeout?: number,
  ): Promise<string[]> {
    const encoded = entries.map(([, value]) => encodeValue(value, this.serializer))
    const expiresAt = this.#expiry(timeout)
    if (entries.length === 0) return []
    const settled = await mapLimit(entries, this.#concurrency, ([key], i) =>
      this.#driver.write(this.objectName(key), encoded[i] as Buffer, expiresAt, 'setMany'),
    )
    const stored = entries.filter((_, i) => settled[i]?.status === 'fulfilled').map(([k]) => k)
    const failed = settled.find((s) => s.status === 'rejected')
    if (failed !== undefined) {
      if (stored.length === 0) throw failed.reason
      this.#reportPartial('setMany', failed.reason)
    }
    return stored
  }

  /**
   * Deletes the keys' objects (batched as the store allows); a missing key
   * counts as deleted. Keys left are a {@link DeleteManyError} unless
   * `ignoreDeleteManyErrors`; when none was deleted and the store gave an
   * error, that error.
   */
  override async deleteMany(keys: readonly string[]): Promise<string[]> {
    if (keys.length === 0) return []
    const names = keys.map((key) => this.objectName(key))
    const failures = await this.#driver.removeMany(
      names.map((name) => ({ name })),
      'deleteMany',
    )
    if (failures.length === 0) return [...keys]
    const failed = new Set(failures.map((f) => f.name))
    const gone = keys.filter((_, i) => !failed.has(names[i] as string))
    const left = keys.filter((_, i) => failed.has(names[i] as string))
    if (left.length === 0) return gone
    const error = failures.find((f) => f.error !== undefined)?.error
    if (gone.length === 0 && error !== undefined) throw error
    if (!this.ignoreDeleteManyErrors) throw new DeleteManyError(left)
    if (error !== undefined) this.#reportPartial('deleteMany', error)
    return gone
  }

  /**
   * Adds `delta`. With conditional writes it is atomic: read the value and
   * its version, write requiring that version (or no object, for a new
   * counter), and start again when another writer got there first. Without,
   * it is a plain read then write. A new (or expired) counter gets the
   * default timeout.
   * @throws {NotAnIntegerError} if the stored value is not an integer (it is left unchanged).
   */
  override async inc(key: string, delta: number): Promise<number> {
    if (!Number.isSafeInteger(delta)) {
      throw new NotAnIntegerError(`inc/dec: delta must be an integer, got ${String(delta)}`)
    }
    const name = this.objectName(key)
    if (!this.#behaviour.counter.combine) {
      return (await this.#addToCounter(key, name, delta)) + delta
    }
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

  /**
   * Deletes every object under the key prefix: lists a page, deletes its
   * objects, and so on (each at the version listed where the store can, so
   * an entry written meanwhile stays). Rejects, after trying them all, if
   * some could not be deleted. Without a prefix it refuses unless
   * `allowFlush` is set; then it deletes every object in the bucket, warning
   * once.
   * @throws {ConfigError} with key `CACHE_KEY_PREFIX` when there is no prefix and `allowFlush` is off.
   */
  async clear(): Promise<boolean> {
    if (this.keyPrefix === '') {
      if (!this.allowFlush) throw new ConfigError('CACHE_KEY_PREFIX', this.#behaviour.flushRefused)
      const { code, message } = this.#behaviour.flushWarning
      warnOnce(this.logger, code, message)
    }
    let failures = 0
    let firstError: unknown
    for await (const page of this.#driver.list(this.keyPrefix, 'clear', 'versions')) {
      if (page.length === 0) continue
      const left = await this.#driver.removeMany(page, 'clear')
      failures += left.length
      firstError ??= left.find((f) => f.error !== undefined)?.error
    }
    if (failures > 0) {
      let message = `${this.#name}.clear: ${failures} objects could not be deleted`
      if (firstError !== undefined) {
        message += ` (${firstError instanceof Error ? firstError.message : String(firstError)})`
      }
      const error = new Error(message, firstError === undefined ? undefined : { cause: firstError })
      throw withCode(error, storeCode(this.#behaviour.tag, 'CLEAR_INCOMPLETE'))
    }
    return true
  }

  /**
   * The keys under `keyPrefix + prefix`, with the key prefix removed, a page
   * of the listing at a time. Objects stored under a hash of their key
   * (`~h~...`: keys too long for an object name, with control characters, or
   * with empty `/` segments such as view keys) cannot be turned back into
   * keys and are skipped. Expired objects the bucket still holds are left
   * out where the listing carries their expiry (GCS; an S3 listing has no
   * metadata).
   */
  async *keys(prefix: string): AsyncIterable<string> {
    const under = this.keyPrefix + prefix
    for await (const page of this.#driver.list(under, 'keys', 'expiry')) {
      const now = Date.now()
      for (const item of page) {
        const name = item.name
        if (!name.startsWith(under)) continue
        const key = name.slice(this.keyPrefix.length)
        if (key === '' || (this.#behaviour.probes && key.startsWith(PROBE))) continue
        // A name that is not the plain name of its key is a hash (or a foreign object).
        if (this.objectName(key) !== name) continue
        if (isLive(item.expiresAt, now)) yield key
      }
    }
  }

  /** Closes the driver (a client the backend created; one passed in is left alone). */
  override async close(): Promise<void> {
    await this.#driver.close()
  }

  // ---- helpers -------------------------------------------------------------------

  async #get(key: string, op: string): Promise<unknown> {
    const name = this.objectName(key)
    const found = await this.#driver.read(name, op, this.#purge)
    if (found === undefined || found === CHANGED || found.body === undefined) return undefined
    return this.#decode(found.body, key, name)
  }

  #expiry(timeout: number | undefined): number | undefined {
    return expiryOf(this.ttl(timeout), this.#name)
  }

  #decode(data: Buffer, key: string, name: string): unknown {
    return decodeOrMiss(data, this.serializer, {
      logger: this.logger,
      code: `CACHETTE_${this.#behaviour.tag}_CORRUPT_ENTRY`,
      backend: this.#name,
      key: this.#behaviour.corruptEntryNames === 'object' ? name : key,
    })
  }

  #reportPartial(op: string, error: unknown): void {
    if (this.#behaviour.reportPartialFailures) this.#reporter.report(`${this.#name}.${op}`, error)
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
            `CACHETTE_${this.#behaviour.tag}_NO_CONDITIONAL_WRITES`,
            this.#behaviour.noConditionalWrites,
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

  /** Writes a probe object twice, the second time requiring that none exists: a store that honours it refuses. */
  async #probe(): Promise<boolean> {
    const name = this.objectName(`${PROBE}${process.pid}~${Date.now()}`)
    const data = Buffer.from('probe')
    await this.#driver.write(name, data, Date.now() + 60_000, 'probe')
    try {
      return !(await this.#driver.write(name, data, Date.now() + 60_000, 'probe', {
        ifAbsent: true,
      }))
    } finally {
      await this.#driver.remove(name, 'probe').catch(() => {})
    }
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

  /** One read-then-conditional-write loop adding `delta`; resolves the value before it. */
  async #addToCounter(key: string, name: string, delta: number): Promise<number> {
    const counter = this.#behaviour.counter
    const overflow = () =>
      new NotAnIntegerError(`inc/dec: the counter at ${JSON.stringify(key)} would overflow`)
    if (counter.checkOverflow && !Number.isSafeInteger(delta)) throw overflow()
    const mode = this.#conditionalWrites()
    const atomic = mode instanceof Promise ? await mode : mode
    for (let attempt = 0; attempt < counter.attempts; attempt++) {
      if (attempt > 0 && counter.backoff) {
        await sleep(Math.random() * Math.min(200, 4 * 2 ** attempt))
      }
      const purge = counter.purge && this.#purge
      const found = await this.#driver.read(name, 'inc', purge)
      // Replaced or deleted between its metadata and its bytes: look again.
      if (found === CHANGED) continue
      // Absent or expired (no body): a new counter, with the default timeout.
      const body = found?.body
      const current = body === undefined ? undefined : this.#decode(body, key, name)
      const expiresAt =
        body !== undefined && counter.keepExpiry ? found?.meta.expiresAt : this.#expiry(undefined)
      const before = integerOf(key, current)
      if (counter.checkOverflow && !Number.isSafeInteger(before + delta)) throw overflow()
      const data = encodeValue(before + delta, this.serializer)
      if (!atomic) {
        await this.#driver.write(name, data, expiresAt, 'inc')
        return before
      }
      // An expired object `read` purged is gone: the new counter needs no object at all, not
      // the deleted version (a concurrent writer's counter then wins, and this one looks again).
      const version = purge && body === undefined ? undefined : found?.meta.version
      const condition: WriteCondition =
        version === undefined ? { ifAbsent: true } : { ifVersion: version }
      if (await this.#driver.write(name, data, expiresAt, 'inc', condition)) return before
    }
    throw withCode(
      new Error(
        `${this.#name}.inc: the counter at ${JSON.stringify(key)} changes too often to update`,
      ),
      storeCode(this.#behaviour.tag, 'INC_CONTENDED'),
    )
  }
}
