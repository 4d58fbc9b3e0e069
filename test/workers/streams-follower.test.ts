import { CreateTableCommand, DeleteItemCommand, DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb'
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  type GetRecordsCommandOutput,
  GetShardIteratorCommand,
} from '@aws-sdk/client-dynamodb-streams'
import { Redis } from 'ioredis'
import t from 'tap'
import { freePort } from '../../src/local/services/ports.ts'
import { createRedisKeys } from '../../src/shared/redis/keys.ts'
import { auth, configEnv, testConfig } from '../helpers/app.ts'
import { startDynamoProxy } from '../helpers/dynamo-proxy.ts'
import { type ChildHandle, startEntry, waitForLog } from '../helpers/processes.ts'
import { startServices } from '../helpers/services.ts'
import { startStreamsEmulator } from '../helpers/streams-emulator.ts'
import { sleep, waitFor } from '../helpers/wait.ts'

// 2 API processes and 2 workers follow the emulated streams of tables written straight to DynamoDB
// (through the test's proxy, which feeds the emulator), not through dynacache.
// Four processes on a loaded 2-core machine: start-up alone can take minutes.
t.setTimeout(900_000)
const services = await startServices(t)
const emulator = await startStreamsEmulator()
t.teardown(() => emulator.close())
const proxy = await startDynamoProxy(services.dynamoEndpoint, {}, { tap: emulator.writeTap(services.dynamoEndpoint) })
t.teardown(() => proxy.close())
const credentials = { accessKeyId: 'local', secretAccessKey: 'local' }
const dynamo = new DynamoDBClient({ endpoint: proxy.endpoint, region: 'us-east-1', credentials })
const streams = new DynamoDBStreamsClient({ endpoint: emulator.endpoint, region: 'us-east-1', credentials })
t.teardown(() => {
  dynamo.destroy()
  streams.destroy()
})

const TABLES = ['streams_orders', 'streams_events'] as const
for (const name of [...TABLES, 'plain_table']) {
  await dynamo.send(
    new CreateTableCommand({
      TableName: name,
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
      StreamSpecification: { StreamEnabled: true, StreamViewType: name === 'streams_events' ? 'KEYS_ONLY' : 'NEW_AND_OLD_IMAGES' },
    }),
  )
}

const LEASE_MS = 5000
const config = testConfig(
  { ...services, dynamoEndpoint: proxy.endpoint },
  {
    LOG_LEVEL: 'info',
    HOST: '127.0.0.1',
    STREAMS_FOLLOW: 'streams_*',
    DYNAMODB_STREAMS_ENDPOINT: emulator.endpoint,
    STREAMS_LEASE_MS: String(LEASE_MS),
    // Long passes: a shard's lease is nearly always held, so the SIGKILL below hits its holder mid-pass.
    STREAMS_PASS_MS: '20000',
    STREAMS_POLL_MS: '100',
    STREAMS_DISCOVER_S: '2',
    STREAMS_AUDIT: 'true',
    JOB_STALL_MS: '3000',
  },
)
const keys = createRedisKeys(config.REDIS_PREFIX)
const redis = new Redis(services.redisUrl)
t.teardown(() => redis.quit())

const apiPorts = [await freePort(), await freePort()]
const apis = apiPorts.map((port) => startEntry(t, 'src/api/server.ts', { ...configEnv(config), PORT: String(port) }))
const workers: ChildHandle[] = [0, 1].map(() => startEntry(t, 'src/workers/main.ts', configEnv(config)))
await Promise.all([...apis.map((a) => waitForLog(a, /Server listening/, 240_000)), ...workers.map((w) => waitForLog(w, /worker\.started/, 240_000))])

const put = (table: string, pk: string, v: string) => dynamo.send(new PutItemCommand({ TableName: table, Item: { pk: { S: pk }, v: { S: v } } }))

async function readItem(api: number, table: string, pk: string) {
  const res = await fetch(`http://127.0.0.1:${apiPorts[api]}/tables/${table}/items/${pk}`, { headers: auth('read') })
  const body = res.status === 200 ? ((await res.json()) as { v?: string }) : undefined
  return { status: res.status, v: body?.v, cache: res.headers.get('cache-status') ?? '' }
}

/** Every record of a table's stream per shard, as the emulator holds them now. */
async function streamRecords(table: string): Promise<Map<string, string[]>> {
  const arn = emulator.streamArn(table)!
  const { StreamDescription } = await streams.send(new DescribeStreamCommand({ StreamArn: arn }))
  const out = new Map<string, string[]>()
  for (const shard of StreamDescription!.Shards!) {
    const seqs: string[] = []
    let it = (await streams.send(new GetShardIteratorCommand({ StreamArn: arn, ShardId: shard.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator
    while (it) {
      const page: GetRecordsCommandOutput = await streams.send(new GetRecordsCommand({ ShardIterator: it }))
      seqs.push(...(page.Records ?? []).map((r) => r.dynamodb!.SequenceNumber!))
      if ((page.Records ?? []).length === 0) break
      it = page.NextShardIterator
    }
    out.set(shard.ShardId!, seqs)
  }
  return out
}

const audit = (table: string, shard: string) => redis.lrange(keys.streamFollow(table, `audit:${shard}`), 0, -1)

/** Waits until the follower has applied (and checkpointed) exactly the stream's records, shard by shard. */
async function waitForAudit(table: string) {
  return waitFor(
    `the follower to apply every record of ${table}`,
    async () => {
      const expected = await streamRecords(table)
      for (const [shard, seqs] of expected) {
        const got = await audit(table, shard)
        if (got.length !== seqs.length || got.some((s, i) => s !== seqs[i])) return false
      }
      return expected
    },
    180_000,
    250,
  )
}

/** The dynacache_streams_* samples of one API process's /metrics, by metric and table. */
async function streamsMetrics(api: number): Promise<Record<string, Record<string, number>>> {
  const res = await fetch(`http://127.0.0.1:${apiPorts[api]}/metrics`, { headers: auth('admin') })
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`)
  const out: Record<string, Record<string, number>> = {}
  for (const [, name, table, value] of (await res.text()).matchAll(/^(dynacache_streams_\w+)\{table="([^"]+)"\} (\S+)$/gm)) {
    out[name!] ??= {}
    out[name!]![table!] = Number(value)
  }
  return out
}

const pidOfHolder = async (table: string, shard: string) => {
  const token = await redis.get(keys.streamFollow(table, `lease:${shard}`))
  return token ? Number(token.split(':')[1]) : undefined
}

t.test('a write made directly to DynamoDB becomes visible through cached reads of both API processes, on two tables', async (t) => {
  for (const table of TABLES) await put(table, 'item1', 'one')
  for (const table of TABLES) {
    for (const api of [0, 1]) {
      t.equal((await readItem(api, table, 'item1')).v, 'one', `${table}: api ${api} reads the item`)
      await waitFor(`${table} item1 cached`, async () => (await readItem(api, table, 'item1')).cache.includes('hit'))
    }
  }
  for (const table of TABLES) await put(table, 'item1', 'two')
  for (const table of TABLES) {
    for (const api of [0, 1]) {
      const seen = await waitFor(
        `${table}: api ${api} shows the direct write`,
        async () => {
          const read = await readItem(api, table, 'item1')
          return read.v === 'two' && read
        },
        120_000,
      )
      t.equal(seen.v, 'two', `${table}: api ${api} shows the direct write`)
    }
  }
  await dynamo.send(new DeleteItemCommand({ TableName: TABLES[0], Key: { pk: { S: 'item1' } } }))
  await waitFor('the direct delete shows as 404', async () => (await readItem(0, TABLES[0], 'item1')).status === 404, 120_000)
  for (const table of TABLES) await waitForAudit(table)
  t.equal(await redis.exists(keys.streamFollow('plain_table', 'shards')), 0, 'a table STREAMS_FOLLOW does not name is not followed')
  // Workers serve no /metrics: each API process reports the follower's fleet-wide state from Redis.
  for (const api of [0, 1]) {
    const m = await waitFor(
      `api ${api}: /metrics shows both tables followed, each with a shard held`,
      async () => {
        const got = await streamsMetrics(api)
        return TABLES.every((table) => (got.dynacache_streams_shards_held?.[table] ?? 0) >= 1) && got
      },
      120_000,
      100,
    )
    for (const table of TABLES) {
      t.ok(
        m.dynacache_streams_records_applied_total![table]! >= 2,
        `api ${api}, ${table}: ${m.dynacache_streams_records_applied_total![table]} records applied`,
      )
      t.ok(m.dynacache_streams_shards_held![table]! >= 1, `api ${api}, ${table}: ${m.dynacache_streams_shards_held![table]} shard(s) held`)
      const lag = m.dynacache_streams_lag_seconds?.[table]
      t.ok(lag !== undefined && lag >= 0, `api ${api}, ${table}: lag ${lag} s`)
    }
    t.equal(m.dynacache_streams_shards_held!.plain_table, undefined, 'a table not followed has no series')
  }
})

t.test('SIGKILL of the worker holding a shard: the other takes it after the lease, no record skipped or out of order', async (t) => {
  const table = TABLES[0]
  const shard = [...(await streamRecords(table)).keys()][0]!
  let writing = true
  let n = 0
  const writer = (async () => {
    while (writing) {
      await put(table, `k${n % 7}`, String(n))
      n++
      await sleep(20)
    }
  })()
  const holder = await waitFor('a worker to hold the shard', () => pidOfHolder(table, shard), 120_000, 5)
  const victim = workers.find((w) => w.child.pid === holder)!
  const survivor = workers.find((w) => w.child.pid !== holder)!
  t.ok(victim, 'the holder is one of the two workers')
  victim.signal('SIGKILL')
  await victim.exited
  t.equal(await pidOfHolder(table, shard), victim.child.pid, "the dead worker's lease is still there: the survivor must wait for it to expire")
  await waitFor('the survivor to take the shard', async () => (await pidOfHolder(table, shard)) === survivor.child.pid, 120_000, 50)
  const before = (await audit(table, shard)).length
  await waitFor('records applied after the takeover', async () => (await audit(table, shard)).length > before, 120_000)
  writing = false
  await writer
  const expected = await waitForAudit(table)
  const applied = await audit(table, shard)
  t.same(applied, expected.get(shard), `all ${applied.length} records applied once, in order`)
  t.ok(n > 0, `${n} writes made during the takeover`)
  // Restore two workers for the tests that follow.
  workers.splice(workers.indexOf(victim), 1, startEntry(t, 'src/workers/main.ts', configEnv(config)))
  await waitForLog(workers[workers.length - 1]!, /worker\.started/, 240_000)
})

t.test('a shard split is followed: the parent to its end, then both children', async (t) => {
  const table = TABLES[1]
  for (let i = 0; i < 10; i++) await put(table, `before${i}`, 'x')
  const [parent] = [...(await streamRecords(table)).keys()].slice(-1)
  const children = emulator.split(table)
  for (let i = 0; i < 30; i++) await put(table, `after${i}`, 'y')
  const expected = await waitForAudit(table)
  t.equal(await redis.hget(keys.streamFollow(table, 'shards'), parent!), 'd', 'the parent is done')
  const childRecords = children.map((c) => expected.get(c) ?? [])
  t.equal(childRecords[0]!.length + childRecords[1]!.length, 30, 'every write after the split came through the children')
  for (const c of children) t.same(await audit(table, c), expected.get(c), `child ${c}: applied once, in order`)
  const parentEnd = emulator.reads.findIndex((r) => r.shard === parent && r.ended)
  const firstChildRead = emulator.reads.findIndex((r) => children.includes(r.shard))
  t.ok(parentEnd >= 0, 'the parent was read to its end')
  t.ok(firstChildRead > parentEnd, 'no child was read before the parent was finished')
  await waitFor('the direct write after the split is visible', async () => (await readItem(1, table, 'after29')).v === 'y', 120_000)
})

t.test('trimmed history: the table is invalidated whole and reading goes on', async (t) => {
  const table = TABLES[0]
  await put(table, 'kept', 'old')
  await waitFor('kept cached', async () => (await readItem(0, table, 'kept')).v === 'old' && (await readItem(0, table, 'kept')).cache.includes('hit'), 120_000)
  const lostBefore = workers.map((w) => (w.output().match(/streams\.history-lost/g) ?? []).length)
  emulator.pause(table, true)
  await put(table, 'kept', 'new')
  emulator.trim(table)
  emulator.pause(table, false)
  await waitFor('the lost write to show after the whole-table invalidation', async () => (await readItem(0, table, 'kept')).v === 'new', 120_000)
  const lostAfter = workers.map((w) => (w.output().match(/streams\.history-lost/g) ?? []).length)
  t.ok(
    lostAfter.some((n, i) => n > lostBefore[i]!),
    'a worker logged the lost history',
  )
  await put(table, 'kept', 'newer')
  await waitFor('a write after the trim is followed again', async () => (await readItem(1, table, 'kept')).v === 'newer', 120_000)
})

t.test('iterators that expired (15 minutes on the emulator clock) are renewed after the checkpoint', async (t) => {
  const table = TABLES[1]
  await put(table, 'exp', 'before')
  await waitForAudit(table)
  const expiredBefore = emulator.count('!ExpiredIteratorException')
  emulator.advance(16 * 60_000)
  for (let i = 0; i < 5; i++) await put(table, 'exp', `after${i}`)
  const expected = await waitForAudit(table)
  for (const [shard, seqs] of expected) t.same(await audit(table, shard), seqs, `${shard}: nothing skipped or repeated across the renewal`)
  t.ok(emulator.count('!ExpiredIteratorException') > expiredBefore, 'the follower met expired iterators')
  await waitFor('the write after the expiry is visible', async () => (await readItem(0, table, 'exp')).v === 'after4', 120_000)
})

t.test('SIGTERM: a worker in the middle of passes exits 0 and gives its leases up', async (t) => {
  const holder = await waitFor(
    'a worker to hold a shard',
    async () => {
      for (const table of TABLES) {
        for (const shard of (await streamRecords(table)).keys()) {
          const pid = await pidOfHolder(table, shard)
          if (pid) return pid
        }
      }
      return undefined
    },
    120_000,
    20,
  )
  const worker = workers.find((w) => w.child.pid === holder)!
  worker.signal('SIGTERM')
  t.equal(await worker.exited, 0, 'exits 0')
  const held: string[] = []
  for (const table of TABLES) {
    for (const shard of (await streamRecords(table)).keys()) if ((await pidOfHolder(table, shard)) === holder) held.push(`${table}/${shard}`)
  }
  t.same(held, [], 'no lease of the stopped worker is left to expire')
})
