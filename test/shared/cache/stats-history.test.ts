import { Redis } from 'ioredis'
import t from 'tap'
import { createCacheStats } from '../../../src/shared/cache/stats.ts'
import { createStatsHistory, HISTORY_RETENTION_S, MINUTE_MS } from '../../../src/shared/cache/stats-history.ts'
import { scanKeys } from '../../../src/shared/redis/index.ts'
import { createRedisKeys } from '../../../src/shared/redis/keys.ts'
import { ownRedis } from '../../helpers/services.ts'
import { uniquePrefix } from '../../helpers/unique-prefix.ts'

const server = await ownRedis()
t.teardown(() => server.close())
const redis = new Redis(server.url)
t.teardown(() => redis.quit())

/** A clock the test moves by hand, starting at a minute boundary. */
function clock(start = Math.floor(Date.UTC(2026, 11, 6, 12, 0) / MINUTE_MS) * MINUTE_MS) {
  let at = start
  return { now: () => at, advance: (ms: number) => (at += ms), start }
}

t.test('two processes count into one per-minute history, per table and in total', async (t) => {
  const keys = createRedisKeys(uniquePrefix())
  const time = clock()
  const history = createStatsHistory({ redis, keys, now: time.now })
  // Two API processes: each counts in memory and flushes into the same Redis keys (the timer never fires here).
  const pa = createCacheStats({ redis, keys, ttlSeconds: 3600, flushIntervalMs: 3_600_000, now: time.now })
  const pb = createCacheStats({ redis, keys, ttlSeconds: 3600, flushIntervalMs: 3_600_000, now: time.now })
  t.teardown(() => Promise.all([pa.close(), pb.close()]))

  // Minute 0: A has 3 hits and 1 miss on orders, B 2 hits on orders and 1 error on users.
  for (let i = 0; i < 3; i++) pa.record('orders', 'hit')
  pa.record('orders', 'miss')
  pb.record('orders', 'hit')
  pb.record('orders', 'hit')
  pb.record('users', 'error')
  await Promise.all([pa.flush(), pb.flush()])
  // Minute 2 (minute 1 stays empty): A 1 stale on orders, B 1 miss on the table list.
  time.advance(2 * MINUTE_MS + 5_000)
  pa.record('orders', 'stale')
  pb.record(null, 'miss')
  await Promise.all([pa.flush(), pb.flush()])

  const page = await history.read({ minutes: 3 })
  t.equal(page.step, 60)
  t.same(
    page.times,
    [0, 1, 2].map((i) => (time.start + i * MINUTE_MS) / 1000),
    'three minutes, oldest first',
  )
  t.same(page.tables.orders, { hits: [5, 0, 0], misses: [1, 0, 0], stale: [0, 0, 1], errors: [0, 0, 0] }, 'orders merged over both processes')
  t.same(page.tables.users, { hits: [0, 0, 0], misses: [0, 0, 0], stale: [0, 0, 0], errors: [1, 0, 0] })
  t.same(page.tables['*'], { hits: [0, 0, 0], misses: [0, 0, 1], stale: [0, 0, 0], errors: [0, 0, 0] }, 'the table list under *')
  t.same(page.totals, { hits: [5, 0, 0], misses: [1, 0, 1], stale: [0, 0, 1], errors: [1, 0, 0] })

  // The history adds up to the all-time counters of /cache/stats.
  const snapshot = await pa.snapshot()
  const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0)
  t.same(
    { hits: snapshot.totals.hits, misses: snapshot.totals.misses, stale: snapshot.totals.stale, errors: snapshot.totals.errors },
    { hits: sum(page.totals.hits), misses: sum(page.totals.misses), stale: sum(page.totals.stale), errors: sum(page.totals.errors) },
  )

  t.same((await history.read({ minutes: 3, table: 'users' })).totals.errors, [1, 0, 0], 'one table only')
  const narrowed = await history.read({ minutes: 3, visible: (name) => name === 'users' })
  t.same(Object.keys(narrowed.tables), ['users'], 'a restricted key sees only its tables')
  t.same(narrowed.totals.hits, [0, 0, 0], '...and totals over them only')

  // Kept at least 24 hours: each minute's hash expires 25 hours after its last write.
  const ttl = await redis.ttl(keys.statsMinute(time.start / MINUTE_MS))
  t.ok(ttl > 24 * 3600 && ttl <= HISTORY_RETENTION_S, `minute hash ttl ${ttl}s`)

  // A day later the first minute is still in range; the window is capped at 24 h.
  time.advance(24 * 60 * MINUTE_MS - 3 * MINUTE_MS)
  const day = await history.read({ minutes: 100_000 })
  t.equal(day.times.length, 24 * 60, 'at most 24 h of minutes')
  t.equal(day.totals.hits[0], 5, 'the first minute is the oldest point of a 24 h window')
})

t.test('an idle process writes nothing', async (t) => {
  const keys = createRedisKeys(uniquePrefix())
  const stats = createCacheStats({ redis, keys, ttlSeconds: 3600, flushIntervalMs: 3_600_000 })
  await stats.flush()
  await stats.close()
  const found: string[] = []
  for await (const batch of scanKeys(redis, `${keys.prefix}:*`)) found.push(...batch)
  t.same(found, [])
})
