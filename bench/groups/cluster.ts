/**
 * cluster: ClusterCache seen from a node:cluster worker. A primary process
 * (bench/cluster/primary.ts) serves the store and forks one worker
 * (bench/cluster/worker.ts) that measures get (hit) and set against a
 * SimpleCache in the worker (the limit) and a RedisCache on a local
 * redis-server, in one interleaved run, then 64 concurrent gets per op.
 */
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { CLUSTER, CONCURRENT, REDIS, SIMPLE } from '../cluster/names.js'
import type { Group, GroupContext } from '../lib/group.js'
import { KEYS } from '../lib/kv.js'
import { type Comparison, ratioOf } from '../lib/measure.js'
import { startBenchRedis } from '../lib/redis.js'
import { type GroupResult, type Headline, target } from '../lib/report.js'

const PRIMARY = fileURLToPath(new URL('../cluster/primary.ts', import.meta.url))

/** Runs the primary and its worker; resolves the worker's comparisons. */
function runCluster(url: string, ctx: GroupContext): Promise<Comparison[]> {
  const primary = fork(PRIMARY, [url], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, BENCH_QUICK: ctx.quick ? '1' : '0' },
  })
  return new Promise((resolve, reject) => {
    let result: Comparison[] | undefined
    let failure: string | undefined
    primary.on('message', (m: { log?: string; comparisons?: Comparison[]; error?: string }) => {
      if (m.log !== undefined) ctx.log(m.log)
      if (m.comparisons !== undefined) result = m.comparisons
      if (m.error !== undefined) failure ??= m.error
    })
    primary.on('exit', (code) => {
      if (result !== undefined) resolve(result)
      else reject(new Error(`cluster: ${failure ?? `the primary exited with code ${code}`}`))
    })
  })
}

export const clusterGroup: Group = {
  name: 'cluster',
  async run(ctx: GroupContext): Promise<GroupResult> {
    const { server, url } = await startBenchRedis()
    try {
      const comparisons = await runCluster(url, ctx)
      const [getC, setC, concurrentC] = comparisons as [Comparison, Comparison, Comparison]
      const concurrentVsRedis = ratioOf(concurrentC, CLUSTER, REDIS)
      const headlines: Headline[] = [
        {
          label: 'get (hit) from a worker: ClusterCache ÷ SimpleCache in the worker (ops/s)',
          ratio: ratioOf(getC, CLUSTER, SIMPLE),
        },
        {
          label: 'get (hit) from a worker: ClusterCache ÷ RedisCache on local Redis (ops/s)',
          ratio: ratioOf(getC, CLUSTER, REDIS),
        },
        { label: 'set: ClusterCache ÷ RedisCache (ops/s)', ratio: ratioOf(setC, CLUSTER, REDIS) },
        {
          label: `${CONCURRENT} concurrent gets: ClusterCache ÷ RedisCache (ops/s)`,
          ratio: concurrentVsRedis,
          target: target('>=', 1, concurrentVsRedis),
        },
      ]
      return {
        group: 'cluster',
        description:
          'One node:cluster worker measuring while the primary serves the ClusterCache store; a ' +
          `redis-server 7 on loopback for the RedisCache contender; ${KEYS} keys of 32-character ` +
          'strings, every get a hit. Single ops are awaited one at a time (one IPC or network round trip each).',
        measuredAt: new Date().toISOString(),
        mode: ctx.quick ? 'quick' : 'full',
        settings: { keys: KEYS, concurrent: CONCURRENT, workers: 1 },
        comparisons,
        headlines,
        notes: [
          'The SimpleCache contender is the limit: the same facade without the IPC round trip. ' +
            'A lone ClusterCache call costs one round trip on the cluster IPC channel (JSON over a ' +
            'socket pair, waking two event loops), about what a loopback Redis round trip costs; ' +
            'calls made in one tick share one message each way, which the concurrent comparison shows.',
        ],
      }
    } finally {
      await server.stop()
    }
  },
}
