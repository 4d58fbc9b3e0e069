import t from 'tap'
import { resourceId } from '../../../src/shared/cache/resources.ts'
import { bodyOf, items, rig, STALE_AT_MS, TTL_MS } from '../../helpers/read-cache-rig.ts'

// Freshness of a stored entry, on the fake clock: hit before ttl x STALE_THRESHOLD, stale (served,
// refresh queued) from it, revalidated (loaded now) from ttl on.

t.test('the boundaries: hit just before ttl x STALE_THRESHOLD, stale at it, revalidated at ttl', async (t) => {
  const { cache, clock, loader, refreshes } = rig()
  const read = items()
  const first = await cache.get(read)
  t.equal(first.outcome, 'miss')
  t.equal(first.createdAt, clock.start, 'createdAt is the injected clock')
  t.equal(first.ttl, 60)

  clock.set(clock.start + STALE_AT_MS - 1)
  const hit = await cache.get(read)
  t.equal(hit.outcome, 'hit', '1 ms before the stale point')
  t.equal(hit.etag, first.etag)
  t.ok(hit.gzip, 'a hit carries the stored gzip')
  t.equal(refreshes.length, 0, 'no refresh for a fresh entry')

  clock.set(clock.start + STALE_AT_MS)
  const stale = await cache.get(read)
  t.equal(stale.outcome, 'stale', 'at the stale point')
  t.equal(stale.etag, first.etag, 'served the stored value at once')
  t.equal(loader.count, 1, 'no load for a stale read')
  t.equal(refreshes.length, 1, 'one refresh queued')
  t.same(refreshes[0], { resource: read, id: resourceId(read) }, 'for this resource and its entry id')

  clock.set(clock.start + TTL_MS - 1)
  t.equal((await cache.get(read)).outcome, 'stale', '1 ms before ttl')
  t.equal(loader.count, 1)

  clock.set(clock.start + TTL_MS)
  const revalidated = await cache.get(read)
  t.equal(revalidated.outcome, 'revalidated', 'at ttl')
  t.equal(loader.count, 2, 'loaded now')
  t.equal(revalidated.createdAt, clock.start + TTL_MS)
  t.equal(bodyOf(revalidated).n, 2, 'answers the new load')
  t.not(revalidated.etag, first.etag)

  const after = await cache.get(read)
  t.equal(after.outcome, 'hit', 'the revalidated entry is fresh again')
  t.equal(after.etag, revalidated.etag)
})

t.test('Cache-Control: no-cache loads a fresh entry again and stores the new value', async (t) => {
  const { cache, clock, loader } = rig()
  const read = items()
  await cache.get(read)
  clock.advance(1000)
  const forced = await cache.get(read, { noCache: true })
  t.equal(forced.outcome, 'miss')
  t.equal(loader.count, 2, 'loaded though the entry was fresh')
  t.equal(forced.createdAt, clock.start + 1000)
  t.equal(bodyOf(forced).n, 2)
  const next = await cache.get(read)
  t.equal(next.outcome, 'hit')
  t.equal(next.etag, forced.etag, 'later reads see the forced value')

  // With the client's (matching) ETag, no-cache still loads: the ETag must not short-circuit it.
  await cache.get(read, { noCache: true, ifNoneMatch: forced.etag })
  t.equal(loader.count, 3)
})

t.test("a loader's ttl (a negative entry) sets the boundaries", async (t) => {
  const { cache, clock, loader, refreshes } = rig()
  loader.answerTtl(4)
  const read = items('orders', '1')
  t.equal((await cache.get(read)).ttl, 4)
  clock.set(clock.start + 2999)
  t.equal((await cache.get(read)).outcome, 'hit')
  clock.set(clock.start + 3000)
  t.equal((await cache.get(read)).outcome, 'stale')
  t.equal(refreshes.length, 1)
  clock.set(clock.start + 4000)
  t.equal((await cache.get(read)).outcome, 'revalidated')
  t.equal(loader.count, 2)
})

t.test('a matching ETag on a fresh entry answers without the body', async (t) => {
  const { cache } = rig()
  const read = items()
  const first = await cache.get(read)
  const revalidation = await cache.get(read, { ifNoneMatch: first.etag })
  t.equal(revalidation.outcome, 'hit')
  t.equal(revalidation.etag, first.etag)
  t.equal(revalidation.gzip, undefined, 'a 304 needs no body')
  const other = await cache.get(read, { ifNoneMatch: 'W/"something-else"' })
  t.ok(other.gzip, 'another ETag gets the body')
})

t.test('refresh: nothing to do while fresh, one load from the stale point on', async (t) => {
  const { cache, clock, loader } = rig()
  const read = items()
  t.equal(await cache.refresh(read), 'refreshed', 'a missing entry is filled')
  t.equal(loader.count, 1)
  clock.set(clock.start + STALE_AT_MS - 1)
  t.equal(await cache.refresh(read), 'fresh')
  t.equal(loader.count, 1, 'no load for a fresh entry')
  clock.set(clock.start + STALE_AT_MS)
  t.equal(await cache.refresh(read), 'refreshed')
  t.equal(loader.count, 2)
  const after = await cache.get(read)
  t.equal(after.outcome, 'hit', 'a refreshed entry is fresh')
  t.equal(after.createdAt, clock.start + STALE_AT_MS)
})

t.test('onOutcome sees one outcome per answered read', async (t) => {
  const { cache, clock, outcomes } = rig()
  const read = items()
  await cache.get(read)
  await cache.get(read)
  clock.advance(STALE_AT_MS)
  await cache.get(read)
  clock.advance(TTL_MS)
  await cache.get(read)
  t.same(outcomes, ['miss', 'hit', 'stale', 'revalidated'])
})

t.test('the near cache applies the same boundaries, and a stale near copy falls through to Redis', async (t) => {
  // A near cache that remembers longer than the entry stays fresh, so only freshness can send a read on.
  const { cache, clock, memory, refreshes } = rig({ near: { ttlMs: 10 * TTL_MS } })
  const read = items()
  await cache.get(read)
  const readsAfterFill = memory.reads
  clock.set(clock.start + STALE_AT_MS - 1)
  t.equal((await cache.get(read)).outcome, 'hit')
  t.equal(memory.reads, readsAfterFill, 'answered from memory')
  clock.set(clock.start + STALE_AT_MS)
  t.equal((await cache.get(read)).outcome, 'stale', 'Redis says stale')
  t.equal(memory.reads, readsAfterFill + 1, 'asked Redis')
  t.equal(refreshes.length, 1)
})
