/**
 * The guard the `Cache` facade puts around network backends: a deadline on
 * every call and a circuit breaker, so a backend that hangs or is down costs
 * the app neither time nor a stream of doomed network calls.
 *
 * - **Timeout**: a call that has not settled after `timeout` seconds rejects
 *   with a {@link BackendTimeoutError}; its late result is ignored. The
 *   deadlines of all pending calls of one guard are checked by one shared
 *   interval timer (running only while calls are pending), not a timer per
 *   call. The built-in network backends have their own, shorter per-call
 *   timeouts; this one is the backstop for backends that have none.
 * - **Circuit breaker**: after `failures` consecutive failed calls (errors
 *   and timeouts; not cachette's own input errors (`isInputError`: a bad
 *   argument or value, not a sick backend; a plain TypeError from a client
 *   library counts as a failure)) it opens for `openFor` seconds:
 *   calls reject at once with a {@link CircuitOpenError} without touching
 *   the backend. Then one call is let through (half-open): if it succeeds
 *   the circuit closes, otherwise it opens again. Opening and closing are
 *   logged once each (a warning), however long the outage.
 *
 * Both errors are `BackendError`s (codes `ERR_CACHETTE_BACKEND_TIMEOUT`
 * and `ERR_CACHETTE_CIRCUIT_OPEN`), not input errors, on purpose: the facade
 * absorbs them like any backend failure (a miss, a write that returns
 * `false`, a view served uncached), see `Slot.mustRaise`.
 *
 * The guard is a `Proxy` around the backend (`wrapBackend`, the same
 * wrapper the observability instrumentation uses), so `cache.backend` still
 * is what it was (`instanceof RedisCache`, `.client`, `.keyPrefix` work);
 * only the cache operations ({@link BACKEND_OPERATIONS}) go through the guard.
 * @packageDocumentation
 */
import { BACKEND_OPERATIONS, type CacheBackend } from './backend.js'
import { parseTimeout } from './duration.js'
import { BackendTimeoutError, CircuitOpenError, ConfigError, isInputError } from './errors.js'
import { defaultLogger, type Logger } from './log.js'
import { type BackendMethod, wrapBackend } from './wrap.js'

// The guard's errors, defined with the others in core/errors.ts; exported from here as before.
export { BackendTimeoutError, CircuitOpenError }

/** Circuit breaker settings (`CACHE_CIRCUIT_BREAKER`). */
export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. @default 10 */
  failures?: number
  /** Seconds (or a duration string) the circuit stays open before one probe call. @default 5 */
  openFor?: number | string
}

/** Settings of {@link guardBackend}. */
export interface GuardOptions {
  /** Seconds a call may take (`CACHE_OPERATION_TIMEOUT`); `0` = no deadline. @default 5 */
  timeout?: number
  /** The circuit breaker (`CACHE_CIRCUIT_BREAKER`); `false` = none. @default { failures: 10, openFor: 5 } */
  breaker?: CircuitBreakerOptions | false
  /** Where the state changes are logged. @default console */
  logger?: Logger
  /** How logs and errors name the backend. @default its class name */
  name?: string
}

/** The state of a circuit breaker. */
export type CircuitState = 'closed' | 'open' | 'half-open'

/** Default `CACHE_OPERATION_TIMEOUT`, seconds. */
export const DEFAULT_OPERATION_TIMEOUT = 5
/**
 * Default consecutive failures that open the circuit. Not fewer: a few
 * failures in a row happen on any blip (a reconnection, a slow GC), and the
 * built-in network backends already fail fast on their own; ten failures
 * with no success in between is an outage at any real traffic.
 */
export const DEFAULT_BREAKER_FAILURES = 10
/** Default seconds the circuit stays open. */
export const DEFAULT_BREAKER_OPEN_FOR = 5

const STATE_CLOSED = 0
const STATE_OPEN = 1
const STATE_HALF_OPEN = 2

/** Whether `error` says the backend is unhealthy (as opposed to a bad argument or value). */
function countsAsFailure(error: unknown): boolean {
  return !isInputError(error)
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/**
 * One pending call with a deadline. Settles the caller's promise once: with
 * the backend's result, or with a timeout, whichever comes first. (Every
 * field is assigned in the constructor, in one order: V8 keeps one shape for
 * all of them, which measured several times faster than class-field arrows.)
 */
class Pending {
  settled: boolean
  readonly guard: BackendGuard
  readonly method: string
  readonly deadline: number
  readonly resolve: (value: unknown) => void
  readonly reject: (error: unknown) => void
  readonly ok: (value: unknown) => void
  readonly fail: (error: unknown) => void
  constructor(
    guard: BackendGuard,
    method: string,
    deadline: number,
    resolve: (value: unknown) => void,
    reject: (error: unknown) => void,
  ) {
    this.settled = false
    this.guard = guard
    this.method = method
    this.deadline = deadline
    this.resolve = resolve
    this.reject = reject
    this.ok = (value) => {
      if (this.settled) return
      this.settled = true
      this.guard.settle(this, true, undefined)
      this.resolve(value)
    }
    this.fail = (error) => {
      if (this.settled) return
      this.settled = true
      this.guard.settle(this, false, error)
      this.reject(error)
    }
  }
}

/**
 * The state of one guarded backend: its deadlines and its circuit breaker.
 * Read it with {@link guardOf}(cache.backend) to see the circuit's state.
 */
export class BackendGuard {
  /** The operation timeout in milliseconds (`0` = none). */
  readonly timeoutMs: number
  /** Consecutive failures that open the circuit (`Infinity` = no breaker). */
  readonly failuresToOpen: number
  /** How long the circuit stays open, in milliseconds. */
  readonly openForMs: number
  /** How logs and errors name the backend. */
  readonly name: string
  readonly #logger: Logger
  #state: number = STATE_CLOSED
  #failures = 0
  #openUntil = 0
  /** When the current probe started (half-open). */
  #probeSince = 0
  #lastError: unknown
  /** The error refused calls get, made once per opening (not an Error and its stack per call). */
  #openError: CircuitOpenError | undefined
  /** Pending calls in deadline order (all share one timeout, so insertion order is deadline order). */
  readonly #pending = new Set<Pending>()
  #timer: NodeJS.Timeout | undefined
  readonly #tickMs: number
  /**
   * A coarse clock for deadlines: set when the timer starts and on each tick,
   * so a call does not read the clock (~15% of the guard's cost per call). A
   * deadline fires within [timeout, timeout + 2 ticks]; only a call started
   * while the event loop was blocked for longer than a tick may time out
   * earlier, by up to the block's length.
   */
  #now = 0

  constructor(options: GuardOptions = {}) {
    const timeout = options.timeout ?? DEFAULT_OPERATION_TIMEOUT
    this.timeoutMs = Math.round(timeout * 1000)
    const breaker = options.breaker ?? {}
    this.failuresToOpen =
      breaker === false ? Number.POSITIVE_INFINITY : (breaker.failures ?? DEFAULT_BREAKER_FAILURES)
    this.openForMs =
      breaker === false
        ? 0
        : Math.round((parseTimeout(breaker.openFor) ?? DEFAULT_BREAKER_OPEN_FOR) * 1000)
    this.name = options.name ?? 'backend'
    this.#logger = options.logger ?? defaultLogger
    // Deadlines are checked at this resolution: a timeout fires within [timeout, timeout + 2 ticks].
    this.#tickMs = Math.min(250, Math.max(5, Math.floor(this.timeoutMs / 10)))
  }

  /** The circuit's state now. */
  get state(): CircuitState {
    if (this.#state === STATE_CLOSED) return 'closed'
    if (this.#state === STATE_HALF_OPEN) return 'half-open'
    return performance.now() >= this.#openUntil ? 'half-open' : 'open'
  }

  /** Calls pending now (settled calls leave at once; timed-out ones too). */
  get pendingCalls(): number {
    return this.#pending.size
  }

  /**
   * Starts a call: `undefined` if it may go ahead, else the error to reject
   * it with (the circuit is open, or half-open with the probe under way).
   */
  admit(): CircuitOpenError | undefined {
    if (this.#state === STATE_CLOSED) return undefined
    const now = performance.now()
    if (
      (this.#state === STATE_OPEN && now >= this.#openUntil) ||
      // A probe that never settles (no timeout configured) must not keep the circuit open forever.
      (this.#state === STATE_HALF_OPEN && now - this.#probeSince >= this.openForMs)
    ) {
      // Half-open: this call is the probe; the others wait for its verdict.
      this.#state = STATE_HALF_OPEN
      this.#probeSince = now
      return undefined
    }
    this.#openError ??= new CircuitOpenError(
      `${this.name}: circuit open after ${this.failuresToOpen} consecutive failures (last: ${messageOf(this.#lastError)}); calls fail fast until a probe succeeds`,
      { cause: this.#lastError },
    )
    return this.#openError
  }

  /** Follows a started call: its promise, with the deadline and the breaker's bookkeeping. */
  watch<T>(call: Promise<T>, method: string): Promise<T> {
    if (this.timeoutMs === 0) return call.then(this.#ok, this.#fail) as Promise<T>
    // Started first: starting it sets the coarse clock the deadline is computed from.
    if (this.#timer === undefined) this.#startTimer()
    return new Promise<T>((resolve, reject) => {
      const pending = new Pending(
        this,
        method,
        // The coarse clock may lag by up to a tick: added, so no call times out early.
        this.#now + this.timeoutMs + this.#tickMs,
        resolve as (value: unknown) => void,
        reject,
      )
      this.#pending.add(pending)
      call.then(pending.ok, pending.fail)
    })
  }

  // Shared handlers for calls without a deadline: no allocation per call.
  readonly #ok = <T>(value: T): T => {
    this.#success()
    return value
  }
  readonly #fail = (error: unknown): never => {
    this.#failure(error)
    throw error
  }

  /** Bookkeeping for a call that settled (first, before any deadline). @internal */
  settle(pending: Pending, ok: boolean, error: unknown): void {
    this.#pending.delete(pending)
    if (ok) this.#success()
    else this.#failure(error)
  }

  #success(): void {
    this.#failures = 0
    if (this.#state !== STATE_CLOSED) {
      this.#state = STATE_CLOSED
      this.#openError = undefined
      this.#logger.warn(
        `${this.name}: circuit breaker closed: the backend answers again [CACHETTE_CIRCUIT_CLOSED]`,
      )
    }
  }

  #failure(error: unknown): void {
    if (!countsAsFailure(error)) {
      // The backend answered (a bad value or argument): it is healthy.
      this.#success()
      return
    }
    this.#lastError = error
    if (this.#state === STATE_HALF_OPEN) {
      // The probe failed: open again, quietly (the outage was logged once).
      this.#state = STATE_OPEN
      this.#openUntil = performance.now() + this.openForMs
      return
    }
    if (this.#state === STATE_OPEN) return
    if (++this.#failures >= this.failuresToOpen) {
      this.#state = STATE_OPEN
      this.#openError = undefined
      this.#openUntil = performance.now() + this.openForMs
      this.#logger.warn(
        `${this.name}: circuit breaker opened after ${this.#failures} consecutive failures (last: ${messageOf(error)}); calls fail fast for ${this.openForMs / 1000} s, then one probe [CACHETTE_CIRCUIT_OPEN]`,
      )
    }
  }

  #startTimer(): void {
    this.#now = performance.now()
    // Not unref'd: a pending call is owed an answer (its deadline at the latest),
    // even when nothing else keeps the process alive. It stops once nothing is pending.
    this.#timer = setInterval(() => this.#tick(), this.#tickMs)
  }

  #tick(): void {
    if (this.#pending.size === 0) {
      // Nothing to watch: stop until the next call.
      clearInterval(this.#timer)
      this.#timer = undefined
      return
    }
    const now = performance.now()
    this.#now = now
    for (const pending of this.#pending) {
      if (pending.deadline > now) break
      pending.fail(
        new BackendTimeoutError(
          `${this.name}.${pending.method}: no answer within ${this.timeoutMs} ms (CACHE_OPERATION_TIMEOUT)`,
          this.timeoutMs,
        ),
      )
    }
  }

  /** Stops the deadline timer (pending calls keep their promises; used on close). */
  dispose(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }
}

/** Where a guarded backend keeps its guard. */
const GUARD: unique symbol = Symbol('cachette.guard')

/** The backend methods that go through the guard (the optional ones only when the backend has them). */
const GUARDED: ReadonlySet<PropertyKey> = new Set<PropertyKey>(BACKEND_OPERATIONS)
/** What the guard replaces: the operations, and `close` (which also stops the deadline timer). */
const REPLACED: ReadonlySet<PropertyKey> = new Set<PropertyKey>([...BACKEND_OPERATIONS, 'close'])

/** The guarded version of `method` (called on `target`). Built once per method, not per call. */
function guarded(
  guard: BackendGuard,
  target: object,
  name: string,
  method: BackendMethod,
): (a?: unknown, b?: unknown, c?: unknown) => Promise<unknown> {
  // Fixed arity instead of rest arguments: no array per call. Every guarded
  // method takes at most three arguments.
  return (a, b, c) => {
    const refused = guard.admit()
    if (refused !== undefined) return Promise.reject(refused)
    let call: Promise<unknown>
    try {
      call = method.call(target, a, b, c) as Promise<unknown>
    } catch (error) {
      // A synchronous throw (a bad argument, usually): the backend was not reached.
      call = Promise.reject(error)
    }
    return guard.watch(call, name)
  }
}

/**
 * `backend` behind a {@link BackendGuard}: the same object to everyone who
 * looks (a `Proxy`: `instanceof`, getters, other methods and properties are
 * the backend's own), with the cache operations going through the guard.
 * Calling it on an already guarded backend returns it unchanged.
 *
 * @example
 * const backend = guardBackend(new MyHttpCache(), { timeout: 2, breaker: { failures: 3, openFor: 10 } })
 * guardOf(backend)?.state // 'closed'
 */
export function guardBackend<B extends CacheBackend>(backend: B, options: GuardOptions = {}): B {
  if (guardOf(backend) !== undefined) return backend
  const guard = new BackendGuard({
    ...options,
    name: options.name ?? (backend.constructor?.name || 'backend'),
  })
  const close = async (): Promise<void> => {
    guard.dispose()
    await backend.close?.()
  }
  return wrapBackend(backend, {
    replaced: REPLACED,
    replace: (prop, method) =>
      GUARDED.has(prop) ? guarded(guard, backend, String(prop), method) : close,
    answers: new Map([[GUARD, guard]]),
    // A method assigned to the backend later is guarded too.
    keep: 'per-method',
    // Own function-valued properties are data, handed out as they are.
    bind: 'bind-inherited',
  })
}

/** The guard of a backend returned by {@link guardBackend}; `undefined` for any other. */
export function guardOf(backend: unknown): BackendGuard | undefined {
  if ((typeof backend !== 'object' && typeof backend !== 'function') || backend === null) {
    return undefined
  }
  const guard = (backend as { [GUARD]?: unknown })[GUARD]
  return guard instanceof BackendGuard ? guard : undefined
}

/**
 * Reads `CACHE_OPERATION_TIMEOUT` (already parsed to seconds, or undefined)
 * and `CACHE_CIRCUIT_BREAKER` (`false`, `true`, `{ failures, openFor }`, or
 * from the environment `'false'`/`'true'` or that object as JSON) into
 * {@link GuardOptions}; `undefined` when both are off.
 * @throws {ConfigError} naming the key of a bad value.
 */
export function resolveGuardOptions(
  operationTimeout: unknown,
  circuitBreaker: unknown,
  logger: Logger,
): GuardOptions | undefined {
  let timeout = DEFAULT_OPERATION_TIMEOUT
  if (operationTimeout !== undefined) {
    if (typeof operationTimeout !== 'number' || !(operationTimeout >= 0)) {
      throw new ConfigError(
        'CACHE_OPERATION_TIMEOUT',
        `expected a non-negative number of seconds, got ${String(operationTimeout)}`,
      )
    }
    timeout = operationTimeout
  }
  const breaker = parseBreaker(circuitBreaker)
  if (timeout === 0 && breaker === false) return undefined
  return { timeout, breaker, logger }
}

const KEY = 'CACHE_CIRCUIT_BREAKER'

function parseBreaker(value: unknown): CircuitBreakerOptions | false {
  if (value === undefined || value === true) return {}
  if (value === false) return false
  if (typeof value === 'string') {
    // From the environment.
    const text = value.trim()
    if (/^(false|0|no|off)$/i.test(text)) return false
    if (/^(true|1|yes|on|)$/i.test(text)) return {}
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      throw new ConfigError(
        KEY,
        `expected false, true or JSON { failures, openFor }, got ${JSON.stringify(value)}`,
      )
    }
    return parseBreaker(parsed)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(
      KEY,
      `expected false, true or { failures, openFor }, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`,
    )
  }
  const o = value as Record<string, unknown>
  for (const k of Object.keys(o)) {
    if (k !== 'failures' && k !== 'openFor') {
      throw new ConfigError(KEY, `unknown field ${JSON.stringify(k)} (fields: failures, openFor)`)
    }
  }
  const out: CircuitBreakerOptions = {}
  if (o.failures !== undefined) {
    if (!Number.isSafeInteger(o.failures) || (o.failures as number) < 1) {
      throw new ConfigError(KEY, `failures must be a positive integer, got ${String(o.failures)}`)
    }
    out.failures = o.failures as number
  }
  if (o.openFor !== undefined) {
    let seconds: number
    try {
      seconds = parseTimeout(o.openFor as number | string, `${KEY}.openFor`) as number
    } catch (error) {
      throw new ConfigError(
        KEY,
        `openFor must be a positive number of seconds or a duration string, got ${String(o.openFor)}`,
        { cause: error },
      )
    }
    if (!(seconds > 0)) {
      throw new ConfigError(KEY, `openFor must be positive, got ${String(o.openFor)}`)
    }
    out.openFor = seconds
  }
  return out
}
