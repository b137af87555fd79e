import {
  type BackendFactoryOptions,
  BaseCache,
  type BaseCacheOptions,
  integerOf,
  PEEK,
} from '../../core/backend.js'
import { clonePlain } from '../../core/clone.js'
import { UnserializableValueError } from '../../core/errors.js'
import { v8Serializer } from '../../core/serializers.js'

/** Options of {@link SimpleCache}. */
export interface SimpleCacheOptions extends BaseCacheOptions {
  /**
   * The most entries kept. When a write would exceed it, the least recently
   * used entry is evicted (expired entries go first when they are met).
   * `0` means 500, as in Flask-Caching. `CACHE_THRESHOLD` sets it.
   * @default 500
   */
  threshold?: number
  /**
   * The clock, in milliseconds since the epoch. Inject one to test expiry
   * without sleeping.
   * @default Date.now
   */
  clock?: () => number
}

/** How an entry holds its value. */
const Held = {
  /** A primitive, kept as it is (immutable). */
  Raw: 0,
  /** The serializer's bytes. */
  Encoded: 1,
  /** A private deep copy of plain data, copied again on every read. */
  Cloned: 2,
} as const
type Held = (typeof Held)[keyof typeof Held]

class Entry {
  constructor(
    /** Expiry in ms since the epoch; 0 = never. */
    public expires: number,
    public value: unknown,
    public held: Held,
    /** Read since it was last considered for eviction (second-chance LRU). */
    public used = false,
  ) {}
}

/**
 * An in-process cache: a Map with per-entry expiry and a size bound. Primitives
 * are stored as they are; objects are stored as copies, so a caller mutating
 * a value after `set` (or after `get`) never changes what the cache holds, and
 * an unstorable value is rejected at `set` just as Redis would reject it.
 * With the default serializer, plain data (objects, arrays, Date, Map, Set,
 * Buffer, ...) is copied directly, which gives the same result as a V8
 * serializer round trip at a fraction of the cost; anything else, and every
 * value under a custom serializer, goes through the serializer.
 *
 * Not shared between processes: with several workers, each has its own.
 *
 * Differs from Flask-Caching's SimpleCache on purpose: the size never exceeds
 * `threshold` (Flask's steady state is threshold+1), eviction is
 * least-recently-used (Flask evicts never-expiring entries first), and expired
 * entries are dropped when read.
 */
export class SimpleCache extends BaseCache {
  /** Entries live in this process's memory: never guarded. */
  readonly inProcess = true
  /** Maximum number of entries. */
  readonly threshold: number
  readonly #clock: () => number
  readonly #map = new Map<string, Entry>()

  /** Builds a SimpleCache from configuration: `CACHE_THRESHOLD` plus the common options. */
  static factory(
    this: new (
      options: SimpleCacheOptions,
    ) => SimpleCache,
    _app: object | undefined,
    config: Readonly<Record<string, unknown>>,
    _args: unknown[],
    options: BackendFactoryOptions,
  ): SimpleCache {
    return new this({ ...options, threshold: config.CACHE_THRESHOLD as number | undefined })
  }

  constructor(options: SimpleCacheOptions = {}) {
    super(options)
    const threshold = options.threshold ?? 500
    if (!Number.isInteger(threshold) || threshold < 0) {
      throw new TypeError(`SimpleCache: threshold must be a non-negative integer, got ${threshold}`)
    }
    this.threshold = threshold === 0 ? 500 : threshold
    this.#clock = options.clock ?? Date.now
    // A subclass that changes how reads work gets them: no shortcut around its `get`.
    if (this.get !== SimpleCache.prototype.get || this.getMany !== SimpleCache.prototype.getMany) {
      Object.defineProperty(this, PEEK, { value: undefined })
    }
  }

  /** The number of entries held, expired ones included until they are met. */
  get size(): number {
    return this.#map.size
  }

  #expiry(timeout: number | undefined): number {
    const seconds = this.ttl(timeout)
    return seconds === 0 ? 0 : this.#clock() + seconds * 1000
  }

  #live(key: string): Entry | undefined {
    const entry = this.#map.get(key)
    if (entry === undefined) return undefined
    if (entry.expires !== 0 && entry.expires <= this.#clock()) {
      this.#map.delete(key)
      return undefined
    }
    return entry
  }

  #encode(value: unknown, expires: number): Entry {
    switch (typeof value) {
      case 'string':
      case 'number':
      case 'boolean':
      case 'bigint':
        return new Entry(expires, value, Held.Raw)
      case 'undefined':
        throw new UnserializableValueError(
          'cannot store undefined: undefined means a miss; store null instead',
        )
    }
    if (value === null) return new Entry(expires, null, Held.Raw)
    if (this.serializer === v8Serializer) {
      const copy = clonePlain(value)
      if (copy !== undefined) return new Entry(expires, copy.value, Held.Cloned)
    }
    return new Entry(expires, this.serializer.dumps(value), Held.Encoded)
  }

  #decode(entry: Entry): unknown {
    switch (entry.held) {
      case Held.Raw:
        return entry.value
      case Held.Cloned:
        return (clonePlain(entry.value) as { value: unknown }).value
      default:
        return this.serializer.loads(entry.value as Uint8Array)
    }
  }

  #put(key: string, entry: Entry): void {
    const map = this.#map
    map.delete(key)
    map.set(key, entry)
    if (map.size > this.threshold) this.#evict()
  }

  /**
   * Second-chance LRU: the Map keeps insertion order; a read only marks the
   * entry, and eviction walks from the oldest end, moving marked entries to
   * the young end (clearing the mark) and evicting the first unmarked or
   * expired one. Reads stay a lookup plus a flag; the reordering cost is paid,
   * amortized, by the writes that overflow.
   */
  #evict(): void {
    const map = this.#map
    const now = this.#clock()
    while (map.size > this.threshold) {
      const next = map.entries().next()
      if (next.done) return
      const [key, entry] = next.value
      map.delete(key)
      if (entry.used && (entry.expires === 0 || entry.expires > now)) {
        entry.used = false
        map.set(key, entry)
      }
    }
  }

  async get(key: string): Promise<unknown> {
    const entry = this.#live(key)
    if (entry === undefined) return undefined
    entry.used = true
    return this.#decode(entry)
  }

  /**
   * `get` for the view engine's hits (see {@link PEEK}): synchronous, and
   * the entry's own copy rather than a new one. Internal.
   * @internal
   */
  [PEEK](key: string): unknown {
    const entry = this.#live(key)
    if (entry === undefined) return undefined
    entry.used = true
    return entry.held === Held.Encoded ? this.#decode(entry) : entry.value
  }

  async set(key: string, value: unknown, timeout?: number): Promise<boolean> {
    this.#put(key, this.#encode(value, this.#expiry(timeout)))
    return true
  }

  async add(key: string, value: unknown, timeout?: number): Promise<boolean> {
    if (this.#live(key) !== undefined) return false
    this.#put(key, this.#encode(value, this.#expiry(timeout)))
    return true
  }

  async delete(key: string): Promise<boolean> {
    return this.#map.delete(key)
  }

  async has(key: string): Promise<boolean> {
    return this.#live(key) !== undefined
  }

  async clear(): Promise<boolean> {
    this.#map.clear()
    return true
  }

  /**
   * The keys of live entries starting with `prefix`, from a snapshot taken
   * when iteration starts (entries written meanwhile may be missed). Expired
   * entries met on the way are dropped, as a read would.
   */
  async *keys(prefix: string): AsyncIterable<string> {
    for (const key of [...this.#map.keys()]) {
      if (key.startsWith(prefix) && this.#live(key) !== undefined) yield key
    }
  }

  /** `entries` (live ones) and `threshold`. */
  async stats(): Promise<Record<string, string | number>> {
    const now = this.#clock()
    let entries = 0
    for (const entry of this.#map.values()) {
      if (entry.expires === 0 || entry.expires > now) entries++
    }
    return { entries, threshold: this.threshold }
  }

  override async getMany(keys: readonly string[]): Promise<unknown[]> {
    return keys.map((key) => {
      const entry = this.#live(key)
      return entry === undefined ? undefined : this.#decode(entry)
    })
  }

  override async setMany(
    entries: readonly (readonly [string, unknown])[],
    timeout?: number,
  ): Promise<string[]> {
    const expires = this.#expiry(timeout)
    // Encode everything first: one unstorable value leaves the cache untouched.
    const encoded = entries.map(([, value]) => this.#encode(value, expires))
    for (let i = 0; i < entries.length; i++) {
      this.#put((entries[i] as readonly [string, unknown])[0], encoded[i] as Entry)
    }
    return entries.map(([key]) => key)
  }

  override async deleteMany(keys: readonly string[]): Promise<string[]> {
    for (const key of keys) this.#map.delete(key)
    return [...keys]
  }

  /** Atomic within the process. Keeps an existing counter's expiry; a new one gets the default timeout. */
  override async inc(key: string, delta: number): Promise<number> {
    const entry = this.#live(key)
    const next = integerOf(key, entry === undefined ? undefined : this.#decode(entry)) + delta
    if (entry === undefined) this.#put(key, new Entry(this.#expiry(undefined), next, Held.Raw))
    else {
      entry.value = next
      entry.held = Held.Raw
    }
    return next
  }
}
