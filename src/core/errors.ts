/**
 * Every error cachette throws on purpose carries a stable `code`, so callers can
 * branch on `err.code` instead of parsing messages.
 */

/** Stable error codes. */
export type CachetteErrorCode =
  | 'ERR_CACHETTE_CONFIG'
  | 'ERR_CACHETTE_INVALID_KEY'
  | 'ERR_CACHETTE_INVALID_TIMEOUT'
  | 'ERR_CACHETTE_UNSERIALIZABLE'
  | 'ERR_CACHETTE_NOT_INTEGER'
  | 'ERR_CACHETTE_MISSING_DEPENDENCY'
  | 'ERR_CACHETTE_DELETE_MANY'
  | 'ERR_CACHETTE_CORRUPT_ENTRY'

/** Base class of the errors that cachette throws on purpose. */
export class CachetteError extends Error {
  /** Stable machine-readable code. */
  readonly code: CachetteErrorCode
  constructor(code: CachetteErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'CachetteError'
    this.code = code
  }
}

/**
 * A configuration key has an unknown name, a wrong type or a missing required value.
 * Thrown by `new Cache()`, `initApp()` and backend constructors; `key` names the culprit.
 */
export class ConfigError extends TypeError {
  /** Always `'ERR_CACHETTE_CONFIG'`. */
  readonly code = 'ERR_CACHETTE_CONFIG' as const
  /** The configuration key at fault, as the user spelled it (e.g. `CACHE_TYPE`). */
  readonly key: string
  constructor(key: string, message: string, options?: ErrorOptions) {
    super(`${key}: ${message}`, options)
    this.name = 'ConfigError'
    this.key = key
  }
}

/** A cache key is not a non-empty string. */
export class InvalidKeyError extends TypeError {
  /** Always `'ERR_CACHETTE_INVALID_KEY'`. */
  readonly code = 'ERR_CACHETTE_INVALID_KEY' as const
  constructor(message: string) {
    super(message)
    this.name = 'InvalidKeyError'
  }
}

/** A timeout is negative, not finite, or a duration string that does not parse. */
export class InvalidTimeoutError extends TypeError {
  /** Always `'ERR_CACHETTE_INVALID_TIMEOUT'`. */
  readonly code = 'ERR_CACHETTE_INVALID_TIMEOUT' as const
  constructor(message: string) {
    super(message)
    this.name = 'InvalidTimeoutError'
  }
}

/** A value cannot be stored (a function, a symbol, `undefined`, ...). Nothing was written. */
export class UnserializableValueError extends TypeError {
  /** Always `'ERR_CACHETTE_UNSERIALIZABLE'`. */
  readonly code = 'ERR_CACHETTE_UNSERIALIZABLE' as const
  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'UnserializableValueError'
  }
}

/** `inc`/`dec` met a stored value that is not an integer, or a delta that is not one. */
export class NotAnIntegerError extends TypeError {
  /** Always `'ERR_CACHETTE_NOT_INTEGER'`. */
  readonly code = 'ERR_CACHETTE_NOT_INTEGER' as const
  constructor(message: string) {
    super(message)
    this.name = 'NotAnIntegerError'
  }
}

/** An optional client package (ioredis, memjs, ...) is needed but not installed. */
export class MissingDependencyError extends CachetteError {
  /** The npm package to install. */
  readonly packageName: string
  constructor(packageName: string, forWhat: string, options?: ErrorOptions) {
    super(
      'ERR_CACHETTE_MISSING_DEPENDENCY',
      `${forWhat} needs the package "${packageName}": npm install ${packageName}`,
      options,
    )
    this.name = 'MissingDependencyError'
    this.packageName = packageName
  }
}

/** `deleteMany` left keys behind and `CACHE_IGNORE_ERRORS` is false. */
export class DeleteManyError extends CachetteError {
  /** The keys that still exist. */
  readonly keys: string[]
  constructor(keys: string[]) {
    super('ERR_CACHETTE_DELETE_MANY', `Failed to delete keys: ${JSON.stringify(keys)}`)
    this.name = 'DeleteManyError'
    this.keys = keys
  }
}

/** A stored entry could not be decoded. Backends treat it as a miss and remove it. */
export class CorruptEntryError extends CachetteError {
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_CACHETTE_CORRUPT_ENTRY', message, options)
    this.name = 'CorruptEntryError'
  }
}

/**
 * Whether `error` is one of cachette's answers about the caller's input
 * (a bad key, timeout or value, an unstorable value, a non-integer, bad
 * configuration) or another error cachette throws on purpose: these reach
 * the caller. Every other error, whatever its class (a `TypeError` from a
 * client library's bug inside a backend included), is a backend failure,
 * which the facade and the decorators log and absorb unless
 * `CACHE_RAISE_ERRORS`. Told apart by the stable `code` cachette's own
 * errors carry, not by class: a plain `TypeError` never has one.
 */
export function isInputError(error: unknown): boolean {
  if (error instanceof CachetteError) return true
  if (!(error instanceof TypeError)) return false
  const code = (error as { code?: unknown }).code
  return typeof code === 'string' && code.startsWith('ERR_CACHETTE_')
}
