/**
 * Varnish (Debian's `varnish` package) on a free loopback port in front of a
 * backend on 127.0.0.1, for the tests and for benchmarks that compare
 * cachette's shared HTTP response cache with Varnish in front of the same app.
 *
 * varnishd runs in the foreground (`-F`, no systemd) with a private working
 * directory under os.tmpdir() (`-n`: shared memory log, compiled VCL, CLI
 * secret), removed by `stop()`. `-j none` keeps every varnishd process as the
 * user that started it: as root the default jail (`unix`) switches to the
 * `varnish`/`vcache` users, which cannot read a VCL file in a 0700 mkdtemp
 * directory; as a non-root user `none` is the default anyway. On SIGTERM the
 * manager stops its cache child and exits 0; on SIGKILL (the test process
 * exiting) the child notices its closed CLI pipe and exits by itself.
 * varnishd compiles VCL with the system C compiler: the Debian package depends
 * on gcc and libc6-dev.
 *
 * Sized for a 2-core, low-memory CI machine: 64 MB of malloc storage, one
 * thread pool of 10..500 workers (the defaults are 2 pools of 100..5000, i.e.
 * 200 idle threads) and a 16 MB shared memory log (the default 80 MB is most
 * of varnishd's resident memory). About 23 MB resident, ready in about 0.3 s.
 * Workers beyond the minimum are created on demand (about one per busy
 * connection: 100 autocannon connections made 104 threads, 39 MB): warm up
 * before measuring, or pass `args` (`-p thread_pool_min=100`); later `-p`
 * flags win.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { freePort, HOST, type ManagedServer, managed } from './process.js'

const INSTALL = 'varnish'

/** The tuning flags every instance gets before the caller's `args`. */
export const VARNISH_TUNING = [
  '-s',
  'malloc,64m',
  '-p',
  'thread_pools=1',
  '-p',
  'thread_pool_min=10',
  '-p',
  'thread_pool_max=500',
  '-p',
  'vsl_space=16m',
]

/**
 * The default VCL: a backend and nothing else, so Varnish's built-in VCL
 * (`varnishd -x builtin`) decides, as a plain caching reverse proxy honouring
 * the origin's Cache-Control. Where Varnish 7.1's defaults differ from an
 * RFC 9111 shared cache (mind these when comparing):
 *
 * - No freshness information (no s-maxage/max-age/Expires) on a 200, 203,
 *   204, 300, 301, 304, 404, 410 or 414: cached for `default_ttl` = 120 s,
 *   with or without Last-Modified (RFC 9111 4.2.2 suggests a heuristic of a
 *   fraction of the time since Last-Modified). Any other status (500, 206,
 *   403...) is not cached at all, even with max-age; 302/307 only with
 *   explicit freshness.
 * - Grace: every object is served stale for `default_grace` = 10 s after it
 *   expires while one background fetch refreshes it (RFC 9111 4.2.4 allows
 *   stale responses only when the origin permits it);
 *   `stale-while-revalidate=N` sets that grace to N, `must-revalidate` and
 *   `proxy-revalidate` are ignored.
 * - `no-cache` (and `no-store`, `private`) in the response's Cache-Control,
 *   a `Set-Cookie` header, `Vary: *` or a zero TTL: not stored; a
 *   "hit-for-miss" marker is kept for 120 s so later requests go to the
 *   origin without waiting on each other (RFC 9111: no-cache may be stored
 *   and revalidated; Set-Cookie does not prevent storing). `Surrogate-Control`
 *   takes precedence over Cache-Control for this check.
 * - Requests with `Authorization` or `Cookie` headers, or other methods than
 *   GET/HEAD, bypass the cache (pass) whatever the response says (RFC 9111
 *   3.5 lets a shared cache store Authorization responses marked public,
 *   s-maxage or must-revalidate, and says nothing about Cookie).
 * - Request Cache-Control (`no-cache`, `max-age=0`) and Pragma are ignored:
 *   clients cannot force a refetch.
 * - Concurrent misses for the same object are coalesced into one backend
 *   fetch (the waiting list).
 * - Gzip: `http_gzip_support` rewrites the client's Accept-Encoding to `gzip`
 *   (or removes it), asks the backend for gzip, stores compressed and
 *   gunzips for clients without gzip: one stored copy serves both. Every
 *   response carries `Age` (0 on a miss), `Via: 1.1 varnish` and `X-Varnish`
 *   (two ids on a hit).
 * - The TTL is s-maxage (preferred) or max-age, counted from the response's
 *   origin time (its `Age` header is subtracted), as RFC 9111 does.
 *
 * Append your own subroutines (`defaultVcl(port) + 'sub vcl_deliver {...}'`):
 * they run before the built-in ones of the same name.
 */
export function defaultVcl(backendPort: number): string {
  return `vcl 4.1;

backend default {
  .host = "${HOST}";
  .port = "${backendPort}";
}
`
}

/** A varnishd process the test controls. */
export interface VarnishServer extends ManagedServer {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string
  /** The `-n` working directory, for `varnishstat -n` / `varnishlog -n` / `varnishadm -n`. */
  readonly workdir: string
}

/**
 * varnishd is in /usr/sbin, which is not on a non-root user's PATH on Debian:
 * the first one on PATH or in an sbin directory, else the bare name (then
 * spawning fails with an error naming the package).
 */
function varnishd(): string {
  const dirs = [
    ...(process.env.PATH ?? '').split(delimiter),
    '/usr/local/sbin',
    '/usr/sbin',
    '/sbin',
  ]
  for (const dir of dirs) {
    if (dir && existsSync(join(dir, 'varnishd'))) return join(dir, 'varnishd')
  }
  return 'varnishd'
}

/**
 * Resolves true once the port answers an HTTP request with a status line.
 * The request says `HTTP/1.7`, which Varnish's HTTP/1 parser rejects with a
 * 400 before any VCL runs: the probe never reaches the backend (no origin
 * request counted, nothing cached) and works whether the backend is up or not.
 */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    let data = ''
    const socket = new Socket()
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1')
      if (/^HTTP\/1\.[01] \d{3}/.test(data)) done(true)
    })
    socket.once('end', () => done(false))
    socket.once('error', () => done(false))
    socket.connect(port, HOST, () => socket.write('GET / HTTP/1.7\r\nHost: probe\r\n\r\n'))
  })
}

const workdirs = new Set<string>()
process.on('exit', () => {
  for (const dir of workdirs) rmSync(dir, { recursive: true, force: true })
})

/**
 * Starts Varnish on a free loopback port in front of `127.0.0.1:<backendPort>`.
 * `vcl` replaces the whole default VCL (it must declare its own backend; see
 * `defaultVcl`); `args` are extra varnishd flags, after the defaults.
 */
export async function startVarnish(options: {
  backendPort: number
  vcl?: string
  args?: string[]
}): Promise<VarnishServer> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'cachette-varnish-'))
  workdirs.add(dir)
  const vclFile = join(dir, 'default.vcl')
  const workdir = join(dir, 'n')
  const vcl = options.vcl ?? defaultVcl(options.backendPort)
  const args = [
    '-F',
    '-j',
    'none',
    '-n',
    workdir,
    '-a',
    `${HOST}:${port}`,
    '-T',
    `${HOST}:0`,
    '-f',
    vclFile,
    ...VARNISH_TUNING,
    ...(options.args ?? []),
  ]
  const server = managed({
    command: varnishd(),
    args: () => {
      // Written before every start, so start() after stop() finds it again.
      mkdirSync(dir, { recursive: true })
      writeFileSync(vclFile, vcl)
      return args
    },
    port,
    install: INSTALL,
    ready: () => answers(port),
  })
  const stop = server.stop
  const cleanUp = () => rmSync(dir, { recursive: true, force: true })
  try {
    await server.start()
  } catch (error) {
    await server.kill()
    cleanUp()
    throw error
  }
  return Object.assign(server, {
    url: `http://${HOST}:${port}`,
    workdir,
    stop: async () => {
      await stop()
      cleanUp()
    },
  })
}
