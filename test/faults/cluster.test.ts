import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { startDynalite } from '../../src/local/services/dynalite.ts'
import { loadConfig } from '../../src/shared/config.ts'
import { createLogger } from '../../src/shared/logger.ts'
import { clusterSeeds } from '../../src/shared/redis/cluster.ts'
import { hashTagOf } from '../../src/shared/redis/index.ts'
import { startWorkerFleet } from '../../src/workers/fleet.ts'
import { auth, build, testConfig } from '../helpers/app.ts'
import { startRedisCluster } from '../helpers/cluster.ts'
import { startDynamoProxy } from '../helpers/dynamo-proxy.ts'
import type { TestServices } from '../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../helpers/tables.ts'
import { sleep, waitFor as waitUntil } from '../helpers/wait.ts'

// The integration paths of cached reads and queues, against a three-master Redis Cluster. Table names
// are chosen so their hash tags fall on different masters: `{orders}` with `{*}`, `{people}` and `{users}`
// elsewhere, so a pipeline or script mixing them would be refused (CROSSSLOT or ioredis's slot check).

process.env.AWS_ACCESS_KEY_ID ??= 'local'
process.env.AWS_SECRET_ACCESS_KEY ??= 'local'

const [cluster, dynalite] = await Promise.all([startRedisCluster(), startDynalite()])
t.teardown(() => Promise.all([cluster.stop(), dynalite.stop()]))
const proxy = await startDynamoProxy(dynalite.endpoint)
t.teardown(() => proxy.close())
const services: TestServices = {
  redisUrl: cluster.url,
  dynamoEndpoint: proxy.endpoint,
  // No test here sends mail.
  sesEndpoint: 'http://127.0.0.1:9',
  close: async () => {},
}
const dynamo = testDynamo(t, dynalite.endpoint)
await createTable(dynamo, 'orders', { PK: 'S', SK: 'S' })
await createTable(dynamo, 'users', { id: 'S' })
await createTable(dynamo, 'people', { id: 'S' })
const ORDERS = 40
await putItems(
  dynamo,
  'orders',
  Array.from({ length: ORDERS }, (_, i) => ({ PK: { S: `c${i % 4}` }, SK: { S: `o${i}` }, v: { N: String(i) } })),
)
await putItems(
  dynamo,
  'users',
  Array.from({ length: 5 }, (_, i) => ({ id: { S: `u${i}` } })),
)

const exportDir = await mkdtemp(join(tmpdir(), 'dc-cluster-exports-'))
t.teardown(() => rm(exportDir, { recursive: true, force: true }))
// A read budget too, so its per-table counters run on the cluster as well.
const shared = { REDIS_CLUSTER: 'true', EXPORT_DIR: exportDir, EXPORT_SEGMENTS: '2', EXPORT_PAGE_LIMIT: '5', DYNAMO_READ_BUDGET: '100000' }
const app = await build(t, services, shared)
const prefix = app.config.REDIS_PREFIX
const workerConfig = testConfig(services, {
  ...shared,
  REDIS_PREFIX: prefix,
  // No prefetch: it would fill entries on its own while the purge test counts them. Refreshes are
  // served by the stale test's own fleet, which must share that test's ttls to judge staleness.
  WORKER_QUEUES: 'cache-maintenance,batch-write,export-segment,export-assemble',
})
const fleet = await startWorkerFleet(workerConfig, createLogger(workerConfig, 'cluster-worker'))
t.teardown(() => fleet.close(3000))

const read = (url: string, on: FastifyInstance = app) => on.inject({ url, headers: auth('read') })

/** The cluster cases are short: they give up sooner and look more often. */
const waitFor = <T>(what: string, probe: () => Promise<T | undefined | false | null>) => waitUntil(what, probe, 15_000, 50)

/** A purge job's outcome once it finished. */
async function purged(id: string) {
  const job = await waitFor(`purge job ${id}`, async () => {
    const found = await app.queues.queue('cache-maintenance').getJob(id)
    return found?.finishedOn ? found : undefined
  })
  return job.failedReason ? { failed: job.failedReason } : (job.returnvalue as { scanned: number; removed: number })
}

/** Cache entry keys (`...:e:<id>`) of this test's prefix, by master port. */
const entriesByNode = () => cluster.keysByNode(`${prefix}:*:e:*`)
const total = (byNode: Map<number, string[]>) => [...byNode.values()].reduce((n, keys) => n + keys.length, 0)

const ORDERS_READS = ['/tables/orders', '/tables/orders/items?limit=5', '/tables/orders/items/c1?sk=o1', '/tables/orders/query?pk=c2']
const USERS_READS = ['/tables/users', '/tables/users/items?limit=5', '/tables/users/items/u2']
const ALL_READS = ['/tables', ...ORDERS_READS, ...USERS_READS]

t.test('REDIS_CLUSTER: seeds parsed from REDIS_URL, a bad seed refused at start-up, hash tags as Redis reads them', async (t) => {
  const seeds = clusterSeeds('rediss://app:s%40cret@10.0.0.1:7000, rediss://10.0.0.2')
  t.same(seeds.nodes, [
    { host: '10.0.0.1', port: 7000 },
    { host: '10.0.0.2', port: 6379 },
  ])
  t.same(seeds.redisOptions, { username: 'app', password: 's@cret', tls: {} }, 'credentials and TLS of the first seed apply to every node')
  t.equal(loadConfig({ REDIS_CLUSTER: 'true', REDIS_URL: cluster.url }).REDIS_CLUSTER, true)
  t.equal(loadConfig({ REDIS_URL: cluster.url }).REDIS_CLUSTER, false, 'off by default')
  t.throws(() => loadConfig({ REDIS_CLUSTER: 'true', REDIS_URL: 'redis://a:1,b:2' }), {
    name: 'ConfigError',
    message: /^REDIS_URL is invalid: expected comma-separated redis:\/\/ seed URLs/,
  })
  t.throws(() => loadConfig({ REDIS_CLUSTER: 'maybe' }), { name: 'ConfigError', message: /^REDIS_CLUSTER is invalid: expected true or false/ })
  t.same(['dc:{orders}:e:x', 'dc:{}:x', '{a}{b}', 'plain', 'x{}{y}'].map(hashTagOf), ['orders', 'dc:{}:x', 'a', 'plain', 'x{}{y}'])
})

t.test('cached reads of every kind miss, then hit without DynamoDB; entries sit on several masters', async (t) => {
  const ready = await app.inject({ url: '/ready' })
  t.equal(ready.statusCode, 200, ready.body)
  const first = []
  for (const url of ALL_READS) {
    const res = await read(url)
    t.equal(res.statusCode, 200, `${url}: ${res.body.slice(0, 120)}`)
    t.equal(res.headers['x-cache'], 'MISS', `${url}: first read misses`)
    first.push(res.body)
  }
  proxy.reset()
  for (const [i, url] of ALL_READS.entries()) {
    const res = await read(url)
    t.equal(res.headers['x-cache'], 'HIT', `${url}: second read hits`)
    t.equal(res.body, first[i], `${url}: same body`)
  }
  t.equal(proxy.calls.length, 0, 'no hit reached DynamoDB')

  const entries = await entriesByNode()
  t.equal(total(entries), ALL_READS.length, 'one entry per read')
  const used = [...entries].filter(([, keys]) => keys.length > 0)
  t.ok(used.length >= 2, `entries on ${used.length} masters`)
  for (const [port, keys] of entries) {
    for (const key of keys) t.equal(await cluster.ownerOf(key), port, `${key} is on the master that owns its slot`)
  }
  t.not(await cluster.ownerOf('{users}'), await cluster.ownerOf('{*}'), '`{users}` and `{*}` are on different masters')
})

t.test('stats: counters, popularity and hot reads flushed across slots and read back', async (t) => {
  const before = (await app.inject({ url: '/cache/stats', headers: auth('read') })).json()
  t.ok(before.totals.hits >= ALL_READS.length, `hits so far: ${before.totals.hits}`)
  t.ok(before.tables.users.misses >= USERS_READS.length, `users misses so far: ${before.tables.users.misses}`)
  for (let i = 0; i < 3; i++) t.equal((await read('/tables/users/items/u2')).headers['x-cache'], 'HIT')
  const after = (await app.inject({ url: '/cache/stats', headers: auth('read') })).json()
  t.equal(after.tables.users.hits - before.tables.users.hits, 3, 'three more users hits')
  t.equal(after.totals.hits - before.totals.hits, 3, 'and three more in the totals')
  t.same(after.popular.map((p: { table: string }) => p.table).sort(), ['orders', 'users'], 'both tables are popular')
  // Hot reads live in each table's own slot, written by the same flush as the `{*}` counters.
  const hot = await cluster.keysByNode(`${prefix}:*:hot`)
  const hotKeys = [...hot.values()].flat().sort()
  t.same(hotKeys, [`${prefix}:{orders}:hot`, `${prefix}:{users}:hot`])
})

t.test('invalidation of one table and of all; the purge finds dead entries on every master', async (t) => {
  const before = await entriesByNode()
  const ordersEntries = [...before.values()].flat().filter((k) => hashTagOf(k) === 'orders').length
  t.equal(ordersEntries, ORDERS_READS.length)

  const one = await app.inject({ method: 'DELETE', url: '/tables/orders/cache', headers: auth('admin') })
  t.equal(one.statusCode, 200, one.body)
  t.same(await purged(one.json().purgeJobId), { scanned: ordersEntries, removed: ordersEntries })
  for (const url of ORDERS_READS) t.equal((await read(url)).headers['x-cache'], 'MISS', `after DELETE /tables/orders/cache: ${url}`)
  for (const url of USERS_READS) t.equal((await read(url)).headers['x-cache'], 'HIT', `other tables still hit: ${url}`)

  const live = await entriesByNode()
  const count = total(live)
  t.equal(count, ALL_READS.length, 'orders refilled')
  t.ok([...live.values()].filter((keys) => keys.length > 0).length >= 2, 'entries on several masters')
  const all = await app.inject({ method: 'DELETE', url: '/cache', headers: auth('admin') })
  t.equal(all.statusCode, 200, all.body)
  t.same(all.json().invalidated.sort(), ['orders', 'users'])
  t.same(await purged(all.json().purgeJobId), { scanned: count, removed: count }, 'every entry found and removed')
  t.equal(total(await entriesByNode()), 0, 'no entry left on any master')
  for (const url of ALL_READS) t.equal((await read(url)).headers['x-cache'], 'MISS', `after DELETE /cache: ${url}`)
})

t.test('a stale read queues one refresh; the worker fleet completes it and the next read is fresh', async (t) => {
  // A second API replica and a refresh fleet whose entries go stale after 1 s.
  const ttls = { ...shared, REDIS_PREFIX: prefix, TABLE_ITEMS_TTL: '8', STALE_THRESHOLD: '0.125' }
  const staleApp = await build(t, services, ttls)
  const refreshConfig = testConfig(services, { ...ttls, WORKER_QUEUES: 'cache-refresh' })
  const refreshFleet = await startWorkerFleet(refreshConfig, createLogger(refreshConfig, 'cluster-refresh'))
  t.teardown(() => refreshFleet.close(3000))
  const url = '/tables/users/items/u1'
  const first = await read(url, staleApp)
  t.equal(first.headers['x-cache'], 'MISS')
  await dynamo.send(new PutItemCommand({ TableName: 'users', Item: { id: { S: 'u1' }, changed: { BOOL: true } } }))
  await sleep(1100)
  proxy.reset()
  const stale = await Promise.all(Array.from({ length: 20 }, () => read(url, staleApp)))
  t.ok(
    stale.every((r) => r.headers['x-cache'] === 'STALE'),
    'all 20 served stale',
  )
  t.ok(
    stale.every((r) => r.body === first.body),
    'with the old body',
  )
  // Counted when the refreshed value is first seen: it is fresh for 1 s only (8 s x 0.125), and a read that a
  // slow machine delays past that finds it stale again and rightly queues a refresh of its own.
  const seen = await waitFor('the refreshed value', async () => {
    const res = await read(url, staleApp)
    return res.json().changed === true && res
  })
  t.equal(proxy.count('GetItem', 'users'), 1, 'exactly one refresh reached DynamoDB')
  // The value is written before its job is marked completed; no read since could queue another.
  const queue = app.queues.queue('cache-refresh')
  const refreshes = await waitFor('the refresh job to finish', async () => {
    // The app's request connection times a command out after 1 s; on a loaded machine the probe tries again.
    const counts = await queue.getJobCounts('completed', 'failed').catch((err: Error) => {
      if (err.message === 'Command timed out') return undefined
      throw err
    })
    return counts !== undefined && (counts.completed ?? 0) + (counts.failed ?? 0) > 0 && counts
  })
  t.match(refreshes, { completed: 1, failed: 0 }, 'one refresh job, completed')
  const fresh =
    seen.headers['x-cache'] === 'HIT'
      ? seen
      : await waitFor('a fresh read', async () => {
          const res = await read(url, staleApp)
          return res.headers['x-cache'] === 'HIT' && res
        })
  t.equal(fresh.headers['x-cache'], 'HIT', 'the next read is fresh')
  t.equal(fresh.json().changed, true, 'the refresh wrote the new value')
})

t.test('a batch write job: queued with an Idempotency-Key, written by the fleet, replayed as the same batch', async (t) => {
  const payload = { format: 'typed', operations: Array.from({ length: 30 }, (_, i) => ({ put: { id: { S: `p${i}` }, n: { N: String(i) } } })) }
  const headers = { ...auth('write'), 'content-type': 'application/json', 'idempotency-key': 'cluster-import-1' }
  const post = () => app.inject({ method: 'POST', url: '/tables/people/batches', headers, payload })
  const created = await post()
  t.equal(created.statusCode, 202, created.body)
  const { id } = created.json()
  const view = await waitFor('the batch to finish', async () => {
    const v = (await app.inject({ url: `/batches/${encodeURIComponent(id)}`, headers: auth('write') })).json()
    return ['completed', 'failed'].includes(v.status) && v
  })
  t.match(view, { status: 'completed', total: 30, written: 30, failed: 0 })
  const scan = await dynamo.send(new ScanCommand({ TableName: 'people', Select: 'COUNT' }))
  t.equal(scan.Count, 30, 'every item is in DynamoDB')
  const replay = await post()
  t.equal(replay.json().id, id, 'the same key answers the same batch')
  t.equal(replay.headers['idempotent-replayed'], 'true')
  const batchKeys = [...(await cluster.keysByNode(`${prefix}:{people}:*`)).entries()].filter(([, keys]) => keys.length > 0)
  t.equal(batchKeys.length, 1, 'the batch keys share one master')
  t.equal(batchKeys[0]![0], await cluster.ownerOf('{people}'))
})

/** Server-Sent Events of a response, parsed. */
async function* sseEvents(res: Response): AsyncGenerator<{ id?: string; event: string; data: Record<string, unknown> }> {
  const decoder = new TextDecoder()
  let buffer = ''
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true })
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      const event = /^event: ?(.*)$/m.exec(block)?.[1]
      const data = /^data: ?(.*)$/m.exec(block)?.[1]
      const id = /^id: ?(.*)$/m.exec(block)?.[1]
      if (event && data) yield { ...(id ? { id } : {}), event, data: JSON.parse(data) }
    }
  }
}

t.test('an export end to end: flow over two queues, live events through XREAD, file downloaded', async (t) => {
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  // Held until the event stream is open, so every later event must come through the live feed.
  const segments = app.queues.queue('export-segment')
  await segments.pause()
  const created = await app.inject({ method: 'POST', url: '/exports', headers: auth('export'), payload: { table: 'orders', format: 'jsonl' } })
  t.equal(created.statusCode, 202, created.body)
  const { id } = created.json()
  const res = await fetch(`${base}/exports/${id}/events`, {
    headers: { ...auth('export'), accept: 'text/event-stream' },
    signal: AbortSignal.timeout(20_000),
  })
  t.equal(res.status, 200)
  const seen: Array<{ event: string; data: Record<string, unknown> }> = []
  for await (const event of sseEvents(res)) {
    seen.push(event)
    if (seen.length === 1) await segments.resume()
    if (event.event !== 'progress') break
  }
  t.match(seen[0], { event: 'progress', data: { status: 'queued' } }, 'the current state first')
  const live = seen.slice(1)
  t.ok(live.filter((e) => e.event === 'progress').length >= 2, `${live.length - 1} live progress events`)
  t.match(live.at(-1), { event: 'completed', data: { status: 'completed', progress: 100, processedItems: ORDERS } })

  const record = (await app.inject({ url: `/exports/${id}`, headers: auth('export') })).json()
  t.match(record, { status: 'completed', processedItems: ORDERS })
  const file = await app.inject({ url: record.download })
  t.equal(file.statusCode, 200)
  const lines = file.body
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { PK: string; SK: string })
  t.equal(lines.length, ORDERS, 'every item in the file')
  t.equal(new Set(lines.map((l) => l.SK)).size, ORDERS, 'each once')
})

t.test('keys of every kind are spread over the masters, each on the master owning its slot', async (t) => {
  const byNode = await cluster.keysByNode(`*${prefix}*`)
  const tags = new Map<string, Set<number>>()
  for (const [port, keys] of byNode) {
    for (const key of keys) {
      const tag = hashTagOf(key)
      tags.set(tag, (tags.get(tag) ?? new Set()).add(port))
    }
  }
  const figures = [...byNode].map(([port, keys]) => `${port}: ${keys.length} keys, tags ${[...new Set(keys.map(hashTagOf))].sort().join(' ')}`)
  t.comment(`keys per master: ${figures.join('; ')}`)
  // Quota slots are tagged per owner (`*quota:<kind>:<tenant or key>`), so each owner's Lua script runs on one slot.
  const quotaTags = [...tags.keys()].filter((tag) => tag.startsWith('*quota:'))
  t.ok(quotaTags.length > 0, `quota slots written (${quotaTags.join(' ')})`)
  t.same(
    [...tags.keys()].filter((tag) => !tag.startsWith('*quota:')).sort(),
    ['*', '*exports', 'orders', 'people', prefix, 'users'].sort(),
    'every kind of key was written',
  )
  for (const [tag, ports] of tags) {
    t.equal(ports.size, 1, `{${tag}} keys share one master`)
    t.equal([...ports][0], await cluster.ownerOf(`{${tag}}`), `{${tag}} is on its slot's master`)
  }
  const used = [...byNode.values()].filter((keys) => keys.length > 0).length
  const owners = new Set(await Promise.all([...tags.keys()].map((tag) => cluster.ownerOf(`{${tag}}`))))
  t.equal(used, owners.size, `keys on ${used} of ${cluster.ports.length} masters`)
  t.ok(used >= 2, 'more than one master holds keys')
})

t.test("a script that takes its key count first is not auto-pipelined beside another node's commands", async (t) => {
  // The Cluster groups the commands of one tick by the slot of each one's first argument. For dcCacheRead
  // that argument is the number of keys, so it was grouped by the slot of "3": beside a command of that
  // slot's node, while its own keys live on another, and the whole batch failed ("All keys in the pipeline
  // should belong to the same slots allocation group"); a cache read then bypassed the cache.
  const redis = app.redis
  const slots = (redis as unknown as { slots: string[][] }).slots
  const nodeOf = async (key: string) => slots[(await redis.cluster('KEYSLOT', key)) as number]!.join(',')
  const keysOf = (table: string) => [app.keys.entry(table, 'probe'), app.keys.generation(table), app.keys.dependency(table, 'data')]
  const countNode = await nodeOf('3')
  let table: string | undefined
  for (const candidate of ['users', 'orders', 'people', ...Array.from({ length: 50 }, (_, i) => `t${i}`)]) {
    if ((await nodeOf(keysOf(candidate)[0]!)) !== countNode) {
      table = candidate
      break
    }
  }
  let neighbour: string | undefined
  for (let i = 0; !neighbour; i++) if ((await nodeOf(`probe:${i}`)) === countNode) neighbour = `probe:${i}`
  t.ok(table, `the entry keys of ${table} live on another master than slot("3")'s`)
  const keys = keysOf(table!)
  const [read, other] = await Promise.all([redis.dcCacheReadBuffer(keys.length, ...keys, '', ''), redis.get(neighbour)])
  t.ok(Array.isArray(read), 'the script ran')
  t.equal(other, null, "and the other node's command in the same tick too")
})
