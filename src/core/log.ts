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
 * Logs an absorbed error once per `site` and message within `windowMs`, so a
 * backend outage under load produces a handful of lines, not one per request.
 */
export class ErrorReporter {
  readonly #seen = new Map<string, number>()
  constructor(
    readonly logger: Logger,
    private readonly windowMs = 60_000,
  ) {}

  /**
   * Reports `error` for `site` unless the same pair was reported within the
   * window. `note` says what happened as a consequence.
   */
  report(site: string, error: unknown, note = 'cache bypassed; possibly the cache backend'): void {
    const message = error instanceof Error ? error.message : String(error)
    const id = `${site}\u0000${message}`
    const now = Date.now()
    const last = this.#seen.get(id)
    if (last !== undefined && now - last < this.windowMs) return
    if (this.#seen.size > 1000) this.#seen.clear()
    this.#seen.set(id, now)
    this.logger.error(`${site}: ${message} (${note})`, error)
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
