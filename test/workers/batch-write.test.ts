import { promisify } from 'node:util'
import { gzip as gzipCallback } from 'node:zlib'
import { type AttributeValue, ScanCommand, type ScanCommandOutput } from '@aws-sdk/client-dynamodb'
import { type Job, Worker } from 'bullmq'
import t from 'tap'
import { type BatchOperation, batchFingerprint, createBatchStore, encodeOperations } from '../../src/shared/batches/index.ts'
import { type AttributeMap, itemToTypedJson, typedJsonToAttributeValues } from '../../src/shared/dynamo/item-json.ts'
import { createLogger } from '../../src/shared/logger.ts'
import { closeRedis, createRedis } from '../../src/shared/redis/index.ts'
import createBatchWriteProcessor, { type BatchWriteOptions } from '../../src/workers/batch-write.ts'
import { createWorkerDeps } from '../../src/workers/deps.ts'
import { auth, build, configEnv, startQueues, testConfig } from '../helpers/app.ts'
import { startDynamoProxy } from '../helpers/dynamo-proxy.ts'
import { startEntry, waitForLog } from '../helpers/processes.ts'
import { startServices } from '../helpers/services.ts'
import { createTable, testDynamo } from '../helpers/tables.ts'
import type { Tap } from '../helpers/tap.ts'
import { sleep } from '../helpers/wait.ts'

const gzip = promisify(gzipCallback)

// The 20,000 puts alone take ~36 s on some idle machines: the file's limit, like the waits below, is only a safety net.
t.setTimeout(300_000)
const services = await startServices(t)
const proxy = await startDynamoProxy(services.dynamoEndpoint)
t.teardown(() => proxy.close())
const viaProxy = { ...services, dynamoEndpoint: proxy.endpoint }
const dynamo = testDynamo(t, services.dynamoEndpoint)
for (const table of ['bulk', 'killed', 'refused', 'resumed', 'budgeted']) await createTable(dynamo, table, { id: 'S' })

const app = await build(t, viaProxy)
// The workers' calls get a generous DYNAMO_TIMEOUT_MS: with 16 BatchWriteItems in flight against one dynalite,
// a call past testConfig's 2 s would be abandoned and sent again with the same items, so they would reach
// DynamoDB twice. These tests are about unprocessed items, throttling and restarts, not timeouts.
const WORKER_OVERRIDES = { REDIS_PREFIX: app.config.REDIS_PREFIX, DYNAMO_TIMEOUT_MS: '20000' }
const config = testConfig(viaProxy, WORKER_OVERRIDES)
const baseConfig = config
const store = createBatchStore({ redis: app.redis, keys: app.keys, retentionDays: config.JOB_RETENTION_DAYS })
await startQueues(app, ['batch-write'])
const queue = app.queues.queue('batch-write')

/** Every BatchWriteItem the test workers' clients sent: when (the worker's clock), to which table, how many requests. */
const sent: Array<{ at: number; table: string; requests: number }> = []

/** A real BullMQ Worker in this process running the batch-write processor with `options`. */
async function startBatchWorker(t: Tap, options: Partial<BatchWriteOptions>, concurrency = 2, config = baseConfig) {
  const deps = createWorkerDeps(config, createLogger(config, 'test-batch-worker'))
  const blocking = createRedis({ url: config.REDIS_URL!, role: 'background', name: 'test-blocking' })
  // The gateway calls the client right after the write budget admitted the call: this is when it left.
  deps.dynamo.raw.middlewareStack.add(
    (next) => async (args) => {
      const items = (args.input as { RequestItems?: Record<string, unknown[]> }).RequestItems ?? {}
      for (const [table, requests] of Object.entries(items)) sent.push({ at: Date.now(), table, requests: requests.length })
      return next(args)
    },
    { step: 'initialize', name: 'testSentAt' },
  )
  const worker = new Worker('batch-write', createBatchWriteProcessor(deps, options) as (job: Job) => Promise<unknown>, {
    connection: blocking,
    prefix: deps.keys.queuePrefix,
    concurrency,
  })
  worker.on('error', () => {})
  await worker.waitUntilReady()
  t.teardown(async () => {
    await worker.close(true)
    await Promise.all([deps.close(), closeRedis(blocking)])
  })
  return worker
}

/**
 * Typed JSON of item `i`. Every 20th is rich (a 37-digit number, binary, a set, a map), so exactness
 * shows; the rest stay small, because dynalite writes rich items several times slower.
 */
const typedItem = (i: number): Record<string, Record<string, unknown>> & { id: { S: string } } => {
  const id = { S: `k${String(i).padStart(5, '0')}` }
  if (i % 20 !== 0) return { id, v: { S: `value ${i} ü "q"` }, n: { N: String(i * 7) } }
  return {
    id,
    n: { N: `${i}.${'123456789'.repeat(5).slice(0, 37 - String(i).length)}` },
    b: { B: Buffer.from([i & 255, (i >> 8) & 255, 7]).toString('base64') },
    ss: { SS: [`a${i}`, `b${i}`] },
    m: { M: { deep: { L: [{ BOOL: true }, { NULL: true }, { N: '-0.5' }] } } },
    v: { S: `value ${i} ü "q"` },
  }
}

/** One comparable text per item: attributes and set members sorted. */
function canonical(typed: Record<string, Record<string, unknown>>): string {
  const sortValue = (v: Record<string, unknown>): unknown => {
    const [type, x] = Object.entries(v)[0]!
    if (type === 'SS' || type === 'NS' || type === 'BS') return { [type]: [...(x as string[])].sort() }
    if (type === 'M')
      return {
        M: Object.fromEntries(
          Object.keys(x as object)
            .sort()
            .map((k) => [k, sortValue((x as Record<string, Record<string, unknown>>)[k]!)]),
        ),
      }
    if (type === 'L') return { L: (x as Array<Record<string, unknown>>).map(sortValue) }
    return v
  }
  return JSON.stringify(
    Object.fromEntries(
      Object.keys(typed)
        .sort()
        .map((k) => [k, sortValue(typed[k]!)]),
    ),
  )
}

/** Every item of a table, read straight from dynalite (4 parallel segments). */
async function scanTable(table: string): Promise<AttributeMap[]> {
  const segments = await Promise.all(
    Array.from({ length: 4 }, async (_, segment) => {
      const items: AttributeMap[] = []
      let start: Record<string, AttributeValue> | undefined
      do {
        const page: ScanCommandOutput = await dynamo.send(new ScanCommand({ TableName: table, Segment: segment, TotalSegments: 4, ExclusiveStartKey: start }))
        items.push(...(page.Items ?? []))
        start = page.LastEvaluatedKey
      } while (start)
      return items
    }),
  )
  return segments.flat()
}

/** Asserts the table holds exactly `sent` (typed JSON), nothing more or less. */
async function assertTableExact(t: Pick<typeof import('tap').default, 'equal'>, table: string, sent: Array<ReturnType<typeof typedItem>>) {
  const stored = await scanTable(table)
  t.equal(stored.length, sent.length, `${table} holds ${stored.length} items`)
  const byId = new Map(stored.map((item) => [item.id!.S!, canonical(JSON.parse(itemToTypedJson(item)))]))
  const mismatched = sent.filter((item) => byId.get(item.id.S) !== canonical(item))
  t.equal(mismatched.length, 0, `every item exactly as sent${mismatched[0] ? `; first mismatch ${mismatched[0].id.S}` : ''}`)
}

const post = async (table: string, items: Array<ReturnType<typeof typedItem>>) => {
  const res = await app.inject({
    method: 'POST',
    url: `/tables/${table}/batches`,
    headers: auth('write'),
    // Typed attribute values: binary, sets and 38-digit numbers, exact (documents are the default format).
    payload: { format: 'typed', operations: items.map((item) => ({ put: item })) },
  })
  if (res.statusCode !== 202) throw new Error(`batch refused: ${res.body.slice(0, 300)}`)
  return res.json().id as string
}

/** Waits for a batch to finish; `timeoutMs` is only a safety limit (the 20,000 puts take up to ~36 s on an idle machine). */
async function settled(id: string, timeoutMs = 120_000, until: (status: string) => boolean = (s) => s === 'completed' || s === 'failed') {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const view = (await store.view(id))!
    if (until(view.status)) return view
    await sleep(100)
  }
  throw new Error(`batch ${id} did not finish: ${JSON.stringify(await store.view(id, 3))}`)
}

/** How often each item id reached DynamoDB in a forwarded BatchWriteItem. */
function reachedCounts(table: string): Map<string, number> {
  const counts = new Map<string, number>()
  for (const request of proxy.requests('BatchWriteItem', table)) {
    const id = (request.id as { S: string }).S
    counts.set(id, (counts.get(id) ?? 0) + 1)
  }
  return counts
}

t.test('20,000 puts, 30% of each call unprocessed and 5% of calls throttled: every item exact, written 20,000', async (t) => {
  const items = Array.from({ length: 20_000 }, (_, i) => typedItem(i))
  const ids = [await post('bulk', items.slice(0, 10_000)), await post('bulk', items.slice(10_000))]
  proxy.reset()
  proxy.setFaults({ unprocessed: 0.3, throttle: 0.05 })
  t.teardown(() => proxy.setFaults({}))
  const started = Date.now()
  await startBatchWorker(t, { parallelCalls: 8, retry: { maxCalls: 60, initialDelayMs: 5, maxDelayMs: 100 } })
  const views = await Promise.all(ids.map((id) => settled(id)))
  const ms = Date.now() - started
  proxy.setFaults({})

  t.same(
    views.map((v) => [v.status, v.total, v.written, v.failed]),
    [
      ['completed', 10_000, 10_000, 0],
      ['completed', 10_000, 10_000, 0],
    ],
  )
  t.equal(views[0]!.written + views[1]!.written, 20_000, 'written 20,000, failed 0')
  const calls = proxy.calls.filter((c) => c.operation === 'BatchWriteItem')
  const forwarded = calls.filter((c) => c.result === 'forwarded')
  t.ok(
    forwarded.every((c) => (c.requests?.length ?? 0) <= 25),
    'no call carries more than 25 operations',
  )
  const reached = reachedCounts('bulk')
  t.equal(reached.size, 20_000, 'every item reached DynamoDB')
  t.ok(
    [...reached.values()].every((n) => n === 1),
    'and none twice',
  )
  const unprocessed = forwarded.reduce((sum, c) => sum + (c.unprocessed ?? 0), 0)
  const throttled = calls.filter((c) => c.result === 'throttle').length
  t.ok(
    unprocessed > 5000 && throttled > 0,
    `${forwarded.length} calls reached DynamoDB, ${unprocessed} requests handed back unprocessed, ${throttled} calls throttled`,
  )
  t.equal(views[0]!.attempts + views[1]!.attempts >= forwarded.length - throttled, true, `status counts ${views[0]!.attempts + views[1]!.attempts} calls`)
  t.comment(`20,000 puts written in ${ms} ms`)
  await assertTableExact(t, 'bulk', items)
})

t.test('SIGKILL mid-batch and restart: completes, confirmed operations are never sent again, table exact', async (t) => {
  const items = Array.from({ length: 3000 }, (_, i) => typedItem(i))
  const id = await post('killed', items)
  proxy.reset()
  proxy.setFaults({ unprocessed: 0.3 })
  t.teardown(() => proxy.setFaults({}))
  const env = { ...configEnv(config), WORKER_QUEUES: 'batch-write', WORKER_CONCURRENCY: '1', JOB_STALL_MS: '2000', LOG_LEVEL: 'info' }

  const began = Date.now()
  const first = startEntry(t, 'src/workers/main.ts', env)
  await waitForLog(first, /worker\.started/)
  const ready = Date.now()
  let view = (await store.view(id))!
  while (view.written < 900) {
    await sleep(20)
    view = (await store.view(id))!
  }
  first.signal('SIGKILL')
  t.equal(await first.exited, 'SIGKILL')
  const killedAt = (await store.view(id))!
  const snapshot = (await store.load(id))!
  const confirmed = new Set(items.map((item, i) => (snapshot.isConfirmed(i) ? item.id.S : '')).filter(Boolean))
  t.equal(confirmed.size, killedAt.written, `${confirmed.size} operations were confirmed when the worker was killed`)
  t.ok(killedAt.written < 3000, 'mid-batch')
  const callsBeforeRestart = proxy.calls.length

  const killed = Date.now()
  const second = startEntry(t, 'src/workers/main.ts', env)
  // Up to ~30 s: the first test's worker ran BullMQ's stalled check with its default 30 s interval, and no
  // other worker checks for stalled jobs until that interval has run out. A safety limit above it.
  await waitForLog(second, /batch\.run/, 60_000)
  const resumed = Date.now()
  const done = await settled(id)
  t.comment(
    `worker up in ${ready - began} ms, killed ${killed - ready} ms later at ${killedAt.written} written; resumed after ${resumed - killed} ms, done ${Date.now() - resumed} ms later`,
  )
  t.match(done, { status: 'completed', total: 3000, written: 3000, failed: 0 })
  t.match(second.output(), /"msg":"batch\.run".*"pending":(\d+)/, 'the restarted worker resumed the batch')
  const pending = Number(/"msg":"batch\.run".*?"pending":(\d+)/.exec(second.output())?.[1])
  t.ok(pending <= 3000 - confirmed.size, `it had ${pending} operations left to send`)

  const reached = reachedCounts('killed')
  const resentConfirmed = [...confirmed].filter((key) => (reached.get(key) ?? 0) !== 1)
  t.same(resentConfirmed, [], 'every operation confirmed before the kill reached DynamoDB exactly once')
  const afterRestart = proxy.calls.slice(callsBeforeRestart).flatMap((c) => (c.result === 'forwarded' ? (c.requests ?? []) : []))
  t.notOk(
    afterRestart.some((r) => confirmed.has((r.id as { S: string }).S)),
    'the restarted run sent none of them',
  )
  const total = [...reached.values()].reduce((a, b) => a + b, 0)
  t.ok(total - 3000 <= 4 * 25, `${total - 3000} operations were in flight at the kill and sent again (at most 4 calls of 25)`)
  t.equal(reached.size, 3000)
  await assertTableExact(t, 'killed', items)
})

t.test('DYNAMO_WRITE_BUDGET: the calls wait for budget, second by second; nothing is lost or failed', async (t) => {
  // 100 write units a second for 600 small items: spread over at least 5 seconds, whatever the parallelism.
  const budgeted = testConfig(viaProxy, { ...WORKER_OVERRIDES, DYNAMO_WRITE_BUDGET: '100' })
  await startBatchWorker(t, { parallelCalls: 4 }, 2, budgeted)
  const items = Array.from({ length: 600 }, (_, i) => ({ id: { S: `w${String(i).padStart(4, '0')}` }, v: { N: String(i) } }))
  proxy.reset()
  const started = Date.now()
  const view = await settled(await post('budgeted', items as never))
  const ms = Date.now() - started
  t.match(view, { status: 'completed', written: 600, failed: 0 })
  // The budget admits a call by the second on the worker's clock at admission, and the worker sends it at
  // once: group the calls by the second they left the worker, not by their arrival at the proxy, which can
  // fall in the next second. (Not by x-amz-date either: the SDK shifts its signing clock by the skew it reads
  // from the whole-second Date of the last answer, up to a second behind.)
  const calls = sent.filter((c) => c.table === 'budgeted')
  t.equal(calls.length, proxy.count('BatchWriteItem', 'budgeted'), `each of the ${calls.length} calls reached DynamoDB once`)
  const perSecond = new Map<number, number>()
  for (const call of calls) {
    const second = Math.floor(call.at / 1000)
    perSecond.set(second, (perSecond.get(second) ?? 0) + call.requests)
  }
  const busiest = Math.max(...perSecond.values())
  t.comment(`600 puts in ${ms} ms; items per second: ${[...perSecond.values()].join(', ')}`)
  // 600 items at no more than 125 a second span at least 5 one-second windows (first and last partial).
  t.ok(perSecond.size >= 5, `spread over ${perSecond.size} seconds (${ms} ms)`)
  // One call (25 items) may be admitted just below the limit and take the second past it, or be admitted
  // at the very end of a second and leave just after it.
  t.ok(busiest <= 125, `at most 125 items were sent to DynamoDB in any second (${busiest})`)
  t.equal((await scanTable('budgeted')).length, 600, 'every item is in the table')
})

async function storeBatch(table: string, operations: BatchOperation[]) {
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

t.test('operations DynamoDB refuses are recorded one by one and the rest is written', async (t) => {
  // Bypasses the API's checks, as a table changed after the batch was accepted would.
  const operations: BatchOperation[] = Array.from({ length: 50 }, (_, i) => ({
    kind: 'put',
    attributes: typedJsonToAttributeValues({ id: { S: `r${i}` }, ...(i === 7 || i === 31 ? { big: { S: 'x'.repeat(410 * 1024) } } : {}) }),
  }))
  const id = await storeBatch('refused', operations)
  await app.queues.enqueue('batch-write', { id, table: 'refused' }, { jobId: id })
  await startBatchWorker(t, {})
  const view = await settled(id)
  t.match(view, { status: 'completed', total: 50, written: 48, failed: 2 })
  t.same(
    view.errors.map((e) => e.index),
    [7, 31],
  )
  t.match(view.errors[0]!.reason, /Item size has exceeded the maximum allowed size/)
  const stored = (await scanTable('refused')).map((i) => i.id!.S).sort()
  t.equal(stored.length, 48)
  t.notOk(stored.includes('r7') || stored.includes('r31'))
})

t.test('a batch that ran out of attempts stays failed, and a retry from Bull Board resumes without rewriting', async (t) => {
  const items = Array.from({ length: 500 }, (_, i) => typedItem(i))
  const id = await storeBatch(
    'resumed',
    items.map((item) => ({ kind: 'put', attributes: typedJsonToAttributeValues(item) })),
  )
  proxy.reset()
  proxy.setFaults({ unprocessed: 0.5 })
  t.teardown(() => proxy.setFaults({}))
  await app.queues.enqueue('batch-write', { id, table: 'resumed' }, { jobId: id, attempts: 2, backoff: { type: 'fixed', delay: 10 } })
  await startBatchWorker(t, { retry: { maxCalls: 2, initialDelayMs: 1, maxDelayMs: 5 } })
  const failed = await settled(id)
  t.match(failed, { status: 'failed', error: /operations not written after 2 calls/ })
  t.ok(failed.written > 0 && failed.written < 500, `${failed.written} of 500 written before the attempts ran out`)
  const job = (await queue.getJob(id))!
  t.equal(await job.getState(), 'failed', "the job is in BullMQ's failed list")
  t.equal(job.attemptsMade, 2)

  proxy.setFaults({})
  await job.retry('failed') // what Bull Board's retry button calls
  const done = await settled(id, undefined, (status) => status === 'completed')
  t.match(done, { status: 'completed', written: 500, failed: 0, error: null })
  const reached = reachedCounts('resumed')
  t.equal(reached.size, 500)
  t.ok(
    [...reached.values()].every((n) => n === 1),
    'no operation reached DynamoDB twice',
  )
  await assertTableExact(t, 'resumed', items)
})
