/**
 * cachette benchmark suite.
 *
 *   npm run bench                       full run, writes bench/results/<date>.json and .md
 *   npm run bench -- --quick            smoke run (small slices, few rounds), writes nothing
 *   npm run bench -- --only express     one group (comma-separated for several)
 *   npm run bench -- --no-write         print only
 *
 * A run that writes results also redraws the charts (bench/results/charts/*.svg)
 * and the bench/README.md results block from the merged file of the day;
 * `npm run bench:charts` (bench/charts.ts) does just that step.
 */
import { parseArgs } from 'node:util'
import { clusterGroup } from './groups/cluster.js'
import { filesystemGroup } from './groups/filesystem.js'
import { flaskGroup } from './groups/flask.js'
import { fragmentsGroup } from './groups/fragments.js'
import { expressGroup, fastifyGroup, honoGroup, koaGroup } from './groups/http.js'
import { httpcacheGroup } from './groups/httpcache.js'
import { keyvGroup } from './groups/keyv.js'
import { memcachedGroup } from './groups/memcached.js'
import { memoizeGroup } from './groups/memoize.js'
import { memoryGroup } from './groups/memory.js'
import { redisGroup } from './groups/redis.js'
import { s3Group } from './groups/s3.js'
import { stampedeGroup } from './groups/stampede.js'
import { tieredGroup } from './groups/tiered.js'
import { publishResults } from './lib/charts.js'
import type { Group, GroupContext } from './lib/group.js'
import { environment, fullMarkdown, type GroupResult, writeResults } from './lib/report.js'

const GROUPS: readonly Group[] = [
  memoryGroup,
  memoizeGroup,
  expressGroup,
  fastifyGroup,
  koaGroup,
  honoGroup,
  httpcacheGroup,
  flaskGroup,
  filesystemGroup,
  (await import('./groups/growth.js')).growthGroup,
  redisGroup,
  clusterGroup,
  memcachedGroup,
  s3Group,
  fragmentsGroup,
  stampedeGroup,
  tieredGroup,
  keyvGroup,
]

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    'no-write': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
})

if (values.help) {
  console.log(
    'usage: tsx bench/run.ts [--quick] [--only memory,memoize,express,fastify,koa,hono,httpcache,flask,filesystem,growth,redis,cluster,memcached,s3,fragments,stampede,tiered,keyv] [--no-write]',
  )
  process.exit(0)
}

const names = values.only
  ? values.only
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
  : GROUPS.map((g) => g.name)
const unknown = names.filter((n) => !GROUPS.some((g) => g.name === n))
if (unknown.length > 0) {
  console.error(
    `unknown group(s): ${unknown.join(', ')}; have ${GROUPS.map((g) => g.name).join(', ')}`,
  )
  process.exit(2)
}

const mode = values.quick ? 'quick' : 'full'
const ctx: GroupContext = {
  quick: values.quick,
  log: (line) => process.stderr.write(`${line}\n`),
}
const env = environment()
ctx.log(`cachette bench (${mode}): Node ${env.node}, ${env.cpu} x${env.cores}`)

const results: GroupResult[] = []
for (const group of GROUPS.filter((g) => names.includes(g.name))) {
  const t0 = performance.now()
  results.push(await group.run(ctx))
  ctx.log(`${group.name}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
}

console.log(fullMarkdown(env, mode, results))

const ran = results.filter((r) => !r.skipped)
if (!values.quick && !values['no-write'] && ran.length > 0) {
  const { json, md } = writeResults(env, mode, ran)
  ctx.log(`wrote ${json} and ${md}`)
  // From the merged file, so that an --only run still charts every group of the day.
  const published = publishResults(json)
  ctx.log(
    `charts: ${published.charts.join(', ') || 'none'}; bench/README.md results block ${published.readme ? 'rewritten' : 'not found, left alone'}`,
  )
}
