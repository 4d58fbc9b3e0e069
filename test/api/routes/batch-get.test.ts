import t from 'tap'
import { startRedisServer } from '../../../src/local/services/redis.ts'
import { auth, build } from '../../helpers/app.ts'
import { startDynamoProxy } from '../../helpers/dynamo-proxy.ts'
import { startServices } from '../../helpers/services.ts'
import { createTable, everyTypeItem, putItems, testDynamo } from '../../helpers/tables.ts'
import { waitFor } from '../../helpers/wait.ts'

// Two tables of one shape with the same keys and different values: an entry of one never answers the other.
const services = await startServices(t)
const proxy = await startDynamoProxy(services.dynamoEndpoint)
t.teardown(() => proxy.close())
const dynamo = testDynamo(t, services.dynamoEndpoint)
const N = 150
for (const [table, tag] of [
  ['bgA', 'A'],
  ['bgB', 'B'],
  ['hiddenT', 'H'],
] as const) {
  await createTable(dynamo, table, { PK: 'S', SK: 'N' })
  await putItems(
    dynamo,
    table,
    Array.from({ length: N }, (_, i) => ({
      ...(i === 0 ? everyTypeItem({}) : {}),
      PK: { S: `p${i % 7}` },
      SK: { N: String(i) },
      who: { S: `${tag}${i}` },
      tags: { L: [{ S: 'x' }, { S: `t${i}` }] },
    })),
  )
}
await createTable(dynamo, 'bgBlob', { id: 'B' })
await putItems(dynamo, 'bgBlob', [{ id: { B: new Uint8Array([1, 2, 3]) }, v: { S: 'blob' } }])

const app = await build(t, { ...services, dynamoEndpoint: proxy.endpoint }, { TABLES_DENY: 'hidden*' })
const key = (i: number) => ({ PK: `p${i % 7}`, SK: i })
const batchGet = (table: string, body: unknown, headers: Record<string, string> = {}) =>
  app.inject({
    method: 'POST',
    url: `/tables/${table}/items/batch-get`,
    headers: { ...auth('read'), 'content-type': 'application/json', ...headers },
    payload: body as object | string,
  })
const getOne = (table: string, i: number, query = '') =>
  app.inject({ method: 'GET', url: `/tables/${table}/items/p${i % 7}?sk=${i}${query}`, headers: auth('read') })

t.test('100 keys, 60 cached: one BatchGetItem of the other 40; a batch warms single reads and the other way round', async (t) => {
  const keys = Array.from({ length: 100 }, (_, i) => i)
  const cached = keys.filter((i) => i % 5 < 3)
  // 30 warmed by single reads, 30 by an earlier batch.
  for (const i of cached.slice(0, 30)) t.equal((await getOne('bgA', i)).headers['x-cache'], 'MISS')
  t.equal((await batchGet('bgA', { keys: cached.slice(30).map(key) })).statusCode, 200)
  proxy.reset()
  const res = await batchGet('bgA', { keys: keys.map(key) })
  t.equal(res.statusCode, 200, res.body.slice(0, 300))
  t.equal(proxy.count('BatchGetItem', 'bgA'), 1, 'exactly one BatchGetItem')
  t.equal(proxy.requests('BatchGetItem', 'bgA').length, 40, 'of the 40 keys no entry held')
  t.equal(proxy.count('GetItem'), 0)
  t.same(res.headers['x-cache-items'], keys.map((i) => (i % 5 < 3 ? 'HIT' : 'MISS')).join(','), 'per-item outcome in request order')
  const items = res.json().items as Array<{ SK: number; who: string }>
  t.same(
    items.map((it) => it.SK),
    keys,
    'answers in request order',
  )
  t.same(
    items.map((it) => it.who),
    keys.map((i) => `A${i}`),
  )
  const single = await getOne('bgA', 4)
  t.equal(single.headers['x-cache'], 'HIT', 'an item the batch read is a HIT for the single route')
  t.equal(`{"items":[${single.body}]}`, (await batchGet('bgA', { keys: [key(4)] })).body, 'the same bytes')
  proxy.reset()
  const again = await batchGet('bgA', { keys: keys.map(key) })
  t.equal(again.headers['x-cache-items'], keys.map(() => 'HIT').join(','))
  t.equal(again.body, res.body, 'MISS then HIT: byte-identical')
  t.equal(proxy.count(), 0, 'nothing read')
})

t.test('missing keys are null, cached too; table B is never answered by table A', async (t) => {
  const body = { keys: [key(1), { PK: 'nope', SK: 1 }, key(2)] }
  const a = await batchGet('bgA', body)
  t.same(
    a.json().items.map((i: { who?: string } | null) => i?.who ?? null),
    ['A1', null, 'A2'],
  )
  const b = await batchGet('bgB', body)
  t.equal(b.headers['x-cache-items'], 'MISS,MISS,MISS', 'same keys, other table: its own entries')
  t.same(
    b.json().items.map((i: { who?: string } | null) => i?.who ?? null),
    ['B1', null, 'B2'],
  )
  proxy.reset()
  const again = await batchGet('bgB', body)
  t.equal(again.headers['x-cache-items'], 'HIT,HIT,HIT', 'the missing key answered from its negative entry')
  t.equal(again.body, b.body)
  t.equal(proxy.count(), 0)
  const unnormal = await batchGet('bgA', {
    keys: [
      { PK: 'p1', SK: { N: '1.0' } },
      { PK: 'p2', SK: '2e0' },
    ],
  })
  t.same(
    unnormal.json().items.map((i: { who?: string } | null) => i?.who ?? null),
    ['A1', 'A2'],
    'a number key written another way still finds its item',
  )
})

t.test('exact types in both views; typed and document keys share entries; fields', async (t) => {
  const doc = await batchGet('bgA', { keys: [key(0)] })
  t.match(doc.body, '"n":12345678901234567890.123456789012345678', 'every digit kept')
  t.match(doc.body, '"ns":[1,99999999999999999999999999999999999999]')
  t.equal(doc.json().items[0].b, Buffer.from([0, 1, 2, 253, 254, 255]).toString('base64'))
  const typedKey = { PK: { S: 'p0' }, SK: { N: '0' } }
  const typed = await batchGet('bgA', { keys: [typedKey], view: 'typed' })
  t.equal(typed.headers['x-cache-items'], 'MISS', 'the typed view is its own entry')
  t.same(typed.json().items[0].n, { N: '12345678901234567890.123456789012345678' })
  t.same(typed.json().items[0].ns, { NS: ['1', '99999999999999999999999999999999999999'] })
  t.same(typed.json().items[0].bs, { BS: ['AQ==', 'AgM='] })
  const typedAgain = await batchGet('bgA', { keys: [key(0)], view: 'typed' })
  t.equal(typedAgain.headers['x-cache-items'], 'HIT', 'a document key names the same entry as a typed one')
  t.equal(typedAgain.body, typed.body)
  const single = await getOne('bgA', 0, '&view=typed')
  t.equal(single.headers['x-cache'], 'HIT')
  t.equal(single.body, typed.body.slice('{"items":['.length, -2), 'the single route serves the bytes the batch stored')

  const projected = await batchGet('bgA', { keys: [key(10), key(11)], fields: 'who,tags[1]' })
  t.same(projected.json().items, [
    { PK: 'p3', SK: 10, who: 'A10', tags: ['t10'] },
    { PK: 'p4', SK: 11, who: 'A11', tags: ['t11'] },
  ])
  t.equal((await getOne('bgA', 10, `&fields=${encodeURIComponent('who,tags[1]')}`)).headers['x-cache'], 'HIT', 'fields are part of the shared entry')
  const blob = await batchGet('bgBlob', { keys: [{ id: 'AQID' }] })
  t.same(blob.json().items, [{ id: 'AQID', v: 'blob' }], 'a binary key as base64')
  const blobTyped = await batchGet('bgBlob', { keys: [{ id: { B: 'AQID' } }] })
  t.equal(blobTyped.headers['x-cache-items'], 'HIT', 'typed binary names the same entry')
  t.equal((await app.inject({ method: 'GET', url: '/tables/bgBlob/items/AQID', headers: auth('read') })).headers['x-cache'], 'HIT', 'and the single route')
})

t.test('UnprocessedKeys for 30% of keys: every key is answered', async (t) => {
  const keys = Array.from({ length: 100 }, (_, i) => i + 50)
  proxy.reset()
  proxy.setFaults({ unprocessed: 0.3 })
  t.teardown(() => proxy.setFaults({}))
  const res = await batchGet('bgB', { keys: keys.map(key), fields: 'who' })
  proxy.setFaults({})
  t.equal(res.statusCode, 200, res.body.slice(0, 300))
  t.same(
    res.json().items.map((i: { who: string }) => i.who),
    keys.map((i) => `B${i}`),
  )
  t.ok(proxy.calls.filter((c) => c.operation === 'BatchGetItem' && (c.unprocessed ?? 0) > 0).length > 0, 'keys were handed back')
  t.ok(proxy.count('BatchGetItem', 'bgB') > 1, 'and retried')
  t.equal(proxy.requests('BatchGetItem', 'bgB').length, 100, 'each key read once in the end')
})

t.test('bad input is 400 (or 404 / 403) before anything is read or cached', async (t) => {
  const cases: Array<[string, unknown, number, string]> = [
    ['bgA', { keys: Array.from({ length: 101 }, (_, i) => key(i)) }, 400, 'DC_ERR_VALIDATION'],
    ['bgA', { keys: [] }, 400, 'DC_ERR_VALIDATION'],
    ['bgA', { keys: [key(1), key(2), key(1)] }, 400, 'DC_ERR_VALIDATION'],
    ['bgA', { keys: [key(1), { PK: { S: 'p1' }, SK: { N: '1.0' } }] }, 400, 'DC_ERR_VALIDATION'],
    ['bgA', { keys: [{ PK: 'p1' }] }, 400, 'DC_ERR_INVALID_KEY'],
    ['bgA', { keys: [{ PK: 'p1', SK: 1, x: 1 }] }, 400, 'DC_ERR_INVALID_KEY'],
    ['bgA', { keys: [{ PK: 'p1', SK: 'abc' }] }, 400, 'DC_ERR_INVALID_KEY'],
    ['bgA', { keys: [{ PK: { N: '1' }, SK: 1 }] }, 400, 'DC_ERR_INVALID_KEY'],
    ['bgA', '{"keys":[{"PK":"p1","SK":12345678901234567890}]}', 400, 'DC_ERR_INVALID_KEY'],
    ['bgA', { keys: [key(1)], fields: Array.from({ length: 200 }, (_, i) => `a${i}`).join(',') }, 400, 'DC_ERR_VALIDATION'],
    ['bgA', { keys: [key(1)], fields: 'SK.x' }, 400, 'DC_ERR_VALIDATION'],
    ['bgA', { keys: [key(1)], other: 1 }, 400, 'DC_ERR_VALIDATION'],
    ['hiddenT', { keys: [key(1)] }, 404, 'DC_ERR_TABLE_NOT_FOUND'],
  ]
  for (const [table, body, status, code] of cases) {
    proxy.reset()
    const res = await batchGet(table, body)
    t.equal(res.statusCode, status, `${JSON.stringify(body).slice(0, 80)}: ${res.body}`)
    t.equal(res.json().code, code)
    t.equal(proxy.count('BatchGetItem') + proxy.count('GetItem'), 0, 'no item read')
  }
  const forbidden = await app.inject({ method: 'POST', url: '/tables/bgA/items/batch-get', headers: auth('write'), payload: { keys: [key(1)] } })
  t.equal(forbidden.statusCode, 403)
})

t.test('with Redis down every read bypasses the cache, and the batch still makes one BatchGetItem', async (t) => {
  const redis = await startRedisServer()
  t.teardown(() => redis.stop().catch(() => {}))
  const cold = await build(t, { ...services, redisUrl: redis.url, dynamoEndpoint: proxy.endpoint })
  await redis.stop()
  await waitFor(
    'reads to bypass the dead Redis',
    async () => {
      const res = await cold.inject({ method: 'GET', url: '/tables/bgB/items/p0?sk=0', headers: auth('read') })
      return res.headers['x-cache'] === 'BYPASS'
    },
    15_000,
    50,
  )
  proxy.reset()
  const keys = Array.from({ length: 30 }, (_, i) => key(i + 100))
  const res = await cold.inject({ method: 'POST', url: '/tables/bgB/items/batch-get', headers: auth('read'), payload: { keys } })
  t.equal(res.statusCode, 200, res.body.slice(0, 200))
  t.equal(res.headers['x-cache-items'], keys.map(() => 'BYPASS').join(','))
  t.same(
    res.json().items.map((i: { who: string }) => i.who),
    keys.map((k) => `B${k.SK}`),
  )
  t.equal(proxy.count('BatchGetItem', 'bgB'), 1, 'one call for the 30 keys')
  t.equal(proxy.count('GetItem'), 0)
})
