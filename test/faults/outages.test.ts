import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import t from 'tap'
import { freePort } from '../../src/local/services/ports.ts'
import { startRedisServer } from '../../src/local/services/redis.ts'
import { auth, configEnv, testConfig } from '../helpers/app.ts'
import { startDynamoProxy } from '../helpers/dynamo-proxy.ts'
import { startEntry, waitForLog } from '../helpers/processes.ts'
import { startServices } from '../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../helpers/tables.ts'
import { sleep, waitFor } from '../helpers/wait.ts'

const services = await startServices(t)
const proxy = await startDynamoProxy(services.dynamoEndpoint)
t.teardown(() => proxy.close())
const dynamo = testDynamo(t, services.dynamoEndpoint)
await createTable(dynamo, 'orders', { PK: 'S', SK: 'S' })
await putItems(
  dynamo,
  'orders',
  Array.from({ length: 200 }, (_, i) => ({ PK: { S: `c${i % 10}` }, SK: { S: `o${i}` } })),
)
/** The fast Redis connection's commandTimeout (src/shared/redis/index.ts): the longest a request waits on Redis. */
const REDIS_COMMAND_TIMEOUT_MS = 1000

const ROUTES = [
  '/tables',
  '/tables/orders',
  '/tables/orders/items?limit=20',
  '/tables/orders/items/c1?sk=o1',
  '/tables/orders/query?pk=c2&limit=5',
  '/tables/orders/query?pk=c3&skOp=begins_with&sk=o1',
]

interface Tally {
  requests: number
  byStatus: Map<number, number>
  byCache: Map<string, number>
  slowest: number
}

/** Reads ROUTES round-robin from `lanes` concurrent loops until `until`; bounded in time, loopback only. */
async function readLoad(base: string, until: number, lanes = 4): Promise<Tally> {
  const tally: Tally = { requests: 0, byStatus: new Map(), byCache: new Map(), slowest: 0 }
  await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      for (let i = lane; Date.now() < until; i += lanes) {
        const started = Date.now()
        const res = await fetch(base + ROUTES[i % ROUTES.length], { headers: auth('read'), signal: AbortSignal.timeout(10_000) })
        await res.arrayBuffer()
        tally.slowest = Math.max(tally.slowest, Date.now() - started)
        tally.requests++
        tally.byStatus.set(res.status, (tally.byStatus.get(res.status) ?? 0) + 1)
        const cache = res.headers.get('x-cache') ?? '-'
        tally.byCache.set(cache, (tally.byCache.get(cache) ?? 0) + 1)
      }
    }),
  )
  return tally
}

const fivexx = (t: Tally) => [...t.byStatus].filter(([s]) => s >= 500).reduce((n, [, c]) => n + c, 0)
const show = (t: Tally) =>
  `${t.requests} requests, status ${JSON.stringify(Object.fromEntries(t.byStatus))}, cache ${JSON.stringify(Object.fromEntries(t.byCache))}, slowest ${t.slowest} ms`

t.test('Redis killed and restarted during 20 s of mixed reads', async (t) => {
  // This Redis persists to an append-only file, as production Redis should, so queued jobs survive the restart.
  const dir = mkdtempSync(join(tmpdir(), 'dc-redis-'))
  const redisServer = await startRedisServer('redis-server', undefined, dir)
  t.teardown(async () => {
    await redisServer.stop()
    rmSync(dir, { recursive: true, force: true })
  })
  const config = testConfig(
    { ...services, redisUrl: redisServer.url, dynamoEndpoint: proxy.endpoint },
    { LOG_LEVEL: 'info', HOST: '127.0.0.1', RATE_LIMIT_PER_MIN: '1000000' },
  )
  const port = await freePort()
  const api = startEntry(t, 'src/api/server.ts', { ...configEnv(config), PORT: String(port) })
  const worker = startEntry(t, 'src/workers/main.ts', configEnv(config))
  await Promise.all([waitForLog(api, /Server listening/), waitForLog(worker, /worker\.started/)])
  const base = `http://127.0.0.1:${port}`

  const redis = new Redis(redisServer.url, { maxRetriesPerRequest: null })
  t.teardown(() => redis.disconnect())
  redis.on('error', () => {}) // refused while redis-server is down, on purpose
  const queue = new Queue('cache-maintenance', { connection: redis, prefix: `{${config.REDIS_PREFIX}}:q` })
  queue.on('error', () => {})
  t.teardown(() => queue.close().catch(() => {}))
  // Jobs queued before the outage, due while Redis is down.
  for (let i = 0; i < 10; i++) await queue.add('cache-maintenance', { kind: 'purge', table: 'orders' }, { delay: 3000 })

  const start = Date.now()
  const load = readLoad(base, start + 20_000)
  await sleep(5000)
  await redisServer.kill()
  t.comment('redis-server killed (SIGKILL) at 5 s')
  await sleep(6000)
  await redisServer.start()
  t.comment('redis-server restarted at 11 s')
  const tally = await load
  t.comment(show(tally))
  t.equal(fivexx(tally), 0, 'no 5xx for a table DynamoDB can serve')
  t.ok((tally.byCache.get('BYPASS') ?? 0) > 0, 'reads bypassed the cache during the outage')
  // A request caught mid-command by the kill waits up to the command timeout, then reads DynamoDB
  // (at most DYNAMO_TIMEOUT_MS per attempt); a second of margin for the rest. A hung one hits the 10 s client timeout.
  const bound = REDIS_COMMAND_TIMEOUT_MS + config.DYNAMO_TIMEOUT_MS + 1000
  t.ok(tally.slowest < bound, `no request hung (slowest ${tally.slowest} ms, bound ${bound} ms)`)

  const after = await fetch(`${base}/tables/orders/items?limit=20`, { headers: auth('read') })
  t.equal(after.headers.get('x-cache'), 'HIT', 'caching resumed by itself after the restart')
  let completed = 0
  for (let i = 0; i < 100 && completed < 10; i++) {
    completed = (await queue.getJobCounts('completed')).completed ?? 0
    if (completed < 10) await sleep(200)
  }
  t.equal(completed, 10, 'the 10 jobs queued before the outage completed after it')
})

t.test('DynamoDB answering 500s for 10 s: cached tables keep answering, the breaker opens and closes, nothing hangs', async (t) => {
  // Short ttls, so the entries cached before the outage expire during it and must be served stale-if-error.
  const ttls = { TABLE_LIST_TTL: '4', TABLE_DETAILS_TTL: '4', TABLE_ITEMS_TTL: '4', QUERY_RESULTS_TTL: '4' }
  const overrides = {
    ...ttls,
    LOG_LEVEL: 'info',
    HOST: '127.0.0.1',
    RATE_LIMIT_PER_MIN: '1000000',
    BREAKER_FAILURES: '3',
    BREAKER_RECOVERY_MS: '2000',
    DYNAMO_TIMEOUT_MS: '800',
  }
  const config = testConfig({ ...services, dynamoEndpoint: proxy.endpoint }, overrides)
  const port = await freePort()
  const api = startEntry(t, 'src/api/server.ts', { ...configEnv(config), PORT: String(port) })
  await waitForLog(api, /Server listening/)
  const base = `http://127.0.0.1:${port}`
  for (const route of ROUTES) await fetch(base + route, { headers: auth('read') })

  proxy.setFaults({ fail500: 1 })
  t.teardown(() => proxy.setFaults({}))
  // Reads of cached entries never reach DynamoDB, so they alone cannot trip the breaker: alongside them,
  // keys not cached yet are read (every 250 ms), each of which does call DynamoDB and fails.
  const outageEnds = Date.now() + 10_000
  let breakerDuring = ''
  const misses = { requests: 0, status503: 0, retryAfter: 0, slowest: 0 }
  const missLoad = (async () => {
    for (let n = 0; Date.now() < outageEnds; n++) {
      const started = Date.now()
      const res = await fetch(`${base}/tables/orders/items/c${n % 10}?sk=o${20 + n}`, { headers: auth('read'), signal: AbortSignal.timeout(10_000) })
      await res.arrayBuffer()
      misses.slowest = Math.max(misses.slowest, Date.now() - started)
      misses.requests++
      if (res.status === 503) misses.status503++
      if (res.headers.get('retry-after')) misses.retryAfter++
      if (n === 5) breakerDuring = ((await (await fetch(`${base}/ready`)).json()) as { checks: { dynamodb: { breaker: string } } }).checks.dynamodb.breaker
      await sleep(250)
    }
  })()
  const cached = await readLoad(base, outageEnds, 2)
  await missLoad
  proxy.setFaults({})
  t.comment(`during the outage, cached keys: ${show(cached)}`)
  t.comment(
    `during the outage, uncached keys: ${misses.requests} requests, ${misses.status503} answered 503, ${misses.retryAfter} with Retry-After, slowest ${misses.slowest} ms`,
  )
  t.equal(fivexx(cached), 0, 'every read of a cached entry answered without a 5xx')
  t.ok((cached.byCache.get('STALE') ?? 0) > 0, 'entries that expired during the outage were served stale-if-error')
  t.ok(cached.slowest < 800 + 1500, `no request hung past DYNAMO_TIMEOUT_MS plus a margin (slowest ${cached.slowest} ms)`)
  t.ok(misses.requests >= 3, 'uncached keys were read during the outage')
  t.equal(misses.status503, misses.requests, 'every uncached key is 503 while DynamoDB fails')
  t.equal(misses.retryAfter, misses.requests, 'with Retry-After')
  t.ok(misses.slowest < 800 + 1500, `no uncached read hung past DYNAMO_TIMEOUT_MS plus a margin (slowest ${misses.slowest} ms)`)
  t.ok(/"msg":"dynamo\.breaker\.open"/.test(api.output()), 'the breaker opened (dynamo.breaker.open logged)')
  t.equal(breakerDuring, 'open', '/ready reported the breaker open during the outage')

  await sleep(2100)
  let ok = await fetch(`${base}/tables/orders/items/c8?sk=o8`, { headers: auth('read') })
  for (let i = 0; i < 20 && ok.status !== 200; i++) {
    await sleep(300)
    ok = await fetch(`${base}/tables/orders/items/c8?sk=o8`, { headers: auth('read') })
  }
  t.equal(ok.status, 200, 'reads from DynamoDB work again')
  t.ok(/"msg":"dynamo\.breaker\.closed"/.test(api.output()), 'the breaker closed again (dynamo.breaker.closed logged)')
  const ready = (await (await fetch(`${base}/ready`)).json()) as { checks: { dynamodb: { breaker: string } } }
  t.equal(ready.checks.dynamodb.breaker, 'closed', '/ready reports the breaker closed')
})

t.test('SIGKILL of one of two API processes under load: the other keeps serving; SIGTERM lets in-flight requests finish', async (t) => {
  const config = testConfig(
    { ...services, dynamoEndpoint: proxy.endpoint },
    { LOG_LEVEL: 'info', HOST: '127.0.0.1', RATE_LIMIT_PER_MIN: '1000000', SHUTDOWN_TIMEOUT_MS: '5000' },
  )
  const ports = [await freePort(), await freePort()]
  const apis = ports.map((port) => startEntry(t, 'src/api/server.ts', { ...configEnv(config), PORT: String(port) }))
  await Promise.all(apis.map((api) => waitForLog(api, /Server listening/)))
  const survivor = readLoad(`http://127.0.0.1:${ports[1]}`, Date.now() + 4000)
  const victim = readLoad(`http://127.0.0.1:${ports[0]}`, Date.now() + 1000).catch(() => undefined)
  await sleep(500)
  apis[0]!.signal('SIGKILL')
  await victim
  const tally = await survivor
  t.comment(`survivor: ${show(tally)}`)
  t.ok(tally.requests > 0 && (tally.byStatus.get(200) ?? 0) === tally.requests, 'every request to the other process succeeded')

  // Slow DynamoDB so requests are in flight when SIGTERM arrives.
  proxy.setFaults({ latencyMs: 700 })
  t.teardown(() => proxy.setFaults({}))
  const arrivedBefore = proxy.arrived('GetItem', 'orders')
  let answered = 0
  const inFlight = Array.from({ length: 10 }, (_, i) =>
    fetch(`http://127.0.0.1:${ports[1]}/tables/orders/items/c${i}?sk=o${100 + i}`, { headers: { ...auth('read'), 'cache-control': 'no-cache' } }).finally(
      () => answered++,
    ),
  )
  // SIGTERM once the API is reading all 10 from DynamoDB (their GetItems reached the proxy, which holds
  // each 700 ms), so every one was received and is in flight, not refused as the server closes.
  await waitFor('the 10 requests to reach DynamoDB', async () => proxy.arrived('GetItem', 'orders') - arrivedBefore >= 10, 10_000, 10)
  const answeredBefore = answered
  const started = Date.now()
  apis[1]!.signal('SIGTERM')
  const answers = await Promise.all(inFlight)
  const code = await apis[1]!.exited
  const took = Date.now() - started
  t.comment(
    `SIGTERM: ${answers.length - answeredBefore} of ${answers.length} requests in flight, ${answers.filter((r) => r.status === 200).length} answered 200; exit ${code} after ${took} ms (SHUTDOWN_TIMEOUT_MS 5000)`,
  )
  t.ok(
    answers.every((r) => r.status === 200),
    'the 10 requests in flight at SIGTERM finished with 200',
  )
  // close-with-grace exits 1 once SHUTDOWN_TIMEOUT_MS has passed: exit 0 is a shutdown within it.
  t.equal(code, 0, 'exit 0: within SHUTDOWN_TIMEOUT_MS')
})
