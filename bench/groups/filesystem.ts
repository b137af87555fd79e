/**
 * filesystem: FileSystemCache `get` (hit) and `set` (overwrite) time per op
 * with a small and a large number of entries in the directory. The target is
 * that 100,000 entries cost at most 1.5x what 1,000 do (fan-out directories
 * keep each directory small).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { FileSystemCache } from '../../src/index.js'
import type { Group, GroupContext } from '../lib/group.js'
import { type Comparison, compare, opLoop, ratioOf, US_PER_OP } from '../lib/measure.js'
import { type GroupResult, type Headline, target } from '../lib/report.js'

const BATCH = 1000
const VALUE = `<li class="user">${'x'.repeat(80)}</li>`

function shuffled(n: number, seed: number): number[] {
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

export const filesystemGroup: Group = {
  name: 'filesystem',
  async run(ctx: GroupContext): Promise<GroupResult> {
    const small = 1_000
    const large = ctx.quick ? 10_000 : 100_000
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
      const sizes = [small, large]
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
      const c0 = caches[0] as FileSystemCache
      const c1 = caches[1] as FileSystemCache
      const comparisons: Comparison[] = []
      const opts = { sliceMs, batch: 16, unit: US_PER_OP }
      ctx.log('filesystem: get (hit)')
      comparisons.push(
        await compare({
          id: 'filesystem.get',
          title: 'filesystem: FileSystemCache get (hit), awaited one at a time',
          unit: US_PER_OP,
          rounds,
          contenders: [
            {
              name: names[0] as string,
              role: 'limit',
              sample: opLoop(async (i) => {
                if ((await c0.get(keyAt(0, i))) === undefined) throw new Error('miss')
              }, opts),
            },
            {
              name: names[1] as string,
              role: 'subject',
              sample: opLoop(async (i) => {
                if ((await c1.get(keyAt(1, i))) === undefined) throw new Error('miss')
              }, opts),
            },
          ],
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
          contenders: [
            {
              name: names[0] as string,
              role: 'limit',
              sample: opLoop((i) => c0.set(keyAt(0, i), VALUE, 0), opts),
            },
            {
              name: names[1] as string,
              role: 'subject',
              sample: opLoop((i) => c1.set(keyAt(1, i), VALUE, 0), opts),
            },
          ],
          log: ctx.log,
        }),
      )
      const headlines: Headline[] = comparisons.map((c) => {
        const ratio = ratioOf(c, names[1] as string, names[0] as string)
        return {
          label: `${c.id}: ${large.toLocaleString('en-US')} ÷ ${small.toLocaleString('en-US')} entries (time)`,
          ratio,
          target: target('<=', 1.5, ratio),
        }
      })
      return {
        group: 'filesystem',
        description:
          `FileSystemCache directly (threshold 0: no counting, no pruning), µs per awaited op, with ` +
          `${small.toLocaleString('en-US')} vs ${large.toLocaleString('en-US')} entries prefilled by ` +
          `setMany in batches of ${BATCH}. Keys are visited in a fixed shuffled order over the whole ` +
          `set; values are ${VALUE.length}-character strings. Directory under ${os.tmpdir()}, removed afterwards.`,
        measuredAt: new Date().toISOString(),
        mode: ctx.quick ? 'quick' : 'full',
        settings: { rounds, sliceMs, small, large, prefillSeconds, tmpdir: os.tmpdir() },
        comparisons,
        headlines,
        notes: [
          `Prefill took ${Object.entries(prefillSeconds)
            .map(([k, s]) => `${s.toFixed(1)} s for ${k}`)
            .join(', ')}.`,
        ],
      }
    } finally {
      process.removeListener('SIGINT', onSignal)
      ctx.log('filesystem: removing the temp directory')
      cleanup()
    }
  },
}
