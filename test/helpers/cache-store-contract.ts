import { randomBytes } from 'node:crypto'
import type tap from 'tap'
import type { InvalidationMode } from '../../src/shared/cache/coherence.ts'
import type { EntryMeta } from '../../src/shared/cache/entry-layout.ts'
import type { CacheStore } from '../../src/shared/cache/store.ts'

/**
 * The CacheStore contract, run against every implementation (the Redis store and the in-memory one
 * the unit tests stand on), the way bentocache's driver_test_suite runs one suite per driver. If the
 * memory store passes, tests built on it say something about the Redis store.
 */
export interface StoreUnderTest {
  store: CacheStore
  /** Bumps a table's generation, as DELETE /tables/:table/cache does (mode=soft: served once more). */
  invalidate(table: string | null, mode?: InvalidationMode): Promise<void>
  /** Checks the lock carries `ttlMs`, then lets that time pass for it. */
  expireLock(table: string | null, id: string, ttlMs: number): Promise<void>
}

export const metaOf = (etag: string, createdAt = 1_700_000_000_000): Omit<EntryMeta, 'chunks' | 'version' | 'gzipSize'> => ({
  createdAt,
  ttl: 60,
  etag,
  status: 200,
  size: 123,
})

export function cacheStoreContract(t: typeof tap, name: string, make: () => Promise<StoreUnderTest>) {
  return t.test(`CacheStore contract: ${name}`, async (t) => {
    await t.test('a miss reports the generation to write under', async (t) => {
      const { store } = await make()
      const read = await store.read('orders', 'id1')
      t.type(read.generation, 'string')
      t.equal(read.entry, undefined)
    })

    await t.test('an entry reads back as written: metadata and the exact bytes', async (t) => {
      const { store } = await make()
      const { generation } = await store.read('orders', 'id1')
      const bytes = randomBytes(300)
      const written = await store.write('orders', 'id1', generation, metaOf('W/"a"'), bytes)
      t.equal(written.gzipSize, 300)
      t.type(written.version, 'string')
      const { entry } = await store.read('orders', 'id1')
      t.same(entry?.meta, written, 'the metadata write returned')
      t.same({ ...entry?.meta }, { ...metaOf('W/"a"'), gzipSize: 300, chunks: written.chunks, version: written.version })
      t.ok(entry?.gzip?.equals(bytes), 'the bytes')
    })

    await t.test('a matching ETag reads the metadata without the body', async (t) => {
      const { store } = await make()
      const { generation } = await store.read('orders', 'id1')
      await store.write('orders', 'id1', generation, metaOf('W/"a"'), randomBytes(50))
      const matched = await store.read('orders', 'id1', 'W/"a"')
      t.equal(matched.entry?.meta.etag, 'W/"a"')
      t.equal(matched.entry?.gzip, undefined, 'no body')
      t.ok((await store.read('orders', 'id1', 'W/"b"')).entry?.gzip, 'another ETag gets the body')
      t.ok((await store.read('orders', 'id1', '')).entry?.gzip, "'' is no ETag")
    })

    await t.test('a rewrite replaces the entry', async (t) => {
      const { store } = await make()
      const { generation } = await store.read('orders', 'id1')
      const first = await store.write('orders', 'id1', generation, metaOf('W/"a"'), randomBytes(50))
      const bytes = randomBytes(60)
      const second = await store.write('orders', 'id1', generation, metaOf('W/"b"', 1_700_000_001_000), bytes, first)
      t.not(second.version, first.version)
      const { entry } = await store.read('orders', 'id1')
      t.equal(entry?.meta.etag, 'W/"b"')
      t.ok(entry?.gzip?.equals(bytes))
    })

    await t.test('entries of two tables (and of the table list) with the same id are separate', async (t) => {
      const { store } = await make()
      for (const table of ['orders', 'users', null]) {
        const { generation } = await store.read(table, 'same')
        await store.write(table, 'same', generation, metaOf(`W/"${table}"`), Buffer.from(String(table)))
      }
      for (const table of ['orders', 'users', null]) {
        const { entry } = await store.read(table, 'same')
        t.equal(entry?.meta.etag, `W/"${table}"`)
        t.equal(entry?.gzip?.toString(), String(table))
      }
    })

    await t.test("a new generation hides the table's entries, and a write under the old one", async (t) => {
      const sut = await make()
      const { store } = sut
      const before = await store.read('orders', 'id1')
      await store.write('orders', 'id1', before.generation, metaOf('W/"a"'), randomBytes(10))
      const other = await store.read('users', 'id1')
      await store.write('users', 'id1', other.generation, metaOf('W/"u"'), randomBytes(10))
      await sut.invalidate('orders')
      const after = await store.read('orders', 'id1')
      t.equal(after.entry, undefined, 'the entry is gone')
      t.not(after.generation, before.generation, 'under a new generation')
      t.equal((await store.read('users', 'id1')).entry?.meta.etag, 'W/"u"', 'another table keeps its entries')
      // A load that read the old generation finishes after the invalidation: its write must not show.
      await store.write('orders', 'id1', before.generation, metaOf('W/"late"'), randomBytes(10))
      t.equal((await store.read('orders', 'id1')).entry, undefined, 'a write under the old generation stays hidden')
      await store.write('orders', 'id1', after.generation, metaOf('W/"new"'), randomBytes(10))
      t.equal((await store.read('orders', 'id1')).entry?.meta.etag, 'W/"new"', 'a write under the new one shows')
      // The table list (null) and a table named "null" are two tables.
      const list = await store.read(null, 'x')
      await store.write(null, 'x', list.generation, metaOf('W/"list"'), randomBytes(10))
      await sut.invalidate('null')
      t.equal((await store.read(null, 'x')).entry?.meta.etag, 'W/"list"', 'invalidating table "null" leaves the table list')
    })

    await t.test('dependencies: a bump hides exactly the entries that depend on the tag, of its table', async (t) => {
      const { store } = await make()
      const put = async (table: string, id: string, deps: string[]) => {
        const { generation } = await store.read(table, id, '', { deps })
        t.equal(await store.generations(table, deps), generation, 'generations() is the composite a read reports')
        await store.write(table, id, generation, metaOf(`W/"${id}"`), Buffer.from(id))
      }
      await put('orders', 'q1', ['x:g', 'x:g:S:g1'])
      await put('orders', 'q2', ['x:g', 'x:g:S:g2'])
      await put('orders', 'item', ['i:k1'])
      await put('users', 'q1', ['x:g', 'x:g:S:g1'])
      const before = await store.read('orders', 'q1', '', { deps: ['x:g', 'x:g:S:g1'] })
      await store.bump('orders', ['x:g:S:g1', 'data'], 'hard')
      const after = await store.read('orders', 'q1', '', { deps: ['x:g', 'x:g:S:g1'] })
      t.equal(after.entry, undefined, 'the entry of the bumped partition misses')
      t.not(after.generation, before.generation, 'under a new composite')
      t.equal((await store.read('orders', 'q2', '', { deps: ['x:g', 'x:g:S:g2'] })).entry?.meta.etag, 'W/"q2"', 'another partition stays')
      t.equal((await store.read('orders', 'item', '', { deps: ['i:k1'] })).entry?.meta.etag, 'W/"item"', 'an item stays')
      t.equal((await store.read('users', 'q1', '', { deps: ['x:g', 'x:g:S:g1'] })).entry?.meta.etag, 'W/"q1"', 'the same tag of another table stays')
      // A load that read the composite before the bump finishes after it: its write stays hidden.
      await store.write('orders', 'q1', before.generation, metaOf('W/"late"'), Buffer.from('late'))
      t.equal((await store.read('orders', 'q1', '', { deps: ['x:g', 'x:g:S:g1'] })).entry, undefined, 'a late write stays hidden')
      await store.bump('orders', ['x:g'], 'hard')
      t.equal((await store.read('orders', 'q2', '', { deps: ['x:g', 'x:g:S:g2'] })).entry, undefined, 'an index-wide bump hides every partition')
      await store.bump('orders', [], 'hard')
      t.equal((await store.read('orders', 'item', '', { deps: ['i:k1'] })).entry?.meta.etag, 'W/"item"', 'an empty bump changes nothing')
    })

    await t.test('the table-wide generation hides entries of every dependency', async (t) => {
      const sut = await make()
      const { store } = sut
      const { generation } = await store.read('orders', 'q', '', { deps: ['p:S:a'] })
      await store.write('orders', 'q', generation, metaOf('W/"q"'), Buffer.from('q'))
      await sut.invalidate('orders')
      t.equal((await store.read('orders', 'q', '', { deps: ['p:S:a'] })).entry, undefined)
    })

    await t.test('soft: an entry invalidated softly is served once, flagged, then misses', async (t) => {
      const sut = await make()
      const { store } = sut
      const deps = ['p:S:a']
      const write = async (id: string) => {
        const { generation } = await store.read('orders', id, '', { deps })
        await store.write('orders', id, generation, metaOf(`W/"${id}"`), Buffer.from(id))
      }
      await write('e')
      await write('f')
      await store.bump('orders', deps, 'soft')
      await store.bump('orders', deps, 'soft')
      t.equal((await store.read('orders', 'f', '', { deps })).entry, undefined, 'a read that takes no soft answer misses')
      const once = await store.read('orders', 'e', 'W/"e"', { deps, soft: true })
      t.equal(once.invalidated, true, 'flagged')
      t.equal(once.entry?.meta.etag, 'W/"e"', 'served (after two soft bumps), a matching ETag without the body')
      t.equal((await store.read('orders', 'e', '', { deps, soft: true })).entry, undefined, 'then it misses')
      await write('e')
      const fresh = await store.read('orders', 'e', '', { deps, soft: true })
      t.equal(fresh.invalidated, undefined, 'a new write is current again')
      t.ok(fresh.entry?.gzip?.equals(Buffer.from('e')))
      await store.bump('orders', deps, 'hard')
      await store.bump('orders', deps, 'soft')
      t.equal((await store.read('orders', 'e', '', { deps, soft: true })).entry, undefined, 'a hard bump since the write wins over a later soft one')
      await write('g')
      await sut.invalidate('orders', 'soft')
      const table = await store.read('orders', 'g', '', { deps, soft: true })
      t.equal(table.invalidated, true, 'a soft table-wide invalidation serves once too')
      t.ok(table.entry?.gzip?.equals(Buffer.from('g')), 'with its body')
    })

    await t.test('the fill lock: one holder; only its token releases it; per table and id', async (t) => {
      const { store } = await make()
      const token = await store.lock('orders', 'id1', 60_000)
      t.type(token, 'string')
      t.equal(await store.lock('orders', 'id1', 60_000), null, 'taken')
      t.type(await store.lock('orders', 'id2', 60_000), 'string', 'another id is free')
      t.type(await store.lock('users', 'id1', 60_000), 'string', 'another table is free')
      await store.unlock('orders', 'id1', 'not-the-token')
      t.equal(await store.lock('orders', 'id1', 60_000), null, 'a wrong token releases nothing')
      await store.unlock('orders', 'id1', token!)
      const next = await store.lock('orders', 'id1', 60_000)
      t.type(next, 'string', 'free after its holder unlocks')
      t.not(next, token, 'with a new token')
    })

    await t.test('the fill lock expires after its ttl, and the late holder cannot release its successor', async (t) => {
      const sut = await make()
      const { store } = sut
      const first = await store.lock('orders', 'id1', 7000)
      await sut.expireLock('orders', 'id1', 7000)
      const second = await store.lock('orders', 'id1', 7000)
      t.type(second, 'string', 'an expired lock can be taken')
      await store.unlock('orders', 'id1', first!)
      t.equal(await store.lock('orders', 'id1', 7000), null, 'the first holder’s unlock left the second’s lock alone')
    })
  })
}
