import { PutItemCommand } from '@aws-sdk/client-dynamodb'
import t from 'tap'
import { freePort } from '../../../src/local/services/ports.ts'
import { createLogger } from '../../../src/shared/logger.ts'
import { startWorkerFleet } from '../../../src/workers/fleet.ts'
import { auth, build, configEnv, KEYS, testConfig } from '../../helpers/app.ts'
import { startDynamoProxy } from '../../helpers/dynamo-proxy.ts'
import { startEntry, waitForLog } from '../../helpers/processes.ts'
import { startServices } from '../../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../../helpers/tables.ts'
import { sleep, waitFor } from '../../helpers/wait.ts'

const services = await startServices(t, { ownRedis: true })
const proxy = await startDynamoProxy(services.dynamoEndpoint)
t.teardown(() => proxy.close())
const viaProxy = { ...services, dynamoEndpoint: proxy.endpoint }
const dynamo = testDynamo(t, services.dynamoEndpoint)
await createTable(dynamo, 'orders', { PK: 'S', SK: 'S' })
await createTable(dynamo, 'users', { id: 'S' })
await putItems(
  dynamo,
  'orders',
  Array.from({ length: 40 }, (_, i) => ({ PK: { S: `c${i % 4}` }, SK: { S: `o${i}` }, v: { N: String(i) } })),
)
await putItems(
  dynamo,
  'users',
  Array.from({ length: 5 }, (_, i) => ({ id: { S: `u${i}` } })),
)

t.test('200 concurrent requests for one cold key across two API processes: one DynamoDB call', async (t) => {
  const config = testConfig(viaProxy, { LOG_LEVEL: 'info', HOST: '127.0.0.1' })
  const ports = [await freePort(), await freePort()]
  const apis = ports.map((port) => startEntry(t, 'src/api/server.ts', { ...configEnv(config), PORT: String(port) }))
  await Promise.all(apis.map((api) => waitForLog(api, /Server listening/)))
  // Warm the table description so the count below is about the page itself.
  await fetch(`http://127.0.0.1:${ports[0]}/tables/orders`, { headers: auth('read') })
  proxy.reset()
  const url = (port: number) => `http://127.0.0.1:${port}/tables/orders/items?limit=25`
  const responses = await Promise.all(Array.from({ length: 200 }, (_, i) => fetch(url(ports[i % 2]!), { headers: auth('read') })))
  const bodies = await Promise.all(responses.map((r) => r.text()))
  t.ok(
    responses.every((r) => r.status === 200),
    'all 200',
  )
  t.equal(new Set(bodies).size, 1, 'everyone got the same page')
  t.equal(proxy.count('Scan', 'orders'), 1, 'exactly one Scan reached DynamoDB')
  const collapsed = responses.filter((r) => /collapsed/.test(r.headers.get('cache-status') ?? '')).length
  t.comment(`${collapsed} of 200 requests waited on another's read (Cache-Status: collapsed)`)
})

t.test('stale-while-revalidate: old body at once, one refresh for 50 stale reads, then fresh', async (t) => {
  const overrides = { TABLE_ITEMS_TTL: '8', STALE_THRESHOLD: '0.125' }
  const app = await build(t, viaProxy, overrides)
  const fleet = await startWorkerFleet(
    testConfig(viaProxy, { ...overrides, REDIS_PREFIX: app.config.REDIS_PREFIX }),
    createLogger(testConfig(viaProxy, { LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent' }), 'worker'),
  )
  t.teardown(() => fleet.close(2000))
  const url = '/tables/users/items/u1'
  const first = await app.inject({ url, headers: auth('read') })
  t.equal(first.headers['x-cache'], 'MISS')
  await dynamo.send(new PutItemCommand({ TableName: 'users', Item: { id: { S: 'u1' }, changed: { BOOL: true } } }))
  await sleep(1100)
  proxy.reset()
  const stale = await Promise.all(Array.from({ length: 50 }, () => app.inject({ url, headers: auth('read') })))
  t.ok(
    stale.every((r) => r.headers['x-cache'] === 'STALE'),
    'all 50 served stale',
  )
  t.ok(
    stale.every((r) => r.body === first.body),
    'with the old body, at once',
  )
  t.match(stale[0]!.headers['cache-status'], /hit; ttl=-\d+; detail=stale-while-revalidate/)
  // Counted when the refreshed value is first seen: it is fresh for 1 s only (8 s x 0.125), and a read that a
  // slow machine delays past that finds it stale again and rightly queues a refresh of its own.
  const seen = await waitFor(
    'the refreshed value',
    async () => {
      const res = await app.inject({ url, headers: auth('read') })
      return res.json().changed === true && res
    },
    10_000,
  )
  t.equal(proxy.count('GetItem', 'users'), 1, 'exactly one refresh reached DynamoDB')
  const next =
    seen.headers['x-cache'] === 'HIT'
      ? seen
      : await waitFor(
          'a fresh read',
          async () => {
            const res = await app.inject({ url, headers: auth('read') })
            return res.headers['x-cache'] === 'HIT' && res
          },
          10_000,
        )
  t.equal(next.headers['x-cache'], 'HIT', 'the next read is fresh')
  t.equal(next.json().changed, true, 'and shows the new value')
})

t.test('DynamoDB down: stale-if-error for an expired entry, 503 + Retry-After without one', async (t) => {
  const app = await build(t, viaProxy, { TABLE_ITEMS_TTL: '1', DYNAMO_TIMEOUT_MS: '500' })
  const url = '/tables/orders/items?limit=3'
  const good = await app.inject({ url, headers: auth('read') })
  t.equal(good.statusCode, 200)
  await sleep(1100)
  proxy.setFaults({ drop: 1 })
  t.teardown(() => proxy.setFaults({}))
  const served = await app.inject({ url, headers: auth('read') })
  t.equal(served.statusCode, 200, 'the expired entry is served')
  t.equal(served.body, good.body)
  t.equal(served.headers['x-cache'], 'STALE')
  t.match(served.headers['cache-status'], /fwd=stale; fwd-status=503; detail=stale-if-error/)
  const uncached = await app.inject({ url: '/tables/orders/items?limit=4', headers: auth('read') })
  t.equal(uncached.statusCode, 503)
  t.equal(uncached.json().code, 'DC_ERR_DYNAMO_UNAVAILABLE')
  t.ok(Number(uncached.headers['retry-after']) > 0, 'Retry-After')
  proxy.setFaults({})
})

t.test("invalidation: the table's routes miss next, other tables still hit", async (t) => {
  const app = await build(t, viaProxy)
  const orders = ['/tables/orders', '/tables/orders/items?limit=5', '/tables/orders/items/c1?sk=o1', '/tables/orders/query?pk=c2']
  const users = ['/tables/users', '/tables/users/items?limit=5', '/tables/users/items/u2']
  for (const url of [...orders, ...users, '/tables']) await app.inject({ url, headers: auth('read') })
  const del = await app.inject({ method: 'DELETE', url: '/tables/orders/cache', headers: auth('admin') })
  t.equal(del.statusCode, 200, del.body)
  for (const url of orders) t.equal((await app.inject({ url, headers: auth('read') })).headers['x-cache'], 'MISS', url)
  for (const url of users) t.equal((await app.inject({ url, headers: auth('read') })).headers['x-cache'], 'HIT', url)

  const all = await app.inject({ method: 'DELETE', url: '/cache', headers: auth('admin') })
  t.same(all.json().invalidated.sort(), ['orders', 'users'])
  for (const url of [...orders, ...users, '/tables']) {
    t.equal((await app.inject({ url, headers: auth('read') })).headers['x-cache'], 'MISS', `after DELETE /cache: ${url}`)
  }
})

t.test('Redis down: reads answer from DynamoDB (BYPASS) without waiting; caching resumes after', async (t) => {
  const app = await build(t, viaProxy)
  const url = '/tables/users/items?limit=2'
  await app.inject({ url, headers: auth('read') })
  await services.redis!.kill()
  // Let the process notice the outage first: reads answered from the near cache take no I/O, so ten of
  // them can all run before the closed socket is even seen (on a loaded machine they did).
  await waitFor('the API to notice Redis is gone', async () => app.redis.status !== 'ready', 10_000, 10)
  const results = []
  const times: number[] = []
  for (let i = 0; i < 10; i++) {
    const started = Date.now()
    results.push(await app.inject({ url, headers: auth('read') }))
    times.push(Date.now() - started)
  }
  // Until the process notices Redis is gone, a fresh entry may still be answered from its near cache.
  const outcomes = results.map((r) => `${r.statusCode} ${r.headers['x-cache']}`)
  const firstBypass = outcomes.indexOf('200 BYPASS')
  t.ok(
    firstBypass >= 0 && outcomes.slice(0, firstBypass).every((o) => o === '200 HIT'),
    `near-cache HITs at most until the outage is noticed: ${outcomes.join(', ')}`,
  )
  t.ok(
    outcomes.slice(firstBypass).every((o) => o === '200 BYPASS'),
    'then all 200 BYPASS',
  )
  t.match(results[firstBypass]!.headers['cache-status'], /fwd=bypass/)
  // A read that waited on the fast connection's 1 s command timeout would take at least that long.
  t.ok(Math.max(...times) < 1000, `reads took ${times.join(', ')} ms: none waited on Redis's 1 s command timeout`)
  await services.redis!.start()
  let res = await app.inject({ url, headers: auth('read') })
  for (let i = 0; i < 50 && res.headers['x-cache'] === 'BYPASS'; i++) {
    await sleep(100)
    res = await app.inject({ url, headers: auth('read') })
  }
  t.equal(res.headers['x-cache'], 'MISS', 'caching resumed by itself (Redis restarted empty)')
  t.equal((await app.inject({ url, headers: auth('read') })).headers['x-cache'], 'HIT')
  t.ok(KEYS.read)
})
