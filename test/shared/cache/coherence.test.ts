import t from 'tap'
import { applyChanges, type ItemChange, writtenChange } from '../../../src/shared/cache/coherence.ts'
import { changedTags, DATA, DEFINITION, dependenciesOf, indexPartitionTag, indexTag, itemTag, partitionTag } from '../../../src/shared/cache/dependencies.ts'
import { invalidationMessage, parseInvalidation } from '../../../src/shared/cache/invalidation-feed.ts'
import { createNearCache, type NearEntry } from '../../../src/shared/cache/near-cache.ts'
import type { CachedResource } from '../../../src/shared/cache/resources.ts'
import type { TableDescription } from '../../../src/shared/dynamo/table-description.ts'
import { createMemoryStore } from '../../helpers/memory-store.ts'
import { bodyOf, fakeClock, rig } from '../../helpers/read-cache-rig.ts'

// Invalidation scoped to what a write can change (docs/coherence.md): an entry depends on tags, a
// write bumps exactly the tags it can change, and a read and a write name a partition the same way.

const description = (name: string, pkType: 'S' | 'N' | 'B' = 'S'): TableDescription => ({
  name,
  status: 'ACTIVE',
  key: { partition: { name: 'pk', type: pkType }, sort: { name: 'sk', type: 'N' } },
  attributeDefinitions: [],
  indexes: [
    { name: 'byG', kind: 'GSI', key: { partition: { name: 'g', type: 'S' }, sort: { name: 'sk', type: 'N' } }, projection: { type: 'ALL' } },
    { name: 'byL', kind: 'LSI', key: { partition: { name: 'pk', type: pkType }, sort: { name: 'l', type: 'S' } }, projection: { type: 'ALL' } },
  ],
  billingMode: 'PAY_PER_REQUEST',
  stream: { enabled: false },
  itemCount: 0,
  sizeBytes: 0,
})

const item = (table: string, pk: string, sk: string): CachedResource => ({ table, kind: 'item', params: { pk, sk } })
const query = (table: string, pk: string, index?: string): CachedResource => ({
  table,
  kind: 'query',
  params: { pk, limit: '10', ...(index ? { index } : {}) },
})
const scan = (table: string): CachedResource => ({ table, kind: 'items', params: { limit: '10' } })

t.test('a read and a write name a key the same way, however the value was written', async (t) => {
  const numeric = description('orders', 'N')
  const change: ItemChange = { key: { pk: { N: '10' }, sk: { N: '1' } } }
  const written = changedTags(numeric, [change])!
  for (const [pk, sk] of [
    ['10', '1'],
    ['1e1', '1.0'],
    ['10.000', '+1'],
    ['0.1E2', '100e-2'],
  ]) {
    const [tag] = dependenciesOf(item('orders', pk!, sk!), numeric)
    t.ok(written.includes(tag!), `item pk=${pk} sk=${sk} is the written item`)
    t.ok(written.includes(dependenciesOf(query('orders', pk!), numeric)[0]!), `query pk=${pk} is the written partition`)
  }
  t.notOk(written.includes(dependenciesOf(item('orders', '10', '2'), numeric)[0]!), 'another sort key is another item')
  t.notOk(written.includes(dependenciesOf(query('orders', '100'), numeric)[0]!), 'another number another partition')

  const binary = description('blobs', 'B')
  const bytes = Uint8Array.from([0xfb, 0xff, 0x01])
  const fromWrite = changedTags(binary, [{ key: { pk: { B: bytes }, sk: { N: '1' } } }])!
  t.ok(fromWrite.includes(dependenciesOf(query('blobs', Buffer.from(bytes).toString('base64url')), binary)[0]!), 'B: base64url in the URL is the bytes written')

  const strings = description('users')
  const long = 'x'.repeat(500)
  const odd = 'a}b{c d'
  for (const pk of [long, odd, 'S:looks-typed']) {
    const tags = changedTags(strings, [{ key: { pk: { S: pk }, sk: { N: '1' } } }])!
    t.ok(tags.includes(dependenciesOf(query('users', pk), strings)[0]!), `S: ${pk.slice(0, 12)}`)
    t.ok(
      tags.every((tag) => tag.length < 100 && !/[{}\s]/.test(tag)),
      'long or odd values are hashed: tags stay short and plain',
    )
  }
  t.not(partitionTag('S:1'), partitionTag('N:1'), 'a string is not the number it spells')
})

t.test('what each kind of entry depends on', async (t) => {
  const d = description('orders')
  t.same(dependenciesOf(scan('orders'), d), [DATA], 'a scan page: the table data')
  t.same(dependenciesOf({ table: 'orders', kind: 'details', params: {} }, d), [DEFINITION], 'details: the definition')
  t.same(dependenciesOf({ table: null, kind: 'tables', params: {} }, undefined), [DEFINITION], 'the table list: the definition')
  t.same(dependenciesOf(query('orders', 'a'), d), [partitionTag('S:a')], 'a base query: its partition')
  t.same(dependenciesOf(query('orders', 'a', 'byL'), d), [partitionTag('S:a')], 'an LSI query: the same partition')
  t.same(dependenciesOf(query('orders', 'g1', 'byG'), d), [indexTag('byG'), indexPartitionTag('byG', 'S:g1')], 'a GSI query: the index and its partition')
  t.same(dependenciesOf(item('orders', 'a', '1'), d), [itemTag('S:a', 'N:1e0')], 'an item: its key')
  t.same(dependenciesOf(item('orders', 'a', 'not-a-number'), d), [DATA], 'a key that does not fit the schema: the data, never too little')
  t.same(dependenciesOf(query('orders', 'a', 'nope'), d), [DATA], 'an unknown index: the data')
  t.same(dependenciesOf(item('orders', 'a', '1'), undefined), [DATA], 'no description: the data')
})

t.test('what a write changes', async (t) => {
  const d = description('orders')
  const key = { pk: { S: 'a' }, sk: { N: '1' } }
  const base = [DATA, itemTag('S:a', 'N:1e0'), partitionTag('S:a')]
  t.same(
    new Set(changedTags(d, [{ key, oldImage: { ...key, g: { S: 'g1' } }, newImage: { ...key, g: { S: 'g2' } } }])),
    new Set([...base, indexPartitionTag('byG', 'S:g1'), indexPartitionTag('byG', 'S:g2')]),
    'both images known: the item, its partition, the old and new index partitions, the scan pages',
  )
  t.same(
    new Set(changedTags(d, [{ key, oldImage: null, newImage: { ...key, g: { S: 'g1' } } }])),
    new Set([...base, indexPartitionTag('byG', 'S:g1')]),
    'a creation: the new partition only',
  )
  t.same(new Set(changedTags(d, [{ key, oldImage: { ...key }, newImage: null }])), new Set(base), 'an item outside the sparse index touches no index partition')
  t.same(
    new Set(changedTags(d, [{ key, newImage: { ...key, g: { S: 'g1' } } }])),
    new Set([...base, indexTag('byG'), indexPartitionTag('byG', 'S:g1')]),
    'old image unknown: the whole index',
  )
  t.same(
    new Set(changedTags(d, [writtenChange({ kind: 'delete', attributes: key }, ['pk', 'sk'])])),
    new Set([...base, indexTag('byG')]),
    'a blind delete: the whole index',
  )
  t.same(changedTags(d, [{ key: { sk: { N: '1' } } }]), null, 'a key without its partition: the whole table')
  t.same(changedTags(d, [{ key: { pk: { S: 'a' } } }]), null, 'a key without its sort key: the whole table')
})

t.test('the feed message carries the bumped tags; anything unreadable drops everything', async (t) => {
  t.same(parseInvalidation(invalidationMessage('orders', ['p:S:a', 'data'])), { table: 'orders', tags: ['p:S:a', 'data'] })
  t.same(parseInvalidation(invalidationMessage(null, ['def'])), { table: null, tags: ['def'] })
  t.same(parseInvalidation(invalidationMessage('orders')), { table: 'orders' })
  t.same(parseInvalidation(invalidationMessage(null)), { table: null })
  t.same(parseInvalidation('*'), { all: true })
  t.equal(parseInvalidation('{not json'), undefined)
  t.equal(parseInvalidation('{"t":"a","d":[1]}'), undefined)
})

t.test('the near cache drops the entries of a bumped tag, of that table only', async (t) => {
  const clock = fakeClock()
  const near = createNearCache({ ttlMs: 60_000, maxBytes: 1 << 20, now: clock.now })
  const entry = (etag: string, deps: string[]): NearEntry => ({ status: 200, etag, createdAt: clock.now(), ttl: 60, gzip: Buffer.from(etag), deps })
  near.set('a', 'g1', entry('g1', ['x:byG', 'x:byG:S:g1']), near.stamp('a'))
  near.set('a', 'g2', entry('g2', ['x:byG', 'x:byG:S:g2']), near.stamp('a'))
  near.set('b', 'g1', entry('b-g1', ['x:byG', 'x:byG:S:g1']), near.stamp('b'))
  const before = near.stamp('a')
  near.dropTags('a', ['x:byG:S:g1'])
  t.equal(near.get('a', 'g1'), undefined, 'the bumped partition')
  t.equal(near.get('a', 'g2')?.etag, 'g2', 'another partition stays')
  t.equal(near.get('b', 'g1')?.etag, 'b-g1', 'the same tag of another table stays')
  near.set('a', 'g1', entry('late', ['x:byG', 'x:byG:S:g1']), before)
  t.equal(near.get('a', 'g1'), undefined, 'a value read before the drop is not kept')
  near.set('a', 'g1', entry('new', ['x:byG', 'x:byG:S:g1']), near.stamp('a'))
  t.equal(near.get('a', 'g1')?.etag, 'new', 'one read after it is')
  near.dropTags('a', ['x:byG'])
  t.equal(near.get('a', 'g2'), undefined, 'an index-wide bump drops every partition of it')
})

t.test('the near cache forgets tags beyond its budget conservatively: never keeps too much', async (t) => {
  const clock = fakeClock()
  const near = createNearCache({ ttlMs: 60_000, maxBytes: 1 << 20, now: clock.now, maxTags: 2 })
  const entry = (deps: string[]): NearEntry => ({ status: 200, etag: 'e', createdAt: clock.now(), ttl: 60, gzip: Buffer.from('e'), deps })
  near.set('a', 'q', entry(['p:S:1']), near.stamp('a'))
  near.dropTags('a', ['p:S:1'])
  near.dropTags('a', ['p:S:2', 'p:S:3'])
  t.equal(near.get('a', 'q'), undefined, 'its tag was forgotten, and it still counts as dropped')
  near.set('a', 'q', entry(['p:S:1']), near.stamp('a'))
  t.equal(near.get('a', 'q')?.etag, 'e', 'a value read after is kept')
})

/** One read cache whose entries depend on their tags, over a memory store, as cache-service.ts wires it. */
function coherentRig(tables: Record<string, TableDescription>) {
  const memory = createMemoryStore()
  const r = rig({ memory, dependencies: (resource) => dependenciesOf(resource, resource.table ? tables[resource.table] : undefined) })
  const apply = (table: string, changes: ItemChange[], mode: 'hard' | 'soft' = 'hard') =>
    applyChanges({ store: memory.store, invalidateTable: async (t, m) => memory.invalidate(t, m) }, table, tables[table], changes, mode)
  return { ...r, apply }
}

t.test('a write of partition g1 leaves every other entry a hit, of its table and of a table of the same shape', async (t) => {
  const { cache, apply, memory } = coherentRig({ a: description('a'), b: description('b') })
  const reads = [
    query('a', 'g1', 'byG'),
    query('a', 'g2', 'byG'),
    query('a', 'p1'),
    query('a', 'p2'),
    item('a', 'p1', '1'),
    item('a', 'p2', '1'),
    scan('a'),
    { table: 'a', kind: 'details', params: {} } as CachedResource,
  ]
  const all = [...reads, ...reads.map((r) => ({ ...r, table: 'b' }))]
  for (const r of all) t.equal((await cache.get(r)).outcome, 'miss')
  // p1/1 moves from g1 to g2 (both images known).
  const key = { pk: { S: 'p1' }, sk: { N: '1' } }
  await apply('a', [{ key, oldImage: { ...key, g: { S: 'g1' } }, newImage: { ...key, g: { S: 'g2' } } }])
  t.same(
    memory.bumps.at(-1)?.announce && parseInvalidation(memory.bumps.at(-1)!.announce!),
    { table: 'a', tags: changedTags(description('a'), [{ key, oldImage: { ...key, g: { S: 'g1' } }, newImage: { ...key, g: { S: 'g2' } } }]) },
    'announced with its tags',
  )
  const outcomes = Object.fromEntries(
    await Promise.all(all.map(async (r) => [`${r.table}:${r.kind}:${r.params.pk ?? ''}:${r.params.index ?? ''}`, (await cache.get(r)).outcome])),
  )
  t.same(outcomes, {
    'a:query:g1:byG': 'miss',
    'a:query:g2:byG': 'miss',
    'a:query:p1:': 'miss',
    'a:query:p2:': 'hit',
    'a:item:p1:': 'miss',
    'a:item:p2:': 'hit',
    'a:items::': 'miss',
    'a:details::': 'hit',
    'b:query:g1:byG': 'hit',
    'b:query:g2:byG': 'hit',
    'b:query:p1:': 'hit',
    'b:query:p2:': 'hit',
    'b:item:p1:': 'hit',
    'b:item:p2:': 'hit',
    'b:items::': 'hit',
    'b:details::': 'hit',
  })
})

t.test('soft: an entry invalidated softly is served once as STALE with one refresh queued, then misses', async (t) => {
  const { cache, apply, refreshes, loader } = coherentRig({ a: description('a') })
  const r = query('a', 'p1')
  await cache.get(r)
  await apply('a', [{ key: { pk: { S: 'p1' }, sk: { N: '1' } }, oldImage: null, newImage: { pk: { S: 'p1' }, sk: { N: '1' } } }], 'soft')
  const once = await cache.get(r)
  t.equal(once.outcome, 'stale')
  t.equal(once.invalidated, true, 'flagged for Cache-Status')
  t.equal(once.ttl, 0, 'with no freshness left for the client')
  t.same(bodyOf(once), { table: 'a', n: 1 }, 'the old value')
  t.equal(refreshes.length, 1, 'one refresh queued')
  t.equal(loader.count, 1, 'no DynamoDB read on the request path')
  const next = await cache.get(r)
  t.equal(next.outcome, 'miss', 'then a miss (the refresh has not run)')
  t.same(bodyOf(next), { table: 'a', n: 2 })
  t.equal(refreshes.length, 1, 'no second refresh')
  t.equal((await cache.get(r)).outcome, 'hit')
})

t.test('soft: a refresh replaces the softly invalidated entry, and the entry after is a hit', async (t) => {
  const { cache, apply, refreshes } = coherentRig({ a: description('a') })
  const r = item('a', 'p1', '1')
  await cache.get(r)
  await apply('a', [{ key: { pk: { S: 'p1' }, sk: { N: '1' } } }], 'soft')
  t.equal((await cache.get(r)).outcome, 'stale')
  t.equal(await cache.refresh(refreshes[0]!.resource), 'refreshed')
  const after = await cache.get(r)
  t.equal(after.outcome, 'hit')
  t.same(bodyOf(after), { table: 'a', n: 2 })
})

t.test('write-through: a stored value is the entry at once, under the generations after the change', async (t) => {
  const { cache, apply } = coherentRig({ a: description('a') })
  const r = item('a', 'p1', '1')
  await cache.get(r)
  await apply('a', [{ key: { pk: { S: 'p1' }, sk: { N: '1' } } }])
  await cache.store(r, { status: 200, body: Buffer.from('{"written":true}') })
  const after = await cache.get(r)
  t.equal(after.outcome, 'hit')
  t.same(bodyOf(after), { written: true })
})

t.test('write-through of two racing writers: the image of the write bumped first never answers, whatever order the stores land in', async (t) => {
  for (const order of ['first store lands first', 'first store lands last'] as const) {
    const { cache, apply } = coherentRig({ a: description('a') })
    const r = item('a', 'p1', '1')
    const key = { pk: { S: 'p1' }, sk: { N: '1' } }
    await cache.get(r)
    // Two processes write the item; DynamoDB applies v1 then v2, and their bumps come in that order.
    const afterV1 = await apply('a', [{ key, newImage: { ...key, v: { N: '1' } } }])
    const afterV2 = await apply('a', [{ key, newImage: { ...key, v: { N: '2' } } }])
    t.ok(afterV1 && afterV2, 'each bump answers the values it left')
    const v1 = () => cache.store(r, { status: 200, body: Buffer.from('{"v":1}') }, afterV1)
    const v2 = () => cache.store(r, { status: 200, body: Buffer.from('{"v":2}') }, afterV2)
    if (order === 'first store lands first') {
      await v1()
      await v2()
    } else {
      await v2()
      await v1()
    }
    const read = await cache.get(r)
    t.notSame(bodyOf(read), { v: 1 }, `${order}: the older image is not served`)
    if (order === 'first store lands first') t.same(bodyOf(read), { v: 2 }, `${order}: the newer image is`)
  }
})

t.test('generations read before a load: a write that lands between the read and the store hides what was loaded', async (t) => {
  const { cache, apply } = coherentRig({ a: description('a') })
  const r = item('a', 'p1', '1')
  const key = { pk: { S: 'p1' }, sk: { N: '1' } }
  const before = await cache.generations(r)
  await apply('a', [{ key, newImage: { ...key, v: { N: '2' } } }])
  await cache.store(r, { status: 200, body: Buffer.from('{"v":1}') }, before)
  t.equal((await cache.get(r)).outcome, 'miss', 'the load from before the write is not served')
  const quiet = await cache.generations(r)
  await cache.store(r, { status: 200, body: Buffer.from('{"v":2}') }, quiet)
  const hit = await cache.get(r)
  t.equal(hit.outcome, 'hit', 'with no write in between the load is the entry')
  t.same(bodyOf(hit), { v: 2 })
})

t.test('without the table description, or with a key that names no partition, the whole table is invalidated', async (t) => {
  const { cache, apply, memory } = coherentRig({ a: description('a') })
  const reads = [query('a', 'p1'), item('a', 'p2', '1'), scan('a')]
  for (const r of reads) await cache.get(r)
  await apply('a', [{ key: { sk: { N: '1' } } }])
  t.same(memory.bumps, [], 'no dependency bumped')
  for (const r of reads) t.equal((await cache.get(r)).outcome, 'miss', `${r.kind} misses`)
  const blind = coherentRig({})
  await blind.cache.get(query('a', 'p1'))
  await blind.apply('a', [{ key: { pk: { S: 'x' }, sk: { N: '1' } } }])
  t.equal((await blind.cache.get(query('a', 'p1'))).outcome, 'miss', 'no description: everything of the table misses')
})

t.test('soft: an entry past its ttl is not served, even once', async (t) => {
  const { cache, apply, refreshes, clock } = coherentRig({ a: description('a') })
  const r = item('a', 'p1', '1')
  await cache.get(r)
  clock.advance(61_000) // TABLE_ITEMS_TTL is 60 s in the rig
  await apply('a', [{ key: { pk: { S: 'p1' }, sk: { N: '1' } } }], 'soft')
  const res = await cache.get(r)
  t.equal(res.outcome, 'miss')
  t.same(bodyOf(res), { table: 'a', n: 2 })
  t.equal(refreshes.length, 0, 'no refresh queued')
})
