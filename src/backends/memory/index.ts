import {
  type BackendFactoryOptions,
  BaseCache,
  type BaseCacheOptions,
  integerOf,
  PEEK,
  SYNC,
} from '../../core/backend.js'
import { clonePlain } from '../../core/clone.js'
import { describe } from '../../core/describe.js'
import { ConfigError, UnserializableValueError } from '../../core/errors.js'
import { warnOnce } from '../../core/log.js'
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
   * Store objects by reference instead of as copies: `get` returns the very
   * object given to `set`, as lru-cache, a `Map` or cache-manager's memory
   * store do, without the cost of copying it on every `set` and `get`.
   *
   * **Mutating an object after `set`, or one returned by `get`, then mutates
   * the cached entry**, for every later reader. Values are not checked
   * either: anything an object holds (functions, class instances) is kept as
   * it is, and the serializer is never used. Only what is refused outright
   * stays refused (`undefined`, a function or a symbol as the value).
   * Primitives behave the same either way (they are immutable).
   *
   * Off by default: without it, objects are stored as copies (see
   * {@link SimpleCache}). `CACHE_OPTIONS: { byReference: true }` sets it.
   * Anything but a boolean is a {@link ConfigError} naming `CACHE_OPTIONS`.
   * @default false
   */
  byReference?: boolean
  /**
   * The clock, in milliseconds since the epoch. Inject one to test expiry
   * without sleeping.
   * @default Date.now
   */
  clock?: () => number
}

/**
 * A value held as the serializer's bytes (objects the fast copy does not
 * handle, and every object under a custom serializer). How a slot holds its
 * value follows from what it holds: a primitive (or null) as it is; an
 * `Encoded` decoded on every read; any other object is the caller's own
 * (`byReference`) or a private deep copy of plain data, copied again on every
 * read.
 */
class Encoded {
  constructor(readonly bytes: Uint8Array) {}
}

/** No slot (the end of a list, a miss). */
const NONE = -1
/** Slots of a new or cleared cache; the arrays double from there, up to threshold + 1. */
const FIRST_CAPACITY = 16

/** `values` copied into a new array of `capacity` slots (packed, so V8 keeps it a flat array). */
function grown<T>(values: readonly T[], capacity: number): (T | undefined)[] {
  const out = new Array<T | undefined>(capacity).fill(undefined)
  for (let i = 0; i < values.length; i++) out[i] = values[i]
  return out
}

/**
 * An in-process cache: a Map with per-entry expiry and a size bound. Primitives
 * are stored as they are; objects are stored as copies, so a caller mutating
 * a value after `set` (or after `get`) never changes what the cache holds, and
 * an unstorable value is rejected at `set` just as Redis would reject it.
 * With the default serializer, plain data (objects, arrays, Date, Map, Set,
 * Buffer, ...) is copied directly, which gives the same result as a V8
 * serializer round trip at a fraction of the cost; anything else, and every
 * value under a custom serializer, goes through the serializer. The
 * `byReference` option stores objects as they are instead (no copy; see
 * {@link SimpleCacheOptions.byReference}).
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
  /** Whether objects are stored as they are rather than copied (the `byReference` option). */
  readonly byReference: boolean
  readonly #clock: () => number
  /** Whether the threshold is the default and no live entry has been evicted yet (then it warns once). */
  #defaultThreshold: boolean

  // The entries, in slots: `#slots` maps a key to its slot, and slot i's key,
  // stored value and expiry (ms since the epoch, 0 = never) are at index i of
  // the arrays below, and bit i of `#used` says whether it was read since it
  // was last considered for eviction (second-chance LRU): no object per
  // entry, and a read touches the Map, the expiry and the value. Occupied
  // slots form a doubly linked list from the least recently written
  // (`#head`) to the most (`#tail`), the order eviction walks; free slots are
  // chained through `#next` from `#free`. Slots are handed out from 0 up
  // (`#top`), and the arrays double when full, up to threshold + 1 (a write
  // may hold one entry over the threshold until it evicts).
  readonly #slots = new Map<string, number>()
  #keys: (string | undefined)[] = []
  #values: unknown[] = []
  #expires = new Float64Array(0)
  #used = new Uint32Array(0)
  #prev = new Int32Array(0)
  #next = new Int32Array(0)
  #head = NONE
  #tail = NONE
  #free = NONE
  #top = 0

  /**
   * Builds a SimpleCache from configuration: `CACHE_THRESHOLD` plus the common
   * options, and `CACHE_OPTIONS` (`byReference`).
   */
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
    this.#defaultThreshold = threshold === 0 || options.threshold === undefined
    const byReference = options.byReference ?? false
    if (typeof byReference !== 'boolean') {
      throw new ConfigError(
        'CACHE_OPTIONS',
        `byReference must be true or false, got ${describe(byReference)}`,
      )
    }
    this.byReference = byReference
    this.#clock = options.clock ?? Date.now
    this.#reset()
    // A subclass that changes how reads work gets them: no shortcut around its `get`.
    if (this.get !== SimpleCache.prototype.get || this.getMany !== SimpleCache.prototype.getMany) {
      Object.defineProperty(this, PEEK, { value: undefined })
    }
  }

  /** The number of entries held, expired ones included until they are met. */
  get size(): number {
    return this.#slots.size
  }

  #reset(): void {
    const capacity = Math.min(FIRST_CAPACITY, this.threshold + 1)
    this.#slots.clear()
    this.#keys = new Array<string | undefined>(capacity).fill(undefined)
    this.#values = new Array<unknown>(capacity).fill(undefined)
    this.#expires = new Float64Array(capacity)
    this.#used = new Uint32Array(Math.ceil(capacity / 32))
    this.#prev = new Int32Array(capacity)
    this.#next = new Int32Array(capacity)
    this.#head = NONE
    this.#tail = NONE
    this.#free = NONE
    this.#top = 0
  }

  #expiry(timeout: number | undefined): number {
    const seconds = this.ttl(timeout)
    return seconds === 0 ? 0 : this.#clock() + seconds * 1000
  }

  /** The slot of `key`'s live entry, or {@link NONE}; an expired entry met is dropped. */
  #live(key: string): number {
    const slot = this.#slots.get(key)
    if (slot === undefined) return NONE
    const expires = this.#expires[slot] as number
    if (expires !== 0 && expires <= this.#clock()) {
      this.#remove(key, slot)
      return NONE
    }
    return slot
  }

  /** The stored form of `value`; throws for values that cannot be stored. */
  #encode(value: unknown): unknown {
    switch (typeof value) {
      case 'string':
      case 'number':
      case 'boolean':
      case 'bigint':
        return value
      case 'undefined':
        throw new UnserializableValueError(
          'cannot store undefined: undefined means a miss; store null instead',
        )
      case 'function':
      case 'symbol':
        if (this.byReference) {
          throw new UnserializableValueError(
            `cannot store ${describe(value)}: only data can be cached`,
          )
        }
    }
    if (value === null || this.byReference) return value
    if (this.serializer === v8Serializer) {
      const copy = clonePlain(value)
      if (copy !== undefined) return copy.value
    }
    return new Encoded(this.serializer.dumps(value))
  }

  /** What a reader gets for a stored value (a fresh copy of a copied object). */
  #decode(stored: unknown): unknown {
    if (typeof stored !== 'object' || stored === null || this.byReference) return stored
    if (stored instanceof Encoded) return this.serializer.loads(stored.bytes)
    return (clonePlain(stored) as { value: unknown }).value
  }

  /** Marks a slot as read. */
  #mark(slot: number): void {
    this.#used[slot >>> 5] = (this.#used[slot >>> 5] as number) | (1 << (slot & 31))
  }

  /** Clears a slot's read mark; returns whether it was set. */
  #unmark(slot: number): boolean {
    const word = this.#used[slot >>> 5] as number
    const bit = 1 << (slot & 31)
    this.#used[slot >>> 5] = word & ~bit
    return (word & bit) !== 0
  }

  /** Stores `stored` at `key`, as the most recently written entry, then evicts if over the threshold. */
  #put(key: string, stored: unknown, expires: number): void {
    let slot = this.#slots.get(key)
    if (slot !== undefined) {
      // An overwrite: a new entry in the old slot (not read yet), moved to the young end.
      this.#values[slot] = stored
      this.#expires[slot] = expires
      this.#unmark(slot)
      if (slot !== this.#tail) {
        this.#unlink(slot)
        this.#append(slot)
      }
      return
    }
    slot = this.#allocate()
    this.#keys[slot] = key
    this.#values[slot] = stored
    this.#expires[slot] = expires
    this.#slots.set(key, slot)
    this.#append(slot)
    if (this.#slots.size > this.threshold) this.#evict()
  }

  /** A free slot, growing the arrays when every slot is taken. */
  #allocate(): number {
    const free = this.#free
    if (free !== NONE) {
      this.#free = this.#next[free] as number
      return free
    }
    if (this.#top === this.#expires.length) this.#grow()
    return this.#top++
  }

  #grow(): void {
    const capacity = Math.min(this.#expires.length * 2, this.threshold + 1)
    this.#keys = grown(this.#keys, capacity)
    this.#values = grown(this.#values, capacity)
    const expires = new Float64Array(capacity)
    expires.set(this.#expires)
    this.#expires = expires
    const used = new Uint32Array(Math.ceil(capacity / 32))
    used.set(this.#used)
    this.#used = used
    const prev = new Int32Array(capacity)
    prev.set(this.#prev)
    this.#prev = prev
    const next = new Int32Array(capacity)
    next.set(this.#next)
    this.#next = next
  }

  /** Links an unlinked slot at the young end. */
  #append(slot: number): void {
    const tail = this.#tail
    this.#prev[slot] = tail
    this.#next[slot] = NONE
    if (tail === NONE) this.#head = slot
    else this.#next[tail] = slot
    this.#tail = slot
  }

  #unlink(slot: number): void {
    const prev = this.#prev[slot] as number
    const next = this.#next[slot] as number
    if (prev === NONE) this.#head = next
    else this.#next[prev] = next
    if (next === NONE) this.#tail = prev
    else this.#prev[next] = prev
  }

  /** Removes `key`'s entry from `slot` and frees the slot. */
  #remove(key: string, slot: number): void {
    this.#slots.delete(key)
    this.#unlink(slot)
    this.#keys[slot] = undefined
    this.#values[slot] = undefined
    this.#unmark(slot)
    this.#next[slot] = this.#free
    this.#free = slot
  }

  /**
   * Second-chance LRU: slots are kept in write order; a read only marks the
   * entry, and eviction walks from the oldest end, moving marked entries to
   * the young end (clearing the mark) and evicting the first unmarked or
   * expired one. Reads stay a lookup plus a flag; the reordering cost is paid,
   * amortized, by the writes that overflow.
   */
  #evict(): void {
    const now = this.#clock()
    while (this.#slots.size > this.threshold) {
      const slot = this.#head
      if (slot === NONE) return
      const expires = this.#expires[slot] as number
      if (this.#unmark(slot) && (expires === 0 || expires > now)) {
        this.#unlink(slot)
        this.#append(slot)
      } else {
        if (this.#defaultThreshold && (expires === 0 || expires > now)) this.#fullAtDefault()
        this.#remove(this.#keys[slot] as string, slot)
      }
    }
  }

  /**
   * The first live entry evicted because the cache is full at the default
   * threshold: say so once, naming the setting (the default is small, and a
   * cache that keeps evicting looks like a cache that does not work).
   */
  #fullAtDefault(): void {
    this.#defaultThreshold = false
    warnOnce(
      this.logger,
      'CACHETTE_DEFAULT_THRESHOLD',
      `SimpleCache is full at the default CACHE_THRESHOLD of ${this.threshold} entries and evicts its least recently used ones; set CACHE_THRESHOLD (threshold) to the number of entries it should hold`,
    )
  }

  /** `get`, synchronously (its {@link SYNC} twin). */
  #getNow(key: string): unknown {
    // #live, #mark and the primitive case of #decode, written out: the hot path.
    const slot = this.#slots.get(key)
    if (slot === undefined) return undefined
    const expires = this.#expires[slot] as number
    if (expires !== 0 && expires <= this.#clock()) {
      this.#remove(key, slot)
      return undefined
    }
    const used = this.#used
    used[slot >>> 5] = (used[slot >>> 5] as number) | (1 << (slot & 31))
    const stored = this.#values[slot]
    return typeof stored !== 'object' || stored === null ? stored : this.#decode(stored)
  }

  /** `set`, synchronously (its {@link SYNC} twin). */
  #setNow(key: string, value: unknown, timeout: number | undefined): boolean {
    const expires = this.#expiry(timeout)
    this.#put(key, this.#encode(value), expires)
    return true
  }

  static {
    // The synchronous twins the facade calls (see SYNC in core/backend.ts).
    const twin = (method: Function, value: Function): void => {
      Object.defineProperty(method, SYNC, { value })
    }
    twin(SimpleCache.prototype.get, (self: SimpleCache, key: string) => self.#getNow(key))
    twin(
      SimpleCache.prototype.set,
      (self: SimpleCache, key: string, value: unknown, timeout: number | undefined) =>
        self.#setNow(key, value, timeout),
    )
    twin(SimpleCache.prototype.getMany, (self: SimpleCache, keys: readonly string[]) =>
      self.#getManyNow(keys),
    )
  }

  async get(key: string): Promise<unknown> {
    return this.#getNow(key)
  }

  /**
   * `get` for the view engine's hits (see {@link PEEK}): synchronous, and
   * the entry's own copy rather than a new one. Internal.
   * @internal
   */
  [PEEK](key: string): unknown {
    const slot = this.#live(key)
    if (slot === NONE) return undefined
    this.#mark(slot)
    const stored = this.#values[slot]
    return typeof stored === 'object' && stored instanceof Encoded
      ? this.serializer.loads(stored.bytes)
      : stored
  }

  async set(key: string, value: unknown, timeout?: number): Promise<boolean> {
    return this.#setNow(key, value, timeout)
  }

  async add(key: string, value: unknown, timeout?: number): Promise<boolean> {
    if (this.#live(key) !== NONE) return false
    return this.#setNow(key, value, timeout)
  }

  async delete(key: string): Promise<boolean> {
    const slot = this.#slots.get(key)
    if (slot === undefined) return false
    this.#remove(key, slot)
    return true
  }

  async has(key: string): Promise<boolean> {
    return this.#live(key) !== NONE
  }

  async clear(): Promise<boolean> {
    this.#reset()
    return true
  }

  /**
   * The keys of live entries starting with `prefix`, from a snapshot taken
   * when iteration starts (entries written meanwhile may be missed). Expired
   * entries met on the way are dropped, as a read would.
   */
  async *keys(prefix: string): AsyncIterable<string> {
    const snapshot: string[] = []
    for (let slot = this.#head; slot !== NONE; slot = this.#next[slot] as number) {
      snapshot.push(this.#keys[slot] as string)
    }
    for (const key of snapshot) {
      if (key.startsWith(prefix) && this.#live(key) !== NONE) yield key
    }
  }

  /** `entries` (live ones) and `threshold`. */
  async stats(): Promise<Record<string, string | number>> {
    const now = this.#clock()
    let entries = 0
    for (let slot = this.#head; slot !== NONE; slot = this.#next[slot] as number) {
      const expires = this.#expires[slot] as number
      if (expires === 0 || expires > now) entries++
    }
    return { entries, threshold: this.threshold }
  }

  override async getMany(keys: readonly string[]): Promise<unknown[]> {
    return this.#getManyNow(keys)
  }

  /** `getMany`, synchronously (its {@link SYNC} twin). Unlike `get`, it leaves the read marks alone. */
  #getManyNow(keys: readonly string[]): unknown[] {
    return keys.map((key) => {
      const slot = this.#live(key)
      return slot === NONE ? undefined : this.#decode(this.#values[slot])
    })
  }

  override async setMany(
    entries: readonly (readonly [string, unknown])[],
    timeout?: number,
  ): Promise<string[]> {
    const expires = this.#expiry(timeout)
    // Encode everything first: one unstorable value leaves the cache untouched.
    const stored = entries.map(([, value]) => this.#encode(value))
    for (let i = 0; i < entries.length; i++) {
      this.#put((entries[i] as readonly [string, unknown])[0], stored[i], expires)
    }
    return entries.map(([key]) => key)
  }

  override async deleteMany(keys: readonly string[]): Promise<string[]> {
    for (const key of keys) {
      const slot = this.#slots.get(key)
      if (slot !== undefined) this.#remove(key, slot)
    }
    return [...keys]
  }

  /** Atomic within the process. Keeps an existing counter's expiry; a new one gets the default timeout. */
  override async inc(key: string, delta: number): Promise<number> {
    const slot = this.#live(key)
    const next =
      integerOf(key, slot === NONE ? undefined : this.#decode(this.#values[slot])) + delta
    // The slot is still key's unless decoding (a custom serializer) changed the cache.
    if (slot !== NONE && this.#keys[slot] === key) this.#values[slot] = next
    else this.#put(key, next, this.#expiry(undefined))
    return next
  }
}
