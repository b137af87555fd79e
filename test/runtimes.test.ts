/**
 * cachette/hono on other runtimes than Node: one fixture app
 * (test/fixtures/runtimes/app.ts), bundled with esbuild as a user's bundler
 * would, served by Bun (`Bun.serve`), Deno (`Deno.serve`) and workerd
 * (Miniflare, with a SimpleCache and with CloudflareKVCache on a local KV
 * namespace), and on Node through `app.request()`. Each gets the same
 * behaviour checks of `cached()` and `httpCache`, and reports which
 * in-process backends work there (`/probe`).
 */
import assert from 'node:assert/strict'
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'
import type { Miniflare } from 'miniflare'
import type { KVNamespaceLike } from '../src/backends/cloudflare-kv/index.js'
import { createApp } from './fixtures/runtimes/app.js'
import {
  bundle,
  bundleAgainstDist,
  ROOT,
  runtimeBinary,
  startWorker,
  tempDir,
} from './fixtures/runtimes/harness.js'

/** Sends a request to the app under test: a path and request init. */
type Send = (path: string, init?: RequestInit) => Promise<Response>

/** How long a runtime may take to start, and an entry to be written. */
const DEADLINE_MS = 20_000

const dir = tempDir()
/** What to stop when the file is done: runtimes started by the suites' `before` hooks. */
const cleanups: (() => Promise<unknown>)[] = []
after(async () => {
  await Promise.allSettled(cleanups.map((stop) => stop()))
  dir.remove()
})

/** The bundles, made once. */
let bundles: Promise<{ server: Record<'bun' | 'deno', string>; worker: string }> | undefined
function bundled(): Promise<{ server: Record<'bun' | 'deno', string>; worker: string }> {
  bundles ??= (async () => {
    const [bun, deno, worker] = await Promise.all([
      bundle('bun.ts', 'server'),
      bundle('deno.ts', 'server'),
      bundle('worker.ts', 'workerd'),
    ])
    const bunPath = join(dir.path, 'bun.mjs')
    const denoPath = join(dir.path, 'deno.mjs')
    writeFileSync(bunPath, bun)
    writeFileSync(denoPath, deno)
    return { server: { bun: bunPath, deno: denoPath }, worker }
  })()
  return bundles
}

/**
 * Starts `command` and resolves the port once it prints `listening <port>`;
 * rejects with its output if it exits first or the deadline passes.
 */
function listen(child: ChildProcess, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let output = ''
    const timer = setTimeout(() => {
      reject(
        new Error(`${name} did not print "listening <port>" within ${DEADLINE_MS} ms:\n${output}`),
      )
    }, DEADLINE_MS)
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      const match = /listening (\d+)/.exec(output)
      if (match) {
        clearTimeout(timer)
        resolve(Number(match[1]))
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`${name} exited (${code ?? signal}) before listening:\n${output}`))
    })
    child.once('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
  })
}

/** Stops a child and waits for it to exit. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  await exited
}

/** Resolves once `check()` resolves true; fails after the deadline. */
async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/**
 * The behaviour checks, run against one runtime. `send` reaches the app;
 * `fileSystem` says whether the runtime has `node:fs` (and `node:cluster`).
 */
function behaviours(
  runtime: string,
  start: () => Promise<Send>,
  expect: { fileSystem: boolean; cluster: boolean; name?: string },
): void {
  describe(`cachette/hono on ${runtime}`, () => {
    let send: Send
    const text = async (path: string, init?: RequestInit) => {
      const res = await send(path, init)
      return { res, body: await res.text() }
    }
    const count = async (name: string): Promise<number> =>
      ((await (await send(`/count/${name}`)).json()) as { count: number }).count
    const entries = async (): Promise<string[]> =>
      (await (await send('/entries')).json()) as string[]
    /** Waits until the store holds more than `before` entries. */
    const stored = (before: number) =>
      until('the entry to be stored', async () => (await entries()).length > before)

    before(async () => {
      send = await start()
    })

    test('cached(): a miss renders, the next request is a hit with the same body', async () => {
      const n = (await entries()).length
      const first = await text('/view/page?q=one')
      assert.equal(first.res.status, 200)
      assert.equal(first.body, 'page render 1 q=one')
      assert.equal(first.res.headers.get('hit_cache'), null)
      await stored(n)
      const second = await text('/view/page?q=one')
      assert.equal(second.body, first.body)
      assert.equal(second.res.headers.get('hit_cache'), 'True')
      assert.equal(await count('page'), 1, 'the handler ran once')
    })

    test('cached(): a different query is a different entry', async () => {
      const n = (await entries()).length
      const other = await text('/view/page?q=two')
      assert.equal(other.body, 'page render 2 q=two')
      assert.equal(other.res.headers.get('hit_cache'), null)
      await stored(n)
      assert.equal((await text('/view/page?q=two')).res.headers.get('hit_cache'), 'True')
      assert.equal(await count('page'), 2)
    })

    test('cached(): a response with Set-Cookie is not stored', async () => {
      assert.equal((await text('/view/cookie')).body, 'cookie render 1')
      const again = await text('/view/cookie')
      assert.equal(again.body, 'cookie render 2')
      assert.equal(again.res.headers.get('hit_cache'), null)
      assert.ok(again.res.headers.get('set-cookie')?.startsWith('session=abc'))
    })

    test('cached(): a request with Authorization is not served from the cache', async () => {
      const before = await count('page')
      const res = await text('/view/page?q=one', { headers: { Authorization: 'Bearer x' } })
      assert.equal(res.res.headers.get('hit_cache'), null)
      assert.equal(res.body, `page render ${before + 1} q=one`)
      assert.equal(await count('page'), before + 1)
    })

    test('httpCache: a public, max-age=60 response is served from the store', async () => {
      const n = (await entries()).length
      const first = await text('/http/public')
      assert.equal(first.body, 'public render 1')
      assert.equal(first.res.headers.get('x-cache'), 'miss')
      await stored(n)
      const second = await text('/http/public')
      assert.equal(second.body, 'public render 1')
      assert.equal(second.res.headers.get('x-cache'), 'hit')
      assert.equal(await count('public'), 1)
    })

    test('httpCache: private and no-store responses are not stored', async () => {
      for (const path of ['private', 'nostore']) {
        await text(`/http/${path}`)
        const again = await text(`/http/${path}`)
        assert.equal(again.body, `${path} render 2`, path)
        assert.notEqual(again.res.headers.get('x-cache'), 'hit', path)
        assert.equal(await count(path), 2, path)
      }
    })

    test('validation: an ETag and a matching If-None-Match give 304', async () => {
      const first = await text('/http/etag')
      assert.equal(first.res.status, 200)
      assert.equal(first.res.headers.get('etag'), '"v1"')
      const revalidated = await text('/http/etag', { headers: { 'If-None-Match': '"v1"' } })
      assert.equal(revalidated.res.status, 304)
      assert.equal(revalidated.body, '')
      const changed = await text('/http/etag', { headers: { 'If-None-Match': '"v0"' } })
      assert.equal(changed.res.status, 200)
      assert.equal(changed.body, 'tagged body')
    })

    test('backends: in-process ones work; Node-only ones fail with a clear error', async () => {
      const probe = (await (await send('/probe')).json()) as Record<string, string>
      assert.equal(probe.SimpleCache, 'works')
      assert.equal(probe.NullCache, 'works')
      assert.equal(probe.TieredCache, 'works')
      assert.equal(probe.defaultSerializer, 'works')
      if (expect.fileSystem) assert.equal(probe.FileSystemCache, 'works')
      else {
        const name = expect.name ?? runtime
        assert.equal(
          probe.FileSystemCache,
          `UnsupportedRuntimeError: FileSystemCache needs Node's fs module, which ${name} does not have; on ${name} use SimpleCache or CloudflareKVCache`,
        )
      }
      if (expect.cluster) assert.equal(probe.ClusterCache, 'works')
      else assert.match(probe.ClusterCache ?? '', /^UnsupportedRuntimeError: ClusterCache needs/)
    })
  })
}

/** Serves the bundled app with a runtime binary; stops it after the file. */
function server(name: 'bun' | 'deno', pkg: string, args: (script: string) => string[]) {
  return async (): Promise<Send> => {
    const binary = runtimeBinary(name, pkg)
    const { server } = await bundled()
    const fsDir = join(dir.path, `${name}-fs`)
    mkdirSync(fsDir)
    const child = spawn(binary, args(server[name]), {
      env: {
        ...process.env,
        CACHETTE_FS_DIR: fsDir,
        DENO_DIR: join(dir.path, 'deno-dir'),
        NO_COLOR: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    cleanups.push(() => stop(child))
    const port = await listen(child, name)
    return (path, init) => fetch(`http://127.0.0.1:${port}${path}`, init)
  }
}

behaviours(
  'Node',
  async () => {
    const app = createApp({ fsDir: join(dir.path, 'node-fs') })
    return async (path, init) => app.request(path, init)
  },
  { fileSystem: true, cluster: true },
)

behaviours(
  'Bun',
  server('bun', 'bun', (script) => [script]),
  { fileSystem: true, cluster: true },
)

behaviours(
  'Deno',
  server('deno', 'deno', (script) => [
    'run',
    '--no-remote',
    '--no-config',
    '--no-lock',
    '--no-prompt',
    '--allow-net=127.0.0.1',
    '--allow-env',
    `--allow-read=${dir.path}`,
    `--allow-write=${dir.path}`,
    script,
  ]),
  { fileSystem: true, cluster: true },
)

/** Runs the bundled Worker in Miniflare; disposes it after the file. */
function worker(bindings: Record<string, string>, onStart?: (mf: Miniflare) => void) {
  return async (): Promise<Send> => {
    const { worker: script } = await bundled()
    const mf = startWorker(script, bindings)
    cleanups.push(() => mf.dispose())
    onStart?.(mf)
    return async (path, init) =>
      (await mf.dispatchFetch(`http://localhost${path}`, init as never)) as unknown as Response
  }
}

behaviours('workerd', worker({}), { fileSystem: false, cluster: false })

let kvWorker: Miniflare | undefined
behaviours(
  'workerd + CloudflareKVCache',
  worker({ BACKEND: 'kv' }, (mf) => {
    kvWorker = mf
  }),
  { fileSystem: false, cluster: false, name: 'workerd' },
)

test('workerd + CloudflareKVCache: the entries are in the KV namespace', async () => {
  assert.ok(kvWorker, 'the KV worker ran')
  const kv = (await kvWorker.getKVNamespace('CACHE')) as unknown as KVNamespaceLike
  const names = (await kv.list({ prefix: 'app:' })).keys.map((k) => k.name)
  assert.ok(
    names.some((n) => n.includes('view/')),
    `view entries in KV: ${names.join(', ')}`,
  )
  assert.ok(names.length >= 3, `entries in KV: ${names.join(', ')}`)
})

describe('the built package (dist/) imports on every runtime', () => {
  const run = promisify(execFile)
  const entries = ['index', 'hono', 'cloudflare'].map((name) => join(ROOT, 'dist', `${name}.js`))
  const check = `
const [root, hono, cloudflare] = await Promise.all(${JSON.stringify(entries)}.map((p) => import(p)))
const cache = new root.Cache({ CACHE_TYPE: 'SimpleCache' })
await cache.set('k', { when: new Date(0) })
console.log(JSON.stringify([typeof root.FileSystemCache, typeof hono.cached, typeof hono.httpCache,
  typeof cloudflare.CloudflareKVCache, (await cache.get('k')).when.getTime(), root.runtimeName()]))
`
  before(() => {
    for (const entry of entries) {
      assert.ok(existsSync(entry), `${entry} is missing: run npm run build first`)
    }
    writeFileSync(join(dir.path, 'import-check.mjs'), check)
  })
  const expected = (runtime: string) =>
    JSON.stringify(['function', 'function', 'function', 'function', 0, runtime])

  test('Bun', async () => {
    const { stdout } = await run(runtimeBinary('bun', 'bun'), [join(dir.path, 'import-check.mjs')])
    assert.equal(stdout.trim(), expected('Bun'))
  })

  test('Deno', async () => {
    const { stdout } = await run(
      runtimeBinary('deno', 'deno'),
      [
        'run',
        '--no-remote',
        '--no-config',
        '--no-lock',
        '--no-prompt',
        `--allow-read=${ROOT},${dir.path}`,
        join(dir.path, 'import-check.mjs'),
      ],
      { env: { ...process.env, DENO_DIR: join(dir.path, 'deno-dir'), NO_COLOR: '1' } },
    )
    assert.equal(stdout.trim(), expected('Deno'))
  })

  test('workerd: a Worker bundled from dist/, with CACHE_TYPE CloudflareKVCache by name', async () => {
    const script = await bundleAgainstDist(`
import { Cache, FileSystemCache, runtimeName } from 'cachette'
import { cached } from 'cachette/hono'
import { CloudflareKVCache } from 'cachette/cloudflare'
export default {
  async fetch(request, env) {
    const cache = new Cache({ CACHE_TYPE: 'CloudflareKVCache', CACHE_KEY_PREFIX: 'dist/', CACHE_OPTIONS: { namespace: env.CACHE } })
    await cache.set('k', { when: new Date(0) }, 5)
    let fs
    try { new FileSystemCache({ dir: '/tmp' }); fs = 'constructed' } catch (e) { fs = e.name }
    return Response.json([typeof cached, cache.backend instanceof CloudflareKVCache, (await cache.get('k')).when.getTime(), fs, runtimeName()])
  },
}`)
    const mf = startWorker(script)
    try {
      const res = await mf.dispatchFetch('http://localhost/')
      assert.deepEqual(await res.json(), [
        'function',
        true,
        0,
        'UnsupportedRuntimeError',
        'workerd',
      ])
    } finally {
      await mf.dispose()
    }
  })
})
