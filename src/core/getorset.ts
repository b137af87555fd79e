/**
 * The compute-on-miss engine behind `cache.getOrSet`, `memoize` and the
 * stampede protection of cached views: single flight per key, an optional
 * distributed lock, grace periods with background refresh (stale while
 * revalidate) and tag invalidation.
 *
 * Entries that need more than a value (a freshness deadline inside a longer
 * backend lifetime, or tags) are stored as an {@link Entry}: a plain object
 * with a marker key, so every serializer and backend can hold it. Entries
 * without grace or tags are stored as the bare value, as Flask-Caching does.
 *
 * This module is the entry; one job per module in core/getorset/:
 * `entry.ts` (the envelope, freshness), `policy.ts` (options, grace and lock
 * policy), `tokens.ts` (random tokens in the backend), `tags.ts` (tag
 * invalidation), `lock.ts` (the distributed lock) and `flight.ts` (single
 * flight and the computation).
 */
export {
  ENTRY_MARK,
  type Entry,
  entryFor,
  type Freshness,
  freshValue,
  isEntry,
  readEntry,
} from './getorset/entry.js'
export { type Computation, getOrCompute } from './getorset/flight.js'
export { type Held, lockOrWait, releaseLock, takeLock } from './getorset/lock.js'
export {
  type GetOrSetOptions,
  type LockOptions,
  PLAIN_POLICY,
  type Policy,
  policyOf,
} from './getorset/policy.js'
export {
  checkTags,
  invalidateTags,
  resolveTags,
  snapshotTags,
  tagKey,
  tagsHold,
} from './getorset/tags.js'
export { newToken, tokensFor } from './getorset/tokens.js'
