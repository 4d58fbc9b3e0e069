import t from 'tap'
import { batchGetItems, MAX_KEYS_PER_BATCH_GET } from '../../../src/shared/dynamo/batch-get.ts'
import { createDynamoClients } from '../../../src/shared/dynamo/client.ts'
import { createDynamoGateway } from '../../../src/shared/dynamo/gateway.ts'
import { startDynamoProxy } from '../../helpers/dynamo-proxy.ts'
import { startServices } from '../../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../../helpers/tables.ts'

const services = await startServices(t)
const proxy = await startDynamoProxy(services.dynamoEndpoint)
t.teardown(() => proxy.close())
const dynamo = testDynamo(t, services.dynamoEndpoint)
await createTable(dynamo, 'people', { id: 'S' })
await createTable(dynamo, 'events', { pk: 'S', sk: 'N' })
await putItems(
  dynamo,
  'people',
  Array.from({ length: 250 }, (_, i) => ({ id: { S: `p${i}` }, name: { S: `person ${i}` }, age: { N: String(i) } })),
)
await putItems(
  dynamo,
  'events',
  Array.from({ length: 30 }, (_, i) => ({ pk: { S: 'e' }, sk: { N: String(i) }, v: { S: `v${i}` } })),
)

const clients = createDynamoClients({ DYNAMODB_ENDPOINT: proxy.endpoint, AWS_REGION: 'us-east-1', DYNAMO_TIMEOUT_MS: 5000 })
t.teardown(() => clients.close())
// No retries inside the gateway: what is retried here is the helper's own doing.
const gateway = createDynamoGateway({
  client: clients.raw,
  priority: 'background',
  slowCallMs: 10_000,
  resilience: { timeoutMs: 5000, breakerFailures: 1000, breakerRecoveryMs: 1000, attempts: 1 },
})
const fast = { initialDelayMs: 2, maxDelayMs: 20, maxCalls: 40 }

t.test('250 keys + missing + repeated, with UnprocessedKeys, throttling and 500s: every item once, in key order', async (t) => {
  proxy.reset()
  proxy.setFaults({ unprocessed: 0.5, throttle: 0.15, fail500: 0.05 })
  t.teardown(() => proxy.setFaults({}))
  const keys = [
    ...Array.from({ length: 250 }, (_, i) => ({ id: { S: `p${i}` } })),
    ...Array.from({ length: 20 }, (_, i) => ({ id: { S: `missing${i}` } })),
    { id: { S: 'p7' } },
    { id: { S: 'p249' } },
  ]
  const items = await batchGetItems(gateway, 'people', keys, { retry: fast, parallelCalls: 3 })
  t.equal(items.length, keys.length)
  t.ok(
    items.slice(0, 250).every((item, i) => item?.id?.S === `p${i}` && item.name?.S === `person ${i}`),
    'each found item at its key',
  )
  t.ok(
    items.slice(250, 270).every((item) => item === undefined),
    'missing keys answer undefined',
  )
  t.equal(items[270]?.id?.S, 'p7', 'a repeated key gets the item too')
  t.equal(items[271]?.id?.S, 'p249')

  const calls = proxy.calls.filter((c) => c.operation === 'BatchGetItem' && c.result === 'forwarded')
  t.ok(
    calls.every((c) => (c.requests?.length ?? 0) <= MAX_KEYS_PER_BATCH_GET),
    'no call carries more than 100 keys',
  )
  const reached = proxy.requests('BatchGetItem', 'people').map((k) => (k.id as { S: string }).S)
  t.equal(reached.length, 270, 'each distinct key reached DynamoDB exactly once (the repeats were not sent)')
  t.equal(new Set(reached).size, 270)
  const handedBack = calls.reduce((sum, c) => sum + (c.unprocessed ?? 0), 0)
  const faults = proxy.calls.filter((c) => c.result === 'throttle' || c.result === 'fail500').length
  t.ok(handedBack > 0 && faults > 0, `retried ${handedBack} unprocessed keys and ${faults} failed calls in ${calls.length} forwarded calls`)
})

t.test('numbers match by value, projections keep the key, consistent reads pass through', async (t) => {
  proxy.reset()
  const keys = [
    { pk: { S: 'e' }, sk: { N: '3.0' } },
    { pk: { S: 'e' }, sk: { N: '29.00' } },
    { pk: { S: 'e' }, sk: { N: '31' } },
  ]
  const items = await batchGetItems(gateway, 'events', keys, { attributes: ['v'], consistentRead: true })
  t.same(items, [{ pk: { S: 'e' }, sk: { N: '3' }, v: { S: 'v3' } }, { pk: { S: 'e' }, sk: { N: '29' }, v: { S: 'v29' } }, undefined])
  const people = await batchGetItems(gateway, 'people', [{ id: { S: 'p1' } }], { attributes: ['name'] })
  t.same(people, [{ id: { S: 'p1' }, name: { S: 'person 1' } }], 'only the key and the projected attribute')
  t.same(await batchGetItems(gateway, 'people', []), [], 'no keys, no call')
  t.equal(proxy.count('BatchGetItem'), 2)
})

t.test('keys still unprocessed when the calls run out: DC_ERR_DYNAMO_THROTTLED; a bad key set: TypeError', async (t) => {
  proxy.setFaults({ unprocessed: 1 })
  t.teardown(() => proxy.setFaults({}))
  proxy.reset()
  await t.rejects(batchGetItems(gateway, 'people', [{ id: { S: 'p1' } }], { retry: { maxCalls: 3, initialDelayMs: 1, maxDelayMs: 2 } }), {
    code: 'DC_ERR_DYNAMO_THROTTLED',
  })
  t.equal(proxy.calls.filter((c) => c.operation === 'BatchGetItem').length, 3, 'three calls, then it gave up')
  proxy.setFaults({ throttle: 1 })
  await t.rejects(
    batchGetItems(gateway, 'people', [{ id: { S: 'p1' } }], { retry: { maxCalls: 2, initialDelayMs: 1, maxDelayMs: 2 } }),
    { code: 'DC_ERR_DYNAMO_THROTTLED' },
    'the last throttling error when every call was throttled',
  )
  await t.rejects(batchGetItems(gateway, 'events', [{ pk: { S: 'e' }, sk: { N: '1' } }, { pk: { S: 'e' } }]), TypeError)
})
