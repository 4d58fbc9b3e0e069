import t from 'tap'
import { createNearCache, type NearEntry } from '../../../src/shared/cache/near-cache.ts'
import { resourceId } from '../../../src/shared/cache/resources.ts'
import type { CacheStore } from '../../../src/shared/cache/store.ts'
import { bodyOf, fakeClock, items, rig, until } from '../../helpers/read-cache-rig.ts'

// The near cache forgets: after ttlMs, on dropTable / dropAll (by epoch, O(1)), and when over budget.
// It never keeps a value read before an invalidation that came since (the stamp taken before reading).

const OVERHEAD = 256 // near-cache.ts: bytes counted per entry on top of its bodies
const entry = (etag: string, bytes = 10): NearEntry => ({
  status: 200,
  etag,
  createdAt: 1,
  ttl: 60,
  gzip: Buffer.alloc(bytes, 1),
})

function near(ttlMs = 1000, maxBytes = 1 << 20) {
  const clock = fakeClock()
  return { cache: createNearCache({ ttlMs, maxBytes, now: clock.now }), clock }
}

t.test('entries of two tables with the same id are separate; the table list is its own table', async (t) => {
  const { cache } = near()
  cache.set('a', 'id', entry('A'), cache.stamp('a'))
  cache.set('b', 'id', entry('B'), cache.stamp('b'))
  cache.set(null, 'id', entry('list'), cache.stamp(null))
  t.equal(cache.get('a', 'id')?.etag, 'A')
  t.equal(cache.get('b', 'id')?.etag, 'B')
  t.equal(cache.get(null, 'id')?.etag, 'list')
  cache.dropTable('a')
  t.equal(cache.get('a', 'id'), undefined, 'dropTable forgets the table')
  t.equal(cache.get('b', 'id')?.etag, 'B', 'and only that table')
  t.equal(cache.get(null, 'id')?.etag, 'list')
  cache.dropTable(null)
  t.equal(cache.get(null, 'id'), undefined, 'dropTable(null) forgets the table list')
  t.equal(cache.get('b', 'id')?.etag, 'B')
})

t.test('a value read before dropTable is not kept; one read after it is', async (t) => {
  const { cache } = near()
  const before = cache.stamp('a')
  const other = cache.stamp('b')
  cache.dropTable('a')
  cache.set('a', 'id', entry('old'), before)
  t.equal(cache.get('a', 'id'), undefined, 'the stamp predates the drop')
  cache.set('b', 'id', entry('B'), other)
  t.equal(cache.get('b', 'id')?.etag, 'B', 'another table’s stamp is still good')
  cache.set('a', 'id', entry('new'), cache.stamp('a'))
  t.equal(cache.get('a', 'id')?.etag, 'new')
})

t.test('dropAll forgets every table and refuses values stamped before it', async (t) => {
  const { cache } = near()
  const stampA = cache.stamp('a')
  cache.set('a', 'id', entry('A'), stampA)
  cache.set('b', 'id', entry('B'), cache.stamp('b'))
  cache.dropAll()
  t.equal(cache.get('a', 'id'), undefined)
  t.equal(cache.get('b', 'id'), undefined)
  cache.set('a', 'id', entry('late'), stampA)
  t.equal(cache.get('a', 'id'), undefined, 'a read from before dropAll is not kept')
  cache.set('a', 'id', entry('A2'), cache.stamp('a'))
  t.equal(cache.get('a', 'id')?.etag, 'A2')
  cache.dropTable('a')
  t.equal(cache.get('a', 'id'), undefined, 'table epochs still work after dropAll')
})

t.test('an entry lives ttlMs on the clock', async (t) => {
  const { cache, clock } = near(1000)
  cache.set('a', 'id', entry('A'), cache.stamp('a'))
  clock.advance(999)
  t.equal(cache.get('a', 'id')?.etag, 'A')
  clock.advance(2)
  t.equal(cache.get('a', 'id'), undefined)
})

t.test('addPlain keeps the entry’s age, and ignores an entry replaced or dropped since', async (t) => {
  const { cache, clock } = near(1000)
  cache.set('a', 'id', entry('A'), cache.stamp('a'))
  clock.advance(900)
  const held = cache.get('a', 'id')!
  cache.addPlain('a', 'id', held, Buffer.from('plain'))
  t.equal(cache.get('a', 'id')?.plain?.toString(), 'plain')
  clock.advance(101)
  t.equal(cache.get('a', 'id'), undefined, 'expires 1000 ms after the Redis read, not after addPlain')

  cache.set('a', 'id', entry('B'), cache.stamp('a'))
  const old = cache.get('a', 'id')!
  cache.set('a', 'id', entry('C'), cache.stamp('a'))
  cache.addPlain('a', 'id', old, Buffer.from('plain of B'))
  t.equal(cache.get('a', 'id')?.plain, undefined, 'not added to the entry that replaced it')
  t.equal(cache.get('a', 'id')?.etag, 'C')

  const current = cache.get('a', 'id')!
  cache.dropTable('a')
  cache.addPlain('a', 'id', current, Buffer.from('plain of C'))
  t.equal(cache.get('a', 'id'), undefined, 'a dropped entry stays dropped')
})

t.test('the byte budget: the least recently used goes first; an entry over the budget is not kept', async (t) => {
  const { cache } = near(1000, 3 * (OVERHEAD + 100))
  for (const id of ['1', '2', '3']) cache.set('a', id, entry(id, 100), cache.stamp('a'))
  t.ok(cache.get('a', '1'), 'touch 1: 2 is now the oldest')
  cache.set('a', '4', entry('4', 100), cache.stamp('a'))
  t.equal(cache.get('a', '2'), undefined, 'evicted')
  t.ok(cache.get('a', '1') && cache.get('a', '3') && cache.get('a', '4'))
  cache.set('a', 'big', entry('big', 3 * (OVERHEAD + 100)), cache.stamp('a'))
  t.equal(cache.get('a', 'big'), undefined, 'larger than the whole budget')
  t.ok(cache.get('a', '1') && cache.get('a', '3') && cache.get('a', '4'), 'and it evicted nothing')
  // The inflated body counts too.
  const held = cache.get('a', '3')!
  cache.addPlain('a', '3', held, Buffer.alloc(200))
  t.equal(cache.get('a', '3')?.plain?.length, 200)
  t.equal([cache.get('a', '1'), cache.get('a', '4')].filter(Boolean).length, 1, 'a plain body makes room like any other')
})

t.test('an inflated body that would not fit the budget is not added, and the entry stays', async (t) => {
  const { cache } = near(1000, OVERHEAD + 1000)
  cache.set('a', 'id', entry('A', 500), cache.stamp('a'))
  cache.addPlain('a', 'id', cache.get('a', 'id')!, Buffer.alloc(600))
  t.equal(cache.get('a', 'id')?.etag, 'A', 'gzip clients keep their hit')
  t.equal(cache.get('a', 'id')?.plain, undefined)
})

// Through the read cache: what it keeps, and when it may not.

t.test('a hot hit is answered from memory; not live, the near cache is not consulted', async (t) => {
  let live = true
  const { cache, memory } = rig({ near: { live: () => live } })
  const read = items()
  await cache.get(read)
  const reads = memory.reads
  t.equal((await cache.get(read)).outcome, 'hit')
  t.equal(memory.reads, reads, 'no store read')
  live = false
  t.equal((await cache.get(read)).outcome, 'hit')
  t.equal(memory.reads, reads + 1, 'the store is read while the invalidation feed is down')
})

t.test('a Redis read overlapping dropTable is not kept', async (t) => {
  let dropDuringRead = false
  const clock = fakeClock()
  const nearCache = createNearCache({ ttlMs: 1000, maxBytes: 1 << 20, now: clock.now })
  const wrap = (store: CacheStore): CacheStore => ({
    ...store,
    async read(table, id, etag) {
      const result = await store.read(table, id, etag)
      if (dropDuringRead) nearCache.dropTable(table)
      return result
    },
  })
  const { cache } = rig({ clock, near: nearCache, wrap })
  const read = items()
  await cache.get(read)
  t.ok(nearCache.get(read.table, resourceId(read)), 'a plain read is kept')
  nearCache.dropAll()
  dropDuringRead = true
  t.equal((await cache.get(read)).outcome, 'hit', 'answered from Redis')
  t.equal(nearCache.get(read.table, resourceId(read)), undefined, 'but not kept')
})

t.test('a load that started before dropTable is not kept; a read that starts after it loads anew and keeps its own value', async (t) => {
  const { cache, loader, memory, near: nearCache } = rig({ near: {} })
  const read = items()
  const id = resourceId(read)
  loader.hold()
  const first = cache.get(read)
  await until('the load starts', () => loader.count === 1)
  // The table changes and is invalidated while the load is in flight (DELETE /tables/:t/cache).
  memory.invalidate(read.table)
  nearCache!.dropTable(read.table)
  const second = cache.get(read)
  await until('the second read reaches the fill', () => memory.reads >= 3)
  loader.release()
  const [a, b] = await Promise.all([first, second])
  t.equal(bodyOf(a).n, 1)
  t.equal(b.collapsed, false, 'the second read did not join the load that began before the invalidation')
  t.not(b.etag, a.etag, 'it answers a value loaded after the invalidation')
  t.equal(nearCache!.get(read.table, id)?.etag, b.etag, 'only the post-invalidation value is in the near cache')
  const third = await cache.get(read)
  t.not(third.etag, a.etag, 'a read after the invalidation does not get the pre-invalidation value from memory')
})

t.test('a copy without its body answers only a matching revalidation; a full read replaces it', async (t) => {
  const { cache, memory, near: nearCache } = rig({ near: {} })
  const read = items()
  const id = resourceId(read)
  const first = await cache.get(read)
  nearCache!.dropAll()
  const revalidation = await cache.get(read, { ifNoneMatch: first.etag })
  t.equal(revalidation.gzip, undefined)
  t.equal(nearCache!.get(read.table, id)?.gzip, undefined, 'kept without a body')
  const reads = memory.reads
  t.equal((await cache.get(read, { ifNoneMatch: first.etag })).outcome, 'hit')
  t.equal(memory.reads, reads, 'the matching revalidation is answered from memory')
  const full = await cache.get(read)
  t.ok(full.gzip, 'a read without the ETag gets the body')
  t.equal(memory.reads, reads + 1, 'from Redis')
  t.ok(nearCache!.get(read.table, id)?.gzip, 'and the copy with the body is kept')
  await cache.get(read, { ifNoneMatch: first.etag })
  t.ok(nearCache!.get(read.table, id)?.gzip, 'a later revalidation never replaces it with a bodiless copy')
})

t.test('a plain client inflates a hot entry once', async (t) => {
  const { cache, near: nearCache } = rig({ near: {} })
  const read = items()
  await cache.get(read)
  const one = await cache.get(read, { plain: true })
  const two = await cache.get(read, { plain: true })
  t.same(bodyOf(one), { table: 'orders', n: 1 })
  t.equal(two.body, one.body, 'the same inflated buffer, kept in memory')
  t.equal(nearCache!.get(read.table, resourceId(read))?.plain, one.body)
})
