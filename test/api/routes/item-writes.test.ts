/**
 * Issue 14, items 3 and 4: PUT, PATCH and DELETE of single items. Conditions hold (412, nothing written,
 * checked in DynamoDB directly); every invalid input answers 400 with its code and changes nothing; the
 * item's entry is written through and seen by every API process at once; document numbers keep every
 * digit; two tables of one shape and two tenants at once; consistent=true reads; a write whose answer is
 * lost is never sent again, so a PATCH add is applied at most once.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GetItemCommand, PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb'
import t from 'tap'
import { build, uniquePrefix } from '../../helpers/app.ts'
import { startDynamoProxy } from '../../helpers/dynamo-proxy.ts'
import { startFleet } from '../../helpers/isolation-fleet.ts'
import { startServices } from '../../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../../helpers/tables.ts'
import { waitFor } from '../../helpers/wait.ts'

const services = await startServices(t)
const dynamo = testDynamo(t, services.dynamoEndpoint)
// Two tables of one shape for one tenant, a third of the same shape for another tenant.
const TABLES = ['iw-a', 'iw-b', 'iw-c'] as const
for (const table of TABLES) {
  await createTable(dynamo, table, { pk: 'S', sk: 'N' }, { byG: { g: 'S', sk: 'N' } })
  await putItems(
    dynamo,
    table,
    [0, 1, 2].map((sk) => ({ pk: { S: 'p' }, sk: { N: String(sk) }, g: { S: 'g1' }, v: { N: '1' }, tbl: { S: table } })),
  )
}

const KEY = { acme: 'acme-iw-key-000000000001', globex: 'globex-iw-key-0000000001', acmeRead: 'acme-iw-read-key-0000001' } as const
const dir = await mkdtemp(join(tmpdir(), 'dc-item-writes-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const keysFile = join(dir, 'keys.json')
await writeFile(
  keysFile,
  JSON.stringify([
    { key: KEY.acme, scopes: ['read', 'write'], tenant: 'acme', tables: ['iw-a', 'iw-b'] },
    { key: KEY.acmeRead, scopes: ['read'], tenant: 'acme', tables: ['iw-a', 'iw-b'] },
    { key: KEY.globex, scopes: ['read', 'write'], tenant: 'globex', tables: ['iw-c'] },
  ]),
)
const overrides = { API_KEYS_FILE: keysFile, NEAR_CACHE_TTL_MS: '60000' }
const app = await build(t, services, { REDIS_PREFIX: uniquePrefix(), ...overrides })

const bearer = (key: string) => ({ authorization: `Bearer ${key}` })
type Method = 'GET' | 'PUT' | 'PATCH' | 'DELETE'
function call(method: Method, url: string, payload?: unknown, headers: Record<string, string> = {}, key: string = KEY.acme) {
  return app.inject({
    method,
    url,
    headers: { ...bearer(key), ...(payload !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(payload !== undefined ? { payload: typeof payload === 'string' ? payload : JSON.stringify(payload) } : {}),
  })
}

/** The item as DynamoDB has it now (ConsistentRead), or undefined. */
async function stored(table: string, pk: string, sk: number) {
  const out = await dynamo.send(new GetItemCommand({ TableName: table, Key: { pk: { S: pk }, sk: { N: String(sk) } }, ConsistentRead: true }))
  return out.Item
}
/** Every item of a table, as DynamoDB has it, in a stable order. */
async function snapshot(table: string) {
  const out = await dynamo.send(new ScanCommand({ TableName: table, ConsistentRead: true }))
  return JSON.stringify((out.Items ?? []).map((i) => JSON.stringify(i)).sort())
}

const BIG = '12345678901234567890123456789012345678'
const BIG_DECIMAL = '-0.00000000000000000000000000000000000001234567890123456789012345678901234567'

t.test('PUT a document: numbers keep every digit, the answer is the item, the entry is written through (a HIT at once)', async (t) => {
  // Raw JSON text: no double could carry these numbers.
  const body = `{"name":"doc","big":${BIG},"dec":${BIG_DECIMAL},"price":1.50,"e":1E+3,"ok":true,"none":null,"tags":["a",2],"m":{"x":{"y":"z"}}}`
  const res = await call('PUT', '/tables/iw-a/items/doc?sk=1', body)
  t.equal(res.statusCode, 200, res.body)
  t.match(res.body, `"big":${BIG}`, 'the answer has all 38 digits')
  t.match(res.body, `"dec":${BIG_DECIMAL}`)
  const item = await stored('iw-a', 'doc', 1)
  t.equal(item?.big?.N, BIG, 'DynamoDB holds all 38 digits')
  t.equal(item?.dec?.N, BIG_DECIMAL)
  t.same(item?.tags, { L: [{ S: 'a' }, { N: '2' }] })
  t.same(item?.m, { M: { x: { M: { y: { S: 'z' } } } } })

  const read = await call('GET', '/tables/iw-a/items/doc?sk=1')
  t.equal(read.headers['x-cache'], 'HIT', 'the written item is in the cache already')
  t.equal(read.body, res.body, 'and reads back byte for byte as the PUT answered')
  t.equal(read.headers.etag, res.headers.etag, 'with the ETag the PUT answered')
  t.match(read.body, `"big":${BIG}`)
  const fresh = await call('GET', '/tables/iw-a/items/doc?sk=1', undefined, { 'cache-control': 'no-cache' })
  t.equal(fresh.body, res.body, 'a read from DynamoDB renders the same bytes (numbers as DynamoDB stores them: 1.5, 1000)')
  const typed = await call('GET', '/tables/iw-a/items/doc?sk=1&view=typed')
  t.equal(typed.headers['x-cache'], 'HIT', 'the typed view is written through too')
  t.equal(typed.json().big.N, BIG)
})

t.test('PATCH set/remove/add/delete: the answer is the item as it is now; index partitions follow', async (t) => {
  t.equal((await call('PUT', '/tables/iw-a/items/pt?sk=1', { g: 'old', n: 1, gone: 'x' }, {}, KEY.acme)).statusCode, 200)
  // A document array is a list (L); add with an array makes a string set (SS).
  t.same((await call('PATCH', '/tables/iw-a/items/pt?sk=1', { add: { tags: ['a', 'b'] } })).json().tags, ['a', 'b'])
  t.same((await stored('iw-a', 'pt', 1))?.tags, { SS: ['a', 'b'] })
  // Cache the query of both GSI partitions and the item first.
  const oldQ = '/tables/iw-a/query?index=byG&pk=old'
  const newQ = '/tables/iw-a/query?index=byG&pk=new'
  t.equal((await call('GET', oldQ)).json().count, 1)
  t.equal((await call('GET', newQ)).json().count, 0)
  const res = await call('PATCH', '/tables/iw-a/items/pt?sk=1', {
    set: { g: 'new', 'm.deep': BIG },
    remove: ['gone'],
    add: { n: 41, cnt: 1 },
    delete: { tags: ['a'] },
  })
  t.equal(res.statusCode, 400, 'a nested path under a missing map is refused by DynamoDB (400, nothing written)')
  t.equal(res.json().code, 'DC_ERR_DYNAMO_REJECTED')
  const ok = await call(
    'PATCH',
    '/tables/iw-a/items/pt?sk=1',
    `{"set":{"g":"new","m":{"deep":${BIG}}},"remove":["gone"],"add":{"n":41,"cnt":1},"delete":{"tags":["a"]}}`,
  )
  t.equal(ok.statusCode, 200, ok.body)
  t.same(ok.json(), { pk: 'pt', sk: 1, g: 'new', n: 42, tags: ['b'], m: { deep: Number(BIG) }, cnt: 1 }, 'the new item')
  t.match(ok.body, `"deep":${BIG}`, 'every digit in the answer')
  const item = await stored('iw-a', 'pt', 1)
  t.equal(item?.n?.N, '42')
  t.equal(item?.gone, undefined)
  t.same(item?.tags, { SS: ['b'] })
  t.equal((await call('GET', oldQ)).json().count, 0, 'gone from the old index partition')
  t.equal((await call('GET', newQ)).json().count, 1, 'in the new one')
  const read = await call('GET', '/tables/iw-a/items/pt?sk=1')
  t.equal(read.headers['x-cache'], 'HIT')
  t.equal(read.body, ok.body, 'the cached item is the PATCH answer')
})

t.test('conditions hold: a condition that fails answers 412 and writes nothing', async (t) => {
  t.equal((await call('PUT', '/tables/iw-a/items/c?sk=1', { state: 'open', v: 1 })).statusCode, 200)
  const before = await stored('iw-a', 'c', 1)
  const failing = encodeURIComponent(JSON.stringify([{ attr: 'state', op: 'eq', value: 'closed' }]))
  for (const [method, payload] of [
    ['PUT', { state: 'x' }],
    ['PATCH', { set: { state: 'x' } }],
    ['DELETE', undefined],
  ] as const) {
    const res = await call(method, `/tables/iw-a/items/c?sk=1&condition=${failing}`, payload)
    t.equal(res.statusCode, 412, `${method} with a failing condition`)
    t.equal(res.json().code, 'DC_ERR_CONDITION_FAILED')
    t.same(await stored('iw-a', 'c', 1), before, `${method}: DynamoDB unchanged`)
  }
  const inBody = await call('PATCH', '/tables/iw-a/items/c?sk=1', {
    set: { state: 'x' },
    condition: {
      or: [
        { attr: 'v', op: 'gt', value: 5 },
        { attr: 'state', op: 'eq', value: 'held' },
      ],
    },
  })
  t.equal(inBody.statusCode, 412, 'a condition in the PATCH body, as JSON')
  t.same(await stored('iw-a', 'c', 1), before)
  const holds = await call('PATCH', '/tables/iw-a/items/c?sk=1', { set: { state: 'closed' }, condition: [{ attr: 'state', op: 'eq', value: 'open' }] })
  t.equal(holds.statusCode, 200, 'a condition that holds lets the write through')
  t.equal((await stored('iw-a', 'c', 1))?.state?.S, 'closed')
  const create = encodeURIComponent(JSON.stringify([{ attr: 'pk', op: 'not_exists' }]))
  t.equal((await call('PUT', `/tables/iw-a/items/c?sk=1&condition=${create}`, { v: 9 })).statusCode, 412, 'create-only over an existing item')
  t.equal((await call('PUT', `/tables/iw-a/items/c?sk=2&condition=${create}`, { v: 9 })).statusCode, 200, 'create-only of a new key')
})

t.test('If-Match with the ETag GET answered: the write happens only while the item is unchanged', async (t) => {
  t.equal((await call('PUT', '/tables/iw-a/items/m?sk=1', { v: 1, m: { a: [1, 2] } })).statusCode, 200)
  const read = await call('GET', '/tables/iw-a/items/m?sk=1')
  const etag = read.headers.etag as string
  const first = await call('PATCH', '/tables/iw-a/items/m?sk=1', { set: { v: 2 } }, { 'if-match': etag })
  t.equal(first.statusCode, 200, 'the ETag read matches')
  const before = await stored('iw-a', 'm', 1)
  const second = await call('PATCH', '/tables/iw-a/items/m?sk=1', { set: { v: 3 } }, { 'if-match': etag })
  t.equal(second.statusCode, 412, 'the same ETag again: the item has changed since')
  t.equal(second.json().code, 'DC_ERR_CONDITION_FAILED')
  t.same(await stored('iw-a', 'm', 1), before, 'nothing written')
  t.equal((await call('DELETE', '/tables/iw-a/items/m?sk=1', undefined, { 'if-match': etag })).statusCode, 412, 'DELETE with a stale ETag')
  t.ok(await stored('iw-a', 'm', 1), 'the item is still there')
  const typedEtag = (await call('GET', '/tables/iw-a/items/m?sk=1&view=typed')).headers.etag as string
  t.equal((await call('PUT', '/tables/iw-a/items/m?sk=1', { v: 4 }, { 'if-match': typedEtag })).statusCode, 200, "the typed view's ETag works too")
  t.equal((await call('PUT', '/tables/iw-a/items/none?sk=1', { v: 1 }, { 'if-match': '*' })).statusCode, 412, 'If-Match: * needs the item to exist')
  t.equal(await stored('iw-a', 'none', 1), undefined)
})

t.test('DELETE answers 204 and the key reads 404 at once; DynamoDB has no item', async (t) => {
  t.equal((await call('PUT', '/tables/iw-a/items/d?sk=1', { v: 1 })).statusCode, 200)
  t.equal((await call('GET', '/tables/iw-a/items/d?sk=1')).statusCode, 200)
  const res = await call('DELETE', '/tables/iw-a/items/d?sk=1')
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
  const read = await call('GET', '/tables/iw-a/items/d?sk=1')
  t.equal(read.statusCode, 404)
  t.equal(read.headers['x-cache'], 'HIT', 'the negative entry was written through')
  t.equal(await stored('iw-a', 'd', 1), undefined)
  t.equal((await call('DELETE', '/tables/iw-a/items/d?sk=1')).statusCode, 204, 'deleting nothing is 204 too')
})

t.test('every invalid input answers 400 with its code and writes nothing', async (t) => {
  t.equal((await call('PUT', '/tables/iw-a/items/inv?sk=1', { g: 'g1', v: 1, m: { a: 1 } })).statusCode, 200)
  const before = await snapshot('iw-a')
  const url = '/tables/iw-a/items/inv?sk=1'
  const cases: Array<[string, Method, string, unknown, string, RegExp]> = [
    ['PATCH sets the partition key', 'PATCH', url, { set: { pk: 'other' } }, 'DC_ERR_INVALID_UPDATE', /'pk' is a key attribute of the table/],
    ['PATCH removes the sort key', 'PATCH', url, { remove: ['sk'] }, 'DC_ERR_INVALID_UPDATE', /'sk' is a key attribute/],
    ['PATCH overlapping paths', 'PATCH', url, { set: { m: {}, 'm.a': 2 } }, 'DC_ERR_INVALID_UPDATE', /overlap/],
    ['PATCH the same path in set and remove', 'PATCH', url, { set: { v: 2 }, remove: ['v'] }, 'DC_ERR_INVALID_UPDATE', /overlap/],
    ['PATCH a path that is no path', 'PATCH', url, { set: { 'a..b': 1 } }, 'DC_ERR_INVALID_UPDATE', /not a document path/],
    ['PATCH a path with a space', 'PATCH', url, { remove: ['a b'] }, 'DC_ERR_INVALID_UPDATE', /document path/],
    ['PATCH a path nested 33 deep', 'PATCH', url, { set: { [Array(33).fill('a').join('.')]: 1 } }, 'DC_ERR_INVALID_UPDATE', /deeper than 32/],
    ['PATCH nothing', 'PATCH', url, {}, 'DC_ERR_INVALID_UPDATE', /nothing to update/],
    ['PATCH an index key of the wrong type', 'PATCH', url, { set: { g: 5 } }, 'DC_ERR_INVALID_UPDATE', /'g' is a key of an index and must be of type S/],
    ['PATCH inside an index key', 'PATCH', url, { set: { 'g.x': 'y' } }, 'DC_ERR_INVALID_UPDATE', /scalar/],
    ['PATCH add a string', 'PATCH', url, { add: { v: 'x' } }, 'DC_ERR_INVALID_UPDATE', /add takes a number or an array/],
    ['PATCH delete a number', 'PATCH', url, { delete: { v: 1 } }, 'DC_ERR_INVALID_UPDATE', /a set/],
    ['PATCH an empty set', 'PATCH', url, { add: { tags: [] } }, 'DC_ERR_INVALID_UPDATE', /non-empty array/],
    ['PATCH a 39-digit number', 'PATCH', url, `{"set":{"v":${'9'.repeat(39)}}}`, 'DC_ERR_INVALID_UPDATE', /39 significant digits/],
    ['PATCH an unknown field', 'PATCH', url, { set: { v: 1 }, replace: true }, 'DC_ERR_VALIDATION', /additional properties/],
    [
      'PATCH condition twice',
      'PATCH',
      `${url}&condition=${encodeURIComponent('[{"attr":"v","op":"exists"}]')}`,
      { set: { v: 1 }, condition: [{ attr: 'v', op: 'exists' }] },
      'DC_ERR_INVALID_CONDITION',
      /once/,
    ],
    [
      'a condition that does not parse',
      'PATCH',
      `${url}&condition=${encodeURIComponent('[{"attr":"v","op":"eq"')}`,
      { set: { v: 2 } },
      'DC_ERR_INVALID_CONDITION',
      /condition is not valid JSON/,
    ],
    [
      'a condition with an unknown op',
      'PUT',
      `${url}&condition=${encodeURIComponent('[{"attr":"v","op":"like","value":1}]')}`,
      { v: 2 },
      'DC_ERR_INVALID_CONDITION',
      /condition\[0\]\.op must be one of/,
    ],
    [
      'a condition in the body that is no condition',
      'PATCH',
      url,
      { set: { v: 2 }, condition: { attr: 'v' } },
      'DC_ERR_INVALID_CONDITION',
      /condition must be a JSON array/,
    ],
    ['DELETE with a bad condition', 'DELETE', `${url}&condition=%5B%5D`, undefined, 'DC_ERR_INVALID_CONDITION', /condition is empty/],
    ['PUT a body key that differs from the URL', 'PUT', url, { pk: 'other', v: 2 }, 'DC_ERR_INVALID_KEY', /differ from the key in the URL/],
    ['PUT a key of the wrong type', 'PUT', url, { sk: 'one', v: 2 }, 'DC_ERR_INVALID_KEY', /differ/],
    ['PUT sk that is no number', 'PUT', '/tables/iw-a/items/inv?sk=x', { v: 2 }, 'DC_ERR_INVALID_KEY', /number/],
    ['PUT without sk', 'PUT', '/tables/iw-a/items/inv', { v: 2 }, 'DC_ERR_INVALID_KEY', /sk/],
    ['PUT a 39-digit number', 'PUT', url, `{"v":${'1'.repeat(39)}}`, 'DC_ERR_INVALID_ITEM', /39 significant digits/],
    ['PUT an index key of the wrong type', 'PUT', url, { g: 1 }, 'DC_ERR_INVALID_ITEM', /'g' is a key of an index/],
    ['PUT an item over 400 KB', 'PUT', url, { s: 'x'.repeat(410 * 1024) }, 'DC_ERR_INVALID_ITEM', /DynamoDB's limit is 409600/],
    ['PUT bad typed JSON', 'PUT', `${url}&format=typed`, { v: { N: 5 } }, 'DC_ERR_INVALID_ITEM', /expected a number as a string/],
    ['PUT invalid JSON', 'PUT', url, '{"v": 1', 'DC_ERR_VALIDATION', /not valid JSON/],
    ['PUT a body that is no object', 'PUT', url, '[1]', 'DC_ERR_VALIDATION', /object/],
    ['an unknown format', 'PUT', `${url}&format=binary`, { v: 2 }, 'DC_ERR_VALIDATION', /format/],
  ]
  for (const [what, method, path, payload, code, message] of cases) {
    const res = await call(method, path, payload)
    t.equal(res.statusCode, 400, `${what}: 400`)
    t.equal(res.json().code, code, `${what}: ${code}`)
    t.match(res.json().message, message, `${what}: says why`)
  }
  t.equal(await snapshot('iw-a'), before, 'DynamoDB unchanged')
})

t.test("scope write and per-key tables: a read key gets 403, another tenant's table is as missing as an unknown one", async (t) => {
  const before = await Promise.all(TABLES.map(snapshot))
  const readOnly = await call('PUT', '/tables/iw-a/items/s?sk=1', { v: 1 }, {}, KEY.acmeRead)
  t.equal(readOnly.statusCode, 403)
  t.equal(readOnly.json().code, 'DC_ERR_FORBIDDEN')
  for (const method of ['PUT', 'PATCH', 'DELETE'] as const) {
    const res = await call(method, '/tables/iw-c/items/s?sk=1', method === 'PUT' ? { v: 1 } : method === 'PATCH' ? { set: { v: 1 } } : undefined)
    t.equal(res.statusCode, 404, `${method} of the other tenant's table`)
    t.equal(res.json().code, 'DC_ERR_TABLE_NOT_FOUND')
  }
  const invalidation = await app.inject({ method: 'POST', url: '/tables/iw-c/invalidations', headers: bearer(KEY.acme), payload: { scope: 'table' } })
  t.equal(invalidation.statusCode, 404, "invalidations of the other tenant's table too")
  t.same(await Promise.all(TABLES.map(snapshot)), before, 'nothing written anywhere')
})

t.test('two tables of one shape and two tenants at once: each write lands in its table and its entry only', async (t) => {
  // Cache the same key in all three tables first.
  for (const table of TABLES) {
    const key = table === 'iw-c' ? KEY.globex : KEY.acme
    t.equal((await call('GET', `/tables/${table}/items/p?sk=0`, undefined, {}, key)).json().tbl, table)
  }
  const writes = await Promise.all(
    TABLES.flatMap((table) => {
      const key = table === 'iw-c' ? KEY.globex : KEY.acme
      return Array.from({ length: 5 }, (_, i) => call('PATCH', `/tables/${table}/items/p?sk=0`, { add: { v: 1 }, set: { [`by${i}`]: table } }, {}, key))
    }),
  )
  t.same(
    writes.map((w) => w.statusCode),
    Array(15).fill(200),
    'every write answered 200',
  )
  for (const table of TABLES) {
    const key = table === 'iw-c' ? KEY.globex : KEY.acme
    const read = await call('GET', `/tables/${table}/items/p?sk=0`, undefined, {}, key)
    const item = read.json()
    t.equal(item.v, 6, `${table}: five increments, no more`)
    t.same(
      [0, 1, 2, 3, 4].map((i) => item[`by${i}`]),
      Array(5).fill(table),
      `${table}: only its own writes`,
    )
    t.equal((await stored(table, 'p', 0))?.v?.N, '6')
  }
})

t.test('consistent=true: never from the cache; its answer replaces the entry', async (t) => {
  t.equal((await call('PUT', '/tables/iw-b/items/cr?sk=1', { v: 1 })).statusCode, 200)
  t.equal((await call('GET', '/tables/iw-b/items/cr?sk=1')).headers['x-cache'], 'HIT')
  // Another writer changes the item behind the cache's back.
  await dynamo.send(new PutItemCommand({ TableName: 'iw-b', Item: { pk: { S: 'cr' }, sk: { N: '1' }, v: { N: '2' } } }))
  const cached = await call('GET', '/tables/iw-b/items/cr?sk=1')
  t.equal(cached.json().v, 1, 'a cached read still has the old value')
  const consistent = await call('GET', '/tables/iw-b/items/cr?sk=1&consistent=true')
  t.equal(consistent.statusCode, 200)
  t.equal(consistent.json().v, 2, 'a consistent read has the new one')
  t.equal(consistent.headers['x-cache'], 'MISS')
  t.match(consistent.headers['cache-status'], /fwd=request/)
  const after = await call('GET', '/tables/iw-b/items/cr?sk=1')
  t.equal(after.json().v, 2, 'and replaced the entry')
  t.equal(after.headers['x-cache'], 'HIT')
  const missing = await call('GET', '/tables/iw-b/items/nothing?sk=1&consistent=true')
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().code, 'DC_ERR_ITEM_NOT_FOUND')
})

t.test('consistent=true on scan and query pages: read from DynamoDB, stored as the entry; a GSI cannot be read consistently', async (t) => {
  const pages = ['/tables/iw-b/items?limit=100', '/tables/iw-b/query?pk=cp']
  t.equal((await call('PUT', '/tables/iw-b/items/cp?sk=1', { v: 1 })).statusCode, 200)
  for (const page of pages) {
    await call('GET', page)
    t.equal((await call('GET', page)).headers['x-cache'], 'HIT', `${page} cached`)
  }
  await dynamo.send(new PutItemCommand({ TableName: 'iw-b', Item: { pk: { S: 'cp' }, sk: { N: '1' }, v: { N: '2' } } }))
  const v = (res: { json(): unknown }) => (res.json() as { items: Array<{ pk: string; v: number }> }).items.find((i) => i.pk === 'cp')?.v
  for (const page of pages) {
    t.equal(v(await call('GET', page)), 1, `${page}: the cache has the old item`)
    const consistent = await call('GET', `${page}&consistent=true`)
    t.equal(consistent.statusCode, 200)
    t.equal(consistent.headers['x-cache'], 'MISS')
    t.equal(v(consistent), 2, `${page}&consistent=true: the new item`)
    const after = await call('GET', page)
    t.equal(after.headers['x-cache'], 'HIT')
    t.equal(v(after), 2, `${page}: the entry was replaced`)
  }
  const gsi = await call('GET', '/tables/iw-b/query?index=byG&pk=g1&consistent=true')
  t.equal(gsi.statusCode, 400)
  t.equal(gsi.json().code, 'DC_ERR_VALIDATION')
  t.match(gsi.json().message, /global secondary index 'byG'/)
})

t.test('write-through is seen by every API process at once (two processes, near cache on)', async (t) => {
  const fleet = await startFleet(t, services, overrides, { apiCount: 2 })
  const [a, b] = fleet.apis as [(typeof fleet.apis)[0], (typeof fleet.apis)[0]]
  const headers = bearer(KEY.acme)
  const path = '/tables/iw-b/items/wt?sk=1'
  t.equal((await a.request(path, { method: 'PUT', headers, body: { v: 1 } })).status, 200)
  // Both processes hold the item in their near cache.
  for (const api of [a, b]) {
    await api.request(path, { headers })
    t.equal((await api.request(path, { headers })).headers['x-cache'], 'HIT')
  }
  for (let round = 2; round <= 6; round++) {
    const writer = round % 2 ? b : a
    const res = await writer.request(path, { method: 'PATCH', headers, body: { set: { v: round } } })
    t.equal(res.status, 200, `round ${round}: PATCH answered`)
    for (const [name, api] of [
      ['a', a],
      ['b', b],
    ] as const) {
      const seen = await waitFor(
        `process ${name} to answer v=${round}`,
        async () => {
          const read = await api.request(path, { headers })
          return JSON.parse(read.text).v === round ? read : undefined
        },
        20_000,
        5,
      )
      t.equal(JSON.parse(seen.text).v, round, `round ${round}: process ${name} answers the new item`)
    }
  }
})

t.test('a write whose answer is lost is never sent again: a PATCH add under faults is applied at most once', async (t) => {
  const proxy = await startDynamoProxy(services.dynamoEndpoint)
  t.teardown(() => proxy.close())
  // Its own process behind the proxy; a breaker that stays closed through the faults below.
  const faulty = await build(
    t,
    { ...services, dynamoEndpoint: proxy.endpoint },
    { REDIS_PREFIX: uniquePrefix(), ...overrides, DYNAMO_TIMEOUT_MS: '3000', BREAKER_FAILURES: '100' },
  )
  const send = (method: Method, url: string, payload?: unknown) =>
    faulty.inject({
      method,
      url,
      headers: { ...bearer(KEY.acme), 'content-type': 'application/json' },
      ...(payload !== undefined ? { payload: JSON.stringify(payload) } : {}),
    })
  const path = '/tables/iw-b/items/counter?sk=1'
  t.equal((await send('PUT', path, { n: 0 })).statusCode, 200)
  t.equal((await send('GET', path)).json().n, 0, 'the item is cached')
  const n = async () => (await stored('iw-b', 'counter', 1))?.n?.N

  for (const fault of ['fail500', 'drop'] as const) {
    proxy.reset()
    proxy.setFaults({ [fault]: 1 })
    const res = await send('PATCH', path, { add: { n: 1 } })
    proxy.setFaults({})
    t.equal(res.statusCode, 503, `${fault}: 503`)
    t.equal(res.json().code, 'DC_ERR_DYNAMO_UNAVAILABLE')
    t.match(res.json().message, /may or may not have been applied/, `${fault}: the answer says the outcome is unknown`)
    t.equal(proxy.arrived('UpdateItem', 'iw-b'), 1, `${fault}: the UpdateItem was sent once, not again`)
    t.equal(await n(), '0', `${fault}: DynamoDB has n unchanged`)
  }

  // Throttling is answered before anything is applied: that one is sent again.
  proxy.reset()
  proxy.setFaults({ throttle: 1 })
  const throttled = await send('PATCH', path, { add: { n: 1 } })
  proxy.setFaults({})
  t.equal(throttled.statusCode, 503)
  t.equal(throttled.json().code, 'DC_ERR_DYNAMO_THROTTLED')
  t.equal(proxy.arrived('UpdateItem', 'iw-b'), 2, 'throttled: sent twice (API attempts)')
  t.equal(await n(), '0')

  // The write reaches DynamoDB after the caller gave up waiting: applied, answer lost.
  proxy.reset()
  proxy.setFaults({ latencyMs: 9000 })
  const lost = await send('PATCH', path, { add: { n: 1 } })
  t.equal(lost.statusCode, 503, 'no answer in time: 503')
  t.equal(lost.json().code, 'DC_ERR_DYNAMO_UNAVAILABLE')
  t.match(lost.json().message, /may or may not have been applied/)
  t.equal(proxy.arrived('UpdateItem', 'iw-b'), 1, 'sent once: the first attempt may still land')
  proxy.setFaults({})
  await waitFor('the delayed UpdateItem to reach DynamoDB', async () => (await n()) === '1')
  t.equal(proxy.count('UpdateItem', 'iw-b'), 1, 'one UpdateItem reached DynamoDB')
  t.equal(await n(), '1', 'DynamoDB has the add applied exactly once')
  const read = await send('GET', path)
  t.equal(read.headers['x-cache'], 'MISS', 'the cache forgot the item when the outcome was unknown')
  t.equal(read.json().n, 1, 'and reads what DynamoDB has')

  const ok = await send('PATCH', path, { add: { n: 1 } })
  t.equal(ok.statusCode, 200, ok.body)
  t.equal(await n(), '2', 'without faults the next add applies once')
})
