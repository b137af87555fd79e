/**
 * The response header helpers every framework adapter offers: `cacheFor`,
 * `cacheControl`, `noStore`, `vary`, as framework-neutral modifiers of a
 * header list. Adapters apply the modifiers a request collected in order,
 * outermost first, so the innermost setting wins (as flask-webcache's
 * decorators).
 */
import { ConfigError } from '../core/errors.js'
import {
  type Directives,
  formatCacheControl,
  formatHttpDate,
  parseCacheControl,
  parseVary,
} from './headers.js'

/** Response headers as a mutable `[name, value]` list. */
export type MutableHeaders = [string, string][]

/** Changes a response's headers just before they are sent. */
export type HeaderModifier = (headers: MutableHeaders, now: number) => void

/** Durations for {@link cacheForModifier}; they add up. */
export interface Duration {
  seconds?: number
  minutes?: number
  hours?: number
  days?: number
  weeks?: number
}

/** Cache-Control directives for {@link cacheControlModifier}: `true` sets, `false` removes, a number sets seconds. */
export type CacheControlDirectives = Record<string, boolean | number | string | undefined>

const KNOWN = new Set([
  'public',
  'private',
  'no-cache',
  'no-store',
  'no-transform',
  'must-revalidate',
  'proxy-revalidate',
  'must-understand',
  'immutable',
  'max-age',
  's-maxage',
  'stale-while-revalidate',
  'stale-if-error',
])
const NUMERIC = new Set(['max-age', 's-maxage', 'stale-while-revalidate', 'stale-if-error'])

/** `maxAge`, `max_age` and `max-age` are the same directive; `sMaxage`/`s_maxage` too. */
function directiveName(key: string): string {
  return key
    .replace(/_/g, '-')
    .replace(/([a-z])([A-Z])/g, '$1-$2')
    .toLowerCase()
    .replace(/^s-max-age$/, 's-maxage')
}

function getHeader(headers: MutableHeaders, name: string): string | undefined {
  const values = headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v)
  return values.length === 0 ? undefined : values.join(', ')
}

function setHeader(headers: MutableHeaders, name: string, value: string | undefined): void {
  const lower = name.toLowerCase()
  const kept = headers.filter(([n]) => n.toLowerCase() !== lower)
  headers.length = 0
  headers.push(...kept)
  if (value !== undefined && value !== '') headers.push([name, value])
}

function updateCacheControl(headers: MutableHeaders, change: (d: Directives) => void): void {
  const d = parseCacheControl(getHeader(headers, 'cache-control'))
  change(d)
  setHeader(headers, 'Cache-Control', formatCacheControl(d))
}

/** Seconds in a {@link Duration}. @throws {ConfigError} for negative or non-numeric parts. */
export function durationSeconds(duration: Duration): number {
  const units: Record<string, number> = {
    seconds: 1,
    minutes: 60,
    hours: 3600,
    days: 86400,
    weeks: 604800,
  }
  let total = 0
  for (const [key, value] of Object.entries(duration)) {
    const unit = units[key]
    if (unit === undefined)
      throw new ConfigError('cacheFor', `unknown duration unit ${JSON.stringify(key)}`)
    if (typeof value !== 'number' || !(value >= 0) || !Number.isFinite(value)) {
      throw new ConfigError(
        'cacheFor',
        `${key} must be a non-negative number, got ${String(value)}`,
      )
    }
    total += value * unit
  }
  return Math.floor(total)
}

/** `Cache-Control: max-age=N` (other directives kept) and `Expires: now + N` (flask-webcache's `cache_for`). */
export function cacheForModifier(duration: Duration): HeaderModifier {
  const seconds = durationSeconds(duration)
  return (headers, now) => {
    updateCacheControl(headers, (d) => {
      d.delete('no-store')
      d.delete('no-cache')
      d.set('max-age', String(seconds))
    })
    setHeader(headers, 'Expires', formatHttpDate(now + seconds * 1000))
  }
}

/**
 * Sets Cache-Control directives (flask-webcache's `cache_control`). Names in
 * kebab, snake or camel case; an unknown directive is a {@link ConfigError}
 * at set-up.
 */
export function cacheControlModifier(directives: CacheControlDirectives): HeaderModifier {
  const changes: [string, string | true | false][] = []
  for (const [key, value] of Object.entries(directives)) {
    if (value === undefined) continue
    const name = directiveName(key)
    if (!KNOWN.has(name)) {
      throw new ConfigError(
        'cacheControl',
        `unknown Cache-Control directive ${JSON.stringify(key)}; known: ${[...KNOWN].join(', ')}`,
      )
    }
    if (NUMERIC.has(name)) {
      if (value === false) changes.push([name, false])
      else if (typeof value === 'number' && value >= 0 && Number.isFinite(value))
        changes.push([name, String(Math.floor(value))])
      else
        throw new ConfigError(
          'cacheControl',
          `${name} must be a number of seconds, got ${String(value)}`,
        )
    } else if (typeof value === 'boolean') changes.push([name, value])
    else if (typeof value === 'string' && (name === 'private' || name === 'no-cache'))
      changes.push([name, value])
    else throw new ConfigError('cacheControl', `${name} takes true or false, got ${String(value)}`)
  }
  return (headers) =>
    updateCacheControl(headers, (d) => {
      for (const [name, value] of changes) {
        if (value === false) d.delete(name)
        else d.set(name, value)
      }
    })
}

/** `Cache-Control: no-store`, replacing any other directive. */
export function noStoreModifier(): HeaderModifier {
  return (headers) => {
    setHeader(headers, 'Cache-Control', 'no-store')
    setHeader(headers, 'Expires', undefined)
  }
}

/** Adds field names to `Vary` (once each, case-insensitively). */
export function varyModifier(...fields: string[]): HeaderModifier {
  for (const f of fields) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(f))
      throw new ConfigError('vary', `not a header field name: ${JSON.stringify(f)}`)
  }
  return (headers) => {
    const current = getHeader(headers, 'vary')
    const names = parseVary(current)
    if (names[0] === '*') return
    const out =
      current === undefined
        ? []
        : current
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
    for (const f of fields) if (!names.includes(f.toLowerCase())) out.push(f)
    setHeader(headers, 'Vary', out.join(', '))
  }
}
