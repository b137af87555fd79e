/**
 * The Grafana dashboard (dashboards/grafana/cachette.json) stays in sync
 * with `registerCacheMetrics`: a valid dashboard shape, every metric a panel
 * queries is exported (and every exported metric is on some panel), and
 * every panel query runs on a real Prometheus scraping real caches.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { Registry } from 'prom-client'
import { Cache } from '../src/index.js'
import { registerCacheMetrics } from '../src/observability/prometheus.js'
import {
  type Dashboard,
  type ExportedMetrics,
  exportedMetrics,
  loadDashboard,
  metricNames,
  metricProblems,
  type Prometheus,
  panelsOf,
  queriesOf,
  shapeProblems,
  startPrometheus,
  startWorkload,
  substitute,
  type Workload,
} from './grafana-harness.js'
import { freePort, HOST } from './servers/process.js'

const copy = (d: Dashboard): Dashboard => structuredClone(d)

describe('PromQL metric names', () => {
  test('selectors, not functions, label names, keywords, strings, ranges or variables', () => {
    assert.deepEqual(
      metricNames(
        'histogram_quantile(0.99, sum by (le, backend) (rate(x_bucket{job=~"$job", le="0.1"}[$__rate_interval])))',
      ),
      ['x_bucket'],
    )
    assert.deepEqual(
      metricNames(
        'sum without (instance) (a_total offset 5m) / on (job) group_left (name) b:rule * 1e-3 and c unless count(d)',
      ),
      ['a_total', 'b:rule', 'c', 'd'],
    )
    assert.deepEqual(metricNames('(sum(rate(e{x="a{b}", y=\'}\'}[1m])) or vector(0)) # f_total'), [
      'e',
    ])
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a Grafana variable
    assert.deepEqual(metricNames('${datasource} + sum by(le)(g) + inf'), ['g'])
  })

  test('template variables are substituted as Grafana would', () => {
    assert.equal(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a Grafana variable
      substitute('rate(x{job=~"$job", instance=~"${instance}"}[$__rate_interval])'),
      'rate(x{job=~"cachette", instance=~".*"}[10s])',
    )
  })
})

describe('Grafana dashboard', () => {
  const dashboard = loadDashboard()
  let exported: ExportedMetrics

  before(async () => {
    exported = await exportedMetrics()
  })

  test('is a valid dashboard: unique ids, gridPos in the grid, the datasource variable everywhere', () => {
    assert.deepEqual(shapeProblems(dashboard), [])
    assert.ok(panelsOf(dashboard).filter((p) => p.type !== 'row').length >= 10)
  })

  test('the shape check catches duplicate ids, bad gridPos and a hard-coded datasource', () => {
    const bad = copy(dashboard)
    const panels = (bad.panels ?? []).filter((p) => p.type !== 'row')
    const [a, b, c] = panels
    assert.ok(a && b && c)
    b.id = a.id
    c.gridPos = { h: 8, w: 30, x: 0, y: 0 }
    c.datasource = { type: 'prometheus', uid: 'P1809F7CD0C75ACF3' }
    const problems = shapeProblems(bad).join('\n')
    assert.match(problems, /duplicate id/)
    assert.match(problems, /outside the 24-column grid/)
    assert.match(problems, /datasource is not/)
  })

  test('registerCacheMetrics exports the families the dashboard is written for', () => {
    assert.equal(exported.families.get('cachette_operation_duration_seconds'), 'histogram')
    assert.ok(exported.series.has('cachette_operation_duration_seconds_bucket'))
    assert.ok(exported.families.size >= 7)
  })

  test('every metric a panel queries is exported, and every exported metric is on a panel', () => {
    const { unknown, unused } = metricProblems(dashboard, exported)
    assert.deepEqual(unknown, [], 'panels query metrics registerCacheMetrics does not export')
    assert.deepEqual(unused, [], 'exported metrics no panel shows')
    assert.ok(queriesOf(dashboard).every((q) => metricNames(q.expr).length > 0))
  })

  test('a panel naming a metric that does not exist fails the check', () => {
    const bad = copy(dashboard)
    const target = (bad.panels ?? []).find((p) => p.targets?.length)?.targets?.[0]
    assert.ok(target?.expr)
    target.expr = target.expr.replace('cachette_key_lookups_total', 'cachette_key_lookup_total')
    assert.match(metricProblems(bad, exported).unknown.join('\n'), /cachette_key_lookup_total/)
    // A histogram family has no series of its own name: only _bucket, _sum, _count.
    target.expr = 'rate(cachette_operation_duration_seconds[5m])'
    assert.match(metricProblems(bad, exported).unknown.join('\n'), /duration_seconds \(panel/)
  })

  test('dropping the only panel of a metric fails the reverse check', () => {
    const bad = copy(dashboard)
    bad.panels = (bad.panels ?? []).filter(
      (p) => !(p.targets ?? []).some((t) => t.expr?.includes('cachette_fragment_requests_total')),
    )
    assert.deepEqual(metricProblems(bad, exported).unused, ['cachette_fragment_requests_total'])
  })
})

describe('cachette_circuit_breakers', () => {
  test('counts guarded backends by circuit state; unguarded ones are not listed', async () => {
    const registry = new Registry()
    const quiet = { debug() {}, info() {}, warn() {}, error() {} }
    // Nothing listens on the port: every call fails, and one failure opens the circuit.
    const down = new Cache({
      CACHE_TYPE: 'RedisCache',
      CACHE_REDIS_URL: `redis://${HOST}:${await freePort()}`,
      CACHE_CIRCUIT_BREAKER: { failures: 1, openFor: 60 },
      logger: quiet,
    })
    const memory = new Cache({ CACHE_TYPE: 'SimpleCache' })
    const metrics = [
      registerCacheMetrics(down, { registry }),
      registerCacheMetrics(memory, { registry }),
    ]
    const states = async () => {
      const m = (await registry.getMetricsAsJSON()).find(
        (x) => x.name === 'cachette_circuit_breakers',
      )
      return Object.fromEntries(
        (m?.values ?? []).map((v) => [`${v.labels.backend} ${v.labels.state}`, v.value]),
      )
    }
    try {
      await down.ready()
      assert.deepEqual(await states(), {
        'RedisCache closed': 1,
        'RedisCache open': 0,
        'RedisCache half-open': 0,
      })
      assert.equal(await down.get('k'), undefined)
      assert.deepEqual(await states(), {
        'RedisCache closed': 0,
        'RedisCache open': 1,
        'RedisCache half-open': 0,
      })
    } finally {
      for (const m of metrics) m.unregister()
      await down.close()
    }
  })
})

describe('Grafana dashboard on a real Prometheus', () => {
  const dashboard = loadDashboard()
  let workload: Workload
  let prometheus: Prometheus

  before(async () => {
    workload = await startWorkload()
    prometheus = await startPrometheus(workload.port)
  })
  after(async () => {
    await prometheus?.stop()
    await workload?.stop()
  })

  test('every panel query runs, and the panels show data', async () => {
    const queries = queriesOf(dashboard).map((q) => ({
      ...q,
      promql: substitute(q.expr),
      name: `panel ${String(q.panel.id)} "${q.panel.title}" ${String(q.target.refId)}`,
    }))
    // Rates need two scrapes of a running workload: wait for every query to have data.
    const deadline = Date.now() + 30_000
    let empty: string[] = []
    for (;;) {
      empty = []
      for (const q of queries) {
        const answer = await prometheus.query(q.promql)
        assert.equal(answer.status, 'success', `${q.name}: ${answer.errorType}: ${answer.error}`)
        if ((answer.data?.result.length ?? 0) === 0) empty.push(q.name)
      }
      if (empty.length === 0 || Date.now() > deadline) break
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
    assert.deepEqual(empty, [], `no data after 30 s (${workload.rounds()} load rounds)`)

    const series = async (promql: string) =>
      (await prometheus.query(substitute(promql))).data?.result ?? []
    // Per-name hit ratios carry the names the workload used.
    const views = await series(
      'sum by (view) (rate(cachette_view_requests_total{job=~"$job"}[$__rate_interval]))',
    )
    assert.ok(
      views.some((r) => r.metric.view === '/products/:id'),
      JSON.stringify(views),
    )
    const errors = await series(
      'sum by (backend) (rate(cachette_operations_total{result="error"}[$__rate_interval]))',
    )
    assert.deepEqual(
      errors.map((r) => r.metric.backend),
      ['RedisCache'],
    )
    // The down backend's circuit opens (between probes every 2 s).
    let open: string | undefined
    for (const until = Date.now() + 15_000; open !== '1' && Date.now() < until; ) {
      const [r] = await series(
        'max_over_time(cachette_circuit_breakers{backend="RedisCache", state="open"}[1m])',
      )
      open = r?.value?.[1]
      if (open !== '1') await new Promise((resolve) => setTimeout(resolve, 500))
    }
    assert.equal(open, '1')
  })

  test('a query Prometheus cannot parse is an error, not an empty panel', async () => {
    const answer = await prometheus.query(
      substitute('sum by (le (rate(cachette_x[$__rate_interval]))'),
    )
    assert.equal(answer.status, 'error')
    assert.equal(answer.errorType, 'bad_data')
  })
})
