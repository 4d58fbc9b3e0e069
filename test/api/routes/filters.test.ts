import { QueryCommand } from '@aws-sdk/client-dynamodb'
import t from 'tap'
import { itemsToTypedJson } from '../../../src/shared/dynamo/item-json.ts'
import { auth, build } from '../../helpers/app.ts'
import { startDynamoProxy } from '../../helpers/dynamo-proxy.ts'
import { startServices } from '../../helpers/services.ts'
import { createTable, type Item, putItems, testDynamo } from '../../helpers/tables.ts'

// Two tables of one shape under the same keys with different values; OR/IN filters through the API must
// give what DynamoDB (dynalite) itself returns for the same expression, written by hand and sent directly.
const services = await startServices(t)
const proxy = await startDynamoProxy(services.dynamoEndpoint)
t.teardown(() => proxy.close())
const dynamo = testDynamo(t, services.dynamoEndpoint)
const BIG = '1234567890123456789012345678901234567'
const STATUS = ['open', 'held', 'shipped', 'lost']
const item = (i: number, shift: number): Item => ({
  PK: { S: 'p' },
  SK: { N: String(i) },
  status: { S: STATUS[(i + shift) % 4]! },
  n: i % 5 === 0 ? { S: 'text' } : { N: String(i) },
  big: { N: `${BIG}${i % 10}` },
  tags: { L: Array.from({ length: i % 4 }, (_, j) => ({ S: `t${j}` })) },
  ...(i % 3 === 0 ? { x: { BOOL: true } } : {}),
  bin: { B: new Uint8Array([i % 4]) },
})
for (const [table, shift] of [
  ['filtA', 0],
  ['filtB', 1],
] as const) {
  await createTable(dynamo, table, { PK: 'S', SK: 'N' })
  await putItems(
    dynamo,
    table,
    Array.from({ length: 60 }, (_, i) => item(i, shift)),
  )
}

const app = await build(t, { ...services, dynamoEndpoint: proxy.endpoint })
const get = (url: string) => app.inject({ method: 'GET', url, headers: auth('read') })
const enc = (filter: unknown) => encodeURIComponent(typeof filter === 'string' ? filter : JSON.stringify(filter))

// Each filter with the same condition written by hand for DynamoDB.
const CASES: Array<{ filter: unknown; expression: string; names: Record<string, string>; values: Item }> = [
  {
    filter: {
      or: [
        { attr: 'status', op: 'eq', value: 'open' },
        { attr: 'n', op: 'gt', value: 40 },
      ],
    },
    expression: '#s = :open OR #n > :forty',
    names: { '#s': 'status', '#n': 'n' },
    values: { ':open': { S: 'open' }, ':forty': { N: '40' } },
  },
  {
    filter: [{ attr: 'status', op: 'in', value: ['open', 'held'] }],
    expression: '#s IN (:a, :b)',
    names: { '#s': 'status' },
    values: { ':a': { S: 'open' }, ':b': { S: 'held' } },
  },
  {
    filter: { not: { attr: 'status', op: 'in', value: ['open', 'lost'] } },
    expression: 'NOT (#s IN (:a, :b))',
    names: { '#s': 'status' },
    values: { ':a': { S: 'open' }, ':b': { S: 'lost' } },
  },
  {
    filter: [
      { attr: 'tags', op: 'ge', size: true, value: 2 },
      { attr: 'n', op: 'attribute_type', value: 'N' },
    ],
    expression: 'size(#t) >= :two AND attribute_type(#n, :type)',
    names: { '#t': 'tags', '#n': 'n' },
    values: { ':two': { N: '2' }, ':type': { S: 'N' } },
  },
  {
    filter: {
      and: [
        {
          or: [
            { attr: 'x', op: 'exists' },
            { attr: 'n', op: 'attribute_type', value: 'S' },
          ],
        },
        { not: { attr: 'status', op: 'eq', value: 'shipped' } },
      ],
    },
    expression: '(attribute_exists(#x) OR attribute_type(#n, :s)) AND NOT #st = :shipped',
    names: { '#x': 'x', '#n': 'n', '#st': 'status' },
    values: { ':s': { S: 'S' }, ':shipped': { S: 'shipped' } },
  },
  {
    filter: `{"or":[{"attr":"big","op":"in","value":[${BIG}3,{"N":"${BIG}7"}]},{"attr":"bin","op":"in","value":[{"B":"AA"}]}]}`,
    expression: '#b IN (:b3, :b7) OR #bin IN (:zero)',
    names: { '#b': 'big', '#bin': 'bin' },
    values: { ':b3': { N: `${BIG}3` }, ':b7': { N: `${BIG}7` }, ':zero': { B: new Uint8Array([0]) } },
  },
  {
    filter: [
      { attr: 'tags', op: 'eq', size: true, value: 0 },
      {
        or: [
          { attr: 'status', op: 'ne', value: 'held' },
          { attr: 'x', op: 'not_exists' },
        ],
      },
    ],
    expression: 'size(#t) = :zero AND (#s <> :held OR attribute_not_exists(#x))',
    names: { '#t': 'tags', '#s': 'status', '#x': 'x' },
    values: { ':zero': { N: '0' }, ':held': { S: 'held' } },
  },
]

t.test('OR, IN, NOT, size and attribute_type filters match what DynamoDB returns for the same expression', async (t) => {
  for (const table of ['filtA', 'filtB']) {
    for (const c of CASES) {
      const direct = await dynamo.send(
        new QueryCommand({
          TableName: table,
          KeyConditionExpression: '#pk = :pk',
          FilterExpression: c.expression,
          ExpressionAttributeNames: { '#pk': 'PK', ...c.names },
          ExpressionAttributeValues: { ':pk': { S: 'p' }, ...c.values },
        }),
      )
      t.ok((direct.Items ?? []).length > 0 && (direct.Items ?? []).length < 60, `${c.expression}: a real selection (${direct.Items?.length})`)
      const url = `/tables/${table}/query?pk=p&limit=1000&view=typed&filter=${enc(c.filter)}`
      const miss = await get(url)
      t.equal(miss.statusCode, 200, miss.body.slice(0, 300))
      t.equal(miss.headers['x-cache'], 'MISS', `${table}: its own entry`)
      t.same(miss.json().items, JSON.parse(itemsToTypedJson(direct.Items ?? [])), `${table} ${c.expression}`)
      const hit = await get(url)
      t.equal(hit.headers['x-cache'], 'HIT')
      t.equal(hit.body, miss.body, 'byte-identical')
      const documentView = await get(url.replace('view=typed', 'view=document'))
      t.equal(documentView.json().items.length, miss.json().items.length)
      if (c.expression.includes(':b3')) t.match(documentView.body, `"big":${BIG}3`, 'the 38-digit number kept in the document view')
    }
  }
})

t.test('bad filters are 400 before anything is read or cached', async (t) => {
  const cases: Array<[string, string]> = [
    [`/tables/filtA/query?pk=p&filter=${enc([{ attr: 'status', op: 'in', value: Array.from({ length: 101 }, (_, i) => `s${i}`) }])}`, 'DC_ERR_INVALID_FILTER'],
    [`/tables/filtA/query?pk=p&filter=${enc({ or: [] })}`, 'DC_ERR_INVALID_FILTER'],
    [`/tables/filtA/query?pk=p&filter=${enc({ or: [{ attr: 'SK', op: 'in', value: [1] }] })}`, 'DC_ERR_INVALID_FILTER'],
    [`/tables/filtA/query?pk=p&filter=${enc([{ attr: 'tags', op: 'gt', size: true, value: 'x' }])}`, 'DC_ERR_INVALID_FILTER'],
    [`/tables/filtA/query?pk=p&index=nope-index&filter=${enc({ or: [{ attr: 'x', op: 'exists' }] })}`, 'DC_ERR_INDEX_NOT_FOUND'],
  ]
  for (const [url, code] of cases) {
    proxy.reset()
    const res = await get(url)
    t.equal(res.statusCode, 400, url)
    t.equal(res.json().code, code, res.body)
    t.equal(proxy.count('Query'), 0, 'nothing read')
  }
})
