import { gunzipSync } from 'node:zlib'
import t from 'tap'
import { auth, build } from '../../helpers/app.ts'
import { startDynamoProxy } from '../../helpers/dynamo-proxy.ts'
import { startServices } from '../../helpers/services.ts'
import { createTable, everyTypeItem, putItems, testDynamo } from '../../helpers/tables.ts'

const services = await startServices(t)
const proxy = await startDynamoProxy(services.dynamoEndpoint)
t.teardown(() => proxy.close())
const dynamo = testDynamo(t, services.dynamoEndpoint)

await createTable(dynamo, 'orders', { PK: 'S', SK: 'S' }, { byStatus: { status: 'S', total: 'N' } })
await createTable(dynamo, 'users', { id: 'S' })
await createTable(dynamo, 'blobs', { id: 'B' })
await putItems(dynamo, 'orders', [
  everyTypeItem({ PK: { S: 'c#1' }, SK: { S: 'o#001' }, status: { S: 'open' }, total: { N: '10' } }),
  ...Array.from({ length: 60 }, (_, i) => ({
    PK: { S: `c#${i % 3}` },
    SK: { S: `o#${String(i + 100).padStart(3, '0')}` },
    status: { S: i % 2 ? 'open' : 'shipped' },
    total: { N: String(i * 10) },
  })),
])
await putItems(
  dynamo,
  'users',
  Array.from({ length: 10 }, (_, i) => ({ id: { S: `u${i}` }, name: { S: `user ${i}` } })),
)
await putItems(dynamo, 'blobs', [{ id: { B: new Uint8Array([1, 2, 3]) }, v: { S: 'blob' } }])

const app = await build(t, { ...services, dynamoEndpoint: proxy.endpoint }, { TABLES_DENY: 'blocked*' })
const get = (url: string, headers: Record<string, string> = {}) => app.inject({ method: 'GET', url, headers: { ...auth('read'), ...headers } })

const ROUTES = [
  '/tables',
  '/tables/orders',
  '/tables/orders/items?limit=5',
  '/tables/orders/items?limit=5&index=byStatus',
  '/tables/orders/items/c%231?sk=o%23001',
  '/tables/orders/items/c%231?sk=o%23001&view=typed',
  '/tables/orders/query?pk=c%231&skOp=begins_with&sk=o%231&limit=3',
  '/tables/orders/query?pk=open&index=byStatus&skOp=ge&sk=100&order=desc',
  `/tables/orders/query?pk=c%232&filter=${encodeURIComponent(JSON.stringify([{ attr: 'total', op: 'gt', value: 300 }]))}`,
  '/tables/blobs/items/AQID',
]

t.test('MISS then HIT for every read route, the same bytes both times', async (t) => {
  for (const url of ROUTES) {
    const miss = await get(url)
    t.equal(miss.statusCode, 200, `${url}: ${miss.body.slice(0, 200)}`)
    t.equal(miss.headers['x-cache'], 'MISS', url)
    t.match(miss.headers['cache-status'], /^dynacache; fwd=uri-miss; fwd-status=200; stored/)
    const before = proxy.count()
    const hit = await get(url)
    t.equal(hit.headers['x-cache'], 'HIT', url)
    t.match(hit.headers['cache-status'], /^dynacache; hit; ttl=\d+/)
    t.equal(hit.body, miss.body, `${url}: byte-identical`)
    t.equal(proxy.count(), before, `${url}: a hit reaches no DynamoDB`)
    t.equal(hit.headers.etag, miss.headers.etag)
    t.equal(hit.headers.vary, 'Accept-Encoding')
    // Query pages keep the short stale-if-error retention (STALE_IF_ERROR_SHORT_TTL), other reads STALE_IF_ERROR_TTL.
    const staleIfError = url.includes('/query?') ? 300 : 86400
    t.match(hit.headers['cache-control'], new RegExp(`^private, max-age=\\d+, stale-while-revalidate=\\d+, stale-if-error=${staleIfError}$`))
    t.match(hit.headers.age, /^\d+$/)
  }
})

t.test('what the routes return', async (t) => {
  t.same((await get('/tables')).json(), { tables: ['blobs', 'orders', 'users'] })
  const details = (await get('/tables/orders')).json()
  t.same(details.key, { partition: { name: 'PK', type: 'S' }, sort: { name: 'SK', type: 'S' } })
  t.same(
    details.indexes.map((i: { name: string; kind: string }) => [i.name, i.kind]),
    [['byStatus', 'GSI']],
  )
  t.equal(details.billingMode, 'PAY_PER_REQUEST')

  const item = await get('/tables/orders/items/c%231?sk=o%23001')
  t.match(item.body, '"n":12345678901234567890.123456789012345678', 'every digit kept, as a JSON number')
  t.same(item.json().ss, ['a', 'b'])
  t.equal(item.json().b, Buffer.from([0, 1, 2, 253, 254, 255]).toString('base64'))
  const typed = (await get('/tables/orders/items/c%231?sk=o%23001&view=typed')).json()
  t.same(typed.n, { N: '12345678901234567890.123456789012345678' })
  t.same(typed.ns, { NS: ['1', '99999999999999999999999999999999999999'] })

  const q = (await get('/tables/orders/query?pk=c%231&skOp=begins_with&sk=o%231&limit=3')).json()
  t.equal(q.count, 3)
  t.type(q.cursor, 'string')
  const next = (await get(`/tables/orders/query?pk=c%231&skOp=begins_with&sk=o%231&limit=3&cursor=${encodeURIComponent(q.cursor)}`)).json()
  t.ok(
    next.items.every((i: { SK: string }) => i.SK > q.items[2].SK),
    'the cursor continues after the last item',
  )

  const desc = (await get('/tables/orders/query?pk=open&index=byStatus&skOp=ge&sk=100&order=desc')).json()
  const totals = desc.items.map((i: { total: number }) => i.total)
  t.same(
    totals,
    [...totals].sort((a: number, b: number) => b - a),
    'descending',
  )
  t.ok(totals.every((n: number) => n >= 100))
  const filtered = (await get(ROUTES[8]!)).json()
  t.ok(filtered.items.length > 0 && filtered.items.every((i: { total: number }) => i.total > 300))

  let all: unknown[] = []
  let cursor: string | null = null
  do {
    const page: { items: unknown[]; cursor: string | null } = (
      await get(`/tables/users/items?limit=4${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)
    ).json()
    all = all.concat(page.items)
    cursor = page.cursor
  } while (cursor)
  t.equal(all.length, 10, 'paging the table visits every item once; cursor is null on the last page')
})

t.test('a missing item is 404 and is cached briefly', async (t) => {
  const before = proxy.count('GetItem')
  const first = await get('/tables/users/items/nobody')
  t.equal(first.statusCode, 404)
  t.equal(first.json().code, 'DC_ERR_ITEM_NOT_FOUND')
  for (let i = 0; i < 20; i++) t.equal((await get('/tables/users/items/nobody')).statusCode, 404)
  t.equal(proxy.count('GetItem') - before, 1, 'one DynamoDB read for 21 lookups of a missing key')
  const missing = await get('/tables/nope-table/items?limit=2')
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().code, 'DC_ERR_TABLE_NOT_FOUND')
})

t.test('a denied table answers exactly like a missing one', async (t) => {
  await createTable(dynamo, 'blocked-secrets', { id: 'S' })
  for (const path of ['', '/items', '/items/x', '/query?pk=x']) {
    const denied = await get(`/tables/blocked-secrets${path}`)
    const missing = await get(`/tables/no-such-table${path}`)
    t.equal(denied.statusCode, 404, path)
    t.equal(missing.statusCode, 404, path)
    t.same(denied.json(), { ...missing.json(), message: missing.json().message.replace('no-such-table', 'blocked-secrets') })
  }
  t.notOk((await get('/tables')).json().tables.includes('blocked-secrets'))
})

t.test('304 on a matching If-None-Match; gzip as stored; plain otherwise', async (t) => {
  const url = '/tables/orders/items?limit=20'
  const plain = await get(url)
  const etag = plain.headers.etag as string
  const notModified = await get(url, { 'if-none-match': etag })
  t.equal(notModified.statusCode, 304)
  t.equal(notModified.body, '')
  t.equal(notModified.headers.etag, etag)
  t.equal((await get(url, { 'if-none-match': `"other", ${etag}` })).statusCode, 304, 'a list of tags')
  t.equal((await get(url, { 'if-none-match': '"other"' })).statusCode, 200)

  const zipped = await get(url, { 'accept-encoding': 'gzip, deflate' })
  t.equal(zipped.headers['content-encoding'], 'gzip')
  const raw = zipped.rawPayload
  t.equal(gunzipSync(raw).toString(), plain.body, 'inflates to the plain body')
  t.equal(plain.headers['content-encoding'], undefined)
  t.equal((await get(url, { 'accept-encoding': 'gzip;q=0' })).headers['content-encoding'], undefined, 'q=0 refuses gzip')
})

t.test('Cache-Control: no-cache on the request goes to DynamoDB and refreshes the entry', async (t) => {
  const url = '/tables/users/items?limit=3'
  await get(url)
  const before = proxy.count('Scan')
  const fresh = await get(url, { 'cache-control': 'no-cache' })
  t.equal(fresh.headers['x-cache'], 'MISS')
  t.match(fresh.headers['cache-status'], /fwd=request/)
  t.equal(proxy.count('Scan') - before, 1)
  t.equal((await get(url)).headers['x-cache'], 'HIT')
})

t.test('bad input is a 400 with its code and reaches no DynamoDB', async (t) => {
  const page = (await get('/tables/orders/items?limit=2')).json()
  const cursor = page.cursor as string
  const tampered = `${cursor.slice(0, 5)}${cursor[5] === 'A' ? 'B' : 'A'}${cursor.slice(6)}`
  await get('/tables/users/items?limit=2')
  const before = proxy.count()
  const cases: Array<[string, string]> = [
    [`/tables/orders/items?limit=2&cursor=${encodeURIComponent(tampered)}`, 'DC_ERR_INVALID_CURSOR'],
    [`/tables/users/items?limit=2&cursor=${encodeURIComponent(cursor)}`, 'DC_ERR_INVALID_CURSOR'],
    [`/tables/orders/items?limit=2&index=byStatus&cursor=${encodeURIComponent(cursor)}`, 'DC_ERR_INVALID_CURSOR'],
    [`/tables/orders/query?pk=c%231&cursor=${encodeURIComponent(cursor)}`, 'DC_ERR_INVALID_CURSOR'],
    ['/tables/orders/items?limit=0', 'DC_ERR_VALIDATION'],
    ['/tables/orders/items?limit=5000', 'DC_ERR_VALIDATION'],
    ['/tables/orders/items?limit=abc', 'DC_ERR_VALIDATION'],
    ['/tables/orders/items?lmit=5', 'DC_ERR_VALIDATION'],
    ['/tables/orders/items?index=nope-index', 'DC_ERR_INDEX_NOT_FOUND'],
    ['/tables/orders/query?pk=x&index=nope-index', 'DC_ERR_INDEX_NOT_FOUND'],
    ['/tables/orders/query?pk=x&skOp=like&sk=a', 'DC_ERR_VALIDATION'],
    ['/tables/orders/query?pk=x&skOp=between&sk=a', 'DC_ERR_INVALID_QUERY'],
    ['/tables/orders/query?pk=x&filter=%5B%7B', 'DC_ERR_INVALID_FILTER'],
    ['/tables/orders/query?pk=x&filter=%7B%7D', 'DC_ERR_INVALID_FILTER'],
    [`/tables/orders/query?pk=x&filter=${encodeURIComponent('[{"attr":"a","op":"regex","value":1}]')}`, 'DC_ERR_INVALID_FILTER'],
    ['/tables/orders/query', 'DC_ERR_VALIDATION'],
    ['/tables/orders/items/c%231', 'DC_ERR_INVALID_KEY'],
    ['/tables/users/items/u1?sk=extra', 'DC_ERR_INVALID_KEY'],
    ['/tables/blobs/items/not*base64', 'DC_ERR_INVALID_KEY'],
    ['/tables/orders/query?pk=open&index=byStatus&sk=abc', 'DC_ERR_INVALID_KEY'],
    ['/tables/orders/items?view=fancy', 'DC_ERR_VALIDATION'],
  ]
  for (const [url, code] of cases) {
    const res = await get(url)
    t.equal(res.statusCode, 400, `${url} -> ${res.body}`)
    t.equal(res.json().code, code, url)
  }
  t.equal(proxy.count(), before, 'none of them reached DynamoDB')
})

t.test('statistics merge hits, misses and stale per table', async (t) => {
  const stats = await app.inject({ url: '/cache/stats', headers: auth('read') })
  t.equal(stats.statusCode, 200)
  const body = stats.json()
  t.ok(body.tables.orders.hits > 0)
  t.ok(body.tables.orders.misses > 0)
  t.ok(body.totals.hits >= body.tables.orders.hits)
  t.ok(body.totals.hitRate > 0 && body.totals.hitRate < 1)
  t.match(body.tables.orders.lastAccess, /^\d{4}-\d\d-\d\dT/)
  t.equal(body.popular[0].table, 'orders', 'the most read table is the most popular')
})

t.test("a table named __proto__ (a valid DynamoDB name) gets statistics of its own, not Object.prototype's", async (t) => {
  t.teardown(() => {
    for (const counter of ['hits', 'misses', 'stale', 'errors', 'lastAccess']) delete (Object.prototype as Record<string, unknown>)[counter]
  })
  // The table exists: a table that does not is never counted (issue 12, limits), so it would prove nothing.
  await createTable(dynamo, '__proto__', { id: 'S' })
  for (let i = 0; i < 2; i++) t.equal((await get('/tables/__proto__/items/a')).statusCode, 404, 'a missing item, counted like any other read')
  const stats = await app.inject({ url: '/cache/stats', headers: auth('read') })
  t.equal(stats.statusCode, 200)
  t.same(Object.keys(Object.prototype), [], 'Object.prototype gained no property')
  t.ok(Object.hasOwn(stats.json().tables, '__proto__'), 'the table is listed under its own name')
})
