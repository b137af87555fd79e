import type { CacheBackend } from './backend.js'
import { isInputError } from './errors.js'
import { SlotObserver } from './events/observer.js'
import type { DigestFn } from './hash.js'
import type { ErrorReporter, Logger } from './log.js'

/**
 * The key of the method of a cachette `Cache` that gives the framework
 * adapters (and the view engine's tests) the backend slot serving the
 * current call: `cache[VIEW_SLOT](app?)`. No public entry exports it, so
 * the public types (`CachedProvider`, `Cache`) name no internal member and
 * an app passes a `Cache` rather than implement one. `Symbol.for`, for the
 * dual-package case (a `Cache` of the ESM build given to an adapter of the
 * CJS one).
 * @internal
 */
export const VIEW_SLOT: unique symbol = Symbol.for('cachette.viewSlot') as typeof VIEW_SLOT

/** What the decorators need to know about the configuration they run under. */
export interface SlotSettings {
  /** Hashes memoize and query-string keys (`CACHE_HASH_METHOD`). */
  readonly digest: DigestFn
  /** Whether function source is part of keys by default (`CACHE_SOURCE_CHECK`). */
  readonly sourceCheck: boolean
  /** Whether backend errors propagate instead of being logged (`CACHE_RAISE_ERRORS`). */
  readonly raiseErrors: boolean
  /** Where warnings go. */
  readonly logger: Logger
  /** Rate-limited logging of absorbed errors. */
  readonly reporter: ErrorReporter
  /** The merged configuration with `CACHE_*` names, as given to the backend factory. */
  readonly config: Readonly<Record<string, unknown>>
}

/**
 * One backend with the settings it was built from. A `Cache` has one slot per
 * app it was initialised on, plus one for use outside any app.
 */
export class Slot {
  /** Set once the backend is built; the hot path reads it without awaiting. */
  backend: CacheBackend | undefined
  /** Resolves to the backend; rejects with the construction error. */
  readonly ready: Promise<CacheBackend>
  /**
   * Outcome counters (`observer.outcome('view', name, 'hit')`, cheap, always
   * on) and the instrumentation of `backend` while the Cache is observed
   * (events, `cachette/prometheus`, `cachette/otel`): see core/events.ts.
   * Observation replaces `backend` (and `ready`) with an instrumenting
   * wrapper, and puts the original back when it stops.
   */
  readonly observer: SlotObserver = new SlotObserver(this)

  constructor(
    built: CacheBackend | Promise<CacheBackend>,
    readonly settings: SlotSettings,
  ) {
    if (built instanceof Promise) {
      this.ready = built.then((b) => {
        this.backend = b
        return b
      })
      // The error surfaces on first use; never as an unhandled rejection.
      this.ready.catch(() => {})
    } else {
      this.backend = built
      this.ready = Promise.resolve(built)
    }
  }

  /**
   * Whether an error should propagate to the caller rather than be logged and
   * absorbed: cachette's own answers about the input (see `isInputError`: a
   * bad key or timeout, an unstorable value, a non-integer, each with its
   * `ERR_CACHETTE_*` code) and its other deliberate errors, and every error
   * when `CACHE_RAISE_ERRORS` is set. Anything else (a backend that failed,
   * whatever the class of its error: a plain `TypeError` from a client
   * library's bug is a backend failure too) is absorbed.
   */
  mustRaise(error: unknown): boolean {
    return this.settings.raiseErrors || isInputError(error)
  }

  /**
   * Logs (rate-limited per operation, since the slot is one backend) an
   * absorbed backend error. `subject` is the part of `site` that varies per
   * call (a key): logged, but not what makes two errors different.
   */
  report(site: string, error: unknown, subject?: string): void {
    this.settings.reporter.report(site, error, undefined, subject)
  }
}
