import { createHash } from 'node:crypto'
import t from 'tap'
import { type CachedResource, resourceId, resourceIdentity } from '../../../src/shared/cache/resources.ts'

const sha1Id = (r: CachedResource) => createHash('sha1').update(resourceIdentity(r)).digest('base64url').slice(0, 22)

t.test('the id is the sha1 of the canonical identity, remembered or not (Redis key names stay the same)', async (t) => {
  const reads: CachedResource[] = [
    { table: 'orders', kind: 'items', params: { limit: '100' } },
    { table: null, kind: 'tables', params: {} },
    { table: '', kind: 'tables', params: {} },
    { table: 'orders', kind: 'query', params: { pk: 'é\u0000"', limit: '5', filter: 'a = b' } },
  ]
  for (const read of reads) {
    const first = resourceId(read)
    t.equal(first, sha1Id(read), `${read.kind} of ${read.table}: computed`)
    t.equal(resourceId({ ...read, params: { ...read.params } }), first, 'remembered: the same id')
    t.match(first, /^[A-Za-z0-9_-]{22}$/, 'bounded length, safe in a key name')
  }
  t.equal(resourceIdentity({ table: 'x', kind: 'item', params: { sk: '1', pk: 'a' } }), '["x","item",[["pk","a"],["sk","1"]]]')
})

t.test('no value forges another read, whatever lengths or separators it holds', async (t) => {
  const pairs: [CachedResource, CachedResource][] = [
    [
      { table: 'x', kind: 'item', params: { pk: '1:a' } },
      { table: 'x', kind: 'item', params: { pk: '' } },
    ],
    [
      { table: 'x', kind: 'item', params: { pk: 'a|2:sk1:b' } },
      { table: 'x', kind: 'item', params: { pk: 'a', sk: 'b' } },
    ],
    [
      { table: '1:xitem', kind: 'item', params: {} },
      { table: '1', kind: 'item', params: {} },
    ],
    [
      { table: null, kind: 'tables', params: {} },
      { table: '-', kind: 'tables', params: {} },
    ],
    [
      { table: 'ab', kind: 'items', params: {} },
      { table: 'a', kind: 'items', params: { b: '' } },
    ],
    [
      { table: 'x', kind: 'query', params: { pk: 'a', limit: '5' } },
      { table: 'x', kind: 'query', params: { pk: 'a5', limit: '' } },
    ],
  ]
  for (const [a, b] of pairs) {
    // Both orders: whichever is remembered first, the other still gets its own id.
    t.not(resourceId(a), resourceId(b), `${JSON.stringify(a.params)} vs ${JSON.stringify(b.params)}`)
    t.equal(resourceId(a), sha1Id(a))
    t.equal(resourceId(b), sha1Id(b))
  }
})
