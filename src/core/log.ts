import { codeOf } from './errors.js'

/** Where cachette reports warnings and swallowed backend errors. `console` fits. */
export interface Logger {
  /** A risky but legal setting, or a one-time notice. */
  warn(message: string): void
  /** A backend error that was absorbed (the app kept serving uncached). */
  error(message: string, error?: unknown): void
}

const consoleLogger: Logger = {
  warn: (message) => console.warn(`[cachette] ${message}`),
  error: (message, error) =>
    error === undefined
      ? console.error(`[cachette] ${message}`)
      : console.error(`[cachette] ${message}`, error),
}

/** The default logger: `console`, with a `[cachette]` tag. */
export const defaultLogger: Logger = consoleLogger

/**
 * Logs an absorbed error once per operation and error within `windowMs`, so a
 * backend outage under load produces a handful of lines, not one per request
 * or per key. A reporter belongs to one backend (a Cache slot, a backend's
 * connection), so that is per operation and backend.
 */
export class ErrorReporter {
  readonly #seen = new Map<string, { at: number; suppressed: number }>()
  constructor(
    readonly logger: Logger,
    private readonly windowMs = 60_000,
    private readonly clock: () => number = Date.now,
  ) {}

  /**
   * Reports `error` for `site` unless the same operation and error were
   * reported within the window. `note` says what happened as a consequence.
   * `subject` is the part of `site` (and of the message) that varies per
   * call, such as the key in `cached view//page/5`: it is logged, but left
   * out when deciding what counts as the same error. The line after a
   * window says how many were left out.
   */
  report(
    site: string,
    error: unknown,
    note = 'cache bypassed; possibly the cache backend',
    subject?: string,
  ): void {
    const message = error instanceof Error ? error.message : String(error)
    const generic = (text: string): string =>
      subject === undefined || subject === '' ? text : text.replaceAll(subject, '\u0001')
    const code = codeOf(error)
    const id = `${generic(site)}\u0000${code ?? generic(message)}`
    const now = this.clock()
    const last = this.#seen.get(id)
    if (last !== undefined && now - last.at < this.windowMs) {
      last.suppressed++
      return
    }
    if (last === undefined && this.#seen.size >= 1000) this.#prune(now)
    this.#seen.set(id, { at: now, suppressed: 0 })
    const more =
      last !== undefined && last.suppressed > 0
        ? `; ${last.suppressed} more like it in the last ${Math.round((now - last.at) / 1000)} s`
        : ''
    this.logger.error(`${site}: ${message} (${note}${more})`, error)
  }

  /** Forgets entries whose window is over; if none is, the oldest half. */
  #prune(now: number): void {
    for (const [id, entry] of this.#seen) {
      if (now - entry.at >= this.windowMs) this.#seen.delete(id)
    }
    if (this.#seen.size < 1000) return
    let drop = this.#seen.size / 2
    for (const id of this.#seen.keys()) {
      if (drop-- <= 0) break
      this.#seen.delete(id)
    }
  }
}

const warned = new WeakMap<Logger, Set<string>>()

/** Emits `message` through `logger` once per logger (so once per process for the default) for each `code`. */
export function warnOnce(logger: Logger, code: string, message: string): void {
  let codes = warned.get(logger)
  if (codes === undefined) {
    codes = new Set()
    warned.set(logger, codes)
  }
  if (codes.has(code)) return
  codes.add(code)
  logger.warn(`${message} [${code}]`)
}
