import t from 'tap'
import { resourceId } from '../../../src/shared/cache/resources.ts'
import type { CacheStore } from '../../../src/shared/cache/store.ts'
import { createMemoryStore } from '../../helpers/memory-store.ts'
import { bodyOf, fakeClock, items, LOCK_TTL_MS, LOCK_WAIT_MS, rig, scriptedLoader, TTL_MS, until } from '../../helpers/read-cache-rig.ts'

// One DynamoDB read per entry: in process (a map of pending fills), across processes (the store's
// lock, the others polling for the holder's write), and what happens when the holder never writes.

t.test('in process: 20 concurrent misses make one load', async (t) => {
  const { cache, loader, memory } = rig()
  const read = items()
  loader.hold()
  const pending = Array.from({ length: 20 }, () => cache.get(read))
  await until('the first load starts', () => loader.count === 1)
  loader.release()
  const answers = await Promise.all(pending)
  t.equal(loader.count, 1, 'one load for 20 callers')
  t.equal(answers.filter((a) => a.collapsed).length, 19, '19 collapsed onto it')
  t.equal(new Set(answers.map((a) => a.etag)).size, 1, 'all answer the same value')
  t.ok(answers.every((a) => a.outcome === 'miss'))
  t.equal(memory.writes.length, 1, 'stored once')
  t.notOk(memory.locked(read.table, resourceId(read)), 'the lock is released')
})

t.test('in process: 20 concurrent reads of an expired entry make one revalidation', async (t) => {
  const { cache, clock, loader } = rig()
  const read = items()
  await cache.get(read)
  clock.advance(TTL_MS)
  loader.hold()
  const pending = Array.from({ length: 20 }, () => cache.get(read))
  await until('the revalidation starts', () => loader.count === 2)
  loader.release()
  const answers = await Promise.all(pending)
  t.equal(loader.count, 2, 'one more load')
  t.ok(answers.every((a) => a.outcome === 'revalidated' && bodyOf(a).n === 2))
})

t.test('in process: a finished or failed fill is not reused', async (t) => {
  const { cache, loader, memory } = rig()
  const read = items()
  loader.hold()
  loader.failWith(new Error('boom'))
  const pending = Array.from({ length: 5 }, () => cache.get(read))
  await until('the load starts', () => loader.count === 1)
  loader.release()
  const settled = await Promise.allSettled(pending)
  t.ok(
    settled.every((s) => s.status === 'rejected' && (s.reason as Error).message === 'boom'),
    'every caller gets the failure',
  )
  t.equal(loader.count, 1)
  t.notOk(memory.locked(read.table, resourceId(read)), 'the lock is released after a failure')
  loader.succeed()
  const retried = await cache.get(read)
  t.equal(retried.outcome, 'miss')
  t.equal(loader.count, 2, 'the next read loads again: a failure is not remembered')
  await cache.get(read, { noCache: true })
  t.equal(loader.count, 3, 'a finished fill is not joined either')
})

t.test('across processes: two read caches on one store make one load; the other waits for its fill', async (t) => {
  const clock = fakeClock()
  const memory = createMemoryStore({ now: clock.now })
  const loader = scriptedLoader()
  const a = rig({ clock, memory, loader, waitMovesClock: false })
  const b = rig({ clock, memory, loader, waitMovesClock: false })
  const read = items()
  loader.hold()
  const first = a.cache.get(read)
  await until('A loads', () => loader.count === 1)
  t.ok(memory.locked(read.table, resourceId(read)), 'A holds the lock')
  const second = b.cache.get(read)
  // B finds the lock taken and polls the store; let it poll once before A's load completes.
  const readsBefore = memory.reads
  await until('B polls', () => memory.reads > readsBefore + 1)
  loader.release()
  const [fromA, fromB] = await Promise.all([first, second])
  t.equal(loader.count, 1, 'one load across both processes')
  t.equal(fromA.collapsed, false)
  t.equal(fromB.collapsed, true, 'B answered with A’s fill')
  t.equal(fromB.outcome, 'miss')
  t.equal(fromB.etag, fromA.etag)
  t.same(bodyOf(fromB), bodyOf(fromA))
  t.equal(memory.writes.length, 1)
})

t.test('across processes: the lock holder uses a fill that landed between its miss and its lock', async (t) => {
  const clock = fakeClock()
  const memory = createMemoryStore({ now: clock.now })
  const read = items()
  const id = resourceId(read)
  // Another process writes the entry just after our read missed, before our lock.
  const wrap = (store: CacheStore): CacheStore => ({
    ...store,
    async lock(table, entryId, ttlMs) {
      await store.write(table, entryId, '0', { createdAt: clock.now(), ttl: 60, etag: 'W/"other"', status: 200, size: 2 }, Buffer.from('{}'))
      return store.lock(table, entryId, ttlMs)
    },
  })
  const { cache, loader } = rig({ clock, memory, wrap })
  const answer = await cache.get(read)
  t.equal(loader.count, 0, 'no load of its own')
  t.equal(answer.etag, 'W/"other"')
  t.equal(answer.collapsed, true)
  t.notOk(memory.locked(read.table, id), 'and it released the lock')
})

t.test('across processes: a waiter ignores the old entry and takes the newer one the holder writes', async (t) => {
  const clock = fakeClock()
  const memory = createMemoryStore({ now: clock.now })
  const read = items()
  const id = resourceId(read)
  const { cache, loader } = rig({ clock, memory, waitMovesClock: false })
  const old = await cache.get(read)
  clock.advance(TTL_MS)
  // Another process holds the lock for the revalidation.
  const token = await memory.store.lock(read.table, id, LOCK_TTL_MS)
  t.ok(token)
  const readsBefore = memory.reads
  const waiting = cache.get(read)
  await until('the waiter polled and saw only the old entry', () => memory.reads >= readsBefore + 2)
  await memory.store.write(read.table, id, '0', { createdAt: clock.now(), ttl: 60, etag: 'W/"new"', status: 200, size: 2 }, Buffer.from('{}'))
  const answer = await waiting
  t.equal(loader.count, 1, 'no second load')
  t.not(answer.etag, old.etag)
  t.equal(answer.etag, 'W/"new"')
  t.equal(answer.outcome, 'revalidated')
  t.equal(answer.collapsed, true)
})

t.test('lock timeout: the holder never writes, so the waiter loads itself once the wait has run out', async (t) => {
  const clock = fakeClock()
  const memory = createMemoryStore({ now: clock.now })
  const read = items()
  const id = resourceId(read)
  const token = await memory.store.lock(read.table, id, 10 * LOCK_TTL_MS)
  const { cache, loader, warnings, sleeps } = rig({ clock, memory })
  const answer = await cache.get(read)
  const waited = sleeps.reduce((a, b) => a + b, 0)
  t.ok(waited >= LOCK_WAIT_MS, `waited ${waited} ms on the clock: at least ${LOCK_WAIT_MS}`)
  t.ok(waited - sleeps.at(-1)! < LOCK_WAIT_MS, 'and stopped at the first poll past it')
  t.same(sleeps.slice(0, 5), [10, 20, 40, 80, 100], 'polling backs off to 100 ms')
  t.equal(loader.count, 1, 'then loaded itself')
  t.equal(answer.outcome, 'miss')
  t.equal(answer.collapsed, false)
  t.equal(bodyOf(answer).n, 1)
  t.same(warnings, [{ msg: 'cache.lock.timeout', table: 'orders' }])
  t.ok(memory.locked(read.table, id), 'the holder’s lock is left alone')
  await memory.store.unlock(read.table, id, token!)
  const next = await cache.get(read)
  t.equal(next.outcome, 'hit', 'its write is the entry now')
})

t.test('an expired lock (its holder died) does not make the next reader wait', async (t) => {
  const clock = fakeClock()
  const memory = createMemoryStore({ now: clock.now })
  const read = items()
  await memory.store.lock(read.table, resourceId(read), LOCK_TTL_MS)
  clock.advance(LOCK_TTL_MS)
  const readsBefore = memory.reads
  const { cache, loader } = rig({ clock, memory })
  const answer = await cache.get(read)
  t.equal(loader.count, 1)
  t.equal(answer.collapsed, false)
  t.equal(memory.reads - readsBefore, 2, 'one read before the lock, one after it: no polling')
})

t.test('the fill lock lives long enough for a DynamoDB call that times out', async (t) => {
  let askedTtl = 0
  const wrap = (store: CacheStore): CacheStore => ({
    ...store,
    lock(table, id, ttlMs) {
      askedTtl = ttlMs
      return store.lock(table, id, ttlMs)
    },
  })
  const { cache } = rig({ wrap })
  await cache.get(items())
  t.equal(askedTtl, LOCK_TTL_MS)
  t.ok(askedTtl > LOCK_WAIT_MS, 'a waiter gives up before the lock would expire')
})

t.test('across processes: a holder whose load fails frees its waiters at once', async (t) => {
  const clock = fakeClock()
  const memory = createMemoryStore({ now: clock.now })
  const loader = scriptedLoader()
  const a = rig({ clock, memory, loader })
  const b = rig({ clock, memory, loader })
  const read = items()
  loader.hold()
  loader.failWith(new Error('DynamoDB timed out'))
  const first = a.cache.get(read)
  await until('A loads', () => loader.count === 1)
  const second = b.cache.get(read)
  await until('B polls', () => b.sleeps.length > 0)
  loader.release()
  await t.rejects(first)
  loader.succeed()
  await second
  const waited = b.sleeps.reduce((x, y) => x + y, 0)
  t.ok(waited < LOCK_WAIT_MS, `B waited ${waited} ms on the clock after A had given up (lock wait ${LOCK_WAIT_MS} ms)`)
})
