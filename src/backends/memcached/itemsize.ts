/**
 * Internal: each server's item size limit, so that a value that does not fit
 * is refused before it is sent. memcached drops the old item when a write is
 * too large; refused here, the old value survives.
 */
import { type Logger, warnOnce } from '../../core/log.js'
import type { ConnectionSettings, ServerAddress } from './connection.js'
import { MAX_KEY } from './keys.js'
import { serverStats } from './stats.js'

/**
 * Room kept beside a value under the item size limit: the longest key
 * (250 bytes) and memcached's item header (about 64 bytes), with margin.
 */
const ITEM_OVERHEAD = MAX_KEY + 128

/** The item size limits of one cache's servers, asked once per server. */
export class ItemLimits {
  readonly #addresses: readonly ServerAddress[]
  readonly #settings: ConnectionSettings
  readonly #logger: Logger
  readonly #name: string
  /** Each server's `item_size_max` once known (`null`: it does not say), or the pending query. */
  readonly #limits: (number | null | Promise<number | null> | undefined)[]
  /** When each server's item size limit may be asked again after a failed query (ms since the epoch). */
  readonly #retryAt: number[]

  constructor(
    addresses: readonly ServerAddress[],
    settings: ConnectionSettings,
    logger: Logger,
    name: string,
  ) {
    this.#addresses = addresses
    this.#settings = settings
    this.#logger = logger
    this.#name = name
    this.#limits = addresses.map(() => undefined)
    this.#retryAt = addresses.map(() => 0)
  }

  /**
   * The server's item size limit (`stats settings` → `item_size_max`), asked
   * once per server over a short-lived connection; `null` when the server
   * does not tell (then its answer to the write decides). A failed query is
   * asked again once `maxRetryDelay` has passed, not on every write: a
   * server that is down or refuses `stats` costs no extra connection per set.
   */
  #limit(server: number): number | null | Promise<number | null> {
    const known = this.#limits[server]
    if (known !== undefined) return known
    if (Date.now() < (this.#retryAt[server] as number)) return null
    const pending = serverStats(
      this.#addresses[server] as ServerAddress,
      this.#settings,
      'settings',
    )
      .then((figures) => {
        const limit = Number(figures.get('item_size_max'))
        const value = Number.isSafeInteger(limit) && limit > 0 ? limit : null
        this.#limits[server] = value
        return value
      })
      .catch(() => {
        this.#limits[server] = undefined
        this.#retryAt[server] = Date.now() + this.#settings.maxRetryDelay
        return null
      })
    this.#limits[server] = pending
    return pending
  }

  /**
   * Whether `bytes` of value fit the server's item size limit, with room for
   * the longest key and memcached's item header. Checked before sending,
   * because memcached drops the old item when a write is too large: a value
   * that does not fit is refused here (warned once) and the old value survives.
   */
  async fits(server: number, key: string, bytes: number): Promise<boolean> {
    const limit = await this.#limit(server)
    if (limit === null || bytes + ITEM_OVERHEAD <= limit) return true
    this.tooLarge(key, bytes)
    return false
  }

  /** Warns (once) that a value of `bytes` was not stored at `key` for its size. */
  tooLarge(key: string, bytes: number): void {
    warnOnce(
      this.#logger,
      'CACHETTE_MEMCACHED_TOO_LARGE',
      `${this.#name}: a value of ${bytes} bytes is over the server's item size limit and was not stored (${JSON.stringify(key)}); the previous value is kept; SpreadSASLMemcachedCache stores large values as chunks, or raise memcached's -I`,
    )
  }
}
