import { Redis } from 'ioredis'
import t from 'tap'
import { auth, build } from '../helpers/app.ts'
import { startServices } from '../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../helpers/tables.ts'
import { uniquePrefix } from '../helpers/unique-prefix.ts'
import { waitFor } from '../helpers/wait.ts'

// A Redis that is full under maxmemory-policy noeviction (what docs/coherence.md asks for) refuses every
// write that could grow it, and still answers reads. The cache must then answer every read from what it
// has or from DynamoDB, and a write must still invalidate what it changed: a cached entry that outlives
// a write because the bump was refused would be served as fresh until its TTL.
const services = await startServices(t, { ownRedis: true })
const admin = new Redis(services.redisUrl)
t.teardown(() => admin.disconnect())
const dynamo = testDynamo(t, services.dynamoEndpoint)
// Two tables of the same shape, so an answer of one for the other would show.
const TABLES = ['full_a', 'full_b'] as const
for (const table of TABLES) {
  await createTable(dynamo, table, { PK: 'S', SK: 'S' })
  await putItems(
    dynamo,
    table,
    Array.from({ length: 12 }, (_, i) => ({ PK: { S: `p${i % 3}` }, SK: { S: `s${i}` }, owner: { S: table }, v: { N: String(i) } })),
  )
}

// Two API processes sharing one cache.
const prefix = uniquePrefix()
const apps = await Promise.all([build(t, services, { REDIS_PREFIX: prefix }), build(t, services, { REDIS_PREFIX: prefix })])

const full = async () => {
  await admin.config('SET', 'maxmemory-policy', 'noeviction')
  // Below what it holds: every command that may grow memory is refused with OOM from now on.
  await admin.config('SET', 'maxmemory', '1')
}
const roomy = () => admin.config('SET', 'maxmemory', '0')
t.teardown(roomy)

async function read(app: number, url: string) {
  const res = await apps[app]!.inject({ url, headers: auth('read') })
  return { status: res.statusCode, cache: res.headers['x-cache'], body: res.statusCode === 200 ? res.json() : res.json() }
}

t.test('a full Redis: reads answer (cached or from DynamoDB), for the right table, in both processes', async (t) => {
  const cached = '/tables/full_a/query?pk=p1'
  t.equal((await read(0, cached)).cache, 'MISS')
  t.equal((await read(1, cached)).cache, 'HIT', 'the other process finds it in Redis')
  await full()
  t.teardown(roomy)
  t.rejects(admin.set(`${prefix}:probe`, 'x'), /OOM/, 'the Redis refuses writes now')

  const urls = TABLES.flatMap((table) => [
    `/tables/${table}/query?pk=p0`,
    `/tables/${table}/query?pk=p2`,
    `/tables/${table}/items/p1?sk=s4`,
    `/tables/${table}/items?limit=5`,
  ])
  // Every URL from both processes at once, twice: nothing can be stored, so each is a miss each time.
  const answers = await Promise.all([0, 1, 0, 1].flatMap((app) => urls.map(async (url) => ({ url, app, ...(await read(app, url)) }))))
  for (const a of answers) {
    t.equal(a.status, 200, `${a.url} from process ${a.app}: ${JSON.stringify(a.body).slice(0, 200)}`)
    const table = a.url.split('/')[2]
    const items = (a.body as { items?: Array<{ owner: string }>; owner?: string }).items ?? [a.body as { owner: string }]
    t.ok(items.length > 0 && items.every((i) => i.owner === table), `${a.url}: ${table}'s own data`)
    t.equal(a.cache, 'MISS', `${a.url}: loaded, not stored`)
  }
  t.same((await read(0, cached)).cache, 'HIT', 'what was cached before is still served')
})

t.test('a full Redis: a write still invalidates what it changed, in every process', async (t) => {
  await roomy()
  const url = '/tables/full_b/items/p0?sk=s0'
  const query = '/tables/full_b/query?pk=p0'
  t.equal((await read(0, url)).body.v, 0)
  t.equal((await read(1, query)).status, 200)
  t.equal((await read(0, url)).cache, 'HIT')
  t.equal((await read(1, query)).cache, 'HIT')
  await full()
  t.teardown(roomy)
  const put = await apps[0]!.inject({
    method: 'PUT',
    url: '/tables/full_b/items/p0?sk=s0',
    headers: { ...auth('write'), 'content-type': 'application/json' },
    payload: { owner: 'full_b', v: 100 },
  })
  t.equal(put.statusCode, 200, put.body)
  // The other process hears of the bump through pub/sub, and its near copies live 1 s at most: the
  // written value must show within seconds, where a missed bump would leave the old one for 30 minutes.
  const sees = (app: number, path: string, written: (body: Record<string, unknown>) => boolean) =>
    waitFor(
      `process ${app} to answer the written value at ${path}`,
      async () => {
        const answer = await read(app, path)
        return written(answer.body) ? answer : undefined
      },
      10_000,
      50,
    )
  for (const app of [0, 1]) {
    const item = await sees(app, url, (body) => body.v === 100)
    t.not(item.cache, 'HIT', `process ${app}: the item was reloaded, not the entry from before the write`)
    t.equal(item.body.owner, 'full_b', `process ${app}: the item of its own table`)
    const page = await sees(app, query, (body) => (body.items as Array<{ SK: string; v: number }>).find((i) => i.SK === 's0')?.v === 100)
    t.same(
      (page.body.items as Array<{ SK: string; v: number; owner: string }>).map((i) => [i.SK, i.v, i.owner]),
      [
        ['s0', 100, 'full_b'],
        ['s3', 3, 'full_b'],
        ['s6', 6, 'full_b'],
        ['s9', 9, 'full_b'],
      ],
      `process ${app}: the query shows the write, and the rest of the partition as it was`,
    )
  }
})

t.test('a full Redis: work that must be queued or recorded is refused with a 503 and its code, and nothing is left', async (t) => {
  await full()
  t.teardown(roomy)
  // Compared by name: keys of earlier tests may expire meanwhile, none may appear.
  const before = new Set(await admin.keys('*'))
  const exp = await apps[1]!.inject({ method: 'POST', url: '/exports', headers: auth('admin'), payload: { table: 'full_a', format: 'csv' } })
  t.equal(exp.statusCode, 503, exp.body)
  t.match(exp.json().code, /^DC_ERR_(QUEUE|REDIS)_UNAVAILABLE$/)
  t.ok(exp.headers['retry-after'], 'with Retry-After')
  const batch = await apps[0]!.inject({
    method: 'POST',
    url: '/tables/full_a/batches',
    headers: auth('admin'),
    payload: { operations: [{ put: { PK: 'p9', SK: 's9', owner: 'full_a' } }] },
  })
  t.equal(batch.statusCode, 503, batch.body)
  t.match(batch.json().code, /^DC_ERR_(QUEUE|REDIS)_UNAVAILABLE$/)
  t.same(
    (await admin.keys('*')).filter((key) => !before.has(key)),
    [],
    'no key was added',
  )
})

t.test('once Redis has room again, reads are cached again', async (t) => {
  await roomy()
  const url = '/tables/full_a/query?pk=p2'
  await read(0, url)
  t.equal((await read(1, url)).cache, 'HIT')
})
