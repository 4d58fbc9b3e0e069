import { readFile } from 'node:fs/promises'
import t from 'tap'
import { DASHBOARD_PATH } from '../helpers/prometheus.ts'

// No Grafana runs here: this checks what an import needs. test/ops/prometheus-live.test.ts runs every
// panel's PromQL against a real Prometheus.

// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JavaScript template
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' }

interface Panel {
  id: number
  type: string
  title: string
  gridPos: { h: number; w: number; x: number; y: number }
  datasource?: { type: string; uid: string }
  targets?: Array<{ refId: string; expr: string; datasource?: { type: string; uid: string } }>
}
const dashboard = JSON.parse(await readFile(DASHBOARD_PATH, 'utf8')) as {
  uid: string
  title: string
  schemaVersion: number
  panels: Panel[]
  templating: { list: Array<{ name: string; type: string; query: unknown }> }
  __inputs?: unknown
}

t.test('an importable dashboard: uid, title, schema version, no unresolved inputs', async (t) => {
  t.equal(dashboard.uid, 'dynacache')
  t.equal(dashboard.title, 'dynacache')
  t.ok(dashboard.schemaVersion >= 36 && dashboard.schemaVersion <= 41, `schemaVersion ${dashboard.schemaVersion}`)
  t.equal(dashboard.__inputs, undefined, 'no DS_PROMETHEUS input to fill in: the data source is a variable')
})

t.test('every panel queries Prometheus through the datasource variable', async (t) => {
  const variable = dashboard.templating.list.find((v) => v.type === 'datasource')
  t.match(variable, { name: 'datasource', query: 'prometheus' })
  for (const v of dashboard.templating.list.filter((v) => v.type === 'query')) {
    t.match(v, { datasource: DATASOURCE }, `variable ${v.name}`)
  }
  for (const p of dashboard.panels.filter((p) => p.type !== 'row')) {
    t.same(p.datasource, DATASOURCE, `${p.title}: data source`)
    t.ok((p.targets ?? []).length > 0, `${p.title}: has queries`)
    for (const target of p.targets ?? []) {
      t.same(target.datasource, p.datasource, `${p.title}/${target.refId}: data source`)
      t.ok(target.expr.trim().length > 0, `${p.title}/${target.refId}: expression`)
    }
  }
})

t.test('panel ids are unique and the layout fits the 24-column grid without overlaps', async (t) => {
  const ids = dashboard.panels.map((p) => p.id)
  t.equal(new Set(ids).size, ids.length, 'unique ids')
  const taken = new Set<string>()
  for (const p of dashboard.panels) {
    const { x, y, w, h } = p.gridPos
    t.ok(x >= 0 && w > 0 && x + w <= 24, `${p.title}: within the grid`)
    for (let dx = 0; dx < w; dx++) {
      for (let dy = 0; dy < h; dy++) {
        const cell = `${x + dx},${y + dy}`
        if (taken.has(cell)) t.fail(`${p.title} overlaps another panel at ${cell}`)
        taken.add(cell)
      }
    }
  }
})

t.test('the dashboard covers what issue 18 asks for', async (t) => {
  const text = JSON.stringify(dashboard.panels)
  for (const metric of [
    'dynacache_http_request_duration_seconds_count',
    'dynacache_http_request_duration_seconds_bucket',
    'dynacache_cache_reads_total',
    'dynacache_dynamo_call_duration_seconds_count',
    'dynacache_dynamo_call_duration_seconds_bucket',
    'dynacache_dynamo_call_errors_total',
    'dynacache_dynamo_breaker_state',
    'dynacache_queue_jobs',
    'dynacache_queue_oldest_waiting_job_age_seconds',
    'dynacache_exports_finished_total',
    'dynacache_redis_up',
    'dynacache_http_refusals_total',
  ]) {
    t.ok(text.includes(metric), metric)
  }
  t.match(text, /outcome=~\\"hit\|stale\|miss\\"/, 'hit ratio per table')
  t.match(text, /queue=\\"batch-write\\"/, 'batches')
})
