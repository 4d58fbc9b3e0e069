import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { ScanCommand, type ScanCommandOutput } from '@aws-sdk/client-dynamodb'
import { Redis } from 'ioredis'
import t from 'tap'
import { type AttributeMap, itemToDocumentJson } from '../../src/shared/dynamo/item-json.ts'
import { cellsOf } from '../../src/shared/exports/formats.ts'
import type { Checkpoint } from '../../src/shared/exports/model.ts'
import { createRedisKeys } from '../../src/shared/redis/keys.ts'
import { auth, build, configEnv, testConfig, uniquePrefix } from '../helpers/app.ts'
import { parseCsv } from '../helpers/csv.ts'
import { startDynamoProxy } from '../helpers/dynamo-proxy.ts'
import { startEntry, waitForLog } from '../helpers/processes.ts'
import { startServices, type TestServices } from '../helpers/services.ts'
import { createTable, everyTypeItem, putItems, testDynamo } from '../helpers/tables.ts'
import { sleep, waitFor } from '../helpers/wait.ts'

const PLAIN = 100_000
const EVERY_TYPE = 20
const TOTAL = PLAIN + EVERY_TYPE
const SEGMENTS = 4

// Seeding 100,000 items takes ~17 s on an idle 2-core machine and twice that on a busy one: allow for it.
t.setTimeout(240_000)
const services = await startServices(t)
const proxy = await startDynamoProxy(services.dynamoEndpoint)
t.teardown(() => proxy.close())
const viaProxy: TestServices = { ...services, dynamoEndpoint: proxy.endpoint }
const dynamo = testDynamo(t, services.dynamoEndpoint)
const redis = new Redis(services.redisUrl)
t.teardown(() => redis.quit())
const exportDir = await mkdtemp(join(tmpdir(), 'dc-big-exports-'))
t.teardown(() => rm(exportDir, { recursive: true, force: true }))

const prefix = uniquePrefix()
const overrides = {
  REDIS_PREFIX: prefix,
  EXPORT_DIR: exportDir,
  EXPORT_SEGMENTS: String(SEGMENTS),
  EXPORT_PAGE_LIMIT: '2000',
  // Two segments per worker, and a killed worker's jobs are taken over after about 2 s.
  WORKER_CONCURRENCY: '2',
  JOB_STALL_MS: '2000',
  LOG_LEVEL: 'info',
}
// The workers' calls get a generous DYNAMO_TIMEOUT_MS: a Scan page takes ~0.5 s plus any latency injected
// below, and one past testConfig's 2 s would be abandoned and read again, not what the Scan counts are about.
const workerEnv = configEnv(testConfig(viaProxy, { ...overrides, DYNAMO_TIMEOUT_MS: '15000' }))
// Started while the table is seeded: neither waits for the other.
const workers = [startEntry(t, 'src/workers/main.ts', workerEnv), startEntry(t, 'src/workers/main.ts', workerEnv)]

// ~200 B items, plus a few with every DynamoDB type (38-digit numbers, binary, sets, nesting, NULL).
await createTable(dynamo, 'big', { PK: 'S', SK: 'N' })
await putItems(dynamo, 'big', [
  ...Array.from({ length: PLAIN }, (_, i) => ({
    PK: { S: `p${String(i % 5000).padStart(5, '0')}` },
    SK: { N: String(i) },
    kind: { S: i % 11 === 0 ? `=HYPERLINK("x${i}")` : `kind-${i % 13}` },
    qty: { N: String(i % 97) },
    price: { N: `${i % 1000}.${String(i % 100).padStart(2, '0')}` },
    active: { BOOL: i % 2 === 0 },
    note: { S: `note for item ${i}: ${'lorem ipsum '.repeat(8)}` },
  })),
  ...Array.from({ length: EVERY_TYPE }, (_, i) => everyTypeItem({ PK: { S: `every-${i}` }, SK: { N: String(-1 - i) } })),
])
await Promise.all(workers.map((w) => waitForLog(w, /worker\.started/)))
const app = await build(t, viaProxy, overrides)

/** The table as the low-level client reads it back (parallel Scan, no cache, no proxy). */
async function readBack(): Promise<AttributeMap[]> {
  const items: AttributeMap[] = []
  await Promise.all(
    Array.from({ length: 4 }, async (_, segment) => {
      let key: AttributeMap | undefined
      do {
        const page: ScanCommandOutput = await dynamo.send(new ScanCommand({ TableName: 'big', Segment: segment, TotalSegments: 4, ExclusiveStartKey: key }))
        items.push(...(page.Items ?? []))
        key = page.LastEvaluatedKey
      } while (key)
    }),
  )
  return items
}
const lowLevel = await readBack()
const expectedLines = lowLevel.map((item) => itemToDocumentJson(item)).sort()
const keyOf = (pk: string, sk: string) => `${pk}|${sk}`

async function runExport(payload: object) {
  const res = await app.inject({ method: 'POST', url: '/exports', headers: auth('export'), payload })
  if (res.statusCode !== 202) throw new Error(`POST /exports: ${res.body}`)
  return res.json().id as string
}

async function finished(id: string, timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs
  for (;;) {
    const view = (await app.inject({ url: `/exports/${id}`, headers: auth('export') })).json()
    if (['completed', 'failed', 'cancelled'].includes(view.status)) return view
    if (Date.now() > until) throw new Error(`export ${id} still ${view.status} at ${view.progress}%`)
    await sleep(200)
  }
}

async function download(id: string): Promise<Buffer> {
  const res = await app.inject({ url: `/exports/${id}/download`, headers: auth('export') })
  if (res.statusCode !== 200) throw new Error(`download: ${res.statusCode} ${res.body}`)
  return res.rawPayload
}

t.test(`JSONL: ${TOTAL} items with every type, each exactly once, lines equal to the low-level read`, async (t) => {
  t.equal(lowLevel.length, TOTAL)
  const started = Date.now()
  const id = await runExport({ table: 'big', format: 'jsonl' })
  const done = await finished(id)
  t.comment(`export took ${Date.now() - started} ms`)
  t.same([done.status, done.progress, done.processedItems], ['completed', 100, TOTAL])
  const body = await download(id)
  t.equal(body.length, done.bytes)
  const lines = body.toString().split('\n')
  t.equal(lines.pop(), '', 'ends with a newline')
  t.equal(lines.length, TOTAL, 'one line per item')
  const keys = new Set(
    lines.map((l) => {
      const { PK, SK } = JSON.parse(l) as { PK: string; SK: number }
      return keyOf(PK, String(SK))
    }),
  )
  t.equal(keys.size, TOTAL, 'no item twice')
  t.ok(lines.sort().join('\n') === expectedLines.join('\n'), 'the lines are exactly the low-level items in the document view')
  t.ok(
    lines.some((l) => l.includes('"n":12345678901234567890.123456789012345678')),
    'a 38-digit number keeps every digit',
  )
})

t.test(`CSV (gzip): header = union of names, keys first; ${TOTAL} rows exactly once; every cell as the low-level item says`, async (t) => {
  const id = await runExport({ table: 'big', format: 'csv', gzip: true })
  const done = await finished(id)
  t.same([done.status, done.processedItems], ['completed', TOTAL])
  const rows = parseCsv(gunzipSync(await download(id)).toString())
  const [header, ...data] = rows as [string[], ...string[][]]
  const names = new Set(lowLevel.flatMap((i) => Object.keys(i)))
  t.same(header, ['PK', 'SK', ...[...names].filter((n) => n !== 'PK' && n !== 'SK').sort()], 'keys first, then the rest in order')
  t.equal(data.length, TOTAL)
  const byKey = new Map(lowLevel.map((item) => [keyOf(item.PK!.S!, item.SK!.N!), item]))
  let mismatches = 0
  const seen = new Set<string>()
  for (const row of data) {
    const key = keyOf(row[0]!, row[1]!)
    seen.add(key)
    const cells = cellsOf(byKey.get(key) ?? {})
    if (header.some((name, c) => (cells[name] ?? '') !== row[c])) mismatches++
  }
  t.equal(seen.size, TOTAL, 'every item exactly once')
  t.equal(mismatches, 0, 'every row holds its item')
  const every = data.find((r) => r[0] === 'every-3')!
  const cell = (name: string) => every[header.indexOf(name)]
  t.equal(cell('s'), 'héllo "world" \n\u0001', 'quotes, newline and control characters survive RFC 4180 quoting')
  t.equal(cell('n'), '12345678901234567890.123456789012345678')
  t.equal(cell('ns'), '[1,99999999999999999999999999999999999999]', 'sets as JSON text')
  t.equal(cell('m'), '{"a":"b","nested":{"n":7}}', 'maps as JSON text')
  t.equal(cell('b'), 'AAEC/f7/')
  t.equal(cell('nul'), '')
  t.equal(cell('kind'), '', 'attributes an item lacks are empty')
  const formula = data.find((r) => r[0] === 'p00011' && r[1] === '11')!
  t.equal(formula[header.indexOf('kind')], `'=HYPERLINK("x11")`, 'a formula is neutralised')
})

t.test(
  'two worker processes, one killed with SIGKILL mid-export: the other resumes its segments from their checkpoints; every item exactly once',
  async (t) => {
    proxy.setFaults({ latencyMs: 80 })
    t.teardown(() => proxy.setFaults({}))
    const keys = createRedisKeys(prefix)
    const scansBefore = proxy.count('Scan', 'big')
    const id = await runExport({ table: 'big', format: 'jsonl' })
    const [victim, survivor] = workers as [(typeof workers)[0], (typeof workers)[0]]
    const victimPid = victim.child.pid!
    // Kill it once it has committed pages of a segment it has not finished. The limit is only a safety net:
    // the victim gets there within seconds unless the machine is very busy.
    const killedAt = await waitFor(
      'the victim to commit 2 pages of a segment it has not finished',
      async () => {
        const segs = await redis.hgetall(keys.exportRecord(id, 'seg'))
        const owned = Object.entries(segs)
          .filter(([f, owner]) => f.startsWith('own:') && owner.split(':')[1] === String(victimPid))
          .map(([f]) => Number(f.slice(4)))
        const checkpoints = owned.map((s) => ({ segment: s, cp: segs[`cp:${s}`] ? (JSON.parse(segs[`cp:${s}`]!) as Checkpoint) : undefined }))
        return checkpoints.some((c) => c.cp && c.cp.pages >= 2 && !c.cp.done) && checkpoints
      },
      60_000,
      25,
    )
    victim.signal('SIGKILL')
    await victim.exited
    const interrupted = killedAt.filter((c) => !c.cp?.done)
    t.comment(`killed worker ${victimPid} holding segments ${killedAt.map((c) => `${c.segment}@${c.cp?.pages ?? 0}p`).join(', ')}`)
    proxy.setFaults({})

    const done = await finished(id, 60_000)
    t.same([done.status, done.processedItems], ['completed', TOTAL], 'the export completes')
    const lines = (await download(id)).toString().split('\n')
    lines.pop()
    t.equal(lines.length, TOTAL, 'one line per item')
    t.ok(lines.sort().join('\n') === expectedLines.join('\n'), 'exactly the items, each once: nothing duplicated, nothing lost')

    const segs = await redis.hgetall(keys.exportRecord(id, 'seg'))
    for (const { segment, cp } of interrupted) {
      const final = JSON.parse(segs[`cp:${segment}`]!) as Checkpoint
      t.ok(final.resumes >= 1, `segment ${segment} was resumed, not restarted`)
      t.notOk(segs[`own:${segment}`]!.includes(`:${victimPid}:`), `segment ${segment} finished by the survivor`)
      if (cp) t.match(survivor.output(), new RegExp(`"msg":"export.segment.resume","exportId":"${id}","segment":${segment},"pages":(\\d+)`))
    }
    const pages = Object.entries(segs)
      .filter(([f]) => f.startsWith('cp:'))
      .reduce((sum, [, v]) => sum + (JSON.parse(v) as Checkpoint).pages, 0)
    const scans = proxy.count('Scan', 'big') - scansBefore
    // A killed run may have had two pages read but not committed: the one it was writing and the next.
    t.ok(scans <= pages + 2 * interrupted.length, `${scans} Scans for ${pages} pages: only the pages in flight were read again`)
  },
)
