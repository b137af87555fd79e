/**
 * The options of `getOrSet` (and `memoize`, `cached`) and the policy they
 * parse into: grace, its back-off after a failure, and the lock.
 */
import { parseTimeout, type Timeout } from '../duration.js'

/** How a distributed lock behaves (`lock: true` takes every default). */
export interface LockOptions {
  /**
   * How long a lock lives if its holder never releases it (it crashed, or the
   * factory hangs): seconds or a duration string.
   * @default 10
   */
  ttl?: Timeout
  /**
   * How long another process waits for the holder's value before it runs
   * the factory itself: seconds or a duration string.
   * @default 5
   */
  wait?: Timeout
}

/** Options of `cache.getOrSet()`; `memoize` and `cached` take the same ones. */
export interface GetOrSetOptions {
  /** Seconds (or a duration string) the value is fresh; `undefined` = the default timeout, `0` = forever. */
  timeout?: Timeout
  /**
   * Seconds (or a duration string) the value is kept after it stops being
   * fresh. In that time a read returns it at once while one background call
   * of the factory refreshes it (stale-while-revalidate); if the factory
   * fails, the stale value keeps being served.
   * @default 0
   */
  grace?: Timeout
  /**
   * After the factory failed while a stale value was served, how long to
   * wait before calling it again: seconds or a duration string.
   * @default 10
   */
  graceBackoff?: Timeout
  /**
   * Tags of the entry: `cache.invalidateTags(tags)` makes it a miss. A tag is
   * a non-empty string of at most 200 characters without control characters.
   */
  tags?: readonly string[]
  /**
   * A lock through the backend (Redis `SET NX PX` with a token; `add()`
   * elsewhere) so that one process in the whole deployment runs the factory
   * for a missing key; the others wait for its value, at most
   * {@link LockOptions.wait}, then run it themselves.
   * @default false
   */
  lock?: boolean | LockOptions
  /**
   * The call's name in `cache.stats()` and metrics (hits, misses, stale).
   * @default the key up to its first `:` (`user:42` → `user`)
   */
  name?: string
}

/** The parsed grace and lock options, shared by every call of one memoized function or route. @internal */
export interface Policy {
  /** Seconds kept after freshness ends. */
  readonly grace: number
  /** Milliseconds without factory calls after a failure while serving stale. */
  readonly backoffMs: number
  /** Lock lifetime and wait, in milliseconds; `undefined` = no lock. */
  readonly lock: { readonly ttlMs: number; readonly waitMs: number } | undefined
}

/** The policy of calls without grace or lock. @internal */
export const PLAIN_POLICY: Policy = Object.freeze({ grace: 0, backoffMs: 10_000, lock: undefined })

/** Checks `grace`, `graceBackoff` and `lock`; throws a TypeError naming `what`'s option. @internal */
export function policyOf(
  options: Pick<GetOrSetOptions, 'grace' | 'graceBackoff' | 'lock'>,
  what: string,
): Policy {
  const grace = parseTimeout(options.grace, `${what} grace`) ?? 0
  const backoff = parseTimeout(options.graceBackoff, `${what} graceBackoff`) ?? 10
  const lock = options.lock
  if (
    lock !== undefined &&
    typeof lock !== 'boolean' &&
    (typeof lock !== 'object' || lock === null)
  ) {
    throw new TypeError(`${what}: lock must be true, false or { ttl, wait }`)
  }
  let resolved: Policy['lock']
  if (lock === true || (typeof lock === 'object' && lock !== null)) {
    const o: LockOptions = lock === true ? {} : lock
    for (const k of Object.keys(o)) {
      if (k !== 'ttl' && k !== 'wait')
        throw new TypeError(`${what}: unknown lock option ${JSON.stringify(k)}`)
    }
    const ttl = parseTimeout(o.ttl, `${what} lock.ttl`) ?? 10
    const wait = parseTimeout(o.wait, `${what} lock.wait`) ?? 5
    if (!(ttl > 0))
      throw new TypeError(`${what}: lock.ttl must be more than 0 (a lock must expire)`)
    resolved = { ttlMs: Math.ceil(ttl * 1000), waitMs: Math.ceil(wait * 1000) }
  }
  if (grace === 0 && resolved === undefined && backoff === 10) return PLAIN_POLICY
  return { grace, backoffMs: Math.ceil(backoff * 1000), lock: resolved }
}
