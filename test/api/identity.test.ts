import t from 'tap'
import { auth, build } from '../helpers/app.ts'
import { startServices } from '../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../helpers/tables.ts'
import { waitFor } from '../helpers/wait.ts'

// Issue 12, item 1: whatever keys something by a read, a batch or a cursor is bound to its table.
// Every check here uses tables of one shape with the same keys, which is what the shipped bug needed.
const services = await startServices(t)
const dynamo = testDynamo(t, services.dynamoEndpoint)
const TABLES = ['shape-a', 'shape-b'] as const
for (const table of TABLES) {
  await createTable(dynamo, table, { PK: 'S', SK: 'N' })
  await putItems(
    dynamo,
    table,
    Array.from({ length: 12 }, (_, i) => ({ PK: { S: 'p0' }, SK: { N: String(i) }, from: { S: table } })),
  )
}

// A 60 s ttl with a threshold of 0.01: an entry is stale after 600 ms and stays servable for a minute.
const app = await build(t, services, { TABLE_ITEMS_TTL: '60', STALE_THRESHOLD: '0.01', NEAR_CACHE_TTL_MS: '0' })
const get = (url: string) => app.inject({ url, headers: auth('read') })

t.test('a cursor of one table is refused by a table of the same shape', async (t) => {
  const first = (await get('/tables/shape-a/items?limit=5')).json()
  t.type(first.cursor, 'string')
  const own = await get(`/tables/shape-a/items?limit=5&cursor=${encodeURIComponent(first.cursor)}`)
  t.equal(own.statusCode, 200)
  t.ok(own.json().items.every((i: { from: string }) => i.from === 'shape-a'))
  const foreign = await get(`/tables/shape-b/items?limit=5&cursor=${encodeURIComponent(first.cursor)}`)
  t.equal(foreign.statusCode, 400)
  t.equal(foreign.json().code, 'DC_ERR_INVALID_CURSOR')
  const q = (await get('/tables/shape-a/query?pk=p0&limit=4')).json()
  const foreignQuery = await get(`/tables/shape-b/query?pk=p0&limit=4&cursor=${encodeURIComponent(q.cursor)}`)
  t.equal(foreignQuery.json().code, 'DC_ERR_INVALID_CURSOR', 'a query cursor too')
})

t.test('one Idempotency-Key on two tables is two batches, each writing its own table', async (t) => {
  const body = { format: 'document', operations: [{ put: { PK: 'p9', SK: 1, v: 'x' } }] }
  const headers = { ...auth('write'), 'idempotency-key': 'same-key-for-both-tables' }
  const [a, b] = await Promise.all(TABLES.map((table) => app.inject({ method: 'POST', url: `/tables/${table}/batches`, headers, payload: body })))
  t.equal(a!.statusCode, 202)
  t.equal(b!.statusCode, 202)
  t.not(a!.json().id, b!.json().id, 'not the same batch')
  for (const [i, reply] of [a!, b!].entries()) {
    const status = (await app.inject({ url: `/batches/${reply.json().id}`, headers: auth('write') })).json()
    t.equal(status.table, TABLES[i], 'the batch belongs to the table it was posted to')
  }
})

t.test('stale entries of two tables queue one refresh each, of their own table', async (t) => {
  const queue = app.queues.queue('cache-refresh')
  const url = (table: string) => `/tables/${table}/items/p0?sk=3`
  for (const table of TABLES) t.equal((await get(url(table))).headers['x-cache'], 'MISS')
  for (const table of TABLES) {
    await waitFor(`${table} served stale`, async () => (await get(url(table))).headers['x-cache'] === 'STALE')
  }
  const jobs = await queue.getJobs(['waiting', 'delayed', 'prioritized', 'active', 'completed'])
  const refreshed = jobs
    .map((job) => job.data.resource as { table: string; kind: string; params: Record<string, string> })
    .filter((r) => r.kind === 'item' && r.params.sk === '3')
    .map((r) => r.table)
    .sort()
  t.same([...new Set(refreshed)], [...TABLES], 'one refresh per table, each naming its own table')
  const stale = await Promise.all(TABLES.map((table) => get(url(table))))
  for (const [i, reply] of stale.entries()) t.equal(reply.json().from, TABLES[i], 'a stale answer is still its own table')
})

t.test('a table is in the set DELETE /cache walks before its first entry exists', async (t) => {
  const url = '/tables/shape-b/items/p0?sk=7'
  await app.inject({ method: 'DELETE', url: '/cache', headers: auth('admin') })
  await app.redis.srem(app.keys.cachedTables, 'shape-b')
  // A fresh process would not know the table yet: a new app on the same prefix.
  const fresh = await build(t, services, { REDIS_PREFIX: app.config.REDIS_PREFIX, NEAR_CACHE_TTL_MS: '0' })
  const first = await fresh.inject({ url, headers: auth('read') })
  t.equal(first.headers['x-cache'], 'MISS')
  t.ok((await app.redis.smembers(app.keys.cachedTables)).includes('shape-b'), 'remembered before the answer, not after')
  await app.inject({ method: 'DELETE', url: '/cache', headers: auth('admin') })
  t.equal((await fresh.inject({ url, headers: auth('read') })).headers['x-cache'], 'MISS', 'so DELETE /cache reaches its entry')
})
