/**
 * The response header helpers every framework adapter offers: `cacheFor`,
 * `cacheControl`, `noStore`, `vary`, as framework-neutral modifiers of a
 * header list, and the table ({@link HeaderHelpers}, {@link headerHelpers})
 * each adapter makes its own helpers from. Adapters apply the modifiers a
 * request collected in order, outermost first, so the innermost setting
 * wins (as flask-webcache's decorators).
 */
import { ConfigError } from '../core/errors.js'
import { headerValue, isToken, splitList } from '../core/headers.js'
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

function setHeader(headers: MutableHeaders, name: string, value: string | undefined): void {
  const lower = name.toLowerCase()
  const kept = headers.filter(([n]) => n.toLowerCase() !== lower)
  headers.length = 0
  headers.push(...kept)
  if (value !== undefined && value !== '') headers.push([name, value])
}

function updateCacheControl(headers: MutableHeaders, change: (d: Directives) => void): void {
  const d = parseCacheControl(headerValue(headers, 'cache-control'))
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
    if (!isToken(f)) throw new ConfigError('vary', `not a header field name: ${JSON.stringify(f)}`)
  }
  return (headers) => {
    const current = headerValue(headers, 'vary')
    const names = parseVary(current)
    if (names[0] === '*') return
    const out = current === undefined ? [] : splitList(current)
    for (const f of fields) if (!names.includes(f.toLowerCase())) out.push(f)
    setHeader(headers, 'Vary', out.join(', '))
  }
}

/**
 * The header helpers of every adapter (`cachette/express`, `cachette/koa`,
 * `cachette/hono`: middleware; `cachette/fastify`: route hooks), for
 * middleware of type `M`. Each sets response headers as the response
 * leaves the route, the innermost helper winning. Made by
 * {@link headerHelpers}; documented once, here.
 */
export interface HeaderHelpers<M> {
  /**
   * `Cache-Control: max-age` for `duration` (`{ minutes: 5 }`; the units
   * add up), other directives kept but `no-store` and `no-cache`, and
   * `Expires` (flask-webcache's `cache_for`).
   *
   * @throws {ConfigError} at set-up, for an unknown unit or a negative value
   * @example
   * app.get('/articles', cacheFor({ minutes: 5 }), listArticles)                 // Express, Koa's router, Hono
   * app.get('/articles', { onRequest: cacheFor({ minutes: 5 }) }, listArticles)  // Fastify
   */
  cacheFor(duration: Duration): M
  /**
   * Sets Cache-Control directives (`{ public: true, sMaxage: 600 }`; names
   * in camel, snake or kebab case; `true` sets, `false` removes, a number
   * sets seconds), flask-webcache's `cache_control`.
   *
   * @throws {ConfigError} at set-up, for an unknown directive or a bad value
   * @example
   * app.get('/feed', cacheControl({ public: true, sMaxage: 600 }), feed)
   */
  cacheControl(directives: CacheControlDirectives): M
  /**
   * `Cache-Control: no-store`, replacing every other directive, and no `Expires`.
   *
   * @example
   * app.get('/account', noStore(), account)
   */
  noStore(): M
  /**
   * Adds header names to `Vary` (once each, case-insensitively; nothing
   * after `Vary: *`).
   *
   * @throws {ConfigError} at set-up, for a name that is not a header field name
   * @example
   * app.get('/home', cacheFor({ minutes: 5 }), vary('Accept-Language'), home)
   */
  vary(...fields: string[]): M
}

/**
 * An adapter's {@link HeaderHelpers}, from the one function that turns a
 * {@link HeaderModifier} into that framework's middleware (or hook).
 */
export function headerHelpers<M>(toMiddleware: (modifier: HeaderModifier) => M): HeaderHelpers<M> {
  return {
    cacheFor: (duration) => toMiddleware(cacheForModifier(duration)),
    cacheControl: (directives) => toMiddleware(cacheControlModifier(directives)),
    noStore: () => toMiddleware(noStoreModifier()),
    vary: (...fields) => toMiddleware(varyModifier(...fields)),
  }
}
