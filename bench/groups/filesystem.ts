/**
 * filesystem: FileSystemCache `get` (hit) and `set` (overwrite) time per op
 * with 1,000, 10,000 and 100,000 entries in the directory (quick: 1,000 and
 * 10,000), and the disk bytes per entry. The target is that 100,000 entries
 * cost at most 1.5x what 1,000 do (fan-out directories keep each directory
 * small); 10,000 ÷ 1,000 is reported beside it.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { FileSystemCache } from '../../src/index.js'
import type { Group, GroupContext } from '../lib/group.js'
import {
  COUNT,
  type Comparison,
  compare,
  compareMetrics,
  opLoop,
  ratioOf,
  US_PER_OP,
} from '../lib/measure.js'
import { type GroupResult, type Headline, target } from '../lib/report.js'

const BATCH = 1000
const VALUE = `<li class="user">${'x'.repeat(80)}</li>`

/** 0..n-1 in a fixed pseudo-random order (also used by the growth group). */
export function shuffled(n: number, seed: number): number[] {
  const out = Array.from({ length: n }, (_, i) => i)
  let s = seed >>> 0
  for (let i = n - 1; i > 0; i--) {
    // xorshift32: deterministic, so every run visits keys in the same order.
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    const j = s % (i + 1)
    const t = out[i] as number
    out[i] = out[j] as number
    out[j] = t
  }
  return out
}

async function prefill(
  cache: FileSystemCache,
  keys: readonly string[],
  log: (line: string) => void,
): Promise<number> {
  const t0 = performance.now()
  for (let start = 0; start < keys.length; start += BATCH) {
    const batch = keys.slice(start, start + BATCH).map((k) => [k, VALUE] as const)
    await cache.setMany(batch, 0)
    if ((start / BATCH) % 20 === 19) log(`  prefill ${cache.dir}: ${start + BATCH}/${keys.length}`)
  }
  return (performance.now() - t0) / 1000
}

/** Bytes under `dir`, files only: their length and what the file system allocated for them. */
function diskUsage(dir: string): { apparent: number; allocated: number; files: number } {
  let apparent = 0
  let allocated = 0
  let files = 0
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue
    // parentPath is Node 20.12+; path is its older (deprecated) name.
    const parent = (entry as { parentPath?: string }).parentPath ?? entry.path
    const st = statSync(join(parent, entry.name))
    apparent += st.size
    allocated += st.blocks * 512
    files++
  }
  return { apparent, allocated, files }
}

export const filesystemGroup: Group = {
  name: 'filesystem',
  async run(ctx: GroupContext): Promise<GroupResult> {
    // The first size is the reference; the target applies to the largest.
    const sizes = ctx.quick ? [1_000, 10_000] : [1_000, 10_000, 100_000]
    const small = sizes[0] as number
    const large = sizes[sizes.length - 1] as number
    const rounds = ctx.quick ? 3 : 11
    const sliceMs = ctx.quick ? 40 : 300
    const root = mkdtempSync(join(os.tmpdir(), 'cachette-bench-fs-'))
    const cleanup = (): void => rmSync(root, { recursive: true, force: true })
    const onSignal = (): void => {
      cleanup()
      process.exit(130)
    }
    process.once('SIGINT', onSignal)
    try {
      const names = sizes.map((n) => `${n.toLocaleString('en-US')} entries`)
      const caches = sizes.map(
        (n) => new FileSystemCache({ dir: join(root, `n${n}`), threshold: 0 }),
      )
      const keySets = sizes.map((n) => Array.from({ length: n }, (_, i) => `user:${i}:profile`))
      const prefillSeconds: Record<string, number> = {}
      for (let c = 0; c < caches.length; c++) {
        ctx.log(`filesystem: prefill ${names[c]}`)
        prefillSeconds[names[c] as string] = await prefill(
          caches[c] as FileSystemCache,
          keySets[c] as string[],
          ctx.log,
        )
      }
      // Visit keys in a fixed pseudo-random order over the whole set, so the
      // large directory is not measured on a hot subset of its files.
      const orders = sizes.map((n) => shuffled(n, 0x9e3779b9))
      const keyAt = (c: number, i: number): string => {
        const order = orders[c] as number[]
        return (keySets[c] as string[])[order[i % order.length] as number] as string
      }
      for (let c = 0; c < caches.length; c++) {
        const got = await (caches[c] as FileSystemCache).get(keyAt(c, 12345))
        if (got !== VALUE) throw new Error(`filesystem: ${names[c]} prefill did not take`)
      }
      const comparisons: Comparison[] = []
      // Disk use right after the prefill (overwrites keep the sizes). Measured
      // once: it does not vary between rounds, so one round is the whole story.
      ctx.log('filesystem: disk use')
      const usage = caches.map((c) => diskUsage(c.dir))
      comparisons.push(
        ...(await compareMetrics({
          id: 'filesystem.disk',
          rounds: 1,
          warmupRounds: 0,
          contenders: sizes.map((n, c) => ({
            name: names[c] as string,
            role: c === 0 ? ('reference' as const) : ('subject' as const),
            sample: async () => {
              const u = usage[c] as { apparent: number; allocated: number; files: number }
              if (u.files !== n) throw new Error(`filesystem: ${u.files} files for ${n} entries`)
              return { apparent: u.apparent / n, allocated: u.allocated / n }
            },
          })),
          metrics: [
            {
              key: 'apparent',
              id: 'filesystem.disk.bytes',
              title:
                'filesystem: file bytes per entry (sum of file sizes ÷ entries; count = bytes)',
              unit: COUNT,
              pairs: [],
            },
            {
              key: 'allocated',
              id: 'filesystem.disk.allocated',
              title:
                'filesystem: disk bytes allocated per entry (sum of st_blocks × 512 ÷ entries; count = bytes)',
              unit: COUNT,
              pairs: [],
            },
          ],
        })),
      )
      const opts = { sliceMs, batch: 16, unit: US_PER_OP }
      // Every size against the smallest: 10k ÷ 1k and 100k ÷ 1k.
      const pairs = names.slice(1).map((n) => [n, names[0] as string] as const)
      const role = (c: number): 'limit' | 'subject' => (c === 0 ? 'limit' : 'subject')
      ctx.log('filesystem: get (hit)')
      comparisons.push(
        await compare({
          id: 'filesystem.get',
          title: 'filesystem: FileSystemCache get (hit), awaited one at a time',
          unit: US_PER_OP,
          rounds,
          contenders: caches.map((cache, c) => ({
            name: names[c] as string,
            role: role(c),
            sample: opLoop(async (i) => {
              if ((await cache.get(keyAt(c, i))) === undefined) throw new Error('miss')
            }, opts),
          })),
          pairs,
          log: ctx.log,
        }),
      )
      ctx.log('filesystem: set (overwrite)')
      comparisons.push(
        await compare({
          id: 'filesystem.set',
          title:
            'filesystem: FileSystemCache set (overwrite an existing key), awaited one at a time',
          unit: US_PER_OP,
          rounds,
          contenders: caches.map((cache, c) => ({
            name: names[c] as string,
            role: role(c),
            sample: opLoop((i) => cache.set(keyAt(c, i), VALUE, 0), opts),
          })),
          pairs,
          log: ctx.log,
        }),
      )
      const headlines: Headline[] = comparisons
        .filter((c) => c.id === 'filesystem.get' || c.id === 'filesystem.set')
        .flatMap((c) =>
          sizes.slice(1).map((n, s): Headline => {
            const ratio = ratioOf(c, names[s + 1] as string, names[0] as string)
            const h = {
              label: `${c.id}: ${n.toLocaleString('en-US')} ÷ ${small.toLocaleString('en-US')} entries (time)`,
              ratio,
            }
            // The target is on the largest size only (100k in a full run).
            return n === large ? { ...h, target: target('<=', 1.5, ratio) } : h
          }),
        )
      const diskNote = sizes
        .map((n, c) => {
          const u = usage[c] as { apparent: number; allocated: number }
          return `${(u.apparent / n).toFixed(0)} B in files, ${(u.allocated / n).toFixed(0)} B allocated at ${n.toLocaleString('en-US')}`
        })
        .join('; ')
      return {
        group: 'filesystem',
        description:
          `FileSystemCache directly (threshold 0: no counting, no pruning), µs per awaited op, with ` +
          `${sizes.map((n) => n.toLocaleString('en-US')).join(' vs ')} entries prefilled by ` +
          `setMany in batches of ${BATCH}. Keys are visited in a fixed shuffled order over the whole ` +
          `set; values are ${VALUE.length}-character strings. Disk use per entry: the sizes of the ` +
          `files under the cache directory (and the blocks allocated for them) ÷ entries. Directory ` +
          `under ${os.tmpdir()}, removed afterwards.`,
        measuredAt: new Date().toISOString(),
        mode: ctx.quick ? 'quick' : 'full',
        settings: { rounds, sliceMs, sizes, small, large, prefillSeconds, tmpdir: os.tmpdir() },
        comparisons,
        headlines,
        notes: [
          `Prefill took ${Object.entries(prefillSeconds)
            .map(([k, s]) => `${s.toFixed(1)} s for ${k}`)
            .join(', ')}.`,
          `Disk per entry: ${diskNote}. The allocated figure is what a small file really costs on this ` +
            'file system (whole blocks); fan-out directories are not counted.',
        ],
      }
    } finally {
      process.removeListener('SIGINT', onSignal)
      ctx.log('filesystem: removing the temp directory')
      cleanup()
    }
  },
}
