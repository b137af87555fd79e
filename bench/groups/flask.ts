/**
 * flask: cachette against Flask-Caching, the library whose API it follows,
 * each deployed the way its ecosystem runs a web app on 2 cores:
 *
 * - Flask-Caching 2.0.2 on Flask (Debian's python3-flask-caching and
 *   python3-flask) under Debian's gunicorn, `--workers 2` (sync workers,
 *   gunicorn's default, and no slower than gthread here: see bench/README.md);
 * - cachette on Express 5 under `node:cluster`, 2 workers.
 *
 * Both serve the same routes (bench/flask/app.py, bench/flask/cluster.ts): a
 * 1 KiB view uncached, the same view cached (`@cache.cached` / `cached()`),
 * and a view answering a memoized call (`@cache.memoize` / `cache.memoize`),
 * with their cache on one redis-server started for the run (RedisCache on
 * both sides, shared by the 2 workers). The cached view is then measured
 * again with SimpleCache in each worker on both sides. Load: wrk (C), fixed
 * threads, connections and duration, after a warm-up; rounds alternate the
 * two contenders (bench/lib/measure.ts's `compare`), ratios are paired per
 * round. Skipped, naming scripts/bench-deps.sh, when wrk, gunicorn or the
 * Python packages are missing.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import http from 'node:http'
import { fileURLToPath } from 'node:url'
import { Redis as IORedis } from 'ioredis'
import { freePort } from '../../test/servers/process.js'
import { flaskPage, WORKERS } from '../flask/shared.js'
import { closeAll, type Group, type GroupContext } from '../lib/group.js'
import { forkServer, stopServer } from '../lib/http.js'
import { type Comparison, compare, REQ_PER_SEC, ratioOf, spreadOf } from '../lib/measure.js'
import { startBenchRedis } from '../lib/redis.js'
import { type GroupResult, type Headline, target } from '../lib/report.js'
import { hasWrk, type WrkOptions, type WrkRecord, wrk, wrkContender } from '../lib/wrk.js'

const FLASK_DIR = fileURLToPath(new URL('../flask/', import.meta.url))
const NODE_APP = fileURLToPath(new URL('../flask/cluster.ts', import.meta.url))
const DEPS = 'bash scripts/bench-deps.sh'
/** One wrk thread (the machine has 2 cores, for the servers, Redis and wrk), 10 connections. */
const LOAD: WrkOptions = { threads: 1, connections: 10 }

/** The memoized route's arguments: bench/flask/memoized.lua asks for each in turn. */
const MEMO_ARGS = 64
interface Route {
  /** As shown in titles. */
  readonly path: string
  readonly label: string
  /** What the probes request (every one, before timing: each memoized argument's first call). */
  readonly paths: readonly string[]
  /** A wrk script choosing the path of each request; without one, wrk requests `paths[0]`. */
  readonly script?: string
}
const ROUTES: Readonly<Record<'uncached' | 'cached' | 'memoized', Route>> = {
  uncached: { path: '/uncached', label: 'uncached view', paths: ['/uncached'] },
  cached: { path: '/cached', label: 'cached view (hit)', paths: ['/cached'] },
  memoized: {
    path: `/memoized/<0–${MEMO_ARGS - 1}>`,
    label: `memoized call behind a route (hit), ${MEMO_ARGS} arguments in turn`,
    paths: Array.from({ length: MEMO_ARGS }, (_, i) => `/memoized/${i}`),
    script: fileURLToPath(new URL('../flask/memoized.lua', import.meta.url)),
  },
}
type RouteId = keyof typeof ROUTES

type Backend = 'RedisCache' | 'SimpleCache'
const FLASK = (b: Backend) =>
  `Flask-Caching on Flask, gunicorn 2 sync workers (${b === 'RedisCache' ? 'RedisCache' : 'SimpleCache per worker'})`
const CACHETTE = (b: Backend) =>
  `cachette on Express 5, node:cluster 2 workers (${b === 'RedisCache' ? 'RedisCache' : 'SimpleCache per worker'})`

/** What is missing for this group, by the name scripts/bench-deps.sh would install. */
function missingTools(): { missing: string[]; versions: Record<string, string> } {
  const missing: string[] = []
  const versions: Record<string, string> = {}
  if (!hasWrk()) missing.push('wrk')
  let gunicorn: string | undefined
  try {
    gunicorn = execFileSync('sh', ['-c', 'command -v gunicorn'], { encoding: 'utf8' }).trim()
  } catch {
    missing.push('gunicorn')
  }
  if (gunicorn) {
    // The modules must be importable by the interpreter gunicorn runs on (its shebang).
    const python = /^#!\s*(\S+)/.exec(readFileSync(gunicorn, 'utf8').slice(0, 200))?.[1]
    try {
      const out = execFileSync(
        python ?? 'python3',
        [
          '-c',
          'import json, importlib.metadata as m; import flask, flask_caching, redis; ' +
            'print(json.dumps({p: m.version(p) for p in ("Flask", "Flask-Caching", "gunicorn", "redis")}))',
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
      )
      Object.assign(versions, JSON.parse(out) as Record<string, string>)
    } catch {
      missing.push('python3-flask python3-flask-caching python3-redis')
    }
  }
  return { missing, versions }
}

/** gunicorn on `port`, started and answering; `stop()` ends it and its workers. */
async function startGunicorn(
  port: number,
  env: Record<string, string>,
): Promise<{ child: ChildProcess; stop: () => Promise<void> }> {
  const child = spawn(
    'gunicorn',
    [
      '--workers',
      String(WORKERS),
      '--worker-class',
      'sync',
      '--bind',
      `127.0.0.1:${port}`,
      '--chdir',
      FLASK_DIR,
      '--log-level',
      'warning',
      '--graceful-timeout',
      '5',
      'app:app',
    ],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
      // No __pycache__ written into bench/flask.
      env: { ...process.env, ...env, PYTHONDONTWRITEBYTECODE: '1' },
    },
  )
  let output = ''
  let failed: Error | undefined
  child.once('error', (error) => {
    failed = error
  })
  child.stderr?.on('data', (d: Buffer) => {
    output = (output + d.toString()).slice(-4000)
  })
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  process.once('exit', kill)
  const stop = async (): Promise<void> => {
    process.off('exit', kill)
    if (child.exitCode !== null || child.signalCode !== null) return
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    // SIGTERM: the arbiter stops its workers (idle sync workers exit at once) and exits.
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 8000)
    await gone
    clearTimeout(timer)
  }
  const deadline = Date.now() + 30_000
  for (;;) {
    if (failed) throw new Error(`gunicorn could not start: ${failed.message} (${DEPS})`)
    if (child.exitCode !== null) throw new Error(`gunicorn exited (${child.exitCode}): ${output}`)
    try {
      const res = await fetch(`http://127.0.0.1:${port}${ROUTES.uncached.path}`)
      await res.arrayBuffer()
      if (res.status === 200) return { child, stop }
    } catch {}
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`gunicorn on port ${port} did not answer in 30 s: ${output}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
}

interface Probe {
  status: number
  headers: string[]
  body: string
}

/**
 * One GET on a connection of its own (no keep-alive agent), so that
 * successive probes of the Node app reach both workers (the primary hands
 * each new connection to the next worker), as gunicorn's do anyway.
 */
function probe(url: string): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        body += chunk
      })
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: Object.keys(res.headers), body }),
      )
      res.on('error', reject)
    })
    req.on('error', reject)
  })
}

/** One phase: both apps on `backend`, the given routes compared. */
interface Phase {
  comparisons: Map<RouteId, Comparison>
  records: Map<string, WrkRecord>
  /** Runs of the cached view and the memoized function: over the phase, and during warm-up and timed rounds. */
  calls: Record<string, number>
  timedCalls: Record<string, number>
  headers: Record<string, string>
}

async function runPhase(
  ctx: GroupContext,
  redisUrl: string,
  backend: Backend,
  routes: readonly RouteId[],
  seconds: number,
  warmSeconds: number,
  rounds: number,
): Promise<Phase> {
  const closers: (() => unknown)[] = []
  try {
    const counts = new IORedis(redisUrl)
    closers.push(() => counts.quit())
    // Run counts and entries of an earlier phase would spoil this one's checks.
    await counts.flushdb()
    const env = { CACHE_REDIS_URL: redisUrl, CACHE_TYPE: backend }
    const flaskPort = await freePort()
    const gunicorn = await startGunicorn(flaskPort, env)
    closers.push(gunicorn.stop)
    const nodePort = await freePort()
    const { child } = await forkServer<{ type: 'ready' }>(
      NODE_APP,
      [String(nodePort), redisUrl, backend],
      'flask group: cachette cluster app',
    )
    closers.push(() => stopServer(child))
    const base = {
      [FLASK(backend)]: `http://127.0.0.1:${flaskPort}`,
      [CACHETTE(backend)]: `http://127.0.0.1:${nodePort}`,
    }

    // Every route answers the same page on both sides; the cached ones store it on a first
    // request. cachette stores a view after the response has gone out, so the later probes
    // wait a little for that write, or they could miss too (and run the view again).
    const expected = flaskPage()
    const headers: Record<string, string> = {}
    for (let i = 0; i < 1 + 2 * WORKERS; i++) {
      for (const [name, url] of Object.entries(base)) {
        for (const id of routes) {
          for (const path of ROUTES[id].paths) {
            const p = await probe(`${url}${path}`)
            if (p.status !== 200 || p.body !== expected) {
              throw new Error(`flask: ${name} ${path} did not answer the 1 KiB page`)
            }
            headers[`${name} ${ROUTES[id].path}`] = p.headers.filter((h) => h !== 'date').join(', ')
          }
        }
      }
      if (i === 0) await new Promise((r) => setTimeout(r, 200))
    }
    const readCalls = async (): Promise<Record<string, number>> => {
      const calls: Record<string, number> = {}
      for (const side of ['flask', 'cachette']) {
        for (const r of ['cached', 'memoized'] as const) {
          if (!routes.includes(r)) continue
          calls[`${side} ${r}`] = Number((await counts.get(`bench:calls:${side}:${r}`)) ?? 0)
        }
      }
      return calls
    }
    const probeCalls = await readCalls()

    const records = new Map<string, WrkRecord>()
    const comparisons = new Map<RouteId, Comparison>()
    for (const id of routes) {
      const route = ROUTES[id]
      const load: WrkOptions = route.script === undefined ? LOAD : { ...LOAD, script: route.script }
      const target = (name: string) =>
        `${base[name]}${route.script === undefined ? route.paths[0] : '/'}`
      const contenders = [
        wrkContender(FLASK(backend), 'peer', target(FLASK(backend)), seconds, load),
        wrkContender(CACHETTE(backend), 'subject', target(CACHETTE(backend)), seconds, load),
      ]
      ctx.log(`flask: ${backend} ${route.path}: warm-up ${warmSeconds} s per side`)
      for (const c of contenders) await wrk(target(c.name), warmSeconds, load)
      const c = await compare({
        id: `flask.${id}${backend === 'SimpleCache' ? '.simple' : ''}`,
        title: `flask: ${route.label}, \`GET ${route.path}\`, ${backend === 'RedisCache' ? 'RedisCache shared by the 2 workers' : 'SimpleCache in each worker'}; wrk ${LOAD.threads} thread, ${LOAD.connections} connections, ${seconds} s per contender per round`,
        unit: REQ_PER_SEC,
        rounds,
        warmupRounds: 0,
        contenders,
        pairs: [[CACHETTE(backend), FLASK(backend)]],
        log: ctx.log,
      })
      comparisons.set(id, c)
      for (const x of contenders) records.set(`${x.name} ${route.path}`, x.record)
    }

    const calls = await readCalls()
    const timedCalls = Object.fromEntries(
      Object.entries(calls).map(([k, n]) => [k, n - (probeCalls[k] ?? 0)]),
    )
    return { comparisons, records, calls, timedCalls, headers }
  } finally {
    await closeAll(closers, 'flask', ctx.log)
  }
}

const ms = (v: number): string => `${v.toFixed(2)} ms`

export const flaskGroup: Group = {
  name: 'flask',
  async run(ctx: GroupContext): Promise<GroupResult> {
    const description =
      'cachette against Flask-Caching, each as its ecosystem deploys it on 2 cores: Flask-Caching 2.0.2 ' +
      'on Flask under gunicorn (2 sync workers) and cachette on Express 5 under node:cluster (2 workers), ' +
      'serving the same 1 KiB page uncached, as a cached view and through a memoized call, their cache ' +
      'on one local redis-server shared by the workers (then the cached view with SimpleCache in each ' +
      'worker). Requests/s with wrk on loopback; rounds alternate the two apps.'
    const base = {
      group: 'flask',
      description,
      measuredAt: new Date().toISOString(),
      mode: ctx.quick ? ('quick' as const) : ('full' as const),
    }
    const { missing, versions } = missingTools()
    if (missing.length > 0) {
      const reason = `needs ${missing.join(', ')}; install with \`${DEPS}\``
      ctx.log(`flask: skipped: ${reason}`)
      return { ...base, settings: {}, comparisons: [], headlines: [], notes: [], skipped: reason }
    }
    const seconds = ctx.quick ? 1 : 3
    const warmSeconds = ctx.quick ? 1 : 2
    const rounds = ctx.quick ? 2 : 5
    const { server, url } = await startBenchRedis()
    try {
      const redisPhase = await runPhase(
        ctx,
        url,
        'RedisCache',
        ['cached', 'uncached', 'memoized'],
        seconds,
        warmSeconds,
        rounds,
      )
      const simplePhase = await runPhase(
        ctx,
        url,
        'SimpleCache',
        ['cached'],
        seconds,
        warmSeconds,
        rounds,
      )
      const ratio = (p: Phase, id: RouteId, b: Backend) =>
        ratioOf(p.comparisons.get(id) as Comparison, CACHETTE(b), FLASK(b))
      const cachedRedis = ratio(redisPhase, 'cached', 'RedisCache')
      const headlines: Headline[] = [
        {
          label: 'cached view hit, RedisCache: cachette ÷ Flask-Caching (req/s)',
          ratio: cachedRedis,
          target: target('>=', 2, cachedRedis),
        },
        {
          label: 'uncached view: Express (cluster) ÷ Flask (gunicorn) (req/s)',
          ratio: ratio(redisPhase, 'uncached', 'RedisCache'),
        },
        {
          label: 'memoized call hit, RedisCache: cachette ÷ Flask-Caching (req/s)',
          ratio: ratio(redisPhase, 'memoized', 'RedisCache'),
        },
        {
          label: 'cached view hit, SimpleCache per worker: cachette ÷ Flask-Caching (req/s)',
          ratio: ratio(simplePhase, 'cached', 'SimpleCache'),
        },
      ]
      const latency = [redisPhase, simplePhase]
        .flatMap((p) => [...p.records])
        .map(([name, r]) => {
          const cpu = (spreadOf(r.cpu).median * 100).toFixed(0)
          return `${name}: p50 ${ms(spreadOf(r.p50).median)}, p99 ${ms(spreadOf(r.p99).median)}, wrk CPU ${cpu}%`
        })
        .join('; ')
      // Every request after the probes must be a hit: no run while wrk was loading. With
      // SimpleCache, each worker stores each page once (a gunicorn worker the probes missed
      // stores it under load).
      const callsOk =
        Object.values(redisPhase.timedCalls).every((n) => n === 0) &&
        Object.values(simplePhase.calls).every((n) => n >= 1 && n <= WORKERS)
      const callNote = (p: Phase) =>
        Object.entries(p.calls)
          .map(([k, n]) => `${k} ${n} (${p.timedCalls[k]} under load)`)
          .join(', ')
      return {
        ...base,
        settings: {
          rounds,
          durationSeconds: seconds,
          warmSeconds,
          wrkThreads: LOAD.threads,
          connections: LOAD.connections,
          workers: WORKERS,
          bodyBytes: Buffer.byteLength(flaskPage()),
          python: versions,
        },
        comparisons: [
          ...[...redisPhase.comparisons.values()],
          ...[...simplePhase.comparisons.values()],
        ],
        headlines,
        notes: [
          `Python side: Flask ${versions.Flask}, Flask-Caching ${versions['Flask-Caching']}, redis-py ${versions.redis}, gunicorn ${versions.gunicorn} \`--workers ${WORKERS} --worker-class sync\` (bench/flask/app.py; \`CACHE_TYPE\` RedisCache or SimpleCache, \`CACHE_DEFAULT_TIMEOUT=300\`). Sync workers (gunicorn's default, and no slower here than gthread workers with keep-alive: see bench/README.md) answer \`Connection: close\`, so wrk reconnects for every Flask request, as nginx in front of gunicorn would.`,
          `Node side: Express 5 on node:cluster, ${WORKERS} workers sharing the port through the primary (round-robin), \`new Cache({ CACHE_TYPE, CACHE_REDIS_URL, CACHE_KEY_PREFIX: 'cachette_', CACHE_DEFAULT_TIMEOUT: 300 })\`, \`cached(cache, { timeout: 300 })\` from cachette/express and \`cache.memoize(fn, { timeout: 300 })\` (bench/flask/cluster.ts). HTTP keep-alive, Node's default.`,
          `Both sides answer byte-identical 1 KiB pages (checked before timing). The cached view and the memoized function count their runs in Redis: with RedisCache they ran for the probes only (the view once, the function once per argument, ${MEMO_ARGS}) and never under load; with SimpleCache at most once per worker` +
            ` (RedisCache phase: ${callNote(redisPhase)}; SimpleCache phase: ${callNote(simplePhase)})${callsOk ? '' : ' — NOT all hits'}.`,
          `A cached-view hit costs one Redis command on both sides (GET); a memoized hit two, one after the other: the function’s version key (Flask-Caching MGET, cachette GET), then the entry (GET). The memoized route's requests go through ${MEMO_ARGS} arguments in turn (bench/flask/memoized.lua): on a single argument, cachette's single flight would let a worker's concurrent calls share one entry read (about 1.25 commands per request instead of 2). The uncached route measures the frameworks alone (Flask under sync gunicorn against Express under node:cluster): the cached-view ratio is the framework difference plus the cache’s.`,
          `The 2 cores are shared by wrk (one thread), the 2 workers of the side being measured, redis-server and (for cachette) the cluster primary; the idle side sleeps. Median latency and wrk CPU (share of one core) per contender: ${latency}.`,
          `Response headers (besides date): ${Object.entries(redisPhase.headers)
            .filter(([k]) => k.endsWith('/cached'))
            .map(([k, v]) => `${k}: ${v}`)
            .join('; ')}.`,
        ],
      }
    } finally {
      await server.stop()
    }
  },
}
