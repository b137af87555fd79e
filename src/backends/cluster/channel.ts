/**
 * A worker's side of ClusterCache: requests to the primary over the cluster
 * IPC channel, with ids, per-call deadlines and batching. One per process,
 * shared by every ClusterCache in it.
 * @internal
 */
import {
  BackendError,
  BackendTimeoutError,
  NotAnIntegerError,
  UnserializableValueError,
} from '../../core/errors.js'
import { isMessage, MARK, OP_NAMES, type Op, type Reply, type Request } from './wire.js'

/** The process side of an IPC channel (`process` in a cluster worker). */
export interface IpcEndpoint {
  send?(message: unknown, callback: (error: Error | null) => void): boolean
  connected?: boolean
  on(event: 'message', listener: (message: unknown) => void): unknown
  on(event: 'disconnect', listener: () => void): unknown
  off(event: 'message', listener: (message: unknown) => void): unknown
  off(event: 'disconnect', listener: () => void): unknown
}

/** A call waiting for its answer. Fields assigned in one order: one shape for all. */
class Call {
  readonly id: number
  readonly op: Op
  readonly deadline: number
  readonly timeoutMs: number
  readonly resolve: (value: unknown) => void
  readonly reject: (error: unknown) => void
  constructor(
    id: number,
    op: Op,
    deadline: number,
    timeoutMs: number,
    resolve: (value: unknown) => void,
    reject: (error: unknown) => void,
  ) {
    this.id = id
    this.op = op
    this.deadline = deadline
    this.timeoutMs = timeoutMs
    this.resolve = resolve
    this.reject = reject
  }
}

/** Rebuilds an error the primary reported, as the class a local store would have thrown. */
function errorFrom([name, message]: [string, string]): Error {
  if (name === 'NotAnIntegerError') return new NotAnIntegerError(message)
  if (name === 'UnserializableValueError') return new UnserializableValueError(message)
  const error = new BackendError(
    'ERR_CACHETTE_BACKEND_FAILED',
    `ClusterCache (primary): ${message}`,
  )
  error.name = name
  return error
}

/**
 * Requests to the primary. Calls made in one tick go out as one message
 * (flushed from a microtask); answers come back batched the same way. A call
 * gets no answer within its timeout → it fails with a
 * {@link BackendTimeoutError} (the facade makes that a miss), and a late
 * answer is dropped. Deadlines are checked by one timer that runs only while
 * calls are pending.
 */
export class WorkerChannel {
  readonly #endpoint: IpcEndpoint
  #nextId = 1
  readonly #pending = new Map<number, Call>()
  #queue: Request[] = []
  #scheduled = false
  #timer: NodeJS.Timeout | undefined
  #tickMs = 250
  #closed: Error | undefined
  #users = 0

  constructor(endpoint: IpcEndpoint) {
    this.#endpoint = endpoint
  }

  /** Calls waiting for an answer. */
  get pendingCalls(): number {
    return this.#pending.size
  }

  /**
   * Registers a user (a ClusterCache) with its timeout; the first one starts
   * listening. Each user calls {@link WorkerChannel.release} once when it closes.
   */
  attach(timeoutMs: number): void {
    if (this.#users++ === 0) {
      this.#endpoint.on('message', this.#onMessage)
      this.#endpoint.on('disconnect', this.#onDisconnect)
    }
    this.#tickMs = Math.min(this.#tickMs, Math.max(5, Math.floor(timeoutMs / 10)))
  }

  /** Unregisters a user; with none left, stops listening so the process may exit. */
  release(): void {
    if (this.#users === 0 || --this.#users > 0) return
    this.#endpoint.off('message', this.#onMessage)
    this.#endpoint.off('disconnect', this.#onDisconnect)
  }

  /** Sends one operation; resolves its result (a wire value for reads). */
  call(op: Op, store: string, args: unknown[], timeoutMs: number): Promise<unknown> {
    if (this.#closed !== undefined) return Promise.reject(this.#closed)
    const id = this.#nextId++
    if (this.#nextId === Number.MAX_SAFE_INTEGER) this.#nextId = 1
    return new Promise((resolve, reject) => {
      this.#pending.set(
        id,
        new Call(id, op, performance.now() + timeoutMs, timeoutMs, resolve, reject),
      )
      this.#queue.push([id, op, store, ...args])
      if (!this.#scheduled) {
        this.#scheduled = true
        queueMicrotask(this.#flush)
      }
      if (this.#timer === undefined) {
        // Not unref'd: a pending call is owed an answer (its deadline at the latest).
        this.#timer = setInterval(this.#tick, this.#tickMs)
      }
    })
  }

  readonly #flush = (): void => {
    this.#scheduled = false
    const batch = this.#queue
    this.#queue = []
    const endpoint = this.#endpoint
    if (endpoint.send === undefined || endpoint.connected === false) {
      this.#fail(batch, this.#closedError())
      return
    }
    endpoint.send({ cachette: MARK, q: batch }, (error) => {
      if (error) this.#fail(batch, error)
    })
  }

  #fail(batch: Request[], error: Error): void {
    for (const request of batch) {
      const call = this.#pending.get(request[0])
      if (call === undefined) continue
      this.#pending.delete(call.id)
      call.reject(error)
    }
  }

  readonly #onMessage = (message: unknown): void => {
    if (!isMessage(message)) return
    const replies = (message as { r?: unknown }).r
    if (!Array.isArray(replies)) return
    const pending = this.#pending
    for (const reply of replies as Reply[]) {
      const call = pending.get(reply[0])
      // Timed out already: the answer came too late and is dropped.
      if (call === undefined) continue
      pending.delete(call.id)
      if (reply[1] === 1) call.resolve(reply[2])
      else call.reject(errorFrom(reply[2]))
    }
  }

  readonly #onDisconnect = (): void => {
    this.#closed = this.#closedError()
    const calls = [...this.#pending.values()]
    this.#pending.clear()
    for (const call of calls) call.reject(this.#closed)
  }

  #closedError(): Error {
    return new BackendError(
      'ERR_CACHETTE_BACKEND_UNAVAILABLE',
      'ClusterCache: the IPC channel to the primary process is closed',
    )
  }

  readonly #tick = (): void => {
    if (this.#pending.size === 0) {
      clearInterval(this.#timer)
      this.#timer = undefined
      return
    }
    const now = performance.now()
    for (const call of this.#pending.values()) {
      if (call.deadline > now) continue
      this.#pending.delete(call.id)
      call.reject(
        new BackendTimeoutError(
          `ClusterCache.${OP_NAMES[call.op]}: no answer from the primary process within ${call.timeoutMs} ms`,
          call.timeoutMs,
        ),
      )
    }
  }
}

let channel: WorkerChannel | undefined

/** This worker's channel to the primary (created on first use). */
export function workerChannel(): WorkerChannel {
  channel ??= new WorkerChannel(process as unknown as IpcEndpoint)
  return channel
}
