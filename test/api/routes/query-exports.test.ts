import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import t from 'tap'
import type { Checkpoint } from '../../../src/shared/exports/model.ts'
import { createLogger } from '../../../src/shared/logger.ts'
import { createRedisKeys } from '../../../src/shared/redis/keys.ts'
import { startWorkerFleet } from '../../../src/workers/fleet.ts'
import { auth, build, testConfig, uniquePrefix } from '../../helpers/app.ts'
import { parseCsv } from '../../helpers/csv.ts'
import { startDynamoProxy } from '../../helpers/dynamo-proxy.ts'
import { startServices, type TestServices } from '../../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../../helpers/tables.ts'
import { waitFor } from '../../helpers/wait.ts'

// Two tables of one shape: a query export of one must read only that table's partition.
const services = await startServices(t)
const dynamo = testDynamo(t, services.dynamoEndpoint)
const TABLES = ['qe-orders', 'qe-orders-copy'] as const
const CUSTOMERS = 8
const PER_CUSTOMER = 60
for (const [n, table] of TABLES.entries()) {
  await createTable(dynamo, table, { PK: 'S', SK: 'N' }, { byStatus: { status: 'S', SK: 'N' } })
  await putItems(
    dynamo,
    table,
    Array.from({ length: CUSTOMERS * PER_CUSTOMER }, (_, i) => ({
      PK: { S: `c${i % CUSTOMERS}` },
      SK: { N: String(i) },
      status: { S: i % 2 === 0 ? 'open' : 'closed' },
      qty: { N: String(i % 10) },
      note: { S: `${table} note ${i}` },
      tags: { L: [{ S: `t${i % 3}` }, { S: 'x' }] },
      copy: { N: String(n) },
    })),
  )
}

const redis = new Redis(services.redisUrl)
t.teardown(() => redis.quit())
const exportDir = await mkdtemp(join(tmpdir(), 'dc-query-exports-'))
t.teardown(() => rm(exportDir, { recursive: true, force: true }))
const overrides = { REDIS_PREFIX: uniquePrefix(), EXPORT_DIR: exportDir, EXPORT_PAGE_LIMIT: '25', EXPORT_SEGMENTS: '4' }
const app = await build(t, services, overrides)
const fleet = await startWorkerFleet(testConfig(services, overrides), createLogger(testConfig(services, overrides), 'worker'))
t.teardown(() => fleet.close(2000))

const post = (payload: object) => app.inject({ method: 'POST', url: '/exports', headers: auth('export'), payload })

async function finished(on: FastifyInstance, id: string) {
  return waitFor(`export ${id} to finish`, async () => {
    const v = (await on.inject({ url: `/exports/${id}`, headers: auth('export') })).json()
    return ['completed', 'failed', 'cancelled'].includes(v.status) && v
  })
}

async function download(id: string): Promise<string> {
  const res = await app.inject({ url: `/exports/${id}/download`, headers: auth('export') })
  if (res.statusCode !== 200) throw new Error(`download: ${res.statusCode} ${res.body}`)
  return res.body
}

/** Everything stored or queued under the test's prefix (records, history, queues). */
async function storedKeys(): Promise<string[]> {
  const found: string[] = []
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${overrides.REDIS_PREFIX}*export*`, 'COUNT', 1000)
    cursor = next
    found.push(...keys)
  } while (cursor !== '0')
  return found.filter((k) => !k.includes(':slots') && !k.endsWith(':meta') && !k.includes('stalled-check')).sort()
}

t.test('a query export of one partition with 3 chosen columns: exactly those columns in that order, exactly that partition', async (t) => {
  const res = await post({ table: 'qe-orders', format: 'csv', query: { pk: 'c3' }, fields: ['note', 'SK', 'tags[0]'] })
  t.equal(res.statusCode, 202, res.body)
  const done = await finished(app, res.json().id)
  t.equal(done.status, 'completed', done.error ?? '')
  t.equal(done.segments, 1, 'a query runs as one segment')
  t.same(done.query, { pk: 'c3' })
  t.same(done.fields, ['note', 'SK', 'tags[0]'])
  const rows = parseCsv(await download(done.id))
  t.same(rows[0], ['note', 'SK', 'tags[0]'], 'the header is the chosen fields, in their order')
  const expected = Array.from({ length: PER_CUSTOMER }, (_, k) => 3 + k * CUSTOMERS).map((i) => [`qe-orders note ${i}`, String(i), `t${i % 3}`])
  t.same(rows.slice(1), expected, 'every item of partition c3 of this table, in sort-key order, and nothing else')
  t.equal(done.processedItems, PER_CUSTOMER)
})

t.test('a query export with a sort-key condition, an index, a filter, desc order, as JSONL with chosen keys in order', async (t) => {
  const filter = JSON.stringify([{ attr: 'qty', op: 'ge', value: 5 }])
  const res = await post({
    table: 'qe-orders-copy',
    format: 'jsonl',
    index: 'byStatus',
    query: { pk: 'open', sk: '100', skOp: 'lt', order: 'desc' },
    filter,
    fields: 'SK,copy,qty',
  })
  t.equal(res.statusCode, 202, res.body)
  const done = await finished(app, res.json().id)
  t.equal(done.status, 'completed', done.error ?? '')
  const lines = (await download(done.id)).trim().split('\n')
  const expected = Array.from({ length: 100 }, (_, i) => 99 - i)
    .filter((i) => i % 2 === 0 && i % 10 >= 5)
    .map((i) => `{"SK":${i},"copy":1,"qty":${i % 10}}`)
  t.same(lines, expected, 'the index partition, below the bound, filtered, newest first, keys in the chosen order')
})

t.test('a scan export can choose columns too', async (t) => {
  const res = await post({ table: 'qe-orders', format: 'csv', fields: 'PK,qty' })
  const done = await finished(app, res.json().id)
  t.equal(done.status, 'completed', done.error ?? '')
  t.equal(done.segments, 4)
  const rows = parseCsv(await download(done.id))
  t.same(rows[0], ['PK', 'qty'])
  t.equal(rows.length - 1, CUSTOMERS * PER_CUSTOMER)
})

t.test('an export takes the filter grammar of reads: an or group with in, as an object or as JSON text', async (t) => {
  const filter = {
    or: [
      { attr: 'qty', op: 'in', value: [1, 2] },
      { attr: 'note', op: 'eq', value: 'qe-orders note 3' },
    ],
  }
  for (const given of [filter, JSON.stringify(filter)]) {
    const res = await post({ table: 'qe-orders', format: 'jsonl', query: { pk: 'c3' }, filter: given, fields: 'SK,qty' })
    t.equal(res.statusCode, 202, res.body)
    const done = await finished(app, res.json().id)
    t.equal(done.status, 'completed', done.error ?? '')
    const expected = Array.from({ length: PER_CUSTOMER }, (_, k) => 3 + k * CUSTOMERS)
      .filter((i) => i % 10 === 1 || i % 10 === 2 || i === 3)
      .map((i) => `{"SK":${i},"qty":${i % 10}}`)
    t.same((await download(done.id)).trim().split('\n'), expected, `${typeof given}: exactly the items either condition matches`)
  }
})

t.test('bad input is 400 with its code before anything is stored or queued', async (t) => {
  const before = await storedKeys()
  const cases: Array<[string, object, string]> = [
    ['an unknown index', { table: 'qe-orders', format: 'csv', index: 'nope', query: { pk: 'c1' } }, 'DC_ERR_INDEX_NOT_FOUND'],
    ['a bad filter', { table: 'qe-orders', format: 'csv', query: { pk: 'c1' }, filter: '[{"attr":"qty","op":"zz","value":1}]' }, 'DC_ERR_INVALID_FILTER'],
    [
      'a filter on the queried key',
      { table: 'qe-orders', format: 'csv', query: { pk: 'c1' }, filter: [{ attr: 'PK', op: 'eq', value: 'x' }] },
      'DC_ERR_INVALID_FILTER',
    ],
    ['200 fields', { table: 'qe-orders', format: 'csv', query: { pk: 'c1' }, fields: Array.from({ length: 200 }, (_, i) => `a${i}`) }, 'DC_ERR_VALIDATION'],
    ['a malformed field', { table: 'qe-orders', format: 'csv', fields: ['a..b'] }, 'DC_ERR_VALIDATION'],
    ['a repeated field', { table: 'qe-orders', format: 'csv', fields: 'a,b,a' }, 'DC_ERR_VALIDATION'],
    ['a sort key of the wrong type', { table: 'qe-orders', format: 'csv', query: { pk: 'c1', sk: 'abc' } }, 'DC_ERR_INVALID_KEY'],
    ['between without sk2', { table: 'qe-orders', format: 'csv', query: { pk: 'c1', sk: '1', skOp: 'between' } }, 'DC_ERR_INVALID_QUERY'],
    ['an unknown query parameter', { table: 'qe-orders', format: 'csv', query: { pk: 'c1', limit: 3 } }, 'DC_ERR_VALIDATION'],
    ['a query without pk', { table: 'qe-orders', format: 'csv', query: {} }, 'DC_ERR_VALIDATION'],
  ]
  for (const [what, payload, code] of cases) {
    const res = await post(payload)
    t.equal(res.statusCode, 400, `${what}: 400`)
    t.equal(res.json().code, code, `${what}: ${code}`)
  }
  t.same(await storedKeys(), before, 'no record, history entry or job was stored')
})

t.test(
  'a query export is resumable: a worker stopped mid-way hands it back at its checkpoint (the LastEvaluatedKey); the next one finishes it, each item once',
  async (t) => {
    const proxy = await startDynamoProxy(services.dynamoEndpoint, { latencyMs: 60 })
    t.teardown(() => proxy.close())
    const viaProxy: TestServices = { ...services, dynamoEndpoint: proxy.endpoint }
    const own = { ...overrides, REDIS_PREFIX: uniquePrefix(), EXPORT_PAGE_LIMIT: '5' }
    const api = await build(t, viaProxy, own)
    const logger = createLogger(testConfig(viaProxy, own), 'worker')
    const first = await startWorkerFleet(testConfig(viaProxy, own), logger)
    const res = await api.inject({
      method: 'POST',
      url: '/exports',
      headers: auth('export'),
      payload: { table: 'qe-orders', format: 'csv', query: { pk: 'c5' }, fields: ['SK', 'PK', 'copy'] },
    })
    t.equal(res.statusCode, 202, res.body)
    const id = res.json().id as string
    const seg = createRedisKeys(own.REDIS_PREFIX).exportRecord(id, 'seg')
    const checkpoint = async () => {
      const raw = await redis.hget(seg, 'cp:0')
      return raw ? (JSON.parse(raw) as Checkpoint) : undefined
    }
    await waitFor('3 pages committed', async () => ((await checkpoint())?.pages ?? 0) >= 3)
    await first.close(5000)
    const handedBack = (await checkpoint())!
    t.notOk(handedBack.done, `stopped after ${handedBack.pages} of 12 pages`)
    t.ok(handedBack.key, 'the checkpoint holds the LastEvaluatedKey to continue from')

    const second = await startWorkerFleet(testConfig(viaProxy, own), logger)
    t.teardown(() => second.close(2000))
    const done = await finished(api, id)
    t.equal(done.status, 'completed', done.error ?? '')
    const final = (await checkpoint())!
    t.ok(final.resumes >= 1, 'the segment was resumed, not restarted')
    const res2 = await api.inject({ url: `/exports/${id}/download`, headers: auth('export') })
    const rows = parseCsv(res2.body)
    t.same(rows[0], ['SK', 'PK', 'copy'])
    t.same(
      rows.slice(1),
      Array.from({ length: PER_CUSTOMER }, (_, k) => [String(5 + k * CUSTOMERS), 'c5', '0']),
      'every item of the partition exactly once, in order',
    )
    const queries = proxy.count('Query', 'qe-orders')
    t.ok(queries <= final.pages + 2, `${queries} Queries for ${final.pages} pages: only the pages in flight were read again`)
    t.equal(proxy.count('Scan', 'qe-orders'), 0, 'a query export never scans')
  },
)
