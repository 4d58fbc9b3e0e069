/**
 * Issue 14, the acceptance of scoped invalidation (docs/coherence.md), over HTTP with two API processes
 * (near cache on) and a worker writing batches: two tables of the same shape (a GSI); a batch that writes
 * partition g1 of table A leaves cached queries of other partitions, cached items of other keys, the
 * details and everything of table B as HITs in both processes; queries of g1, scan pages and the GSI (the
 * batch does not know old images) MISS and show the writes; an item whose GSI key changed leaves the old
 * index partition's page and joins the new one. Then soft invalidation: served STALE once, one refresh queued.
 */
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import t from 'tap'
import { bearer, startFleet } from '../helpers/isolation-fleet.ts'
import { startServices } from '../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../helpers/tables.ts'
import { waitFor } from '../helpers/wait.ts'

const TABLES = ['coh-a', 'coh-b'] as const
const PARTITIONS = ['g1', 'g2', 'g3'] as const
const SKS = [0, 1, 2] as const

interface Doc {
  pk: string
  sk: number
  tbl: string
  v: number
  c: string
}
const doc = (tbl: string, pk: string, sk: number, v: number, c = `c${sk % 2}`): Doc => ({ pk, sk, tbl, v, c })
const typed = (d: Doc) => ({ pk: { S: d.pk }, sk: { N: String(d.sk) }, tbl: { S: d.tbl }, v: { N: String(d.v) }, c: { S: d.c } })

const services = await startServices(t)
const dynamo = testDynamo(t, services.dynamoEndpoint)
for (const table of TABLES) {
  await createTable(dynamo, table, { pk: 'S', sk: 'N' }, { byC: { c: 'S', sk: 'N' } })
  await putItems(
    dynamo,
    table,
    PARTITIONS.flatMap((pk) => SKS.map((sk) => typed(doc(table, pk, sk, 1)))),
  )
}
// Long TTLs: nothing may go stale by itself during the test, so every MISS is an invalidation's.
const fleet = await startFleet(
  t,
  services,
  { NEAR_CACHE_TTL_MS: '60000', TABLE_ITEMS_TTL: '3600', QUERY_RESULTS_TTL: '3600', TABLE_DETAILS_TTL: '3600' },
  { apiCount: 2, workerQueues: 'batch-write' },
)
const [api0, api1] = fleet.apis as [(typeof fleet.apis)[0], (typeof fleet.apis)[0]]

const paths = (table: string) => ({
  'query g1': `/tables/${table}/query?pk=g1&limit=10`,
  'query g2': `/tables/${table}/query?pk=g2&limit=10`,
  'query g3': `/tables/${table}/query?pk=g3&limit=10`,
  'item g1/0 (written)': `/tables/${table}/items/g1?sk=0`,
  'item g1/2': `/tables/${table}/items/g1?sk=2`,
  'item g2/1': `/tables/${table}/items/g2?sk=1`,
  'scan page': `/tables/${table}/items?limit=4`,
  'GSI c0': `/tables/${table}/query?pk=c0&index=byC&limit=20`,
  'GSI c1': `/tables/${table}/query?pk=c1&index=byC&limit=20`,
  details: `/tables/${table}`,
})
type Name = keyof ReturnType<typeof paths>

async function read(api: typeof api0, path: string) {
  const res = await api.request(path, { headers: { ...bearer('read'), 'accept-encoding': 'gzip' } })
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${res.text}`)
  return {
    xCache: String(res.headers['x-cache']),
    cacheStatus: String(res.headers['cache-status']),
    body: JSON.parse(res.text) as { items?: Doc[] } & Partial<Doc>,
  }
}

/** X-Cache of every read of both tables, in each process. */
async function outcomes(): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const table of TABLES) {
    for (const [name, path] of Object.entries(paths(table))) {
      for (const [n, api] of [api0, api1].entries()) out[`${table} ${name} @api${n}`] = (await read(api, path)).xCache
    }
  }
  return out
}

const keysOf = (items: Doc[] | undefined) => (items ?? []).map((i) => `${i.pk}/${i.sk}`).sort()

async function batch(table: string, docs: Doc[]) {
  const res = await api0.request(`/tables/${table}/batches`, {
    method: 'POST',
    headers: bearer('write'),
    body: { format: 'typed', operations: docs.map((d) => ({ put: typed(d) })) },
  })
  if (res.status !== 202) throw new Error(`POST batches: ${res.status} ${res.text}`)
  const { id } = JSON.parse(res.text) as { id: string }
  await waitFor(
    `batch ${id} to complete`,
    async () => {
      const status = (JSON.parse((await api1.request(`/batches/${encodeURIComponent(id)}`, { headers: bearer('write') })).text) as { status?: string }).status
      if (status === 'failed') throw new Error(`batch ${id} failed`)
      return status === 'completed'
    },
    60_000,
    50,
  )
}

t.test('a batch of partition g1 of table A invalidates exactly what it can change, in both processes', async (t) => {
  // Warm every entry in Redis and in both near caches.
  await outcomes()
  const warm = await outcomes()
  t.same(
    Object.values(warm).filter((x) => x !== 'HIT'),
    [],
    'everything is cached before the batch',
  )
  const before = await read(api0, paths('coh-a')['GSI c1'])
  t.ok(keysOf(before.body.items).includes('g1/1'), 'g1/1 is in GSI partition c1 before')

  // g1/0 gets a new version; g1/1 moves from GSI partition c1 to c0.
  await batch('coh-a', [doc('coh-a', 'g1', 0, 2), doc('coh-a', 'g1', 1, 2, 'c0')])

  const after = await outcomes()
  const expectMiss = new Set<Name>(['query g1', 'item g1/0 (written)', 'scan page', 'GSI c0', 'GSI c1'])
  const want: Record<string, string> = {}
  for (const table of TABLES) {
    for (const name of Object.keys(paths(table)) as Name[]) {
      // The first process to read an invalidated entry loads it (MISS); the other finds it stored (HIT).
      want[`${table} ${name} @api0`] = table === 'coh-a' && expectMiss.has(name) ? 'MISS' : 'HIT'
      want[`${table} ${name} @api1`] = 'HIT'
    }
  }
  t.same(after, want, 'what the batch can change misses once; everything else, and all of table B, hits')

  for (const api of [api0, api1]) {
    const g1 = await read(api, paths('coh-a')['query g1'])
    t.same(
      g1.body.items?.map((i) => `${i.pk}/${i.sk}/v${i.v}`),
      ['g1/0/v2', 'g1/1/v2', 'g1/2/v1'],
      'the query of g1 shows the writes',
    )
    t.equal((await read(api, paths('coh-a')['item g1/0 (written)'])).body.v, 2, 'the written item shows its new version')
    const c0 = keysOf((await read(api, paths('coh-a')['GSI c0'])).body.items)
    const c1 = keysOf((await read(api, paths('coh-a')['GSI c1'])).body.items)
    t.ok(c0.includes('g1/1') && !c1.includes('g1/1'), 'g1/1 left GSI partition c1 and joined c0')
    const scan = (await read(api, paths('coh-a')['scan page'])).body.items ?? []
    t.ok(
      scan.every((i) => i.pk !== 'g1' || i.sk > 1 || i.v === 2),
      'the scan page shows the writes',
    )
    t.equal((await read(api, paths('coh-b')['item g1/0 (written)'])).body.v, 1, 'table B is untouched')
  }
})

t.test('soft: an invalidated entry is served once more as STALE while one refresh is queued', async (t) => {
  const path = paths('coh-b')['query g2']
  t.equal((await read(api0, path)).xCache, 'HIT', 'cached')
  const admin = new Redis(services.redisUrl)
  t.teardown(() => admin.quit())
  const refreshes = new Queue('cache-refresh', { connection: admin, prefix: `{${fleet.prefix}}:q` })
  t.teardown(() => refreshes.close())
  const queued = async () => {
    const counts = await refreshes.getJobCounts('waiting', 'prioritized', 'delayed', 'active')
    return Object.values(counts).reduce((a, b) => a + b, 0)
  }
  const queuedBefore = await queued()

  const res = await api1.request('/tables/coh-b/cache?mode=soft', { method: 'DELETE', headers: bearer('admin') })
  t.equal(res.status, 200, res.text)

  const once = await read(api0, path)
  t.equal(once.xCache, 'STALE', 'served once more')
  t.match(once.cacheStatus, /^dynacache; hit; ttl=-?\d+; detail=invalidated$/, 'Cache-Status says why')
  t.same(keysOf(once.body.items), ['g2/0', 'g2/1', 'g2/2'])
  const next = await read(api1, path)
  t.equal(next.xCache, 'MISS', 'only once: the next read (another process) loads it (no worker runs refreshes here)')
  t.equal((await read(api0, path)).xCache, 'HIT', 'and it is cached again')
  t.equal(await queued(), queuedBefore + 1, 'one refresh queued')

  const hard = await api1.request('/tables/coh-b/cache?mode=hard', { method: 'DELETE', headers: bearer('admin') })
  t.equal(hard.status, 200)
  t.equal((await read(api0, path)).xCache, 'MISS', 'mode=hard: a miss at once')
  const bad = await api1.request('/tables/coh-b/cache?mode=later', { method: 'DELETE', headers: bearer('admin') })
  t.equal(bad.status, 400, 'an unknown mode is refused')
})
