import t from 'tap'
import { COUNT_PAGES_PER_REQUEST } from '../../../src/shared/dynamo/resource-loader.ts'
import { auth, build } from '../../helpers/app.ts'
import { startDynamoProxy } from '../../helpers/dynamo-proxy.ts'
import { startServices } from '../../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../../helpers/tables.ts'

// Two tables of one shape: countA holds 50,000 items of ~400 bytes (about 20 DynamoDB pages of 1 MB, so
// counting it takes cursors whatever the machine's speed), countB 120 items under the same keys.
const services = await startServices(t)
const proxy = await startDynamoProxy(services.dynamoEndpoint)
t.teardown(() => proxy.close())
const dynamo = testDynamo(t, services.dynamoEndpoint)
const SIZE_A = 50_000
const pad = 'x'.repeat(400)
const item = (i: number) => ({
  PK: { S: `p${i % 50}` },
  SK: { N: String(i) },
  even: { BOOL: i % 2 === 0 },
  kind: { S: i % 3 === 0 ? 'a' : 'b' },
  pad: { S: pad },
})
for (const [table, size] of [
  ['countA', SIZE_A],
  ['countB', 120],
] as const) {
  await createTable(dynamo, table, { PK: 'S', SK: 'N' }, { byKind: { kind: 'S', SK: 'N' } })
  await putItems(
    dynamo,
    table,
    Array.from({ length: size }, (_, i) => item(i)),
  )
}

const app = await build(t, { ...services, dynamoEndpoint: proxy.endpoint })
const get = (url: string) => app.inject({ method: 'GET', url, headers: auth('read') })
const filter = (f: unknown) => encodeURIComponent(JSON.stringify(f))

t.test('a count of a 50,000-item table through cursors equals its size', async (t) => {
  let count = 0
  let scanned = 0
  let requests = 0
  let cursor: string | null = null
  do {
    const before = proxy.count('Scan', 'countA')
    const res = await get(`/tables/countA/items?select=count${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)
    t.equal(res.statusCode, 200, res.body.slice(0, 200))
    const body = res.json() as { count: number; scannedCount: number; cursor: string | null }
    t.same(Object.keys(body), ['count', 'scannedCount', 'cursor'])
    t.ok(proxy.count('Scan', 'countA') - before <= COUNT_PAGES_PER_REQUEST, 'at most the stated bound of pages per request')
    count += body.count
    scanned += body.scannedCount
    cursor = body.cursor
    requests++
  } while (cursor && requests < 100)
  t.equal(count, SIZE_A)
  t.equal(scanned, SIZE_A)
  t.ok(requests > 1, `took ${requests} requests: the bound applies and cursors continue`)
})

t.test('counts are cached like pages: MISS then HIT, same bytes, both views one entry, per table', async (t) => {
  for (const url of [
    '/tables/countB/items?select=count',
    '/tables/countB/items?select=count&index=byKind',
    '/tables/countB/query?pk=p7&select=count',
    `/tables/countB/query?pk=p7&select=count&filter=${filter([{ attr: 'even', op: 'eq', value: true }])}`,
    '/tables/countB/query?pk=a&index=byKind&skOp=lt&sk=600&select=count',
  ]) {
    const miss = await get(url)
    t.equal(miss.statusCode, 200, `${url}: ${miss.body}`)
    t.equal(miss.headers['x-cache'], 'MISS', url)
    const before = proxy.count()
    const hit = await get(`${url}&view=typed&limit=7`)
    t.equal(hit.headers['x-cache'], 'HIT', `${url}: view and limit do not change a count`)
    t.equal(hit.body, miss.body, 'byte-identical')
    t.equal(proxy.count(), before, 'a hit reads nothing')
    // The first URL was counted for table A by the test above.
    const other = await get(url.replace('countB', 'countA'))
    if (url !== '/tables/countB/items?select=count') t.equal(other.headers['x-cache'], 'MISS', 'table A is never answered by table B')
    t.not(other.body, miss.body, 'table A has its own count')
  }
  t.same((await get('/tables/countB/items?select=count')).json(), { count: 120, scannedCount: 120, cursor: null })
  t.same((await get('/tables/countB/items?select=count&index=byKind')).json(), { count: 120, scannedCount: 120, cursor: null })
  t.same((await get('/tables/countB/query?pk=p7&select=count')).json(), { count: 3, scannedCount: 3, cursor: null }, 'p7: 7, 57, 107')
  t.same(
    (await get(`/tables/countB/query?pk=p7&select=count&filter=${filter([{ attr: 'even', op: 'eq', value: true }])}`)).json(),
    { count: 0, scannedCount: 3, cursor: null },
    'count after the filter, scannedCount before',
  )
  t.same((await get('/tables/countB/query?pk=a&index=byKind&skOp=lt&sk=600&select=count')).json(), { count: 40, scannedCount: 40, cursor: null })
  t.same((await get('/tables/countA/query?pk=p7&select=count')).json(), { count: 1000, scannedCount: 1000, cursor: null })
  const page = await get('/tables/countB/items?limit=5')
  t.equal(page.headers['x-cache'], 'MISS', 'a count never answers a page')
  t.equal(page.json().items.length, 5)
})

t.test('cursors of counts and of pages do not mix; bad input is 400 before anything is read', async (t) => {
  const countCursor = (await get('/tables/countA/items?select=count')).json().cursor as string
  const pageCursor = (await get('/tables/countA/items?limit=1')).json().cursor as string
  const cases: Array<[string, string]> = [
    [`/tables/countA/items?cursor=${encodeURIComponent(countCursor)}`, 'DC_ERR_INVALID_CURSOR'],
    [`/tables/countA/items?select=count&cursor=${encodeURIComponent(pageCursor)}`, 'DC_ERR_INVALID_CURSOR'],
    [`/tables/countB/items?select=count&cursor=${encodeURIComponent(countCursor)}`, 'DC_ERR_INVALID_CURSOR'],
    ['/tables/countA/items?select=count&fields=kind', 'DC_ERR_VALIDATION'],
    ['/tables/countA/items?select=all', 'DC_ERR_VALIDATION'],
    ['/tables/countA/items?select=count&index=nope-index', 'DC_ERR_INDEX_NOT_FOUND'],
    ['/tables/countA/query?pk=p1&select=count&index=nope-index', 'DC_ERR_INDEX_NOT_FOUND'],
  ]
  for (const [url, code] of cases) {
    const before = proxy.count()
    const res = await get(url)
    t.equal(res.statusCode, 400, url)
    t.equal(res.json().code, code, url)
    t.equal(proxy.count(), before, `${url}: nothing read`)
  }
})
