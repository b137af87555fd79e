/**
 * The README's first command: `npm start` runs the demo app on the embedded
 * default backend. Run exactly as documented (through npm), on a free port:
 * it serves the cached home page (a hit the second time), the memoized
 * square, and it stops when the `npm start` process is sent SIGTERM (the
 * server must not outlive it).
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { Socket } from 'node:net'
import { after, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { freePort, HOST, sleep } from './servers/process.js'

const root = fileURLToPath(new URL('..', import.meta.url))

/** Resolves once `check` is true, polling; rejects with `what` after `ms`. */
async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 30_000) {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

/** The environment without `CACHE_*` variables: the demo on its defaults. */
function withoutCacheVariables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith('CACHE_')))
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket()
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
    socket.connect(port, HOST)
  })
}

describe('npm start: the demo app', () => {
  let child: ChildProcess | undefined
  after(() => {
    child?.kill('SIGKILL')
  })

  test('serves cached and memoized pages, and stops with the npm process', async () => {
    const port = await freePort()
    let output = ''
    const proc = spawn('npm', ['start'], {
      cwd: root,
      env: { ...withoutCacheVariables(process.env), PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    child = proc
    let exited = false
    proc.once('exit', () => {
      exited = true
    })
    proc.stdout?.on('data', (d: Buffer) => {
      output += d.toString()
    })
    proc.stderr?.on('data', (d: Buffer) => {
      output += d.toString()
    })
    await waitFor(`the demo's start line (output so far: ${output})`, () => {
      if (exited) throw new Error(`npm start exited: ${output}`)
      return output.includes(`cachette demo on SimpleCache: http://localhost:${port}/`)
    })
    const base = `http://${HOST}:${port}`

    const first = await fetch(`${base}/`)
    const firstBody = await first.text()
    assert.equal(first.status, 200)
    assert.equal(first.headers.get('hit_cache'), null)
    const second = await fetch(`${base}/`)
    assert.equal(second.headers.get('hit_cache'), 'True')
    assert.equal(await second.text(), firstBody)

    const a = (await (await fetch(`${base}/square/12`)).json()) as Record<string, unknown>
    const b = (await (await fetch(`${base}/square/12`)).json()) as Record<string, unknown>
    assert.equal(a.square, 144)
    assert.equal(b.computedAt, a.computedAt, 'the second call is memoized')
    // /stats names the memoized function by its place in the source (tsx maps it), readably.
    const stats = await (await fetch(`${base}/stats`)).text()
    assert.match(stats, /"examples\/demo\/server\.ts:18:\d+:slowSquare"/)

    // SIGTERM to the npm process (what a process manager or `kill <pid>` sends)
    // must stop the server too: no child left holding the port.
    proc.kill('SIGTERM')
    await waitFor('npm start to exit', () => exited)
    await waitFor(`port ${port} to close`, async () => !(await accepts(port)))
  })
})
