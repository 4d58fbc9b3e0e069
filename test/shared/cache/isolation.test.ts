import { gunzipSync } from 'node:zlib'
import t from 'tap'
import { createNearCache } from '../../../src/shared/cache/near-cache.ts'
import { createReadCache, type LoadedValue } from '../../../src/shared/cache/read-cache.ts'
import { type CachedResource, resourceId } from '../../../src/shared/cache/resources.ts'
import { loadConfig } from '../../../src/shared/config.ts'
import { createMemoryStore } from '../../helpers/memory-store.ts'

const config = loadConfig({ REDIS_URL: 'redis://127.0.0.1:1', CURSOR_SECRET: 'unit-test-cursor-secret-0001' }, 'worker')
const bodyOf = (r: { body?: Buffer; gzip?: Buffer }) => (r.body ?? gunzipSync(r.gzip!)).toString()

t.test('resourceId: the table, the kind and every parameter are part of the identity', async (t) => {
  const base: CachedResource = { table: 'orders-a', kind: 'items', params: { limit: '7' } }
  t.not(resourceId(base), resourceId({ ...base, table: 'orders-b' }), 'another table')
  t.not(resourceId(base), resourceId({ ...base, table: null }), 'no table')
  t.not(resourceId(base), resourceId({ ...base, kind: 'query' }), 'another kind')
  t.not(resourceId(base), resourceId({ ...base, params: { limit: '7', index: 'byStatus' } }), 'an index')
  t.not(resourceId(base), resourceId({ ...base, params: { limit: '8' } }), 'another limit')
  t.equal(resourceId(base), resourceId({ table: 'orders-a', kind: 'items', params: { limit: '7' } }), 'equal reads share an id')
  t.equal(
    resourceId({ table: 'x1y', kind: 'query', params: { pk: 'a', limit: '5' } }),
    resourceId({ table: 'x1y', kind: 'query', params: { limit: '5', pk: 'a' } }),
    'parameter order does not matter',
  )
  // A value holding the old separators must not forge another parameter set.
  t.not(
    resourceId({ table: 'x1y', kind: 'item', params: { pk: 'a&sk=b' } }),
    resourceId({ table: 'x1y', kind: 'item', params: { pk: 'a', sk: 'b' } }),
    'a value cannot forge a separator',
  )
  t.not(resourceId({ table: 'x1y', kind: 'item', params: { pk: 'a\nb' } }), resourceId({ table: 'x1y', kind: 'item', params: { pk: 'a', b: '' } }))
})

/** A loader whose answers name their table, and which holds every load open until released. */
function slowLoader() {
  const loads: string[] = []
  let release!: () => void
  const gate = new Promise<void>((resolve) => {
    release = resolve
  })
  const load = async (resource: CachedResource): Promise<LoadedValue> => {
    loads.push(String(resource.table))
    await gate
    return { status: 200, body: Buffer.from(JSON.stringify({ table: resource.table, kind: resource.kind, params: resource.params })) }
  }
  return { load, loads, release }
}

t.test('concurrent misses of two tables with the same parameters never share a load', async (t) => {
  const memory = createMemoryStore()
  const loader = slowLoader()
  const near = createNearCache({ ttlMs: 60_000, maxBytes: 1 << 20 })
  const cache = createReadCache({
    config,
    store: memory.store,
    load: loader.load,
    scheduleRefresh() {},
    redisReady: () => true,
    near: { cache: near, live: () => true },
  })
  const tables = ['shape-a', 'shape-b', 'shape-c']
  const kinds: CachedResource[] = [
    { table: '', kind: 'items', params: { limit: '7' } },
    { table: '', kind: 'item', params: { pk: 'p0', sk: '4' } },
    { table: '', kind: 'query', params: { pk: 'p1', limit: '5' } },
    { table: '', kind: 'details', params: {} },
  ]
  const reads = tables.flatMap((table) => kinds.map((k) => ({ ...k, table })))
  const pending = reads.map((r) => cache.get(r))
  setImmediate(loader.release)
  const answers = await Promise.all(pending)
  t.equal(loader.loads.length, reads.length, 'one load per table and read')
  for (const [i, answer] of answers.entries()) {
    const sent = JSON.parse(bodyOf(answer))
    t.equal(sent.table, reads[i]!.table, `${reads[i]!.kind} answered from its own table`)
    t.equal(answer.collapsed, false)
  }
  for (const write of memory.writes) {
    t.equal(JSON.parse(gunzipSync(write.body).toString()).table, write.table, 'stored under the table it was read from')
  }
  // Second round: answered from the near cache, still per table.
  const again = await Promise.all(reads.map((r) => cache.get(r)))
  for (const [i, answer] of again.entries()) {
    t.equal(answer.outcome, 'hit')
    t.equal(JSON.parse(bodyOf(answer)).table, reads[i]!.table)
  }
})

t.test('concurrent misses of the same read still collapse onto one load', async (t) => {
  const memory = createMemoryStore()
  const loader = slowLoader()
  const cache = createReadCache({ config, store: memory.store, load: loader.load, scheduleRefresh() {}, redisReady: () => true })
  const read: CachedResource = { table: 'shape-a', kind: 'items', params: { limit: '7' } }
  const pending = Array.from({ length: 20 }, () => cache.get(read))
  setImmediate(loader.release)
  const answers = await Promise.all(pending)
  t.equal(loader.loads.length, 1, 'one DynamoDB read for 20 callers')
  t.equal(answers.filter((a) => a.collapsed).length, 19)
})

t.test('a read that starts after an invalidation never joins a load that began before it', async (t) => {
  const memory = createMemoryStore()
  let version = 'old'
  let release!: () => void
  const gate = new Promise<void>((resolve) => {
    release = resolve
  })
  let loads = 0
  const load = async (): Promise<LoadedValue> => {
    loads++
    const seen = version
    if (loads === 1) await gate
    return { status: 200, body: Buffer.from(JSON.stringify({ v: seen })) }
  }
  const cache = createReadCache({ config, store: memory.store, load, scheduleRefresh() {}, redisReady: () => true })
  const read: CachedResource = { table: 'shape-a', kind: 'item', params: { pk: 'p0' } }
  const before = cache.get(read)
  // The first load has read 'old' and is still running when the table is written and invalidated.
  await new Promise((resolve) => setImmediate(resolve))
  version = 'new'
  memory.invalidate('shape-a')
  const after = cache.get(read)
  release()
  const [first, second] = await Promise.all([before, after])
  t.equal(JSON.parse(bodyOf(first)).v, 'old', 'the read that started before may answer the old value')
  t.equal(JSON.parse(bodyOf(second)).v, 'new', 'the read that started after the invalidation answers the new one')
  t.equal(second.collapsed, false)
  t.equal(loads, 2)
})
