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
