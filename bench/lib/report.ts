/** Environment capture, Markdown tables and the dated JSON results file. */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import type { Comparison, Spread, Unit } from './measure.js'

export interface Target {
  /** `>=` for "at least", `<=` for "at most". */
  readonly op: '>=' | '<='
  readonly value: number
  readonly met: boolean
}

/** One ratio worth a line in the summary, optionally with its target. */
export interface Headline {
  readonly label: string
  readonly ratio: Spread
  readonly target?: Target
}

export interface GroupResult {
  readonly group: string
  readonly description: string
  readonly measuredAt: string
  readonly mode: 'full' | 'quick'
  readonly settings: Readonly<Record<string, unknown>>
  readonly comparisons: Comparison[]
  readonly headlines: Headline[]
  readonly notes: string[]
  /** Set when the group did not run, with the reason. */
  readonly skipped?: string
}

export interface Environment {
  readonly date: string
  readonly node: string
  readonly v8: string
  readonly platform: string
  readonly cpu: string
  readonly cores: number
  readonly memoryGB: number
  readonly packages: Readonly<Record<string, string>>
}

export interface ResultsFile {
  readonly environment: Environment
  readonly groups: Record<string, GroupResult>
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

function versionOf(pkg: string): string {
  const path =
    pkg === 'cachette' ? `${ROOT}package.json` : `${ROOT}node_modules/${pkg}/package.json`
  try {
    return (JSON.parse(readFileSync(path, 'utf8')) as { version?: string }).version ?? '?'
  } catch {
    return 'not installed'
  }
}

export function target(op: '>=' | '<=', value: number, ratio: Spread): Target {
  return { op, value, met: op === '>=' ? ratio.median >= value : ratio.median <= value }
}

export function environment(): Environment {
  const cpus = os.cpus()
  return {
    date: new Date().toISOString().slice(0, 10),
    node: process.version,
    v8: process.versions.v8,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGB: Math.round(os.totalmem() / 2 ** 30),
    packages: Object.fromEntries(
      [
        'cachette',
        'cache-manager',
        'keyv',
        'lru-cache',
        'apicache',
        'bentocache',
        'express',
        'autocannon',
        'nunjucks',
        'tsx',
      ].map((p) => [p, versionOf(p)]),
    ),
  }
}

// ---- formatting ---------------------------------------------------------------

export function formatValue(v: number, unit: Unit): string {
  if (!Number.isFinite(v)) return 'n/a'
  switch (unit.name) {
    case 'ops/s':
    case 'req/s':
      if (v >= 1e6) return `${(v / 1e6).toFixed(2)} M`
      if (v >= 1e4) return `${(v / 1e3).toFixed(1)} k`
      return v.toFixed(0)
    case 'ns/op':
      return v >= 1000 ? v.toFixed(0) : v.toFixed(1)
    case 'µs/op':
      return v >= 100 ? v.toFixed(0) : v.toFixed(1)
    case 'ms':
      return v >= 100 ? v.toFixed(0) : v.toFixed(1)
    case 'count':
      if (v >= 1e4) return `${(v / 1e3).toFixed(1)} k`
      return Number.isInteger(v) ? String(v) : v.toFixed(1)
  }
}

export function formatRatio(r: number): string {
  if (!Number.isFinite(r)) return 'n/a'
  if (r >= 10) return `${r.toFixed(1)}×`
  // Below 0.01, two significant digits: a ratio to an in-process limit can be 0.0022×.
  return r > 0 && r < 0.01 ? `${r.toPrecision(2)}×` : `${r.toFixed(2)}×`
}

function formatRatioSpread(s: Spread): string {
  return `${formatRatio(s.median)} (${formatRatio(s.min)}–${formatRatio(s.max)})`
}

/** Display width in code points (the tables hold ×, – and µ). */
function width(s: string): number {
  return [...s].length
}

/** A Markdown table with padded columns, as `biome format` would lay it out. */
function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(3, width(h), ...rows.map((r) => width(r[i] ?? ''))))
  const line = (cells: readonly string[]): string =>
    `| ${widths.map((w, i) => (cells[i] ?? '') + ' '.repeat(w - width(cells[i] ?? ''))).join(' | ')} |`
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')
}

export function comparisonMarkdown(c: Comparison): string {
  const better = c.unit.higherIsBetter ? 'higher is better' : 'lower is better'
  const out = [
    `#### ${c.title}`,
    '',
    `${c.unit.name}, ${better}; ${c.rounds} interleaved rounds.`,
    '',
  ]
  out.push(
    table(
      ['contender', 'role', `median ${c.unit.name}`, 'IQR', 'min–max'],
      c.contenders.map((x) => [
        x.name,
        x.role,
        formatValue(x.median, c.unit),
        `${formatValue(x.q1, c.unit)}–${formatValue(x.q3, c.unit)}`,
        `${formatValue(x.min, c.unit)}–${formatValue(x.max, c.unit)}`,
      ]),
    ),
  )
  if (c.ratios.length > 0) {
    const subjects = [...new Set(c.ratios.map((r) => r.subject))]
    const others = [...new Set(c.ratios.map((r) => r.other))]
    const meaning = c.unit.higherIsBetter ? '>1 = subject faster' : '>1 = subject slower'
    out.push(
      '',
      `Ratio subject ÷ column in ${c.unit.name} (${meaning}): median of per-round ratios (min–max).`,
      '',
      table(
        ['subject', ...others],
        subjects.map((s) => [
          s,
          ...others.map((o) => {
            const r = c.ratios.find((x) => x.subject === s && x.other === o)
            return r ? formatRatioSpread(r) : '—'
          }),
        ]),
      ),
    )
  }
  return out.join('\n')
}

export function headlinesMarkdown(groups: readonly GroupResult[]): string {
  const rows: string[][] = []
  for (const g of groups) {
    if (g.skipped) {
      rows.push([g.group, `skipped: ${g.skipped}`, '', '', ''])
      continue
    }
    for (const h of g.headlines) {
      rows.push([
        g.group,
        h.label,
        formatRatio(h.ratio.median),
        `${formatRatio(h.ratio.min)}–${formatRatio(h.ratio.max)}`,
        h.target
          ? `${h.target.op} ${h.target.value}: ${h.target.met ? '**met**' : '**not met**'}`
          : '',
      ])
    }
  }
  return table(['group', 'ratio', 'median', 'min–max', 'target'], rows)
}

export function environmentMarkdown(env: Environment, mode: string): string {
  const pk = Object.entries(env.packages)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')
  return [
    `- date: ${env.date} (${mode} run)`,
    `- Node ${env.node} (V8 ${env.v8}), ${env.platform}`,
    `- CPU: ${env.cpu}, ${env.cores} cores, ${env.memoryGB} GB RAM`,
    `- packages: ${pk}`,
  ].join('\n')
}

export function groupMarkdown(g: GroupResult): string {
  const out = [`### ${g.group}`, '', g.description, '']
  if (g.skipped) {
    out.push(`Skipped: ${g.skipped}`)
    return out.join('\n')
  }
  for (const c of g.comparisons) out.push(comparisonMarkdown(c), '')
  for (const n of g.notes) out.push(`- ${n}`)
  return out.join('\n').trimEnd()
}

export function fullMarkdown(
  env: Environment,
  mode: string,
  groups: readonly GroupResult[],
): string {
  return [
    `## cachette benchmarks, ${env.date}`,
    '',
    environmentMarkdown(env, mode),
    '',
    '### Summary',
    '',
    headlinesMarkdown(groups),
    '',
    ...groups.map((g) => `${groupMarkdown(g)}\n`),
  ].join('\n')
}

// ---- results file -------------------------------------------------------------

export const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url))

/**
 * Writes `bench/results/<date>.json` (and the Markdown beside it). A partial
 * run (`--only`) replaces just its groups in an existing file of the same day.
 */
export function writeResults(
  env: Environment,
  mode: string,
  groups: readonly GroupResult[],
): { json: string; md: string } {
  mkdirSync(RESULTS_DIR, { recursive: true })
  const json = `${RESULTS_DIR}${env.date}.json`
  let merged: Record<string, GroupResult> = {}
  if (existsSync(json)) {
    try {
      merged = (JSON.parse(readFileSync(json, 'utf8')) as ResultsFile).groups ?? {}
    } catch {
      merged = {}
    }
  }
  for (const g of groups) merged[g.group] = g
  const file: ResultsFile = { environment: env, groups: merged }
  writeFileSync(json, `${JSON.stringify(file, null, 2)}\n`)
  const md = `${RESULTS_DIR}${env.date}.md`
  writeFileSync(md, fullMarkdown(env, mode, Object.values(merged)))
  formatWithBiome([json, md])
  return { json, md }
}

/**
 * Lays the written files out as the repository's formatter would, so that
 * `biome check bench` stays clean after a run. Skipped if biome is missing.
 */
function formatWithBiome(files: readonly string[]): void {
  const bin = `${ROOT}node_modules/@biomejs/biome/bin/biome`
  if (!existsSync(bin)) return
  spawnSync(process.execPath, [bin, 'format', '--write', ...files], { cwd: ROOT, stdio: 'ignore' })
}

// ---- README results block -------------------------------------------------------

export const README_PATH = fileURLToPath(new URL('../README.md', import.meta.url))
const BLOCK_START = '<!-- results:start -->'
/** The block ends at this heading (which may go on, e.g. "(2026-11-21 run)"). */
const BLOCK_END = '## Reading the results'

/** `## x` → `### x`: the results .md nested under bench/README.md's `## Results`. */
export function shiftHeadings(md: string): string {
  return md.replace(/^(#{1,5}) /gm, '#$1 ')
}

/**
 * Rewrites the block of `readme` between the `<!-- results:start -->` line and
 * the `## Reading the results` heading: the marker, the one-line note about the
 * run that follows it (kept as it is, if there is one: it is written by hand),
 * the chart images, then `md` with its headings one level down. Returns false
 * (and leaves the file alone) when either end of the block is missing.
 */
export function updateReadmeResults(
  md: string,
  images: readonly { alt: string; path: string }[],
  readme: string = README_PATH,
): boolean {
  let text: string
  try {
    text = readFileSync(readme, 'utf8')
  } catch {
    return false
  }
  // Both ends must be whole lines at the start of a line, so that prose quoting
  // them (as the Running section does, in backticks) is never taken for them.
  const start = text.search(/^<!-- results:start -->[ \t]*$/m)
  const end = start < 0 ? -1 : text.indexOf(`\n${BLOCK_END}`, start)
  if (start < 0 || end < 0) return false
  const old = text.slice(start + BLOCK_START.length, end).split('\n')
  // old[0] is the rest of the marker line (empty); old[1] the note, unless the
  // line is blank or already part of the generated content (image, heading, table).
  const candidate = old[1]?.trim() ?? ''
  const note = candidate !== '' && !/^(!\[|#|\||- )/.test(candidate) ? candidate : undefined
  const parts = [BLOCK_START]
  if (note) parts.push(note)
  const body: string[] = []
  if (images.length > 0) body.push(images.map((i) => `![${i.alt}](${i.path})`).join('\n\n'))
  body.push(shiftHeadings(md).trim())
  const block = `${parts.join('\n')}\n\n${body.join('\n\n')}\n\n`
  const next = text.slice(0, start) + block + text.slice(end + 1)
  if (next !== text) writeFileSync(readme, next)
  return true
}
