/**
 * HTTP groups: autocannon against one app in a child process, with routes
 * that send the same body: the framework's plain route (the limit), a
 * cachette cached-view hit, and (for Express) an apicache hit. One group per
 * framework, all built by {@link httpGroup}.
 */
import { fileURLToPath } from 'node:url'
import type { Group, GroupContext } from '../lib/group.js'
import { forkServer, type LoadOptions, load, serverCalls, stopServer } from '../lib/http.js'
import { type ContenderSpec, compare, REQ_PER_SEC, ratioOf, spreadOf } from '../lib/measure.js'
import { type GroupResult, target } from '../lib/report.js'

const EXPRESS_SERVER = fileURLToPath(new URL('../express/server.ts', import.meta.url))
const FRAMEWORK_SERVER = fileURLToPath(new URL('../frameworks/server.ts', import.meta.url))

const CONNECTIONS = 10
const PIPELINING = 1
/** autocannon's settings for every run of this group, warm-up and timed. */
const LOAD: LoadOptions = { connections: CONNECTIONS, pipelining: PIPELINING }

interface Target {
  readonly route: string
  readonly name: string
  readonly role: 'limit' | 'subject' | 'peer'
  /** For a subject after the second target: its headline ratio ÷ the limit must reach this. */
  readonly min?: number
  /** That headline's label. */
  readonly label?: string
}

/** One framework's HTTP group: which server script to fork and which routes to compare. */
interface HttpSpec {
  readonly name: string
  readonly framework: string
  readonly server: string
  readonly args: readonly string[]
  /** The limit first, the cachette route second, then any peers. */
  readonly targets: readonly [Target, Target, ...Target[]]
}

interface Ready {
  type: 'ready'
  port: number
  bodyLength: number
}

/** Builds the group for one framework. */
function httpGroup(spec: HttpSpec): Group {
  const TARGETS = spec.targets
  const group = spec.name
  return {
    name: group,
    async run(ctx: GroupContext): Promise<GroupResult> {
      const duration = ctx.quick ? 1 : 5
      const warmSeconds = ctx.quick ? 0.5 : 2
      const rounds = ctx.quick ? 2 : 7
      const { child, ready } = await forkServer<Ready>(
        spec.server,
        spec.args,
        `${spec.name} server`,
      )
      try {
        const base = `http://127.0.0.1:${ready.port}`
        // First request of each route fills its cache; check the bodies are the same bytes.
        const first = await Promise.all(
          TARGETS.map(async (t) => {
            const res = await fetch(base + t.route)
            return {
              route: t.route,
              status: res.status,
              headers: res.headers,
              body: await res.text(),
            }
          }),
        )
        const again = await Promise.all(
          TARGETS.map(async (t) => (await fetch(base + t.route)).text()),
        )
        for (let i = 0; i < first.length; i++) {
          const f = first[i] as (typeof first)[number]
          if (f.status !== 200 || f.body.length !== ready.bodyLength || again[i] !== f.body) {
            throw new Error(`${group}: ${f.route} did not serve the expected body`)
          }
        }
        ctx.log(`${group}: warm-up ${warmSeconds} s per route`)
        for (const t of TARGETS) await load(base + t.route, warmSeconds, LOAD)

        const latency = new Map<string, { p50: number[]; p99: number[] }>()
        const contenders: ContenderSpec[] = TARGETS.map((t) => {
          const lat = { p50: [] as number[], p99: [] as number[] }
          latency.set(t.name, lat)
          return {
            name: t.name,
            role: t.role,
            async sample() {
              const r = await load(base + t.route, duration, LOAD)
              lat.p50.push(r.latency.p50)
              lat.p99.push(r.latency.p99)
              return r.requests.total / r.duration
            },
          }
        })
        ctx.log(`${group}: ${rounds} rounds x ${TARGETS.length} routes x ${duration} s`)
        const comparison = await compare({
          id: `${group}.hit`,
          title: `${group}: ~${(ready.bodyLength / 1024).toFixed(1)} KB HTML route, ${CONNECTIONS} connections, pipelining ${PIPELINING}, ${duration} s per route per round`,
          unit: REQ_PER_SEC,
          rounds,
          warmupRounds: 0,
          contenders,
          log: ctx.log,
        })
        const calls = (await serverCalls<Record<string, number>>(child)) ?? {}
        const limitName = TARGETS[0].name
        const cachedName = TARGETS[1].name
        const vsLimit = ratioOf(comparison, cachedName, limitName)
        const headerNote = first
          .map((f) => {
            const names = [...f.headers.keys()].filter((h) => h !== 'date').join(', ')
            return `${f.route}: ${names}`
          })
          .join('; ')
        const latencyNote = [...latency.entries()]
          .map(([name, l]) => {
            const p50 = spreadOf(l.p50).median
            const p99 = spreadOf(l.p99).median
            return `${name} p50 ${p50} ms, p99 ${p99} ms`
          })
          .join('; ')
        const cachedHits = TARGETS.filter((t) => t.role === 'subject').every(
          (t) => (calls[t.route] ?? 0) <= 1,
        )
        return {
          group,
          description:
            `${spec.framework} app in a child process (one core for the server, one for autocannon). ` +
            'Requests/s per route; each round runs autocannon once per route, rotating the order.',
          measuredAt: new Date().toISOString(),
          mode: ctx.quick ? 'quick' : 'full',
          settings: {
            rounds,
            durationSeconds: duration,
            warmSeconds,
            connections: CONNECTIONS,
            pipelining: PIPELINING,
            bodyBytes: ready.bodyLength,
          },
          comparisons: [comparison],
          headlines: [
            {
              label: 'cached hit ÷ limit (req/s)',
              ratio: vsLimit,
              target: target('>=', 0.85, vsLimit),
            },
            ...TARGETS.slice(2)
              .filter((t) => t.role === 'subject')
              .map((t) => {
                const ratio = ratioOf(comparison, t.name, limitName)
                return {
                  label: t.label ?? `${t.name} ÷ limit (req/s)`,
                  ratio,
                  target: target('>=', t.min ?? 0.85, ratio),
                }
              }),
            ...TARGETS.slice(2)
              .filter((t) => t.role === 'peer')
              .map((peer) => ({
                label: `cached hit ÷ ${peer.name} (req/s)`,
                ratio: ratioOf(comparison, cachedName, peer.name),
              })),
          ],
          notes: [
            `Handler calls over the whole run: ${Object.entries(calls)
              .map(([r, n]) => `${r} ${n}`)
              .join(
                ', ',
              )}${cachedHits ? '' : ' — the cached route ran its handler more than once: NOT a cache hit'}.`,
            `Median per-round latency: ${latencyNote}.`,
            `Response headers (besides date): ${headerNote}.`,
          ],
        }
      } finally {
        await stopServer(child)
      }
    },
  }
}

const limitAndCached = (plain: string, cachedName: string): [Target, Target] => [
  { route: '/limit', name: plain, role: 'limit' },
  { route: '/cached', name: cachedName, role: 'subject' },
]

/** Express 5: plain `res.send`, `cache.cached()`, and apicache. */
export const expressGroup: Group = httpGroup({
  name: 'express',
  framework: 'Express 5',
  server: EXPRESS_SERVER,
  args: [],
  targets: [
    ...limitAndCached('res.send(body), no cache', 'cachette cache.cached() hit'),
    { route: '/apicache', name: 'apicache middleware hit', role: 'peer' },
  ],
})

/** Fastify 5: a plain route against the cachette plugin's route config. */
export const fastifyGroup: Group = httpGroup({
  name: 'fastify',
  framework: 'Fastify 5',
  server: FRAMEWORK_SERVER,
  args: ['fastify'],
  targets: limitAndCached('reply.send(body), no cache', 'cachette plugin hit'),
})

/** Koa 3: a plain middleware against `cached(cache, options)`. */
export const koaGroup: Group = httpGroup({
  name: 'koa',
  framework: 'Koa 3',
  server: FRAMEWORK_SERVER,
  args: ['koa'],
  targets: limitAndCached('ctx.body = body, no cache', 'cachette cached() hit'),
})

/**
 * Hono 4 on @hono/node-server: `c.html` against `cached(cache, options)` as
 * middleware, and against `cached(cache, options, handler)` wrapping the
 * handler (one handler on the route: Hono's single-handler path).
 */
export const honoGroup: Group = httpGroup({
  name: 'hono',
  framework: 'Hono 4 (@hono/node-server)',
  server: FRAMEWORK_SERVER,
  args: ['hono'],
  targets: [
    ...limitAndCached('c.html(body), no cache', 'cachette cached() hit'),
    {
      route: '/wrapped',
      name: 'cachette cached(cache, options, handler) hit',
      role: 'subject',
      min: 0.95,
      label: 'wrapped cached(…, handler) hit ÷ limit (req/s)',
    },
  ],
})
