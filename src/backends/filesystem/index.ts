import { randomBytes } from 'node:crypto'
import type { Stats } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import {
  type BackendFactoryOptions,
  BaseCache,
  type BaseCacheOptions,
  integerOf,
} from '../../core/backend.js'
import { decodeValue, encodeValue } from '../../core/codec.js'
import {
  BackendTimeoutError,
  ConfigError,
  CorruptEntryError,
  codeOf,
  DeleteManyError,
  NotAnIntegerError,
} from '../../core/errors.js'
import { type DigestFn, type HashMethod, resolveHashMethod } from '../../core/hash.js'
import { storageKey } from '../../core/keys.js'
import { warnOnce } from '../../core/log.js'
import { mapLimit } from '../../core/promise.js'
import { nodeBuiltin } from '../../core/runtime.js'

/** Options of {@link FileSystemCache}. */
export interface FileSystemCacheOptions extends BaseCacheOptions {
  /**
   * The directory holding the entries, created (with its parents) if missing.
   * Give each cache its own directory: {@link FileSystemCache.clear} removes
   * every entry file in it, whoever wrote it. `CACHE_DIR` (or the first of
   * `CACHE_ARGS`) sets it.
   */
  dir: string
  /**
   * The most entries kept, approximately. When a write creates a file beyond
   * it, a prune removes expired entries, then the entries expiring soonest
   * (never-expiring ones last), down to about 90% of the threshold so that
   * the full directory scan a prune costs happens once per ~10% of writes.
   * The bound is approximate: the count is kept in memory, and several
   * processes sharing the directory each keep their own until their next
   * prune re-reads the truth. `0` means unlimited (no counting, no pruning),
   * as in Flask-Caching. `CACHE_THRESHOLD` sets it.
   * @default 500
   */
  threshold?: number
  /**
   * The permission bits of entry files, applied with `chmod` so the umask does
   * not weaken or widen them. Owner-only by default because cached values
   * often hold private data. Must include the owner's read bit.
   * `CACHE_OPTIONS: { mode }` sets it.
   * @default 0o600
   */
  mode?: number
  /**
   * How keys become file names: a `node:crypto` algorithm name or a function
   * returning digest bytes. The name is the hex digest, so keys of any length
   * or alphabet map to safe, fixed-length names. Changing it orphans existing
   * entries (they are still removed by `clear` and by pruning).
   * `CACHE_FILE_HASH_METHOD` sets it.
   * @default 'sha256'
   */
  hashMethod?: HashMethod
  /**
   * The clock, in milliseconds since the epoch, used for expiry. Inject one to
   * test expiry without sleeping.
   * @default Date.now
   */
  clock?: () => number
}

/** A constructor of {@link FileSystemCache} or of a subclass, as the static `factory` uses through `this`. */
export type FileSystemCacheClass = new (options: FileSystemCacheOptions) => FileSystemCache

// On-disk header: 4 bytes magic "CCFS", 1 byte format version, 3 reserved zero
// bytes, then the expiry as a little-endian float64 in ms since the epoch
// (0 = never). The payload that follows is `encodeValue`'s bytes.
const MAGIC = Buffer.from('CCFS', 'latin1')
const VERSION = 1
const HEADER_SIZE = 16

/** Entries in flight at once for bulk operations and scans: bounded so a large batch cannot exhaust file descriptors. */
const IO_CONCURRENCY = 16
/** A temp file older than this is taken to be left by a crashed writer. */
const STALE_TEMP_MS = 60_000

/** The largest entry file read: a bigger one is not ours (or is hostile) and reads as unreadable. */
const MAX_ENTRY_BYTES = 1 << 30
/** An `inc` lock file older than this (wall clock) is taken to be left by a crashed process. */
const STALE_LOCK_MS = 10_000
/** How long `inc` waits for another process's lock before failing. */
const LOCK_WAIT_MS = 20_000

const FANOUT_NAME = /^[0-9a-f]{2}$/
const ENTRY_NAME = /^[0-9a-f]{2,}$/
const TEMP_NAME = /^\.tmp-\d+-[0-9a-f]+$/
const LOCK_NAME = /^[0-9a-f]{2,}\.lock$/

/**
 * Read-only, never following a symlink (ELOOP) and never blocking on open
 * (a FIFO opens at once; without O_NONBLOCK it would wait for a writer).
 */
/**
 * `node:fs/promises`, loaded by the first constructor: not imported at the top,
 * so that `import 'cachette'` works on runtimes without a file system (workerd),
 * where the constructor throws an UnsupportedRuntimeError instead.
 */
let fs: typeof import('node:fs/promises')
/** Flags of every read, set with {@link fs}. */
let READ_FLAGS = 0

/** Loads {@link fs}; throws where the runtime has no `node:fs`. */
function loadFs(): typeof import('node:fs') {
  const sync = nodeBuiltin<typeof import('node:fs')>(
    'node:fs',
    'FileSystemCache',
    'SimpleCache or CloudflareKVCache',
  )
  fs ??= nodeBuiltin<typeof import('node:fs/promises')>(
    'node:fs/promises',
    'FileSystemCache',
    'SimpleCache or CloudflareKVCache',
  )
  const c = sync.constants
  READ_FLAGS = c.O_RDONLY | c.O_NOFOLLOW | c.O_NONBLOCK
  return sync
}

/** Error codes meaning the file system cannot make hard links. */
const NO_LINK = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV'])

const noop = (): void => {}

/** What a header read tells about an entry file. */
interface Meta {
  readonly path: string
  /** Inode at read time, to avoid removing a file another process has since replaced. */
  readonly ino: number
  readonly mtime: number
  /** Expiry in ms since the epoch, 0 = never. Meaningless unless `valid`. */
  readonly expires: number
  /** False for a short file, a foreign header or an empty payload. */
  readonly valid: boolean
}

function writeHeader(out: Buffer, expires: number): void {
  MAGIC.copy(out, 0)
  out[4] = VERSION
  out.fill(0, 5, 8)
  out.writeDoubleLE(expires, 8)
}

/** The expiry the header holds, or `undefined` if it is not one of ours. */
function readHeader(data: Buffer): number | undefined {
  if (data.length < HEADER_SIZE || !data.subarray(0, 4).equals(MAGIC) || data[4] !== VERSION) {
    return undefined
  }
  const expires = data.readDoubleLE(8)
  return Number.isFinite(expires) && expires >= 0 ? expires : undefined
}

/** An opened entry file, or something at an entry's path that is not a regular file. */
type Opened =
  | { readonly fh: FileHandle; readonly stat: Stats }
  | { readonly fh?: undefined; readonly foreign: string; readonly ino: number }

/**
 * Opens an entry file for reading, safely: a symlink, FIFO, socket, device or
 * directory at the path is never read (nor waited on) and comes back as
 * `foreign`, with its inode from `lstat`; `undefined` when nothing is there
 * (another process may have removed it).
 */
async function openEntry(path: string): Promise<Opened | undefined> {
  let fh: FileHandle
  try {
    fh = await fs.open(path, READ_FLAGS)
  } catch (error) {
    const code = codeOf(error)
    if (code === 'ENOENT') return undefined
    if (code === 'ELOOP' || code === 'ENXIO' || code === 'EISDIR') {
      const ino = await fs.lstat(path).then(
        (s) => s.ino,
        () => 0,
      )
      return { foreign: code === 'ELOOP' ? 'a symlink' : `not a regular file (${code})`, ino }
    }
    throw error
  }
  let stat: Stats
  try {
    stat = await fh.stat()
  } catch (error) {
    await fh.close().catch(noop)
    throw error
  }
  if (!stat.isFile()) {
    await fh.close().catch(noop)
    return { foreign: 'not a regular file', ino: stat.ino }
  }
  return { fh, stat }
}

/**
 * Reads at most `stat.size` bytes (an entry never changes once renamed into
 * place), or `undefined` for a file larger than {@link MAX_ENTRY_BYTES}.
 */
async function readBounded(fh: FileHandle, stat: Stats): Promise<Buffer | undefined> {
  if (stat.size > MAX_ENTRY_BYTES) return undefined
  const out = Buffer.allocUnsafe(stat.size)
  let at = 0
  while (at < out.length) {
    const { bytesRead } = await fh.read(out, at, out.length - at, at)
    if (bytesRead === 0) break
    at += bytesRead
  }
  return at === out.length ? out : out.subarray(0, at)
}

async function exists(path: string): Promise<boolean> {
  try {
    await fs.lstat(path)
    return true
  } catch (error) {
    // Only a definite "no" counts as a new file; anything else is not counted.
    return codeOf(error) !== 'ENOENT'
  }
}

/**
 * A cache in a directory, one file per key: shared by every process on the
 * machine that points at the same directory, and it survives restarts.
 *
 * **Layout.** A key's file is named by the hex digest of the key
 * ({@link FileSystemCacheOptions.hashMethod}) and lives in a fan-out
 * subdirectory named by the first two hex characters (`dir/ab/abcdef...`), so
 * no directory holds more than about 1/256 of the entries and lookups stay
 * fast with 100,000 entries and more. Each file is a 16-byte header (magic
 * `CCFS`, format version, expiry as a float64 in ms since the epoch, 0 =
 * never) followed by the value in the shared byte format of `encodeValue`.
 *
 * **Concurrency.** Safe for several processes sharing the directory: a
 * write goes to a uniquely named temp file in the target's directory and is
 * renamed over the target, so a reader sees the old file or the new one,
 * never a partial one; `add` publishes with `link`, which fails if the name
 * exists; `inc` holds a per-key lock file; every operation tolerates a file
 * vanishing under it. A file that is short, foreign or undecodable is treated
 * as a miss and removed. Files are not fsynced: after a power loss an entry
 * may be missing or unreadable, which is a miss.
 *
 * **Hostile files.** Entry files are opened with `O_NOFOLLOW | O_NONBLOCK`
 * and checked with `fstat`: a symlink, FIFO, socket, device or directory at
 * an entry's path is a miss (and is removed, or skipped by pruning), never
 * read or waited on, and no read goes past the file's size or 1 GiB.
 * Keys are hashed in a lossless form, so keys with lone surrogates never
 * share a file with another key.
 *
 * **No key listing.** A file is named by the digest of its key and holds
 * only the expiry and the value, not the key, so the keys cannot be
 * recovered from the directory: this backend has no `keys()` (so
 * `cachette keys` and `cachette clear --prefix` refuse it), only
 * {@link FileSystemCache.stats} and the whole-cache {@link FileSystemCache.clear}.
 *
 * Differs from Flask-Caching's FileSystemCache on purpose: entries are spread
 * over fan-out subdirectories (Flask's directory is flat); the entry count is
 * kept in memory rather than in a `__wz_cache_count` file; pruning evicts the
 * entries expiring soonest and never-expiring ones last (Flask evicts those
 * first), and goes down to ~90% of the threshold; `add` over an expired entry
 * succeeds (Flask refuses while the file exists); `delete` of a missing key
 * resolves `false` (Flask says `true`); expiry is kept in milliseconds
 * (Flask: whole seconds); I/O errors reject instead of resolving `false`.
 */
export class FileSystemCache extends BaseCache {
  /** A local disk: its errors are not outages a circuit breaker helps with. */
  readonly inProcess = true
  /**
   * Builds the cache from configuration: `CACHE_ARGS[0]` or `CACHE_DIR` for the
   * directory, `CACHE_THRESHOLD`, `CACHE_FILE_HASH_METHOD`, and the rest of
   * the options (`mode` from `CACHE_OPTIONS`). Constructs `this`, so a
   * subclass inherits a factory that builds the subclass.
   */
  static factory(
    this: FileSystemCacheClass,
    _app: object | undefined,
    config: Readonly<Record<string, unknown>>,
    args: unknown[],
    options: BackendFactoryOptions,
  ): FileSystemCache {
    const hashMethod = config.CACHE_FILE_HASH_METHOD ?? 'sha256'
    // Validated here so that the error names the configuration key.
    resolveHashMethod(hashMethod, 'CACHE_FILE_HASH_METHOD')
    return new this({
      ...options,
      dir: (args[0] ?? config.CACHE_DIR) as string,
      threshold: config.CACHE_THRESHOLD as number | undefined,
      hashMethod: hashMethod as HashMethod,
    })
  }

  /** The directory holding the entries. */
  readonly dir: string
  /** Approximate maximum number of entries; `0` = unlimited. */
  readonly threshold: number
  /** Permission bits of entry files. */
  readonly mode: number
  readonly #digest: DigestFn
  readonly #clock: () => number
  /** Approximate number of entry files; meaningful once `#counted` has settled. */
  #count = 0
  #countReady = false
  #counted: Promise<void> | undefined
  #pruning: Promise<void> | undefined
  #createdDuringPrune = 0
  /** Per-key tails of `inc` chains, so increments in this process never interleave. */
  readonly #queues = new Map<string, Promise<unknown>>()

  /**
   * Creates the directory if needed (synchronously, once).
   * @throws {ConfigError} with key `CACHE_DIR` when `dir` is missing.
   * @throws {TypeError} for an invalid `threshold`, `mode` or `hashMethod`.
   */
  constructor(options: FileSystemCacheOptions) {
    super(options)
    const fsSync = loadFs()
    const dir: unknown = options?.dir
    if (typeof dir !== 'string' || dir === '') {
      throw new ConfigError('CACHE_DIR', 'FileSystemCache needs a directory (CACHE_DIR)')
    }
    const threshold = options.threshold ?? 500
    if (!Number.isSafeInteger(threshold) || threshold < 0) {
      throw new TypeError(
        `FileSystemCache: threshold must be a non-negative integer, got ${threshold}`,
      )
    }
    const mode = options.mode ?? 0o600
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777 || (mode & 0o400) === 0) {
      throw new TypeError(
        `FileSystemCache: mode must be permission bits between 0 and 0o7777 including owner read (0o400), got ${mode}`,
      )
    }
    this.dir = dir
    this.threshold = threshold
    this.mode = mode
    this.#digest = resolveHashMethod(options.hashMethod, 'hashMethod')
    this.#clock = options.clock ?? Date.now
    fsSync.mkdirSync(dir, { recursive: true })
  }

  // ---- paths and encoding --------------------------------------------------

  /** The entry's path; the key is hashed in its lossless form, so lone surrogates never collide. */
  #locate(key: string): { sub: string; path: string } {
    const name = this.#digest(storageKey(key)).toString('hex')
    const sub = join(this.dir, name.slice(0, 2))
    return { sub, path: join(sub, name) }
  }

  #expiry(timeout: number | undefined): number {
    const seconds = this.ttl(timeout)
    return seconds === 0 ? 0 : this.#clock() + seconds * 1000
  }

  #expired(expires: number): boolean {
    return expires !== 0 && expires <= this.#clock()
  }

  /** Header plus value bytes. Throws the serializer's TypeError before anything touches the disk. */
  #encode(value: unknown, expires: number): Buffer {
    const body = encodeValue(value, this.serializer)
    const out = Buffer.allocUnsafe(HEADER_SIZE + body.length)
    writeHeader(out, expires)
    body.copy(out, HEADER_SIZE)
    return out
  }

  // ---- reading -------------------------------------------------------------

  /** Reads and decodes an entry; an expired or unreadable one is removed and reads as a miss. */
  async #load(key: string): Promise<{ value: unknown; expires: number } | undefined> {
    const { path } = this.#locate(key)
    const opened = await openEntry(path)
    if (opened === undefined) return undefined
    if (opened.fh === undefined) {
      await this.#discardCorrupt(path, opened.ino, opened.foreign)
      return undefined
    }
    const { fh, stat } = opened
    const ino = stat.ino
    let data: Buffer | undefined
    try {
      data = await readBounded(fh, stat)
    } finally {
      await fh.close()
    }
    if (data === undefined) {
      await this.#discardCorrupt(path, ino, `larger than ${MAX_ENTRY_BYTES} bytes`)
      return undefined
    }
    const expires = readHeader(data)
    if (expires === undefined) {
      await this.#discardCorrupt(path, ino, 'bad header')
      return undefined
    }
    if (this.#expired(expires)) {
      await this.#unlinkIfSame(path, ino)
      return undefined
    }
    try {
      return { value: decodeValue(data.subarray(HEADER_SIZE), this.serializer), expires }
    } catch (error) {
      if (!(error instanceof CorruptEntryError)) throw error
      await this.#discardCorrupt(path, ino, error.message)
      return undefined
    }
  }

  /** Reads only the header; `undefined` if the file does not exist. */
  async #readMeta(path: string): Promise<Meta | undefined> {
    const opened = await openEntry(path)
    if (opened === undefined) return undefined
    if (opened.fh === undefined) {
      return { path, ino: opened.ino, mtime: 0, expires: 0, valid: false }
    }
    const { fh, stat } = opened
    try {
      const header = Buffer.alloc(HEADER_SIZE)
      const { bytesRead } = await fh.read(header, 0, HEADER_SIZE, 0)
      const expires = bytesRead === HEADER_SIZE ? readHeader(header) : undefined
      return {
        path,
        ino: stat.ino,
        mtime: stat.mtimeMs,
        expires: expires ?? 0,
        valid: expires !== undefined && stat.size > HEADER_SIZE && stat.size <= MAX_ENTRY_BYTES,
      }
    } finally {
      await fh.close()
    }
  }

  // ---- removal -------------------------------------------------------------

  /**
   * Removes `path` if it is still the file that was read (same inode), so a
   * value another process has just written is not thrown away. Best effort:
   * resolves whether this call removed it.
   */
  async #unlinkIfSame(path: string, ino: number): Promise<boolean> {
    try {
      if (ino !== 0 && (await fs.lstat(path)).ino !== ino) return false
      await fs.unlink(path)
    } catch {
      return false
    }
    this.#forget()
    return true
  }

  async #discardCorrupt(path: string, ino: number, reason: string): Promise<void> {
    await this.#unlinkIfSame(path, ino)
    warnOnce(
      this.logger,
      'CACHETTE_FS_CORRUPT_ENTRY',
      `FileSystemCache: removed an unreadable entry (${reason}): ${path}`,
    )
  }

  /** Removes an entry file by key; resolves whether a file was there. Errors other than ENOENT reject. */
  async #unlinkKey(key: string): Promise<boolean> {
    try {
      await fs.unlink(this.#locate(key).path)
    } catch (error) {
      if (codeOf(error) === 'ENOENT') return false
      throw error
    }
    this.#forget()
    return true
  }

  // ---- writing -------------------------------------------------------------

  /** Writes `data` to a fresh temp file beside the target, with the final mode; resolves its path. */
  async #writeTemp(sub: string, data: Buffer): Promise<string> {
    const tmp = join(sub, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`)
    let fh: FileHandle
    try {
      fh = await fs.open(tmp, 'wx', this.mode)
    } catch (error) {
      if (codeOf(error) !== 'ENOENT') throw error
      await fs.mkdir(sub, { recursive: true })
      fh = await fs.open(tmp, 'wx', this.mode)
    }
    try {
      await fh.writeFile(data)
      await fh.chmod(this.mode)
      await fh.close()
    } catch (error) {
      await fh.close().catch(noop)
      await fs.unlink(tmp).catch(noop)
      throw error
    }
    return tmp
  }

  /** Atomically replaces the key's file with `data`. */
  async #store(key: string, data: Buffer): Promise<void> {
    await this.#ensureCount()
    const { sub, path } = this.#locate(key)
    const tmp = await this.#writeTemp(sub, data)
    let existed = true
    try {
      if (this.threshold !== 0) existed = await exists(path)
      await fs.rename(tmp, path)
    } catch (error) {
      await fs.unlink(tmp).catch(noop)
      throw error
    }
    if (!existed) await this.#created()
  }

  /**
   * Publishes `tmp` under `path` only if no live entry is there. An expired or
   * unreadable file in the way is removed and the link retried once.
   */
  async #publishNew(tmp: string, path: string): Promise<boolean> {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await fs.link(tmp, path)
        return true
      } catch (error) {
        const code = codeOf(error)
        if (code !== 'EEXIST') {
          if (code !== undefined && NO_LINK.has(code)) return this.#publishWithoutLink(tmp, path)
          throw error
        }
      }
      const meta = await this.#readMeta(path)
      if (meta?.valid && !this.#expired(meta.expires)) return false
      if (meta !== undefined) await this.#unlinkIfSame(path, meta.ino)
    }
    return false
  }

  /** Fallback where hard links are unsupported: check, then rename. Not atomic across processes. */
  async #publishWithoutLink(tmp: string, path: string): Promise<boolean> {
    const meta = await this.#readMeta(path)
    if (meta?.valid && !this.#expired(meta.expires)) return false
    await fs.rename(tmp, path)
    return true
  }

  // ---- counting and pruning ------------------------------------------------

  /** One directory scan at first use gives the initial count; later writes keep it up to date. */
  #ensureCount(): Promise<void> {
    if (this.threshold === 0) return Promise.resolve()
    this.#counted ??= this.#scan().then(
      ({ entries }) => {
        this.#count = entries.length
        this.#countReady = true
      },
      (error: unknown) => {
        this.#counted = undefined
        throw error
      },
    )
    return this.#counted
  }

  #forget(): void {
    if (this.#countReady && this.#count > 0) this.#count--
  }

  /** Counts a newly created file and prunes when over the threshold. */
  async #created(): Promise<void> {
    if (this.threshold === 0 || !this.#countReady) return
    this.#count++
    if (this.#pruning !== undefined) this.#createdDuringPrune++
    if (this.#count <= this.threshold) return
    // A prune already running may have scanned before this file existed; once
    // it is done, a second one (started after this write) settles the count.
    await this.#prune()
    if (this.#count > this.threshold) await this.#prune()
  }

  /** Runs a prune, or joins the one running: at most one at a time per instance. */
  #prune(): Promise<void> {
    this.#pruning ??= this.#runPrune()
      .catch((error: unknown) => {
        this.logger.warn(`FileSystemCache: prune of ${this.dir} failed: ${String(error)}`)
      })
      .finally(() => {
        this.#pruning = undefined
      })
    return this.#pruning
  }

  async #runPrune(): Promise<void> {
    this.#createdDuringPrune = 0
    const { entries, temps } = await this.#scan()
    await this.#removeStaleTemps(temps)
    const live: Meta[] = []
    await mapLimit(entries, IO_CONCURRENCY, 'reject', async (path) => {
      const meta = await this.#readMeta(path).catch(() => undefined)
      if (meta === undefined) return
      if (meta.valid && !this.#expired(meta.expires)) live.push(meta)
      else await this.#unlinkIfSame(meta.path, meta.ino)
    })
    // Hysteresis: going down to ~90% means the next prune is ~10% of the
    // threshold's writes away, so scans are amortized.
    const target = Math.max(1, Math.floor(this.threshold * 0.9))
    if (live.length > target) {
      // Soonest expiry first, never-expiring last; oldest first among equals.
      const rank = (m: Meta): number => (m.expires === 0 ? Number.POSITIVE_INFINITY : m.expires)
      live.sort((a, b) => rank(a) - rank(b) || a.mtime - b.mtime)
      const victims = live.splice(0, live.length - target)
      const removed = await mapLimit(victims, IO_CONCURRENCY, 'reject', (m) =>
        this.#unlinkIfSame(m.path, m.ino),
      )
      // A victim replaced by another process meanwhile is still there.
      live.push(...victims.filter((_, i) => !removed[i]))
    }
    // The scan is the truth; files created while it ran may be counted twice,
    // which errs towards pruning early rather than growing past the bound.
    this.#count = live.length + this.#createdDuringPrune
    this.#countReady = true
  }

  /** Entry files and temp files in the fan-out subdirectories; foreign files are ignored. */
  async #scan(): Promise<{ entries: string[]; temps: string[] }> {
    const entries: string[] = []
    const temps: string[] = []
    let subs: string[]
    try {
      subs = (await fs.readdir(this.dir, { withFileTypes: true }))
        .filter((d) => d.isDirectory() && FANOUT_NAME.test(d.name))
        .map((d) => d.name)
    } catch (error) {
      if (codeOf(error) === 'ENOENT') return { entries, temps }
      throw error
    }
    await mapLimit(subs, IO_CONCURRENCY, 'reject', async (sub) => {
      let names: string[]
      try {
        names = await fs.readdir(join(this.dir, sub))
      } catch (error) {
        if (codeOf(error) === 'ENOENT' || codeOf(error) === 'ENOTDIR') return
        throw error
      }
      for (const name of names) {
        if (ENTRY_NAME.test(name) && name.startsWith(sub)) entries.push(join(this.dir, sub, name))
        else if (TEMP_NAME.test(name) || LOCK_NAME.test(name)) temps.push(join(this.dir, sub, name))
      }
    })
    return { entries, temps }
  }

  /** Removes temp files left by crashed writers (judged by wall-clock age, not the injected clock). */
  async #removeStaleTemps(temps: readonly string[]): Promise<void> {
    const now = Date.now()
    await mapLimit(temps, IO_CONCURRENCY, 'reject', async (path) => {
      try {
        if (now - (await fs.lstat(path)).mtimeMs > STALE_TEMP_MS) await fs.unlink(path)
      } catch {
        // Gone already, or not ours to remove.
      }
    })
  }

  // ---- the backend API -----------------------------------------------------

  async get(key: string): Promise<unknown> {
    return (await this.#load(key))?.value
  }

  /**
   * Atomically replaces the entry (temp file + rename). An unstorable value
   * throws its TypeError before anything is written, so the previous value
   * stays readable. I/O errors reject.
   */
  async set(key: string, value: unknown, timeout?: number): Promise<boolean> {
    await this.#store(key, this.#encode(value, this.#expiry(timeout)))
    return true
  }

  /**
   * Stores only if no live entry exists, atomically across processes: the
   * entry is published with `link`, which fails if the name is taken. An
   * expired or unreadable entry counts as absent (Flask-Caching refuses while
   * the file exists). Where the file system has no hard links, falls back to
   * check-then-rename, which is not atomic across processes.
   */
  async add(key: string, value: unknown, timeout?: number): Promise<boolean> {
    const data = this.#encode(value, this.#expiry(timeout))
    await this.#ensureCount()
    const { sub, path } = this.#locate(key)
    const tmp = await this.#writeTemp(sub, data)
    let stored: boolean
    try {
      stored = await this.#publishNew(tmp, path)
    } finally {
      await fs.unlink(tmp).catch(noop)
    }
    if (stored) await this.#created()
    return stored
  }

  /**
   * Removes the entry's file. Resolves `true` if a file was removed (even an
   * expired one) and `false` if there was none; Flask-Caching resolves `true`
   * for a missing key.
   */
  async delete(key: string): Promise<boolean> {
    return this.#unlinkKey(key)
  }

  /** Whether a live entry exists. Reads only the header; an expired or unreadable file is removed. */
  async has(key: string): Promise<boolean> {
    const meta = await this.#readMeta(this.#locate(key).path)
    if (meta === undefined) return false
    if (!meta.valid) {
      await this.#discardCorrupt(meta.path, meta.ino, 'bad header')
      return false
    }
    if (this.#expired(meta.expires)) {
      await this.#unlinkIfSame(meta.path, meta.ino)
      return false
    }
    return true
  }

  /**
   * Removes every entry file (and temp files older than a minute) from the
   * fan-out subdirectories. The directory, the subdirectories and files that
   * are not entries (a README, another tool's files) are left alone.
   * Resolves `false` if some entry could not be removed.
   */
  async clear(): Promise<boolean> {
    const { entries, temps } = await this.#scan()
    const failed = await mapLimit(entries, IO_CONCURRENCY, 'reject', async (path) => {
      try {
        await fs.unlink(path)
        return false
      } catch (error) {
        return codeOf(error) !== 'ENOENT'
      }
    })
    await this.#removeStaleTemps(temps)
    const left = failed.filter(Boolean).length
    if (this.#countReady) this.#count = left
    if (left > 0) this.logger.warn(`FileSystemCache: clear left ${left} entries in ${this.dir}`)
    return left === 0
  }

  /**
   * `entries` (entry files, expired ones included until a read or a prune
   * removes them), `dir` and `threshold`. Scans the fan-out directories.
   */
  async stats(): Promise<Record<string, string | number>> {
    const { entries } = await this.#scan()
    return { entries: entries.length, dir: this.dir, threshold: this.threshold }
  }

  /** Reads with bounded concurrency, so a large batch cannot exhaust file descriptors. */
  override async getMany(keys: readonly string[]): Promise<unknown[]> {
    return mapLimit(keys, IO_CONCURRENCY, 'reject', (key) => this.get(key))
  }

  /** Encodes every value first, so one unstorable value writes nothing; then writes with bounded concurrency. */
  override async setMany(
    entries: readonly (readonly [string, unknown])[],
    timeout?: number,
  ): Promise<string[]> {
    const expires = this.#expiry(timeout)
    const encoded = entries.map(([key, value]) => [key, this.#encode(value, expires)] as const)
    await mapLimit(encoded, IO_CONCURRENCY, 'reject', ([key, data]) => this.#store(key, data))
    return entries.map(([key]) => key)
  }

  /**
   * Missing keys count as deleted. A key whose file cannot be removed (an
   * error other than ENOENT) is left; then {@link DeleteManyError} is thrown
   * unless `ignoreDeleteManyErrors`.
   */
  override async deleteMany(keys: readonly string[]): Promise<string[]> {
    const outcomes = await mapLimit(keys, IO_CONCURRENCY, 'reject', (key) =>
      this.#unlinkKey(key).then(
        () => true,
        () => false,
      ),
    )
    const gone = keys.filter((_, i) => outcomes[i])
    const left = keys.filter((_, i) => !outcomes[i])
    if (left.length > 0 && !this.ignoreDeleteManyErrors) throw new DeleteManyError(left)
    return gone
  }

  /**
   * Read, add, write back, atomically across processes: serialized per key
   * within this process, and across processes by a lock file beside the
   * entry (`<entry>.lock`, created with `O_EXCL`; one left by a crashed
   * process is taken over after 10 s). Keeps an existing counter's expiry; a
   * new counter gets the default timeout. Concurrent `set`s of the same key
   * do not take the lock (last writer wins, as ever).
   * @throws {NotAnIntegerError} if the stored value is not an integer, or the
   * result would leave the safe integer range (the counter is left unchanged).
   */
  override async inc(key: string, delta: number): Promise<number> {
    return this.#exclusive(key, () =>
      this.#locked(key, async () => {
        const entry = await this.#load(key)
        const next = integerOf(key, entry?.value) + delta
        if (!Number.isSafeInteger(next)) {
          throw new NotAnIntegerError(
            `inc/dec: the value at ${JSON.stringify(key)} would leave the safe integer range`,
          )
        }
        const expires = entry === undefined ? this.#expiry(undefined) : entry.expires
        await this.#store(key, this.#encode(next, expires))
        return next
      }),
    )
  }

  /** Runs `task` holding the key's lock file, shared by every process on the directory. */
  async #locked<T>(key: string, task: () => Promise<T>): Promise<T> {
    const { sub, path } = this.#locate(key)
    const lock = `${path}.lock`
    const deadline = Date.now() + LOCK_WAIT_MS
    let wait = 1
    for (;;) {
      try {
        const fh = await fs.open(lock, 'wx', this.mode)
        await fh.close()
        break
      } catch (error) {
        const code = codeOf(error)
        if (code === 'ENOENT') {
          await fs.mkdir(sub, { recursive: true })
          continue
        }
        if (code !== 'EEXIST') throw error
      }
      await this.#breakStaleLock(lock)
      if (Date.now() > deadline) {
        throw new BackendTimeoutError(
          `FileSystemCache: inc could not take the lock ${lock} within ${LOCK_WAIT_MS} ms`,
          LOCK_WAIT_MS,
        )
      }
      await new Promise((resolve) => setTimeout(resolve, wait + Math.random() * wait))
      wait = Math.min(wait * 2, 50)
    }
    try {
      return await task()
    } finally {
      await fs.unlink(lock).catch(noop)
    }
  }

  /** Removes a lock file older than {@link STALE_LOCK_MS} (wall clock), if it is still the same file. */
  async #breakStaleLock(lock: string): Promise<void> {
    try {
      const stat = await fs.lstat(lock)
      if (Date.now() - stat.mtimeMs <= STALE_LOCK_MS) return
      if ((await fs.lstat(lock)).ino === stat.ino) await fs.unlink(lock)
    } catch {
      // Released meanwhile.
    }
  }

  async #exclusive<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(key)
    const run = previous === undefined ? task() : previous.then(task)
    const tail = run.then(noop, noop)
    this.#queues.set(key, tail)
    try {
      return await run
    } finally {
      if (this.#queues.get(key) === tail) this.#queues.delete(key)
    }
  }

  /** Waits for a running scan or prune to finish. Files stay; nothing else needs releasing. */
  override async close(): Promise<void> {
    await Promise.all([this.#counted?.catch(noop), this.#pruning])
  }
}
