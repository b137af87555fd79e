/**
 * The primary of the cluster bench group: serves ClusterCache and forks one
 * worker (bench/cluster/worker.ts) that measures. Started by
 * bench/groups/cluster.ts with child_process.fork; relays the worker's
 * `{ log }` and `{ comparisons }` / `{ error }` messages to it, then exits.
 *
 * argv: the Redis URL; env BENCH_QUICK=1 for a quick run.
 */
import cluster from 'node:cluster'
import { fileURLToPath } from 'node:url'
import { ClusterCache } from '../../src/index.js'

const send = process.send?.bind(process)
if (send === undefined)
  throw new Error('bench/cluster/primary.ts: start it with child_process.fork')

ClusterCache.serve()
cluster.setupPrimary({
  exec: fileURLToPath(new URL('./worker.ts', import.meta.url)),
  execArgv: ['--import', 'tsx', '--expose-gc'],
  args: process.argv.slice(2),
})
const worker = cluster.fork()
worker.on('message', (message: { log?: string; comparisons?: unknown; error?: string }) => {
  if (
    message.log !== undefined ||
    message.comparisons !== undefined ||
    message.error !== undefined
  ) {
    send(message)
  }
})
worker.on('exit', (code) => {
  if (code !== 0) send({ error: `the bench worker exited with code ${code}` })
  process.disconnect()
})
