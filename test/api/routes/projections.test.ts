import t from 'tap'
import { auth, build } from '../../helpers/app.ts'
import { startDynamoProxy } from '../../helpers/dynamo-proxy.ts'
import { startServices } from '../../helpers/services.ts'
import { createTable, everyTypeItem, putItems, testDynamo } from '../../helpers/tables.ts'

// Two tables of one shape holding different values under the same keys: an entry of one must never answer the other.
const services = await startServices(t)
const proxy = await startDynamoProxy(services.dynamoEndpoint)
t.teardown(() => proxy.close())
const dynamo = testDynamo(t, services.dynamoEndpoint)
for (const [table, tag] of [
  ['projA', 'A'],
  ['projB', 'B'],
] as const) {
  await createTable(dynamo, table, { PK: 'S', SK: 'S' }, { byStatus: { status: 'S', SK: 'S' } })
  await putItems(dynamo, table, [
    { ...everyTypeItem({ PK: { S: 'p' }, SK: { S: 's1' } }), status: { S: 'open' }, tags: { L: [{ S: `${tag}0` }, { S: `${tag}1` }] }, who: { S: tag } },
    { PK: { S: 'p' }, SK: { S: 's2' }, status: { S: 'open' }, who: { S: tag }, other: { S: 'x' } },
  ])
}

const app = await build(t, { ...services, dynamoEndpoint: proxy.endpoint })
const get = (url: string) => app.inject({ method: 'GET', url, headers: auth('read') })
const f = (fields: string) => encodeURIComponent(fields)

t.test('fields on item, scan and query: only those paths and the keys, MISS then HIT with the same bytes', async (t) => {
  const fields = f('who,n,ns,b,bs,m.nested.n,tags[1]')
  for (const view of ['document', 'typed']) {
    for (const url of [
      `/tables/projA/items/p?sk=s1&fields=${fields}&view=${view}`,
      `/tables/projA/items?fields=${fields}&view=${view}`,
      `/tables/projA/items?index=byStatus&fields=${fields}&view=${view}`,
      `/tables/projA/query?pk=p&fields=${fields}&view=${view}`,
      `/tables/projA/query?pk=open&index=byStatus&fields=${fields}&view=${view}`,
    ]) {
      const miss = await get(url)
      t.equal(miss.statusCode, 200, `${url}: ${miss.body.slice(0, 300)}`)
      t.equal(miss.headers['x-cache'], 'MISS', url)
      const before = proxy.count()
      const hit = await get(url)
      t.equal(hit.headers['x-cache'], 'HIT', url)
      t.equal(hit.body, miss.body, `${url}: byte-identical`)
      t.equal(proxy.count(), before, 'a hit reads nothing')
      const body = miss.json()
      const first = 'items' in body ? body.items.find((i: { SK: unknown }) => JSON.stringify(i.SK).includes('s1')) : body
      const expected = ['PK', 'SK', 'b', 'bs', 'm', 'n', 'ns', 'tags', 'who', ...(url.includes('byStatus') ? ['status'] : [])]
      t.same(Object.keys(first).sort(), expected.sort(), `${url}: the paths asked for and the key attributes`)
      if (view === 'document') {
        t.match(miss.body, '"n":12345678901234567890.123456789012345678', 'every digit kept')
        t.match(miss.body, '"ns":[1,99999999999999999999999999999999999999]', 'a number set as an array, every digit kept')
        t.equal(first.b, Buffer.from([0, 1, 2, 253, 254, 255]).toString('base64'))
        t.same(first.m, { nested: { n: 7 } })
        t.same(first.tags, ['A1'], 'tags[1] only')
        t.equal(first.who, 'A')
      } else {
        t.same(first.n, { N: '12345678901234567890.123456789012345678' })
        t.same(first.ns, { NS: ['1', '99999999999999999999999999999999999999'] })
        t.same(first.bs, { BS: [Buffer.from([1]).toString('base64'), Buffer.from([2, 3]).toString('base64')] })
        t.same(first.tags, { L: [{ S: 'A1' }] })
      }
    }
  }
})

t.test('fields are part of the identity: per table, per list; spacing does not matter', async (t) => {
  const a = await get('/tables/projA/items/p?sk=s1&fields=who')
  const b = await get('/tables/projB/items/p?sk=s1&fields=who')
  t.equal(b.headers['x-cache'], 'MISS', 'table B never answered by table A')
  t.same(a.json(), { PK: 'p', SK: 's1', who: 'A' })
  t.same(b.json(), { PK: 'p', SK: 's1', who: 'B' })
  const other = await get('/tables/projA/items/p?sk=s1&fields=status')
  t.equal(other.headers['x-cache'], 'MISS', 'another list is another entry')
  t.same(other.json(), { PK: 'p', SK: 's1', status: 'open' })
  const whole = await get('/tables/projA/items/p?sk=s1')
  t.equal(whole.headers['x-cache'], 'MISS', 'the whole item is another entry')
  t.ok(Object.keys(whole.json()).length > 5)
  const spaced = await get(`/tables/projA/items/p?sk=s1&fields=${f(' who ')}`)
  t.equal(spaced.headers['x-cache'], 'HIT', 'the canonical list shares the entry')
  t.equal(spaced.body, a.body)
  const scanA = (await get('/tables/projA/items?fields=other')).json()
  const scanB = await get('/tables/projB/items?fields=other')
  t.equal(scanB.headers['x-cache'], 'MISS')
  t.same(
    scanA.items,
    [
      { PK: 'p', SK: 's1' },
      { PK: 'p', SK: 's2', other: 'x' },
    ],
    'an item without the path keeps its keys',
  )
})

t.test('cursors still page through a projected scan', async (t) => {
  const one = (await get('/tables/projB/items?fields=who&limit=1')).json()
  t.equal(one.items.length, 1)
  t.ok(one.cursor)
  const two = (await get(`/tables/projB/items?fields=who&limit=1&cursor=${encodeURIComponent(one.cursor)}`)).json()
  t.same([...one.items, ...two.items].map((i: { SK: string }) => i.SK).sort(), ['s1', 's2'])
})

t.test('bad fields are 400 before anything is read or cached', async (t) => {
  const cases: Array<[string, string]> = [
    [`/tables/projA/items/p?sk=s1&fields=${f(Array.from({ length: 200 }, (_, i) => `a${i}`).join(','))}`, 'DC_ERR_VALIDATION'],
    [`/tables/projA/items?fields=${f('a..b')}`, 'DC_ERR_VALIDATION'],
    [`/tables/projA/query?pk=p&fields=${f('a,a.b')}`, 'DC_ERR_VALIDATION'],
    [`/tables/projA/items?fields=${f('tags[x]')}`, 'DC_ERR_VALIDATION'],
    [`/tables/projA/items?fields=${f('a,')}`, 'DC_ERR_VALIDATION'],
    ['/tables/projA/items?fields=', 'DC_ERR_VALIDATION'],
    [`/tables/projA/items/p?sk=s1&fields=${f('PK.x')}`, 'DC_ERR_VALIDATION'],
    ['/tables/projA/items?fields=a&index=nope-index', 'DC_ERR_INDEX_NOT_FOUND'],
  ]
  for (const [url, code] of cases) {
    const before = proxy.count()
    const res = await get(url)
    t.equal(res.statusCode, 400, url)
    t.equal(res.json().code, code, url)
    t.equal(proxy.count(), before, `${url}: nothing read`)
    const again = await get(url)
    t.equal(again.statusCode, 400, 'not cached as an answer either')
    t.equal(again.headers['x-cache'], undefined)
  }
})
