/**
 * Internal: the codes of the failures the object-store backends (S3, Google
 * Cloud Storage) raise themselves, in one place. Each code names the store
 * (`ERR_CACHETTE_S3_...`, `ERR_CACHETTE_GCS_...`). Configuration and input
 * errors are core's (`ConfigError`, `NotAnIntegerError`, ...); a deadline
 * that passed is core's `StoreTimeoutError` (`ERR_CACHETTE_BACKEND_TIMEOUT`).
 */

/** What went wrong, after `ERR_CACHETTE_<store>_`. */
export type ObjectStoreFailure =
  /** `inc` lost the compare-and-swap race every time it tried. */
  | 'INC_CONTENDED'
  /** `clear` could not delete some objects (it tried them all). */
  | 'CLEAR_INCOMPLETE'
  /** A call after `close()` (GCS). */
  | 'CLOSED'
  /** A request failed: an HTTP error, a network error, a bad response (GCS wraps them). */
  | 'REQUEST'
  /** A bad `days` for the S3 lifecycle rule. */
  | 'LIFECYCLE_DAYS'

/** A code of {@link ObjectStoreFailure} for the store named `tag` (`S3`, `GCS`). */
export type ObjectStoreErrorCode<Tag extends string = string> =
  `ERR_CACHETTE_${Tag}_${ObjectStoreFailure}`

/** The code of `failure` on the store named `tag`. */
export function storeCode<Tag extends string>(
  tag: Tag,
  failure: ObjectStoreFailure,
): ObjectStoreErrorCode<Tag> {
  return `ERR_CACHETTE_${tag}_${failure}`
}

/**
 * `error` with a stable `code`. The error keeps its class, name and message
 * (a plain `Error` stays one), so only the code is added.
 */
export function withCode<E extends Error, C extends string>(
  error: E,
  code: C,
): E & { readonly code: C } {
  return Object.defineProperty(error, 'code', {
    value: code,
    enumerable: true,
    writable: false,
    configurable: true,
  }) as E & { readonly code: C }
}
