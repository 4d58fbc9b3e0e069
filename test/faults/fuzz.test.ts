import fc from 'fast-check'
import t from 'tap'
import { QUEUE_NAMES } from '../../src/shared/queues/index.ts'
import { auth, build, type KEYS } from '../helpers/app.ts'
import { startDynamoProxy } from '../helpers/dynamo-proxy.ts'
import { startServices } from '../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../helpers/tables.ts'

const services = await startServices(t)
const proxy = await startDynamoProxy(services.dynamoEndpoint)
t.teardown(() => proxy.close())
const dynamo = testDynamo(t, services.dynamoEndpoint)
await createTable(dynamo, 'orders', { PK: 'S', SK: 'S' }, { byStatus: { status: 'S', total: 'N' } })
await createTable(dynamo, 'blobs', { id: 'B' })
await putItems(
  dynamo,
  'orders',
  Array.from({ length: 20 }, (_, i) => ({ PK: { S: `c${i % 3}` }, SK: { S: `o${i}` }, status: { S: 'open' }, total: { N: String(i) } })),
)

const app = await build(t, { ...services, dynamoEndpoint: proxy.endpoint }, { RATE_LIMIT_PER_MIN: '1000000', TABLES_DENY: 'secret*' })

/** Every route of the product (docs/architecture.md, Route -> file), as templates; `:x` segments get generated values. */
const ROUTES: Array<[string, string]> = [
  ['GET', '/tables'],
  ['GET', '/tables/:table'],
  ['GET', '/tables/:table/items'],
  ['GET', '/tables/:table/items/:pk'],
  ['GET', '/tables/:table/query'],
  ['GET', '/cache/stats'],
  ['DELETE', '/tables/:table/cache'],
  ['DELETE', '/cache'],
  ['POST', '/cache/warmup'],
  ['POST', '/exports'],
  ['GET', '/exports/:id'],
  ['GET', '/exports/:id/download'],
  ['DELETE', '/exports/:id'],
  ['GET', '/exports'],
  ['POST', '/tables/:table/batches'],
  ['GET', '/batches/:id'],
  ['GET', '/health'],
  ['GET', '/ready'],
  ['GET', '/metrics'],
  ['GET', '/openapi.json'],
]
const WRITES = new Set(['BatchWriteItem', 'PutItem', 'DeleteItem', 'UpdateItem', 'TransactWriteItems', 'CreateTable', 'DeleteTable'])

const nasty = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom('orders', 'blobs', 'secret-table', 'nope', '..', '%', '%00', '%ff%fe', 'a'.repeat(300), '{*}', 'c1', 'AQID', '-1', '1e400', 'null', '[]'),
)
const segment = nasty.map((s) => encodeURIComponent(s) || 'x')
const queryValue = fc.oneof(
  nasty,
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
)
const queryKeys = fc.constantFrom('limit', 'cursor', 'index', 'view', 'pk', 'sk', 'skOp', 'sk2', 'filter', 'order', 'status', 'token', 'x')
const body = fc.oneof(
  fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.stringify(v)),
  fc.constant(`${'['.repeat(5000)}${']'.repeat(5000)}`),
  fc.constant(JSON.stringify({ format: 'typed', operations: Array.from({ length: 3 }, () => ({ put: { PK: { S: 'x' } } })) })),
  fc.constant(JSON.stringify({ table: 'orders', format: 'csv', notify: 'not-an-email' })),
  fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from([0xc3, 0x28, ...b])),
  fc.string(),
)
const request = fc.record({
  route: fc.constantFrom(...ROUTES),
  params: fc.array(segment, { minLength: 3, maxLength: 3 }),
  query: fc.dictionary(queryKeys, queryValue, { maxKeys: 5 }),
  scope: fc.constantFrom<keyof typeof KEYS | 'none' | 'bad'>('read', 'write', 'export', 'admin', 'none', 'bad'),
  contentType: fc.constantFrom(
    'application/json',
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data',
    'application/json; charset=latin1',
    undefined,
  ),
  body: fc.option(body, { nil: undefined }),
  method: fc.option(fc.constantFrom('PUT', 'PATCH', 'OPTIONS', 'HEAD'), { nil: undefined, freq: 8 }),
})

t.test('thousands of generated requests: no 5xx, every error in the documented shape, nothing written or queued by a rejection', async (t) => {
  let rejectedThatQueued = 0
  let requests = 0
  const statuses = new Map<number, number>()
  await fc.assert(
    fc.asyncProperty(request, async (r) => {
      let i = 0
      const path = r.route[1].replace(/:[a-z]+/g, () => r.params[i++]!)
      const headers: Record<string, string> = r.scope === 'none' ? {} : r.scope === 'bad' ? { authorization: 'Bearer not-a-key-at-all' } : auth(r.scope)
      if (r.contentType) headers['content-type'] = r.contentType
      const mayQueue = (r.method ?? r.route[0]) !== 'GET'
      const jobsBefore = mayQueue ? await jobCount() : 0
      const res = await app.inject({
        method: (r.method ?? r.route[0]) as 'GET',
        url: path,
        query: r.query,
        headers,
        ...(r.body !== undefined && r.route[0] !== 'GET' ? { payload: r.body } : {}),
      })
      requests++
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
      if (mayQueue && res.statusCode >= 400 && (await jobCount()) !== jobsBefore) rejectedThatQueued++
      if (res.statusCode >= 500 && res.statusCode !== 503) return false
      if (res.statusCode >= 400 && r.method !== 'HEAD') {
        const e = res.json()
        return (
          typeof e.code === 'string' &&
          e.code.startsWith('DC_ERR_') &&
          e.statusCode === res.statusCode &&
          typeof e.message === 'string' &&
          typeof e.error === 'string'
        )
      }
      return true
    }),
    { numRuns: Number(process.env.FUZZ_RUNS ?? 2500), seed: Number(process.env.FUZZ_SEED ?? Date.now() % 100000) },
  )
  t.comment(`${requests} requests; statuses ${JSON.stringify(Object.fromEntries(statuses))}`)
  t.equal(proxy.calls.filter((c) => WRITES.has(c.operation)).length, 0, 'nothing was written to DynamoDB')
  t.equal(rejectedThatQueued, 0, 'no rejected request queued a job')
  t.notOk(statuses.has(500), 'no 500')
})

/** Jobs in every queue but cache-refresh (a stale GET may rightly queue a refresh). */
async function jobCount(): Promise<number> {
  let n = 0
  for (const name of QUEUE_NAMES.filter((q) => q !== 'cache-refresh')) {
    const counts = await app.queues.queue(name).getJobCounts()
    n += Object.values(counts).reduce((a, b) => a + b, 0)
  }
  return n
}
