/**
 * Internal: one pipelined connection to one memcached server.
 *
 * Requests are written as they come, without waiting for earlier answers;
 * memcached answers in order, so each response settles the oldest pending
 * request (quiet requests the server skipped settle as `null`). Built to fail
 * fast, since a cache that is down must not hold up a request:
 * - every batch gets at most `commandTimeout` ms for its answer, after which
 *   the connection is dropped and everything pending on it rejects;
 * - a connection attempt gets `connectTimeout` ms;
 * - after a failure the server counts as down and calls reject at once,
 *   without touching the network, until a retry delay has passed (doubling
 *   from 50 ms up to `maxRetryDelay`); then the next call reconnects. No
 *   timer runs in the background, so an idle cache keeps no process alive
 *   beyond its open sockets.
 * With credentials, the SASL PLAIN exchange is the first request on every
 * new connection; memcached handles requests in order, so the ones written
 * behind it run authenticated.
 */
import { connect as netConnect, type Socket } from 'node:net'
import { type ConnectionOptions as TlsOptions, connect as tlsConnect } from 'node:tls'
import { BackendError, BackendTimeoutError, type CauseOptions } from '../../core/errors.js'
import {
  isQuiet,
  Op,
  type Request,
  type Response,
  ResponseReader,
  Status,
  sizeOf,
  statusText,
  writeRequest,
} from './protocol.js'

/** Where a server listens: TCP host and port, or a Unix socket path. */
export interface ServerAddress {
  /** Host name or IP address (TCP). */
  host?: string
  /** TCP port. */
  port?: number
  /** Unix socket path. */
  path?: string
  /** `host:port`, `[v6]:port` or the socket path, for messages and the hash ring. */
  label: string
}

/** How a connection behaves; see the module comment. */
export interface ConnectionSettings {
  commandTimeout: number
  connectTimeout: number
  maxRetryDelay: number
  username?: string
  password?: string
  /** TLS options, or `undefined` for plain TCP. */
  tls?: TlsOptions
}

/**
 * A failed SASL authentication: wrong user name or password, or SASL not
 * enabled on the server. Code `ERR_CACHETTE_BACKEND_AUTH`.
 */
export class MemcachedAuthError extends BackendError {
  declare readonly code: 'ERR_CACHETTE_BACKEND_AUTH'
  constructor(message: string, options?: CauseOptions) {
    super('ERR_CACHETTE_BACKEND_AUTH', message, options)
    this.name = 'MemcachedAuthError'
  }
}

/**
 * The server is down (or was just now), so the request was not sent or not
 * answered; `cause` says why (a {@link BackendTimeoutError} when it did not
 * answer in time). Code `ERR_CACHETTE_BACKEND_UNAVAILABLE`.
 */
export class MemcachedUnavailableError extends BackendError {
  declare readonly code: 'ERR_CACHETTE_BACKEND_UNAVAILABLE'
  constructor(message: string, options?: CauseOptions) {
    super('ERR_CACHETTE_BACKEND_UNAVAILABLE', message, options)
    this.name = 'MemcachedUnavailableError'
  }
}

interface Batch {
  results: (Response | null)[]
  left: number
  resolve: (results: (Response | null)[]) => void
  reject: (error: Error) => void
}

interface Pending {
  opaque: number
  quiet: boolean
  /** `undefined` for the SASL request. */
  batch: Batch | undefined
  index: number
}

const MIN_RETRY_DELAY = 50

/** One server's connection. */
export class Connection {
  readonly address: ServerAddress
  readonly #settings: ConnectionSettings
  #socket: Socket | undefined
  #reader = new ResponseReader()
  /** Requests awaiting an answer, oldest first, from `#head` on. */
  #pending: Pending[] = []
  #head = 0
  #opaque = 0
  #downUntil = 0
  #retryDelay = MIN_RETRY_DELAY
  #lastError: Error | undefined
  #closed = false

  constructor(address: ServerAddress, settings: ConnectionSettings) {
    this.address = address
    this.#settings = settings
  }

  /**
   * Sends `requests` in one write and resolves their responses in order,
   * `null` where a quiet request got no answer. Rejects if the server is down,
   * the connection breaks or the answer takes longer than `commandTimeout`.
   * A batch whose last request is quiet gets a `Noop` appended, so it always ends.
   */
  exec(requests: readonly Request[]): Promise<(Response | null)[]> {
    if (this.#closed) {
      return Promise.reject(new MemcachedUnavailableError(`${this.address.label}: client closed`))
    }
    const socket = this.#socket ?? this.#open()
    if (socket === undefined) {
      const wait = Math.max(0, this.#downUntil - Date.now())
      return Promise.reject(
        new MemcachedUnavailableError(
          `memcached ${this.address.label} is down (${this.#lastError?.message ?? 'unreachable'}); the request was not sent, retrying in ${wait} ms`,
        ),
      )
    }
    const last = requests[requests.length - 1]
    const list =
      last !== undefined && isQuiet(last.opcode) ? [...requests, { opcode: Op.Noop }] : requests
    return new Promise((resolve, reject) => {
      const batch: Batch = {
        results: new Array<Response | null>(list.length).fill(null),
        left: list.length,
        resolve,
        reject,
      }
      let size = 0
      for (const r of list) size += sizeOf(r)
      const out = Buffer.allocUnsafe(size)
      let at = 0
      for (let i = 0; i < list.length; i++) {
        const r = list[i] as Request
        const opaque = this.#nextOpaque()
        at = writeRequest(out, at, r, opaque)
        this.#pending.push({ opaque, quiet: isQuiet(r.opcode), batch, index: i })
      }
      socket.write(out)
    })
  }

  #nextOpaque(): number {
    this.#opaque = (this.#opaque + 1) >>> 0
    return this.#opaque
  }

  /** Opens a socket unless the server is in its retry delay. */
  #open(): Socket | undefined {
    if (Date.now() < this.#downUntil) return undefined
    const { host, port, path } = this.address
    const settings = this.#settings
    const socket =
      settings.tls !== undefined
        ? tlsConnect({ ...settings.tls, host, port, path } as TlsOptions)
        : path !== undefined
          ? netConnect({ path })
          : netConnect({ host: host as string, port: port as number })
    socket.setNoDelay(true)
    this.#socket = socket
    this.#reader = new ResponseReader()
    const connectTimer = setTimeout(() => {
      this.#fail(
        socket,
        new BackendTimeoutError(
          `connecting took longer than ${settings.connectTimeout} ms (connectTimeout)`,
          settings.connectTimeout,
        ),
      )
    }, settings.connectTimeout)
    connectTimer.unref()
    socket.once(settings.tls !== undefined ? 'secureConnect' : 'connect', () => {
      clearTimeout(connectTimer)
      socket.setTimeout(settings.commandTimeout)
    })
    socket.on('timeout', () => {
      // Idle after the last byte either way: only a failure if something is unanswered.
      if (this.#head < this.#pending.length) {
        this.#fail(
          socket,
          new BackendTimeoutError(
            `no answer within ${settings.commandTimeout} ms (commandTimeout)`,
            settings.commandTimeout,
          ),
        )
      }
    })
    socket.on('data', (chunk: Buffer) => {
      try {
        this.#reader.push(chunk, (r) => this.#settle(socket, r))
      } catch (error) {
        this.#fail(socket, error as Error)
      }
    })
    socket.on('error', (error) => this.#fail(socket, error))
    socket.on('close', () => {
      clearTimeout(connectTimer)
      this.#fail(
        socket,
        new BackendError('ERR_CACHETTE_BACKEND_UNAVAILABLE', 'connection closed by the server'),
      )
    })
    if (settings.username !== undefined && settings.password !== undefined) {
      const opaque = this.#nextOpaque()
      const request: Request = {
        opcode: Op.SaslAuth,
        key: Buffer.from('PLAIN'),
        value: Buffer.from(`\u0000${settings.username}\u0000${settings.password}`),
      }
      const out = Buffer.allocUnsafe(sizeOf(request))
      writeRequest(out, 0, request, opaque)
      this.#pending.push({ opaque, quiet: false, batch: undefined, index: 0 })
      socket.write(out)
    }
    return socket
  }

  #settle(socket: Socket, r: Response): void {
    // Quiet requests ahead of this answer were skipped by the server: they are done.
    for (;;) {
      const head = this.#shift()
      if (head === undefined) {
        this.#fail(
          socket,
          new BackendError(
            'ERR_CACHETTE_BACKEND_FAILED',
            `memcached protocol error: unexpected response ${r.opaque}`,
          ),
        )
        return
      }
      if (head.opaque !== r.opaque) {
        if (!head.quiet) {
          this.#fail(
            socket,
            new BackendError(
              'ERR_CACHETTE_BACKEND_FAILED',
              'memcached protocol error: responses out of order',
            ),
          )
          return
        }
        this.#done(head, null)
        continue
      }
      if (head.batch === undefined) {
        this.#authenticated(socket, r)
        return
      }
      this.#retryDelay = MIN_RETRY_DELAY
      this.#done(head, r)
      return
    }
  }

  /** The oldest pending request, removed (an index walk, not Array#shift). */
  #shift(): Pending | undefined {
    const pending = this.#pending
    if (this.#head >= pending.length) return undefined
    const p = pending[this.#head++]
    if (this.#head === pending.length) {
      pending.length = 0
      this.#head = 0
    } else if (this.#head >= 1024 && this.#head * 2 >= pending.length) {
      pending.splice(0, this.#head)
      this.#head = 0
    }
    return p
  }

  #authenticated(socket: Socket, r: Response): void {
    if (r.status === Status.Ok) return
    const user = JSON.stringify(this.#settings.username)
    const reason =
      r.status === Status.AuthError
        ? `rejected the credentials of user ${user} (check CACHE_MEMCACHED_USERNAME and CACHE_MEMCACHED_PASSWORD)`
        : r.status === Status.UnknownCommand
          ? 'does not support SASL (start memcached with -S, or configure no credentials)'
          : `answered the SASL authentication with ${statusText(r.status)}`
    this.#fail(socket, new MemcachedAuthError(`memcached ${this.address.label} ${reason}`))
  }

  #done(p: Pending, r: Response | null): void {
    const batch = p.batch as Batch
    batch.results[p.index] = r
    if (--batch.left === 0) batch.resolve(batch.results)
  }

  /** Drops the connection, rejects everything pending and starts the retry delay. */
  #fail(socket: Socket, error: Error): void {
    if (this.#socket !== socket) return
    this.#socket = undefined
    socket.destroy()
    const pending = this.#pending.slice(this.#head)
    this.#pending = []
    this.#head = 0
    this.#lastError = error
    if (!this.#closed) {
      this.#downUntil = Date.now() + this.#retryDelay
      this.#retryDelay = Math.min(this.#retryDelay * 2, this.#settings.maxRetryDelay)
    }
    const failure =
      error instanceof MemcachedAuthError
        ? error
        : new MemcachedUnavailableError(`memcached ${this.address.label}: ${error.message}`, {
            cause: error,
          })
    const rejected = new Set<Batch>()
    for (const p of pending) {
      if (p.batch === undefined || rejected.has(p.batch)) continue
      rejected.add(p.batch)
      p.batch.reject(failure)
    }
  }

  /** Closes the socket; pending requests reject. */
  close(): void {
    this.#closed = true
    const socket = this.#socket
    if (socket !== undefined) {
      this.#fail(socket, new BackendError('ERR_CACHETTE_BACKEND_UNAVAILABLE', 'client closed'))
    }
  }
}
