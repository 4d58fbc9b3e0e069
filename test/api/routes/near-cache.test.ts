import { gunzipSync } from 'node:zlib'
import { PutItemCommand } from '@aws-sdk/client-dynamodb'
import { Redis } from 'ioredis'
import t from 'tap'
import { auth, build, uniquePrefix } from '../../helpers/app.ts'
import { startServices } from '../../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../../helpers/tables.ts'
import { waitFor } from '../../helpers/wait.ts'

// Its own Redis, so INFO commandstats counts only this file's commands.
const services = await startServices(t, { ownRedis: true })
const dynamo = testDynamo(t, services.dynamoEndpoint)
await createTable(dynamo, 'near', { id: 'S' })
await createTable(dynamo, 'other', { id: 'S' })
await putItems(dynamo, 'near', [{ id: { S: 'a' }, v: { N: '1' } }])
await putItems(dynamo, 'other', [{ id: { S: 'a' }, v: { N: '1' } }])

const redis = new Redis(services.redisUrl)
t.teardown(() => redis.quit())
async function cacheReads(): Promise<number> {
  const info = await redis.info('commandstats')
  return Number(/cmdstat_hmget:calls=(\d+)/.exec(info)?.[1] ?? 0)
}

// Long enough that no entry of these tests leaves the near cache by age, however slow the machine:
// what they count must come from the near cache's own logic, not from its timing.
const LONG_TTL = { NEAR_CACHE_TTL_MS: '60000' }

/** An API app whose near cache is answering: its feed subscribes after start-up, and until then every hit reads Redis. */
async function buildLive(t: Parameters<typeof build>[0], overrides: Record<string, string>) {
  const app = await build(t, services, overrides)
  await waitFor('the near cache to go live', async () => app.cache.nearCacheLive(), 10_000, 10)
  return app
}

const read = (app: Awaited<ReturnType<typeof build>>, url: string) => app.inject({ url, headers: auth('read') })

/** Reads until the answer is a MISS; the feed's message arrives within a round trip or two. */
async function untilMiss(app: Awaited<ReturnType<typeof build>>, url: string) {
  const started = Date.now()
  for (;;) {
    const res = await read(app, url)
    if (res.headers['x-cache'] === 'MISS' || Date.now() - started > 10_000) return { res, ms: Date.now() - started }
    await new Promise((r) => setTimeout(r, 5))
  }
}

t.test('a hot hit is answered from memory: no Redis cache read', async (t) => {
  const app = await buildLive(t, { REDIS_PREFIX: uniquePrefix(), ...LONG_TTL })
  const url = '/tables/near/items/a'
  t.equal((await read(app, url)).headers['x-cache'], 'MISS')
  const before = await cacheReads()
  for (let i = 0; i < 20; i++) {
    const hit = await read(app, url)
    t.equal(hit.headers['x-cache'], 'HIT')
  }
  t.equal((await cacheReads()) - before, 0, '20 hits, no cache script run')
  const gzip = await app.inject({ url, headers: { ...auth('read'), 'accept-encoding': 'gzip' } })
  t.equal(gzip.headers['content-encoding'], 'gzip', 'the stored gzip bytes, as from Redis')
  const revalidated = await app.inject({ url, headers: { ...auth('read'), 'if-none-match': String(gzip.headers.etag) } })
  t.equal(revalidated.statusCode, 304)
})

t.test('clients without gzip get the plain body from memory, clients with gzip still the stored bytes', async (t) => {
  const app = await buildLive(t, { REDIS_PREFIX: uniquePrefix(), ...LONG_TTL })
  const url = '/tables/near/items/a'
  const miss = await read(app, url)
  const before = await cacheReads()
  for (let i = 0; i < 3; i++) {
    const plain = await read(app, url)
    t.equal(plain.headers['content-encoding'], undefined)
    t.equal(plain.body, miss.body, 'plain: the exact body')
    const gz = await app.inject({ url, headers: { ...auth('read'), 'accept-encoding': 'gzip' } })
    t.equal(gz.headers['content-encoding'], 'gzip')
    t.equal(gunzipSync(gz.rawPayload).toString(), miss.body, 'gzip: the stored bytes')
  }
  t.equal((await cacheReads()) - before, 0, 'all from memory')
})

t.test('revalidations are answered from memory too, without the body ever being read', async (t) => {
  const prefix = uniquePrefix()
  const [a, b] = [await buildLive(t, { REDIS_PREFIX: prefix, ...LONG_TTL }), await buildLive(t, { REDIS_PREFIX: prefix, ...LONG_TTL })]
  const url = '/tables/near/items/a'
  const etag = String((await read(a, url)).headers.etag)
  const revalidate = () => b.inject({ url, headers: { ...auth('read'), 'if-none-match': etag } })
  let before = await cacheReads()
  t.equal((await revalidate()).statusCode, 304)
  // Plus, once per table and process, the table's key schema (its details), which names the entry's dependencies.
  t.equal((await cacheReads()) - before, 2, "B's first revalidation asks Redis (for the metadata only, and the table's key schema)")
  before = await cacheReads()
  for (let i = 0; i < 10; i++) t.equal((await revalidate()).statusCode, 304)
  t.equal((await cacheReads()) - before, 0, 'the next ten do not')
  before = await cacheReads()
  const full = await read(b, url)
  t.equal(full.statusCode, 200)
  t.same(full.json(), { id: 'a', v: 1 }, 'a request without If-None-Match still gets the body')
  t.equal((await cacheReads()) - before, 1, 'read from Redis, since memory held no body')
})

t.test('an invalidation on one API process reaches the near cache of another at once; other tables keep theirs', async (t) => {
  const prefix = uniquePrefix()
  const [a, b] = [await buildLive(t, { REDIS_PREFIX: prefix, ...LONG_TTL }), await buildLive(t, { REDIS_PREFIX: prefix, ...LONG_TTL })]
  for (const url of ['/tables/near/items/a', '/tables/other/items/a']) {
    await read(a, url)
    t.equal((await read(a, url)).headers['x-cache'], 'HIT', `${url} cached on A`)
  }
  await dynamo.send(new PutItemCommand({ TableName: 'near', Item: { id: { S: 'a' }, v: { N: '2' } } }))
  const invalidated = await b.inject({ method: 'DELETE', url: '/tables/near/cache', headers: auth('admin') })
  t.equal(invalidated.statusCode, 200)
  const { res, ms } = await untilMiss(a, '/tables/near/items/a')
  t.equal(res.headers['x-cache'], 'MISS', `A missed ${ms} ms after B's invalidation answered`)
  t.ok(ms < 10_000, 'long before NEAR_CACHE_TTL_MS (60 s)')
  t.same(res.json(), { id: 'a', v: 2 }, 'and read the new value')
  t.equal((await read(a, '/tables/other/items/a')).headers['x-cache'], 'HIT', 'another table is untouched')

  await b.inject({ method: 'DELETE', url: '/cache', headers: auth('admin') })
  t.equal((await untilMiss(a, '/tables/other/items/a')).res.headers['x-cache'], 'MISS', 'DELETE /cache reaches every table')
})

t.test("another process's refresh is seen once NEAR_CACHE_TTL_MS has passed", async (t) => {
  const prefix = uniquePrefix()
  const ttl = 2500
  const a = await buildLive(t, { REDIS_PREFIX: prefix, NEAR_CACHE_TTL_MS: String(ttl) })
  const b = await build(t, services, { REDIS_PREFIX: prefix })
  const url = '/tables/near/items/a'
  const first = await read(a, url)
  const cachedAt = Date.now()
  await dynamo.send(new PutItemCommand({ TableName: 'near', Item: { id: { S: 'a' }, v: { N: '3' } } }))
  // Cache-Control: no-cache on B reloads the entry in Redis; it is not an invalidation.
  const refreshed = await b.inject({ url, headers: { ...auth('read'), 'cache-control': 'no-cache' } })
  t.same(refreshed.json(), { id: 'a', v: 3 })
  t.equal((await read(a, url)).headers.etag, first.headers.etag, 'A answers from memory within its near-cache ttl')
  await new Promise((r) => setTimeout(r, Math.max(0, cachedAt + ttl + 50 - Date.now())))
  const later = await read(a, url)
  t.equal(later.headers['x-cache'], 'HIT')
  t.equal(later.headers.etag, refreshed.headers.etag, 'then reads the refreshed entry from Redis')
})

t.test('NEAR_CACHE_TTL_MS=0 turns it off: every hit reads Redis', async (t) => {
  const app = await build(t, services, { REDIS_PREFIX: uniquePrefix(), NEAR_CACHE_TTL_MS: '0' })
  const url = '/tables/near/items/a'
  await read(app, url)
  const before = await cacheReads()
  for (let i = 0; i < 5; i++) t.equal((await read(app, url)).headers['x-cache'], 'HIT')
  t.equal((await cacheReads()) - before, 5, 'one cache read per hit')
})
