/**
 * httpcache: a stored-response hit through cachette's RFC 9111 shared cache
 * (`httpCache` Express middleware) against the same route answering directly
 * (the limit) and against Varnish (Debian's varnishd, the
 * test/servers/varnish.ts harness) in front of the direct app; httpCache runs
 * in one process over a SimpleCache (bench/httpcache/server.ts, a child
 * process) and in a cluster form, 2 node:cluster workers sharing the store
 * through ClusterCache or through Redis (bench/httpcache/cluster.ts). Load
 * from wrk on loopback (autocannon, in the bench process, only when wrk is
 * missing: scripts/bench-deps.sh installs it).
 */
import { type ChildProcess, execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { freePort } from '../../test/servers/process.js'
import { startVarnish, type VarnishServer } from '../../test/servers/varnish.js'
import type { Calls } from '../httpcache/server.js'
import { closeAll, type Group, type GroupContext } from '../lib/group.js'
import { forkServer, type LoadOptions, load, serverCalls, stopServer } from '../lib/http.js'
import {
  type ContenderSpec,
  compare,
  REQ_PER_SEC,
  type Role,
  ratioOf,
  spreadOf,
} from '../lib/measure.js'
import { startBenchRedis } from '../lib/redis.js'
import { type GroupResult, type Headline, target } from '../lib/report.js'
import { hasWrk, type WrkOptions, wrk } from '../lib/wrk.js'

const SERVER = fileURLToPath(new URL('../httpcache/server.ts', import.meta.url))
const CLUSTER_APP = fileURLToPath(new URL('../httpcache/cluster.ts', import.meta.url))
/** bench/httpcache/cluster.ts's CLUSTER_WORKERS (not imported: the script starts its app when loaded). */
const CLUSTER_WORKERS = 2
/** The route both apps serve (bench/httpcache/server.ts's `ROUTE`, not imported: see there). */
const ROUTE = '/page'
/** The Cache-Control both apps' route sets (likewise). */
const CACHE_CONTROL = 'public, max-age=3600'
const CONNECTIONS = 10
const PIPELINING = 1
/** autocannon's settings for every run of this group, warm-up and timed (when wrk is missing). */
const LOAD: LoadOptions = { connections: CONNECTIONS, pipelining: PIPELINING }
/** wrk's: one thread (the other core is the servers'), the same connections; wrk does not pipeline. */
const WRK: WrkOptions = { threads: 1, connections: CONNECTIONS }
/** Idle Varnish workers kept ready, so no timed round pays for creating threads. */
const VARNISH_THREADS = 100

const DIRECT = 'direct (route sends the page, no cache)'
const CACHED = 'cachette httpCache hit'
const VARNISH = 'Varnish hit'
/** The cluster forms, by store (bench/httpcache/cluster.ts's CACHE_TYPE argument). */
const CLUSTER_STORES = ['ClusterCache', 'RedisCache', 'TieredCache'] as const
type ClusterStore = (typeof CLUSTER_STORES)[number]
/** The forms whose every lookup reads the one shared store; the target row takes the faster. */
const SHARED_STORES: readonly ClusterStore[] = ['ClusterCache', 'RedisCache']
const STORE_LABELS: Readonly<Record<ClusterStore, string>> = {
  ClusterCache: 'ClusterCache store in the primary',
  RedisCache: 'RedisCache store',
  TieredCache: 'TieredCache over RedisCache + Redis bus',
}
const CLUSTERED = (store: ClusterStore) =>
  `cachette httpCache hit, node:cluster ${CLUSTER_WORKERS} workers, ${STORE_LABELS[store]}`

interface Ready {
  type: 'ready'
  directPort: number
  cachedPort: number
  bodyLength: number
}

interface Probe {
  status: number
  headers: Headers
  body: string
}

async function probe(url: string): Promise<Probe> {
  const res = await fetch(url)
  return { status: res.status, headers: res.headers, body: await res.text() }
}

/** `MAIN.cache_hit` and `MAIN.cache_miss` from varnishstat, or undefined if it cannot say. */
function varnishCounters(
  varnish: VarnishServer,
): Promise<{ hit: number; miss: number } | undefined> {
  return new Promise((resolve) => {
    execFile(
      'varnishstat',
      ['-n', varnish.workdir, '-1', '-f', 'MAIN.cache_hit', '-f', 'MAIN.cache_miss'],
      { timeout: 5000 },
      (error, stdout) => {
        if (error) {
          resolve(undefined)
          return
        }
        const value = (name: string): number =>
          Number(new RegExp(`^${name}\\s+(\\d+)`, 'm').exec(stdout)?.[1] ?? Number.NaN)
        const hit = value('MAIN.cache_hit')
        const miss = value('MAIN.cache_miss')
        resolve(Number.isNaN(hit) || Number.isNaN(miss) ? undefined : { hit, miss })
      },
    )
  })
}

const headerNames = (p: Probe): string =>
  [...p.headers.keys()].filter((h) => h !== 'date').join(', ')

/** A latency for the notes: at most 3 decimals (medians of wrk's figures interpolate). */
const roundMs = (v: number): number => Number(v.toFixed(3))

/** One load run's numbers, from wrk or autocannon. */
interface Run {
  rps: number
  p50: number
  p99: number
  /** The load generator's CPU, share of one core. */
  cpu: number
}

/** One run of `seconds` against `url` with wrk, or autocannon when wrk is missing. */
async function run(url: string, seconds: number, useWrk: boolean): Promise<Run> {
  if (useWrk) {
    const r = await wrk(url, seconds, WRK)
    return { rps: r.rps, p50: r.p50, p99: r.p99, cpu: r.cpu }
  }
  const cpu0 = process.cpuUsage()
  const r = await load(url, seconds, LOAD)
  const used = process.cpuUsage(cpu0)
  return {
    rps: r.requests.total / r.duration,
    p50: r.latency.p50,
    p99: r.latency.p99,
    cpu: (used.user + used.system) / 1e6 / r.duration,
  }
}

export const httpcacheGroup: Group = {
  name: 'httpcache',
  async run(ctx: GroupContext): Promise<GroupResult> {
    const useWrk = hasWrk()
    const generator = useWrk ? 'wrk' : 'autocannon'
    if (!useWrk) {
      ctx.log(
        'httpcache: wrk not found, falling back to autocannon (in this process); install wrk with `bash scripts/bench-deps.sh`',
      )
    }
    const duration = ctx.quick ? 1 : useWrk ? 3 : 5
    const warmSeconds = ctx.quick ? 1 : 2
    const rounds = ctx.quick ? 2 : 6
    const closers: (() => unknown)[] = []
    try {
      const { child, ready } = await forkServer<Ready>(SERVER, [], 'httpcache apps')
      closers.push(() => stopServer(child))
      const redis = await startBenchRedis()
      closers.push(() => redis.server.stop())
      const clusters = new Map<ClusterStore, { child: ChildProcess; port: number }>()
      for (const store of CLUSTER_STORES) {
        const port = await freePort()
        const started = await forkServer<{ type: 'ready' }>(
          CLUSTER_APP,
          [String(port), store, redis.url],
          `httpcache cluster form (${store})`,
        )
        closers.push(() => stopServer(started.child))
        clusters.set(store, { child: started.child, port })
      }
      const varnish: VarnishServer = await startVarnish({
        backendPort: ready.directPort,
        args: ['-p', `thread_pool_min=${VARNISH_THREADS}`],
      })
      closers.push(() => varnish.stop())
      const urls: Record<string, string> = {
        [DIRECT]: `http://127.0.0.1:${ready.directPort}${ROUTE}`,
        [CACHED]: `http://127.0.0.1:${ready.cachedPort}${ROUTE}`,
        [VARNISH]: `${varnish.url}${ROUTE}`,
      }
      for (const [store, c] of clusters)
        urls[CLUSTERED(store)] = `http://127.0.0.1:${c.port}${ROUTE}`

      // The first request through each cache stores the page; the second must be a hit.
      const first = {
        cached: await probe(urls[CACHED] as string),
        varnish: await probe(urls[VARNISH] as string),
      }
      const clusterFirst = new Map<ClusterStore, Probe>()
      for (const store of CLUSTER_STORES)
        clusterFirst.set(store, await probe(urls[CLUSTERED(store)] as string))
      const direct = await probe(urls[DIRECT] as string)
      const cached = await probe(urls[CACHED] as string)
      const viaVarnish = await probe(urls[VARNISH] as string)
      const clusterHit = new Map<ClusterStore, Probe>()
      for (const store of CLUSTER_STORES)
        clusterHit.set(store, await probe(urls[CLUSTERED(store)] as string))
      for (const [name, p] of [
        [DIRECT, direct],
        [CACHED, cached],
        [VARNISH, viaVarnish],
        [`${CACHED} (first request)`, first.cached],
        [`${VARNISH} (first request)`, first.varnish],
        ...CLUSTER_STORES.flatMap((store) => [
          [CLUSTERED(store), clusterHit.get(store) as Probe] as const,
          [`${CLUSTERED(store)} (first request)`, clusterFirst.get(store) as Probe] as const,
        ]),
      ] as const) {
        if (p.status !== 200 || p.body.length !== ready.bodyLength || p.body !== direct.body) {
          throw new Error(`httpcache: ${name} did not serve the expected body (${p.status})`)
        }
      }
      for (const [name, miss, hit] of [
        [CACHED, first.cached, cached],
        ...CLUSTER_STORES.map(
          (store) =>
            [
              CLUSTERED(store),
              clusterFirst.get(store) as Probe,
              clusterHit.get(store) as Probe,
            ] as const,
        ),
      ] as const) {
        if (miss.headers.get('x-cache') !== 'miss' || hit.headers.get('x-cache') !== 'hit') {
          throw new Error(
            `httpcache: ${name}: X-Cache was ${miss.headers.get('x-cache')} then ${hit.headers.get('x-cache')}, not miss then hit`,
          )
        }
      }
      // X-Varnish carries two transaction ids on a hit, one on a miss.
      const varnishIds = (p: Probe) => (p.headers.get('x-varnish') ?? '').split(' ').length
      if (varnishIds(first.varnish) !== 1 || varnishIds(viaVarnish) !== 2) {
        throw new Error(
          `httpcache: X-Varnish was "${first.varnish.headers.get('x-varnish')}" then "${viaVarnish.headers.get('x-varnish')}", not a miss then a hit`,
        )
      }

      const order = [DIRECT, CACHED, ...CLUSTER_STORES.map(CLUSTERED), VARNISH]
      ctx.log(`httpcache: warm-up ${warmSeconds} s per contender (${generator})`)
      for (const name of order) await run(urls[name] as string, warmSeconds, useWrk)
      const before = (await serverCalls<Calls>(child)) as Calls

      const latency = new Map<string, { p50: number[]; p99: number[] }>()
      const loadCpu = new Map<string, number[]>()
      const roleOf = (name: string): Role =>
        name === DIRECT ? 'limit' : name === VARNISH ? 'peer' : 'subject'
      const contenders: ContenderSpec[] = order.map((name) => {
        const lat = { p50: [] as number[], p99: [] as number[] }
        const cpu: number[] = []
        latency.set(name, lat)
        loadCpu.set(name, cpu)
        return {
          name,
          role: roleOf(name),
          async sample() {
            const r = await run(urls[name] as string, duration, useWrk)
            cpu.push(r.cpu)
            lat.p50.push(r.p50)
            lat.p99.push(r.p99)
            return r.rps
          },
        }
      })
      ctx.log(`httpcache: ${rounds} rounds x ${order.length} contenders x ${duration} s`)
      const comparison = await compare({
        id: 'httpcache.hit',
        title: `httpcache: ~${(ready.bodyLength / 1024).toFixed(1)} KB HTML page, ${generator}, ${CONNECTIONS} connections${useWrk ? `, ${WRK.threads} thread` : `, pipelining ${PIPELINING}`}, ${duration} s per contender per round`,
        unit: REQ_PER_SEC,
        rounds,
        warmupRounds: 0,
        contenders,
        pairs: [
          [CACHED, DIRECT],
          [CACHED, VARNISH],
          ...CLUSTER_STORES.flatMap(
            (store) =>
              [
                [CLUSTERED(store), VARNISH],
                [CLUSTERED(store), CACHED],
              ] as const,
          ),
        ],
        log: ctx.log,
      })
      const after = (await serverCalls<Calls>(child)) as Calls
      const clusterCalls = new Map<ClusterStore, number>()
      for (const [store, c] of clusters) {
        const calls = await serverCalls<Record<string, number>>(c.child)
        clusterCalls.set(store, calls?.cached ?? 0)
      }
      const counters = await varnishCounters(varnish)
      const vsDirect = ratioOf(comparison, CACHED, DIRECT)
      const vsVarnish = ratioOf(comparison, CACHED, VARNISH)
      // The target row's cluster form: the faster shared store in this run (by median req/s).
      const medianOf = (name: string) =>
        comparison.contenders.find((c) => c.name === name)?.median ?? Number.NaN
      const best = [...SHARED_STORES].sort(
        (a, b) => medianOf(CLUSTERED(b)) - medianOf(CLUSTERED(a)),
      )[0] as ClusterStore
      const clusterVsVarnish = ratioOf(comparison, CLUSTERED(best), VARNISH)

      const allHits =
        after.cached === 1 &&
        after.varnish === 1 &&
        [...clusterCalls.values()].every((n) => n === 1)
      const latencyNote = order
        .map((name) => {
          const l = latency.get(name) as { p50: number[]; p99: number[] }
          return `${name} p50 ${roundMs(spreadOf(l.p50).median)} ms, p99 ${roundMs(spreadOf(l.p99).median)} ms`
        })
        .join('; ')
      const cpuNote = order
        .map((name) => `${name} ${(spreadOf(loadCpu.get(name) ?? []).median * 100).toFixed(0)}%`)
        .join('; ')
      const headlines: Headline[] = [
        {
          label: `httpCache hit ÷ direct (req/s, ${generator})`,
          ratio: vsDirect,
          target: target('>=', 0.85, vsDirect),
        },
        {
          label: `httpCache hit, one process ÷ Varnish hit (req/s, ${generator})`,
          ratio: vsVarnish,
        },
        {
          label: `httpCache hit, ${CLUSTER_WORKERS} cluster workers, ${best} ÷ Varnish hit (req/s, ${generator})`,
          ratio: clusterVsVarnish,
          target: target('>=', 0.5, clusterVsVarnish),
        },
        ...CLUSTER_STORES.filter((store) => store !== best).map(
          (store): Headline => ({
            label: `httpCache hit, ${CLUSTER_WORKERS} cluster workers, ${store === 'TieredCache' ? 'TieredCache over Redis' : store} ÷ Varnish hit (req/s, ${generator})`,
            ratio: ratioOf(comparison, CLUSTERED(store), VARNISH),
          }),
        ),
      ]
      return {
        group: 'httpcache',
        description:
          'A stored-response hit through cachette’s shared HTTP cache (`httpCache` Express middleware), ' +
          `in one process and on ${CLUSTER_WORKERS} node:cluster workers sharing the store, ` +
          'against the same Express route answering directly (the limit) and against Varnish in front of that route. ' +
          `Requests/s with ${generator} on loopback; each round runs ${generator} once per contender, rotating the order.`,
        measuredAt: new Date().toISOString(),
        mode: ctx.quick ? 'quick' : 'full',
        settings: {
          rounds,
          durationSeconds: duration,
          warmSeconds,
          loadGenerator: generator,
          connections: CONNECTIONS,
          ...(useWrk ? { wrkThreads: WRK.threads } : { pipelining: PIPELINING }),
          bodyBytes: ready.bodyLength,
          varnishThreadPoolMin: VARNISH_THREADS,
          clusterWorkers: CLUSTER_WORKERS,
          clusterStores: CLUSTER_STORES,
        },
        comparisons: [comparison],
        headlines,
        notes: [
          `${DIRECT}: an Express 5 app whose \`GET ${ROUTE}\` sets \`Cache-Control: ${CACHE_CONTROL}\` and \`res.send(body)\` (Express adds its weak ETag), in a child process.`,
          `${CACHED}: a second Express 5 app in the same child process, \`app.use(httpCache({ cache: new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_THRESHOLD: 10000 }) }))\` in front of the same route; no \`validation()\`. Stored by a first request (X-Cache: miss), then checked to answer X-Cache: hit before timing.`,
          `Cluster forms (bench/httpcache/cluster.ts): the same cached app on ${CLUSTER_WORKERS} node:cluster workers sharing one port (the primary hands connections out round-robin), the store shared by both: \`CACHE_TYPE: 'ClusterCache'\` (the entries in the primary, \`ClusterCache.serve()\` before forking; IPC round trips, the reads of one tick in one message) or \`CACHE_TYPE: 'RedisCache'\` (a redis-server started for the run); a hit reads the store twice, one after the other (the resource's metadata, then the stored variant). The target row takes the faster of the two in this run (${best}). A third form, \`TieredCache.over(RedisCache, { bus: redisBus(), firstTimeout: 60 })\`, keeps the shared store on Redis with a first tier in each worker (the bus drops a key from the other worker's first tier when one writes or deletes it): its hits are in-process after each worker's first read. Each stored the page on a first request; over the whole run the route ran ${CLUSTER_STORES.map((store) => `${clusterCalls.get(store)} time(s) with ${store}`).join(', ')} (once means every other request, on either worker, was a hit from the shared store).`,
          `${VARNISH}: Debian's varnishd (test/servers/varnish.ts: default VCL, one thread pool, \`-p thread_pool_min=${VARNISH_THREADS}\`, 64 MB malloc storage) with the direct app as its backend; stored by a first request and checked to be a hit (two ids in X-Varnish) before timing.`,
          useWrk
            ? `Load: wrk (C, one thread, ${CONNECTIONS} connections) shares the 2 cores with the server under test: the single-process Node apps have one core and wrk the other; the cluster forms' 2 workers, their store (primary or redis-server) and wrk share both, as do Varnish's worker threads and wrk.`
            : 'Load: autocannon (one Node thread) in the parent process, because wrk is missing (`bash scripts/bench-deps.sh` installs it). The single-process Node apps have one core and autocannon the other; the 2 workers of a cluster form and their store share both cores with it. Varnish is a C server with its own worker threads, which share both cores with autocannon, so its rate may be bounded by the load generator rather than by Varnish.',
          `Load generator CPU (${generator}, share of one core, median per round): ${cpuNote}.`,
          `Route calls over the whole run: direct ${after.direct}, from Varnish ${after.varnish}, httpCache app ${after.cached} (during the timed rounds: from Varnish ${after.varnish - before.varnish}, httpCache app ${after.cached - before.cached})${allHits ? '' : ' — a cache ran the route more than once: NOT all hits'}.` +
            (counters ? ` varnishstat: ${counters.hit} hits, ${counters.miss} misses.` : ''),
          `Median per-round latency: ${latencyNote}.`,
          `Response headers (besides date): direct: ${headerNames(direct)}; httpCache hit: ${headerNames(cached)}; Varnish hit: ${headerNames(viaVarnish)}.`,
        ],
      }
    } finally {
      await closeAll(closers, 'httpcache', ctx.log)
    }
  },
}
