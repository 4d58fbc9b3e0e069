import t from 'tap'
import { resourceId } from '../../../src/shared/cache/resources.ts'
import type { CacheStore } from '../../../src/shared/cache/store.ts'
import { errors } from '../../../src/shared/errors.ts'
import { bodyOf, items, rig, STALE_AT_MS, TTL_MS } from '../../helpers/read-cache-rig.ts'

// What a read answers when a source fails: an expired entry when DynamoDB is unavailable
// (stale-if-error), the error when the request itself is wrong, and DynamoDB directly when Redis is
// unavailable (bypass).

const unavailable = () => new errors.DC_ERR_DYNAMO_UNAVAILABLE('connect ECONNREFUSED')

t.test('stale-if-error: an expired entry is served when the load fails as unavailable', async (t) => {
  const { cache, clock, loader, outcomes } = rig()
  const read = items()
  const first = await cache.get(read)
  clock.advance(TTL_MS)
  const failure = unavailable()
  loader.failWith(failure)
  const answer = await cache.get(read)
  t.equal(answer.outcome, 'stale-if-error')
  t.equal(answer.etag, first.etag, 'the stored value')
  t.equal(answer.createdAt, first.createdAt, 'with its real age')
  t.same(bodyOf(answer), bodyOf(first), 'and its body')
  t.equal(answer.error, failure, 'carrying why')
  t.equal(loader.count, 2, 'after trying DynamoDB')
  t.equal(outcomes.at(-1), 'stale-if-error')

  loader.succeed()
  const recovered = await cache.get(read)
  t.equal(recovered.outcome, 'revalidated', 'the failure was not stored: the next read loads')
})

t.test('stale-if-error covers throttling and an exhausted read budget too', async (t) => {
  for (const failure of [new errors.DC_ERR_DYNAMO_THROTTLED('orders'), new errors.DC_ERR_BUDGET_EXHAUSTED('orders')]) {
    const { cache, clock, loader } = rig()
    await cache.get(items())
    clock.advance(TTL_MS)
    loader.failWith(failure)
    t.equal((await cache.get(items())).outcome, 'stale-if-error', (failure as { code: string }).code)
  }
})

t.test('stale-if-error with a matching ETag fetches the body it did not read', async (t) => {
  const { cache, clock, loader } = rig()
  const read = items()
  const first = await cache.get(read)
  clock.advance(TTL_MS)
  loader.failWith(unavailable())
  const answer = await cache.get(read, { ifNoneMatch: first.etag })
  t.equal(answer.outcome, 'stale-if-error')
  t.ok(answer.gzip, 'served with its body')
  t.same(bodyOf(answer), bodyOf(first))
})

t.test('an error that is not unavailability is thrown, not hidden behind the old value', async (t) => {
  const { cache, clock, loader, outcomes } = rig()
  const read = items()
  await cache.get(read)
  clock.advance(TTL_MS)
  loader.failWith(new errors.DC_ERR_DYNAMO_REJECTED('bad key'))
  await t.rejects(cache.get(read), { code: 'DC_ERR_DYNAMO_REJECTED' })
  t.equal(outcomes.at(-1), 'error')
})

t.test('a miss has nothing to fall back on: unavailability is thrown', async (t) => {
  const { cache, loader, outcomes } = rig()
  loader.failWith(unavailable())
  await t.rejects(cache.get(items()), { code: 'DC_ERR_DYNAMO_UNAVAILABLE' })
  t.same(outcomes, ['error'])
})

t.test('a stale entry is served without touching DynamoDB, so its failure cannot show', async (t) => {
  const { cache, clock, loader, refreshes } = rig()
  await cache.get(items())
  clock.advance(STALE_AT_MS)
  loader.failWith(unavailable())
  t.equal((await cache.get(items())).outcome, 'stale')
  t.equal(loader.count, 1)
  t.equal(refreshes.length, 1, 'the refresh job will meet the failure, not the client')
})

t.test('bypass: Redis not ready, every read goes to DynamoDB without touching the store', async (t) => {
  const { cache, clock, loader, memory, outcomes } = rig({ redisReady: () => false })
  const first = await cache.get(items())
  const second = await cache.get(items())
  t.equal(first.outcome, 'bypass')
  t.equal(first.ttl, 0, 'nothing to advertise as cacheable')
  t.equal(first.createdAt, clock.now())
  t.same(bodyOf(first), { table: 'orders', n: 1 })
  t.equal(first.gzip, undefined, 'the plain body only')
  t.equal(bodyOf(second).n, 2, 'no single-flight or caching while bypassing')
  t.equal(loader.count, 2)
  t.equal(memory.reads, 0)
  t.equal(memory.writes.length, 0)
  t.same(outcomes, ['bypass', 'bypass'])
})

t.test('bypass: a store read that fails sends the read to DynamoDB and says why', async (t) => {
  const wrap = (store: CacheStore): CacheStore => ({
    ...store,
    read: async () => {
      throw new Error('Connection is closed.')
    },
  })
  const { cache, loader, warnings } = rig({ wrap })
  const answer = await cache.get(items())
  t.equal(answer.outcome, 'bypass')
  t.equal(loader.count, 1)
  t.same(warnings, [{ msg: 'cache.bypass', table: 'orders', err: 'Connection is closed.' }])
})

// What a Redis that is full under noeviction answers: reads work, every write is refused.
const OOM = "OOM command not allowed when used memory > 'maxmemory'."
const refusesWrites = (store: CacheStore): CacheStore => ({
  ...store,
  lock: async () => {
    throw new Error(OOM)
  },
  write: async () => {
    throw new Error(OOM)
  },
})

t.test('a Redis that refuses writes: each miss is answered from DynamoDB, nothing stored, one warning per 10 s', async (t) => {
  const { cache, loader, warnings, memory, clock } = rig({ wrap: refusesWrites })
  const answers = [await cache.get(items()), await cache.get(items()), await cache.get(items())]
  t.same(
    answers.map((a) => a.outcome),
    ['miss', 'miss', 'miss'],
  )
  t.ok(
    answers.every((a) => bodyOf(a).table === 'orders'),
    'each with the loaded value',
  )
  t.equal(loader.count, 3, 'nothing was stored, so each read loads')
  t.equal(memory.writes.length, 0)
  t.same(warnings, [{ msg: 'cache.store_failed', table: 'orders', step: 'lock', err: OOM, failures: 1 }], 'one line, not one per miss')
  clock.advance(10_000)
  await cache.get(items())
  // Each miss fails twice (its lock, then its write): 5 unlogged after the first line, and this one's lock.
  t.same(warnings.at(-1), { msg: 'cache.store_failed', table: 'orders', step: 'lock', err: OOM, failures: 6 }, 'the next says how many it stands for')
  t.equal(warnings.length, 2)
})

t.test('a store write that fails after the lock was taken: the read still answers, the lock is released', async (t) => {
  const wrap = (store: CacheStore): CacheStore => ({
    ...store,
    write: async () => {
      throw new Error(OOM)
    },
  })
  const { cache, warnings, memory } = rig({ wrap })
  const answer = await cache.get(items())
  t.equal(answer.outcome, 'miss')
  t.equal(bodyOf(answer).table, 'orders')
  t.same(warnings, [{ msg: 'cache.store_failed', table: 'orders', step: 'write', err: OOM, failures: 1 }])
  t.notOk(memory.locked('orders', resourceId(items())), 'no lock left behind')
  t.equal(memory.writes.length, 0, 'nothing stored')
})

t.test("Redis fills up while a reader waits for another process's fill: it loads at once, unlocked", async (t) => {
  let locks = 0
  const wrap = (store: CacheStore): CacheStore => ({
    ...store,
    // Held by someone else at first; then refused, as a full Redis refuses SET NX.
    lock: async () => {
      locks++
      if (locks === 1) return null
      throw new Error(OOM)
    },
  })
  const { cache, loader, warnings, sleeps } = rig({ wrap })
  const answer = await cache.get(items())
  t.equal(answer.outcome, 'miss')
  t.equal(loader.count, 1)
  t.equal(sleeps.length, 1, 'one poll, not the whole lock wait')
  t.same(warnings, [{ msg: 'cache.store_failed', table: 'orders', step: 'lock', err: OOM, failures: 1 }])
})
