/**
 * SVG bar charts of a results file, with no dependency: the SVG is written by
 * hand as a string. Three charts are drawn from `bench/results/<date>.json`
 * (see {@link CHARTS}) into `bench/results/charts/`, and the README results
 * block is rewritten around them (see {@link publishResults}).
 *
 * The data a chart shows is chosen by an explicit mapping (group, comparison
 * id or title, contender name prefix, short label), so that renaming a
 * contender in a group only drops that one bar instead of breaking the run:
 * every lookup that finds nothing is skipped, never thrown.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { basename, dirname } from 'node:path'
import type { Comparison, ContenderResult, Role, Unit } from './measure.js'
import {
  formatValue,
  type GroupResult,
  RESULTS_DIR,
  type ResultsFile,
  updateReadmeResults,
} from './report.js'

// ---- the renderer ---------------------------------------------------------------

export interface Bar {
  readonly label: string
  readonly value: number
  readonly role: Role
  /** Shown instead of the formatted value at the bar end. */
  readonly valueLabel?: string
  /** Full name for the hover tooltip (defaults to the label). */
  readonly tooltip?: string
  /** Bars with the same section are drawn under one small heading, in order. */
  readonly section?: string
}

export interface BarChart {
  readonly title: string
  /** One line under the title: unit, direction, scale. */
  readonly subtitle: string
  /** How bar-end values are formatted (`formatValue` in report.ts). */
  readonly unit: Unit
  readonly bars: readonly Bar[]
  /** Logarithmic x axis, for data spanning orders of magnitude. */
  readonly log?: boolean
  /** Small grey lines under the axis (source, caveats). */
  readonly footnotes?: readonly string[]
}

/** Role colours, chosen to stay distinct for the common colour-vision deficiencies. */
const ROLE_COLOURS: Readonly<Record<Role, string>> = {
  subject: '#2563eb', // cachette: strong blue
  limit: '#9ca3af', // the no-feature baseline: neutral grey
  peer: '#f59e0b', // rival libraries: amber
  reference: '#8b5cf6', // other points of comparison: violet
}
const ROLE_LABELS: Readonly<Record<Role, string>> = {
  subject: 'cachette (subject)',
  limit: 'limit (no-feature baseline)',
  peer: 'peer library',
  reference: 'reference',
}
const ROLE_ORDER: readonly Role[] = ['subject', 'limit', 'peer', 'reference']

const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
const WIDTH = 720
const PAD = 16
const ROW = 22 // one bar row
const BAR = 14 // bar thickness within the row
const SECTION = 22 // a section heading row
const VALUE_ROOM = 64 // right of the plot, for the value label of the longest bar

function esc(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
}

/** Rough text width in px of the system sans-serif at `size` px (no font metrics here). */
function textWidth(s: string, size: number): number {
  return [...s].length * size * 0.54
}

function truncate(s: string, maxPx: number, size: number): string {
  if (textWidth(s, size) <= maxPx) return s
  const chars = [...s]
  const keep = Math.max(1, Math.floor(maxPx / (size * 0.54)) - 1)
  return `${chars.slice(0, keep).join('').trimEnd()}…`
}

/** Axis tick labels: 0.1, 1, 10, 1k, 25k, 1M … */
function compact(v: number): string {
  const a = Math.abs(v)
  const trim = (x: number): string => String(Number(x.toPrecision(3)))
  if (a >= 1e6) return `${trim(v / 1e6)}M`
  if (a >= 1e3) return `${trim(v / 1e3)}k`
  return trim(v)
}

interface Scale {
  readonly x: (v: number) => number // 0..1 along the plot
  readonly ticks: readonly number[]
}

function linearScale(max: number): Scale {
  // A "nice" step (1, 2 or 5 × 10^k) giving about five intervals; the axis starts at 0.
  const raw = max > 0 ? max / 5 : 1
  const pow = 10 ** Math.floor(Math.log10(raw))
  const step = ([1, 2, 5, 10].find((m) => m * pow >= raw) ?? 10) * pow
  const top = Math.max(step, Math.ceil(max / step) * step)
  const ticks: number[] = []
  for (let t = 0; t <= top + step / 2; t += step) ticks.push(t)
  return { x: (v) => Math.max(0, v) / top, ticks }
}

function logScale(min: number, max: number): Scale {
  // Decades from the power of ten strictly below the smallest value (so that a
  // value of exactly 1 still gets a visible bar) to the one at or above the largest.
  const lo = Math.ceil(Math.log10(min)) - 1
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(max)))
  const ticks: number[] = []
  for (let e = lo; e <= hi; e++) ticks.push(10 ** e)
  return {
    x: (v) => (v > 0 ? Math.min(1, Math.max(0, (Math.log10(v) - lo) / (hi - lo))) : 0),
    ticks,
  }
}

/** Renders one horizontal bar chart as a standalone SVG document. */
export function barChartSvg(chart: BarChart): string {
  const bars = chart.bars.filter((b) => Number.isFinite(b.value))
  const positive = bars.map((b) => b.value).filter((v) => v > 0)
  const max = Math.max(1, ...positive)
  const scale =
    chart.log && positive.length > 0 ? logScale(Math.min(...positive), max) : linearScale(max)

  const labelSize = 12
  const longest = Math.max(0, ...bars.map((b) => textWidth(b.label, labelSize)))
  const labelW = Math.min(300, Math.max(120, longest + 12))
  const x0 = PAD + labelW
  const plotW = WIDTH - x0 - PAD - VALUE_ROOM

  const roles = ROLE_ORDER.filter((r) => bars.some((b) => b.role === r))
  const out: string[] = []
  const top = 84 // below title, subtitle and legend
  let y = top

  // Rows: a section heading whenever the section changes, then the bar.
  const rows: string[] = []
  let section: string | undefined
  for (const b of bars) {
    if (b.section !== undefined && b.section !== section) {
      section = b.section
      // The background strip interrupts the grid lines, so the heading stays legible
      // even where it runs past the label column into the plot.
      rows.push(
        `<rect x="0" y="${y}" width="${WIDTH}" height="${SECTION}" fill="#fcfcfd"/>`,
        `<text x="${PAD}" y="${y + 15}" font-size="12" font-weight="600" fill="#111827">${esc(section)}</text>`,
      )
      y += SECTION
    }
    const w = Math.max(0, scale.x(b.value) * plotW)
    const cy = y + ROW / 2
    const label = truncate(b.label, labelW - 12, labelSize)
    const value = b.valueLabel ?? formatValue(b.value, chart.unit)
    rows.push(
      `<g><title>${esc(`${b.tooltip ?? b.label}: ${value} ${chart.unit.name} (${b.role})`)}</title>` +
        `<text x="${x0 - 8}" y="${cy + 4}" font-size="${labelSize}" text-anchor="end" fill="#374151">${esc(label)}</text>` +
        `<rect x="${x0}" y="${cy - BAR / 2}" width="${w.toFixed(1)}" height="${BAR}" rx="2" fill="${ROLE_COLOURS[b.role]}"/>` +
        `<text x="${(x0 + w + 5).toFixed(1)}" y="${cy + 4}" font-size="11" fill="#111827">${esc(value)}</text></g>`,
    )
    y += ROW
  }
  const plotBottom = y + 4

  // Grid and axis labels, drawn first so the bars sit on top.
  const grid: string[] = []
  for (const t of scale.ticks) {
    const gx = (x0 + scale.x(t) * plotW).toFixed(1)
    grid.push(
      `<line x1="${gx}" y1="${top}" x2="${gx}" y2="${plotBottom}" stroke="#e5e7eb" stroke-width="1"/>`,
      `<text x="${gx}" y="${plotBottom + 14}" font-size="10" text-anchor="middle" fill="#6b7280">${esc(compact(t))}</text>`,
    )
  }
  grid.push(
    `<line x1="${x0}" y1="${top}" x2="${x0}" y2="${plotBottom}" stroke="#9ca3af" stroke-width="1"/>`,
  )

  let fy = plotBottom + 34
  const notes = (chart.footnotes ?? []).map((n) => {
    const line = `<text x="${PAD}" y="${fy}" font-size="10" fill="#6b7280">${esc(n)}</text>`
    fy += 14
    return line
  })
  const height = Math.ceil(fy + 2)

  // Legend: one swatch per role present, left to right.
  let lx = PAD
  const legend = roles.map((r) => {
    const item =
      `<rect x="${lx}" y="58" width="10" height="10" rx="2" fill="${ROLE_COLOURS[r]}"/>` +
      `<text x="${lx + 14}" y="67" font-size="11" fill="#374151">${esc(ROLE_LABELS[r])}</text>`
    lx += 14 + textWidth(ROLE_LABELS[r], 11) + 18
    return item
  })

  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="${esc(chart.title)}" font-family="${esc(FONT)}">`,
    `<title>${esc(chart.title)}</title>`,
    `<rect width="${WIDTH}" height="${height}" fill="#fcfcfd"/>`,
    `<text x="${PAD}" y="28" font-size="15" font-weight="600" fill="#111827">${esc(chart.title)}</text>`,
    `<text x="${PAD}" y="46" font-size="12" fill="#4b5563">${esc(chart.subtitle)}</text>`,
    ...legend,
    ...grid,
    ...rows,
    ...notes,
    '</svg>',
  )
  return `${out.join('\n')}\n`
}

// ---- picking data out of a results file ---------------------------------------------

/** Which comparison: by id first (stable), else by a pattern on its title. */
interface ComparisonRef {
  readonly group: string
  readonly id: string
  readonly title?: RegExp
}

/** One bar: the first contender whose name starts with `name`, drawn as `label`. */
interface Pick {
  readonly name: string
  readonly label: string
}

function findComparison(results: ResultsFile, ref: ComparisonRef): Comparison | undefined {
  const g: GroupResult | undefined = results.groups[ref.group]
  if (!g || g.skipped) return undefined
  const cs = g.comparisons ?? []
  return (
    cs.find((c) => c.id === ref.id) ??
    (ref.title ? cs.find((c) => ref.title?.test(c.title)) : undefined)
  )
}

function findContender(c: Comparison, name: string): ContenderResult | undefined {
  return c.contenders.find((x) => x.name.startsWith(name))
}

/** Throughput in ops/s from a time per op (µs/op, ns/op) or as it is. */
function opsPerSec(v: number, unit: Unit): number {
  if (unit.name === 'µs/op') return 1e6 / v
  if (unit.name === 'ns/op') return 1e9 / v
  return v
}

function pickBars(
  results: ResultsFile,
  section: string,
  ref: ComparisonRef,
  picks: readonly Pick[],
  convert?: (v: number, unit: Unit) => number,
): Bar[] {
  const c = findComparison(results, ref)
  if (!c) return []
  const bars: Bar[] = []
  for (const p of picks) {
    const x = findContender(c, p.name)
    if (!x || !Number.isFinite(x.median)) continue
    const value = convert ? convert(x.median, c.unit) : x.median
    bars.push({ label: p.label, value, role: x.role, tooltip: x.name, section })
  }
  return bars
}

const OPS: Unit = { name: 'ops/s', higherIsBetter: true }
const REQS: Unit = { name: 'req/s', higherIsBetter: true }
const COUNT: Unit = { name: 'count', higherIsBetter: false }

/**
 * `get` hit throughput per backend. Each section is one group's get/hit
 * comparison; the picks name the contenders worth a bar (the limit, cachette's
 * facade and backend, the main peers), in the order drawn.
 */
function throughputByBackend(results: ResultsFile): BarChart {
  const bars: Bar[] = [
    ...pickBars(
      results,
      'In memory (memory group, string value)',
      { group: 'memory', id: 'memory.get.string', title: /^memory: get \(hit\), small string/ },
      [
        { name: 'Map (async wrapper)', label: 'Map, async wrapper' },
        { name: 'lru-cache', label: 'lru-cache, async wrapper' },
        { name: 'cachette Cache facade (SimpleCache)', label: 'Cache facade (SimpleCache)' },
        { name: 'cachette SimpleCache backend', label: 'SimpleCache backend' },
        { name: 'cache-manager', label: 'cache-manager v7' },
        { name: 'keyv', label: 'keyv v5' },
      ],
    ),
    ...pickBars(
      results,
      'Two tiers, first-tier hit (tiered group)',
      { group: 'tiered', id: 'tiered.get', title: /^tiered: get \(hit\)/ },
      [
        { name: 'cachette Cache facade (TieredCache', label: 'TieredCache over Redis' },
        { name: 'bentocache get, memory L1 + redis L2', label: 'bentocache L1 + Redis L2' },
      ],
    ),
    ...pickBars(
      results,
      'Redis (local server, one get at a time)',
      { group: 'redis', id: 'redis.get', title: /^redis: get \(hit\)/ },
      [
        { name: 'raw ioredis', label: 'raw ioredis' },
        { name: 'cachette Cache facade (RedisCache)', label: 'Cache facade (RedisCache)' },
        { name: 'cachette RedisCache backend', label: 'RedisCache backend' },
        { name: 'keyv', label: 'keyv + @keyv/redis' },
        { name: 'cache-manager', label: 'cache-manager + @keyv/redis' },
      ],
    ),
    ...pickBars(
      results,
      'ClusterCache (from a node:cluster worker, one get at a time)',
      { group: 'cluster', id: 'cluster.get', title: /^cluster: get \(hit\)/ },
      [
        {
          name: 'cachette Cache facade (ClusterCache',
          label: 'Cache facade (ClusterCache)',
        },
      ],
    ),
    ...pickBars(
      results,
      'Memcached (local server, one get at a time)',
      { group: 'memcached', id: 'memcached.get', title: /^memcached: get \(hit\)/ },
      [
        { name: 'raw client', label: 'raw connection' },
        {
          name: 'cachette Cache facade (MemcachedCache, no prefix)',
          label: 'Cache facade (MemcachedCache)',
        },
        { name: 'cachette MemcachedCache backend', label: 'MemcachedCache backend' },
        { name: 'memjs', label: 'memjs' },
        { name: 'keyv', label: 'keyv + @keyv/memcache' },
      ],
    ),
    // filesystem measures time per op (µs/op); drawn as 1e6 ÷ median µs/op.
    ...pickBars(
      results,
      'File system (one get at a time)',
      { group: 'filesystem', id: 'filesystem.get', title: /^filesystem: FileSystemCache get/ },
      [
        { name: '1,000 entries', label: 'FileSystemCache, 1,000 entries' },
        { name: '100,000 entries', label: 'FileSystemCache, 100,000 entries' },
      ],
      opsPerSec,
    ),
    ...pickBars(
      results,
      'S3 (local s3rver, one get at a time)',
      { group: 's3', id: 's3.get', title: /^s3: get \(hit\)/ },
      [
        { name: 'raw @aws-sdk/client-s3', label: 'raw AWS SDK S3Client' },
        { name: 'cachette Cache facade (S3Cache', label: 'Cache facade (S3Cache)' },
        { name: 'cachette S3Cache backend', label: 'S3Cache backend' },
      ],
    ),
  ]
  return {
    title: 'get (hit) throughput by backend',
    subtitle: 'ops/s, median of interleaved rounds, log scale; higher is better',
    unit: OPS,
    bars,
    log: true,
    footnotes: [
      'In-memory rows are in-process calls; the network and disk rows await each get before the next.',
      'FileSystemCache is measured in µs/op and drawn as 1,000,000 ÷ that median.',
    ],
  }
}

/** The four framework groups share one layout: the uncached route (limit) vs the cachette hit. */
const FRAMEWORKS: readonly { group: string; label: string }[] = [
  { group: 'express', label: 'Express' },
  { group: 'fastify', label: 'Fastify' },
  { group: 'koa', label: 'Koa' },
  { group: 'hono', label: 'Hono' },
]

function viewHitByFramework(results: ResultsFile): BarChart {
  const bars: Bar[] = []
  for (const f of FRAMEWORKS) {
    const c = findComparison(results, { group: f.group, id: `${f.group}.hit` })
    if (!c) continue
    // Chosen by role, since each framework names its routes differently:
    // the limit is the uncached route, the subjects are cachette, peers (apicache) too.
    for (const x of c.contenders) {
      if (!Number.isFinite(x.median)) continue
      const label =
        x.role === 'limit'
          ? 'uncached route'
          : x.role === 'subject'
            ? 'cachette cached-view hit'
            : x.name
      bars.push({ label, value: x.median, role: x.role, tooltip: x.name, section: f.label })
    }
  }
  const page = findComparison(results, { group: 'express', id: 'express.hit' })
  const setup = page?.title.replace(/^express: /, '') ?? '~2 KB HTML route, autocannon'
  return {
    title: 'Cached view hit vs the uncached route, per framework',
    subtitle: 'req/s, median of interleaved rounds, linear scale from 0; higher is better',
    unit: REQS,
    bars,
    footnotes: [
      `Each framework: ${setup}.`,
      'The uncached route sends the same bytes with no cache: the most a cache hit can reach.',
    ],
  }
}

/** Short labels for the stampede contenders; a contender not listed keeps its own name. */
const STAMPEDE_LABELS: Readonly<Record<string, string>> = {
  'one factory call shared by all callers (no cache)': 'one shared factory call (no cache)',
  'no protection (get, factory, set), SimpleCache': 'no protection, SimpleCache',
  'no protection (get, factory, set), RedisCache': 'no protection, RedisCache',
}

function stampedeFactoryRuns(results: ResultsFile): BarChart {
  const c = findComparison(results, {
    group: 'stampede',
    id: 'stampede.runs',
    title: /factory runs per round/,
  })
  const bars: Bar[] = (c?.contenders ?? [])
    .filter((x) => Number.isFinite(x.median))
    .map((x) => ({
      label: STAMPEDE_LABELS[x.name] ?? x.name,
      value: x.median,
      role: x.role,
      tooltip: x.name,
    }))
  const setup = c?.title.match(/\(([^)]*)\)\s*$/)?.[1]
  return {
    title: 'Stampede: factory runs per round',
    subtitle: 'factory runs, median of rounds, log scale; lower is better (1 is the minimum)',
    unit: COUNT,
    bars,
    log: true,
    footnotes: setup ? [`Each round: ${setup}.`] : [],
  }
}

export interface ChartSpec {
  /** File name under bench/results/charts/. */
  readonly file: string
  /** Alt text of the Markdown image. */
  readonly alt: string
  readonly build: (results: ResultsFile) => BarChart
}

/** The charts drawn for the README, in the order they are shown. */
export const CHARTS: readonly ChartSpec[] = [
  {
    file: 'throughput-by-backend.svg',
    alt: 'get (hit) throughput by backend, ops/s, log scale',
    build: throughputByBackend,
  },
  {
    file: 'view-hit-by-framework.svg',
    alt: 'cached-view hit vs the uncached route per framework, req/s',
    build: viewHitByFramework,
  },
  {
    file: 'stampede-factory-runs.svg',
    alt: 'factory runs per round under a 1,000-call stampede, log scale',
    build: stampedeFactoryRuns,
  },
]

export const CHARTS_DIR = `${RESULTS_DIR}charts/`

/**
 * Writes every chart that has at least one bar into `dir` and returns the
 * files written (a chart with no data at all is left out, not drawn empty).
 */
export function writeCharts(
  results: ResultsFile,
  source: string,
  dir: string = CHARTS_DIR,
): ChartSpec[] {
  mkdirSync(dir, { recursive: true })
  const written: ChartSpec[] = []
  for (const spec of CHARTS) {
    const chart = spec.build(results)
    if (chart.bars.length === 0) continue
    const footnotes = [
      ...(chart.footnotes ?? []),
      `Source: ${source}, ${results.environment.date}.`,
    ]
    writeFileSync(`${dir}${spec.file}`, barChartSvg({ ...chart, footnotes }))
    written.push(spec)
  }
  return written
}

/**
 * Renders the charts of one results JSON and rewrites the bench/README.md
 * results block from the Markdown beside it (`<date>.md`). Used after a run
 * (bench/run.ts) and by `npm run bench:charts` (bench/charts.ts).
 */
export function publishResults(jsonPath: string): { charts: string[]; readme: boolean } {
  const results = JSON.parse(readFileSync(jsonPath, 'utf8')) as ResultsFile
  const source = `bench/results/${basename(jsonPath)}`
  const written = writeCharts(results, source)
  const mdPath = `${dirname(jsonPath)}/${basename(jsonPath, '.json')}.md`
  let md: string
  try {
    md = readFileSync(mdPath, 'utf8')
  } catch {
    return { charts: written.map((c) => c.file), readme: false }
  }
  const readme = updateReadmeResults(
    md,
    written.map((c) => ({ alt: c.alt, path: `results/charts/${c.file}` })),
  )
  return { charts: written.map((c) => c.file), readme }
}
