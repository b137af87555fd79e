import { InvalidKeyError } from './errors.js'

/** Throws {@link InvalidKeyError} unless `key` is a non-empty string. */
export function assertKey(key: unknown, what = 'key'): asserts key is string {
  if (typeof key !== 'string') {
    throw new InvalidKeyError(`${what} must be a non-empty string, got ${describeKey(key)}`)
  }
  if (key.length === 0) throw new InvalidKeyError(`${what} must be a non-empty string, got ''`)
}

function describeKey(key: unknown): string {
  if (key === null) return 'null'
  if (Array.isArray(key)) return 'an array'
  return typeof key
}

/** The prefix of every template fragment key (Flask-Caching's `JINJA_CACHE_ATTR_NAME`). */
export const TEMPLATE_FRAGMENT_KEY_PREFIX = '_template_fragment_cache_'

/**
 * The key under which a template fragment is cached, exactly as Flask-Caching
 * builds it: `_template_fragment_cache_<name>` plus `_<vary>` for each vary-on value.
 *
 * @example
 * makeTemplateFragmentKey('sidebar', [user.id])  // '_template_fragment_cache_sidebar_42'
 */
export function makeTemplateFragmentKey(
  fragmentName: string,
  varyOn: readonly (string | number)[] = [],
): string {
  if (typeof fragmentName !== 'string') {
    throw new InvalidKeyError(`fragment name must be a string, got ${describeKey(fragmentName)}`)
  }
  for (const v of varyOn) {
    if (typeof v !== 'string' && typeof v !== 'number') {
      throw new InvalidKeyError(`vary_on values must be strings or numbers, got ${describeKey(v)}`)
    }
  }
  const base = TEMPLATE_FRAGMENT_KEY_PREFIX + fragmentName
  return varyOn.length > 0 ? `${base}_${varyOn.join('_')}` : base
}

/** `String.prototype.isWellFormed` (Node 20; not in the ES2023 lib typings). */
interface WellFormed {
  isWellFormed(): boolean
}

/** Whether `key` has no lone surrogate, so UTF-8 carries it losslessly. */
export function isWellFormedKey(key: string): boolean {
  return (key as unknown as WellFormed).isWellFormed()
}

/** The marker of an escaped storage key (see {@link storageKey}). */
export const ESCAPED_KEY_MARKER = '~u~'

/**
 * The form of `key` for a store that keeps keys as UTF-8 bytes (file names,
 * Redis), lossless for every string. A well-formed key (`isWellFormed()`)
 * that does not start with `~u~` is itself; any other key becomes its
 * {@link escapedKey}. UTF-8 would turn every lone surrogate into U+FFFD, so
 * without this `'\uD800'`, `'\uDC00'` and `'\uFFFD'` would be one entry;
 * escaped keys all start with the marker and plain ones never do, so no two
 * keys meet. {@link keyFromStorage} reverses it.
 */
export function storageKey(key: string): string {
  return isWellFormedKey(key) && !key.startsWith(ESCAPED_KEY_MARKER) ? key : escapedKey(key)
}

/**
 * `~u~` followed by `key` with `\` written `\\` and each lone surrogate
 * written `\uXXXX` (uppercase hex), whatever the key: the form
 * {@link storageKey} gives a key that needs escaping. The escaped form of a
 * prefix of a key is a prefix of the key's escaped form (unless the prefix
 * ends with a high surrogate that the key pairs).
 */
export function escapedKey(key: string): string {
  let out = ESCAPED_KEY_MARKER
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i)
    if (c === 0x5c) {
      out += '\\\\'
    } else if (c >= 0xd800 && c <= 0xdbff) {
      const next = key.charCodeAt(i + 1)
      if (next >= 0xdc00 && next <= 0xdfff) {
        out += key[i] + (key[i + 1] as string)
        i++
      } else {
        out += `\\u${c.toString(16).toUpperCase()}`
      }
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      out += `\\u${c.toString(16).toUpperCase()}`
    } else {
      out += key[i]
    }
  }
  return out
}

/**
 * The key that {@link storageKey} turned into `stored`, or `undefined` when
 * `stored` starts with the marker but is not an escaped form (written by
 * another program).
 */
export function keyFromStorage(stored: string): string | undefined {
  if (!stored.startsWith(ESCAPED_KEY_MARKER)) return stored
  let out = ''
  for (let i = ESCAPED_KEY_MARKER.length; i < stored.length; i++) {
    const ch = stored[i] as string
    if (ch !== '\\') {
      out += ch
      continue
    }
    const next = stored[i + 1]
    if (next === '\\') {
      out += '\\'
      i++
    } else if (next === 'u' && /^[0-9A-F]{4}$/.test(stored.slice(i + 2, i + 6))) {
      out += String.fromCharCode(Number.parseInt(stored.slice(i + 2, i + 6), 16))
      i += 5
    } else {
      return undefined
    }
  }
  return storageKey(out) === stored ? out : undefined
}
