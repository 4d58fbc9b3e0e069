import { type Job, Queue } from 'bullmq'
import { Redis } from 'ioredis'
import t from 'tap'
import { PREFETCH_SCHEDULER_ID } from '../../src/workers/fleet.ts'
import { auth, build, configEnv, testConfig } from '../helpers/app.ts'
import { startDynamoProxy } from '../helpers/dynamo-proxy.ts'
import { type ChildHandle, startEntry, waitForLog } from '../helpers/processes.ts'
import { startServices } from '../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../helpers/tables.ts'
import { sleep, waitFor } from '../helpers/wait.ts'

const services = await startServices(t)
const proxy = await startDynamoProxy(services.dynamoEndpoint)
t.teardown(() => proxy.close())
const viaProxy = { ...services, dynamoEndpoint: proxy.endpoint }
const dynamo = testDynamo(t, services.dynamoEndpoint)
for (const table of ['hot1', 'hot2', 'cold1', 'keys']) await createTable(dynamo, table, { id: 'S' })
for (const table of ['hot1', 'hot2', 'cold1']) await putItems(dynamo, table, [{ id: { S: 'a' } }])
await putItems(
  dynamo,
  'keys',
  Array.from({ length: 50 }, (_, i) => ({ id: { S: `k${i}` }, v: { N: String(i) } })),
)

const redis = new Redis(services.redisUrl)
t.teardown(() => redis.quit())

function workers(t: { teardown(fn: () => unknown): void }, n: number, env: Record<string, string>): ChildHandle[] {
  return Array.from({ length: n }, () => startEntry(t, 'src/workers/main.ts', env))
}

t.test('three workers: one prefetch schedule, each run once, popular tables fresh, others untouched', async (t) => {
  const overrides = { PREFETCH_INTERVAL_S: '5', PREFETCH_TOP: '2', LOG_LEVEL: 'info' }
  const app = await build(t, viaProxy, overrides)
  const config = testConfig(viaProxy, { ...overrides, REDIS_PREFIX: app.config.REDIS_PREFIX })
  const read = (url: string) => app.inject({ url, headers: auth('read') })
  for (let i = 0; i < 6; i++) await read('/tables/hot1/items')
  for (let i = 0; i < 4; i++) await read('/tables/hot2/items')
  await read('/tables/cold1/items')
  await app.cache.stats.flush()
  await app.inject({ method: 'DELETE', url: '/cache', headers: auth('admin') })
  proxy.reset()

  const fleet = workers(t, 3, configEnv(config))
  await Promise.all(fleet.map((w) => waitForLog(w, /worker\.started/)))
  const queue = new Queue('prefetch', { connection: redis, prefix: app.keys.queuePrefix })
  t.teardown(() => queue.close())
  t.same(
    (await queue.getJobSchedulers()).map((s) => s.key),
    [PREFETCH_SCHEDULER_ID],
    'one schedule, however many workers',
  )

  // Runs are due every 5 s; the limit is only a safety net for a loaded machine.
  const completed = await waitFor(
    'two scheduled prefetch runs',
    async () => {
      const runs = await queue.getCompleted()
      return runs.length >= 2 && runs
    },
    60_000,
  )
  t.ok(completed.length >= 2, `${completed.length} scheduled runs completed`)
  t.equal(new Set(completed.map((j) => j.id)).size, completed.length, 'distinct runs')
  t.ok(
    completed.every((j) => j.attemptsMade <= 1),
    'each run processed once',
  )
  const runs = completed.map((j) => j.returnvalue as { tables: string[] })
  t.same(runs[runs.length - 1]!.tables, ['hot1', 'hot2'], 'the two most popular tables')
  t.equal(proxy.count('DescribeTable', 'hot1'), 1, 'hot1 details loaded once across the runs (then fresh)')
  t.equal(proxy.count('Scan', 'hot1'), 1, 'hot1 first page loaded once')
  t.equal(proxy.count(undefined, 'cold1'), 0, 'the unpopular table was not touched')
  for (const url of ['/tables/hot1', '/tables/hot1/items', '/tables/hot2/items']) {
    t.equal((await read(url)).headers['x-cache'], 'HIT', `${url} is fresh after prefetch`)
  }
  t.equal((await read('/tables/cold1/items')).headers['x-cache'], 'MISS')

  const warm = await app.inject({ method: 'POST', url: '/cache/warmup', headers: auth('admin'), payload: { tables: ['cold1'] } })
  t.equal(warm.statusCode, 202, warm.body)
  t.type(warm.json().jobId, 'string')
  const denied = await app.inject({ method: 'POST', url: '/cache/warmup', headers: auth('admin'), payload: { tables: ['bad name!'] } })
  t.equal(denied.statusCode, 400)
  await Promise.all(fleet.map((w) => w.stop()))
})

t.test('two workers, 500 stale reads over 50 keys: one refresh per key; a SIGKILLed worker loses no job', async (t) => {
  // Fresh for 3 s: long enough that a refreshed key is still fresh when the polling below reaches it
  // on a loaded machine, short enough to wait out once.
  // Over a thousand reads in a minute from one key: the rate limit is not what this test is about.
  const overrides = {
    TABLE_ITEMS_TTL: '60',
    STALE_THRESHOLD: '0.05',
    JOB_STALL_MS: '1500',
    WORKER_CONCURRENCY: '2',
    LOG_LEVEL: 'info',
    RATE_LIMIT_PER_MIN: '1000000',
  }
  const app = await build(t, viaProxy, overrides)
  // The workers get a longer DYNAMO_TIMEOUT_MS: a GetItem held up past testConfig's 2 s (the proxy runs in this
  // process, busy with the 500 reads below) would be abandoned and made again, a second read of its key. Not
  // longer still: the jobs taken over from the killed worker wait DYNAMO_TIMEOUT_MS + 1 s for its cache locks.
  const config = testConfig(viaProxy, { ...overrides, REDIS_PREFIX: app.config.REDIS_PREFIX, DYNAMO_TIMEOUT_MS: '5000' })
  const read = (i: number) => app.inject({ url: `/tables/keys/items/k${i}`, headers: auth('read') })
  for (let i = 0; i < 50; i++) await read(i)
  await sleep(3100)
  // Slow DynamoDB down so refreshes are still in flight when a worker is killed.
  proxy.setFaults({ latencyMs: 150 })
  t.teardown(() => proxy.setFaults({}))
  proxy.reset()
  const [a, b] = workers(t, 2, configEnv(config))
  await Promise.all([waitForLog(a!, /worker\.started/), waitForLog(b!, /worker\.started/)])
  const stale = await Promise.all(Array.from({ length: 500 }, (_, n) => read(n % 50)))
  t.ok(
    stale.every((r) => r.headers['x-cache'] === 'STALE'),
    '500 stale answers at once',
  )
  await sleep(300)
  await a!.stop()
  t.comment('worker A killed with SIGKILL mid-run')

  // A key the killed worker was refreshing waits for its lock to be given up (DYNAMO_TIMEOUT_MS + 1 s) after
  // the job is taken over: the limit is only a safety net.
  const pending = new Set(Array.from({ length: 50 }, (_, i) => i))
  await waitFor(
    'every key refreshed',
    async () => {
      for (const i of [...pending]) {
        if ((await read(i)).headers['x-cache'] === 'HIT') pending.delete(i)
      }
      return pending.size === 0
    },
    60_000,
    200,
  ).catch(() => {})
  t.same([...pending], [], 'every key was refreshed (none lost with the killed worker)')

  // Reads first, then the jobs: a run that made a read is already counted among its job's runs.
  const reads = new Map<string, number>()
  for (const c of proxy.calls) {
    if (c.operation !== 'GetItem' || c.table !== 'keys' || c.result !== 'forwarded') continue
    const key = (c.key?.id as { S?: string } | undefined)?.S ?? '?'
    reads.set(key, (reads.get(key) ?? 0) + 1)
  }
  const queue = new Queue('cache-refresh', { connection: redis, prefix: app.keys.queuePrefix })
  t.teardown(() => queue.close())
  const jobs = await queue.getJobs(['completed', 'failed', 'active', 'waiting', 'delayed', 'prioritized'])
  const jobsOf = new Map<string, Job[]>()
  for (const job of jobs) {
    const key = (job.data as { resource: { params: { pk?: string } } }).resource.params.pk ?? '?'
    jobsOf.set(key, [...(jobsOf.get(key) ?? []), job])
  }
  // One read per key, plus one for each run again of a job (taken over from the killed worker, whose run
  // may have read) and for each job queued after an earlier refresh of the key had finished (the key went
  // stale again before the polling reached it). Jobs queued while one was pending are no excuse.
  const allowed = (list: Job[] = []) =>
    1 + list.reduce((n, j) => n + Math.max(0, j.attemptsStarted - 1) + (list.some((o) => o.finishedOn !== undefined && o.finishedOn <= j.timestamp) ? 1 : 0), 0)
  const keys = Array.from({ length: 50 }, (_, i) => `k${i}`)
  t.same(
    keys.filter((k) => !reads.has(k)),
    [],
    'every key was read from DynamoDB',
  )
  const gets = [...reads.values()].reduce((a, b) => a + b, 0)
  const detail = ([k, n]: [string, number]) =>
    `${k} read ${n}x, ${jobsOf.get(k)?.length ?? 0} jobs, ${jobsOf.get(k)?.reduce((m, j) => m + j.stalledCounter, 0) ?? 0} taken over`
  const repeated = [...reads].filter(([, n]) => n > 1)
  const takenOver = jobs.filter((j) => j.stalledCounter > 0).length
  t.comment(
    `${gets} GetItem calls for 50 keys from ${jobs.length} refresh jobs, ${takenOver} taken over from the killed worker; ${repeated.map(detail).join('; ') || 'no key read twice'}`,
  )
  const unexplained = [...reads].filter(([k, n]) => n > allowed(jobsOf.get(k))).map(detail)
  t.same(unexplained, [], 'one read per key, more only for a job taken over from the killed worker or a key stale again')
  t.equal(await queue.getFailedCount(), 0, 'no refresh job failed')
  await b!.stop()
})

t.test('SIGTERM during active jobs: exit 0 within SHUTDOWN_TIMEOUT_MS, no job failed or lost', async (t) => {
  const overrides = { TABLE_ITEMS_TTL: '20', STALE_THRESHOLD: '0.05', SHUTDOWN_TIMEOUT_MS: '4000', WORKER_CONCURRENCY: '4', LOG_LEVEL: 'info' }
  const app = await build(t, viaProxy, overrides)
  const config = testConfig(viaProxy, { ...overrides, REDIS_PREFIX: app.config.REDIS_PREFIX })
  for (let i = 0; i < 20; i++) await app.inject({ url: `/tables/keys/items/k${i}`, headers: auth('read') })
  await sleep(1100)
  proxy.setFaults({ latencyMs: 400 })
  t.teardown(() => proxy.setFaults({}))
  const [worker] = workers(t, 1, configEnv(config))
  await waitForLog(worker!, /worker\.started/)
  for (let i = 0; i < 20; i++) await app.inject({ url: `/tables/keys/items/k${i}`, headers: auth('read') })
  const queue = new Queue('cache-refresh', { connection: redis, prefix: app.keys.queuePrefix })
  t.teardown(() => queue.close())
  for (let i = 0; i < 50 && (await queue.getActiveCount()) === 0; i++) await sleep(50)
  t.ok((await queue.getActiveCount()) > 0, 'jobs are active when SIGTERM arrives')
  const started = Date.now()
  worker!.signal('SIGTERM')
  // close-with-grace exits 1 once SHUTDOWN_TIMEOUT_MS has passed: exit 0 is a stop within it.
  t.equal(await worker!.exited, 0, `exit code 0: stopped within SHUTDOWN_TIMEOUT_MS (${Date.now() - started} ms)`)
  t.equal(await queue.getFailedCount(), 0, 'no job failed')
  t.equal(await queue.getActiveCount(), 0, 'no job left active')
  const counts = await queue.getJobCounts('completed', 'waiting', 'delayed')
  t.equal((counts.completed ?? 0) + (counts.waiting ?? 0) + (counts.delayed ?? 0), 20, 'all 20 jobs are completed or still queued')
})
