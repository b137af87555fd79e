/**
 * The configuration types, derived from the one schema in `core/config.ts`
 * (`CONFIG_SCHEMA`): each key's name in both spellings, its documentation and
 * what it accepts come from there.
 */
import type { CamelConfigInput, FlaskConfigInput } from './core/config.js'

export type { CacheType } from './core/config.js'

/**
 * Configuration, with Flask-Caching's names. Each key also has a camelCase
 * spelling (see {@link CacheOptionsCamel}); both may be mixed, but not for the
 * same key.
 */
export interface CacheConfigFlask extends FlaskConfigInput {}

/** The camelCase spelling of {@link CacheConfigFlask}, plus `logger`; each key documents its twin. */
export interface CacheOptionsCamel extends CamelConfigInput {}

/** Configuration accepted by `new Cache()` and `initApp()`: either spelling, or both mixed. */
export type CacheConfig = CacheConfigFlask & CacheOptionsCamel
