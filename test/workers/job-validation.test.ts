import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { gzip as gzipCallback } from 'node:zlib'
import { ScanCommand } from '@aws-sdk/client-dynamodb'
import { Job, Worker } from 'bullmq'
import t from 'tap'
import { type BatchOperation, batchFingerprint, createBatchStore, encodeOperations } from '../../src/shared/batches/index.ts'
import type { WorkerConfig } from '../../src/shared/config.ts'
import { typedJsonToAttributeValues } from '../../src/shared/dynamo/item-json.ts'
import { createExportStore } from '../../src/shared/exports/store.ts'
import { createLogger } from '../../src/shared/logger.ts'
import { closeRedis, createRedis } from '../../src/shared/redis/index.ts'
import createBatchWriteProcessor from '../../src/workers/batch-write.ts'
import createCacheRefreshProcessor from '../../src/workers/cache-refresh.ts'
import { createWorkerDeps, type WorkerDeps } from '../../src/workers/deps.ts'
import createExportAssembleProcessor from '../../src/workers/export-assemble.ts'
import createExportSegmentProcessor from '../../src/workers/export-segment.ts'
import createPrefetchProcessor from '../../src/workers/prefetch.ts'
import { auth, build, startQueues, testConfig } from '../helpers/app.ts'
import { startDynamoProxy } from '../helpers/dynamo-proxy.ts'
import { startServices, type TestServices } from '../helpers/services.ts'
import { createTable, testDynamo } from '../helpers/tables.ts'
import type { Tap } from '../helpers/tap.ts'
import { waitFor } from '../helpers/wait.ts'

/**
 * Workers trust no job data: a job added by hand (Bull Board's "add job", redis-cli) that points a
 * batch at another table, names a denied table, or is not the job the API queued for its record, fails
 * as unrecoverable and writes nothing. Forged jobs are added straight to the real queues.
 */

const gzip = promisify(gzipCallback)
const services = await startServices(t)
const proxy = await startDynamoProxy(services.dynamoEndpoint)
t.teardown(() => proxy.close())
const viaProxy: TestServices = { ...services, dynamoEndpoint: proxy.endpoint }
const dynamo = testDynamo(t, services.dynamoEndpoint)
for (const table of ['alpha', 'beta', 'gamma', 'secret-vault']) await createTable(dynamo, table, { id: 'S' })
const exportDir = await mkdtemp(join(tmpdir(), 'dc-job-checks-'))
t.teardown(() => rm(exportDir, { recursive: true, force: true }))

const overrides = { TABLES_DENY: 'secret*', EXPORT_DIR: exportDir }
const app = await build(t, viaProxy, overrides)
const shared = { ...overrides, REDIS_PREFIX: app.config.REDIS_PREFIX, DYNAMO_TIMEOUT_MS: '20000' }
const store = createBatchStore({ redis: app.redis, keys: app.keys, retentionDays: app.config.JOB_RETENTION_DAYS })
const exports = createExportStore({ redis: app.redis, keys: app.keys })
await startQueues(app)

/** What the fleet gives each processor, built for `config`, closed with `t`. */
function workerDeps(t: Tap, config: WorkerConfig): WorkerDeps {
  const deps = createWorkerDeps(config, createLogger(config, 'test-worker'))
  t.teardown(() => deps.close())
  return deps
}

const deps = workerDeps(t, testConfig(viaProxy, shared))

async function storeBatch(table: string, ids: string[]) {
  const operations: BatchOperation[] = ids.map((id) => ({ kind: 'put', attributes: typedJsonToAttributeValues({ id: { S: id } }) }))
  const json = encodeOperations(operations)
  const { id } = await store.create({
    table,
    format: 'typed',
    total: operations.length,
    keyNames: ['id'],
    operations: await gzip(json),
    fingerprint: batchFingerprint(table, json),
  })
  return id
}

const itemsOf = async (table: string) => ((await dynamo.send(new ScanCommand({ TableName: table }))).Items ?? []).map((i) => i.id!.S!).sort()

/** Driver text that must never be in a record an API client reads. */
const DRIVER_TEXT = /ECONNREFUSED|127\.0\.0\.1|arn:aws/

t.test('forged batch-write jobs fail as unrecoverable and write nothing; the real job still works', async (t) => {
  const queue = app.queues.queue('batch-write')
  const real = await storeBatch('alpha', ['a1', 'a2'])
  const denied = await storeBatch('secret-vault', ['s1'])
  const forged = [
    // The real batch pointed at another table, under the batch's own job id.
    await queue.add('batch-write', { id: real, table: 'beta' }, { jobId: real }),
    // The real batch again, as a second job: not the job the API queued for it.
    await queue.add('batch-write', { id: real, table: 'alpha' }, { jobId: 'copied-by-hand' }),
    // A batch of a table TABLES_DENY hides, with everything else consistent.
    await queue.add('batch-write', { id: denied, table: 'secret-vault' }, { jobId: denied }),
    // Nonsense data.
    await queue.add('batch-write', { id: 42, table: ['alpha'] } as never, { jobId: 'nonsense' }),
  ]
  proxy.reset()
  const blocking = createRedis({ url: services.redisUrl, role: 'background', name: 'test-blocking' })
  const worker = new Worker('batch-write', createBatchWriteProcessor(deps) as (job: Job) => Promise<unknown>, {
    connection: blocking,
    prefix: app.keys.queuePrefix,
  })
  worker.on('error', () => {})
  t.teardown(async () => {
    await worker.close(true)
    await closeRedis(blocking)
  })
  const states = await waitFor(
    'the forged jobs to fail',
    async () => {
      const all = await Promise.all(forged.map(async (j) => ({ job: await Job.fromId(queue, j.id!), state: await queue.getJobState(j.id!) })))
      return all.every((s) => s.state === 'failed') && all
    },
    20_000,
  )
  for (const { job } of states) {
    t.match(job!.failedReason, /^Invalid batch-write job /, `${job!.id}: ${job!.failedReason}`)
    t.equal(job!.attemptsMade, 1, 'not retried')
  }
  t.equal(proxy.count('BatchWriteItem'), 0, 'no BatchWriteItem reached DynamoDB')
  for (const table of ['alpha', 'beta', 'secret-vault']) t.same(await itemsOf(table), [], `nothing in ${table}`)
  t.equal((await store.view(real))!.status, 'queued', 'the real batch is untouched by the forged jobs')
  t.match(await store.view(denied), { status: 'failed', error: /not allowed/ })

  // The job the API would queue (batch id = job id, the batch's table) goes through.
  await (await Job.fromId(queue, real))!.remove()
  await queue.add('batch-write', { id: real, table: 'alpha' }, { jobId: real })
  await waitFor('the real batch', async () => (await store.view(real))?.status === 'completed', 20_000)
  t.same(await itemsOf('alpha'), ['a1', 'a2'], 'written to its own table')
  t.same(await itemsOf('beta'), [])
})

t.test('forged export jobs fail as unrecoverable and scan nothing', async (t) => {
  const created = await app.inject({ method: 'POST', url: '/exports', headers: auth('export'), payload: { table: 'alpha', format: 'jsonl' } })
  t.equal(created.statusCode, 202, created.body)
  const { id } = created.json() as { id: string }
  const segments = app.queues.queue('export-segment')
  const assemble = app.queues.queue('export-assemble')
  const segment = createExportSegmentProcessor(deps)
  const assembleExport = createExportAssembleProcessor(deps)
  const total = (await exports.get(id))!.segments
  proxy.reset()
  const forgedSegments = [
    await segments.add('export-segment', { exportId: id, segment: 0, totalSegments: total }, { jobId: 'hand-made-segment' }),
    await segments.add('export-segment', { exportId: id, segment: total + 3, totalSegments: total + 4 }, { jobId: `${id}-${total + 3}` }),
    await segments.add('export-segment', { exportId: id, segment: -1, totalSegments: total }, { jobId: `${id}--1` }),
  ]
  for (const job of forgedSegments) {
    await t.rejects(segment(job as Job), { name: 'UnrecoverableError', message: /^Invalid export-segment job / }, `segment job ${job.id}`)
  }
  const forgedAssemble = await assemble.add('export-assemble', { exportId: id }, { jobId: 'hand-made-assemble' })
  await t.rejects(assembleExport(forgedAssemble as Job), { name: 'UnrecoverableError', message: /^Invalid export-assemble job / })
  t.equal(proxy.count('Scan'), 0, 'no Scan reached DynamoDB')
  t.same(await exports.checkpoints(id, total), Array(total).fill(null), 'no segment was claimed or checkpointed')
  t.equal((await exports.get(id))!.status, 'queued', 'the export is untouched')
})

t.test('forged cache-refresh and prefetch jobs never read a denied table', async (t) => {
  const refreshQueue = app.queues.queue('cache-refresh')
  const prefetchQueue = app.queues.queue('prefetch')
  const refresh = createCacheRefreshProcessor(deps)
  const prefetch = createPrefetchProcessor(deps)
  proxy.reset()
  const forged = [
    { resource: { table: 'secret-vault', kind: 'details', params: {} } },
    { resource: { table: 'secret-vault', kind: 'items', params: { limit: '50', view: 'document' } } },
    { resource: { table: 'alpha', kind: 'everything', params: {} } },
    { resource: { table: 'alpha', kind: 'details', params: { limit: 50 } } },
    { resource: null },
  ]
  for (const data of forged) {
    const job = await refreshQueue.add('cache-refresh', data as never)
    await t.rejects(refresh(job as Job), { name: 'UnrecoverableError', message: /^Invalid cache-refresh job / }, JSON.stringify(data))
  }
  const fine = await refreshQueue.add('cache-refresh', { resource: { table: 'alpha', kind: 'details', params: {} } })
  t.ok(await refresh(fine as Job), 'a refresh of an allowed table runs')

  const named = await prefetchQueue.add('prefetch', { tables: ['secret-vault', 'beta', '../x'] })
  const result = (await prefetch(named as Job)) as { tables: string[] }
  t.same(result.tables, ['beta'], 'a prefetch keeps only allowed, valid table names')
  const bad = await prefetchQueue.add('prefetch', { tables: 'secret-vault' } as never)
  await t.rejects(prefetch(bad as Job), { name: 'UnrecoverableError' })
  t.equal(proxy.calls.filter((c) => c.table === 'secret-vault').length, 0, 'no DynamoDB call for the denied table')
  t.ok(proxy.count('DescribeTable', 'alpha') + proxy.count('DescribeTable', 'beta') > 0, 'allowed tables were read')
})

t.test('export and batch errors recorded by workers carry no driver text', async (t) => {
  const dead = workerDeps(t, testConfig({ ...services, dynamoEndpoint: 'http://127.0.0.1:1' }, { ...shared, DYNAMO_TIMEOUT_MS: '2000' }))
  // An export whose segment fails for good: its `error` is what GET /exports/:id shows.
  const created = await app.inject({ method: 'POST', url: '/exports', headers: auth('export'), payload: { table: 'gamma', format: 'csv' } })
  const { id } = created.json() as { id: string }
  const job = (await Job.fromId(app.queues.queue('export-segment'), `${id}-0`))!
  job.attemptsMade = (job.opts.attempts ?? 1) - 1
  await t.rejects(createExportSegmentProcessor(dead)(job))
  const view = (await app.inject({ url: `/exports/${id}`, headers: auth('export') })).json() as { status: string; error: string }
  t.equal(view.status, 'failed')
  t.match(view.error, /^segment 0: /)
  t.notMatch(view.error, DRIVER_TEXT, `export error: ${view.error}`)

  // A batch whose last attempt fails: its `error` is what GET /batches/:id shows.
  const batch = await storeBatch('gamma', ['g1'])
  const batchJob = await app.queues.queue('batch-write').add('batch-write', { id: batch, table: 'gamma' }, { jobId: batch, attempts: 1 })
  await t.rejects(createBatchWriteProcessor(dead, { retry: { maxCalls: 2, initialDelayMs: 1, maxDelayMs: 5 } })(batchJob as Job))
  await batchJob.remove()
  const res = await app.inject({ url: `/batches/${batch}`, headers: auth('write') })
  t.equal(res.json().status, 'failed', res.body)
  t.notMatch(res.body, DRIVER_TEXT, `batch error: ${res.json().error}`)
  t.same(await itemsOf('gamma'), [])
})
