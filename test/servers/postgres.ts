/**
 * A real PostgreSQL server for the tests, on a free loopback port: `initdb`
 * makes a throw-away cluster in a temporary directory (trust authentication,
 * `fsync=off`), `postgres` serves it on 127.0.0.1 with its socket in the same
 * directory. PostgreSQL refuses to run as root, so as root (CI) both run as
 * the `postgres` user through `setpriv`, which execs in place (the process
 * the harness signals is the postmaster itself). Killed when the test
 * process exits; a missing binary is an error naming the Debian package.
 */
import { execFile } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, HOST, type ManagedServer, managed, sleep } from './process.js'

const INSTALL = 'postgresql'

/** A PostgreSQL process the test controls. */
export interface PostgresServer extends ManagedServer {
  /** `postgresql://postgres@127.0.0.1:<port>/postgres`. */
  readonly uri: string
  /**
   * Shuts the server down at once (PostgreSQL's "fast" mode, SIGINT):
   * connected sessions are ended, as when a database is restarted.
   */
  shutdown(): Promise<void>
  /** Stops the server and removes its data directory. */
  destroy(): Promise<void>
}

/** The directory of the PostgreSQL binaries (`/usr/lib/postgresql/<major>/bin`), newest major first. */
function binDir(): string {
  const root = '/usr/lib/postgresql'
  const majors = existsSync(root)
    ? readdirSync(root)
        .filter((d) => existsSync(join(root, d, 'bin', 'postgres')))
        .sort((a, b) => Number(b) - Number(a))
    : []
  if (majors.length === 0) {
    throw new Error(
      `PostgreSQL is not installed (no ${root}/*/bin/postgres): apt-get install ${INSTALL}`,
    )
  }
  return join(root, majors[0] as string, 'bin')
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0

/** The command line that runs `argv` as the `postgres` user when this process is root. */
function asPostgres(argv: string[]): [string, string[]] {
  if (!isRoot) return [argv[0] as string, argv.slice(1)]
  return ['setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', ...argv]]
}

function run(argv: string[]): Promise<void> {
  const [command, args] = asPostgres(argv)
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${argv.join(' ')} failed: ${error.message}\n${stdout}${stderr}`))
      else resolve()
    })
  })
}

/** Resolves true once the server answers an SSL request with its one-byte reply. */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket()
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    socket.once('error', () => done(false))
    socket.once('data', (d: Buffer) => done(d[0] === 0x4e || d[0] === 0x53))
    socket.connect(port, HOST, () => {
      // SSLRequest: length 8, code 80877103.
      const msg = Buffer.alloc(8)
      msg.writeInt32BE(8, 0)
      msg.writeInt32BE(80877103, 4)
      socket.write(msg)
    })
  })
}

/** Initialises a cluster in a temporary directory and starts PostgreSQL on a free port. */
export async function startPostgres(): Promise<PostgresServer> {
  const bin = binDir()
  const dir = mkdtempSync(join(tmpdir(), 'cachette-pg-'))
  const data = join(dir, 'data')
  if (isRoot) {
    const uid = Number(await idOf('-u'))
    const gid = Number(await idOf('-g'))
    chownSync(dir, uid, gid)
  }
  await run([
    join(bin, 'initdb'),
    '-D',
    data,
    '-U',
    'postgres',
    '--auth=trust',
    '--no-sync',
    '--encoding=UTF8',
    '--locale=C',
  ])
  const port = await freePort()
  const [command, prefix] = asPostgres([join(bin, 'postgres')])
  const server = managed({
    command,
    args: () => [
      ...prefix,
      '-D',
      data,
      '-p',
      String(port),
      '-k',
      dir,
      '-h',
      HOST,
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'max_connections=50',
      '-c',
      'shared_buffers=16MB',
    ],
    port,
    ready: () => answers(port),
    install: INSTALL,
  })
  await server.start()
  const pidOf = (): number | undefined => {
    try {
      return Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0])
    } catch {
      return undefined
    }
  }
  const waitGone = async (pid: number): Promise<void> => {
    for (let i = 0; i < 400; i++) {
      try {
        process.kill(pid, 0)
      } catch {
        return
      }
      await sleep(25)
    }
    throw new Error(`postgres (pid ${pid}) did not shut down`)
  }
  const shutdown = async (): Promise<void> => {
    const pid = pidOf()
    if (pid === undefined || !Number.isInteger(pid)) return
    try {
      process.kill(pid, 'SIGINT')
    } catch {
      return
    }
    await waitGone(pid)
  }
  return {
    ...server,
    uri: `postgresql://postgres@${HOST}:${port}/postgres`,
    shutdown,
    stop: shutdown,
    async destroy() {
      await shutdown()
      await server.kill()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

function idOf(flag: '-u' | '-g'): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('id', [flag, 'postgres'], (error, stdout) => {
      if (error) {
        reject(
          new Error(
            `no postgres user to run PostgreSQL as (${error.message}): apt-get install ${INSTALL}`,
          ),
        )
      } else resolve(stdout.trim())
    })
  })
}
