import { Redis } from 'ioredis'
import t from 'tap'
import { createMetrics } from '../../../src/shared/metrics.ts'
import { readStreamsState, streamsTableState } from '../../../src/shared/metrics-streams.ts'
import { createRedisKeys } from '../../../src/shared/redis/keys.ts'
import { createShardLeases } from '../../../src/workers/streams/lease.ts'
import { uniquePrefix } from '../../helpers/app.ts'
import { ownRedis } from '../../helpers/services.ts'

// What the follower records in Redis for /metrics (lease.ts scripts) and how a scrape reads it.
const server = await ownRedis()
t.teardown(() => server.close())
const redis = new Redis(server.url)
t.teardown(() => redis.quit())

const setup = async (tables: string[]) => {
  const keys = createRedisKeys(uniquePrefix())
  await redis.sadd(keys.streamsFollowed, ...tables)
  return { keys, leases: createShardLeases({ redis, keys, leaseMs: 60_000, audit: false }) }
}
const byTable = async (keys: ReturnType<typeof createRedisKeys>) => Object.fromEntries((await readStreamsState(redis, keys)).map((s) => [s.table, s]))

t.test('records applied, shards held and lag per table, two tables and two holders', async (t) => {
  const { keys, leases } = await setup(['orders', 'events'])
  const old = Date.now() - 120_000
  t.equal(await leases.take('orders', 's1', 'a'), true)
  t.equal(await leases.take('orders', 's2', 'b'), true)
  t.equal(await leases.take('events', 's1', 'b'), true)
  t.equal(await leases.commit('orders', 's1', 'a', 'c:1', ['1', '2', '3'], old), true)
  t.equal(await leases.commit('orders', 's2', 'b', 'c:9', ['9'], Date.now()), true)
  let s = await byTable(keys)
  t.same(Object.keys(s).sort(), ['events', 'orders'], 'both followed tables are reported')
  t.equal(s.orders!.applied, 4, 'orders: records applied across its shards and holders')
  t.equal(s.orders!.held, 2, 'orders: two shards held')
  t.ok(s.orders!.lagSeconds! >= 110, `orders: lag is its worst shard's (${s.orders!.lagSeconds} s)`)
  t.equal(s.events!.applied, 0, 'events: nothing applied')
  t.equal(s.events!.held, 1, 'events: one shard held')
  t.equal(s.events!.lagSeconds, undefined, 'events: no lag before any read of its shard')

  // A read finds s1's tip: caught up while its holder is alive.
  t.equal(await leases.take('orders', 's1', 'a', true), true)
  t.equal(await leases.take('orders', 's2', 'b', true), true)
  s = await byTable(keys)
  t.equal(s.orders!.lagSeconds, 0, 'orders: caught up once every held shard was found at its tip')
  // A new record clears the tip mark.
  t.equal(await leases.commit('orders', 's1', 'a', 'c:4', ['4'], old), true)
  s = await byTable(keys)
  t.ok(s.orders!.lagSeconds! >= 110, 'a record applied after the tip mark counts again')
  t.equal(s.orders!.applied, 5)

  // Released: not held, and no longer "caught up" (nobody is reading).
  await leases.release('orders', 's2', 'b')
  s = await byTable(keys)
  t.equal(s.orders!.held, 1, 'a released lease is not held')
  // Done: the shard no longer lags.
  t.equal(await leases.commit('orders', 's1', 'a', 'd'), true)
  await leases.release('orders', 's1', 'a')
  s = await byTable(keys)
  t.equal(s.orders!.held, 0, 'no shard held')
  t.ok(s.orders!.lagSeconds! < 110, `the done shard's old record no longer counts (${s.orders!.lagSeconds} s)`)
  await leases.historyLost('events')
  t.equal((await byTable(keys)).events!.lost, 1, 'history lost is counted')
})

t.test("another holder's release leaves the holder's expiry alone; a lease that is no shard's records nothing", async (t) => {
  const { keys, leases } = await setup(['orders'])
  t.equal(await leases.take('orders', 's1', 'a'), true)
  await leases.release('orders', 's1', 'b')
  t.equal((await byTable(keys)).orders!.held, 1, 'still held')
  t.equal(await leases.take('orders', '@init', 'a'), true)
  t.same(Object.keys(await redis.hgetall(keys.streamFollow('orders', 'live'))), ['e:s1'], 'only the shard is in the live hash')
})

t.test('an expired lease is not held and its tip mark is not "caught up"', async (t) => {
  const now = 1_000_000
  const state = streamsTableState('x', { applied: '7' }, { 'e:s1': String(now - 1), 't:s1': String(now - 5000), 'c:s1': String(now - 9000) }, now)
  t.same(state, { table: 'x', applied: 7, lost: 0, held: 0, lagSeconds: 5 })
  const live = streamsTableState('x', {}, { 'e:s1': String(now + 1), 't:s1': String(now - 5000) }, now)
  t.same(live, { table: 'x', applied: 0, lost: 0, held: 1, lagSeconds: 0 })
})

t.test('the exposition: values per table, and no samples when the read fails', async (t) => {
  const m = createMetrics({ defaultMetrics: false })
  let fail = false
  m.addStreamsCollectors(async () => {
    if (fail) throw new Error('down')
    return [
      { table: 'orders', applied: 12, lost: 1, held: 2, lagSeconds: 3.5 },
      { table: 'events', applied: 0, lost: 0, held: 0, lagSeconds: undefined },
    ]
  }, 500)
  const text = await m.render()
  t.match(text, /dynacache_streams_records_applied_total\{table="orders"\} 12/)
  t.match(text, /dynacache_streams_shards_held\{table="events"\} 0/)
  t.match(text, /dynacache_streams_lag_seconds\{table="orders"\} 3\.5/)
  t.notMatch(text, /dynacache_streams_lag_seconds\{table="events"\}/, 'no lag sample for a table never read')
  t.match(text, /dynacache_streams_history_lost_total\{table="orders"\} 1/)
  fail = true
  // One read serves every collector of a scrape; the next scrape reads again.
  await new Promise((resolve) => setImmediate(resolve))
  t.notMatch(await m.render(), /dynacache_streams_\w+\{/, 'no samples when Redis could not be read')
})
