/**
 * The primary side of the bench's `node:cluster` apps (bench/flask/cluster.ts,
 * bench/httpcache/cluster.ts): forks the workers, waits until every one
 * listens, tells the group (over the IPC channel of `child_process.fork`,
 * the protocol of bench/lib/http.ts: `{ type: 'ready', port, workers }`),
 * answers `{ type: 'stats' }` with `{ type: 'stats', calls }` (the route runs
 * the workers reported with {@link countCall}, summed), and on
 * `{ type: 'exit' }` (or when the group goes away) stops the workers and
 * exits. Workers never outlive it: they exit when its IPC channel closes
 * (see {@link exitWithPrimary}). No side effects on import.
 */
import cluster, { type Worker } from 'node:cluster'

/**
 * Forks `workers` workers of the current script (cluster's default `exec`,
 * with this process's argv, env and execArgv, so tsx's loader too) and
 * resolves once each has emitted `listening`; then answers the group.
 * `port` is what the workers listen on (they share it through the primary).
 */
export async function runPrimary(workers: number, port: number): Promise<void> {
  const send = process.send?.bind(process)
  if (send === undefined) throw new Error('a bench cluster app: start it with child_process.fork')
  const forked: Worker[] = []
  const calls: Record<string, number> = {}
  cluster.on('message', (_worker, message: { bench?: string; name?: string }) => {
    if (message?.bench === 'call' && typeof message.name === 'string')
      calls[message.name] = (calls[message.name] ?? 0) + 1
  })
  let stopping = false
  const stop = (code: number): void => {
    if (stopping) return
    stopping = true
    let left = forked.filter((w) => !w.isDead()).length
    if (left === 0) process.exit(code)
    const timer = setTimeout(() => {
      for (const w of forked) if (!w.isDead()) w.process.kill('SIGKILL')
      process.exit(code)
    }, 3000)
    for (const w of forked) {
      if (w.isDead()) continue
      w.once('exit', () => {
        if (--left === 0) {
          clearTimeout(timer)
          process.exit(code)
        }
      })
      w.process.kill('SIGTERM')
    }
  }
  const listening = Array.from({ length: workers }, () => {
    const w = cluster.fork()
    forked.push(w)
    return new Promise<void>((resolve, reject) => {
      w.once('listening', () => resolve())
      w.once('exit', (code) => {
        if (!stopping) {
          reject(new Error(`cluster worker ${w.process.pid} exited (${code})`))
          // A worker gone mid-run would halve the contender silently: stop everything.
          stop(1)
        }
      })
    })
  })
  process.on('message', (message: { type?: string }) => {
    if (message.type === 'stats') send({ type: 'stats', calls })
    if (message.type === 'exit') stop(0)
  })
  process.on('disconnect', () => stop(0))
  await Promise.all(listening)
  send({ type: 'ready', port, workers: forked.map((w) => w.process.pid) })
}

/** In a worker: exit when the primary goes (its IPC channel closes). */
export function exitWithPrimary(): void {
  process.on('disconnect', () => process.exit(0))
}

/** In a worker: tells the primary that route `name` ran (summed in its `stats` answer). */
export function countCall(name: string): void {
  process.send?.({ bench: 'call', name })
}
