/**
 * The envelope of entries that need more than a value: a freshness deadline
 * inside a longer backend lifetime (grace), or tag tokens. A plain object
 * with a marker key, so every serializer and backend can hold it; entries
 * without grace or tags are stored as the bare value, as Flask-Caching does.
 */
import type { CacheBackend } from '../backend.js'
import { tagsHold } from './tags.js'

/** The marker key of an {@link Entry}. */
export const ENTRY_MARK = '\u0000cachette'

/** A stored value with its freshness deadline and tag snapshot. @internal */
export interface Entry {
  readonly [ENTRY_MARK]: 1
  /** The value. */
  readonly v: unknown
  /** Epoch milliseconds until which the value is fresh; `0` = always fresh. */
  readonly f: number
  /** `[tag, token]` pairs: the tags' tokens when the value was computed. */
  readonly t?: readonly (readonly [string, string])[]
}

/** Whether a backend value is an {@link Entry}. */
export function isEntry(value: unknown): value is Entry {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Record<string, unknown>)[ENTRY_MARK] === 1
  )
}

/** How a stored value reads now. */
export type Freshness = 'fresh' | 'stale' | 'gone'

/**
 * The value of a backend read and whether it is fresh, stale (inside its
 * grace period) or gone (expired, or a tag was invalidated: never served,
 * even in grace). A bare value (not an {@link Entry}) is fresh.
 */
export async function readEntry(
  backend: CacheBackend,
  raw: unknown,
): Promise<{ value: unknown; freshness: Freshness }> {
  if (!isEntry(raw)) return { value: raw, freshness: raw === undefined ? 'gone' : 'fresh' }
  if (!(await tagsHold(backend, raw.t))) return { value: undefined, freshness: 'gone' }
  return { value: raw.v, freshness: raw.f === 0 || Date.now() < raw.f ? 'fresh' : 'stale' }
}

/**
 * What a plain read (`cache.get`) returns for a backend value: the value of
 * a fresh entry, `undefined` for a stale or invalidated one.
 */
export async function freshValue(backend: CacheBackend, raw: unknown): Promise<unknown> {
  if (!isEntry(raw)) return raw
  const { value, freshness } = await readEntry(backend, raw)
  return freshness === 'fresh' ? value : undefined
}

/**
 * The value to store and the backend timeout for a value computed now:
 * an {@link Entry} when there is grace or tags, else the bare value.
 */
export function entryFor(
  value: unknown,
  timeout: number | undefined,
  defaultTimeout: number,
  grace: number,
  snapshot: readonly (readonly [string, string])[] | undefined,
): { stored: unknown; ttl: number | undefined } {
  const tagged = snapshot !== undefined && snapshot.length > 0
  if (grace === 0 && !tagged) return { stored: value, ttl: timeout }
  const fresh = timeout ?? defaultTimeout
  const entry: Record<string, unknown> = {
    [ENTRY_MARK]: 1,
    v: value,
    f: fresh === 0 ? 0 : Date.now() + fresh * 1000,
  }
  if (tagged) entry.t = snapshot
  return { stored: entry, ttl: fresh === 0 ? 0 : fresh + grace }
}
