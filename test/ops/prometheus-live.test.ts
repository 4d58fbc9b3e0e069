import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Queue, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import t from 'tap'
import { auth, build, KEYS } from '../helpers/app.ts'
import { startDynamoProxy } from '../helpers/dynamo-proxy.ts'
import { expandVariables, loadDashboard, loadRules, type PrometheusServer, RULES_PATH, samples, startPrometheus } from '../helpers/prometheus.ts'
import { startServices } from '../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../helpers/tables.ts'
import { waitFor } from '../helpers/wait.ts'

// A real API scraped by a real Prometheus that evaluates ops/prometheus/rules.yml; every rule and every
// dashboard expression is then queried through Prometheus's HTTP API.

const services = await startServices(t)
const proxy = await startDynamoProxy(services.dynamoEndpoint)
t.teardown(() => proxy.close())
const dynamo = testDynamo(t, services.dynamoEndpoint)
await createTable(dynamo, 'orders', { id: 'S' })
await createTable(dynamo, 'users', { id: 'S' })
await putItems(
  dynamo,
  'orders',
  Array.from({ length: 10 }, (_, i) => ({ id: { S: `o${i}` } })),
)
await putItems(
  dynamo,
  'users',
  Array.from({ length: 10 }, (_, i) => ({ id: { S: `u${i}` }, name: { S: `user ${i}` } })),
)

const app = await build(
  t,
  { ...services, dynamoEndpoint: proxy.endpoint },
  {
    BREAKER_FAILURES: '3',
    // A scrape that misses its Redis read drops the queue series, and Prometheus marks them stale: on a
    // loaded machine the default 500 ms can miss, so this test allows nearly all of Prometheus's own 1 s.
    METRICS_SCRAPE_TIMEOUT_MS: '900',
    // Open until the test ends, however long a busy machine takes to get there.
    BREAKER_RECOVERY_MS: '600000',
    // Stale after ttl x 0.002: query pages (600 s) after 1.2 s; items and scan pages (a year) never in this test.
    STALE_THRESHOLD: '0.002',
    QUERY_RESULTS_TTL: '600',
    TABLE_ITEMS_TTL: String(365 * 86400),
  },
)
// The Streams follower's state as its workers keep it in Redis (none runs here): one followed table, one
// shard held and caught up, so the streams rules and panels have data.
const seededAt = Date.now()
await app.redis.sadd(app.keys.streamsFollowed, 'orders')
await app.redis.hset(app.keys.streamFollow('orders', 'stats'), 'applied', 5, 'lost', 0)
await app.redis.hset(app.keys.streamFollow('orders', 'live'), 'e:s1', seededAt + 3_600_000, 't:s1', seededAt, 'c:s1', seededAt - 1000)
await app.listen({ port: 0, host: '127.0.0.1' })
const { port } = app.server.address() as AddressInfo

// The same rules with every `for:` cut to 1s, so an alert fires within the test; expressions are unchanged.
const dir = await mkdtemp(join(tmpdir(), 'dc-rules-live-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const original = await readFile(RULES_PATH, 'utf8')
const quick = original.replace(/^(\s+)for: \S+$/gm, '$1for: 1s')
await writeFile(join(dir, 'rules.yml'), quick)

const prometheus: PrometheusServer = await startPrometheus(t, {
  target: `127.0.0.1:${port}`,
  credentials: KEYS.admin,
  ruleFiles: [join(dir, 'rules.yml')],
})

const read = async (url: string) => {
  const res = await app.inject({ url, headers: auth('read') })
  return { status: res.statusCode, cache: res.headers['x-cache'] }
}
const has = async (expr: string) => samples(await prometheus.query(expr)).length > 0

t.test('the rules copy only shortens for:', async (t) => {
  const strip = (s: string) => s.replace(/^\s+for: \S+$/gm, '')
  t.equal(strip(quick), strip(original))
  t.ok((original.match(/^\s+for: /gm) ?? []).length >= 9)
})

t.test('Prometheus scrapes the API with the admin key', async (t) => {
  const target = await waitFor('the API target up', async () => {
    const body = await prometheus.get<{ data: { activeTargets: Array<{ health: string; lastError: string; scrapeUrl: string }> } }>('/api/v1/targets')
    return body.data.activeTargets.find((a) => a.health === 'up')
  })
  t.equal(target.scrapeUrl, `http://127.0.0.1:${port}/metrics`)
  await waitFor('a few scrapes', () => has('count_over_time(up{job="dynacache-api"}[1m]) >= 3'))
  t.ok(await has('dynacache_queue_scrape_success == 1'), 'queue depths read from Redis')
})

t.test('reads that miss, hit and go stale on two tables, a batch and an export', async (t) => {
  // Two rounds, each seen by a scrape: a counter's first sample has no earlier one to take a rate from.
  for (const round of [1, 2]) {
    t.same(await read(`/tables/orders/items/o${round}`), { status: 200, cache: 'MISS' })
    t.same(await read(`/tables/orders/items/o${round}`), { status: 200, cache: 'HIT' })
    t.same(await read(`/tables/users/items?limit=${round}`), { status: 200, cache: 'MISS' })
    t.same(await read(`/tables/users/items?limit=${round}`), { status: 200, cache: 'HIT' })
    await waitFor(`round ${round} scraped`, () => has(`count(dynacache_cache_reads_total{table=~"orders|users",outcome="hit"} >= ${round}) == 2`))
  }
  t.same(await read('/tables/users/query?pk=u3'), { status: 200, cache: 'MISS' })
  const stale = await waitFor('a stale query page', async () => (await read('/tables/users/query?pk=u3')).cache === 'STALE')
  t.ok(stale)

  const batch = await app.inject({
    method: 'POST',
    url: '/tables/orders/batches',
    headers: { ...auth('write'), 'content-type': 'application/json' },
    payload: { format: 'typed', operations: [{ put: { id: { S: 'b1' } } }] },
  })
  t.equal(batch.statusCode, 202, batch.body)
  const created = await app.inject({ method: 'POST', url: '/exports', headers: auth('export'), payload: { table: 'users', format: 'csv' } })
  t.equal(created.statusCode, 202, created.body)
  const cancelled = await app.inject({ method: 'DELETE', url: `/exports/${created.json().id}`, headers: auth('export') })
  t.equal(cancelled.statusCode, 200, cancelled.body)

  // No worker runs for the batch: it waits in its queue. A stand-in worker completes one maintenance job and
  // fails another for good, for the job duration and failed-jobs expressions.
  const connection = new Redis(services.redisUrl, { maxRetriesPerRequest: null })
  const workerConnection = new Redis(services.redisUrl, { maxRetriesPerRequest: null })
  const producer = new Queue('cache-maintenance', { connection, prefix: app.keys.queuePrefix })
  const worker = new Worker(
    'cache-maintenance',
    async (job) => {
      if (job.data.table === 'boom') throw new Error('boom')
    },
    { connection: workerConnection, prefix: app.keys.queuePrefix },
  )
  t.teardown(async () => {
    await Promise.all([worker.close(), producer.close()])
    workerConnection.disconnect()
    connection.disconnect()
  })
  await producer.add('cache-maintenance', { kind: 'purge', table: 'orders' })
  await producer.add('cache-maintenance', { kind: 'purge', table: 'boom' }, { attempts: 1 })
  await waitFor('the waiting batch scraped', () => has('dynacache_queue_jobs{queue="batch-write",state="waiting"} == 1'))
  await waitFor('the failed job scraped', () => has('dynacache_queue_jobs{queue="cache-maintenance",state="failed"} == 1'))
  await waitFor('the completed job scraped', () => has('dynacache_queue_recent_job_duration_seconds{queue="cache-maintenance"}'))
  await waitFor('the cancelled export scraped', () => has('dynacache_exports_finished_total{status="cancelled"} == 1'))
  const ratios = await waitFor('hit ratios of both tables', async () => {
    const found = samples(await prometheus.query('job_table:dynacache_cache_hit_ratio:rate5m{table=~"orders|users"}'))
    return found.length === 2 && found.every((s) => s.value > 0) ? found : undefined
  })
  for (const s of ratios) t.ok(s.value > 0 && s.value < 1, `hit ratio of ${s.metric.table}: ${s.value}`)
})

t.test('DynamoDB answers 500s: the breaker opens and its alert fires', async (t) => {
  proxy.setFaults({ fail500: 1 })
  t.teardown(() => proxy.setFaults({}))
  // One failure first, seen by a scrape, so the error counter has a rate once the others follow.
  t.equal((await read('/tables/orders/items/f0')).status, 503)
  await waitFor('the first error scraped', () => has('dynacache_dynamo_call_errors_total{error="InternalServerError"}'))
  for (let i = 1; app.gateway.breakerState() !== 'open'; i++) {
    if (i > 20) throw new Error('the breaker did not open after 20 failed reads')
    t.equal((await read(`/tables/orders/items/f${i}`)).status, 503)
  }
  // Refused by the open breaker at once.
  t.equal((await read('/tables/orders/items/f99')).status, 503)

  const firing = (alert: string) => has(`ALERTS{alertname="${alert}",alertstate="firing"}`)
  t.equal(await waitFor('DynacacheBreakerOpen firing', () => firing('DynacacheBreakerOpen')), true, 'DynacacheBreakerOpen fires')
  t.equal(await waitFor('DynacacheDynamoErrorRateHigh firing', () => firing('DynacacheDynamoErrorRateHigh')), true, 'DynacacheDynamoErrorRateHigh fires')
  const [alert] = samples(await prometheus.query('ALERTS{alertname="DynacacheBreakerOpen"}'))
  t.match(alert?.metric, { severity: 'critical', instance: `127.0.0.1:${port}`, job: 'dynacache-api' })
  t.notOk(await firing('DynacacheRedisUnavailable'), 'Redis is fine')
  await waitFor('DynacacheJobsFailing firing', () => firing('DynacacheJobsFailing'))
  const jobs = samples(await prometheus.query('ALERTS{alertname="DynacacheJobsFailing",alertstate="firing"}'))
  t.same(
    jobs.map((j) => j.metric.queue),
    ['cache-maintenance'],
    'DynacacheJobsFailing fires for the queue whose job failed',
  )
})

t.test('every rule is healthy and every rule expression answers', async (t) => {
  const groups = await loadRules()
  const loaded = await prometheus.get<{ data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> } }>('/api/v1/rules')
  const states = loaded.data.groups.flatMap((g) => g.rules)
  t.equal(states.length, groups.flatMap((g) => g.rules).length, 'every rule loaded')
  for (const r of states) t.equal(r.health, 'ok', `${r.name} evaluates${r.lastError ? `: ${r.lastError}` : ''}`)

  // Recording rules this scenario gives no data: no request was refused with 429.
  const noData = new Set(['job_code:dynacache_http_refusals:rate5m'])
  // Alerts whose expression matches in this scenario (DynamoDB failing, a job failed for good).
  const matching = new Set(['DynacacheBreakerOpen', 'DynacacheDynamoErrorRateHigh', 'DynacacheJobsFailing'])
  for (const rule of groups.flatMap((g) => g.rules)) {
    const name = rule.record ?? rule.alert!
    const answer = await prometheus.query(rule.expr)
    t.equal(answer.status, 'success', `${name}: ${answer.error ?? 'answers'}`)
    if (rule.record) {
      const recorded = samples(await prometheus.query(rule.record)).length
      if (noData.has(name)) t.equal(recorded, 0, `${name}: no data in this scenario`)
      else t.ok(recorded > 0, `${name} has data (${recorded} series)`)
    } else if (matching.has(name)) {
      t.ok(samples(answer).length > 0, `${name} matches`)
    }
  }
})

t.test('every dashboard panel expression answers from this Prometheus, with data', async (t) => {
  const { targets, variables } = await loadDashboard()
  t.ok(targets.length >= 25, `${targets.length} panel expressions`)
  // Targets this scenario gives no data: no request was refused with 429.
  const noData = new Set(['Errors and refusals/B'])
  for (const target of targets) {
    const name = `${target.panel}/${target.refId}`
    const answer = await prometheus.query(expandVariables(target.expr))
    t.equal(answer.status, 'success', `${name}: ${answer.error ?? 'answers'}`)
    const found = samples(answer).length
    if (noData.has(name)) t.equal(found, 0, `${name}: no data in this scenario`)
    else t.ok(found > 0, `${name} has data (${found} series)`)
  }
  // Grafana's label_values(metric{...}, label) is the labels API with a match[] selector.
  for (const v of variables.filter((v) => v.type === 'query')) {
    const query = (v.query as { query: string }).query
    const [, selector, label] = /^label_values\((.+),\s*(\w+)\)$/.exec(query) ?? []
    t.ok(selector && label, `${v.name} is a label_values query`)
    const values = await prometheus.get<{ status: string; data: string[] }>(
      `/api/v1/label/${label}/values?match[]=${encodeURIComponent(expandVariables(selector!))}`,
    )
    t.equal(values.status, 'success')
    t.ok(values.data.length > 0, `$${v.name}: ${values.data.join(', ')}`)
  }
})

t.test('every metric the rules and the dashboard name is one the API exports', async (t) => {
  const text = (await app.inject({ url: '/metrics', headers: auth('admin') })).body
  const exported = new Set([...text.matchAll(/^# HELP (\S+)/gm)].map((m) => m[1]!))
  const exprs = [...(await loadRules()).flatMap((g) => g.rules.map((r) => r.expr)), ...(await loadDashboard()).targets.map((x) => x.expr)]
  // Metric names, not recording rule names (those have colons around them).
  const names = new Set(exprs.flatMap((e) => [...e.matchAll(/(?<![\w:])((?:dynacache|process|nodejs)_[a-z0-9_]+)(?![\w:])/g)].map((m) => m[1]!)))
  t.ok(names.size >= 15, `${names.size} metric names`)
  for (const name of names) {
    const base = name.replace(/_(bucket|count|sum)$/, '')
    t.ok(exported.has(name) || exported.has(base), `${name} is exported`)
  }
})
