/**
 * Issue 12, the safety net for isolation bugs: a property-based differential test. fast-check draws
 * random runs of steps; a step is a set of commands started at once (with small random offsets):
 * reads of every kind on either of two API processes (near cache on), gzip and plain clients,
 * `Cache-Control: no-cache`, `If-None-Match`; the same read of all tables at once (a dashboard);
 * invalidations (DELETE /tables/:t/cache, DELETE /cache); batch writes (POST /tables/:t/batches, written
 * by a worker process) and direct writes to DynamoDB; pauses, so entries go stale and expire (short TTLs).
 *
 * Every item carries its table and a version, and its whole content is a function of (table, key,
 * version), so the test knows the history of every key (when each version was written, bounded by
 * timestamps taken around the write) and judges every answer against it once the run is over:
 *
 * - isolation (no timing involved): every item is exactly the content of a version the test wrote to
 *   that table under that key; a scan page is a page of that table (an index scan holds only items in
 *   the sparse index), a query page holds only its partition (or its GSI value), an item read its key,
 *   details their table; a 304 only for the ETag the client sent.
 * - freshness (documented rules, bounds derived from timestamps taken around requests, never from the
 *   machine's speed): a version seen in an answer must not have been replaced before L, where L is
 *   - the TTL bound: the entry was created less than (Age + 1) s before the request started, by a load
 *     made inside some request of this test that was still open then (workers do no refreshes here),
 *     so L >= the earliest start of the requests that ended after (start - (Age + 1) s); and Age must be
 *     below the entry's TTL (plus the request's own duration), except for stale-if-error answers;
 *   - for a `no-cache` answer: L >= the earliest start of the requests still open when it started;
 *   - after an invalidation of the table completed: L >= the invalidation's start;
 *   - after a batch write completed (issue 14, scoped invalidation): an answer begun after shows each key
 *     the batch wrote at the batch's version or later (the batch invalidates exactly what it can change:
 *     each item, its partition, the GSI and the scan pages; other keys keep their entries);
 *   - after a `no-cache` answer N of the same read: once N and every read of it that overlapped N are
 *     over, plus NEAR_CACHE_TTL_MS (the documented lag of other processes' near caches), L >= N's own L.
 * A 503 (DynamoDB unavailable, e.g. a call timing out on a loaded machine) is an allowed answer and is
 * not judged; stale-if-error answers are judged by their Age only.
 *
 * Replay a failure with DIFFERENTIAL_SEED=<seed> DIFFERENTIAL_PATH=<path> (both printed; the commands
 * replay exactly, their timing cannot), soak with DIFFERENTIAL_RUNS=<n>; DIFFERENTIAL_SHRINK=1 shrinks a
 * failure (slow: every attempt is a real run); DIFFERENTIAL_KEEP_GOING=1 judges every run and counts.
 */
import { PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb'
import fc from 'fast-check'
import t from 'tap'
import { type Answer, bearer, type DocItem, GSI, initialVersion, itemContent, PKS, SKS, sameItem, startFleet, typedItem } from '../helpers/isolation-fleet.ts'
import { startServices } from '../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../helpers/tables.ts'
import { sleep, waitFor } from '../helpers/wait.ts'

const TABLES = ['dif-a', 'dif-b', 'dif-c'] as const
/** dif-a and dif-b share a GSI (same name, same key); dif-c has none. */
const HAS_GSI: Record<string, boolean> = { 'dif-a': true, 'dif-b': true, 'dif-c': false }
const TTL_S = 3
const NEAR_MS = 800
const CONFIG = {
  TABLE_ITEMS_TTL: String(TTL_S),
  QUERY_RESULTS_TTL: String(TTL_S),
  NEGATIVE_TTL: String(TTL_S),
  TABLE_DETAILS_TTL: String(TTL_S),
  TABLE_LIST_TTL: String(TTL_S),
  STALE_THRESHOLD: '0.5',
  NEAR_CACHE_TTL_MS: String(NEAR_MS),
  // Generous: a slow call on a loaded machine should not turn into stale-if-error (allowed, but it tests less).
  DYNAMO_TIMEOUT_MS: '10000',
}
const RUNS = Number(process.env.DIFFERENTIAL_RUNS ?? 6)
/** Judge every run instead of stopping at the first failing one (to count what is wrong, e.g. at an old commit). */
const KEEP_GOING = process.env.DIFFERENTIAL_KEEP_GOING === '1'
const SEED = process.env.DIFFERENTIAL_SEED === undefined ? Date.now() ^ (Math.random() * 0x7fffffff) : Number(process.env.DIFFERENTIAL_SEED)

const services = await startServices(t)
const dynamo = testDynamo(t, services.dynamoEndpoint)

// ---- the truth: every key's history of versions -------------------------------------------------

interface Version {
  /** 0: the item does not exist. */
  ver: number
  /** Bounds on when the write happened: before it was sent, and once it was known to be done. */
  wStart: number
  wEnd: number
}
const keyOf = (table: string, pk: string, sk: number) => `${table}|${pk}|${sk}`
const history = new Map<string, Version[]>()
const INITIAL = Number.NEGATIVE_INFINITY
/** Keys that exist from the start, and two that do not (written later by some runs). */
const WRITE_KEYS: Array<[string, number]> = [
  ['p0', 4],
  ['p1', 0],
  ['p1', 2],
  ['p1', 4],
  ['p1', 6],
  ['p0', 1],
  ['p2', 3],
  ['p3', 5],
  ['p0', 100],
  ['p0', 101],
]
const CREATED = new Set(['p0|100', 'p0|101'])
/** Indexes in WRITE_KEYS of the keys a route's answer shows (all keys may show in scans and GSI queries). */
const SHOWN_KEYS: Partial<Record<string, number[]>> = { item: [0], itemCreated: [8], query: [1, 2, 3] }

for (const table of TABLES) {
  await createTable(dynamo, table, { pk: 'S', sk: 'N' }, HAS_GSI[table] ? { [GSI]: { g: 'S', sk: 'N' } } : {})
  await putItems(
    dynamo,
    table,
    PKS.flatMap((pk) => SKS.map((sk) => typedItem(itemContent(table, pk, sk, initialVersion(sk))))),
  )
  for (const pk of PKS) for (const sk of SKS) history.set(keyOf(table, pk, sk), [{ ver: initialVersion(sk), wStart: INITIAL, wEnd: INITIAL }])
  for (const key of CREATED) {
    const [pk, sk] = key.split('|') as [string, string]
    history.set(keyOf(table, pk, Number(sk)), [{ ver: 0, wStart: INITIAL, wEnd: INITIAL }])
  }
}
let nextVersion = 10

const fleet = await startFleet(t, services, CONFIG, { apiCount: 2, workerQueues: 'batch-write' })
const [api0, api1] = fleet.apis as [(typeof fleet.apis)[0], (typeof fleet.apis)[0]]
const apis = [api0, api1]

// ---- commands ----------------------------------------------------------------------------------

const ROUTES = ['items', 'itemsIndex', 'item', 'itemCreated', 'query', 'queryIndex', 'details', 'tables'] as const
type Route = (typeof ROUTES)[number]
const pathOf = (table: string, route: Route) =>
  ({
    items: `/tables/${table}/items?limit=7`,
    itemsIndex: `/tables/${table}/items?limit=7&index=${GSI}`,
    item: `/tables/${table}/items/p0?sk=4`,
    itemCreated: `/tables/${table}/items/p0?sk=100`,
    query: `/tables/${table}/query?pk=p1&limit=5`,
    queryIndex: `/tables/${table}/query?pk=g0&index=${GSI}&limit=5`,
    details: `/tables/${table}`,
    tables: '/tables',
  })[route]

type Command =
  | { kind: 'read'; api: number; table: number; route: Route; gzip: boolean; noCache: boolean; revalidate: boolean; delay: number }
  | { kind: 'fanout'; apis: readonly number[]; route: Route; gzip: boolean; noCache: boolean; delay: number }
  | { kind: 'write'; via: 'direct' | 'batch'; table: number; keys: number[]; delay: number }
  | { kind: 'invalidate'; api: number; table: number | 'all'; delay: number }
  | { kind: 'pause'; ms: number }
  /** A user's round trip: read (both processes), write to DynamoDB, invalidate, read again at once. */
  | { kind: 'writeInvalidateRead'; table: number; keys: number[]; all: boolean; api: number; route: Route; gzip: boolean; delay: number }

const delay = fc.integer({ min: 0, max: 30 })
const route = fc.constantFrom(...ROUTES)
const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 14,
    arbitrary: fc.record({
      kind: fc.constant('read' as const),
      api: fc.nat(1),
      table: fc.nat(2),
      route,
      gzip: fc.boolean(),
      noCache: fc.boolean(),
      revalidate: fc.boolean(),
      delay,
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('fanout' as const),
      apis: fc.constantFrom([0], [1], [0, 1]),
      route,
      gzip: fc.boolean(),
      noCache: fc.boolean(),
      delay,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      via: fc.constantFrom('direct' as const, 'batch' as const),
      table: fc.nat(2),
      keys: fc.uniqueArray(fc.nat(WRITE_KEYS.length - 1), { minLength: 1, maxLength: 3 }),
      delay,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('invalidate' as const), api: fc.nat(1), table: fc.oneof(fc.nat(2), fc.constant('all' as const)), delay }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('pause' as const), ms: fc.integer({ min: 100, max: 1200 }) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('writeInvalidateRead' as const),
      table: fc.nat(2),
      keys: fc.uniqueArray(fc.nat(WRITE_KEYS.length - 1), { minLength: 1, maxLength: 2 }),
      all: fc.boolean(),
      api: fc.nat(1),
      route: fc.constantFrom<Route>('items', 'itemsIndex', 'item', 'itemCreated', 'query', 'queryIndex'),
      gzip: fc.boolean(),
      delay,
    }),
  },
)
const runArb = fc.array(fc.array(command, { minLength: 1, maxLength: 8 }), { minLength: 3, maxLength: 10 })

// ---- execution ---------------------------------------------------------------------------------

interface Read {
  api: number
  table: string | null
  route: Route
  path: string
  noCache: boolean
  gzip: boolean
  /** The ETag sent in If-None-Match, and the body it stands for. */
  inm?: { etag: string; text: string }
  answer: Answer
}
interface Invalidation {
  table: string | 'all'
  start: number
  end: number
}
const reads: Read[] = []
const invalidations: Invalidation[] = []
/** Completed batch writes: the version each key got, and when the test saw the batch completed. */
const batchWrites: Array<{ table: string; end: number; versions: Map<string, number> }> = []
/** Bodies by path and ETag, for If-None-Match and for judging 304s. */
const bodies = new Map<string, Map<string, string>>()
/** Writes to one key are serialized, so each key's history is one sequence. */
const keyTails = new Map<string, Promise<void>>()
const pending = new Set<Promise<void>>()
const executionErrors: string[] = []

async function read(api: number, table: string | null, r: Route, gzip: boolean, noCache: boolean, revalidate: boolean) {
  const path = table === null ? pathOf('', 'tables') : pathOf(table, r)
  const known = bodies.get(path)
  const last = revalidate && known ? [...known][known.size - 1] : undefined
  const headers: Record<string, string> = {
    ...bearer('read'),
    ...(gzip ? { 'accept-encoding': 'gzip' } : {}),
    ...(noCache ? { 'cache-control': 'no-cache' } : {}),
    ...(last ? { 'if-none-match': last[0] } : {}),
  }
  const answer = await apis[api]!.request(path, { headers })
  reads.push({ api, table, route: r, path, noCache, gzip, ...(last ? { inm: { etag: last[0], text: last[1] } } : {}), answer })
  const etag = answer.headers.etag as string | undefined
  if (answer.status === 200 && etag) {
    if (!bodies.has(path)) bodies.set(path, new Map())
    const byTag = bodies.get(path)!
    byTag.delete(etag)
    byTag.set(etag, answer.text)
  }
}

/** Takes the write slots of `keys` in order; resolves once the earlier writes to them are done. */
function lockKeys(keys: string[]): { ready: Promise<void>; release: () => void } {
  let release!: () => void
  const done = new Promise<void>((resolve) => (release = resolve))
  const before = keys.map((k) => keyTails.get(k) ?? Promise.resolve())
  for (const k of keys) keyTails.set(k, done)
  return { ready: Promise.all(before).then(() => {}), release }
}

async function write(via: 'direct' | 'batch', table: string, keyIndexes: number[]) {
  const targets = keyIndexes.map((i) => WRITE_KEYS[i]!)
  const lock = lockKeys(targets.map(([pk, sk]) => keyOf(table, pk, sk)))
  await lock.ready
  try {
    const versions = targets.map(([pk, sk]) => {
      const v: Version = { ver: nextVersion++, wStart: Date.now(), wEnd: Number.POSITIVE_INFINITY }
      history.get(keyOf(table, pk, sk))!.push(v)
      return { pk, sk, v }
    })
    if (via === 'direct') {
      await Promise.all(
        versions.map(async ({ pk, sk, v }) => {
          await dynamo.send(new PutItemCommand({ TableName: table, Item: typedItem(itemContent(table, pk, sk, v.ver)) }))
          v.wEnd = Date.now()
        }),
      )
      return
    }
    const operations = versions.map(({ pk, sk, v }) => ({ put: typedItem(itemContent(table, pk, sk, v.ver)) }))
    // Typed JSON as the API takes it: {"S": ...}, {"N": "..."}.
    const accepted = await api0.request(`/tables/${table}/batches`, { method: 'POST', headers: bearer('write'), body: { format: 'typed', operations } })
    if (accepted.status !== 202) throw new Error(`POST /tables/${table}/batches: ${accepted.status} ${accepted.text}`)
    const { id } = JSON.parse(accepted.text) as { id: string }
    await waitFor(
      `batch ${id} to complete`,
      async () => {
        const res = await api1.request(`/batches/${encodeURIComponent(id)}`, { headers: bearer('write') })
        const status = (JSON.parse(res.text) as { status?: string }).status
        if (status === 'failed') throw new Error(`batch ${id} failed: ${res.text}`)
        return status === 'completed'
      },
      60_000,
      25,
    )
    const done = Date.now()
    for (const { v } of versions) v.wEnd = done
    batchWrites.push({ table, end: done, versions: new Map(versions.map(({ pk, sk, v }) => [keyOf(table, pk, sk), v.ver])) })
    // Read what the batch wrote at once, from both processes: the judge holds these to the batch's versions.
    const shown = (['item', 'itemCreated', 'query'] as const).filter((route) => SHOWN_KEYS[route]!.some((k) => keyIndexes.includes(k)))
    await Promise.all(shown.flatMap((route) => [0, 1].map((api) => read(api, table, route, true, false, false))))
  } finally {
    lock.release()
  }
}

async function invalidate(api: number, table: string | 'all') {
  const start = Date.now()
  const res = await apis[api]!.request(table === 'all' ? '/cache' : `/tables/${table}/cache`, { method: 'DELETE', headers: bearer('admin') })
  if (res.status !== 200) throw new Error(`DELETE ${table === 'all' ? '/cache' : `/tables/${table}/cache`}: ${res.status} ${res.text}`)
  invalidations.push({ table, start, end: res.end })
}

function background(work: Promise<void>) {
  const tracked = work.catch((err: Error) => {
    executionErrors.push(err.message)
  })
  pending.add(tracked)
  tracked.finally(() => pending.delete(tracked))
}

async function runCommand(c: Command) {
  if (c.kind === 'pause') return sleep(c.ms)
  await sleep(c.delay)
  switch (c.kind) {
    case 'read':
      return read(c.api, ROUTES_WITHOUT_TABLE.has(c.route) ? null : TABLES[c.table]!, c.route, c.gzip, c.noCache, c.revalidate)
    case 'fanout':
      await Promise.all(
        c.apis.flatMap((api) => TABLES.map((table) => read(api, ROUTES_WITHOUT_TABLE.has(c.route) ? null : table, c.route, c.gzip, c.noCache, false))),
      )
      return
    case 'write':
      // A batch is followed in the background, so the next steps run while the worker writes it.
      if (c.via === 'batch') return background(write('batch', TABLES[c.table]!, c.keys))
      return write('direct', TABLES[c.table]!, c.keys)
    case 'invalidate':
      return invalidate(c.api, c.table === 'all' ? 'all' : TABLES[c.table]!)
    case 'writeInvalidateRead': {
      const table = TABLES[c.table]!
      const both = () => Promise.all([0, 1].map((api) => read(api, table, c.route, c.gzip, false, false)))
      await both()
      // Write keys the read shows, so a stale answer would show it.
      const shown = SHOWN_KEYS[c.route] ?? WRITE_KEYS.map((_, i) => i)
      await write('direct', table, [...new Set(c.keys.map((k) => shown[k % shown.length]!))])
      await invalidate(c.api, c.all ? 'all' : table)
      await both()
      return
    }
  }
}
const ROUTES_WITHOUT_TABLE = new Set<Route>(['tables'])

// ---- the oracle --------------------------------------------------------------------------------

/** The earliest start among this test's requests that ended after `time` (every load happens in one). */
function earliestOpenAfter(time: number): number {
  let min = Number.POSITIVE_INFINITY
  for (const span of fleet.log.spans) if (span.end > time && span.start < min) min = span.start
  return min
}

const header = (a: Answer, name: string) => {
  const v = a.headers[name]
  return Array.isArray(v) ? v.join(', ') : v
}
/** Every kind's TTL is TTL_S here, negative entries (NEGATIVE_TTL) included. */
const ttlOf = () => TTL_S
const opaque = (etag: string) => etag.replace(/^W\//, '')

interface Bound {
  at: number
  why: string
}

/** Scan order of each table's keys (dynalite's order is fixed by the key), read directly. */
async function scanOrders(): Promise<Map<string, string[]>> {
  const orders = new Map<string, string[]>()
  for (const table of TABLES) {
    const out = await dynamo.send(new ScanCommand({ TableName: table }))
    orders.set(
      table,
      (out.Items ?? []).map((i) => `${i.pk!.S}|${i.sk!.N}`),
    )
  }
  return orders
}

/** Reads of `path` starting after `after` must not be older than `bound` (a no-cache answer's own bound). */
interface NoCacheBarrier {
  path: string
  after: number
  bound: number
  what: string
}

/** Judges every read of a run; returns one line per wrong answer. */
function judgeAll(runReads: Read[], orders: Map<string, string[]>): string[] {
  const problems: string[] = []
  // No-cache answers act as barriers for later reads of the same path.
  const noCacheBarriers: NoCacheBarrier[] = []
  for (const n of reads) {
    if (!n.noCache || n.answer.status !== 200 || /stale-if-error|bypass/.test(header(n.answer, 'cache-status') ?? '')) continue
    let settled = n.answer.end
    for (const other of reads) if (other.path === n.path && other.answer.start < n.answer.end) settled = Math.max(settled, other.answer.end)
    noCacheBarriers.push({
      path: n.path,
      after: settled + NEAR_MS,
      bound: earliestOpenAfter(n.answer.start),
      what: `no-cache read at ${n.answer.start} on api${n.api}`,
    })
  }

  for (const r of runReads) {
    const a = r.answer
    const what = `api${r.api} ${r.gzip ? 'gzip' : 'plain'}${r.noCache ? ' no-cache' : ''}${r.inm ? ' If-None-Match' : ''} GET ${r.path} [${a.start}..${a.end}] -> ${a.status} ${header(a, 'x-cache') ?? ''} age=${header(a, 'age') ?? '-'} (${header(a, 'cache-status') ?? ''})`
    const wrong: string[] = []
    const fail = (why: string) => wrong.push(why)
    judgeOne(r, fail, orders, noCacheBarriers)
    if (wrong.length > 0)
      problems.push(
        `${what}: ${wrong[0]}${wrong.length > 1 ? ` (and ${wrong.length - 1} more: ${wrong.slice(1, 3).join('; ')}${wrong.length > 3 ? '; ...' : ''})` : ''}`,
      )
  }
  return problems
}

const categories = new Map<string, number>()
/** Counts a wrong answer under the first kind of fault it shows. */
function categorise(line: string) {
  const kind = /ANOTHER TABLE/.test(line)
    ? "another table's data"
    : /ANOTHER (QUERY|INDEX|ITEM)|INDEX_NOT_FOUND/.test(line)
      ? 'another index, query or item'
      : /TOO OLD|past the entry's TTL/.test(line)
        ? 'too old'
        : 'other'
  categories.set(kind, (categories.get(kind) ?? 0) + 1)
}

/** Calls `fail` for each thing wrong with one answer. */
function judgeOne(r: Read, fail: (why: string) => void, orders: Map<string, string[]>, noCacheBarriers: NoCacheBarrier[]) {
  const a = r.answer
  const status = header(a, 'cache-status') ?? ''
  const sie = /stale-if-error/.test(status)
  const age = Number(header(a, 'age') ?? 0)

  if (!r.gzip && header(a, 'content-encoding')) fail(`a plain client got Content-Encoding ${header(a, 'content-encoding')}`)
  if (a.status === 503) return // DynamoDB unavailable (a loaded machine): an allowed answer, nothing to compare
  if (r.noCache && a.status < 400 && !/^(MISS|BYPASS)$/.test(header(a, 'x-cache') ?? '') && !sie) fail('a no-cache read was answered from the cache')

  // Which body this answer stands for.
  let text = a.text
  if (a.status === 304) {
    if (!r.inm) {
      fail('304 without If-None-Match')
      return
    }
    if (opaque(header(a, 'etag') ?? '') !== opaque(r.inm.etag)) fail(`304 with ETag ${header(a, 'etag')} for If-None-Match ${r.inm.etag}`)
    text = r.inm.text
  }
  const table = r.table
  const indexRoute = r.route === 'itemsIndex' || r.route === 'queryIndex'
  if (table !== null && indexRoute && !HAS_GSI[table]) {
    if (a.status !== 400 || !/DC_ERR_INDEX_NOT_FOUND/.test(a.text)) fail(`expected 400 DC_ERR_INDEX_NOT_FOUND: ${a.text.slice(0, 200)}`)
    return
  }
  const itemRoute = r.route === 'item' || r.route === 'itemCreated'
  if (!(a.status === 200 || a.status === 304 || (a.status === 404 && itemRoute))) {
    fail(`unexpected status: ${a.text.slice(0, 200)}`)
    return
  }
  let body: Record<string, unknown>
  try {
    body = JSON.parse(text) as Record<string, unknown>
  } catch {
    fail(`not JSON: ${text.slice(0, 100)}`)
    return
  }

  // Isolation: what the answer must be about, whatever its age.
  const seen: Array<{ key: string; ver: number }> = []
  const checkItem = (item: unknown, where: string): DocItem | undefined => {
    const i = item as DocItem
    if (typeof i !== 'object' || i === null) return void fail(`${where}: not an item`)
    if (i.tbl !== table) return void fail(`${where}: an item of ANOTHER TABLE (${i.tbl}): ${JSON.stringify(i)}`)
    if (!history.has(keyOf(table!, i.pk, i.sk))) return void fail(`${where}: a key the table never had: ${JSON.stringify(i)}`)
    if (!sameItem(i, itemContent(table!, i.pk, i.sk, i.ver))) return void fail(`${where}: content of no version written: ${JSON.stringify(i)}`)
    seen.push({ key: keyOf(table!, i.pk, i.sk), ver: i.ver })
    return i
  }
  switch (r.route) {
    case 'tables':
      // Other tables may exist when DYNAMODB_ENDPOINT points at a shared DynamoDB.
      if (!Array.isArray(body.tables) || TABLES.some((name) => !(body.tables as string[]).includes(name))) fail(`table list ${JSON.stringify(body.tables)}`)
      break
    case 'details': {
      if (body.name !== table) fail(`details of ANOTHER TABLE (${body.name})`)
      const indexes = ((body.indexes as Array<{ name: string }>) ?? []).map((i) => i.name).join(',')
      if (indexes !== (HAS_GSI[table!] ? GSI : '')) fail(`details with indexes '${indexes}'`)
      break
    }
    case 'item':
    case 'itemCreated': {
      const sk = r.route === 'item' ? 4 : 100
      if (a.status === 404) {
        if (body.code !== 'DC_ERR_ITEM_NOT_FOUND') fail(`404 ${text.slice(0, 200)}`)
        // The message names the table: a negative entry of another table shows here.
        else if (!String(body.message).endsWith(` ${table}`)) fail(`a 404 of ANOTHER TABLE: ${body.message}`)
        seen.push({ key: keyOf(table!, 'p0', sk), ver: 0 })
        break
      }
      const i = checkItem(body, 'item')
      if (i && (i.pk !== 'p0' || i.sk !== sk)) fail(`ANOTHER ITEM (${i.pk}/${i.sk})`)
      break
    }
    default: {
      const items = body.items
      if (!Array.isArray(items) || body.count !== items.length) {
        fail(`not a page: ${text.slice(0, 200)}`)
        break
      }
      const limit = r.route === 'query' || r.route === 'queryIndex' ? 5 : 7
      if (items.length > limit) fail(`${items.length} items for limit ${limit}`)
      const checked = items.map((item, n) => checkItem(item, `items[${n}]`))
      if (checked.some((i) => i === undefined)) break
      const page = checked as DocItem[]
      const keys = page.map((i) => `${i.pk}|${i.sk}`)
      if (new Set(keys).size !== keys.length) fail(`a key twice in one page: ${keys.join(' ')}`)
      if (r.route === 'query' && keys.join(' ') !== 'p1|0 p1|1 p1|2 p1|3 p1|4') fail(`ANOTHER QUERY's page: ${keys.join(' ')}`)
      if (r.route === 'queryIndex') {
        if (page.some((i) => i.g !== 'g0')) fail(`ANOTHER QUERY's page (items outside g0): ${keys.join(' ')}`)
        if (page.some((i, n) => n > 0 && i.sk < page[n - 1]!.sk)) fail(`GSI page out of sort-key order: ${keys.join(' ')}`)
      }
      if (r.route === 'itemsIndex' && page.some((i) => i.g === undefined)) fail(`ANOTHER INDEX's page (items outside the sparse GSI): ${keys.join(' ')}`)
      if (r.route === 'items') {
        // A table scan page: 7 keys in the table's scan order, skipping none of the keys that always existed.
        const order = orders.get(table!)!
        const positions = keys.map((k) => order.indexOf(k))
        if (items.length !== 7) fail(`${items.length} items in a scan page of a table of 32 or more`)
        if (positions.some((p, n) => p < 0 || (n > 0 && p <= positions[n - 1]!))) fail(`not a page of the table's scan order: ${keys.join(' ')}`)
        else {
          const skipped = order.slice(0, positions[positions.length - 1]! + 1).filter((k) => !CREATED.has(k) && !keys.includes(k))
          if (skipped.length > 0) fail(`scan page skips ${skipped.join(' ')}: ${keys.join(' ')}`)
        }
      }
    }
  }

  // Freshness: the answer's data must have been current at some time >= the bound.
  if (seen.length === 0) return
  const bounds: Bound[] = []
  if (!sie) {
    const ttl = ttlOf()
    if (age >= ttl + (a.end - a.start) / 1000 + 1) fail(`Age ${age} s is past the entry's TTL of ${ttl} s`)
  }
  if (r.noCache && !sie) bounds.push({ at: earliestOpenAfter(a.start), why: 'a no-cache read is loaded by a request open when it started' })
  bounds.push({ at: earliestOpenAfter(a.start - (age + 1) * 1000), why: `Age ${age}: loaded by a request open ${age + 1} s before it started` })
  for (const inv of invalidations) {
    if (inv.end < a.start && (inv.table === 'all' || inv.table === table))
      bounds.push({
        at: inv.start,
        why: `DELETE ${inv.table === 'all' ? '/cache' : `/tables/${inv.table}/cache`} at ${inv.start}..${inv.end} completed before`,
      })
  }
  for (const n of noCacheBarriers) if (n.path === r.path && n.after < a.start) bounds.push({ at: n.bound, why: `the ${n.what} (settled at ${n.after})` })
  const bound = bounds.reduce((m, b) => (b.at > m.at ? b : m))
  for (const { key, ver } of seen) {
    const versions = history.get(key)!
    const i = versions.findIndex((v) => v.ver === ver)
    if (i < 0) {
      fail(`${key} v${ver}: a version never written${ver === 0 ? ' (404 for an item that always existed)' : ''}`)
      continue
    }
    if (versions[i]!.wStart > a.end) fail(`${key} v${ver} written after the answer`)
    const next = versions[i + 1]
    if (next && next.wEnd <= bound.at) {
      fail(`${key} v${ver} TOO OLD: v${next.ver} was written by ${next.wEnd}, ${bound.at - next.wEnd} ms before ${bound.at} (${bound.why})`)
    }
    for (const batch of batchWrites) {
      const written = batch.end < a.start ? batch.versions.get(key) : undefined
      if (written !== undefined && i < versions.findIndex((v) => v.ver === written)) {
        fail(`${key} v${ver} TOO OLD: a batch wrote v${written} and completed at ${batch.end}, before the read began at ${a.start} (scoped invalidation)`)
      }
    }
  }
}

// ---- the property ------------------------------------------------------------------------------

let runs = 0
let totalProblems = 0
t.test(
  'random interleavings of reads, invalidations and writes across two API processes: every answer is of its table, index and query, and fresh as documented',
  async (t) => {
    t.comment(`fast-check seed ${SEED}, ${RUNS} runs (DIFFERENTIAL_SEED / DIFFERENTIAL_RUNS to replay or soak)`)
    const counts = new Map<string, number>()
    const failures: string[] = []
    const property = fc.asyncProperty(runArb, async (steps) => {
      runs++
      const from = reads.length
      const began = Date.now()
      // Each run starts cold, so its first reads are concurrent misses.
      await invalidate(runs % 2, 'all')
      for (const step of steps) await Promise.all(step.map(runCommand))
      await Promise.all([...pending])
      const runReads = reads.slice(from)
      for (const r of runReads) {
        const k = `${r.answer.status} ${header(r.answer, 'x-cache') ?? ''}`.trim()
        counts.set(k, (counts.get(k) ?? 0) + 1)
      }
      const errors = executionErrors.splice(0)
      const problems = [...errors.map((e) => `command failed: ${e}`), ...judgeAll(runReads, await scanOrders())]
      totalProblems += problems.length
      if (process.env.DIFFERENTIAL_VERBOSE === '1')
        t.comment(`run ${runs}: ${steps.length} steps, ${runReads.length} answers, ${problems.length} wrong, ${Date.now() - began} ms`)
      for (const p of problems) categorise(p)
      if (problems.length > 0) {
        failures.push(`run ${runs}: ${problems.length} of ${runReads.length} answers wrong:\n  ${problems.slice(0, 40).join('\n  ')}`)
        if (!KEEP_GOING) throw new Error(`${problems.length} of ${runReads.length} answers wrong in run ${runs}`)
      }
    })
    const path = process.env.DIFFERENTIAL_PATH
    const details = await fc.check(property, {
      numRuns: RUNS,
      seed: SEED,
      ...(path ? { path } : {}),
      endOnFailure: process.env.DIFFERENTIAL_SHRINK !== '1',
    })
    if (details.failed || totalProblems > 0) {
      for (const f of failures) t.comment(f)
      if (details.failed) {
        t.comment(`counterexample (steps of concurrent commands): ${JSON.stringify(details.counterexample)}`)
        const thrown = details.errorInstance as Error | undefined
        if (thrown) t.comment(`the run threw: ${thrown.stack ?? String(thrown)}`)
        t.fail(`differential check failed: replay with DIFFERENTIAL_SEED=${details.seed} DIFFERENTIAL_PATH=${details.counterexamplePath}`)
      } else {
        t.fail(`differential check failed in ${failures.length} of ${runs} runs: replay with DIFFERENTIAL_SEED=${details.seed} DIFFERENTIAL_KEEP_GOING=1`)
      }
    } else {
      // A property that judged nothing would pass too: it must have run and checked answers.
      t.ok(runs > 0, `${runs} runs`)
      t.ok(reads.length > runs, `${reads.length} answers checked, none wrong`)
    }
    t.comment(
      `${runs} runs, ${reads.length} answers (${[...counts]
        .sort()
        .map(([k, v]) => `${k}: ${v}`)
        .join(
          ', ',
        )}), ${invalidations.length} invalidations, ${nextVersion - 10} versions written, ${totalProblems} wrong answers${categories.size > 0 ? ` (${[...categories].map(([k, v]) => `${k}: ${v}`).join(', ')})` : ''}`,
    )
  },
)
