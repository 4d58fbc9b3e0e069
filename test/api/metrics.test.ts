import { Queue, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import t from 'tap'
import { auth, build } from '../helpers/app.ts'
import { startDynamoProxy } from '../helpers/dynamo-proxy.ts'
import { startServices } from '../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../helpers/tables.ts'

const services = await startServices(t, { ownRedis: true })
const proxy = await startDynamoProxy(services.dynamoEndpoint)
t.teardown(() => proxy.close())
const dynamo = testDynamo(t, services.dynamoEndpoint)
await createTable(dynamo, 'metered', { id: 'S' })
await putItems(
  dynamo,
  'metered',
  Array.from({ length: 5 }, (_, i) => ({ id: { S: `m${i}` } })),
)

// The queue values are read from Redis within METRICS_SCRAPE_TIMEOUT_MS at scrape time; this file checks
// what they say, so a loaded machine must not turn them into a timeout (the last test here reads with Redis down).
const app = await build(t, { ...services, dynamoEndpoint: proxy.endpoint }, { METRICS_SCRAPE_TIMEOUT_MS: '10000' })

const scrape = async () => {
  // Metrics of a request are counted in onResponse, which may run just after inject() resolves.
  await new Promise((r) => setTimeout(r, 20))
  const res = await app.inject({ url: '/metrics', headers: auth('admin') })
  if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}: ${res.body}`)
  return res.body
}

/** The value of one sample: metric name plus every label given (in any order), or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!match || match[1] !== name) continue
    const have = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]))
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(match[3])
  }
  return undefined
}

t.test('/metrics needs the admin key', async (t) => {
  t.equal((await app.inject('/metrics')).statusCode, 401)
  t.equal((await app.inject({ url: '/metrics', headers: auth('read') })).statusCode, 403)
  const ok = await app.inject({ url: '/metrics', headers: auth('admin') })
  t.equal(ok.statusCode, 200)
  t.match(ok.headers['content-type'], /^text\/plain; version=0\.0\.4/)
})

t.test('cache outcomes per table and DynamoDB latency after some reads', async (t) => {
  const read = (url: string, headers: Record<string, string> = {}) => app.inject({ url, headers: { ...auth('read'), ...headers } })
  t.equal((await read('/tables/metered/items?limit=2')).headers['x-cache'], 'MISS')
  t.equal((await read('/tables/metered/items?limit=2')).headers['x-cache'], 'HIT')
  t.equal((await read('/tables/metered/items/m1')).headers['x-cache'], 'MISS')
  t.equal((await read('/tables/metered/items/m1')).headers['x-cache'], 'HIT')
  await read('/tables')
  await read('/tables')

  const text = await scrape()
  t.equal(sample(text, 'dynacache_cache_reads_total', { table: 'metered', outcome: 'miss' }), 2)
  t.equal(sample(text, 'dynacache_cache_reads_total', { table: 'metered', outcome: 'hit' }), 2)
  t.equal(sample(text, 'dynacache_cache_reads_total', { table: '*', outcome: 'hit' }), 1, 'the table list counts as *')
  for (const operation of ['Scan', 'GetItem', 'DescribeTable', 'ListTables']) {
    const count = sample(text, 'dynacache_dynamo_call_duration_seconds_count', { operation }) ?? 0
    t.ok(count > 0, `${operation} calls timed (${count})`)
    t.ok((sample(text, 'dynacache_dynamo_call_duration_seconds_sum', { operation }) ?? 0) > 0, `${operation} took some time`)
  }
  const route = { method: 'GET', route: '/tables/:table/items', status_code: '200' }
  t.equal(sample(text, 'dynacache_http_request_duration_seconds_count', route), 2, 'HTTP durations by route pattern and status')
  t.equal(sample(text, 'dynacache_http_request_duration_seconds_count', { route: '/metrics', status_code: '401' }), 1)
})

t.test('DynamoDB errors by operation, and errors and bypasses of cached reads', async (t) => {
  proxy.setFaults({ fail500: 1 })
  const failed = await app.inject({ url: '/tables/metered/items?limit=4', headers: { ...auth('read') } })
  proxy.setFaults({})
  t.equal(failed.statusCode, 503, failed.body)
  const text = await scrape()
  t.ok((sample(text, 'dynacache_dynamo_call_errors_total', { operation: 'Scan' }) ?? 0) >= 1, 'a failed Scan is counted')
  t.equal(sample(text, 'dynacache_cache_reads_total', { table: 'metered', outcome: 'error' }), 1)
})

t.test('breaker state, SSE connections and the process metrics are exposed', async (t) => {
  app.metrics.sseConnections.inc()
  app.metrics.sseConnections.inc()
  app.metrics.sseConnections.dec()
  const text = await scrape()
  t.equal(sample(text, 'dynacache_sse_connections'), 1)
  t.equal(sample(text, 'dynacache_dynamo_breaker_state', { state: app.gateway.breakerState() }), 1)
  t.ok(sample(text, 'process_cpu_user_seconds_total') !== undefined)
})

/** Scrapes until `done` holds (a job may not be processed yet), at most ~30 s. */
async function scrapeUntil(done: (text: string) => boolean) {
  let text = await scrape()
  for (let i = 0; i < 300 && !done(text); i++) {
    await new Promise((r) => setTimeout(r, 100))
    text = await scrape()
  }
  return text
}

t.test('queue depths and recent job durations per queue', async (t) => {
  // Set-up goes through a patient connection of its own; the app's fail-fast one is what is measured.
  const connection = new Redis(services.redisUrl, { maxRetriesPerRequest: null })
  const producer = new Queue('cache-maintenance', { connection, prefix: app.keys.queuePrefix })
  // The first job claims to have been added a minute ago: the oldest waiting job's age shows it.
  await producer.add('cache-maintenance', { kind: 'purge', table: 'metered' }, { timestamp: Date.now() - 60_000 })
  await producer.add('cache-maintenance', { kind: 'purge', table: 'metered' })
  let text = await scrapeUntil((s) => sample(s, 'dynacache_queue_scrape_success') === 1)
  t.equal(sample(text, 'dynacache_queue_jobs', { queue: 'cache-maintenance', state: 'waiting' }), 2)
  const age = sample(text, 'dynacache_queue_oldest_waiting_job_age_seconds', { queue: 'cache-maintenance' })
  t.ok(age !== undefined && age >= 60 && age < 600, `oldest waiting job is ${age}s old`)
  t.equal(sample(text, 'dynacache_queue_oldest_waiting_job_age_seconds', { queue: 'email' }), 0, 'no job waits: 0')
  for (const name of app.queues.names) t.ok(sample(text, 'dynacache_queue_jobs', { queue: name, state: 'active' }) !== undefined, name)

  // A stand-in processor: the real ones are tested with the workers; here only the timing matters.
  const workerConnection = new Redis(services.redisUrl, { maxRetriesPerRequest: null })
  const worker = new Worker('cache-maintenance', () => new Promise((r) => setTimeout(r, 50)), {
    connection: workerConnection,
    prefix: app.keys.queuePrefix,
  })
  t.teardown(async () => {
    await Promise.all([worker.close(), producer.close()])
    workerConnection.disconnect()
    connection.disconnect()
  })
  text = await scrapeUntil((s) => sample(s, 'dynacache_queue_jobs', { queue: 'cache-maintenance', state: 'completed' }) === 2)
  t.equal(sample(text, 'dynacache_queue_jobs', { queue: 'cache-maintenance', state: 'waiting' }), 0)
  t.equal(sample(text, 'dynacache_queue_oldest_waiting_job_age_seconds', { queue: 'cache-maintenance' }), 0)
  const p50 = sample(text, 'dynacache_queue_recent_job_duration_seconds', { queue: 'cache-maintenance', quantile: '0.5' })
  t.ok(p50 !== undefined && p50 >= 0.04 && p50 < 5, `median job duration ${p50}s`)
})

t.test('Redis up and fleet-wide export outcomes, read from Redis', async (t) => {
  let text = await scrapeUntil((s) => sample(s, 'dynacache_exports_finished_total', { status: 'failed' }) !== undefined)
  t.equal(sample(text, 'dynacache_redis_up'), 1)
  t.equal(sample(text, 'dynacache_exports_finished_total', { status: 'failed' }), 0, 'no export has ended yet')
  const connection = new Redis(services.redisUrl)
  t.teardown(() => connection.disconnect())
  await connection.hincrby(app.keys.exportOutcomes, 'failed', 2)
  await connection.hincrby(app.keys.exportOutcomes, 'completed', 5)
  text = await scrapeUntil((s) => sample(s, 'dynacache_exports_finished_total', { status: 'completed' }) === 5)
  t.equal(sample(text, 'dynacache_exports_finished_total', { status: 'failed' }), 2)
  t.equal(sample(text, 'dynacache_exports_finished_total', { status: 'cancelled' }), 0)
})

t.test('rate-limit refusals are counted by their error code', async (t) => {
  const limited = await build(t, { ...services, dynamoEndpoint: proxy.endpoint }, { RATE_LIMIT_PER_MIN: '2' })
  const statuses: number[] = []
  for (let i = 0; i < 3; i++) statuses.push((await limited.inject({ url: '/tables', headers: auth('read') })).statusCode)
  t.same(statuses, [200, 200, 429])
  await new Promise((r) => setTimeout(r, 20))
  const text = (await limited.inject({ url: '/metrics', headers: auth('admin') })).body
  t.equal(sample(text, 'dynacache_http_refusals_total', { code: 'DC_ERR_RATE_LIMITED' }), 1)
})

t.test('each app has its own registry', async (t) => {
  const other = await build(t, { ...services, dynamoEndpoint: proxy.endpoint })
  const text = (await other.inject({ url: '/metrics', headers: auth('admin') })).body
  t.equal(sample(text, 'dynacache_cache_reads_total', { table: 'metered', outcome: 'hit' }), undefined)
  t.equal(sample(text, 'dynacache_sse_connections'), 0)
})

t.test('with Redis down /metrics still answers at once, without queue values', async (t) => {
  await services.redis!.kill()
  // It answers (a hang would end in the test's timeout), at worst after METRICS_SCRAPE_TIMEOUT_MS, and says
  // the queue read failed instead of waiting for Redis.
  const text = await scrape()
  t.equal(sample(text, 'dynacache_queue_scrape_success'), 0)
  t.equal(sample(text, 'dynacache_queue_jobs', { queue: 'cache-maintenance', state: 'waiting' }), undefined)
  // The client notices the closed connection on its next event-loop turns, not at once.
  const down = await scrapeUntil((s) => sample(s, 'dynacache_redis_up') === 0)
  t.equal(sample(down, 'dynacache_redis_up'), 0)
  t.equal(sample(down, 'dynacache_exports_finished_total', { status: 'failed' }), undefined, 'unread, not a drop to 0')
  await services.redis!.start()
})
