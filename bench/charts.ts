/**
 * Re-renders the SVG charts (bench/results/charts/) and the bench/README.md
 * results block from a results JSON, without running any benchmark.
 *
 *   npm run bench:charts                          the latest bench/results/<date>.json
 *   npm run bench:charts -- bench/results/X.json  a given file
 */
import { readdirSync } from 'node:fs'
import { resolve } from 'node:path'
import { publishResults } from './lib/charts.js'
import { RESULTS_DIR } from './lib/report.js'

function latestResults(): string | undefined {
  // Dated names sort chronologically as strings.
  const dated = readdirSync(RESULTS_DIR)
    .filter((f) => /^\d{4}-\d{2}-\d{2}\.json$/.test(f))
    .sort()
  const last = dated.at(-1)
  return last ? `${RESULTS_DIR}${last}` : undefined
}

const arg = process.argv[2]
const json = arg ? resolve(arg) : latestResults()
if (!json) {
  console.error(`no results file in ${RESULTS_DIR}; run npm run bench first`)
  process.exit(1)
}
const { charts, readme } = publishResults(json)
console.error(`charts from ${json}: ${charts.join(', ') || 'none (no matching data)'}`)
console.error(readme ? 'bench/README.md results block rewritten' : 'bench/README.md not updated')
