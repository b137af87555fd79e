/**
 * The Grafana dashboard (dashboards/grafana/cachette.json) as the tests and
 * scripts/render-dashboard.ts read it: its panels and queries, the metric
 * names a PromQL expression uses, the series `registerCacheMetrics`
 * exports, a workload on real caches serving `/metrics`, and a real
 * Prometheus scraping it.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import express from 'express'
import { Registry } from 'prom-client'
import { Cache } from '../src/index.js'
import { registerCacheMetrics } from '../src/observability/prometheus.js'
import { freePort, HOST, managed } from './servers/process.js'

export const DASHBOARD_PATH = new URL('../dashboards/grafana/cachette.json', import.meta.url)

/** The parts of Grafana's dashboard model the checks read. */
export interface GridPos {
  h: number
  w: number
  x: number
  y: number
}
export interface Datasource {
  type?: string
  uid?: string
}
export interface Target {
  refId?: string
  expr?: string
  legendFormat?: string
  format?: string
  datasource?: Datasource
}
export interface Panel {
  id?: number
  type?: string
  title?: string
  gridPos?: GridPos
  datasource?: Datasource
  targets?: Target[]
  panels?: Panel[]
  fieldConfig?: { defaults?: { unit?: string; min?: number; max?: number } }
}
export interface TemplateVariable {
  name?: string
  type?: string
  query?: unknown
  datasource?: Datasource
}
export interface Dashboard {
  title?: string
  uid?: string
  schemaVersion?: number
  panels?: Panel[]
  templating?: { list?: TemplateVariable[] }
}

export function loadDashboard(): Dashboard {
  return JSON.parse(readFileSync(DASHBOARD_PATH, 'utf8')) as Dashboard
}

/** Every panel, rows and the panels of collapsed rows included. */
export function panelsOf(dashboard: Dashboard): Panel[] {
  const out: Panel[] = []
  for (const p of dashboard.panels ?? []) {
    out.push(p)
    for (const inner of p.panels ?? []) out.push(inner)
  }
  return out
}

/** One query of one panel. */
export interface PanelQuery {
  panel: Panel
  target: Target
  expr: string
}

export function queriesOf(dashboard: Dashboard): PanelQuery[] {
  const out: PanelQuery[] = []
  for (const panel of panelsOf(dashboard)) {
    for (const target of panel.targets ?? []) {
      out.push({ panel, target, expr: target.expr ?? '' })
    }
  }
  return out
}

/** The datasource every panel and target must use: the `${datasource}` variable. */
// biome-ignore lint/suspicious/noTemplateCurlyInString: a Grafana variable, not a template
export const DATASOURCE: Datasource = { type: 'prometheus', uid: '${datasource}' }

const isInt = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n)

/** What is wrong with the dashboard's shape (empty when nothing is). */
export function shapeProblems(dashboard: Dashboard): string[] {
  const problems: string[] = []
  if (typeof dashboard.title !== 'string' || dashboard.title === '') problems.push('no title')
  if (typeof dashboard.uid !== 'string' || dashboard.uid === '') problems.push('no uid')
  if (!isInt(dashboard.schemaVersion) || dashboard.schemaVersion < 36) {
    problems.push(`schemaVersion ${String(dashboard.schemaVersion)}: expected 36 or later`)
  }
  const vars = dashboard.templating?.list ?? []
  const ds = vars.find((v) => v.name === 'datasource')
  if (ds?.type !== 'datasource' || ds.query !== 'prometheus') {
    problems.push('no `datasource` variable of type datasource querying prometheus')
  }
  for (const name of ['job', 'instance']) {
    const v = vars.find((x) => x.name === name)
    if (v?.type !== 'query') problems.push(`no \`${name}\` query variable`)
    else if (v.datasource?.uid !== DATASOURCE.uid) {
      problems.push(`variable ${name} does not use the datasource variable`)
    }
  }
  const ids = new Set<number>()
  const placed: { title: string; pos: GridPos }[] = []
  for (const p of panelsOf(dashboard)) {
    const name = `panel ${String(p.id)} (${p.title ?? 'untitled'})`
    if (!isInt(p.id)) problems.push(`${name}: id is not an integer`)
    else if (ids.has(p.id)) problems.push(`${name}: duplicate id`)
    else ids.add(p.id)
    if (typeof p.type !== 'string' || p.type === '') problems.push(`${name}: no type`)
    if (typeof p.title !== 'string' || p.title === '') problems.push(`${name}: no title`)
    const g = p.gridPos
    if (g === undefined || ![g.h, g.w, g.x, g.y].every(isInt)) {
      problems.push(`${name}: gridPos needs integer h, w, x, y`)
    } else {
      if (g.w < 1 || g.h < 1 || g.x < 0 || g.y < 0 || g.x + g.w > 24) {
        problems.push(`${name}: gridPos ${JSON.stringify(g)} is outside the 24-column grid`)
      }
      for (const other of placed) {
        const o = other.pos
        if (g.x < o.x + o.w && o.x < g.x + g.w && g.y < o.y + o.h && o.y < g.y + g.h) {
          problems.push(`${name}: overlaps ${other.title}`)
        }
      }
      placed.push({ title: name, pos: g })
    }
    if (p.type === 'row') continue
    if (p.datasource?.type !== DATASOURCE.type || p.datasource?.uid !== DATASOURCE.uid) {
      problems.push(`${name}: datasource is not \${datasource}`)
    }
    const targets = p.targets ?? []
    if (targets.length === 0) problems.push(`${name}: no targets`)
    const refIds = new Set<string>()
    for (const t of targets) {
      if (typeof t.refId !== 'string' || refIds.has(t.refId)) {
        problems.push(`${name}: missing or duplicate refId`)
      } else refIds.add(t.refId)
      if (typeof t.expr !== 'string' || t.expr.trim() === '') problems.push(`${name}: empty expr`)
      if (t.datasource?.uid !== DATASOURCE.uid) {
        problems.push(`${name}: target ${String(t.refId)} datasource is not \${datasource}`)
      }
    }
  }
  return problems
}

/** PromQL words that are not metric names: aggregations, modifiers, operators, literals. */
const KEYWORDS = new Set([
  'sum',
  'min',
  'max',
  'avg',
  'group',
  'stddev',
  'stdvar',
  'count',
  'count_values',
  'bottomk',
  'topk',
  'quantile',
  'limitk',
  'limit_ratio',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'atan2',
  'inf',
  'nan',
  'le',
])
/** Keywords followed by a parenthesised list of label names. */
const LABEL_LISTS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right'])

const IDENT_START = /[A-Za-z_:]/
const IDENT = /[A-Za-z0-9_:]/

/**
 * The metric names an expression selects: identifiers not followed by `(`
 * (functions), outside `{...}` label matchers, `[...]` ranges, strings,
 * comments and the label lists of `by`/`without`/`on`/`ignoring`/`group_*`,
 * and not PromQL keywords or Grafana `$variables`.
 */
export function metricNames(expr: string): string[] {
  const names: string[] = []
  let i = 0
  const n = expr.length
  const skipString = (): void => {
    const quote = expr[i]
    i++
    while (i < n && expr[i] !== quote) i += expr[i] === '\\' && quote !== '`' ? 2 : 1
    i++
  }
  const skipTo = (close: string): void => {
    while (i < n && expr[i] !== close) {
      if (expr[i] === '"' || expr[i] === "'" || expr[i] === '`') skipString()
      else i++
    }
    i++
  }
  const skipSpace = (): void => {
    while (i < n && /\s/.test(expr[i] as string)) i++
  }
  while (i < n) {
    const c = expr[i] as string
    if (/\s/.test(c)) i++
    else if (c === '#') {
      while (i < n && expr[i] !== '\n') i++
    } else if (c === '"' || c === "'" || c === '`') skipString()
    else if (c === '{') skipTo('}')
    else if (c === '[') skipTo(']')
    else if (c === '$') {
      i++
      if (expr[i] === '{') skipTo('}')
      else while (i < n && IDENT.test(expr[i] as string)) i++
    } else if (/[0-9.]/.test(c)) {
      // Numbers and durations (5m, 1e-3, 0x1f).
      while (i < n && /[0-9A-Za-z_.]/.test(expr[i] as string)) {
        if ((expr[i] === 'e' || expr[i] === 'E') && /[+-]/.test(expr[i + 1] ?? '')) i++
        i++
      }
    } else if (IDENT_START.test(c)) {
      const start = i
      while (i < n && IDENT.test(expr[i] as string)) i++
      const word = expr.slice(start, i)
      skipSpace()
      if (LABEL_LISTS.has(word.toLowerCase())) {
        if (expr[i] === '(') {
          i++
          skipTo(')')
        }
      } else if (expr[i] === '(' || KEYWORDS.has(word.toLowerCase())) {
        // a function call, an aggregation or a keyword
      } else names.push(word)
    } else i++
  }
  return names
}

/** The series `registerCacheMetrics` exports, mapped to their metric family. */
export interface ExportedMetrics {
  /** Series name (`x_total`, `h_bucket`, `h_sum`, `h_count`) → family name. */
  series: Map<string, string>
  /** Family name → prom-client type. */
  families: Map<string, string>
}

/**
 * Registers a real Cache's metrics on a fresh prom-client Registry and reads
 * back what it exports (`getMetricsAsJSON`); a histogram family `h` exports
 * the series `h_bucket`, `h_sum` and `h_count`.
 */
export async function exportedMetrics(): Promise<ExportedMetrics> {
  const registry = new Registry()
  const cache = new Cache({ CACHE_TYPE: 'SimpleCache' })
  const metrics = registerCacheMetrics(cache, { registry })
  try {
    const series = new Map<string, string>()
    const families = new Map<string, string>()
    for (const m of await registry.getMetricsAsJSON()) {
      families.set(m.name, String(m.type))
      if (String(m.type) === 'histogram' || String(m.type) === 'summary') {
        const suffixes =
          String(m.type) === 'histogram' ? ['_bucket', '_sum', '_count'] : ['_sum', '_count', '']
        for (const s of suffixes) series.set(m.name + s, m.name)
      } else series.set(m.name, m.name)
    }
    return { series, families }
  } finally {
    metrics.unregister()
  }
}

/**
 * Metric names the dashboard uses that are not exported (`unknown`, with the
 * panel naming them) and exported families no panel uses (`unused`).
 */
export function metricProblems(
  dashboard: Dashboard,
  exported: ExportedMetrics,
): { unknown: string[]; unused: string[] } {
  const unknown: string[] = []
  const used = new Set<string>()
  for (const q of queriesOf(dashboard)) {
    for (const name of metricNames(q.expr)) {
      const family = exported.series.get(name)
      if (family === undefined)
        unknown.push(`${name} (panel ${String(q.panel.id)} "${q.panel.title}")`)
      else used.add(family)
    }
  }
  const unused = [...exported.families.keys()].filter((f) => !used.has(f))
  return { unknown, unused }
}

/** Grafana's template variables and interval macros, as Prometheus would see them. */
export function substitute(
  expr: string,
  vars: Record<string, string> = { job: 'cachette', instance: '.*' },
  rateInterval = '10s',
): string {
  return expr
    .replaceAll('$__rate_interval', rateInterval)
    .replaceAll('$__interval', rateInterval)
    .replace(
      /\$\{(\w+)(?::\w+)?\}|\$(\w+)/g,
      (whole, a: string | undefined, b: string | undefined) => {
        const name = (a ?? b) as string
        return vars[name] ?? whole
      },
    )
}

const quiet = { debug() {}, info() {}, warn() {}, error() {} }

/** Real caches under load, their metrics served over HTTP. */
export interface Workload {
  /** Port of the `/metrics` endpoint. */
  readonly port: number
  readonly registry: Registry
  /** The caches: SimpleCache, FileSystemCache, then the RedisCache whose server is down. */
  readonly caches: readonly Cache[]
  /** Load iterations run so far. */
  readonly rounds: () => number
  stop(): Promise<void>
}

/**
 * Starts the workload: a SimpleCache behind an Express app with cached
 * views, memoized functions, getOrSet (with grace, so stale entries are
 * served) and fragments; a FileSystemCache; and a RedisCache whose server
 * is not there (connection refused: errors, then an open circuit). All
 * three are registered on one Registry, served on `/metrics`.
 */
export async function startWorkload(options: { downBackend?: boolean } = {}): Promise<Workload> {
  const registry = new Registry()
  const dir = mkdtempSync(join(tmpdir(), 'cachette-grafana-'))
  const memory = new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_DEFAULT_TIMEOUT: 2, logger: quiet })
  const disk = new Cache({ CACHE_TYPE: 'FileSystemCache', CACHE_DIR: dir, logger: quiet })
  const caches = [memory, disk]
  if (options.downBackend !== false) {
    caches.push(
      new Cache({
        CACHE_TYPE: 'RedisCache',
        CACHE_REDIS_URL: `redis://${HOST}:${await freePort()}`,
        CACHE_CIRCUIT_BREAKER: { failures: 5, openFor: 2 },
        logger: quiet,
      }),
    )
  }
  const registrations = caches.map((c) => registerCacheMetrics(c, { registry }))

  const app = express()
  app.get('/products/:id', memory.cached({ timeout: 1 }), (req, res) => {
    res.send(`product ${req.params.id}`)
  })
  app.get('/home', memory.cached({ timeout: 3 }), (_req, res) => {
    res.send('home')
  })
  app.get('/metrics', async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics())
  })
  const server: Server = createServer(app)
  const port = await freePort()
  await new Promise<void>((resolve) => server.listen(port, HOST, resolve))

  const loadPrice = memory.memoize(
    async function loadPrice(id: number) {
      return id * 3
    },
    { timeout: 1 },
  )
  const loadUser = disk.memoize(
    async function loadUser(id: number) {
      return { id }
    },
    { timeout: 5 },
  )

  let running = true
  let rounds = 0
  const base = `http://${HOST}:${port}`
  const loop = (async () => {
    while (running) {
      const r = rounds++
      const id = r % 20
      await fetch(`${base}/products/${id % 7}`).then((res) => res.text())
      await fetch(`${base}/home`).then((res) => res.text())
      if (r % 5 === 0) {
        await fetch(`${base}/home`, { headers: { authorization: 'Bearer t' } }).then((res) =>
          res.text(),
        )
      }
      await loadPrice(id % 9)
      await loadUser(id % 30)
      await memory.getOrSet(`user:${id % 11}`, () => ({ id }), { timeout: 1, grace: 30 })
      await memory.getOrSet(`session:${r}`, () => r, { timeout: 1 })
      await memory.fragment('nav', 2, () => '<nav/>', [id % 3])
      await disk.fragment('footer', 10, () => '<footer/>')
      await memory.get(`missing:${r % 4}`)
      await disk.getMany(`a:${id % 5}`, `b:${id % 13}`)
      await disk.set(`b:${id % 13}`, r, 3)
      for (const extra of caches.slice(2)) await extra.get(`remote:${id}`)
      await new Promise((resolve) => setTimeout(resolve, 4))
    }
  })()

  return {
    port,
    registry,
    caches,
    rounds: () => rounds,
    async stop() {
      running = false
      await loop
      await new Promise<void>((resolve) => server.close(() => resolve()))
      for (const r of registrations) r.unregister()
      await Promise.all(caches.map((c) => c.close?.()))
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** A real Prometheus scraping `targetPort` every second. */
export interface Prometheus {
  readonly url: string
  /** Runs an instant query: Prometheus's JSON answer. */
  query(expr: string): Promise<PromAnswer>
  /** Runs a range query. */
  queryRange(expr: string, start: number, end: number, step: number): Promise<PromAnswer>
  stop(): Promise<void>
}

/** Prometheus's answer to a query. */
export interface PromAnswer {
  status: 'success' | 'error'
  errorType?: string
  error?: string
  data?: {
    resultType: string
    result: {
      metric: Record<string, string>
      value?: [number, string]
      values?: [number, string][]
    }[]
  }
}

export async function startPrometheus(targetPort: number): Promise<Prometheus> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'cachette-prometheus-'))
  const config = join(dir, 'prometheus.yml')
  writeFileSync(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      '  - job_name: cachette',
      '    static_configs:',
      `      - targets: ['${HOST}:${targetPort}']`,
      '',
    ].join('\n'),
  )
  const url = `http://${HOST}:${port}`
  const server = managed({
    command: 'prometheus',
    port,
    install: 'prometheus',
    args: () => [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=${HOST}:${port}`,
      '--log.level=warn',
    ],
    ready: async () => (await fetch(`${url}/-/ready`)).ok,
  })
  try {
    await server.start()
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
  const get = async (path: string, params: Record<string, string>): Promise<PromAnswer> => {
    const res = await fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(params).toString(),
    })
    return (await res.json()) as PromAnswer
  }
  return {
    url,
    query: (expr) => get('/api/v1/query', { query: expr }),
    queryRange: (expr, start, end, step) =>
      get('/api/v1/query_range', {
        query: expr,
        start: String(start),
        end: String(end),
        step: String(step),
      }),
    async stop() {
      await server.stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
