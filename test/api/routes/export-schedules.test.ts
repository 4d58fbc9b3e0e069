import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import t from 'tap'
import { createLogger } from '../../../src/shared/logger.ts'
import { createRedisKeys } from '../../../src/shared/redis/keys.ts'
import { startWorkerFleet, type WorkerFleet } from '../../../src/workers/fleet.ts'
import { build, testConfig, uniquePrefix } from '../../helpers/app.ts'
import { startServices } from '../../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../../helpers/tables.ts'
import { sleep, waitFor } from '../../helpers/wait.ts'

// Two tenants (acme, globex) on two tables of one shape; one API and a fleet of 3 worker processes' worth of workers.
const services = await startServices(t)
const dynamo = testDynamo(t, services.dynamoEndpoint)
for (const table of ['sched-eu', 'sched-us']) {
  await createTable(dynamo, table, { pk: 'S', sk: 'N' }, { byKind: { kind: 'S', sk: 'N' } })
  await putItems(
    dynamo,
    table,
    Array.from({ length: 40 }, (_, i) => ({ pk: { S: `p${i % 4}` }, sk: { N: String(i) }, kind: { S: `k${i % 2}` }, from: { S: table } })),
  )
}
const KEY = { acme: 'acme-export-key-00000001', globex: 'globex-export-key-000001', acmeRead: 'acme-read-key-0000000001' } as const
const bearer = (key: string) => ({ authorization: `Bearer ${key}` })
const dir = await mkdtemp(join(tmpdir(), 'dc-schedules-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const keysFile = join(dir, 'keys.json')
await writeFile(
  keysFile,
  JSON.stringify([
    { key: KEY.acme, scopes: ['export'], tenant: 'acme' },
    { key: KEY.globex, scopes: ['export'], tenant: 'globex' },
    { key: KEY.acmeRead, scopes: ['read'], tenant: 'acme' },
  ]),
)
const redis = new Redis(services.redisUrl)
t.teardown(() => redis.quit())
const prefix = uniquePrefix()
const overrides = { REDIS_PREFIX: prefix, API_KEYS_FILE: keysFile, EXPORT_DIR: join(dir, 'exports'), EXPORT_SEGMENTS: '2' }
const app = await build(t, services, overrides)
const scheduleQueue = app.queues.queue('export-schedule')

const post = (url: string, key: string, payload?: object) => app.inject({ method: 'POST', url, headers: bearer(key), ...(payload ? { payload } : {}) })
const get = (url: string, key: string) => app.inject({ url, headers: bearer(key) })
const definition = { table: 'sched-eu', format: 'csv', query: { pk: 'p1' }, fields: ['sk', 'from'] }

async function startFleet(config: Record<string, string>, n: number): Promise<WorkerFleet[]> {
  const fleets: WorkerFleet[] = []
  for (let i = 0; i < n; i++) {
    const cfg = testConfig(services, config)
    fleets.push(await startWorkerFleet(cfg, createLogger(cfg, `worker-${i}`)))
  }
  return fleets
}

/** Every export of the tenant's history made by the schedule, oldest first. */
async function runsOf(key: string, scheduleId: string) {
  const all: Array<{ id: string; schedule: string | null; scheduledAt: string | null; status: string; createdAt: string }> = []
  let cursor: string | null = null
  do {
    const page: { exports: typeof all; cursor: string | null } = (
      await get(`/exports?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, key)
    ).json()
    all.push(...page.exports)
    cursor = page.cursor
  } while (cursor)
  return all.filter((e) => e.schedule === scheduleId).reverse()
}

t.test('a cron that does not parse, a bad time zone or a bad export definition is 400 before anything is stored', async (t) => {
  const cases: Array<[string, object, string]> = [
    ['a value out of range', { cron: '61 * * * *', ...definition }, 'DC_ERR_VALIDATION'],
    ['words', { cron: 'every minute', ...definition }, 'DC_ERR_VALIDATION'],
    ['4 fields', { cron: '* * * *', ...definition }, 'DC_ERR_VALIDATION'],
    ['7 fields', { cron: '* * * * * * *', ...definition }, 'DC_ERR_VALIDATION'],
    ['an unknown time zone', { cron: '0 6 * * *', timezone: 'Mars/Olympus_Mons', ...definition }, 'DC_ERR_VALIDATION'],
    ['an unknown index', { cron: '0 6 * * *', ...definition, index: 'nope' }, 'DC_ERR_INDEX_NOT_FOUND'],
    ['a bad filter', { cron: '0 6 * * *', ...definition, filter: [{ attr: 'x', op: 'zz', value: 1 }] }, 'DC_ERR_INVALID_FILTER'],
    ['200 fields', { cron: '0 6 * * *', ...definition, fields: Array.from({ length: 200 }, (_, i) => `f${i}`) }, 'DC_ERR_VALIDATION'],
    ['a bad email', { cron: '0 6 * * *', ...definition, notify: 'not-an-email' }, 'DC_ERR_VALIDATION'],
    ['no cron', { ...definition }, 'DC_ERR_VALIDATION'],
  ]
  for (const [what, payload, code] of cases) {
    const res = await post('/exports/schedules', KEY.acme, payload)
    t.equal(res.statusCode, 400, `${what}: 400`)
    t.equal(res.json().code, code, `${what}: ${code} (${res.json().message})`)
  }
  t.equal(await redis.exists(createRedisKeys(prefix).exportSchedules()), 0, 'no schedule record')
  t.equal(await scheduleQueue.getJobSchedulersCount(), 0, 'no job scheduler')
  t.same((await get('/exports/schedules', KEY.acme)).json(), { schedules: [] })
})

t.test('an every-minute schedule and a time zone: the next run is where the pattern says, in that zone', async (t) => {
  const every = await post('/exports/schedules', KEY.acme, { cron: '* * * * *', ...definition })
  t.equal(every.statusCode, 201, every.body)
  const next = Date.parse(every.json().nextRunAt)
  t.equal(next % 60_000, 0, 'on a whole minute')
  t.ok(next > Date.now() - 1000 && next <= Date.now() + 60_000, 'within the next minute')
  // 06:00 in Kolkata (UTC+05:30) is 00:30 UTC.
  const kolkata = await post('/exports/schedules', KEY.acme, { cron: '0 6 * * *', timezone: 'Asia/Kolkata', ...definition })
  t.equal(kolkata.statusCode, 201, kolkata.body)
  t.match(kolkata.json().nextRunAt, /T00:30:00\.000Z$/)
  for (const s of [every.json(), kolkata.json()])
    t.equal((await app.inject({ method: 'DELETE', url: s.links.self, headers: bearer(KEY.acme) })).statusCode, 204)
  t.equal(await scheduleQueue.getJobSchedulersCount(), 0, 'deleting removes the job schedulers')
})

t.test('per tenant: a tenant sees and manages only its own schedules; every route is 404 for another tenant', async (t) => {
  const acme = (await post('/exports/schedules', KEY.acme, { cron: '0 6 * * *', ...definition })).json()
  const globex = (await post('/exports/schedules', KEY.globex, { cron: '0 7 * * *', timezone: 'Europe/Paris', ...definition, table: 'sched-us' })).json()
  t.same(
    (await get('/exports/schedules', KEY.acme)).json().schedules.map((s: { id: string }) => s.id),
    [acme.id],
  )
  t.same(
    (await get('/exports/schedules', KEY.globex)).json().schedules.map((s: { id: string }) => s.id),
    [globex.id],
  )
  for (const [key, other] of [
    [KEY.acme, globex],
    [KEY.globex, acme],
  ] as const) {
    t.equal((await get(other.links.self, key)).statusCode, 404, 'GET')
    t.equal((await post(other.links.pause, key)).statusCode, 404, 'pause')
    t.equal((await post(other.links.resume, key)).statusCode, 404, 'resume')
    const del = await app.inject({ method: 'DELETE', url: other.links.self, headers: bearer(key) })
    t.same([del.statusCode, del.json().code], [404, 'DC_ERR_SCHEDULE_NOT_FOUND'], 'DELETE')
  }
  t.equal((await get('/exports/schedules', KEY.acmeRead)).statusCode, 403, 'the export scope is needed')
  t.equal(await scheduleQueue.getJobSchedulersCount(), 2, "the other tenant's attempts changed nothing")
  const paused = (await post(acme.links.pause, KEY.acme)).json()
  t.same([paused.paused, paused.nextRunAt], [true, null], 'paused: no next run')
  t.equal(await scheduleQueue.getJobSchedulersCount(), 1, 'its job scheduler is gone while paused')
  const resumed = (await post(acme.links.resume, KEY.acme)).json()
  t.same([resumed.paused, resumed.nextRunAt !== null], [false, true], 'resumed: a next run again')
  for (const [key, s] of [
    [KEY.acme, acme],
    [KEY.globex, globex],
  ] as const)
    await app.inject({ method: 'DELETE', url: s.links.self, headers: bearer(key) })
  t.equal(await scheduleQueue.getJobSchedulersCount(), 0)
})

t.test("'every minute' sped up with a 6-field cron (every 3 s): across a fleet of 3 workers each tick runs exactly once, as an ordinary export", async (t) => {
  const fleet = await startFleet(overrides, 3)
  t.teardown(() => Promise.all(fleet.map((f) => f.close(3000))))
  const created = await post('/exports/schedules', KEY.acme, { cron: '*/3 * * * * *', ...definition })
  t.equal(created.statusCode, 201, created.body)
  const schedule = created.json()
  // Waits for the runs, however slow the machine: no assumption on how long a tick takes to run.
  await waitFor('4 runs', async () => (await runsOf(KEY.acme, schedule.id)).length >= 4, 120_000, 250)
  await post(schedule.links.pause, KEY.acme)
  await sleep(500)
  const runs = await runsOf(KEY.acme, schedule.id)
  const ticks = runs.map((r) => Date.parse(r.scheduledAt!))
  t.equal(new Set(ticks).size, runs.length, `${runs.length} runs for ${new Set(ticks).size} ticks: never two runs for one tick`)
  t.ok(
    ticks.every((tick) => tick % 3000 === 0),
    'each run is for a tick of the pattern',
  )
  const span = (Math.max(...ticks) - Math.min(...ticks)) / 3000 + 1
  t.ok(runs.length <= span, `${runs.length} runs over a window of ${span} ticks: no more runs than ticks`)
  t.same((await get('/exports', KEY.globex)).json().exports, [], "the other tenant's history has none of them")
  const done = await Promise.all(
    runs.map((r) =>
      waitFor(
        `run ${r.id}`,
        async () => {
          const v = (await get(`/exports/${r.id}`, KEY.acme)).json()
          return ['completed', 'failed'].includes(v.status) && v
        },
        60_000,
      ),
    ),
  )
  t.same(
    done.map((v) => [v.status, v.processedItems, v.fields, v.query]),
    done.map(() => ['completed', 10, ['sk', 'from'], { pk: 'p1' }]),
    'each run is an ordinary export, completed',
  )
  const csv = (await get(`/exports/${done[0].id}/download`, KEY.acme)).body
  t.equal(csv.split('\r\n')[0], 'sk,from')
  const paused = runs.length
  await sleep(4000)
  t.equal((await runsOf(KEY.acme, schedule.id)).length, paused, 'a paused schedule starts nothing')
  await app.inject({ method: 'DELETE', url: schedule.links.self, headers: bearer(KEY.acme) })
})

t.test('a run the tenant quota refuses is logged and skipped, and the schedule keeps running', async (t) => {
  // Only schedule workers and a quota of 1: the first run's export stays queued and holds the slot.
  const own = { ...overrides, REDIS_PREFIX: uniquePrefix(), TENANT_EXPORTS_MAX: '1' }
  const api = await build(t, services, own)
  const [fleet] = await startFleet({ ...own, WORKER_QUEUES: 'export-schedule' }, 1)
  t.teardown(() => fleet!.close(3000))
  const queue = api.queues.queue('export-schedule')
  const created = await api.inject({
    method: 'POST',
    url: '/exports/schedules',
    headers: bearer(KEY.globex),
    payload: { cron: '*/2 * * * * *', ...definition },
  })
  t.equal(created.statusCode, 201, created.body)
  const results = await waitFor(
    '3 ticks handled',
    async () => {
      const jobs = await queue.getJobs(['completed', 'failed'])
      return jobs.length >= 3 && jobs
    },
    60_000,
    250,
  )
  await api.inject({ method: 'POST', url: `${created.json().links.pause}`, headers: bearer(KEY.globex) })
  t.same(
    results.filter((j) => j.failedReason).map((j) => j.failedReason),
    [],
    'no run failed or crashed',
  )
  const values = results.map((j) => j.returnvalue as { exportId?: string; skipped?: string; reason?: string })
  t.equal(values.filter((v) => v.exportId).length, 1, 'one run started an export')
  t.ok(values.filter((v) => v.skipped === 'refused' && v.reason === 'DC_ERR_EXPORT_QUOTA').length >= 2, 'the later ticks were refused by the quota and skipped')
  const history = (await api.inject({ url: '/exports', headers: bearer(KEY.globex) })).json().exports
  t.equal(history.length, 1, 'only the admitted run is in the history')
})
