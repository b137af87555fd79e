/**
 * Responses that vary on request headers (their `Vary`, `Accept-Encoding`
 * aside, and the route's `varyHeaders`): the marker filed at the base key,
 * the variant keys it leads to and the selecting values they are made for.
 */
import { resolveHashMethod } from '../hash.js'
import { headerValue, isToken, parseVary } from '../headers.js'
import type { RequestView, StoredView } from './types.js'

/**
 * What a view stores at its base key when its response varies on request
 * headers: the names, and a generation that the variants' keys carry (a new
 * marker after `deleteCached` makes the old variants unreachable).
 */
export interface VaryMarker {
  readonly cachetteVary: readonly string[]
  readonly gen: string
}

/** `value` as a {@link VaryMarker}, if it is one (names are tokens, at most {@link MAX_VARY_NAMES}). */
export function asVaryMarker(value: unknown): VaryMarker | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const m = value as Partial<VaryMarker>
  const names = m.cachetteVary
  if (!Array.isArray(names) || typeof m.gen !== 'string' || names.length > MAX_VARY_NAMES) {
    return undefined
  }
  return names.every((n) => typeof n === 'string' && isToken(n)) ? (m as VaryMarker) : undefined
}

/** The most request headers one response may vary on and still be stored. */
export const MAX_VARY_NAMES = 16

/** A selecting header's value as compared: surrounding and repeated white space folded. */
function normaliseHeader(value: string | undefined): string {
  return value === undefined ? '' : value.trim().replace(/[ \t]+/g, ' ')
}

/** The `[name, normalised value]` pairs of `names` on a request. */
export function selecting(
  names: readonly string[],
  view: Pick<RequestView, 'header'>,
): [string, string][] {
  return names.map((n) => [n, normaliseHeader(view.header(n))])
}

/** A short digest of header values (names given in lower case), for keys. */
export function headerDigest(names: readonly string[], view: Pick<RequestView, 'header'>): string {
  const text = selecting(names, view)
    .map(([n, v]) => `${n}:${v}`)
    .join('\n')
  return sha256(text).toString('hex', 0, 16)
}

/** SHA-256, the one-shot form where Node has it (hash.ts). */
const sha256 = resolveHashMethod('sha256')

/** The base key of the variant of `key` that a request selects under `marker`. */
export function variantBase(
  key: string,
  marker: VaryMarker,
  view: Pick<RequestView, 'header'>,
): string {
  return `${key}~${marker.gen}~${headerDigest(marker.cachetteVary, view)}`
}

/** Whether `entry`, a variant, was made for a request with `view`'s values of the headers it varied on. */
export function variantMatches(entry: StoredView, view: Pick<RequestView, 'header'>): boolean {
  const vary = entry.vary
  if (vary === undefined) return false
  for (const [n, v] of vary) if (normaliseHeader(view.header(n)) !== v) return false
  return true
}

/**
 * The request headers a response varies on, from every `Vary` on it as it
 * left (outer middleware's too), lower case, sorted; `Accept-Encoding` aside

/**
 * The request headers a response varies on, from every `Vary` on it as it
 * left (outer middleware's too), lower case, sorted; `Accept-Encoding` aside
 * (encoded variants handle it). `null` for `Vary: *` or too many names.
 */
export function varyNames(headers: readonly (readonly [string, string])[]): string[] | null {
  const names: string[] = []
  for (const n of parseVary(headerValue(headers, 'vary'))) {
    if (n === '*') return null
    if (n !== 'accept-encoding') names.push(n)
  }
  if (names.length > MAX_VARY_NAMES) return null
  return names.sort()
}
