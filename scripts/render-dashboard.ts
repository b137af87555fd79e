/**
 * Renders docs/images/grafana-dashboard.png: the panels of
 * dashboards/grafana/cachette.json, with data from a real Prometheus
 * scraping real caches under load (the workload of test/grafana-harness.ts),
 * drawn as SVG in a Grafana-like dark page and screenshot with headless
 * Chromium. Grafana itself does not draw it: the layout (gridPos), titles,
 * units, legends and queries are the dashboard's, the drawing is this
 * script's.
 *
 *   node --import tsx scripts/render-dashboard.ts [seconds of load, default 120]
 *
 * Needs the Debian packages prometheus and chromium. Not part of the tests.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  loadDashboard,
  type Panel,
  type PromAnswer,
  startPrometheus,
  startWorkload,
  substitute,
} from '../test/grafana-harness.js'

const seconds = Number(process.argv[2] ?? 120)
const OUT = fileURLToPath(new URL('../docs/images/grafana-dashboard.png', import.meta.url))
const WIDTH = 1600
const ROW_PX = 30
const GAP = 8
const STEP = 2
const PALETTE = [
  '#73BF69',
  '#F2CC0C',
  '#8AB8FF',
  '#FF780A',
  '#F2495C',
  '#5794F2',
  '#B877D9',
  '#FADE2A',
  '#37872D',
  '#C4162A',
  '#1F60C4',
  '#8F3BB8',
  '#FA6400',
  '#96D98D',
  '#FFEE52',
  '#CA95E5',
]

interface Series {
  name: string
  points: [number, number][]
}

const esc = (s: string): string =>
  s.replace(
    /[&<>"]/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string,
  )

function format(v: number, unit: string | undefined): string {
  if (!Number.isFinite(v)) return 'n/a'
  if (unit === 'percentunit') return `${(v * 100).toFixed(v >= 0.995 || v === 0 ? 0 : 1)}%`
  if (unit === 's') {
    if (v === 0) return '0 s'
    if (v < 0.001) return `${(v * 1e6).toPrecision(3)} µs`
    if (v < 1) return `${(v * 1000).toPrecision(3)} ms`
    return `${v.toPrecision(3)} s`
  }
  const n = Math.abs(v) >= 1000 ? `${(v / 1000).toPrecision(3)}K` : `${+v.toPrecision(3)}`
  return unit === 'ops' ? `${n} ops/s` : n
}

function legend(format: string | undefined, labels: Record<string, string>): string {
  if (!format) return JSON.stringify(labels)
  return format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_w, k: string) => labels[k] ?? '')
}

function seriesOf(answer: PromAnswer, legendFormat: string | undefined): Series[] {
  if (answer.status !== 'success') throw new Error(`${answer.errorType}: ${answer.error}`)
  return (answer.data?.result ?? []).map((r) => ({
    name: legend(legendFormat, r.metric),
    points: (r.values ?? [])
      .map(([t, v]) => [t, Number(v)] as [number, number])
      .filter(([, v]) => Number.isFinite(v)),
  }))
}

function niceMax(max: number): number {
  if (max <= 0) return 1
  const p = 10 ** Math.floor(Math.log10(max))
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= max) return m * p
  return 10 * p
}

const clock = (t: number): string => new Date(t * 1000).toISOString().slice(11, 19)

function lineChart(
  series: Series[],
  w: number,
  h: number,
  opts: {
    unit?: string
    min?: number
    max?: number
    stack: boolean
    start: number
    end: number
    /** No axes: a stat panel's sparkline. */
    bare?: boolean
    color?: string
  },
): string {
  const left = opts.bare ? 0 : 64
  const right = opts.bare ? 0 : 12
  const top = opts.bare ? 2 : 6
  const bottom = opts.bare ? 0 : 20
  const pw = w - left - right
  const ph = h - top - bottom
  let drawn = series
  if (opts.stack) {
    const acc = new Map<number, number>()
    drawn = series.map((s) => ({
      name: s.name,
      points: s.points.map(([t, v]) => {
        const sum = (acc.get(t) ?? 0) + v
        acc.set(t, sum)
        return [t, sum] as [number, number]
      }),
    }))
  }
  const all = drawn.flatMap((s) => s.points.map(([, v]) => v))
  const max = opts.max ?? niceMax(Math.max(0, ...all) * 1.05)
  const min = opts.min ?? 0
  const x = (t: number): number => left + ((t - opts.start) / (opts.end - opts.start)) * pw
  const y = (v: number): number => top + ph - ((v - min) / (max - min || 1)) * ph
  const parts: string[] = []
  for (let i = 0; i <= 4 && !opts.bare; i++) {
    const v = min + ((max - min) * i) / 4
    const yy = y(v)
    parts.push(`<line x1="${left}" x2="${left + pw}" y1="${yy}" y2="${yy}" class="grid"/>`)
    parts.push(
      `<text x="${left - 6}" y="${yy + 4}" class="tick" text-anchor="end">${esc(format(v, opts.unit))}</text>`,
    )
  }
  for (let i = 0; i <= 5 && !opts.bare; i++) {
    const t = opts.start + ((opts.end - opts.start) * i) / 5
    const xx = x(t)
    parts.push(`<line x1="${xx}" x2="${xx}" y1="${top}" y2="${top + ph}" class="grid"/>`)
    const anchor = i === 0 ? 'start' : i === 5 ? 'end' : 'middle'
    parts.push(
      `<text x="${xx}" y="${h - 4}" class="tick" text-anchor="${anchor}">${clock(t)}</text>`,
    )
  }
  drawn.forEach((s, i) => {
    const color = opts.color ?? PALETTE[i % PALETTE.length]
    // Gaps in the data (no sample at a step) break the line, as in Grafana.
    const segments: string[][] = []
    let current: string[] = []
    let last = Number.NaN
    for (const [t, v] of s.points) {
      if (t - last > STEP * 1.5 && current.length > 0) {
        segments.push(current)
        current = []
      }
      current.push(`${x(t).toFixed(1)},${y(Math.min(Math.max(v, min), max)).toFixed(1)}`)
      last = t
    }
    if (current.length > 0) segments.push(current)
    for (const seg of segments) {
      if (opts.stack || drawn.length <= 3) {
        const base = y(min).toFixed(1)
        const first = seg[0]?.split(',')[0]
        const lastX = seg[seg.length - 1]?.split(',')[0]
        parts.push(
          `<polygon points="${first},${base} ${seg.join(' ')} ${lastX},${base}" fill="${color}" fill-opacity="${opts.stack ? 0.25 : 0.1}"/>`,
        )
      }
      parts.push(
        `<polyline points="${seg.join(' ')}" fill="none" stroke="${color}" stroke-width="1.5"/>`,
      )
    }
  })
  return `<svg width="${w}" height="${h}">${parts.join('')}</svg>`
}

function legendTable(series: Series[], unit: string | undefined, more: number): string {
  const rows = series.map((s, i) => {
    const vals = s.points.map(([, v]) => v)
    const mean = vals.reduce((a, b) => a + b, 0) / (vals.length || 1)
    const last = vals[vals.length - 1] ?? Number.NaN
    return `<tr><td><span class="swatch" style="background:${PALETTE[i % PALETTE.length]}"></span>${esc(s.name)}</td><td>${esc(format(mean, unit))}</td><td>${esc(format(last, unit))}</td></tr>`
  })
  if (more > 0) rows.push(`<tr><td class="more">+ ${more} more series</td><td></td><td></td></tr>`)
  return `<table class="legend"><tr><th></th><th>Mean</th><th>Last *</th></tr>${rows.join('')}</table>`
}

function heatmap(series: Series[], w: number, h: number, start: number, end: number): string {
  // Cumulative buckets (le) to per-bucket counts at each step.
  const buckets = series
    .map((s) => ({ le: s.name === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.name), s }))
    .sort((a, b) => a.le - b.le)
  const times = [...new Set(series.flatMap((s) => s.points.map(([t]) => t)))].sort((a, b) => a - b)
  const value = (i: number, t: number): number =>
    buckets[i]?.s.points.find(([tt]) => tt === t)?.[1] ?? 0
  const cells: number[][] = buckets.map((_b, i) =>
    times.map((t) => Math.max(0, value(i, t) - (i > 0 ? value(i - 1, t) : 0))),
  )
  // Only the rows that ever hold something, as Grafana hides empty buckets below the data.
  const used = cells.map((row) => row.some((v) => v > 0))
  const firstUsed = used.indexOf(true)
  const lastUsed = used.lastIndexOf(true)
  const rows = buckets.slice(firstUsed, lastUsed + 1)
  const max = Math.max(1, ...cells.flat())
  const left = 64
  const bottom = 20
  const pw = w - left - 12
  const ph = h - 6 - bottom
  const cw = (pw * STEP) / Math.max(STEP, end - start)
  const cx = (t: number): number => left + ((t - STEP / 2 - start) / (end - start)) * pw
  const rh = ph / Math.max(1, rows.length)
  const parts: string[] = []
  rows.forEach((b, r) => {
    const i = firstUsed + r
    const yy = 6 + ph - (r + 1) * rh
    parts.push(
      `<text x="${left - 6}" y="${yy + rh / 2 + 4}" class="tick" text-anchor="end">${esc(Number.isFinite(b.le) ? format(b.le, 's') : '+Inf')}</text>`,
    )
    times.forEach((t, c) => {
      const v = cells[i]?.[c] ?? 0
      if (v <= 0) return
      const a = Math.sqrt(v / max)
      const red = Math.round(80 + 175 * a)
      const green = Math.round(40 + 120 * a)
      parts.push(
        `<rect x="${Math.max(left, cx(t)).toFixed(1)}" y="${yy.toFixed(1)}" width="${(cw - 1).toFixed(1)}" height="${(rh - 1).toFixed(1)}" fill="rgb(${red},${green},20)"/>`,
      )
    })
  })
  for (let i = 0; i <= 5; i++) {
    const t = start + ((end - start) * i) / 5
    const anchor = i === 0 ? 'start' : i === 5 ? 'end' : 'middle'
    parts.push(
      `<text x="${left + (pw * i) / 5}" y="${h - 4}" class="tick" text-anchor="${anchor}">${clock(t)}</text>`,
    )
  }
  return `<svg width="${w}" height="${h}">${parts.join('')}</svg>`
}

interface Rendered {
  panel: Panel
  series: Series[][]
}

function thresholdColor(panel: Panel & { fieldConfig?: unknown }, v: number): string {
  const steps =
    (
      panel.fieldConfig as {
        defaults?: { thresholds?: { steps?: { color: string; value: number | null }[] } }
      }
    )?.defaults?.thresholds?.steps ?? []
  let color = 'green'
  for (const s of steps) if (s.value === null || v >= s.value) color = s.color
  return { green: '#73BF69', orange: '#FF9830', red: '#F2495C' }[color] ?? color
}

function page(
  rendered: Rendered[],
  start: number,
  end: number,
  title: string,
): { html: string; height: number } {
  const colW = (WIDTH - GAP) / 24
  let height = 0
  const boxes = rendered.map(({ panel, series }) => {
    const g = panel.gridPos ?? { h: 1, w: 24, x: 0, y: 0 }
    const left = GAP + g.x * colW
    const top = 56 + g.y * (ROW_PX + GAP)
    const w = g.w * colW - GAP
    const h = g.h * (ROW_PX + GAP) - GAP
    height = Math.max(height, top + h + GAP)
    const style = `left:${left}px;top:${top}px;width:${w}px;height:${h}px`
    if (panel.type === 'row') {
      return `<div class="row" style="${style}">⌄ ${esc(panel.title ?? '')}</div>`
    }
    const unit = panel.fieldConfig?.defaults?.unit
    const flat = series.flat()
    let body = ''
    if (panel.type === 'stat') {
      const s = flat[0]
      const v = s?.points[s.points.length - 1]?.[1] ?? Number.NaN
      const color = thresholdColor(panel, v)
      const spark = s
        ? lineChart([s], w - 16, h - 80, {
            unit,
            stack: true,
            start,
            end,
            min: 0,
            bare: true,
            color,
          })
        : ''
      body = `<div class="stat" style="color:${color}">${esc(format(v, unit))}</div><div class="spark">${spark}</div>`
    } else if (panel.type === 'heatmap') {
      body = heatmap(flat, w - 16, h - 40, start, end)
    } else {
      const legendRows = Math.min(flat.length, flat.length > 8 ? 7 : 8)
      const more = flat.length - legendRows
      const chartH = h - 36 - (legendRows + 1 + (more > 0 ? 1 : 0)) * 17 - 6
      const stack = JSON.stringify(panel).includes('"mode":"normal"')
      body =
        lineChart(flat, w - 16, chartH, {
          unit,
          min: panel.fieldConfig?.defaults?.min,
          max: panel.fieldConfig?.defaults?.max,
          stack,
          start,
          end,
        }) + legendTable(flat.slice(0, legendRows), unit, more)
    }
    return `<div class="panel" style="${style}"><div class="title">${esc(panel.title ?? '')}</div><div class="body">${body}</div></div>`
  })
  const html = `<!doctype html><html><head><meta charset="utf-8"><style>
body{margin:0;background:#111217;color:#ccccdc;font:12px Inter,"Helvetica Neue",Arial,sans-serif;width:${WIDTH}px;position:relative}
.top{height:48px;display:flex;align-items:center;gap:18px;padding:0 16px;border-bottom:1px solid #22252b;font-size:14px}
.top b{font-size:16px;color:#fff}.var{background:#181b1f;border:1px solid #2d3036;border-radius:2px;padding:4px 8px;color:#ccccdc}
.var i{color:#8e8e8e;font-style:normal;margin-right:6px}
.panel{position:absolute;background:#181b1f;border:1px solid #22252b;border-radius:2px;box-sizing:border-box;overflow:hidden}
.title{height:28px;line-height:28px;padding:0 8px;font-weight:500;font-size:13px;color:#ccccdc}
.body{padding:0 8px}.row{position:absolute;font-size:15px;font-weight:500;color:#fff;line-height:30px}
.tick{fill:#8e8e8e;font-size:10px}.grid{stroke:#2b2e33;stroke-width:1}.nogrid{stroke:none}
.stat{font-size:34px;font-weight:500;text-align:center;line-height:44px}.spark{opacity:.8}
table.legend{border-collapse:collapse;width:100%;font-size:11px;margin-top:2px}
table.legend th{color:#6e9fff;font-weight:500;text-align:right;padding:0 6px}
table.legend td{padding:0 6px;text-align:right;white-space:nowrap;height:17px}
table.legend td:first-child{text-align:left;max-width:420px;overflow:hidden;text-overflow:ellipsis}
.more{color:#8e8e8e;font-style:italic}.swatch{display:inline-block;width:14px;height:4px;border-radius:2px;margin-right:6px;vertical-align:middle}
</style></head><body>
<div class="top"><b>${esc(title)}</b><span class="var"><i>Data source</i>Prometheus</span><span class="var"><i>Job</i>cachette</span><span class="var"><i>Instance</i>All</span><span style="margin-left:auto;color:#8e8e8e">${clock(start)} to ${clock(end)} UTC · rendered by scripts/render-dashboard.ts</span></div>
${boxes.join('\n')}
</body></html>`
  return { html, height }
}

async function main(): Promise<void> {
  const dashboard = loadDashboard()
  console.log(`starting the workload and Prometheus; ${seconds} s of load`)
  const workload = await startWorkload()
  const prometheus = await startPrometheus(workload.port)
  const tmp = mkdtempSync(join(tmpdir(), 'cachette-render-'))
  try {
    const start = Date.now() / 1000
    // Halfway, the SimpleCache and the FileSystemCache are cleared (as by a deploy): hit ratios dip.
    await new Promise((resolve) => setTimeout(resolve, (seconds * 1000) / 2))
    await Promise.all(workload.caches.slice(0, 2).map((c) => c.clear()))
    await new Promise((resolve) => setTimeout(resolve, (seconds * 1000) / 2))
    const end = Date.now() / 1000
    const rendered: Rendered[] = []
    for (const panel of dashboard.panels ?? []) {
      const series: Series[][] = []
      for (const target of panel.targets ?? []) {
        const answer = await prometheus.queryRange(substitute(target.expr ?? ''), start, end, STEP)
        series.push(seriesOf(answer, target.legendFormat))
      }
      rendered.push({ panel, series })
    }
    console.log(`${workload.rounds()} load rounds; rendering ${rendered.length} panels`)
    const { html, height } = page(rendered, start, end, dashboard.title ?? 'cachette')
    const file = join(tmp, 'dashboard.html')
    writeFileSync(file, html)
    mkdirSync(fileURLToPath(new URL('../docs/images/', import.meta.url)), { recursive: true })
    execFileSync(
      'chromium',
      [
        '--headless',
        '--disable-gpu',
        '--no-sandbox',
        '--hide-scrollbars',
        `--user-data-dir=${join(tmp, 'profile')}`,
        `--screenshot=${OUT}`,
        `--window-size=${WIDTH},${Math.ceil(height)}`,
        `file://${file}`,
      ],
      { stdio: 'inherit' },
    )
    console.log(`wrote ${OUT}`)
  } finally {
    await prometheus.stop()
    await workload.stop()
    rmSync(tmp, { recursive: true, force: true })
  }
}

await main()
