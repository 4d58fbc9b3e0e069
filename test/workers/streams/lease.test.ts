import { Redis } from 'ioredis'
import t from 'tap'
import { createRedisKeys } from '../../../src/shared/redis/keys.ts'
import { createShardLeases } from '../../../src/workers/streams/lease.ts'
import { uniquePrefix } from '../../helpers/app.ts'
import { ownRedis } from '../../helpers/services.ts'
import { waitFor } from '../../helpers/wait.ts'

const server = await ownRedis()
t.teardown(() => server.close())
const redis = new Redis(server.url)
t.teardown(() => redis.quit())

const setup = (leaseMs = 60_000) => {
  const keys = createRedisKeys(uniquePrefix())
  return { keys, leases: createShardLeases({ redis, keys, leaseMs, audit: true }) }
}

t.test('one holder per shard: another token is refused until the holder releases', async (t) => {
  const { leases } = setup()
  t.equal(await leases.take('tbl', 's1', 'a'), true, 'a takes it')
  t.equal(await leases.take('tbl', 's1', 'b'), false, 'b is refused')
  t.equal(await leases.take('tbl', 's1', 'a'), true, 'a renews it')
  t.equal(await leases.take('tbl', 's2', 'b'), true, 'another shard is free')
  t.equal(await leases.take('other', 's1', 'b'), true, 'the same shard id of another table is free')
  await leases.release('tbl', 's1', 'b')
  t.equal(await leases.take('tbl', 's1', 'b'), false, "b cannot release a's lease")
  await leases.release('tbl', 's1', 'a')
  t.equal(await leases.take('tbl', 's1', 'b'), true, 'b takes it once a released it')
})

t.test('an expired lease is taken over, and the old holder can no longer move the checkpoint', async (t) => {
  const { keys, leases } = setup(300)
  t.equal(await leases.take('tbl', 's1', 'dead'), true)
  t.equal(await leases.commit('tbl', 's1', 'dead', 'c:100', ['100']), true, 'the holder checkpoints')
  await waitFor('the lease to expire', async () => leases.take('tbl', 's1', 'next'), 30_000, 50)
  t.equal(await leases.commit('tbl', 's1', 'dead', 'c:200', ['200']), false, 'the old holder is refused')
  t.equal(await redis.hget(keys.streamFollow('tbl', 'shards'), 's1'), 'c:100', 'the checkpoint did not move')
  t.equal(await leases.commit('tbl', 's1', 'next', 'c:101', ['101']), true)
  t.same(await redis.lrange(keys.streamFollow('tbl', 'audit:s1'), 0, -1), ['100', '101'], 'the audit has what each holder applied under its lease')
  t.equal(await leases.commit('tbl', 's1', 'next', ''), true, "'' clears the checkpoint")
  t.equal(await redis.hexists(keys.streamFollow('tbl', 'shards'), 's1'), 0)
})
