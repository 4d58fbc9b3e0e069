import { Writable } from 'node:stream'
import pino from 'pino'
import t from 'tap'
import { auth, build } from '../helpers/app.ts'
import { startServices } from '../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../helpers/tables.ts'
import { startTcpProxy } from '../helpers/tcp-proxy.ts'
import { uniquePrefix } from '../helpers/unique-prefix.ts'
import { waitFor } from '../helpers/wait.ts'

// Two API processes share one cache; A reaches Redis through a proxy that can partition it. A write
// through A while A cannot reach Redis is applied (DynamoDB answers), but A cannot tell the cache:
// the table is owed an invalidation, made as soon as A reaches Redis again, so B stops answering the
// old entry then, not at its TTL. B's other table keeps its entries.
const services = await startServices(t)
const redisAddress = new URL(services.redisUrl)
const proxy = await startTcpProxy({ host: redisAddress.hostname, port: Number(redisAddress.port) })
t.teardown(() => proxy.close())
const dynamo = testDynamo(t, services.dynamoEndpoint)
const TABLES = ['part_a', 'part_b'] as const
for (const table of TABLES) {
  await createTable(dynamo, table, { PK: 'S', SK: 'S' })
  await putItems(
    dynamo,
    table,
    Array.from({ length: 6 }, (_, i) => ({ PK: { S: `p${i % 2}` }, SK: { S: `s${i}` }, owner: { S: table }, v: { N: String(i) } })),
  )
}

const lines: Array<Record<string, unknown>> = []
const sink = new Writable({
  write(chunk, _enc, done) {
    for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line))
    done()
  },
})
const prefix = uniquePrefix()
// The TTLs are long: an entry that stops answering does so because it was invalidated, not because it aged.
const shared = { REDIS_PREFIX: prefix, TABLE_ITEMS_TTL: '3600' }
const a = await build(t, { ...services, redisUrl: proxy.url }, shared, { logger: pino({ level: 'info' }, sink) })
const b = await build(t, services, shared)

const read = async (app: typeof a, url: string) => {
  const res = await app.inject({ url, headers: auth('read') })
  return { status: res.statusCode, cache: res.headers['x-cache'], v: (res.json() as { v?: number }).v }
}
const owedOnMetrics = async () => {
  const text = (await a.inject({ url: '/metrics', headers: auth('admin') })).body
  return Number(/^dynacache_cache_invalidations_owed (\S+)$/m.exec(text)?.[1])
}

t.test('a write through a process cut off from Redis invalidates its table once it reaches Redis again', async (t) => {
  const item = '/tables/part_a/items/p0?sk=s0'
  const other = '/tables/part_b/items/p0?sk=s0'
  t.equal((await read(a, item)).cache, 'MISS')
  t.same(await read(b, item), { status: 200, cache: 'HIT', v: 0 })
  await read(b, other)
  t.equal((await read(b, other)).cache, 'HIT')

  proxy.partition()
  t.teardown(() => proxy.heal())
  await waitFor('A to lose Redis', async () => a.redis.status !== 'ready')
  const put = await a.inject({
    method: 'PUT',
    url: item,
    headers: { ...auth('write'), 'content-type': 'application/json' },
    payload: { owner: 'part_a', v: 100 },
  })
  t.equal(put.statusCode, 200, 'the write is applied and answered')
  t.equal(a.cache.invalidationsOwed, 1, 'A owes part_a an invalidation')
  t.equal(await owedOnMetrics(), 1, 'and says so on /metrics')
  t.same(await read(a, item), { status: 200, cache: 'BYPASS', v: 100 }, 'A itself reads DynamoDB meanwhile')

  proxy.heal()
  await waitFor('A to settle what it owes', async () => a.cache.invalidationsOwed === 0, 30_000)
  // B hears of the bump through pub/sub and its near copies live 1 s at most: seconds, not the entry's hour.
  const after = await waitFor(
    'B to answer the written value',
    async () => {
      const answer = await read(b, item)
      return answer.v === 100 ? answer : undefined
    },
    10_000,
    50,
  )
  t.not(after.cache, 'HIT', 'B reloaded it: the old entry is gone')
  t.equal((await read(b, other)).cache, 'HIT', "the other table's entries were not touched")
  t.equal(await owedOnMetrics(), 0)
  const said = lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('cache.invalidation.')).map((l) => [l.msg, l.table])
  t.same(said, [
    ['cache.invalidation.owed', 'part_a'],
    ['cache.invalidation.settled', 'part_a'],
  ])
})
