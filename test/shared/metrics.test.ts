import { Histogram, Registry } from 'prom-client'
import t from 'tap'
import { createMetrics } from '../../src/shared/metrics.ts'

/** The exposition lines of one metric, for comparing two registries. */
const linesOf = (text: string, name: string) => text.split('\n').filter((l) => l.startsWith(name))

/** prom-client's own histogram with the app's name and buckets, in a registry of its own. */
function referenceHistogram() {
  const registry = new Registry()
  const reference = new Histogram({
    name: 'dynacache_http_request_duration_seconds',
    help: 'reference',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  })
  return { registry, reference }
}

t.test('observeHttp (label sets made once, updated in place) renders exactly what prom-client observe() does', async (t) => {
  const m = createMetrics({ defaultMetrics: false })
  const { registry, reference } = referenceHistogram()
  const calls: Array<[string, string, number, number]> = [
    ['GET', '/tables/:table/items', 200, 0.0004],
    ['GET', '/tables/:table/items', 200, 0.003],
    ['GET', '/tables/:table/items', 200, 0.001],
    ['GET', '/tables/:table/items', 200, 7],
    ['GET', '/tables/:table/items', 304, 0.0002],
    ['POST', '/exports', 202, 0.02],
    ['GET', '/tables/:table/items', 200, 0.003],
  ]
  for (const [method, route, status, seconds] of calls) {
    m.observeHttp(method, route, status, seconds)
    reference.observe({ method, route, status_code: String(status) }, seconds)
  }
  const name = 'dynacache_http_request_duration_seconds_'
  t.same(linesOf(await m.render(), name), linesOf(await registry.metrics(), name))
  t.match(await m.render(), /dynacache_http_request_duration_seconds_count\{method="GET",route="\/tables\/:table\/items",status_code="200"\} 5/)
})

t.test('countCacheRead counts every read, the first and the later ones alike', async (t) => {
  const m = createMetrics({ defaultMetrics: false })
  for (let i = 0; i < 3; i++) m.countCacheRead('orders', 'hit')
  m.countCacheRead('orders', 'miss')
  m.countCacheRead('nope', 'miss', false)
  const text = await m.render()
  t.match(text, /dynacache_cache_reads_total\{table="orders",outcome="hit"\} 3/)
  t.match(text, /dynacache_cache_reads_total\{table="orders",outcome="miss"\} 1/)
  t.match(text, /dynacache_cache_reads_total\{table="_other",outcome="miss"\} 1/)
  t.notMatch(text, /outcome="stale"/, 'no series for outcomes never seen')
})

t.test('bound observers and counters (the hit lane, per route) add to the same series as the plain calls', async (t) => {
  const m = createMetrics({ defaultMetrics: false })
  const { registry, reference } = referenceHistogram()
  const route = '/tables/:table/items'
  const ok = m.httpObserver('GET', route, 200)
  const notModified = m.httpObserver('GET', route, 304)
  t.equal(m.httpObserver('GET', route, 200), ok, 'one observer per label set')
  for (const seconds of [0.0004, 0.003, 9]) {
    ok(seconds)
    reference.observe({ method: 'GET', route, status_code: '200' }, seconds)
  }
  m.observeHttp('GET', route, 200, 0.02)
  reference.observe({ method: 'GET', route, status_code: '200' }, 0.02)
  notModified(0.0001)
  reference.observe({ method: 'GET', route, status_code: '304' }, 0.0001)
  const name = 'dynacache_http_request_duration_seconds_'
  t.same(linesOf(await m.render(), name), linesOf(await registry.metrics(), name))

  const hits = m.cacheReadCounter('orders', 'hit')
  hits()
  m.countCacheRead('orders', 'hit')
  hits()
  m.cacheReadCounter('invoices', 'hit')
  const text = await m.render()
  t.match(text, /dynacache_cache_reads_total\{table="orders",outcome="hit"\} 3/)
  t.notMatch(text, /table="invoices"/, 'binding alone counts nothing')
})

t.test('queue metrics: a queue that could not start is asked for again at the next scrape, not failed for good', async (t) => {
  const metrics = createMetrics({ defaultMetrics: false })
  const fake = {
    getJobCounts: async () => ({ waiting: 3, active: 1 }),
    getJobs: async () => [],
  }
  let calls = 0
  metrics.addQueueCollectors(
    {
      names: ['q'],
      // The first start fails (a Redis version check that timed out); producers.started() replaces it.
      queue: async () => {
        calls++
        if (calls === 1) throw new Error('Command timed out')
        return fake
      },
      ready: () => true,
    },
    1000,
  )
  const value = (text: string, line: RegExp) => Number(line.exec(text)?.[1])
  const first = await metrics.render()
  t.equal(value(first, /^dynacache_queue_scrape_success (\S+)$/m), 0)
  // One reading serves one scrape (its gauges are collected together), and is dropped right after it.
  await new Promise((resolve) => setImmediate(resolve))
  const second = await metrics.render()
  t.equal(value(second, /^dynacache_queue_scrape_success (\S+)$/m), 1)
  t.equal(value(second, /^dynacache_queue_jobs\{queue="q",state="waiting"\} (\S+)$/m), 3)
})
