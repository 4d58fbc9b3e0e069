import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import t from 'tap'
import { ENTRY_FIELDS } from '../../../src/shared/cache/entry-layout.ts'
import { invalidateTable } from '../../../src/shared/cache/invalidation.ts'
import { createCacheStore } from '../../../src/shared/cache/store.ts'
import { createRedisKeys } from '../../../src/shared/redis/keys.ts'
import { cacheStoreContract, metaOf } from '../../helpers/cache-store-contract.ts'
import { createMemoryStore } from '../../helpers/memory-store.ts'
import { fakeClock } from '../../helpers/read-cache-rig.ts'
import { ownRedis } from '../../helpers/services.ts'
import { uniquePrefix } from '../../helpers/unique-prefix.ts'

// The Redis store against a real redis-server: the shared contract (also run against the in-memory
// store the unit tests use), then what only Redis has: chunks, their clean-up, key expiry.

const server = await ownRedis()
t.teardown(() => server.close())
const redis = new Redis(server.url)
t.teardown(() => redis.quit())

const CHUNK = 1024
const STALE_IF_ERROR = 300
const DEPENDENCY_TTL = 900

function redisStore() {
  const keys = createRedisKeys(uniquePrefix())
  const store = createCacheStore({ redis, keys, chunkBytes: CHUNK, staleIfErrorTtl: STALE_IF_ERROR, dependencyTtl: DEPENDENCY_TTL })
  return { keys, store }
}

await cacheStoreContract(t, 'in memory', async () => {
  const clock = fakeClock()
  const memory = createMemoryStore({ now: clock.now })
  return {
    store: memory.store,
    invalidate: async (table, mode) => memory.invalidate(table, mode),
    expireLock: async (_table, _id, ttlMs) => clock.advance(ttlMs),
  }
})

await cacheStoreContract(t, 'Redis', async () => {
  const { keys, store } = redisStore()
  return {
    store,
    invalidate: (table, mode) => invalidateTable(redis, keys, table, mode),
    expireLock: async (table, id, ttlMs) => {
      const left = await redis.pttl(keys.lock(table, id))
      if (!(left > 0 && left <= ttlMs)) throw new Error(`lock ttl ${left} ms, expected (0, ${ttlMs}]`)
      // Expire it now rather than wait: the ttl itself is what was checked.
      await redis.pexpire(keys.lock(table, id), 1)
      while ((await redis.exists(keys.lock(table, id))) === 1) await new Promise((resolve) => setImmediate(resolve))
    },
  }
})

t.test('Redis: a body over the chunk size is stored in chunks and read back whole', async (t) => {
  const { keys, store } = redisStore()
  const bytes = randomBytes(CHUNK * 2 + 100)
  const { generation } = await store.read('orders', 'big')
  const meta = await store.write('orders', 'big', generation, metaOf('W/"big"'), bytes)
  t.equal(meta.chunks, 3)
  t.equal(await redis.hexists(keys.entry('orders', 'big'), ENTRY_FIELDS.body), 0, 'no inline body')
  const lengths = await Promise.all([0, 1, 2].map((i) => redis.strlen(keys.chunk('orders', 'big', meta.version, i))))
  t.same(lengths, [CHUNK, CHUNK, 100])
  const { entry } = await store.read('orders', 'big')
  t.ok(entry?.gzip?.equals(bytes), 'the same bytes')
  const matched = await store.read('orders', 'big', 'W/"big"')
  t.equal(matched.entry?.gzip, undefined, 'a matching ETag reads no chunk')
  const exact = await store.write('orders', 'exact', generation, metaOf('W/"x"'), randomBytes(CHUNK))
  t.equal(exact.chunks, 0, 'a body of exactly the chunk size stays inline')
})

t.test('Redis: a rewrite removes the chunks of the entry it replaces, whichever layout follows', async (t) => {
  const { keys, store } = redisStore()
  const { generation } = await store.read('orders', 'big')
  const first = await store.write('orders', 'big', generation, metaOf('W/"1"'), randomBytes(CHUNK * 2))
  const second = await store.write('orders', 'big', generation, metaOf('W/"2"'), randomBytes(CHUNK * 3), first)
  t.equal(await redis.exists(keys.chunk('orders', 'big', first.version, 0), keys.chunk('orders', 'big', first.version, 1)), 0, 'old chunks gone')
  const small = randomBytes(10)
  await store.write('orders', 'big', generation, metaOf('W/"3"'), small, second)
  t.equal(await redis.keys(`${keys.prefix}:*:c:*`).then((k) => k.length), 0, 'no chunk left once the body is inline')
  t.ok((await store.read('orders', 'big')).entry?.gzip?.equals(small))
  const third = await store.write('orders', 'big', generation, metaOf('W/"4"'), randomBytes(CHUNK * 2))
  t.equal(await redis.hexists(keys.entry('orders', 'big'), ENTRY_FIELDS.body), 0, 'inline body removed when chunks follow')
  t.equal(third.chunks, 2)
})

t.test('Redis: a chunk missing between the two round trips reads as a miss, never a torn body', async (t) => {
  const { keys, store } = redisStore()
  const { generation } = await store.read('orders', 'big')
  const meta = await store.write('orders', 'big', generation, metaOf('W/"1"'), randomBytes(CHUNK * 2))
  await redis.del(keys.chunk('orders', 'big', meta.version, 1))
  const read = await store.read('orders', 'big')
  t.equal(read.entry, undefined)
  t.equal(read.generation, generation)
})

t.test('Redis: an entry and its chunks live ttl + the stale-if-error time', async (t) => {
  const { keys, store } = redisStore()
  const { generation } = await store.read('orders', 'e')
  const meta = await store.write('orders', 'e', generation, metaOf('W/"1"'), randomBytes(CHUNK * 2))
  const keep = (60 + STALE_IF_ERROR) * 1000
  const entryTtl = await redis.pttl(keys.entry('orders', 'e'))
  const chunkTtl = await redis.pttl(keys.chunk('orders', 'e', meta.version, 0))
  t.ok(entryTtl > keep - 5000 && entryTtl <= keep, `entry ${entryTtl} ms`)
  t.ok(chunkTtl > keep - 5000 && chunkTtl <= keep, `chunk ${chunkTtl} ms`)
  await store.write('orders', 'short', generation, metaOf('W/"2"'), randomBytes(10), undefined, 30)
  const shortTtl = await redis.pttl(keys.entry('orders', 'short'))
  t.ok(shortTtl > 85_000 && shortTtl <= 90_000, `a write's own stale-if-error time wins: ${shortTtl} ms`)
})
