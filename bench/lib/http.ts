/**
 * What the HTTP groups (http.ts, httpcache.ts) share: the child process that
 * serves the apps, its IPC protocol, and one autocannon run.
 *
 * The server scripts (bench/express, bench/frameworks, bench/httpcache) speak
 * the same protocol: they send `{ type: 'ready', ... }` once they listen,
 * answer `{ type: 'stats' }` with `{ type: 'stats', calls }` (how often each
 * route ran), and exit on `{ type: 'exit' }`. Not for the server scripts
 * themselves to import (see page.ts).
 */
import { type ChildProcess, fork } from 'node:child_process'
import autocannon from 'autocannon'

/**
 * Forks the server script `script` with `args` and resolves with the child
 * and its `ready` message (whose other fields, ports and body length, are the
 * script's own: `R`). Rejects if it errors, exits, or is not ready in 30 s;
 * `what` names it in those errors (`'express server'`).
 */
export function forkServer<R extends { type: 'ready' }>(
  script: string,
  args: readonly string[],
  what: string,
): Promise<{ child: ChildProcess; ready: R }> {
  return new Promise((resolve, reject) => {
    // fork() passes on tsx's loader flags (process.execArgv), so the child runs TypeScript too.
    const child = fork(script, [...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    const timer = setTimeout(() => reject(new Error(`${what} did not start in 30 s`)), 30_000)
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`${what} exited early (${code})`)))
    child.on('message', (m: { type?: string }) => {
      if (m.type === 'ready') {
        clearTimeout(timer)
        resolve({ child, ready: m as R })
      }
    })
  })
}

/** Asks the child for its route calls (`calls` of its `stats` answer, undefined if it sent none). */
export function serverCalls<C>(child: ChildProcess): Promise<C | undefined> {
  return new Promise((resolve) => {
    const on = (m: { type?: string; calls?: C }): void => {
      if (m.type === 'stats') {
        child.off('message', on)
        resolve(m.calls)
      }
    }
    child.on('message', on)
    child.send({ type: 'stats' })
  })
}

/** Asks the child to exit and waits for it; kills it if it is still there after 5 s. */
export async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return
  // forkServer's "exited early" listener: this exit is expected.
  child.removeAllListeners('exit')
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.send({ type: 'exit' })
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
  await gone
  clearTimeout(timer)
}

/** The autocannon settings a group fixes for all its runs. */
export interface LoadOptions {
  readonly connections: number
  readonly pipelining: number
}

/**
 * One autocannon run of `duration` seconds against `url`; throws if any
 * request errored, timed out or answered other than 2xx (the rate would
 * then count failures).
 */
export async function load(
  url: string,
  duration: number,
  options: LoadOptions,
): Promise<autocannon.Result> {
  const result = await autocannon({
    url,
    connections: options.connections,
    pipelining: options.pipelining,
    duration,
  })
  if (result.errors > 0 || result.timeouts > 0 || result.non2xx > 0) {
    throw new Error(
      `${url}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx`,
    )
  }
  return result
}
