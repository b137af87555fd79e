/**
 * The invalidation bus of {@link TieredCache}: how processes that each keep an
 * in-process first tier tell each other to forget entries.
 *
 * Messages only ever say "drop these keys" or "drop everything", never carry
 * values (bentocache's design): a value pushed to every process costs
 * bandwidth and memory in processes that may never read it, and a dropped
 * entry is simply read again from the shared second tier on next use.
 *
 * A bus carries messages for many caches at once; each cache listens on its
 * own channel (derived from its key prefix), and recognises and skips its own
 * messages by the `source` id it stamps on them.
 * @packageDocumentation
 */
import type { CacheBackend } from './backend.js'
import { BackendError } from './errors.js'
import type { Logger } from './log.js'

/** "Forget these keys" from the cache instance `source`. */
export interface BusDeleteMessage {
  readonly type: 'delete'
  /** The cache's keys (as given to the cache, without any backend prefix). */
  readonly keys: readonly string[]
  /** The random id of the sending cache instance. */
  readonly source: string
}

/** "Forget everything" from the cache instance `source`. */
export interface BusClearMessage {
  readonly type: 'clear'
  /** The random id of the sending cache instance. */
  readonly source: string
}

/** An invalidation message. Never a value. */
export type BusMessage = BusDeleteMessage | BusClearMessage

/**
 * What a subscriber is told. `up` and `down` carry the connection state: a
 * cache fills its first tier only while its subscription is known to be
 * active, and forgets its whole first tier when it comes back, because
 * messages sent meanwhile were lost.
 */
export interface BusListener {
  /** A message from another (or the same) cache instance. Must not throw. */
  message(message: BusMessage): void
  /**
   * The subscription is active: from now on every message published on the
   * channel is delivered. Called once after subscribing and again after each
   * {@link BusListener.down}. A transport without a connection (a
   * {@link MemoryBus}) calls it right after subscribing.
   */
  up(): void
  /** The subscription is broken: messages may be lost until the next {@link BusListener.up}. */
  down(): void
}

/** Returned by {@link Bus.subscribe}. */
export interface BusSubscription {
  /** Stops the deliveries to this listener. */
  unsubscribe(): Promise<void>
}

/**
 * A publish/subscribe transport for invalidation messages. Implement it to
 * use another transport (NATS, Postgres `LISTEN`, a cloud pub/sub): publish
 * must settle (reject when the message could not be handed over; the cache
 * keeps it for a retry), and the listener's `up`/`down` must follow the
 * subscription's real state, or the first tiers may serve stale entries.
 * {@link encodeBusMessage}/{@link decodeBusMessage} give a text format.
 */
export interface Bus {
  /** Sends `message` on `channel`. Rejects if it could not be sent. */
  publish(channel: string, message: BusMessage): Promise<void>
  /**
   * Delivers the messages of `channel` to `listener` until unsubscribed.
   * Resolves once registered (not necessarily connected: see
   * {@link BusListener.up}).
   */
  subscribe(channel: string, listener: BusListener): Promise<BusSubscription>
  /** Releases the bus's connections. */
  close?(): Promise<void>
}

/** What a {@link BusFactory} is given besides the second tier. */
export interface BusFactoryContext {
  /** The cache's logger, for the bus's connection errors. */
  readonly logger: Logger
}

/**
 * Builds a bus for a `TieredCache` from its second tier (e.g. `redisBus()`
 * reuses a Redis second tier's connection settings). A bus built this way is
 * owned by the cache and closed with it.
 */
export type BusFactory = (second: CacheBackend, context: BusFactoryContext) => Bus | Promise<Bus>

const FORMAT_VERSION = 1

/**
 * A message as compact JSON text: `{"v":1,"s":source,"t":"d","k":[keys]}` or
 * `{"v":1,"s":source,"t":"c"}`. JSON is safe to parse from an untrusted
 * channel (no code runs) and keeps any key intact.
 */
export function encodeBusMessage(message: BusMessage): string {
  return message.type === 'clear'
    ? JSON.stringify({ v: FORMAT_VERSION, s: message.source, t: 'c' })
    : JSON.stringify({ v: FORMAT_VERSION, s: message.source, t: 'd', k: message.keys })
}

/**
 * Parses {@link encodeBusMessage}'s text; `undefined` for anything else (a
 * message of another format or version, or garbage on the channel).
 */
export function decodeBusMessage(text: string | Buffer): BusMessage | undefined {
  let raw: unknown
  try {
    raw = JSON.parse(typeof text === 'string' ? text : text.toString('utf8'))
  } catch {
    return undefined
  }
  if (typeof raw !== 'object' || raw === null) return undefined
  const m = raw as { v?: unknown; s?: unknown; t?: unknown; k?: unknown }
  if (m.v !== FORMAT_VERSION || typeof m.s !== 'string') return undefined
  if (m.t === 'c') return { type: 'clear', source: m.s }
  if (m.t === 'd' && Array.isArray(m.k) && m.k.every((k) => typeof k === 'string')) {
    return { type: 'delete', keys: m.k as string[], source: m.s }
  }
  return undefined
}

/**
 * A bus inside one process: several caches sharing it see each other's
 * invalidations synchronously, during `publish`. For tests, docs, and apps
 * that run several caches over one shared store in one process.
 *
 * {@link MemoryBus.disconnect} and {@link MemoryBus.reconnect} simulate an
 * outage: listeners are told `down`, publishes reject, and `reconnect` tells
 * them `up` again.
 */
export class MemoryBus implements Bus {
  readonly #channels = new Map<string, Set<BusListener>>()
  #connected = true

  /** Whether the bus is connected (see {@link MemoryBus.disconnect}). */
  get connected(): boolean {
    return this.#connected
  }

  /** Delivers `message` to the channel's listeners now (a frozen copy); rejects while disconnected. */
  async publish(channel: string, message: BusMessage): Promise<void> {
    if (!this.#connected) {
      throw new BackendError(
        'ERR_CACHETTE_BACKEND_UNAVAILABLE',
        'MemoryBus: disconnected; the message was not sent',
      )
    }
    const listeners = this.#channels.get(channel)
    if (listeners === undefined) return
    // A frozen copy: listeners cannot change what the others receive.
    const copy: BusMessage = Object.freeze(
      message.type === 'clear'
        ? { type: 'clear', source: message.source }
        : { type: 'delete', keys: Object.freeze([...message.keys]), source: message.source },
    )
    for (const listener of [...listeners]) {
      try {
        listener.message(copy)
      } catch {
        // A listener's failure is its own; the others still get the message.
      }
    }
  }

  /** Registers `listener`; it is told `up` at once unless the bus is disconnected. */
  async subscribe(channel: string, listener: BusListener): Promise<BusSubscription> {
    let listeners = this.#channels.get(channel)
    if (listeners === undefined) {
      listeners = new Set()
      this.#channels.set(channel, listeners)
    }
    listeners.add(listener)
    if (this.#connected) listener.up()
    return {
      unsubscribe: async () => {
        const set = this.#channels.get(channel)
        set?.delete(listener)
        if (set?.size === 0) this.#channels.delete(channel)
      },
    }
  }

  /** Simulates a lost connection: listeners get `down`, publishes reject. */
  disconnect(): void {
    if (!this.#connected) return
    this.#connected = false
    for (const listener of this.#all()) listener.down()
  }

  /** Ends a {@link MemoryBus.disconnect}: listeners get `up`. */
  reconnect(): void {
    if (this.#connected) return
    this.#connected = true
    for (const listener of this.#all()) listener.up()
  }

  #all(): BusListener[] {
    return [...this.#channels.values()].flatMap((set) => [...set])
  }

  /** Forgets every listener. */
  async close(): Promise<void> {
    this.#channels.clear()
  }
}
