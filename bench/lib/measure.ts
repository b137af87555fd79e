/**
 * Shared measurement code: every group builds contenders (a `sample()` that
 * returns one measurement) and hands them to {@link compare}, which runs them
 * interleaved in rounds and derives medians, spreads and paired ratios.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/** What a contender is in a comparison. */
export type Role = 'subject' | 'limit' | 'peer' | 'reference'

export type UnitName = 'ops/s' | 'req/s' | 'ns/op' | 'µs/op' | 'ms' | 'count'

export interface Unit {
  readonly name: UnitName
  readonly higherIsBetter: boolean
}

export const OPS_PER_SEC: Unit = { name: 'ops/s', higherIsBetter: true }
export const REQ_PER_SEC: Unit = { name: 'req/s', higherIsBetter: true }
export const NS_PER_OP: Unit = { name: 'ns/op', higherIsBetter: false }
export const US_PER_OP: Unit = { name: 'µs/op', higherIsBetter: false }
/** Milliseconds (a latency or a duration per round), lower is better. */
export const MS: Unit = { name: 'ms', higherIsBetter: false }
/** A count per round (factory runs, backend commands), lower is better. */
export const COUNT: Unit = { name: 'count', higherIsBetter: false }

export interface ContenderSpec {
  readonly name: string
  readonly role: Role
  /** One measurement in the comparison's unit (one round's worth of work). */
  sample(): Promise<number>
}

export interface Spread {
  readonly median: number
  readonly q1: number
  readonly q3: number
  readonly min: number
  readonly max: number
}

export interface ContenderResult extends Spread {
  readonly name: string
  readonly role: Role
  readonly samples: number[]
}

/** `subject / other` in the comparison's unit, computed per round (paired) and summarised. */
export interface RatioResult extends Spread {
  readonly subject: string
  readonly other: string
}

export interface Comparison {
  readonly id: string
  readonly title: string
  readonly unit: Unit
  readonly rounds: number
  readonly contenders: ContenderResult[]
  readonly ratios: RatioResult[]
}

// ---- statistics ------------------------------------------------------------

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN
  const pos = (sorted.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  const a = sorted[lo] as number
  const b = sorted[hi] as number
  return a + (b - a) * (pos - lo)
}

/**
 * The `q` quantile (0..1) of ascending `sorted` values, interpolated between
 * neighbours (`percentile(sorted, 0.99)` is the p99).
 */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  return quantile(Array.from(sorted), q)
}

export function spreadOf(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b)
  return {
    median: quantile(sorted, 0.5),
    q1: quantile(sorted, 0.25),
    q3: quantile(sorted, 0.75),
    min: sorted[0] ?? Number.NaN,
    max: sorted[sorted.length - 1] ?? Number.NaN,
  }
}

// ---- garbage collection between slices ---------------------------------------

/**
 * `gc()` without `--expose-gc` on the command line, so that each contender's
 * slice starts with an empty young generation instead of paying for the
 * previous contender's garbage. A no-op if the engine refuses.
 */
export const collectGarbage: () => void = (() => {
  const existing = (globalThis as { gc?: () => void }).gc
  if (typeof existing === 'function') return existing
  try {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as unknown
    if (typeof gc === 'function') return gc as () => void
  } catch {
    // fall through
  }
  return () => {}
})()

// ---- timed op loops ----------------------------------------------------------

type Loop = (op: (i: number) => unknown, start: number, n: number) => Promise<void>

const LOOP_SOURCE =
  'return async function loop(op, start, n) { const end = start + n; for (let i = start; i < end; i++) await op(i) }'

/**
 * A freshly compiled loop per contender: a shared loop would see every
 * contender's function at its one call site, go megamorphic and stop V8 from
 * inlining any of them, which would flatten the differences being measured.
 */
function freshLoop(): Loop {
  return new Function(LOOP_SOURCE)() as Loop
}

export interface OpLoopOptions {
  /** Milliseconds of work per sample. */
  readonly sliceMs: number
  /** Ops between clock reads (keep the clock out of fast ops). */
  readonly batch: number
  /** The unit the sample is reported in. */
  readonly unit: Unit
}

/**
 * A sampler that awaits `op(i)` sequentially (i = 0, 1, 2, ... across samples)
 * for about `sliceMs`, then reports the rate or the time per op.
 */
export function opLoop(op: (i: number) => unknown, options: OpLoopOptions): () => Promise<number> {
  const loop = freshLoop()
  const budget = BigInt(Math.round(options.sliceMs * 1e6))
  const { batch, unit } = options
  let cursor = 0
  return async () => {
    collectGarbage()
    let ops = 0
    let elapsed = 0n
    const t0 = process.hrtime.bigint()
    do {
      await loop(op, cursor, batch)
      cursor += batch
      ops += batch
      elapsed = process.hrtime.bigint() - t0
    } while (elapsed < budget)
    return convert(ops, Number(elapsed) / 1e9, unit)
  }
}

function convert(ops: number, seconds: number, unit: Unit): number {
  switch (unit.name) {
    case 'ops/s':
    case 'req/s':
      return ops / seconds
    case 'ns/op':
      return (seconds * 1e9) / ops
    case 'µs/op':
      return (seconds * 1e6) / ops
    case 'ms':
      return (seconds * 1e3) / ops
    case 'count':
      return ops
  }
}

// ---- interleaved comparison ---------------------------------------------------

export interface CompareOptions {
  readonly id: string
  readonly title: string
  readonly unit: Unit
  /** Measured rounds; each runs every contender once. */
  readonly rounds: number
  /** Discarded rounds first (JIT warm-up). @default 1 */
  readonly warmupRounds?: number
  readonly contenders: readonly ContenderSpec[]
  /** `[subject, other]` pairs to report; default: every subject against every other contender. */
  readonly pairs?: readonly (readonly [string, string])[]
  /** Progress output (one line per round). */
  readonly log?: (line: string) => void
}

/**
 * Runs the contenders interleaved: round r starts at contender r mod n
 * (rotation) and odd rounds run in reverse order, so no contender always runs
 * first, nor always right after the same neighbour (whose garbage or JIT
 * state it could inherit), and slow drift of the machine hits all alike.
 */
export async function compare(options: CompareOptions): Promise<Comparison> {
  const { contenders, rounds } = options
  const n = contenders.length
  const samples = contenders.map(() => [] as number[])
  const warmup = options.warmupRounds ?? 1
  for (let r = -warmup; r < rounds; r++) {
    const start = ((r % n) + n) % n
    const reverse = ((r % 2) + 2) % 2 === 1
    for (let j = 0; j < n; j++) {
      const idx = reverse ? (start - j + n) % n : (start + j) % n
      const value = await (contenders[idx] as ContenderSpec).sample()
      if (r >= 0) (samples[idx] as number[]).push(value)
    }
    if (r >= 0 && options.log) options.log(`  ${options.id}: round ${r + 1}/${rounds}`)
  }
  const results: ContenderResult[] = contenders.map((c, i) => ({
    name: c.name,
    role: c.role,
    ...spreadOf(samples[i] as number[]),
    samples: samples[i] as number[],
  }))
  const pairs =
    options.pairs ??
    contenders
      .filter((c) => c.role === 'subject')
      .flatMap((s) => contenders.filter((o) => o !== s).map((o) => [s.name, o.name] as const))
  const byName = new Map(results.map((c) => [c.name, c]))
  const ratios = pairs.map(([subject, other]): RatioResult => {
    const s = byName.get(subject)
    const o = byName.get(other)
    if (!s || !o)
      throw new Error(`compare ${options.id}: unknown contender in pair ${subject}/${other}`)
    const perRound = s.samples.map((v, i) => v / (o.samples[i] as number))
    return { subject, other, ...spreadOf(perRound) }
  })
  return {
    id: options.id,
    title: options.title,
    unit: options.unit,
    rounds,
    contenders: results,
    ratios,
  }
}

/** The paired ratio `subject / other` of a finished comparison. */
export function ratioOf(c: Comparison, subject: string, other: string): RatioResult {
  const found = c.ratios.find((r) => r.subject === subject && r.other === other)
  if (!found) throw new Error(`no ratio ${subject}/${other} in ${c.id}`)
  return found
}

// ---- several measurements per round ---------------------------------------------

/** A contender whose one run yields several measurements (one per metric). */
export interface MultiContenderSpec<M extends string> {
  readonly name: string
  readonly role: Role
  /** One round's run: a value for every metric. */
  sample(): Promise<Record<M, number>>
}

/** One metric of {@link compareMetrics}: becomes one {@link Comparison}. */
export interface MetricSpec<M extends string> {
  readonly key: M
  readonly id: string
  readonly title: string
  readonly unit: Unit
  /** As in {@link CompareOptions.pairs}; `[]` for a table without ratios. */
  readonly pairs?: readonly (readonly [string, string])[]
}

export interface CompareMetricsOptions<M extends string> {
  /** For the progress log. */
  readonly id: string
  readonly rounds: number
  /** @default 1 */
  readonly warmupRounds?: number
  readonly contenders: readonly MultiContenderSpec<M>[]
  /** The first metric drives the run; every metric gets its own comparison. */
  readonly metrics: readonly [MetricSpec<M>, ...MetricSpec<M>[]]
  readonly log?: (line: string) => void
}

/**
 * {@link compare} for runs that yield several numbers at once (the stampede
 * group: factory runs, p50, p99 and total time of one burst). The
 * contenders run once, interleaved exactly as `compare` does; then each
 * further metric is summarised by replaying the recorded per-round values
 * through `compare` (same rounds, no warm-up), so the spreads and the
 * paired ratios are computed by the same code as everywhere else, and the
 * ratio of round r pairs values measured in round r.
 */
export async function compareMetrics<M extends string>(
  options: CompareMetricsOptions<M>,
): Promise<Comparison[]> {
  const warmup = options.warmupRounds ?? 1
  const records = options.contenders.map(() => [] as Record<M, number>[])
  const [first, ...rest] = options.metrics
  const driven = await compare({
    id: first.id,
    title: first.title,
    unit: first.unit,
    rounds: options.rounds,
    warmupRounds: warmup,
    contenders: options.contenders.map(
      (c, i): ContenderSpec => ({
        name: c.name,
        role: c.role,
        sample: async () => {
          const record = await c.sample()
          ;(records[i] as Record<M, number>[]).push(record)
          return record[first.key]
        },
      }),
    ),
    ...(first.pairs ? { pairs: first.pairs } : {}),
    ...(options.log
      ? { log: (line: string) => options.log?.(line.replace(first.id, options.id)) }
      : {}),
  })
  // Each contender ran once per warm-up round first: those records are dropped, as compare drops their samples.
  const measured = records.map((r) => r.slice(warmup))
  const out: Comparison[] = [driven]
  for (const metric of rest) {
    out.push(
      await compare({
        id: metric.id,
        title: metric.title,
        unit: metric.unit,
        rounds: options.rounds,
        warmupRounds: 0,
        contenders: options.contenders.map((c, i): ContenderSpec => {
          const values = (measured[i] as Record<M, number>[]).map((r) => r[metric.key])
          let next = 0
          return {
            name: c.name,
            role: c.role,
            // compare() calls each contender exactly once per round, so replaying in order is exact.
            sample: async () => values[next++] as number,
          }
        }),
        ...(metric.pairs ? { pairs: metric.pairs } : {}),
      }),
    )
  }
  return out
}
