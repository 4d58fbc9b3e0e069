import { Redis } from 'ioredis'
import t from 'tap'
import { createLogger } from '../../../src/shared/logger.ts'
import { startWorkerFleet } from '../../../src/workers/fleet.ts'
import { auth, build, startQueues, testConfig } from '../../helpers/app.ts'
import { startDynamoProxy } from '../../helpers/dynamo-proxy.ts'
import { startServices } from '../../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../../helpers/tables.ts'
import { sleep } from '../../helpers/wait.ts'

const services = await startServices(t, { ownRedis: true })
const proxy = await startDynamoProxy(services.dynamoEndpoint)
t.teardown(() => proxy.close())
const viaProxy = { ...services, dynamoEndpoint: proxy.endpoint }
const dynamo = testDynamo(t, services.dynamoEndpoint)
await createTable(dynamo, 'people', { id: 'S' }, { byTeam: { team: 'S', rank: 'N' } })
await createTable(dynamo, 'events', { pk: 'S', sk: 'N' })
await createTable(dynamo, 'secret-people', { id: 'S' })
await putItems(
  dynamo,
  'people',
  Array.from({ length: 30 }, (_, i) => ({
    id: { S: `p${String(i).padStart(2, '0')}` },
    name: { S: `person ${i}` },
    team: { S: i % 2 ? 'red' : 'blue' },
    rank: { N: String(i) },
  })),
)

const redis = new Redis(services.redisUrl)
redis.on('error', () => {}) // the outage test stops Redis on purpose
t.teardown(() => redis.quit())
const app = await build(t, viaProxy, { TABLES_DENY: 'secret*', JOB_RETENTION_DAYS: '3' })
const prefix = app.config.REDIS_PREFIX
// A Queue whose first connection check times out stays broken (producers.ts caches it), so open it up front.
await startQueues(app, ['batch-write'])

type Body = Record<string, unknown> | string
// These tests send typed items: since issue 14 the default format is document, so an object body without
// a format is sent as typed here. Text bodies go as they are (the format tests below say theirs).
const post = (table: string, payload: Body, headers: Record<string, string> = {}) =>
  app.inject({
    method: 'POST',
    url: `/tables/${table}/batches`,
    headers: { ...auth('write'), 'content-type': 'application/json', ...headers },
    payload: typeof payload === 'string' || 'format' in payload ? payload : { format: 'typed', ...payload },
  })
const status = (id: string) => app.inject({ url: `/batches/${encodeURIComponent(id)}`, headers: auth('write') })
const put = (item: Record<string, unknown>) => ({ put: item })

async function settled(id: string) {
  for (let i = 0; i < 400; i++) {
    const view = (await status(id)).json()
    if (view.status === 'completed' || view.status === 'failed') return view
    await sleep(50)
  }
  throw new Error(`batch ${id} did not finish`)
}

async function startWorkers(t: { teardown(fn: () => unknown): void }) {
  const config = testConfig(viaProxy, {
    REDIS_PREFIX: prefix,
    WORKER_QUEUES: 'batch-write,cache-maintenance',
    WORKER_CONCURRENCY: '2',
    JOB_RETENTION_DAYS: '3',
  })
  const fleet = await startWorkerFleet(config, createLogger(config, 'test-worker'))
  t.teardown(() => fleet.close(3000))
}

/** Every key this test's Redis prefix holds for a table's batches and idempotency records. */
async function batchKeys(table: string): Promise<string[]> {
  const found: string[] = []
  for (const pattern of [`${prefix}:{${table}}:b:*`, `${prefix}:{${table}}:idem:*`]) {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
      cursor = next
      found.push(...keys)
    } while (cursor !== '0')
  }
  return found
}

const jobCount = async () => {
  const counts = await app.queues.queue('batch-write').getJobCounts()
  return Object.values(counts).reduce((a, b) => a + b, 0)
}

t.test('bad batches are refused with 400 naming the operations; nothing is stored, queued or written', async (t) => {
  proxy.reset()
  const p = (id: string, extra: Record<string, unknown> = {}) => put({ id: { S: id }, ...extra })
  const cases: Array<[string, string, Body, { code: string; index?: number; reason: RegExp }]> = [
    [
      'missing key attribute',
      'people',
      { operations: [p('ok1'), put({ name: { S: 'x' } })] },
      { code: 'DC_ERR_BATCH_INVALID', index: 1, reason: /lacks the partition key 'id' \(string \(S\)\)/ },
    ],
    [
      'wrong key type',
      'people',
      { operations: [put({ id: { N: '1' } })] },
      { code: 'DC_ERR_BATCH_INVALID', index: 0, reason: /partition key 'id' must be a string \(S\), got N/ },
    ],
    [
      'wrong sort key type',
      'events',
      { operations: [put({ pk: { S: 'a' }, sk: { S: '1' } })] },
      { code: 'DC_ERR_BATCH_INVALID', index: 0, reason: /sort key 'sk' must be a number \(N\), got S/ },
    ],
    [
      'duplicate keys',
      'people',
      { operations: [p('a'), p('b'), { delete: { id: { S: 'a' } } }] },
      { code: 'DC_ERR_BATCH_INVALID', index: 2, reason: /same key as operations\[0\]/ },
    ],
    [
      'duplicate numeric keys (1 and 1.0)',
      'events',
      { operations: [put({ pk: { S: 'a' }, sk: { N: '1' } }), put({ pk: { S: 'a' }, sk: { N: '1.0' } })] },
      { code: 'DC_ERR_BATCH_INVALID', index: 1, reason: /same key as operations\[0\]/ },
    ],
    [
      'item over 400 KB',
      'people',
      { operations: [p('big', { blob: { S: 'x'.repeat(400 * 1024) } })] },
      { code: 'DC_ERR_BATCH_INVALID', index: 0, reason: /the item is 409\d{3} bytes; DynamoDB's limit is 409600/ },
    ],
    [
      '10,001 operations',
      'people',
      { operations: Array.from({ length: 10_001 }, (_, i) => p(`n${i}`)) },
      { code: 'DC_ERR_VALIDATION', reason: /operations must NOT have more than 10000 items/ },
    ],
    ['invalid JSON', 'people', '{"operations": [{"put": {"id": {"S": "a"}}', { code: 'DC_ERR_VALIDATION', reason: /JSON/ }],
    ['no operations', 'people', { operations: [] }, { code: 'DC_ERR_VALIDATION', reason: /fewer than 1 items/ }],
    [
      'delete with more than the key',
      'people',
      { operations: [{ delete: { id: { S: 'a' }, name: { S: 'x' } } }] },
      { code: 'DC_ERR_BATCH_INVALID', index: 0, reason: /delete must be exactly the key \('id'\); 'name' is not a key attribute/ },
    ],
    [
      'neither put nor delete',
      'people',
      { operations: [{ put: { id: { S: 'a' } }, delete: { id: { S: 'b' } } }] },
      { code: 'DC_ERR_BATCH_INVALID', index: 0, reason: /must be \{"put": item\} or \{"delete": key\}/ },
    ],
    [
      'not typed JSON',
      'people',
      { operations: [p('a', { n: { N: 5 } })] },
      { code: 'DC_ERR_BATCH_INVALID', index: 0, reason: /Invalid typed item at \$\.n\.N: expected a number as a string/ },
    ],
    [
      'index key of the wrong type',
      'people',
      { operations: [p('a', { rank: { S: 'first' } })] },
      { code: 'DC_ERR_BATCH_INVALID', index: 0, reason: /index key 'rank' must be a number \(N\), got S/ },
    ],
    [
      'empty key string',
      'people',
      { operations: [put({ id: { S: '' } })] },
      { code: 'DC_ERR_BATCH_INVALID', index: 0, reason: /partition key 'id' must not be empty/ },
    ],
    [
      'a 39-digit number',
      'people',
      { operations: [p('a', { n: { N: '1'.repeat(39) } })] },
      { code: 'DC_ERR_BATCH_INVALID', index: 0, reason: /\$\.n: .* 39 significant digits/ },
    ],
    [
      'an empty set',
      'people',
      { operations: [p('a', { tags: { SS: [] } })] },
      { code: 'DC_ERR_BATCH_INVALID', index: 0, reason: /\$\.tags: a set must not be empty/ },
    ],
    [
      'document: a number of 39 digits',
      'people',
      `{"format":"document","operations":[{"put":{"id":"a","n":${'9'.repeat(39)}}}]}`,
      { code: 'DC_ERR_BATCH_INVALID', index: 0, reason: /\$\.n: .* 39 significant digits/ },
    ],
    [
      'the default format is document: typed items are maps there',
      'people',
      '{"operations":[{"put":{"id":{"S":"a"}}}]}',
      { code: 'DC_ERR_BATCH_INVALID', index: 0, reason: /partition key 'id' must be a string \(S\), got M/ },
    ],
    ['unknown body field', 'people', { operations: [p('a')], mode: 'fast' }, { code: 'DC_ERR_VALIDATION', reason: /additional properties/ }],
  ]
  for (const [name, table, body, expected] of cases) {
    const res = await post(table, body)
    t.equal(res.statusCode, 400, `${name}: 400`)
    const answer = res.json()
    t.equal(answer.code, expected.code, `${name}: ${answer.code}`)
    t.match(answer.message, expected.reason, `${name}: ${answer.message.slice(0, 160)}`)
    if (expected.index !== undefined) t.equal(answer.invalid?.[0]?.index, expected.index, `${name}: index ${expected.index}`)
  }

  const many = Array.from({ length: 20 }, (_, i) => (i % 5 === 0 ? p(`good${i}`) : put({ id: { N: String(i) } })))
  const res = await post('people', { operations: many })
  t.equal(res.statusCode, 400)
  t.equal(res.json().invalid.length, 10, 'the first 10 invalid operations are listed')
  t.same(
    res.json().invalid.map((x: { index: number }) => x.index),
    [1, 2, 3, 4, 6, 7, 8, 9, 11, 12],
  )
  t.match(res.json().message, /^16 of 20 operations are invalid, nothing was queued: operations\[1\]: .*; and 6 more$/)

  const tooBig = await post('people', JSON.stringify({ operations: [p('x', { s: { S: 'y'.repeat(17 * 1024 * 1024) } })] }))
  t.equal(tooBig.statusCode, 413, 'a body over 16 MB is refused before it is parsed')
  t.equal(tooBig.json().code, 'DC_ERR_PAYLOAD_TOO_LARGE')

  t.equal(await jobCount(), 0, 'nothing queued')
  t.same(await batchKeys('people'), [], 'nothing stored in Redis')
  t.same(await batchKeys('events'), [])
  t.equal(proxy.count('BatchWriteItem'), 0, 'nothing written')
})

t.test('auth and tables: write scope, unknown and denied tables, unknown batches', async (t) => {
  const body = { operations: [put({ id: { S: 'a' } })] }
  t.equal((await post('people', body, auth('read'))).statusCode, 403)
  t.equal((await post('people', body, { authorization: '' })).statusCode, 401)
  const missing = await post('nope', body)
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().code, 'DC_ERR_TABLE_NOT_FOUND')
  t.equal((await post('secret-people', body)).statusCode, 404, 'a denied table answers like a missing one')
  for (const id of ['people.AAAAAAAAAAAAAAAAAAAAAA', 'people.AAAAAAAAAAAAAAAA', 'secret-people.AAAAAAAAAAAAAAAA', 'x', 'people.']) {
    const res = await status(id)
    t.equal(res.statusCode, 404, id)
    t.equal(res.json().code, 'DC_ERR_BATCH_NOT_FOUND', id)
  }
  t.equal((await app.inject({ url: '/batches/people.AAAAAAAAAAAAAAAA', headers: auth('read') })).statusCode, 403)
  t.equal(await jobCount(), 0)
})

t.test('Idempotency-Key: the same key and body is one batch and one set of writes; other content is 409', async (t) => {
  proxy.reset()
  const body = { operations: Array.from({ length: 60 }, (_, i) => put({ id: { S: `idem${i}` }, v: { N: String(i) } })) }
  const key = { 'idempotency-key': 'order-import-2024-06-01' }
  const first = await Promise.all(Array.from({ length: 6 }, () => post('people', body, key)))
  t.ok(
    first.every((r) => r.statusCode === 202),
    'all 202',
  )
  const ids = new Set(first.map((r) => r.json().id))
  t.equal(ids.size, 1, 'six concurrent requests, one batch')
  t.equal(first.filter((r) => r.headers['idempotent-replayed'] === 'true').length, 5, 'five answered as replays')
  const id = [...ids][0] as string
  t.match(id, /^people\.[A-Za-z0-9_-]{16}$/)
  t.equal(first[0]!.headers.location, `/batches/${id}`)
  t.equal(await jobCount(), 1, 'one job')

  await startWorkers(t)
  const view = await settled(id)
  t.equal(view.status, 'completed')
  t.equal(view.written, 60)

  const again = await post('people', body, key)
  t.equal(again.statusCode, 202)
  t.equal(again.json().id, id, 'after completion the key still answers the original batch')
  t.equal(again.headers['idempotent-replayed'], 'true')
  const conflict = await post('people', { operations: [put({ id: { S: 'idem0' }, v: { N: '999' } })] }, key)
  t.equal(conflict.statusCode, 409)
  t.equal(conflict.json().code, 'DC_ERR_IDEMPOTENCY_CONFLICT')
  await sleep(300)
  t.equal(await jobCount(), 1, 'no second job')
  const written = proxy.requests('BatchWriteItem', 'people').map((r) => (r.id as { S: string }).S)
  t.equal(written.length, 60, 'each operation reached DynamoDB once')
  t.equal(new Set(written).size, 60)

  const other = await post('people', body, { ...key, ...auth('admin') })
  t.not(other.json().id, id, 'keys are scoped per API key: another client with the same key makes its own batch')
  await settled(other.json().id)
})

t.test('GET /batches/:id: progress fields; a finished batch expires JOB_RETENTION_DAYS later', async (t) => {
  await startWorkers(t)
  const res = await post('events', { operations: Array.from({ length: 40 }, (_, i) => put({ pk: { S: 'ev' }, sk: { N: String(i) } })) })
  const { id } = res.json()
  const view = await settled(id)
  t.match(view, {
    id,
    table: 'events',
    status: 'completed',
    format: 'typed',
    total: 40,
    written: 40,
    failed: 0,
    errors: [],
    error: null,
  })
  t.ok(view.attempts >= 2, `${view.attempts} BatchWriteItem calls for 40 operations`)
  t.ok(
    Date.parse(view.createdAt) <= Date.parse(view.startedAt) && Date.parse(view.startedAt) <= Date.parse(view.completedAt),
    `timestamps in order: ${JSON.stringify(view)}`,
  )
  const ttl = await redis.pttl(`${prefix}:{events}:b:${id}`)
  const retention = 3 * 24 * 3600 * 1000
  t.ok(ttl > retention - 60_000 && ttl <= retention, `the batch expires in ${Math.round(ttl / 3600_000)} h (JOB_RETENTION_DAYS=3)`)
  t.equal(await redis.exists(`${prefix}:{events}:b:${id}:ops`), 0, 'the operations are dropped once written')
  const job = await app.queues.queue('batch-write').getJob(id)
  t.equal(await job?.getState(), 'completed', 'the job id is the batch id')
})

t.test('write-through: after a batch, the cached page, query and items are MISS with the new values', async (t) => {
  const read = (url: string) => app.inject({ url, headers: auth('read') })
  const urls = ['/tables/people/items?limit=50', '/tables/people/items/p01', '/tables/people/items/p02', '/tables/people/query?pk=red&index=byTeam']
  for (const url of urls) {
    t.equal((await read(url)).headers['x-cache'], 'MISS', url)
    t.equal((await read(url)).headers['x-cache'], 'HIT', url)
  }
  await startWorkers(t)
  const res = await post('people', {
    operations: [
      put({ id: { S: 'p01' }, name: { S: 'renamed' }, team: { S: 'red' }, rank: { N: '1' } }),
      { delete: { id: { S: 'p02' } } },
      put({ id: { S: 'p03' }, name: { S: 'moved' }, team: { S: 'blue' }, rank: { N: '3' } }),
    ],
  })
  t.equal(res.statusCode, 202)
  t.equal((await settled(res.json().id)).written, 3)

  const page = await read(urls[0]!)
  t.equal(page.headers['x-cache'], 'MISS', 'the page misses')
  const byId = new Map(page.json().items.map((i: { id: string }) => [i.id, i]))
  t.match(byId.get('p01'), { name: 'renamed' })
  t.notOk(byId.has('p02'), 'the deleted item is gone from the page')
  const item = await read(urls[1]!)
  t.equal(item.headers['x-cache'], 'MISS', 'the item misses')
  t.equal(item.json().name, 'renamed')
  const deleted = await read(urls[2]!)
  t.equal(deleted.headers['x-cache'], 'MISS')
  t.equal(deleted.statusCode, 404, 'the deleted item is not found')
  const query = await read(urls[3]!)
  t.equal(query.headers['x-cache'], 'MISS', 'the query misses')
  t.notOk(
    query.json().items.some((i: { id: string }) => i.id === 'p03'),
    'p03 left the red team',
  )
  const purges = await app.queues.queue('cache-maintenance').getJobs(['waiting', 'active', 'completed', 'delayed'])
  t.ok(
    purges.some((j) => j.data.table === 'people'),
    'a purge of the old entries was queued',
  )
})

t.test('format document (the default): plain JSON items are written with every digit of their numbers', async (t) => {
  await startWorkers(t)
  // No format: document is the default. The numbers are JSON text no double can hold.
  const big38 = '12345678901234567890123456789012345678'
  const res = await post(
    'people',
    `{"operations":[{"put":{"id":"doc1","name":"plain","n":1.50,"big":${big38},"tiny":-0.${'0'.repeat(40)}12345678901234567890123456789012345678,` +
      '"ok":true,"none":null,"tags":["a",2],"m":{"x":{"y":"z"}}}}]}',
  )
  t.equal(res.statusCode, 202, res.body)
  t.equal((await settled(res.json().id)).written, 1)
  const item = await app.inject({ url: '/tables/people/items/doc1?view=typed', headers: auth('read') })
  t.same(item.json(), {
    id: { S: 'doc1' },
    name: { S: 'plain' },
    n: { N: '1.5' },
    big: { N: big38 },
    tiny: { N: `-0.${'0'.repeat(40)}12345678901234567890123456789012345678` },
    ok: { BOOL: true },
    none: { NULL: true },
    tags: { L: [{ S: 'a' }, { N: '2' }] },
    m: { M: { x: { M: { y: { S: 'z' } } } } },
  })
})

t.test('the 400 KB limit counts as DynamoDB does: an item of exactly 409,600 bytes is written, one byte more is refused', async (t) => {
  await startWorkers(t)
  // 'id' (2) + 'edge' (4) + 'blob' (4) + the string: names and values in UTF-8 bytes.
  const edge = (extra: number) => ({ operations: [put({ id: { S: 'edge' }, blob: { S: 'é'.repeat(100) + 'x'.repeat(409_390 + extra) } })] })
  const over = await post('people', edge(1))
  t.equal(over.statusCode, 400)
  t.match(over.json().message, /the item is 409601 bytes/)
  const res = await post('people', edge(0))
  t.equal(res.statusCode, 202, res.body.slice(0, 200))
  t.match(await settled(res.json().id), { status: 'completed', written: 1, failed: 0 }, 'DynamoDB took it')
})

t.test('Redis down: POST and GET answer 503 with Retry-After, nothing crashes; they work again once it is back', async (t) => {
  const body = { operations: [put({ id: { S: 'during-outage' } })] }
  await services.redis!.kill()
  const refused = await post('people', body)
  t.equal(refused.statusCode, 503)
  t.match(refused.json().code, /^DC_ERR_(REDIS|QUEUE)_UNAVAILABLE$/)
  t.ok(Number(refused.headers['retry-after']) > 0, 'Retry-After')
  const view = await status('people.AAAAAAAAAAAAAAAA')
  t.equal(view.statusCode, 503)
  await services.redis!.start()
  let res = await post('people', body)
  for (let i = 0; i < 50 && res.statusCode === 503; i++) {
    await sleep(100)
    res = await post('people', body)
  }
  t.equal(res.statusCode, 202, 'accepted again once Redis is back')
})
