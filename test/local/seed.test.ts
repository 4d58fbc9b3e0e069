import {
  type AttributeValue,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  ScanCommand,
  type ScanCommandInput,
} from '@aws-sdk/client-dynamodb'
import t from 'tap'
import { BIG_BYTES, DEMO_COUNTS, DEMO_ORDERS_TABLE, DEMO_USERS_TABLE, demoOrder, demoUser, type Item, PRECISE_NUMBER } from '../../src/local/demo-data.ts'
import { seedDemoTables } from '../../src/local/seed.ts'
import { startDynalite } from '../../src/local/services/dynalite.ts'
import { startServices } from '../helpers/services.ts'

const clientFor = (endpoint: string) => {
  const client = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  })
  t.teardown(() => client.destroy())
  return client
}

/** Scan Select COUNT over every page (and segment): DescribeTable's ItemCount is always 0 on dynalite. */
async function count(client: DynamoDBClient, table: string, index?: string): Promise<number> {
  let total = 0
  await scanPages(client, { TableName: table, IndexName: index, Select: 'COUNT' }, (page) => (total += page.Count ?? 0))
  return total
}

async function scanPages(client: DynamoDBClient, input: ScanCommandInput, onPage: (page: { Count?: number; Items?: Item[] }) => void): Promise<void> {
  const segments = 4
  await Promise.all(
    Array.from({ length: segments }, async (_, segment) => {
      let start: Item | undefined
      do {
        const page = await client.send(new ScanCommand({ ...input, Segment: segment, TotalSegments: segments, ExclusiveStartKey: start }))
        onPage(page)
        start = page.LastEvaluatedKey
      } while (start)
    }),
  )
}

/** Every attribute-value type in `value`, nested maps and lists included. */
function collectTypes(value: AttributeValue, into: Set<string>, depth = 0): void {
  const [type, inner] = Object.entries(value)[0]!
  into.add(type === 'M' && depth > 0 ? 'M(nested)' : type)
  if (type === 'M') for (const v of Object.values(inner as Item)) collectTypes(v, into, depth + 1)
  if (type === 'L') for (const v of inner as AttributeValue[]) collectTypes(v, into, depth + 1)
}

/** DynamoDB's item size, closely enough: names plus values (binary and strings by byte length). */
function itemBytes(item: Item): number {
  const size = (v: AttributeValue): number => {
    if (v.S !== undefined) return Buffer.byteLength(v.S)
    if (v.B !== undefined) return v.B.length
    if (v.N !== undefined) return v.N.length
    if (v.M) return Object.entries(v.M).reduce((n, [k, x]) => n + k.length + size(x), 0)
    if (v.L) return v.L.reduce((n, x) => n + size(x), 0)
    if (v.SS) return v.SS.reduce((n, x) => n + Buffer.byteLength(x), 0)
    if (v.NS) return v.NS.reduce((n, x) => n + x.length, 0)
    if (v.BS) return v.BS.reduce((n, x) => n + x.length, 0)
    return 1
  }
  return Object.entries(item).reduce((n, [k, v]) => n + k.length + size(v), 0)
}

t.test('the default demo data: tables, indexes, counts, every type, exact numbers, big items', async (t) => {
  const services = await startServices(t)
  const target = { endpoint: services.dynamoEndpoint }
  const client = clientFor(target.endpoint)

  const started = Date.now()
  const report = await seedDemoTables(target)
  const seedMs = Date.now() - started
  t.comment(`seeded ${DEMO_COUNTS.users + DEMO_COUNTS.orders} items in ${seedMs} ms`)
  t.same(
    report.seeded.map((s) => [s.table, s.items]),
    [
      [DEMO_USERS_TABLE, DEMO_COUNTS.users],
      [DEMO_ORDERS_TABLE, DEMO_COUNTS.orders],
    ],
  )
  t.same(report.reused, [])

  const users = (await client.send(new DescribeTableCommand({ TableName: DEMO_USERS_TABLE }))).Table!
  t.same(users.KeySchema, [{ AttributeName: 'userId', KeyType: 'HASH' }])
  t.match(users.GlobalSecondaryIndexes, [{ IndexName: 'byEmail', KeySchema: [{ AttributeName: 'email', KeyType: 'HASH' }] }])
  t.equal(users.GlobalSecondaryIndexes?.length, 1)
  const orders = (await client.send(new DescribeTableCommand({ TableName: DEMO_ORDERS_TABLE }))).Table!
  t.same(orders.KeySchema, [
    { AttributeName: 'PK', KeyType: 'HASH' },
    { AttributeName: 'SK', KeyType: 'RANGE' },
  ])
  t.match(orders.GlobalSecondaryIndexes, [
    {
      IndexName: 'byStatus',
      KeySchema: [
        { AttributeName: 'status', KeyType: 'HASH' },
        { AttributeName: 'createdAt', KeyType: 'RANGE' },
      ],
    },
  ])

  t.equal(await count(client, DEMO_USERS_TABLE), DEMO_COUNTS.users, 'every user, once')
  t.equal(await count(client, DEMO_USERS_TABLE, 'byEmail'), DEMO_COUNTS.users, 'every user is in byEmail')
  t.equal(await count(client, DEMO_ORDERS_TABLE), DEMO_COUNTS.orders, 'every order, once')
  t.equal(await count(client, DEMO_ORDERS_TABLE, 'byStatus'), DEMO_COUNTS.orders, 'every order is in byStatus')

  const types = new Set<string>()
  const big: number[] = []
  for (const table of [DEMO_USERS_TABLE, DEMO_ORDERS_TABLE]) {
    await scanPages(client, { TableName: table }, (page) => {
      for (const item of page.Items ?? []) {
        for (const value of Object.values(item)) collectTypes(value, types)
        const bytes = itemBytes(item)
        if (bytes > 100 * 1024) big.push(bytes)
      }
    })
  }
  t.same([...types].sort(), ['B', 'BOOL', 'BS', 'L', 'M', 'M(nested)', 'N', 'NS', 'NULL', 'S', 'SS'], 'every DynamoDB type')
  t.ok(big.length >= 5, `a handful of items over 100 KB (${big.length})`)
  t.ok(
    big.every((b) => b >= BIG_BYTES && b < 400 * 1024),
    'each ~150 KB, under the 400 KB item limit',
  )

  const user1 = await client.send(new GetItemCommand({ TableName: DEMO_USERS_TABLE, Key: { userId: { S: 'user-00001' } } }))
  t.equal(user1.Item?.ledgerBalance?.N, PRECISE_NUMBER, 'a 38-digit number survives exactly')
  const user101 = await client.send(new GetItemCommand({ TableName: DEMO_USERS_TABLE, Key: { userId: { S: 'user-00101' } } }))
  const negative = demoUser(101).ledgerBalance!.N!
  t.match(negative, /^-\d{20}\.\d{18}$/)
  t.equal(user101.Item?.ledgerBalance?.N, negative, 'a negative 38-digit decimal too')
  const { PK, SK } = demoOrder(1, DEMO_COUNTS.users)
  const order1 = await client.send(new GetItemCommand({ TableName: DEMO_ORDERS_TABLE, Key: { PK: PK!, SK: SK! } }))
  t.equal(order1.Item?.preciseAmount?.N, PRECISE_NUMBER)
  t.equal(order1.Item?.exchangeRate?.N, demoOrder(1, DEMO_COUNTS.users).exchangeRate!.N, '22 significant digits')

  const again = await seedDemoTables(target)
  t.same(again, { seeded: [], reused: [DEMO_USERS_TABLE, DEMO_ORDERS_TABLE] }, 'a second start reuses the tables')
  t.equal(await count(client, DEMO_USERS_TABLE), DEMO_COUNTS.users, 'nothing doubled')
  t.equal(await count(client, DEMO_ORDERS_TABLE), DEMO_COUNTS.orders)
})

t.test('an interrupted seed is refilled on the next start, without duplicates', async (t) => {
  const dynamo = await startDynalite()
  t.teardown(() => dynamo.stop())
  const target = { endpoint: dynamo.endpoint }
  const client = clientFor(target.endpoint)
  const counts = { users: 300, orders: 1200 }

  const aborter = new AbortController()
  const interrupted = seedDemoTables(target, {
    ...counts,
    signal: aborter.signal,
    onTable: ({ table, action }) => {
      if (table === DEMO_ORDERS_TABLE && action === 'seeding') aborter.abort(new Error('Ctrl-C'))
    },
  })
  await t.rejects(interrupted, { message: 'Ctrl-C' })
  // As if it had been stopped part-way through: some orders written, the table not marked complete.
  for (let i = 1; i <= 50; i++) {
    await client.send(new PutItemCommand({ TableName: DEMO_ORDERS_TABLE, Item: demoOrder(i, counts.users) }))
  }
  t.equal(await count(client, DEMO_ORDERS_TABLE), 50)

  const report = await seedDemoTables(target, counts)
  t.same(report.reused, [DEMO_USERS_TABLE], 'the complete table is kept')
  t.same(
    report.seeded.map((s) => s.table),
    [DEMO_ORDERS_TABLE],
    'the unfinished one is filled',
  )
  t.equal(await count(client, DEMO_USERS_TABLE), counts.users)
  t.equal(await count(client, DEMO_ORDERS_TABLE), counts.orders, 'the same keys are rewritten: no duplicates')
  t.same((await seedDemoTables(target, counts)).reused, [DEMO_USERS_TABLE, DEMO_ORDERS_TABLE], 'and now it is complete')
})

t.test('the generated data is deterministic', async (t) => {
  t.same(demoUser(42), demoUser(42))
  t.same(demoOrder(4242, 5000), demoOrder(4242, 5000))
  t.not(JSON.stringify(demoUser(42)), JSON.stringify(demoUser(43)))
})
