import { Queue } from 'bullmq'
import t from 'tap'
import { createLogger } from '../../../src/shared/logger.ts'
import { startWorkerFleet } from '../../../src/workers/fleet.ts'
import { auth, build, testConfig } from '../../helpers/app.ts'
import { startDynamoProxy } from '../../helpers/dynamo-proxy.ts'
import { startServices } from '../../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../../helpers/tables.ts'
import { sleep } from '../../helpers/wait.ts'

const services = await startServices(t)
const proxy = await startDynamoProxy(services.dynamoEndpoint)
t.teardown(() => proxy.close())
const viaProxy = { ...services, dynamoEndpoint: proxy.endpoint }
const dynamo = testDynamo(t, services.dynamoEndpoint)
await createTable(dynamo, 'shared', { id: 'S' })
await putItems(
  dynamo,
  'shared',
  Array.from({ length: 400 }, (_, i) => ({ id: { S: `k${i}` }, v: { N: String(i) } })),
)

t.test('the breaker opens after BREAKER_FAILURES failed calls, fails fast, serves stale, closes after recovery', async (t) => {
  const app = await build(t, viaProxy, { BREAKER_FAILURES: '3', BREAKER_RECOVERY_MS: '1500', TABLE_ITEMS_TTL: '1', DYNAMO_TIMEOUT_MS: '1000' })
  const read = (url: string) => app.inject({ url, headers: auth('read') })
  await read('/tables/shared') // table details cached, so the calls below are the items' own
  const cached = await read('/tables/shared/items/k1')
  t.equal(cached.statusCode, 200)
  await sleep(1100)
  proxy.setFaults({ fail500: 1 })
  t.teardown(() => proxy.setFaults({}))
  proxy.reset()
  for (let i = 0; i < 3; i++) {
    const res = await read(`/tables/shared/items/k${100 + i}`)
    t.equal(res.statusCode, 503, `call ${i + 1} fails`)
  }
  t.ok(proxy.calls.length >= 3, `${proxy.calls.length} attempts reached the endpoint for 3 failed calls`)
  t.equal(app.gateway.breakerState(), 'open', 'open after 3 failed calls')
  t.equal((await app.inject('/ready')).json().checks.dynamodb.breaker, 'open', '/ready shows it')
  const attempts = proxy.calls.length

  // A call that reached the endpoint now would wait for DYNAMO_TIMEOUT_MS (1 s).
  proxy.setFaults({ fail500: 1, latencyMs: 1500 })
  // Failing fast is shown by what it did, not by a clock: the breaker answered, and no call was made.
  const fast = await read('/tables/shared/items/k200')
  t.equal(fast.statusCode, 503)
  t.match(fast.json().message, /circuit breaker open/)
  t.equal(proxy.calls.length, attempts, 'no call reached the failing endpoint while open: it failed without waiting on DynamoDB')
  const stale = await read('/tables/shared/items/k1')
  t.equal(stale.statusCode, 200, 'a cached entry is still served')
  t.match(stale.headers['cache-status'], /stale-if-error/)

  proxy.setFaults({})
  await sleep(1600)
  const healed = await read('/tables/shared/items/k201')
  t.equal(healed.statusCode, 200, 'half-open trial succeeds')
  t.equal(app.gateway.breakerState(), 'closed', 'and the breaker closes again')
})

t.test('read budget: users keep their share, background work yields, then catches up', async (t) => {
  // Users read as fast as they can: the per-key rate limit must not be what holds them back.
  const overrides = {
    DYNAMO_READ_BUDGET: '20',
    USER_RESERVED_SHARE: '0.5',
    TABLE_ITEMS_TTL: '60',
    STALE_THRESHOLD: '0.01',
    WORKER_CONCURRENCY: '4',
    RATE_LIMIT_PER_MIN: '1000000',
  }
  const app = await build(t, viaProxy, overrides)
  const config = testConfig(viaProxy, { ...overrides, REDIS_PREFIX: app.config.REDIS_PREFIX, WORKER_QUEUES: 'cache-refresh' })
  const read = (url: string, headers: Record<string, string> = {}) => app.inject({ url, headers: { ...auth('read'), ...headers } })
  // 150 entries, then stale (0.6 s), so each read below queues a refresh.
  await read('/tables/shared')
  for (let i = 0; i < 150; i++) {
    await read(`/tables/shared/items/k${i}`)
    await sleep(30) // stay under the budget while filling
  }
  await sleep(800)
  for (let i = 0; i < 150; i++) await read(`/tables/shared/items/k${i}`)
  const queue = new Queue('cache-refresh', { connection: app.redis, prefix: app.keys.queuePrefix })
  t.teardown(() => queue.close())
  const done = async () => (await queue.getJobCounts('completed')).completed ?? 0

  const fleet = await startWorkerFleet(config, createLogger(config, 'worker'))
  t.teardown(() => fleet.close(2000))

  // Phases start on a second boundary, as the budget's counters do, so each spans whole budget seconds.
  const toNextSecond = () => sleep(1000 - (Date.now() % 1000))
  // Phase 1: users read as fast as they can (no-cache: each read goes to DynamoDB) for 3 s.
  const userMs = 3000
  const LANES = 8
  await toNextSecond()
  const bgBefore = await done()
  let userLoads = 0
  let userRequests = 0
  const until = Date.now() + userMs
  await Promise.all(
    Array.from({ length: LANES }, async (_, lane) => {
      for (let i = lane; Date.now() < until; i += LANES) {
        const res = await read(`/tables/shared/items/k${300 + (i % 100)}`, { 'cache-control': 'no-cache' })
        userRequests++
        if (res.headers['x-cache'] === 'MISS') userLoads++
      }
    }),
  )
  const bgDuringUsers = (await done()) - bgBefore

  // Phase 2: users stop; background catches up. Longer, since jobs deferred in phase 1 come back
  // only after their delay (1-1.5 s).
  const aloneMs = 4000
  const bgStart = await done()
  await sleep(aloneMs)
  const bgAlone = (await done()) - bgStart

  const userRate = userLoads / (userMs / 1000)
  const bgRateWithUsers = bgDuringUsers / (userMs / 1000)
  const bgRateAlone = bgAlone / (aloneMs / 1000)
  const offeredRate = userRequests / (userMs / 1000)
  t.comment(
    `reads/s (0.5 unit each, budget 20 units/s = 40 reads/s): users asked ${offeredRate.toFixed(1)} and got ${userRate.toFixed(1)} from DynamoDB, background with users ${bgRateWithUsers.toFixed(1)}, background alone ${bgRateAlone.toFixed(1)}`,
  )
  // Users are owed their reserved half (20 reads/s), or all they asked for when they asked less.
  t.ok(userRate >= Math.min(offeredRate, 20) * 0.8, 'users get their reserved share, within 20%')
  t.ok(bgRateWithUsers <= 20 * 1.2, 'background stays within what users leave (at most the other half)')
  t.ok(bgRateAlone > bgRateWithUsers, 'background speeds up once users stop')
  for (let i = 0; i < 100 && (await done()) < 150; i++) await sleep(200)
  t.equal(await done(), 150, 'all background refreshes finish')
  t.equal(await queue.getFailedCount(), 0, 'none failed: yielding delays jobs, it does not fail them')
})

t.test('many concurrent DynamoDB calls through one gateway raise no listener-leak warning', async (t) => {
  const app = await build(t, viaProxy)
  const warnings: string[] = []
  const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`)
  process.on('warning', onWarning)
  t.teardown(() => process.off('warning', onWarning))
  proxy.setFaults({ latencyMs: 50 })
  t.teardown(() => proxy.setFaults({}))
  const reads = await Promise.all(Array.from({ length: 30 }, (_, i) => app.inject({ url: `/tables/shared/items/k${300 + i}`, headers: auth('read') })))
  t.same([...new Set(reads.map((r) => r.statusCode))], [200], '30 concurrent misses answered')
  // Warnings are emitted on the next tick.
  await new Promise((r) => setImmediate(r))
  t.same(
    warnings.filter((w) => w.startsWith('MaxListenersExceededWarning')),
    [],
    'no MaxListenersExceededWarning',
  )
})
