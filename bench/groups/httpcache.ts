/**
 * httpcache: a stored-response hit through cachette's RFC 9111 shared cache
 * (`httpCache` Express middleware over a SimpleCache) against the same route
 * answering directly (the limit) and against Varnish (Debian's varnishd, the
 * test/servers/varnish.ts harness) in front of the direct app. autocannon on
 * loopback; the apps run in a child process (bench/httpcache/server.ts).
 */
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { startVarnish, type VarnishServer } from '../../test/servers/varnish.js'
import type { Calls } from '../httpcache/server.js'
import type { Group, GroupContext } from '../lib/group.js'
import { forkServer, type LoadOptions, load, serverCalls, stopServer } from '../lib/http.js'
import { type ContenderSpec, compare, REQ_PER_SEC, ratioOf, spreadOf } from '../lib/measure.js'
import { type GroupResult, target } from '../lib/report.js'

const SERVER = fileURLToPath(new URL('../httpcache/server.ts', import.meta.url))
/** The route both apps serve (bench/httpcache/server.ts's `ROUTE`, not imported: see there). */
const ROUTE = '/page'
/** The Cache-Control both apps' route sets (likewise). */
const CACHE_CONTROL = 'public, max-age=3600'
const CONNECTIONS = 10
const PIPELINING = 1
/** autocannon's settings for every run of this group, warm-up and timed. */
const LOAD: LoadOptions = { connections: CONNECTIONS, pipelining: PIPELINING }
/** Idle Varnish workers kept ready, so no timed round pays for creating threads. */
const VARNISH_THREADS = 100

const DIRECT = 'direct (route sends the page, no cache)'
const CACHED = 'cachette httpCache hit'
const VARNISH = 'Varnish hit'

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

export const httpcacheGroup: Group = {
  name: 'httpcache',
  async run(ctx: GroupContext): Promise<GroupResult> {
    const duration = ctx.quick ? 1 : 5
    const warmSeconds = ctx.quick ? 0.5 : 2
    const rounds = ctx.quick ? 2 : 6
    const { child, ready } = await forkServer<Ready>(SERVER, [], 'httpcache apps')
    let varnish: VarnishServer | undefined
    try {
      varnish = await startVarnish({
        backendPort: ready.directPort,
        args: ['-p', `thread_pool_min=${VARNISH_THREADS}`],
      })
      const urls: Record<string, string> = {
        [DIRECT]: `http://127.0.0.1:${ready.directPort}${ROUTE}`,
        [CACHED]: `http://127.0.0.1:${ready.cachedPort}${ROUTE}`,
        [VARNISH]: `${varnish.url}${ROUTE}`,
      }
      // The first request through each cache stores the page; the second must be a hit.
      const first = {
        cached: await probe(urls[CACHED] as string),
        varnish: await probe(urls[VARNISH] as string),
      }
      const direct = await probe(urls[DIRECT] as string)
      const cached = await probe(urls[CACHED] as string)
      const viaVarnish = await probe(urls[VARNISH] as string)
      for (const [name, p] of [
        [DIRECT, direct],
        [CACHED, cached],
        [VARNISH, viaVarnish],
        [`${CACHED} (first request)`, first.cached],
        [`${VARNISH} (first request)`, first.varnish],
      ] as const) {
        if (p.status !== 200 || p.body.length !== ready.bodyLength || p.body !== direct.body) {
          throw new Error(`httpcache: ${name} did not serve the expected body (${p.status})`)
        }
      }
      if (
        first.cached.headers.get('x-cache') !== 'miss' ||
        cached.headers.get('x-cache') !== 'hit'
      ) {
        throw new Error(
          `httpcache: X-Cache was ${first.cached.headers.get('x-cache')} then ${cached.headers.get('x-cache')}, not miss then hit`,
        )
      }
      // X-Varnish carries two transaction ids on a hit, one on a miss.
      const varnishIds = (p: Probe) => (p.headers.get('x-varnish') ?? '').split(' ').length
      if (varnishIds(first.varnish) !== 1 || varnishIds(viaVarnish) !== 2) {
        throw new Error(
          `httpcache: X-Varnish was "${first.varnish.headers.get('x-varnish')}" then "${viaVarnish.headers.get('x-varnish')}", not a miss then a hit`,
        )
      }

      const order = [DIRECT, CACHED, VARNISH] as const
      ctx.log(`httpcache: warm-up ${warmSeconds} s per contender`)
      for (const name of order) await load(urls[name] as string, warmSeconds, LOAD)
      const before = (await serverCalls<Calls>(child)) as Calls

      const latency = new Map<string, { p50: number[]; p99: number[] }>()
      const loadCpu = new Map<string, number[]>()
      const roles = { [DIRECT]: 'limit', [CACHED]: 'subject', [VARNISH]: 'peer' } as const
      const contenders: ContenderSpec[] = order.map((name) => {
        const lat = { p50: [] as number[], p99: [] as number[] }
        const cpu: number[] = []
        latency.set(name, lat)
        loadCpu.set(name, cpu)
        return {
          name,
          role: roles[name],
          async sample() {
            const cpu0 = process.cpuUsage()
            const r = await load(urls[name] as string, duration, LOAD)
            const used = process.cpuUsage(cpu0)
            cpu.push((used.user + used.system) / 1e6 / r.duration)
            lat.p50.push(r.latency.p50)
            lat.p99.push(r.latency.p99)
            return r.requests.total / r.duration
          },
        }
      })
      ctx.log(`httpcache: ${rounds} rounds x ${order.length} contenders x ${duration} s`)
      const comparison = await compare({
        id: 'httpcache.hit',
        title: `httpcache: ~${(ready.bodyLength / 1024).toFixed(1)} KB HTML page, ${CONNECTIONS} connections, pipelining ${PIPELINING}, ${duration} s per contender per round`,
        unit: REQ_PER_SEC,
        rounds,
        warmupRounds: 0,
        contenders,
        pairs: [
          [CACHED, DIRECT],
          [CACHED, VARNISH],
        ],
        log: ctx.log,
      })
      const after = (await serverCalls<Calls>(child)) as Calls
      const counters = await varnishCounters(varnish)
      const vsDirect = ratioOf(comparison, CACHED, DIRECT)
      const vsVarnish = ratioOf(comparison, CACHED, VARNISH)

      const allHits = after.cached === 1 && after.varnish === 1
      const latencyNote = order
        .map((name) => {
          const l = latency.get(name) as { p50: number[]; p99: number[] }
          return `${name} p50 ${spreadOf(l.p50).median} ms, p99 ${spreadOf(l.p99).median} ms`
        })
        .join('; ')
      const cpuNote = order
        .map((name) => `${name} ${(spreadOf(loadCpu.get(name) ?? []).median * 100).toFixed(0)}%`)
        .join('; ')
      return {
        group: 'httpcache',
        description:
          'A stored-response hit through cachette’s shared HTTP cache (`httpCache` Express middleware) ' +
          'against the same Express route answering directly (the limit) and against Varnish in front of that route. ' +
          'Requests/s with autocannon on loopback; each round runs autocannon once per contender, rotating the order.',
        measuredAt: new Date().toISOString(),
        mode: ctx.quick ? 'quick' : 'full',
        settings: {
          rounds,
          durationSeconds: duration,
          warmSeconds,
          connections: CONNECTIONS,
          pipelining: PIPELINING,
          bodyBytes: ready.bodyLength,
          varnishThreadPoolMin: VARNISH_THREADS,
        },
        comparisons: [comparison],
        headlines: [
          {
            label: 'httpCache hit ÷ direct (req/s)',
            ratio: vsDirect,
            target: target('>=', 0.85, vsDirect),
          },
          { label: 'httpCache hit ÷ Varnish hit (req/s)', ratio: vsVarnish },
        ],
        notes: [
          `${DIRECT}: an Express 5 app whose \`GET ${ROUTE}\` sets \`Cache-Control: ${CACHE_CONTROL}\` and \`res.send(body)\` (Express adds its weak ETag), in a child process.`,
          `${CACHED}: a second Express 5 app in the same child process, \`app.use(httpCache({ cache: new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_THRESHOLD: 10000 }) }))\` in front of the same route; no \`validation()\`. Stored by a first request (X-Cache: miss), then checked to answer X-Cache: hit before timing.`,
          `${VARNISH}: Debian's varnishd (test/servers/varnish.ts: default VCL, one thread pool, \`-p thread_pool_min=${VARNISH_THREADS}\`, 64 MB malloc storage) with the direct app as its backend; stored by a first request and checked to be a hit (two ids in X-Varnish) before timing.`,
          'The 2-core machine runs autocannon (one Node thread) in the parent process. The Node apps are single-threaded: for the direct and httpCache contenders the app has one core and autocannon the other. Varnish is a C server with its own worker threads, which share both cores with autocannon (the Node backend is idle during its rounds), so its rate may be bounded by the load generator rather than by Varnish.',
          `Load generator CPU (parent process, share of one core, median per round): ${cpuNote}.`,
          `Route calls over the whole run: direct ${after.direct}, from Varnish ${after.varnish}, httpCache app ${after.cached} (during the timed rounds: from Varnish ${after.varnish - before.varnish}, httpCache app ${after.cached - before.cached})${allHits ? '' : ' — a cache ran the route more than once: NOT all hits'}.` +
            (counters ? ` varnishstat: ${counters.hit} hits, ${counters.miss} misses.` : ''),
          `Median per-round latency: ${latencyNote}.`,
          `Response headers (besides date): direct: ${headerNames(direct)}; httpCache hit: ${headerNames(cached)}; Varnish hit: ${headerNames(viaVarnish)}.`,
        ],
      }
    } finally {
      await varnish?.stop()
      await stopServer(child)
    }
  },
}
