/**
 * Internal: `TieredCache`'s link to its invalidation bus. It subscribes to
 * the cache's channel, drops what other processes invalidated from the
 * first tier, tracks whether the subscription is up (the first tier is
 * filled only then, and served for at most `busDownTimeout` while down),
 * and publishes this process's invalidations, with a retry queue for those
 * that could not be sent.
 */
import type { CacheBackend } from '../../core/backend.js'
import type { Bus, BusFactory, BusListener, BusMessage, BusSubscription } from '../../core/bus.js'
import { ConfigError } from '../../core/errors.js'
import type { ErrorReporter, Logger } from '../../core/log.js'
import type { SimpleCache } from '../memory/index.js'
import type { Generations } from './generations.js'

/** How often failed publishes are retried while some are pending, in ms. */
const RETRY_EVERY_MS = 1000

/** Whether `value` has what a {@link Bus} needs. */
export function isBus(value: unknown): value is Bus {
  const b = value as Partial<Bus> | null
  return (
    typeof b === 'object' &&
    b !== null &&
    typeof b.publish === 'function' &&
    typeof b.subscribe === 'function'
  )
}

/** What a {@link BusLink} works with: the cache's settings and state it shares. */
export interface BusLinkOptions {
  /** The `bus` option: a Bus (shared, never closed here) or a factory (owned: closed with the link). */
  readonly bus: Bus | BusFactory
  /** The second tier, handed to a bus factory. */
  readonly second: CacheBackend
  /** The full channel name (`cachette:tiered:...`). */
  readonly channel: string
  /** The cache's random id: its own messages carry it and are skipped. */
  readonly instanceId: string
  /** Milliseconds the first tier is served while the bus is down. */
  readonly downMs: number
  /** The most keys of failed publishes kept for a retry. */
  readonly retryLimit: number
  /** The first tier, emptied or pruned as messages and bus states say. */
  readonly first: SimpleCache
  /** The generation counters, bumped by received invalidations and bus state changes. */
  readonly generations: Generations
  readonly logger: Logger
  /** Rate-limited logging of failed publishes. */
  readonly reporter: ErrorReporter
}

/** One TieredCache's side of its bus. */
export class BusLink {
  readonly #channel: string
  readonly #instanceId: string
  readonly #downMs: number
  readonly #retryLimit: number
  readonly #first: SimpleCache
  readonly #generations: Generations
  readonly #logger: Logger
  readonly #reporter: ErrorReporter
  /** Set once the bus is built (a bus factory may be async). */
  #bus: Bus | undefined
  readonly #busOwned: boolean
  /** Settles once the bus is built and subscribed to (or failed to be). */
  readonly #ready: Promise<void>
  #subscription: BusSubscription | undefined
  /** Whether the first tier may be filled: the subscription is active. */
  #up = false
  /** When the bus went down (performance.now() ms), while `#up` is false. */
  #downSince: number
  /** Whether the bus was ever up (the first `up` is not a reconnection). */
  #everUp = false
  /** Keys of failed publishes, waiting for a retry. */
  readonly #pendingKeys = new Set<string>()
  /** A failed (or overflowed) clear, waiting for a retry; it covers every pending key. */
  #pendingClear = false
  #retryTimer: NodeJS.Timeout | undefined
  #flushing: Promise<void> | undefined
  #inflight = 0
  #idleWaiters: (() => void)[] = []
  #closed = false

  /**
   * Builds the bus (through its factory) and subscribes.
   * @throws {ConfigError} naming `CACHE_OPTIONS` when `bus` is neither a Bus nor a function;
   * whatever a bus factory throws.
   */
  constructor(options: BusLinkOptions) {
    this.#channel = options.channel
    this.#instanceId = options.instanceId
    this.#downMs = options.downMs
    this.#retryLimit = options.retryLimit
    this.#first = options.first
    this.#generations = options.generations
    this.#logger = options.logger
    this.#reporter = options.reporter
    this.#downSince = performance.now()
    const spec = options.bus
    if (typeof spec !== 'function' && !isBus(spec)) {
      throw new ConfigError(
        'CACHE_OPTIONS',
        'bus must be a Bus (publish, subscribe) or a function returning one, such as redisBus()',
      )
    }
    this.#busOwned = typeof spec === 'function'
    const made = typeof spec === 'function' ? spec(options.second, { logger: this.#logger }) : spec
    let ready: Promise<void>
    if (isBus(made)) {
      this.#bus = made
      ready = this.#subscribe(made)
    } else {
      ready = Promise.resolve(made).then((bus) => {
        if (!isBus(bus)) throw new TypeError('the bus factory did not return a Bus')
        this.#bus = bus
        return this.#subscribe(bus)
      })
    }
    this.#ready = ready.catch((error: unknown) => {
      this.#logger.error(
        `TieredCache: the invalidation bus could not be set up; the first tier stays unused (every read goes to the second tier)`,
        error,
      )
    })
  }

  /** Whether the subscription is active: the first tier may be filled only then. */
  get up(): boolean {
    return this.#up
  }

  async #subscribe(bus: Bus): Promise<void> {
    const listener: BusListener = {
      message: (message) => this.#receive(message),
      up: () => this.#onUp(),
      down: () => this.#onDown(),
    }
    this.#subscription = await bus.subscribe(this.#channel, listener)
    if (this.#closed) await this.#subscription.unsubscribe()
    // Publishes that failed (or came) before the bus existed.
    if (this.#pendingKeys.size > 0 || this.#pendingClear) void this.#flush()
  }

  #receive(message: BusMessage): void {
    if (message.source === this.#instanceId) return
    if (message.type === 'clear') {
      this.#generations.bumpAll()
      void this.#first.clear()
      return
    }
    for (const key of message.keys) {
      this.#generations.bump(key)
      void this.#first.delete(key)
    }
  }

  #onDown(): void {
    if (!this.#up) return
    this.#up = false
    this.#downSince = performance.now()
    this.#generations.bumpAll()
    this.#logger.warn(
      `TieredCache: the invalidation bus is down; the first tier is served for at most ${this.#downMs / 1000} s and not filled until it is back [CACHETTE_BUS_DOWN]`,
    )
  }

  #onUp(): void {
    // Messages may have been missed while down (or before the first subscription): forget everything.
    this.#generations.bumpAll()
    void this.#first.clear()
    const reconnected = this.#everUp
    this.#everUp = true
    if (!this.#up) {
      this.#up = true
      if (reconnected) {
        this.#logger.warn(
          'TieredCache: the invalidation bus is back; the first tier was emptied (messages may have been missed) [CACHETTE_BUS_UP]',
        )
      }
    }
    if (this.#pendingKeys.size > 0 || this.#pendingClear) void this.#flush()
  }

  /** Whether the first tier may be read now: the bus is up, or has been down for at most `busDownTimeout`. */
  readable(): boolean {
    if (this.#up) return true
    if (performance.now() - this.#downSince <= this.#downMs) return true
    // Down for too long: other processes' changes may have been missed.
    if (this.#first.size > 0) void this.#first.clear()
    return false
  }

  /** Tells the other processes to drop `keys` (not awaited: failures go to the retry queue). */
  publishKeys(keys: readonly string[]): void {
    if (keys.length === 0) return
    // A copy: the caller's array (deleteMany's) may change before a queued message goes out.
    this.#send({ type: 'delete', keys: keys.slice(), source: this.#instanceId })
  }

  /** Tells the other processes to empty their first tier (not awaited, as {@link BusLink.publishKeys}). */
  publishClear(): void {
    this.#send({ type: 'clear', source: this.#instanceId })
  }

  #send(message: BusMessage): void {
    const bus = this.#bus
    if (bus === undefined || this.#pendingClear || this.#pendingKeys.size > 0) {
      // Not built yet, or earlier messages are waiting: queue behind them.
      this.#enqueue(message)
      return
    }
    this.#inflight++
    let sent: Promise<void>
    try {
      sent = bus.publish(this.#channel, message)
    } catch (error) {
      sent = Promise.reject(error)
    }
    sent.then(
      () => this.#settled(),
      (error: unknown) => {
        this.#reporter.report('TieredCache bus publish', error, 'kept for a retry')
        this.#enqueue(message)
        this.#settled()
      },
    )
  }

  #settled(): void {
    if (--this.#inflight > 0) return
    for (const wake of this.#idleWaiters.splice(0)) wake()
  }

  #enqueue(message: BusMessage): void {
    if (message.type === 'clear') {
      this.#pendingKeys.clear()
      this.#pendingClear = true
    } else if (!this.#pendingClear) {
      for (const key of message.keys) this.#pendingKeys.add(key)
      if (this.#pendingKeys.size > this.#retryLimit) {
        this.#logger.warn(
          `TieredCache: more than ${this.#retryLimit} invalidated keys wait for the bus; they are replaced by one "clear" for the other processes [CACHETTE_BUS_QUEUE_FULL]`,
        )
        this.#pendingKeys.clear()
        this.#pendingClear = true
      }
    }
    if (this.#retryTimer === undefined && !this.#closed) {
      this.#retryTimer = setInterval(() => void this.#flush(), RETRY_EVERY_MS)
      this.#retryTimer.unref()
    }
  }

  /** Sends what waits in the retry queue (one message); stops the retry timer once it is empty. */
  #flush(): Promise<void> {
    this.#flushing ??= this.#flushOnce().finally(() => {
      this.#flushing = undefined
    })
    return this.#flushing
  }

  async #flushOnce(): Promise<void> {
    const bus = this.#bus
    if (bus === undefined) return
    if (!this.#pendingClear && this.#pendingKeys.size === 0) {
      this.#stopRetry()
      return
    }
    const message: BusMessage = this.#pendingClear
      ? { type: 'clear', source: this.#instanceId }
      : { type: 'delete', keys: [...this.#pendingKeys], source: this.#instanceId }
    this.#pendingClear = false
    this.#pendingKeys.clear()
    try {
      await bus.publish(this.#channel, message)
    } catch {
      // Still down: back in the queue (merged with what came meanwhile); the timer retries.
      this.#enqueue(message)
      return
    }
    if (!this.#pendingClear && this.#pendingKeys.size === 0) this.#stopRetry()
  }

  #stopRetry(): void {
    if (this.#retryTimer !== undefined) clearInterval(this.#retryTimer)
    this.#retryTimer = undefined
  }

  /**
   * Resolves once the invalidation messages of the writes made so far have
   * been handed to the bus (or put in the retry queue because they could not
   * be), and one attempt was made to send the retry queue. For tests and
   * graceful shutdowns; writes never wait for their messages.
   */
  async flush(): Promise<void> {
    await this.#ready
    while (this.#inflight > 0) {
      await new Promise<void>((resolve) => this.#idleWaiters.push(resolve))
    }
    // Twice: the first may be a retry that was already under way (and fails).
    if (this.#pendingClear || this.#pendingKeys.size > 0) await this.#flush()
    if (this.#pendingClear || this.#pendingKeys.size > 0) await this.#flush()
  }

  /**
   * Sends what the bus still owes (at most one attempt for the retry
   * queue), unsubscribes, and closes the bus if the link built it.
   */
  async close(): Promise<void> {
    this.#closed = true
    this.#stopRetry()
    await this.flush().catch(() => {})
    this.#stopRetry()
    await this.#subscription?.unsubscribe().catch(() => {})
    if (this.#busOwned) await this.#bus?.close?.().catch(() => {})
  }
}
