import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { DeleteTableCommand } from '@aws-sdk/client-dynamodb'
import { ListObjectsV2Command } from '@aws-sdk/client-s3'
import { Queue, Worker } from 'bullmq'
import { EventSource } from 'eventsource'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import t from 'tap'
import { buildApp } from '../../../src/api/app.ts'
import { DEFAULT_TENANT } from '../../../src/shared/access.ts'
import type { ExportRecord } from '../../../src/shared/exports/model.ts'
import { createExportStore } from '../../../src/shared/exports/store.ts'
import { createDownloadTokens } from '../../../src/shared/exports/tokens.ts'
import { createLogger } from '../../../src/shared/logger.ts'
import { createQueueProducers } from '../../../src/shared/queues/index.ts'
import { createRedisKeys } from '../../../src/shared/redis/keys.ts'
import { createWorkerDeps } from '../../../src/workers/deps.ts'
import createExportCleanupProcessor, { EXPORT_CLEANUP_SCHEDULER_ID } from '../../../src/workers/export-cleanup.ts'
import createExportSegmentProcessor from '../../../src/workers/export-segment.ts'
import { startWorkerFleet } from '../../../src/workers/fleet.ts'
import { auth, build, configEnv, testConfig, uniquePrefix } from '../../helpers/app.ts'
import { parseCsv } from '../../helpers/csv.ts'
import { startDynamoProxy } from '../../helpers/dynamo-proxy.ts'
import { startEntry, waitForLog } from '../../helpers/processes.ts'
import { S3RVER_CREDENTIALS, startS3 } from '../../helpers/s3.ts'
import { startServices, type TestServices } from '../../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../../helpers/tables.ts'
import { sleep, waitFor } from '../../helpers/wait.ts'

const ORDERS = 20_000
const STATUSES = ['open', 'shipped', 'closed']
const services = await startServices(t)
const proxy = await startDynamoProxy(services.dynamoEndpoint)
t.teardown(() => proxy.close())
const viaProxy: TestServices = { ...services, dynamoEndpoint: proxy.endpoint }
const dynamo = testDynamo(t, services.dynamoEndpoint)
await createTable(dynamo, 'orders', { PK: 'S', SK: 'N' }, { byStatus: { status: 'S', SK: 'N' } })
await createTable(dynamo, 'users', { id: 'S' })
await createTable(dynamo, 'secret-things', { id: 'S' })
await Promise.all([
  putItems(
    dynamo,
    'orders',
    Array.from({ length: ORDERS }, (_, i) => ({
      PK: { S: `c${i % 500}` },
      SK: { N: String(i) },
      status: { S: STATUSES[i % 3]! },
      qty: { N: String(i % 10) },
      note: { S: `${i % 7 === 0 ? '=' : ''}note ${'x'.repeat(120)}` },
    })),
  ),
  putItems(
    dynamo,
    'users',
    Array.from({ length: 30 }, (_, i) => ({ id: { S: `u${i}` }, name: { S: `User ${i}` } })),
  ),
])

const redis = new Redis(services.redisUrl)
t.teardown(() => redis.quit())
const exportDir = await mkdtemp(join(tmpdir(), 'dc-exports-'))
t.teardown(() => rm(exportDir, { recursive: true, force: true }))

/** The shared deployment most tests use: one API and one real worker process, DynamoDB via the proxy. */
const prefix = uniquePrefix()
const overrides = {
  REDIS_PREFIX: prefix,
  EXPORT_DIR: exportDir,
  EXPORT_PAGE_LIMIT: '250',
  TABLES_DENY: 'secret*',
  PUBLIC_URL: 'http://dynacache.test/',
  JOB_STALL_MS: '3000',
  SSE_KEEPALIVE_MS: '30000',
}
const app = await build(t, viaProxy, overrides)
const worker = startEntry(t, 'src/workers/main.ts', configEnv(testConfig(viaProxy, { ...overrides, LOG_LEVEL: 'info' })))
await waitForLog(worker, /worker\.started/)

type View = { id: string; status: string; progress: number; processedItems: number; download: string | null; error: string | null; bytes: number | null }

async function create(on: FastifyInstance, payload: object): Promise<string> {
  const res = await on.inject({ method: 'POST', url: '/exports', headers: auth('export'), payload })
  if (res.statusCode !== 202) throw new Error(`POST /exports: ${res.statusCode} ${res.body}`)
  return res.json().id
}

const view = async (on: FastifyInstance, id: string): Promise<View> => (await on.inject({ url: `/exports/${id}`, headers: auth('export') })).json()

const finished = (on: FastifyInstance, id: string, timeoutMs?: number) =>
  waitFor(
    `export ${id} to finish`,
    async () => {
      const v = await view(on, id)
      return ['completed', 'failed', 'cancelled'].includes(v.status) && v
    },
    timeoutMs,
  )

async function mails(to: string): Promise<Array<{ subject: string; body: { text: string; html: string }; destination: { to: string[] } }>> {
  const store = (await (await fetch(`${services.sesEndpoint}/store`)).json()) as { emails: Array<{ destination: { to: string[] } }> }
  return store.emails.filter((m) => m.destination.to.includes(to)) as never
}

interface Seen {
  id: string
  type: string
  data: { exportId: string; status: string; progress: number; processedItems: number; download?: string; error?: string }
}

/**
 * A real EventSource client (the eventsource package) on an export's events. `route` may send each
 * request elsewhere (another API replica); `requests` records the Last-Event-ID each one carried.
 */
function follow(url: string, opts: { lastEventId?: string; route?: (n: number, url: URL) => URL } = {}) {
  const events: Seen[] = []
  const requests: Array<string | null> = []
  let settle: () => void = () => {}
  const done = new Promise<void>((resolve) => (settle = resolve))
  const es = new EventSource(url, {
    fetch: (input, init) => {
      const n = requests.length
      const headers = new Headers(init?.headers as Record<string, string> | undefined)
      if (n === 0 && opts.lastEventId) headers.set('last-event-id', opts.lastEventId)
      requests.push(headers.get('last-event-id'))
      headers.set('authorization', auth('export').authorization)
      const target = opts.route ? opts.route(n, new URL(String(input))) : input
      return fetch(target, { ...init, headers })
    },
  })
  for (const type of ['progress', 'completed', 'failed', 'cancelled']) {
    es.addEventListener(type, (e) => {
      const m = e as MessageEvent
      events.push({ id: m.lastEventId, type, data: JSON.parse(m.data) })
      if (type !== 'progress') {
        es.close()
        settle()
      }
    })
  }
  es.addEventListener('error', () => {
    if (es.readyState === es.CLOSED) settle()
  })
  const close = () => {
    es.close()
    settle()
  }
  return { events, requests, done, close }
}

async function listen(on: FastifyInstance): Promise<string> {
  await on.listen({ port: 0, host: '127.0.0.1' })
  const address = on.server.address() as { port: number }
  return `http://127.0.0.1:${address.port}`
}

t.test('bad requests are 400/404 with a code, and nothing is queued or stored', async (t) => {
  const own = uniquePrefix()
  const api = await build(t, services, { REDIS_PREFIX: own, TABLES_DENY: 'secret*' })
  const cases: Array<[string, object, number, string]> = [
    ['unknown table', { table: 'nope', format: 'csv' }, 404, 'DC_ERR_TABLE_NOT_FOUND'],
    ['denied table (same as missing)', { table: 'secret-things', format: 'csv' }, 404, 'DC_ERR_TABLE_NOT_FOUND'],
    ['invalid table name', { table: 'a', format: 'csv' }, 400, 'DC_ERR_VALIDATION'],
    ['unknown index', { table: 'orders', format: 'csv', index: 'byNothing' }, 400, 'DC_ERR_INDEX_NOT_FOUND'],
    ['bad format', { table: 'orders', format: 'xml' }, 400, 'DC_ERR_VALIDATION'],
    ['no format', { table: 'orders' }, 400, 'DC_ERR_VALIDATION'],
    ['bad email', { table: 'orders', format: 'csv', notify: 'not-an-email' }, 400, 'DC_ERR_VALIDATION'],
    ['email with a header break', { table: 'orders', format: 'csv', notify: 'a@b.co\r\nBcc: x@y.z' }, 400, 'DC_ERR_VALIDATION'],
    ['filter on nothing (no attr)', { table: 'orders', format: 'csv', filter: [{ op: 'eq', value: 1 }] }, 400, 'DC_ERR_INVALID_FILTER'],
    ['filter on nothing (empty attr)', { table: 'orders', format: 'csv', filter: [{ attr: '', op: 'exists' }] }, 400, 'DC_ERR_INVALID_FILTER'],
    ['filter that is not JSON', { table: 'orders', format: 'csv', filter: '[{"attr":' }, 400, 'DC_ERR_INVALID_FILTER'],
    ['filter with a bad op', { table: 'orders', format: 'csv', filter: [{ attr: 'qty', op: 'like', value: 1 }] }, 400, 'DC_ERR_INVALID_FILTER'],
    ['gzip not a boolean', { table: 'orders', format: 'csv', gzip: 'maybe' }, 400, 'DC_ERR_VALIDATION'],
    ['unknown property', { table: 'orders', format: 'csv', segments: 9 }, 400, 'DC_ERR_VALIDATION'],
  ]
  for (const [what, payload, status, code] of cases) {
    const res = await api.inject({ method: 'POST', url: '/exports', headers: auth('export'), payload })
    t.equal(res.statusCode, status, `${what}: ${res.body}`)
    t.equal(res.json().code, code, what)
  }
  t.match((await api.inject({ method: 'POST', url: '/exports', headers: auth('export'), payload: cases[8]![1] })).json().message, /filter\[0\]\.attr/)
  t.equal((await api.inject({ method: 'POST', url: '/exports', payload: { table: 'orders', format: 'csv' } })).statusCode, 401)
  const readOnly = await api.inject({ method: 'POST', url: '/exports', headers: auth('read'), payload: { table: 'orders', format: 'csv' } })
  t.same([readOnly.statusCode, readOnly.json().code], [403, 'DC_ERR_FORBIDDEN'])
  t.equal((await api.inject({ url: '/exports/nope', headers: auth('export') })).json().code, 'DC_ERR_EXPORT_NOT_FOUND')
  t.equal((await api.inject({ url: '/exports/bad%20id', headers: auth('export') })).statusCode, 400)

  const keys = createRedisKeys(own)
  for (const queue of ['export-segment', 'export-assemble', 'email'] as const) {
    const q = new Queue(queue, { connection: redis, prefix: keys.queuePrefix })
    const counts = await q.getJobCounts()
    t.equal(
      Object.values(counts).reduce((a, b) => a + b, 0),
      0,
      `nothing queued on ${queue}`,
    )
  }
  t.equal(await redis.exists(keys.exportHistory), 0, 'no export stored')
  t.same((await api.inject({ url: '/exports', headers: auth('export') })).json(), { exports: [], cursor: null })
})

t.test(
  'SSE: current state first, progress rising to 100 then completed; a reconnect to another replica with Last-Event-ID gets only what it missed',
  async (t) => {
    // Closed by the test itself, mid-export.
    const replicaA = await buildApp(testConfig(viaProxy, overrides))
    t.teardown(() => replicaA.close().catch(() => {}))
    const replicaB = await build(t, viaProxy, overrides)
    const [urlA, urlB] = [await listen(replicaA), await listen(replicaB)]
    proxy.setFaults({ latencyMs: 15 })
    t.teardown(() => proxy.setFaults({}))
    const id = await create(app, { table: 'orders', format: 'jsonl' })

    const steady = follow(`${urlB}/exports/${id}/events`)
    // This one starts on replica A; when A goes away mid-export it reconnects, on its own, to B.
    const moving = follow(`${urlA}/exports/${id}/events`, { route: (n, url) => (n === 0 ? url : new URL(`${urlB}${url.pathname}`)) })
    await waitFor('a few progress events', async () => moving.events.length >= 3)
    await replicaA.close()
    await Promise.all([steady.done, moving.done])
    proxy.setFaults({})

    const stored = await createExportStore({ redis, keys: createRedisKeys(prefix) }).events(id)
    const [first, ...rest] = steady.events
    t.equal(first!.type, 'progress', 'the current state comes first')
    t.ok(['queued', 'processing'].includes(first!.data.status))
    const after = stored.findIndex((e) => e.id === first!.id)
    t.ok(after >= 0, 'the state carries the id of the latest event')
    t.same(
      rest.map((e) => e.id),
      stored.slice(after + 1).map((e) => e.id),
      'then every later event, once, in order',
    )
    const progress = steady.events.map((e) => e.data.progress)
    t.same(
      progress,
      [...progress].sort((a, b) => a - b),
      'progress never goes down',
    )
    t.ok(new Set(progress).size >= 5, `progress rose in steps: ${[...new Set(progress)].join(', ')}`)
    const last = steady.events.at(-1)!
    t.same([last.type, last.data.status, last.data.progress, last.data.processedItems], ['completed', 'completed', 100, ORDERS])
    t.match(last.data.download, new RegExp(`^/exports/${id}/download\\?token=`))

    t.equal(moving.requests.length, 2, 'the moving client reconnected once')
    const lastSeenOnA = moving.requests[1]!
    t.ok(lastSeenOnA, 'and sent Last-Event-ID')
    const onB = moving.events.slice(moving.events.findIndex((e) => e.id === lastSeenOnA) + 1)
    const missed = stored.slice(stored.findIndex((e) => e.id === lastSeenOnA) + 1)
    t.same(
      onB.map((e) => e.id),
      missed.map((e) => e.id),
      'replica B sent exactly the events after it: no state, no repeat',
    )
    t.equal(new Set(moving.events.map((e) => e.id)).size, moving.events.length, 'no event twice')
    t.equal(moving.events.at(-1)!.type, 'completed')

    // Replay from any earlier id, on a finished export, then the stream ends.
    const middle = stored[Math.floor(stored.length / 2)]!
    const replay = follow(`${urlB}/exports/${id}/events`, { lastEventId: middle.id })
    await replay.done
    t.same(
      replay.events.map((e) => e.id),
      stored.slice(stored.indexOf(middle) + 1).map((e) => e.id),
      'replay after a middle id',
    )
    const late = follow(`${urlB}/exports/${id}/events`)
    await late.done
    t.same(
      late.events.map((e) => [e.type, e.data.progress]),
      [['completed', 100]],
      'a finished export: its state, then the end',
    )
    const already = await fetch(`${urlB}/exports/${id}/events`, { headers: { ...auth('export'), 'last-event-id': stored.at(-1)!.id } })
    t.equal(already.status, 204, 'a client that has the terminal event is told to stop (204)')

    const json = await replicaB.inject({ url: `/exports/${id}/events`, headers: { ...auth('export'), accept: 'application/json' } })
    t.same([json.statusCode, json.json().code], [406, 'DC_ERR_NOT_ACCEPTABLE'])
    t.equal((await replicaB.inject({ url: '/exports/missing/events', headers: auth('export') })).json().code, 'DC_ERR_EXPORT_NOT_FOUND')
    t.equal((await replicaB.inject({ url: `/exports/${id}/events`, headers: auth('read') })).statusCode, 403)
  },
)

t.test('SSE: a keep-alive comment every SSE_KEEPALIVE_MS while nothing happens', async (t) => {
  // No worker serves this prefix, so the export stays queued and the stream stays quiet.
  const KEEPALIVE_MS = 150
  const quiet = await build(t, services, { SSE_KEEPALIVE_MS: String(KEEPALIVE_MS), EXPORT_DIR: exportDir })
  const url = await listen(quiet)
  const id = await create(quiet, { table: 'users', format: 'csv' })
  const sent = Date.now()
  const res = await fetch(`${url}/exports/${id}/events`, { headers: auth('export') })
  t.equal(res.headers.get('content-type'), 'text/event-stream')
  const reader = res.body!.getReader()
  let text = ''
  // When each keep-alive comment arrived, in ms after the request was sent; two may come in one chunk.
  const beats: number[] = []
  while (beats.length < 2 && Date.now() - sent < 10_000) {
    text += new TextDecoder().decode((await reader.read()).value)
    const at = Date.now() - sent
    const count = (text.match(/^: heartbeat$/gm) ?? []).length
    while (beats.length < count) beats.push(at)
  }
  t.match(text, /^event: progress\nid: \d+-\d+|^id: \d+-\d+\nevent: progress/m, 'the state first')
  t.ok(beats.length >= 2, `then keep-alive comments, at ${beats.join(', ')} ms`)
  // The k-th comment is due k intervals after the stream opened: never sooner (timers do not fire early; 2 ms
  // for clock rounding), later by whatever a busy machine adds, for which 1.5 s is generous. The 30 s default
  // or a comment per event loop turn would fail one of these.
  t.ok(
    beats.every((at, k) => at >= (k + 1) * KEEPALIVE_MS - 2),
    'not before the configured interval',
  )
  t.ok(
    beats.every((at, k) => at < (k + 1) * KEEPALIVE_MS + 1500),
    'at the configured interval',
  )
  const gauge = async () => (await quiet.metrics.sseConnections.get()).values[0]?.value
  t.equal(await gauge(), 1, 'the open stream is counted in dynacache_sse_connections')
  await quiet.inject({ method: 'DELETE', url: `/exports/${id}`, headers: auth('export') })
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) text += new TextDecoder().decode(chunk.value)
  t.match(text, /event: cancelled\n/, 'the cancel arrives and the stream ends')
  t.equal(await gauge(), 0, 'and no longer counted once it ended')
})

t.test('email: arrives with table, rows, size and a working signed link; a tampered or foreign link is 403; never twice', async (t) => {
  const to = `owner-${Date.now()}@example.com`
  const id = await create(app, { table: 'users', format: 'csv', notify: to })
  const done = await finished(app, id)
  t.equal(done.status, 'completed')
  const [mail, ...more] = await waitFor('the email', async () => {
    const found = await mails(to)
    return found.length > 0 && found
  })
  t.equal(more.length, 0, 'one email')
  t.equal(mail!.subject, 'Your export of users is ready')
  t.match(mail!.body.text, /table users, CSV/)
  t.match(mail!.body.text, /Rows: 30\n/)
  t.match(mail!.body.text, new RegExp(`Size: ${done.bytes} bytes`))
  const link = new URL(/Download: (\S+)/.exec(mail!.body.text)![1]!)
  t.equal(link.origin, 'http://dynacache.test', 'links use PUBLIC_URL')
  t.match(mail!.body.html, /<a href="http:\/\/dynacache\.test\/exports\//)

  const res = await app.inject({ url: `${link.pathname}${link.search}` })
  t.equal(res.statusCode, 200, 'the link works without an API key')
  t.equal(res.headers['content-disposition'], `attachment; filename="users-${id.slice(0, 8)}.csv"`)
  t.equal(res.headers['content-type'], 'text/csv; charset=utf-8')
  const rows = parseCsv(res.body)
  t.same(rows[0], ['id', 'name'])
  t.equal(rows.length, 31)
  const bearer = await app.inject({ url: `/exports/${id}/download`, headers: auth('export') })
  t.equal(bearer.body, res.body, 'Bearer auth downloads the same file')

  const token = link.searchParams.get('token')!
  const tampered = `${token.slice(0, -2)}${token.endsWith('A') ? 'BB' : 'AA'}`
  const otherId = await create(app, { table: 'users', format: 'jsonl' })
  for (const [what, url] of [
    ['tampered signature', `/exports/${id}/download?token=${tampered}`],
    ['another export', `/exports/${otherId}/download?token=${token}`],
    ['garbage', `/exports/${id}/download?token=x`],
    ['expired', `/exports/${id}/download?token=${createDownloadTokens(app.config.CURSOR_SECRET!, 60).sign(id, DEFAULT_TENANT, Date.now() - 3600_000).token}`],
    ['unknown export', `/exports/nope/download?token=${token}`],
  ] as const) {
    const r = await app.inject({ url })
    t.same([r.statusCode, r.json().code], [403, 'DC_ERR_DOWNLOAD_FORBIDDEN'], what)
  }
  t.equal((await app.inject({ url: `/exports/${id}/download` })).statusCode, 401, 'neither token nor key: 401')
  t.equal((await app.inject({ url: `/exports/${id}/download`, headers: auth('read') })).statusCode, 403, 'a key without export: 403')

  // A retried assembler queues the same email job again (same id), or a new job for the same email: neither sends.
  const producers = createQueueProducers(redis, createRedisKeys(prefix).queuePrefix)
  t.teardown(() => producers.close())
  await producers.enqueue('email', { template: 'export-completed', exportId: id }, { jobId: `${id}-export-completed` })
  const second = await producers.enqueue('email', { template: 'export-completed', exportId: id })
  await waitFor('the second email job to finish', async () => (await producers.queue('email').getJob(second))?.finishedOn)
  t.same((await producers.queue('email').getJob(second))!.returnvalue, { sent: false, reason: 'already sent' })
  await sleep(300)
  t.equal((await mails(to)).length, 1, 'still exactly one email')
  await finished(app, otherId)
})

t.test('email: a failed export mails the reason; a failing SES never fails an export', async (t) => {
  const own = uniquePrefix()
  const cfg = { REDIS_PREFIX: own, EXPORT_DIR: exportDir, PUBLIC_URL: 'http://dynacache.test' }
  const api = await build(t, services, cfg)
  await createTable(dynamo, 'doomed', { id: 'S' })
  await putItems(dynamo, 'doomed', [{ id: { S: 'a' } }])
  const to = `doomed-${Date.now()}@example.com`
  const failing = await create(api, { table: 'doomed', format: 'jsonl', notify: to })
  await dynamo.send(new DeleteTableCommand({ TableName: 'doomed' }))
  const logger = createLogger(testConfig(services, { LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent' }), 'worker')
  // This worker's SES is a closed port: every send fails.
  const fleet = await startWorkerFleet(testConfig(services, { ...cfg, SES_ENDPOINT: 'http://127.0.0.1:9' }), logger)
  t.teardown(() => fleet.close(2000))
  const failed = await finished(api, failing)
  t.equal(failed.status, 'failed')
  t.match(failed.error, /not found/i)
  const ok = await create(api, { table: 'users', format: 'jsonl', notify: to })
  t.equal((await finished(api, ok)).status, 'completed', 'the export completes although its email cannot be sent')
  const emails = new Queue('email', { connection: redis, prefix: createRedisKeys(own).queuePrefix })
  t.teardown(() => emails.close())
  const job = await waitFor('a failed send', async () => {
    const j = await emails.getJob(`${ok}-export-completed`)
    return j && j.attemptsMade >= 1 && j
  })
  t.match(job.failedReason, /ECONNREFUSED|connect/i, 'the send failed and will be retried')
  t.equal((await view(api, ok)).status, 'completed')
  await fleet.close(2000)

  // With a working SES the failure email goes out with its reason.
  const mailer = await startWorkerFleet(testConfig(services, { ...cfg, WORKER_QUEUES: 'email' }), logger)
  t.teardown(() => mailer.close(2000))
  const [failure] = await waitFor('the failure email', async () => {
    const found = (await mails(to)).filter((m) => /failed/.test(m.subject))
    return found.length > 0 && found
  })
  t.equal(failure!.subject, 'Your export of doomed failed')
  t.match(failure!.body.text, /Reason: .*not found/i)
})

t.test('cancel mid-export: cancelled at once, segments stop within seconds, no files left', async (t) => {
  proxy.setFaults({ latencyMs: 60 })
  t.teardown(() => proxy.setFaults({}))
  const id = await create(app, { table: 'orders', format: 'csv' })
  await waitFor('some progress', async () => (await view(app, id)).progress >= 3)
  t.ok((await readdir(join(exportDir, prefix, id, 'parts'))).length > 0, 'parts were being written')
  const res = await app.inject({ method: 'DELETE', url: `/exports/${id}`, headers: auth('export') })
  t.equal(res.statusCode, 200)
  t.equal(res.json().status, 'cancelled', 'cancelled at once')
  const cancelledAt = Date.now()

  const segments = new Queue('export-segment', { connection: redis, prefix: createRedisKeys(prefix).queuePrefix })
  t.teardown(() => segments.close())
  await waitFor(
    'every segment job to stop',
    async () => {
      const states = await Promise.all([0, 1, 2, 3].map(async (s) => (await segments.getJob(`${id}-${s}`))?.getState()))
      return states.every((s) => s === 'completed')
    },
    10_000,
  )
  const stoppedMs = Date.now() - cancelledAt
  t.ok(stoppedMs < 5000, `segments stopped ${stoppedMs} ms after the cancel`)
  const scans = proxy.count('Scan', 'orders')
  await sleep(600)
  t.equal(proxy.count('Scan', 'orders'), scans, 'no Scan after that')
  const results = await Promise.all([0, 1, 2, 3].map(async (s) => (await segments.getJob(`${id}-${s}`))!.returnvalue))
  t.ok(
    results.every((r) => r.stopped === 'cancelled'),
    'each segment saw the cancel',
  )
  await waitFor(
    'the partial output to go',
    async () => {
      try {
        await readdir(join(exportDir, prefix, id))
        return false
      } catch {
        return true
      }
    },
    10_000,
  )
  t.pass('no files left')
  const after = await view(app, id)
  t.same([after.status, after.download], ['cancelled', null])
  t.ok(after.progress < 100)
  t.equal((await app.inject({ url: `/exports/${id}/download`, headers: auth('export') })).json().code, 'DC_ERR_EXPORT_NOT_READY')
  const again = await app.inject({ method: 'DELETE', url: `/exports/${id}`, headers: auth('export') })
  t.same([again.statusCode, again.json().code], [409, 'DC_ERR_EXPORT_FINISHED'])
  t.equal((await app.inject({ method: 'DELETE', url: '/exports/nope', headers: auth('export') })).statusCode, 404)
})

t.test('a stopping worker hands its segment back at the checkpoint; the next run resumes there', async (t) => {
  const own = uniquePrefix()
  const cfg = { REDIS_PREFIX: own, EXPORT_DIR: exportDir, EXPORT_SEGMENTS: '1', EXPORT_PAGE_LIMIT: '1000' }
  const api = await build(t, services, cfg)
  const config = testConfig(services, cfg)
  const logger = createLogger(testConfig(services, { LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent' }), 'worker')
  const deps = createWorkerDeps(config, logger)
  t.teardown(() => deps.close())
  const { keys, queues: producers } = deps
  const segment = createExportSegmentProcessor(deps)
  const stopping = new AbortController()
  stopping.abort()
  // A worker whose jobs were cancelled because it is shutting down.
  const blocking = new Redis(services.redisUrl, { maxRetriesPerRequest: null })
  let closed: Promise<void> | undefined
  const worker: Worker = new Worker(
    'export-segment',
    (job, token) => {
      closed ??= worker.close() // this job is its last
      return segment(job, token, stopping.signal)
    },
    { connection: blocking, prefix: keys.queuePrefix },
  )
  t.teardown(() => blocking.quit())
  const id = await create(api, { table: 'orders', format: 'jsonl' })
  const store = createExportStore({ redis, keys })
  await waitFor('the worker to take the segment', async () => closed !== undefined)
  await closed
  const [released] = await store.checkpoints(id, 1)
  t.ok(['delayed', 'waiting'].includes(await producers.queue('export-segment').getJobState(`${id}-0`)), 'the job is back in the queue')
  t.equal(released?.pages, 1, 'after one committed page')
  t.equal((await view(api, id)).status, 'processing')

  const fleet = await startWorkerFleet(config, logger)
  t.teardown(() => fleet.close(2000))
  const done = await finished(api, id)
  t.same([done.status, done.processedItems], ['completed', ORDERS])
  const [final] = await store.checkpoints(id, 1)
  t.ok(final!.resumes >= 1, 'the next run resumed from the checkpoint')
  const lines = (await api.inject({ url: `/exports/${id}/download`, headers: auth('export') })).body.trimEnd().split('\n')
  t.equal(new Set(lines).size, ORDERS, 'every item once')
})

t.test('history: newest first, paginated with a signed cursor, filtered by status', async (t) => {
  const own = uniquePrefix()
  const api = await build(t, services, { REDIS_PREFIX: own, EXPORT_DIR: exportDir })
  const ids: string[] = []
  for (let i = 0; i < 5; i++) ids.push(await create(api, { table: 'users', format: i % 2 ? 'csv' : 'jsonl' }))
  await api.inject({ method: 'DELETE', url: `/exports/${ids[1]}`, headers: auth('export') })
  await api.inject({ method: 'DELETE', url: `/exports/${ids[3]}`, headers: auth('export') })
  const seen: string[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const res = await api.inject({ url: `/exports?limit=2${cursor ? `&cursor=${cursor}` : ''}`, headers: auth('export') })
    t.equal(res.statusCode, 200, res.body)
    const body = res.json() as { exports: Array<{ id: string; status: string; links: { self: string } }>; cursor: string | null }
    seen.push(...body.exports.map((e) => e.id))
    cursor = body.cursor
    pages++
  } while (cursor)
  t.same(seen, [...ids].reverse(), 'every export once, newest first')
  t.equal(pages, 3)
  const cancelled = (await api.inject({ url: '/exports?status=cancelled', headers: auth('export') })).json()
  t.same(
    cancelled.exports.map((e: { id: string }) => e.id),
    [ids[3], ids[1]],
  )
  const first = (await api.inject({ url: '/exports?limit=1', headers: auth('export') })).json()
  t.equal(first.exports[0].links.self, `/exports/${ids[4]}`)
  const tampered = await api.inject({ url: `/exports?cursor=${first.cursor.slice(0, -3)}abc`, headers: auth('export') })
  t.same([tampered.statusCode, tampered.json().code], [400, 'DC_ERR_INVALID_CURSOR'])
  const foreign = await api.inject({ url: `/exports?status=queued&cursor=${first.cursor}`, headers: auth('export') })
  t.equal(foreign.json().code, 'DC_ERR_INVALID_CURSOR', 'a cursor is bound to its filter')
  t.equal((await api.inject({ url: '/exports?limit=0', headers: auth('export') })).statusCode, 400)
  for (const id of ids) await api.inject({ method: 'DELETE', url: `/exports/${id}`, headers: auth('export') })
})

t.test('S3 storage: index + filter export, gzip CSV through a multipart upload, download streamed from the bucket, parts removed', async (t) => {
  const s3 = await startS3(t)
  const own = uniquePrefix()
  const cfg = { REDIS_PREFIX: own, EXPORT_STORAGE: 's3', EXPORT_S3_BUCKET: s3.bucket, S3_ENDPOINT: s3.endpoint, EXPORT_PAGE_LIMIT: '1000' }
  const api = await build(t, services, cfg)
  const fleet = await startWorkerFleet(
    testConfig(services, { ...cfg, ...S3RVER_CREDENTIALS }),
    createLogger(testConfig(services, { LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent' }), 'worker'),
  )
  t.teardown(() => fleet.close(2000))
  const filter = [{ attr: 'qty', op: 'ge', value: 8 }]
  const id = await create(api, { table: 'orders', format: 'csv', index: 'byStatus', filter, gzip: true })
  const done = await finished(api, id, 60_000)
  t.equal(done.status, 'completed', done.error ?? '')
  const expected = Array.from({ length: ORDERS }, (_, i) => i).filter((i) => i % 10 >= 8)
  t.equal(done.processedItems, expected.length, 'the filter applied')

  const res = await api.inject({ url: done.download! })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'application/gzip')
  t.match(res.headers['content-disposition'], /filename="orders-.{8}\.csv\.gz"/)
  const rows = parseCsv(gunzipSync(res.rawPayload).toString())
  t.same(rows[0], ['PK', 'SK', 'status', 'note', 'qty'], 'table keys, index keys, then the rest')
  const sks = rows.slice(1).map((r) => Number(r[1]))
  t.same(
    [...sks].sort((a, b) => a - b),
    expected,
    'every matching item exactly once',
  )
  t.ok(
    rows.slice(1).every((r) => r[2] === STATUSES[Number(r[1]) % 3]),
    'index key column right',
  )
  t.ok(
    rows
      .slice(1)
      .filter((r) => Number(r[1]) % 7 === 0)
      .every((r) => r[3]!.startsWith("'=note")),
    'formula cells neutralised',
  )

  const objects = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `${own}/` }))
  t.same(
    objects.Contents?.map((o) => o.Key),
    [`${own}/${id}/export.csv.gz`],
    'only the file is left: parts removed',
  )
  t.equal(objects.Contents?.[0]?.Size, done.bytes)

  const cancelled = await create(api, { table: 'orders', format: 'jsonl' })
  await api.inject({ method: 'DELETE', url: `/exports/${cancelled}`, headers: auth('export') })
  await finished(api, cancelled)
  await waitFor(
    'the cancelled export to leave nothing',
    async () => {
      const left = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `${own}/${cancelled}/` }))
      return (left.KeyCount ?? 0) === 0
    },
    10_000,
  )
  t.pass('a cancelled export leaves nothing in the bucket')
})

t.test('an export whose table is denied later answers like a missing export on every export route', async (t) => {
  const id = await create(app, { table: 'users', format: 'jsonl' })
  const done = await finished(app, id)
  t.equal(done.status, 'completed')
  // The same deployment after an operator denies the table.
  const denying = await build(t, viaProxy, { ...overrides, TABLES_DENY: 'secret*,users' })
  const missing = 'no-such-export-000000'
  const routes = [
    { method: 'GET' as const, url: (x: string) => `/exports/${x}` },
    { method: 'DELETE' as const, url: (x: string) => `/exports/${x}` },
    { method: 'GET' as const, url: (x: string) => `/exports/${x}/events` },
    { method: 'GET' as const, url: (x: string) => `/exports/${x}/download` },
  ]
  for (const { method, url } of routes) {
    const [denied, absent] = [
      await denying.inject({ method, url: url(id), headers: auth('export') }),
      await denying.inject({ method, url: url(missing), headers: auth('export') }),
    ]
    t.same([denied.statusCode, denied.json().code], [404, 'DC_ERR_EXPORT_NOT_FOUND'], `${method} ${url(':id')}`)
    t.equal(denied.body.replaceAll(id, missing), absent.body, `${method} ${url(':id')}: the same body as a missing export`)
  }
  const listed = (await denying.inject({ url: '/exports?limit=100', headers: auth('export') })).json().exports as View[]
  t.notOk(
    listed.some((e) => e.id === id),
    'left out of the history',
  )
  t.equal((await view(app, id)).status, 'completed', 'untouched: the first deployment still sees it')
})

t.test('retention: one clean-up schedule fleet-wide; exports finished over JOB_RETENTION_DAYS ago go with their files', async (t) => {
  const keys = createRedisKeys(prefix)
  const cleanup = new Queue('export-cleanup', { connection: redis, prefix: keys.queuePrefix })
  t.teardown(() => cleanup.close())
  const second = startEntry(t, 'src/workers/main.ts', configEnv(testConfig(viaProxy, { ...overrides, LOG_LEVEL: 'info' })))
  await waitForLog(second, /worker\.started/)
  const schedulers = await cleanup.getJobSchedulers()
  t.same(
    schedulers.map((s) => s.key),
    [EXPORT_CLEANUP_SCHEDULER_ID],
    'two workers, one schedule',
  )
  t.equal(schedulers[0]!.every, 3600_000, 'hourly')
  await second.stop()
  // The fleet's own scheduled run would race the one this test drives with its own clock: hold it.
  await cleanup.pause()

  const recent = (await app.inject({ url: '/exports?status=completed&limit=100', headers: auth('export') })).json().exports as View[]
  t.ok(recent.length >= 2, 'and the completed exports of the tests above')
  const store = createExportStore({ redis, keys })
  const DAY = 24 * 3600_000
  const now = Date.now()
  const old = (id: string, over: Partial<ExportRecord>): ExportRecord => ({
    id,
    table: 'users',
    format: 'csv',
    gzip: false,
    status: 'completed',
    progress: 100,
    processedItems: 1,
    scannedItems: 1,
    expectedItems: 0,
    segments: 1,
    createdAt: now - 40 * DAY,
    ...over,
  })
  await store.create(old('old-done', { completedAt: now - 39 * DAY, file: 'export.csv', bytes: 4 }))
  await store.create(old('old-running', { status: 'processing', progress: 50 }))
  await store.create(old('old-but-just-done', { completedAt: now - DAY }))
  const { mkdir, writeFile } = await import('node:fs/promises')
  await mkdir(join(exportDir, prefix, 'old-done'), { recursive: true })
  await writeFile(join(exportDir, prefix, 'old-done', 'export.csv'), 'a,b\n')
  await mkdir(join(exportDir, prefix, 'orphan-without-record'), { recursive: true })
  t.ok((await readdir(join(exportDir, prefix))).includes(recent[0]!.id))

  const job = (await cleanup.add('export-cleanup', {}))!
  const logger = createLogger(testConfig(services, { LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent' }), 'worker')
  let clock = now
  const processor = createExportCleanupProcessor({ config: app.config, redis, keys, logger } as never, () => clock)
  t.same(await processor(job), { removed: 1, orphans: 1 }, 'the one finished 39 days ago, and the orphan')
  t.equal(await store.get('old-done'), undefined)
  const left = await readdir(join(exportDir, prefix))
  t.notOk(left.includes('old-done'), 'its file went with it')
  t.notOk(left.includes('orphan-without-record'))
  t.ok(await store.get('old-running'), 'a running export is never removed')
  t.ok(await store.get('old-but-just-done'), 'retention counts from when it finished')

  clock = now + 31 * DAY
  const later = await processor(job)
  t.ok(later.removed >= recent.length + 1, `a month on, ${later.removed} more removed`)
  for (const { id } of recent) t.equal((await app.inject({ url: `/exports/${id}`, headers: auth('export') })).statusCode, 404)
  t.notOk((await readdir(join(exportDir, prefix)).catch(() => [] as string[])).some((id) => recent.some((r) => r.id === id)))
  t.ok(await store.get('old-running'))
  await store.remove('old-running')
  await cleanup.resume()
})
