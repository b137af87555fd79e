/**
 * One run of `wrk` (Debian's `wrk` package, a C load generator), for the
 * HTTP groups that compare servers running outside the bench process (the
 * flask group's gunicorn and node:cluster apps, the httpcache group's
 * Varnish and cluster form): autocannon runs in the bench's own event loop
 * and takes most of a core, which on 2 cores caps the fastest servers;
 * wrk's event loop in C costs a fraction of that for the same rate.
 *
 * wrk runs under `bash -c '…; times'` so that its CPU time (user + system,
 * as the shell's `times` builtin reports for its children) comes back with
 * its output, without a dependency.
 */
import { execFile, execFileSync } from 'node:child_process'
import type { ContenderSpec, Role } from './measure.js'

/** The wrk settings a group fixes for all its runs. */
export interface WrkOptions {
  readonly connections: number
  readonly threads: number
  /** A Lua script (`wrk -s`), e.g. one whose `request()` varies the path. */
  readonly script?: string
}

export interface WrkResult {
  /** Requests completed. */
  readonly requests: number
  /** Seconds wrk ran, as it reports them. */
  readonly seconds: number
  /** `Requests/sec` of wrk's summary. */
  readonly rps: number
  /** Latency percentiles, ms. */
  readonly p50: number
  readonly p99: number
  /** wrk's CPU seconds (user + system) ÷ its wall seconds: share of one core. */
  readonly cpu: number
  /** Socket errors: connect, read, write, timeout (0 when wrk prints none). */
  readonly errors: { connect: number; read: number; write: number; timeout: number }
  /** `Non-2xx or 3xx responses` (0 when wrk prints none). */
  readonly non2xx: number
}

let present: boolean | undefined

/** Whether a `wrk` binary is on PATH (checked once). */
export function hasWrk(): boolean {
  if (present === undefined) {
    try {
      execFileSync('wrk', ['--version'], { stdio: 'ignore' })
      present = true
    } catch (error) {
      // `wrk --version` prints its usage and exits 1: present, just not happy.
      present = (error as NodeJS.ErrnoException).code !== 'ENOENT'
    }
  }
  return present
}

/** `1.23ms`, `456.00us`, `1.02s` → ms. */
function ms(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text)
  if (!m) return Number.NaN
  const v = Number(m[1])
  switch (m[2]) {
    case 'us':
      return v / 1000
    case 'ms':
      return v
    case 's':
      return v * 1000
    default:
      return v * 60_000
  }
}

/** `1m2.345s` → seconds. */
function bashTime(text: string): number {
  const m = /^(\d+)m([\d.]+)s$/.exec(text)
  return m ? Number(m[1]) * 60 + Number(m[2]) : Number.NaN
}

/** Parses wrk's `--latency` output followed by bash's `times` (two lines: shell, children). */
export function parseWrk(out: string): WrkResult {
  const num = (re: RegExp): number => {
    const m = re.exec(out)
    return m ? Number(m[1]) : Number.NaN
  }
  const done = /(\d+) requests in ([\d.]+)(us|ms|s|m),/.exec(out)
  if (!done) throw new Error(`wrk: no summary in its output:\n${out}`)
  const seconds = ms(`${done[2]}${done[3]}`) / 1000
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  const times = out.trim().split('\n').slice(-1)[0]?.trim().split(/\s+/).map(bashTime) ?? [
    Number.NaN,
    Number.NaN,
  ]
  const cpuSeconds = (times[0] ?? Number.NaN) + (times[1] ?? Number.NaN)
  return {
    requests: Number(done[1]),
    seconds,
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    p50: ms(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? ''),
    p99: ms(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? ''),
    cpu: cpuSeconds / seconds,
    errors: {
      connect: Number(socket?.[1] ?? 0),
      read: Number(socket?.[2] ?? 0),
      write: Number(socket?.[3] ?? 0),
      timeout: Number(socket?.[4] ?? 0),
    },
    non2xx: num(/Non-2xx or 3xx responses:\s+(\d+)/) || 0,
  }
}

/**
 * One wrk run of `seconds` (whole seconds: wrk takes no fractions; at least 1) against `url` (`wrk -t<threads> -c<connections>
 * -d<seconds>s --latency`); throws if any response was not 2xx/3xx, any
 * socket error was counted (connect, read, write, timeout), or no request
 * completed: the rate would then count failures. (A server that closes the
 * connection after each response, as gunicorn's sync workers do, costs wrk
 * a reconnect, not an error.)
 */
export function wrk(url: string, seconds: number, options: WrkOptions): Promise<WrkResult> {
  const whole = Math.max(1, Math.round(seconds))
  const args = [
    `-t${options.threads}`,
    `-c${options.connections}`,
    `-d${whole}s`,
    '--latency',
    ...(options.script === undefined ? [] : ['-s', options.script]),
    url,
  ]
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      ['-c', 'wrk "$@"; status=$?; times; exit $status', 'wrk', ...args],
      { timeout: (whole + 30) * 1000, maxBuffer: 1 << 20 },
      (error, stdout, stderr) => {
        if (error) {
          reject(new Error(`wrk ${args.join(' ')} failed: ${error.message}\n${stdout}${stderr}`))
          return
        }
        try {
          const r = parseWrk(stdout)
          const { connect, read, write, timeout } = r.errors
          if (r.requests === 0 || r.non2xx > 0 || connect + read + write + timeout > 0) {
            throw new Error(
              `wrk ${args.join(' ')}: ${r.requests} requests, ${r.non2xx} non-2xx/3xx, socket errors connect ${connect}, read ${read}, write ${write}, timeout ${timeout}`,
            )
          }
          resolve(r)
        } catch (e) {
          reject(e)
        }
      },
    )
  })
}

/** What a {@link wrkContender} recorded besides its rate, one entry per round. */
export interface WrkRecord {
  readonly p50: number[]
  readonly p99: number[]
  readonly cpu: number[]
}

/**
 * A contender whose sample is one wrk run of `seconds` against `url`, in
 * requests/s (wrk's `Requests/sec`); its latency percentiles and wrk's CPU
 * share land in `record`.
 */
export function wrkContender(
  name: string,
  role: Role,
  url: string,
  seconds: number,
  options: WrkOptions,
): ContenderSpec & { readonly record: WrkRecord } {
  const record: WrkRecord = { p50: [], p99: [], cpu: [] }
  return {
    name,
    role,
    record,
    async sample() {
      const r = await wrk(url, seconds, options)
      record.p50.push(r.p50)
      record.p99.push(r.p99)
      record.cpu.push(r.cpu)
      return r.rps
    },
  }
}
