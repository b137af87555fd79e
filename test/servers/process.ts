/**
 * Server processes for the tests: free loopback ports, start-and-wait,
 * stop, kill and restart on the same port. Every process is killed when the
 * test process exits. A missing binary is an error naming the Debian
 * packages to install, never a skip.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createServer } from 'node:net'

export const HOST = '127.0.0.1'
const live = new Set<ChildProcess>()
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

/** A free TCP port on the loopback interface. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, HOST, () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A server process the test controls. */
export interface ManagedServer {
  readonly host: '127.0.0.1'
  readonly port: number
  /** Stops it gracefully. */
  stop(): Promise<void>
  /** Kills it at once (SIGKILL), as a crash would. */
  kill(): Promise<void>
  /** Starts it again on the same port and directory. */
  start(): Promise<void>
}

/** How to run and probe one server. */
export interface ProcessSpec {
  readonly command: string
  readonly args: () => string[]
  readonly port: number
  /** Resolves true once the server answers. */
  readonly ready: () => Promise<boolean>
  /** What to install when the binary is missing. */
  readonly install: string
  readonly env?: NodeJS.ProcessEnv
}

/** A server that is not started yet; `start()` resolves once it answers. */
export function managed(spec: ProcessSpec): ManagedServer {
  let child: ChildProcess | undefined
  let output = ''
  const start = async (): Promise<void> => {
    output = ''
    const proc = spawn(spec.command, spec.args(), {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: spec.env ?? process.env,
    })
    child = proc
    live.add(proc)
    proc.stdout?.on('data', (d: Buffer) => {
      output += d.toString()
    })
    proc.stderr?.on('data', (d: Buffer) => {
      output += d.toString()
    })
    let exited: string | undefined
    proc.once('error', (error) => {
      exited = `${spec.command} could not start: ${error.message} (install it: apt-get install ${spec.install})`
    })
    proc.once('exit', (code) => {
      live.delete(proc)
      exited ??= `${spec.command} exited with ${code}: ${output.slice(-2000)}`
    })
    for (let i = 0; i < 100; i++) {
      if (exited) throw new Error(exited)
      try {
        if (await spec.ready()) return
      } catch {}
      await sleep(50)
    }
    throw new Error(`${spec.command} on port ${spec.port} did not answer: ${output.slice(-2000)}`)
  }
  const waitExit = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return
    const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    proc.kill(signal)
    await gone
  }
  return {
    host: HOST,
    port: spec.port,
    start,
    stop: () => waitExit('SIGTERM'),
    kill: () => waitExit('SIGKILL'),
  }
}
