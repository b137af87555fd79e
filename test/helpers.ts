import { BaseCache, type Logger } from '../src/index.js'

/** A clock for backends that take one: starts at a fixed time and moves only when told. */
export function fakeClock(start = 1_700_000_000_000) {
  let t = start
  return {
    now: () => t,
    advance(ms: number) {
      t += ms
    },
  }
}

/** A logger that records what it is given. */
export function collectingLogger(): Logger & { warnings: string[]; errors: string[] } {
  const warnings: string[] = []
  const errors: string[] = []
  return {
    warnings,
    errors,
    warn: (m) => warnings.push(m),
    error: (m) => errors.push(m),
  }
}

/**
 * A backend whose every operation fails, as one behind a dead connection
 * would: for testing that callers keep serving (it is not a stand-in for a
 * real server; the real-server backends are tested against real servers).
 */
export class DownBackend extends BaseCache {
  #fail(): never {
    throw new Error('backend down')
  }
  async get(): Promise<unknown> {
    this.#fail()
  }
  async set(): Promise<boolean> {
    this.#fail()
  }
  async add(): Promise<boolean> {
    this.#fail()
  }
  async delete(): Promise<boolean> {
    this.#fail()
  }
  async has(): Promise<boolean> {
    this.#fail()
  }
  async clear(): Promise<boolean> {
    this.#fail()
  }
}

/** A response as the tests inspect it: raw body bytes and their UTF-8 text. */
export interface Reply {
  status: number
  headers: import('node:http').IncomingHttpHeaders
  body: Buffer
  text: string
}

/**
 * One request with node:http to 127.0.0.1: no headers added behind the test's
 * back (fetch adds Accept-Encoding and decompresses), the raw body returned.
 */
export async function httpRequest(
  port: number,
  path: string,
  { method = 'GET', headers = {} }: { method?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const http = await import('node:http')
  return new Promise<Reply>((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const body = Buffer.concat(chunks)
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            text: body.toString('utf8'),
          })
        })
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end()
  })
}

/** What {@link get} resolves: the status, the headers and the body as text. */
export interface Got {
  status: number
  headers: import('node:http').IncomingHttpHeaders
  body: string
}

/**
 * One request with exactly these headers (fetch would add Cache-Control to
 * conditional requests), in the argument order the HTTP caching tests use.
 */
export async function get(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<Got> {
  const reply = await httpRequest(port, path, { method, headers })
  return { status: reply.status, headers: reply.headers, body: reply.text }
}

/** A server listening on a free loopback port. */
export interface Listening {
  port: number
  /** Stops listening and drops open connections. */
  close(): Promise<void>
}

/** Listens on a free loopback port with `server`, or a new node:http server for `handler`. */
export async function listen(
  target: import('node:http').Server | import('node:http').RequestListener,
): Promise<Listening> {
  const { createServer } = await import('node:http')
  const server = typeof target === 'function' ? createServer(target) : target
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as import('node:net').AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** How long {@link storesSettled} waits at most: past it the test's own assertion reports what is missing. */
const SETTLE_DEADLINE_MS = 10_000

/**
 * Resolves once every view render started so far in this process has been
 * stored or abandoned (the background store after a response is sent), or
 * after `ms` (a render that never settles then fails the assertion that
 * follows, not this wait). Background work that is not a view store (an
 * HTTP cache invalidation after `finish`, a background refresh request) is
 * not covered: wait for its outcome with {@link eventually}.
 */
export async function storesSettled(ms = SETTLE_DEADLINE_MS): Promise<void> {
  const { viewsSettled } = await import('../src/core/view/index.js')
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    viewsSettled(),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms)
    }),
  ])
  clearTimeout(timer)
}

/**
 * `httpRequest`, then {@link storesSettled}: the server's background store
 * (after `finish`) has run when it resolves. Servers of another process are
 * not covered (wait for their condition with {@link eventually}).
 */
export function settledRequest() {
  return async (
    port: number,
    path: string,
    init: { method?: string; headers?: Record<string, string> } = {},
  ): Promise<Reply> => {
    const reply = await httpRequest(port, path, init)
    await storesSettled()
    return reply
  }
}

/** A logger that drops everything, for tests that do not look at logs. */
export const silentLogger = { warn: () => {}, error: () => {} }

/**
 * Starts resources once, on first use, and stops them all in `stopAll()`
 * (call it from the file's `after`). Also tracks backends and caches to close.
 */
export class Lifetimes {
  readonly #stops: (() => Promise<unknown>)[] = []

  /** A getter that starts `start()` on first call and registers `stop` for it. */
  lazily<T>(start: () => Promise<T>, stop: (t: T) => Promise<unknown>): () => Promise<T> {
    let started: Promise<T> | undefined
    return () => {
      started ??= start().then((t) => {
        this.#stops.push(() => stop(t))
        return t
      })
      return started
    }
  }

  /** Registers a stop (or close) to run at the end. */
  defer(stop: () => Promise<unknown>): void {
    this.#stops.push(stop)
  }

  /** Registers `thing.close()` to run at the end; returns `thing`. */
  track<T extends { close(): Promise<unknown> }>(thing: T): T {
    this.defer(() => thing.close())
    return thing
  }

  /** Runs every registered stop, latest first, ignoring failures. */
  async stopAll(): Promise<void> {
    for (const stop of this.#stops.splice(0).reverse()) await stop().catch(() => {})
  }
}

/** Polls `check` until it resolves true, failing the test after `ms`. */
export async function eventually(
  check: () => Promise<boolean>,
  ms: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + ms
  let last: unknown
  while (Date.now() < deadline) {
    try {
      if (await check()) return
    } catch (error) {
      last = error
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`${what} did not happen within ${ms} ms${last ? `: ${String(last)}` : ''}`)
}

/**
 * Runs `code` (an ES module using `./src/...` imports, printing JSON on
 * stdout) in a child process whose module resolver cannot find `pkg`, as on
 * a machine where it is not installed; resolves the parsed output.
 */
export async function runWithoutPackage(pkg: string, code: string): Promise<unknown> {
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const { execFile } = await import('node:child_process')
  const { promisify } = await import('node:util')
  const dir = mkdtempSync(join(tmpdir(), 'cachette-no-package-'))
  const hide = join(dir, 'hide.cjs')
  writeFileSync(
    hide,
    // Both hooks: tsx's resolver retries a failed _resolveFilename on its own.
    `const Module = require('node:module')
const missing = (request) => {
  const error = new Error("Cannot find module '" + request + "'")
  error.code = 'MODULE_NOT_FOUND'
  return error
}
const resolve = Module._resolveFilename
Module._resolveFilename = function (request, ...rest) {
  if (request === ${JSON.stringify(pkg)}) throw missing(request)
  return resolve.call(this, request, ...rest)
}
const load = Module._load
Module._load = function (request, ...rest) {
  if (request === ${JSON.stringify(pkg)}) throw missing(request)
  return load.call(this, request, ...rest)
}`,
  )
  try {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--require', hide, '--import', 'tsx', '--input-type=module', '-e', code],
      { cwd: join(import.meta.dirname, '..') },
    )
    return JSON.parse(stdout)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
