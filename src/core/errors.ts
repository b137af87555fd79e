/**
 * Every error cachette throws carries a stable `code`, so callers can branch
 * on `err.code` instead of parsing messages, and so that the raise-or-absorb
 * policy ({@link isInputError}) is decided by code, never by class.
 */

/**
 * Codes of cachette's answers about the caller's input (a bad key, timeout,
 * value, configuration) and of its other deliberate errors: these reach the
 * caller (see {@link isInputError}).
 */
export const INPUT_ERROR_CODES = [
  'ERR_CACHETTE_CONFIG',
  'ERR_CACHETTE_INVALID_KEY',
  'ERR_CACHETTE_INVALID_TIMEOUT',
  'ERR_CACHETTE_UNSERIALIZABLE',
  'ERR_CACHETTE_NOT_INTEGER',
  'ERR_CACHETTE_MISSING_DEPENDENCY',
  'ERR_CACHETTE_DELETE_MANY',
  'ERR_CACHETTE_CORRUPT_ENTRY',
] as const

/**
 * Codes of backend failures: the store is slow, down, refuses us or answered
 * something unexpected. The facade and the decorators absorb them (a miss, a
 * write that returns `false`, a view served uncached) unless
 * `CACHE_RAISE_ERRORS`, and they count towards the circuit breaker.
 */
export const BACKEND_FAILURE_CODES = [
  /** No answer within a deadline (operation timeout, command timeout, connect timeout). */
  'ERR_CACHETTE_BACKEND_TIMEOUT',
  /** The circuit breaker refused the call without touching the backend. */
  'ERR_CACHETTE_CIRCUIT_OPEN',
  /** The store cannot be reached (down, disconnected, closed); the request was not answered. */
  'ERR_CACHETTE_BACKEND_UNAVAILABLE',
  /** The store refused our credentials, or wants some. */
  'ERR_CACHETTE_BACKEND_AUTH',
  /** The store answered, but not with what was asked (an error status, a lost race, a partial result). */
  'ERR_CACHETTE_BACKEND_FAILED',
] as const

/** The code of an error about the input (raised). */
export type InputErrorCode = (typeof INPUT_ERROR_CODES)[number]
/** The code of a backend failure (absorbed). */
export type BackendFailureCode = (typeof BACKEND_FAILURE_CODES)[number]
/** Stable error codes. */
export type CachetteErrorCode = InputErrorCode | BackendFailureCode

const RAISED: ReadonlySet<string> = new Set<string>(INPUT_ERROR_CODES)

/** The string `code` of an error (cachette's, Node's `ENOENT`, ...), else `undefined`. */
export function codeOf(error: unknown): string | undefined {
  if ((typeof error !== 'object' && typeof error !== 'function') || error === null) return undefined
  const code = (error as { code?: unknown }).code
  return typeof code === 'string' ? code : undefined
}

/**
 * The options every cachette error takes: the error that caused it. The same
 * as the `ErrorOptions` of `lib.es2022`, spelled out so that the published
 * types compile with older `lib` settings.
 */
export interface CauseOptions {
  /** The underlying error. */
  cause?: unknown
}

/** Base class of the errors that cachette throws on purpose. */
export class CachetteError extends Error {
  /** Stable machine-readable code. */
  readonly code: CachetteErrorCode
  constructor(code: CachetteErrorCode, message: string, options?: CauseOptions) {
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
  constructor(key: string, message: string, options?: CauseOptions) {
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
  constructor(message: string, options?: CauseOptions) {
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
  constructor(packageName: string, forWhat: string, options?: CauseOptions) {
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
  constructor(message: string, options?: CauseOptions) {
    super('ERR_CACHETTE_CORRUPT_ENTRY', message, options)
    this.name = 'CorruptEntryError'
  }
}

/**
 * A backend failure of cachette's own making: a store that did not answer in
 * time, is unreachable, refused the credentials or answered something else
 * than asked. The base of {@link BackendTimeoutError} and
 * {@link CircuitOpenError}; backends throw it with the code that fits.
 * Absorbed by the facade (its code is a {@link BackendFailureCode}).
 */
export class BackendError extends Error {
  /** What went wrong, one of `BACKEND_FAILURE_CODES`. */
  readonly code: BackendFailureCode
  constructor(code: BackendFailureCode, message: string, options?: CauseOptions) {
    super(message, options)
    this.name = 'BackendError'
    this.code = code
  }
}

/**
 * A call got no answer within its deadline: the facade's operation timeout
 * (`CACHE_OPERATION_TIMEOUT`), a ClusterCache worker's `requestTimeout`, a
 * Memcached command or connect timeout, an object store's `timeout`. The one
 * timeout error of cachette (`StoreTimeoutError` names it too). Absorbed by
 * the facade like any backend error.
 */
export class BackendTimeoutError extends BackendError {
  /** Always `'ERR_CACHETTE_BACKEND_TIMEOUT'`. */
  declare readonly code: 'ERR_CACHETTE_BACKEND_TIMEOUT'
  /** The timeout that passed, in milliseconds. */
  readonly timeoutMs: number
  constructor(message: string, timeoutMs: number, options?: CauseOptions) {
    super('ERR_CACHETTE_BACKEND_TIMEOUT', message, options)
    this.name = 'BackendTimeoutError'
    this.timeoutMs = timeoutMs
  }
}

/**
 * The circuit breaker is open: the call was refused without touching the
 * backend. `cause` is the failure that opened it. Absorbed by the facade.
 */
export class CircuitOpenError extends BackendError {
  /** Always `'ERR_CACHETTE_CIRCUIT_OPEN'`. */
  declare readonly code: 'ERR_CACHETTE_CIRCUIT_OPEN'
  constructor(message: string, options?: CauseOptions) {
    super('ERR_CACHETTE_CIRCUIT_OPEN', message, options)
    this.name = 'CircuitOpenError'
  }
}

/**
 * Whether `error` is one of cachette's answers about the caller's input
 * (a bad key, timeout or value, an unstorable value, a non-integer, bad
 * configuration) or another error cachette throws on purpose: these reach
 * the caller. Every other error, whatever its class (a `TypeError` from a
 * client library's bug inside a backend included, a {@link BackendError}),
 * is a backend failure, which the facade and the decorators log and absorb
 * unless `CACHE_RAISE_ERRORS`. Decided by the stable `code` alone
 * ({@link INPUT_ERROR_CODES}), never by class: a plain `TypeError` has none.
 */
export function isInputError(error: unknown): boolean {
  const code = codeOf(error)
  return code !== undefined && RAISED.has(code)
}
