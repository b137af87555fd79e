/**
 * The `cachette` command: {@link main} runs one command against the
 * configured cache and resolves its exit code. Everything it touches (the
 * streams, whether they are terminals, the environment, the working
 * directory) comes through {@link CliIO}, so tests run it in-process.
 *
 * It goes through the `Cache` facade with `CACHE_RAISE_ERRORS` forced on, so
 * a backend failure is an error (exit code 3) instead of the miss an app
 * would see.
 */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { inspect } from 'node:util'
import { ClusterCache } from '../backends/cluster/index.js'
import { FileSystemCache } from '../backends/filesystem/index.js'
import { MemcachedCache } from '../backends/memcached/index.js'
import { SimpleCache } from '../backends/memory/index.js'
import { NullCache } from '../backends/null/index.js'
import { Cache } from '../cache.js'
import type { CacheConfig } from '../config-types.js'
import type { CacheBackend } from '../core/backend.js'
import { ConfigError, codeOf } from '../core/errors.js'
import type { Logger } from '../core/log.js'
import { type CommandName, type Invocation, isDestructive, parseInvocation, USAGE } from './args.js'
import { loadConfig } from './config.js'
import { ProgressBar, type TextSink } from './progress.js'

export type { TextSink } from './progress.js'

/** The exit codes of the `cachette` command. */
export const ExitCode = {
  /** Done. */
  Ok: 0,
  /** A miss or a key not found, or the confirmation was declined. */
  NotFound: 1,
  /** A usage or configuration error; nothing was changed. */
  Usage: 2,
  /** The backend failed (unreachable, timed out, refused). */
  Backend: 3,
} as const

/** What {@link main} reads and writes; each member defaults to the process's own. */
export interface CliIO {
  /** Results: values, keys, figures, summaries. */
  readonly stdout: TextSink
  /** Messages, questions and the progress bar. */
  readonly stderr: TextSink
  /** Where the answer to a confirmation question is read from. */
  readonly stdin: AsyncIterable<string | Uint8Array>
  /** Sets both {@link CliIO.stdinIsTTY} and {@link CliIO.stderrIsTTY}. */
  readonly isTTY?: boolean
  /**
   * Whether someone can answer at a terminal. Without it (and without
   * `--yes`) destructive commands refuse. Defaults to `stdin.isTTY`.
   */
  readonly stdinIsTTY?: boolean
  /** Whether stderr is a terminal, for the progress bar. Defaults to `stderr.isTTY`. */
  readonly stderrIsTTY?: boolean
  /** Where `CACHE_*` variables are read from. */
  readonly env: Record<string, string | undefined>
  /** Where a relative `--config` path is resolved. */
  readonly cwd: string
}

/** The IO with every default filled in. */
interface Context {
  readonly stdout: TextSink
  readonly stderr: TextSink
  readonly stdin: AsyncIterable<string | Uint8Array>
  readonly stdinIsTTY: boolean
  readonly stderrIsTTY: boolean
  readonly env: Record<string, string | undefined>
  readonly cwd: string
  readonly debug: boolean
}

/** A backend that cannot list its keys was asked to (`keys`, `clear --prefix`). Exit code 2. */
class NotListableError extends Error {
  override name = 'NotListableError'
  /** Always `'ERR_CACHETTE_NOT_LISTABLE'`. */
  readonly code = 'ERR_CACHETTE_NOT_LISTABLE' as const
}

const isTerminal = (stream: unknown): boolean => (stream as { isTTY?: unknown }).isTTY === true

function contextOf(io: Partial<CliIO>, debug: boolean): Context {
  const stdin = io.stdin ?? process.stdin
  const stderr = io.stderr ?? process.stderr
  return {
    stdout: io.stdout ?? process.stdout,
    stderr,
    stdin,
    stdinIsTTY: io.stdinIsTTY ?? io.isTTY ?? isTerminal(stdin),
    stderrIsTTY: io.stderrIsTTY ?? io.isTTY ?? isTerminal(stderr),
    env: io.env ?? process.env,
    cwd: io.cwd ?? process.cwd(),
    debug,
  }
}

/**
 * Runs the `cachette` command line `argv` (without `node` and the script
 * name) and resolves the exit code (see {@link ExitCode}). Never rejects:
 * errors are printed to stderr, with a stack trace only under `--debug`.
 *
 * @example
 * const code = await main(['get', 'user:42', '--json'], { env: { CACHE_TYPE: 'RedisCache' } })
 */
export async function main(argv: readonly string[], io: Partial<CliIO> = {}): Promise<number> {
  let invocation: Invocation
  try {
    invocation = parseInvocation(argv)
  } catch (error) {
    const ctx = contextOf(io, argv.includes('--debug'))
    ctx.stderr.write(`cachette: ${(error as Error).message}\nRun cachette --help for usage.\n`)
    return ExitCode.Usage
  }
  const ctx = contextOf(io, invocation.debug)
  if (invocation.help) {
    ctx.stdout.write(USAGE)
    return ExitCode.Ok
  }
  if (invocation.version) {
    ctx.stdout.write(`${packageVersion()}\n`)
    return ExitCode.Ok
  }
  const command = invocation.command as CommandName
  if (isDestructive(command) && !invocation.yes && !ctx.stdinIsTTY) {
    const what = command === 'delete' ? 'delete keys' : 'clear the cache'
    ctx.stderr.write(
      `cachette: refusing to ${what} without confirmation: stdin is not a terminal, so there is no one to ask. Pass --yes (-y) to go ahead.\n`,
    )
    return ExitCode.Usage
  }
  let cache: Cache | undefined
  try {
    const config = await loadConfig(invocation.config, ctx.env, ctx.cwd)
    if (config.type === undefined) {
      throw new ConfigError(
        'CACHE_TYPE',
        invocation.config === undefined
          ? 'not set: set CACHE_TYPE (and the CACHE_* variables of that backend), or pass --config <file>'
          : `not set in ${invocation.config}`,
      )
    }
    cache = new Cache({ logger: cliLogger(ctx), ...config, raiseErrors: true } as CacheConfig)
    const backend = await cache.ready()
    if (typeof config.type === 'string' && isOwnMemory(backend))
      return refuseOwnMemory(ctx, backend)
    return await run(command, invocation, ctx, cache, backend)
  } catch (error) {
    return failure(ctx, error)
  } finally {
    if (cache !== undefined) await closeWithin(cache, 2000)
  }
}

/**
 * Whether `backend` keeps its entries in the memory of the process that made
 * it, so that a `CACHE_TYPE` name would give the command an empty store of its
 * own instead of the app's (FileSystemCache is in-process too, but its
 * entries are on a disk the command shares).
 */
function isOwnMemory(backend: CacheBackend): boolean {
  return (
    backend instanceof SimpleCache ||
    backend instanceof NullCache ||
    backend instanceof ClusterCache
  )
}

function refuseOwnMemory(ctx: Context, backend: CacheBackend): number {
  const name = nameOf(backend)
  ctx.stderr.write(
    `cachette: ${name} keeps its entries in the memory of the app's own process, which this command cannot reach: it would only see the empty ${name} of its own process, so it does nothing. Run it against a shared backend (RedisCache, MemcachedCache, FileSystemCache, S3Cache, ...), or clear an in-process cache from inside the app (cache.clear()).\n`,
  )
  return ExitCode.Usage
}

function run(
  command: CommandName,
  invocation: Invocation,
  ctx: Context,
  cache: Cache,
  backend: CacheBackend,
): Promise<number> {
  switch (command) {
    case 'get':
      return getCommand(invocation, ctx, cache)
    case 'delete':
      return deleteCommand(invocation, ctx, cache, backend)
    case 'keys':
      return keysCommand(invocation, ctx, backend)
    case 'clear':
      return invocation.prefix === undefined
        ? clearCommand(invocation, ctx, cache, backend)
        : clearPrefixCommand(invocation, invocation.prefix, ctx, cache, backend)
    case 'stats':
      return statsCommand(invocation, ctx, backend)
  }
}

// ---- the commands ----------------------------------------------------------------

async function getCommand(invocation: Invocation, ctx: Context, cache: Cache): Promise<number> {
  const key = invocation.args[0] as string
  const value = await cache.get(key)
  if (value === undefined) {
    ctx.stderr.write(`cachette: no entry for ${JSON.stringify(key)}\n`)
    return ExitCode.NotFound
  }
  ctx.stdout.write(`${invocation.json ? toJson(value) : formatValue(value)}\n`)
  return ExitCode.Ok
}

async function deleteCommand(
  invocation: Invocation,
  ctx: Context,
  cache: Cache,
  backend: CacheBackend,
): Promise<number> {
  const keys = [...new Set(invocation.args)]
  const question = `Delete ${count(keys.length, 'key')} (${listed(keys)}) from ${describeBackend(backend)}?`
  if (!invocation.yes && !(await confirm(ctx, question))) return declined(ctx)
  const missing: string[] = []
  for (const key of keys) {
    if (!(await cache.delete(key))) missing.push(key)
  }
  ctx.stdout.write(`deleted ${count(keys.length - missing.length, 'key')}\n`)
  if (missing.length === 0) return ExitCode.Ok
  ctx.stderr.write(`cachette: not found: ${listed(missing, missing.length)}\n`)
  return ExitCode.NotFound
}

async function keysCommand(
  invocation: Invocation,
  ctx: Context,
  backend: CacheBackend,
): Promise<number> {
  const list = listerOf(backend)
  const prefix = invocation.prefix ?? ''
  if (invocation.json) {
    const keys: string[] = []
    for await (const key of list(prefix)) if (key !== '') keys.push(key)
    ctx.stdout.write(`${JSON.stringify(keys)}\n`)
    return ExitCode.Ok
  }
  // Written in blocks: one write per key is slow for a million keys.
  let block = ''
  let lines = 0
  for await (const key of list(prefix)) {
    if (key === '') continue
    block += `${key}\n`
    if (++lines === 1000) {
      ctx.stdout.write(block)
      block = ''
      lines = 0
    }
  }
  if (block !== '') ctx.stdout.write(block)
  return ExitCode.Ok
}

async function clearCommand(
  invocation: Invocation,
  ctx: Context,
  cache: Cache,
  backend: CacheBackend,
): Promise<number> {
  const target = describeBackend(backend)
  if (!invocation.yes && !(await confirm(ctx, `Remove every entry of ${target}?`))) {
    return declined(ctx)
  }
  if (!(await cache.clear())) {
    throw new Error(`${nameOf(backend)}.clear() reported that some entries could not be removed`)
  }
  ctx.stdout.write(`cleared ${target}\n`)
  return ExitCode.Ok
}

/**
 * Lists the keys under `prefix` first (so the question and the progress bar
 * can give the count), then deletes them in batches with `deleteMany`.
 */
async function clearPrefixCommand(
  invocation: Invocation,
  prefix: string,
  ctx: Context,
  cache: Cache,
  backend: CacheBackend,
): Promise<number> {
  const list = listerOf(backend)
  const starting = `starting with ${JSON.stringify(prefix)}`
  const keys = await collectKeys(list, prefix, ctx)
  if (keys.length === 0) {
    ctx.stdout.write(`no keys ${starting}\n`)
    return ExitCode.Ok
  }
  const question = `Delete ${count(keys.length, 'key')} ${starting} from ${describeBackend(backend)}?`
  if (!invocation.yes && !(await confirm(ctx, question))) return declined(ctx)
  const bar = ctx.stderrIsTTY ? new ProgressBar(ctx.stderr, keys.length) : undefined
  bar?.update(0)
  let deleted = 0
  for (let at = 0; at < keys.length; at += invocation.batchSize) {
    const batch = keys.slice(at, at + invocation.batchSize)
    deleted += (await cache.deleteMany(batch)).length
    bar?.update(at + batch.length)
  }
  bar?.finish()
  ctx.stdout.write(`deleted ${count(deleted, 'key')} ${starting}\n`)
  return ExitCode.Ok
}

async function statsCommand(
  invocation: Invocation,
  ctx: Context,
  backend: CacheBackend,
): Promise<number> {
  const second = secondOf(backend)
  const store = second ?? backend
  const figures: Record<string, string | number> = { backend: nameOf(backend) }
  if (second !== undefined) figures['second tier'] = nameOf(second)
  const prefix = keyPrefixOf(store)
  if (prefix !== undefined) figures['key prefix'] = prefix
  const list = listerOf(backend, false)
  if (list !== undefined) {
    let keys = 0
    for await (const key of list('')) if (key !== '') keys++
    figures.keys = keys
  }
  const reporter =
    backend.stats !== undefined ? backend : second?.stats !== undefined ? second : undefined
  if (reporter?.stats !== undefined) Object.assign(figures, await reporter.stats())
  if (invocation.json) {
    ctx.stdout.write(`${JSON.stringify(figures, null, 2)}\n`)
    return ExitCode.Ok
  }
  const width = Math.max(...Object.keys(figures).map((name) => name.length))
  for (const [name, value] of Object.entries(figures)) {
    const shown = name === 'key prefix' ? JSON.stringify(value) : String(value)
    ctx.stdout.write(`${name.padEnd(width)}  ${shown}\n`)
  }
  return ExitCode.Ok
}

// ---- backends --------------------------------------------------------------------

function nameOf(backend: CacheBackend): string {
  return backend.constructor?.name || 'the backend'
}

/** The second tier of a two-tier backend (`TieredCache`), if `backend` is one. */
function secondOf(backend: CacheBackend): CacheBackend | undefined {
  const second = (backend as { second?: unknown }).second
  return typeof second === 'object' &&
    second !== null &&
    typeof (second as CacheBackend).get === 'function'
    ? (second as CacheBackend)
    : undefined
}

function keyPrefixOf(backend: CacheBackend): string | undefined {
  const prefix = (backend as { keyPrefix?: unknown }).keyPrefix
  return typeof prefix === 'string' ? prefix : undefined
}

/** `RedisCache (key prefix "app:")`, `FileSystemCache in /var/cache/app`, `TieredCache over ...`. */
function describeBackend(backend: CacheBackend): string {
  const name = nameOf(backend)
  const second = secondOf(backend)
  if (second !== undefined) return `${name} over ${describeBackend(second)}`
  const prefix = keyPrefixOf(backend)
  if (prefix !== undefined) return `${name} (key prefix ${JSON.stringify(prefix)})`
  const dir = (backend as { dir?: unknown }).dir
  return typeof dir === 'string' ? `${name} in ${dir}` : name
}

type Lister = (prefix: string) => AsyncIterable<string>

/**
 * The `keys()` of the backend, or of its second tier (a `TieredCache`'s
 * first tier is this process's memory, empty in a command-line run).
 * @throws {NotListableError} when neither can list, unless `required` is false.
 */
function listerOf(backend: CacheBackend): Lister
function listerOf(backend: CacheBackend, required: false): Lister | undefined
function listerOf(backend: CacheBackend, required = true): Lister | undefined {
  const second = secondOf(backend)
  for (const b of [backend, second]) {
    if (b?.keys !== undefined) return (prefix) => (b.keys as Lister).call(b, prefix)
  }
  if (!required) return undefined
  const store = second ?? backend
  if (isA(store, MemcachedCache)) {
    throw new NotListableError(
      'Memcached cannot list keys; use `cachette clear` to clear the whole namespace',
    )
  }
  if (isA(store, FileSystemCache)) {
    throw new NotListableError(
      'FileSystemCache cannot list keys (its files are named by hashes of the keys); use `cachette clear` to clear the whole cache',
    )
  }
  throw new NotListableError(`${nameOf(store)} cannot list its keys`)
}

/**
 * `instanceof`, or a class of the same name up the prototype chain: a config
 * module importing `cachette` gets the package's own copy of the classes,
 * not this bundle's.
 */
function isA(backend: CacheBackend, cls: Function): boolean {
  if (backend instanceof cls) return true
  for (let proto = Object.getPrototypeOf(backend); proto !== null; ) {
    if ((proto.constructor as Function | undefined)?.name.replace(/^_/, '') === cls.name)
      return true
    proto = Object.getPrototypeOf(proto)
  }
  return false
}

/** Every key under `prefix`; on a terminal, a running count while it lists. */
async function collectKeys(list: Lister, prefix: string, ctx: Context): Promise<string[]> {
  const keys: string[] = []
  let drawn = false
  let last = Date.now()
  for await (const key of list(prefix)) {
    if (key !== '') keys.push(key)
    if (ctx.stderrIsTTY && keys.length % 1000 === 0 && Date.now() - last >= 100) {
      ctx.stderr.write(`\rlisting: ${keys.length} keys`)
      drawn = true
      last = Date.now()
    }
  }
  if (drawn) ctx.stderr.write(`\rlisting: ${keys.length} keys\n`)
  return keys
}

// ---- talking to the user -----------------------------------------------------------

/** Asks on stderr and reads one line from stdin: `y` or `yes` (any case) agrees. */
async function confirm(ctx: Context, question: string): Promise<boolean> {
  ctx.stderr.write(`${question} [y/N] `)
  const answer = await readLine(ctx.stdin)
  return /^\s*y(es)?\s*$/i.test(answer)
}

async function readLine(input: AsyncIterable<string | Uint8Array>): Promise<string> {
  const decoder = new TextDecoder()
  let text = ''
  for await (const chunk of input) {
    text += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true })
    const end = text.indexOf('\n')
    if (end >= 0) return text.slice(0, end)
  }
  return text
}

function declined(ctx: Context): number {
  ctx.stderr.write('cachette: cancelled; nothing was deleted\n')
  return ExitCode.NotFound
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`
}

/** Up to `max` keys, quoted, then how many more. */
function listed(keys: readonly string[], max = 5): string {
  const shown = keys.slice(0, max).map((k) => JSON.stringify(k))
  return keys.length > max ? `${shown.join(', ')} and ${keys.length - max} more` : shown.join(', ')
}

/** Strings as they are; anything else as `util.inspect` shows it, to any depth. */
function formatValue(value: unknown): string {
  return typeof value === 'string' ? value : inspect(value, { depth: null })
}

/**
 * JSON, with the types JSON lacks made readable: BigInt as a decimal string,
 * Map as `[key, value]` pairs, Set as an array, bytes as `{ type: 'Buffer',
 * data }` (Buffer) or an array of numbers.
 */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'bigint') return v.toString()
    if (v instanceof Map) return [...v.entries()]
    if (v instanceof Set) return [...v]
    if (v instanceof Uint8Array) return Array.from(v)
    return v
  })
}

/** Warnings always; the errors a backend logs on its own (reconnections) only under `--debug`. */
function cliLogger(ctx: Context): Logger {
  return {
    warn: (message) => {
      ctx.stderr.write(`cachette: warning: ${message}\n`)
    },
    error: (message, error) => {
      if (!ctx.debug) return
      ctx.stderr.write(`cachette: ${message}\n${error === undefined ? '' : `${inspect(error)}\n`}`)
    },
  }
}

/** The codes of the errors that are the caller's to fix (exit code 2): configuration and usage. */
const USAGE_CODES: ReadonlySet<string> = new Set([
  'ERR_CACHETTE_CONFIG',
  'ERR_CACHETTE_MISSING_DEPENDENCY',
  'ERR_CACHETTE_NOT_LISTABLE',
  'ERR_CACHETTE_USAGE',
  'ERR_CACHETTE_INVALID_KEY',
])

/**
 * Prints `error` and returns its exit code: 2 for configuration and usage
 * errors, 3 for the rest (backend failures). Decided by the error's `code`.
 */
function failure(ctx: Context, error: unknown): number {
  const code = codeOf(error)
  const usage = code !== undefined && USAGE_CODES.has(code)
  const message = error instanceof Error ? error.message : String(error)
  const kind =
    code === 'ERR_CACHETTE_CONFIG' ? 'configuration error: ' : usage ? '' : 'backend error: '
  ctx.stderr.write(`cachette: ${kind}${message}\n`)
  if (ctx.debug) ctx.stderr.write(`${inspect(error)}\n`)
  return usage ? ExitCode.Usage : ExitCode.Backend
}

/** Closes the cache, giving up after `ms` so a stuck connection cannot hold the command. */
async function closeWithin(cache: Cache, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    cache.close().catch(() => {}),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms)
      timer.unref()
    }),
  ])
  clearTimeout(timer)
}

let version: string | undefined

/** cachette's version, from the nearest `package.json` named `cachette` above this file. */
function packageVersion(): string {
  if (version !== undefined) return version
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string
        version?: string
      }
      if (pkg.name === 'cachette' && typeof pkg.version === 'string') {
        version = pkg.version
        return version
      }
    } catch {
      // No package.json here: keep going up.
    }
    const parent = dirname(dir)
    if (parent === dir) return 'unknown'
    dir = parent
  }
}
