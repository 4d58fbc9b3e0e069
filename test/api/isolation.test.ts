/**
 * Issue 12, the reproduction: three tables with one key schema and overlapping keys, two API processes,
 * 25 rounds of concurrent cold and `Cache-Control: no-cache` reads of every read kind of every table,
 * then the same reads again from the cache. Every item says which table it is in, so an answer
 * carrying another table's data is seen at once. Before the fix (2316779) concurrent misses of two
 * tables with the same parameters shared one load in a process and answered with each other's items.
 */
import t from 'tap'
import { type Answer, bearer, type DocItem, GSI, initialVersion, itemContent, PKS, SKS, sameItem, startFleet, typedItem } from '../helpers/isolation-fleet.ts'
import { startServices } from '../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../helpers/tables.ts'

const TABLES = ['iso-a', 'iso-b', 'iso-c'] as const
/** iso-a and iso-b have the same GSI; iso-c has none, so the three tables' details all differ. */
const HAS_GSI: Record<string, boolean> = { 'iso-a': true, 'iso-b': true, 'iso-c': false }
const ROUNDS = 25

const services = await startServices(t)
const dynamo = testDynamo(t, services.dynamoEndpoint)
for (const table of TABLES) {
  await createTable(dynamo, table, { pk: 'S', sk: 'N' }, HAS_GSI[table] ? { [GSI]: { g: 'S', sk: 'N' } } : {})
  await putItems(
    dynamo,
    table,
    PKS.flatMap((pk) => SKS.map((sk) => typedItem(itemContent(table, pk, sk, initialVersion(sk))))),
  )
}
const expected = (table: string, pk: string, sk: number) => itemContent(table, pk, sk, initialVersion(sk))

const fleet = await startFleet(t, services, { NEAR_CACHE_TTL_MS: '1000' }, { apiCount: 2 })

type Route = 'items' | 'item' | 'query' | 'details'
const ROUTES: Route[] = ['items', 'item', 'query', 'details']
const pathOf = (table: string, route: Route) =>
  ({
    items: `/tables/${table}/items?limit=7`,
    item: `/tables/${table}/items/p0?sk=4`,
    query: `/tables/${table}/query?pk=p1&limit=5`,
    details: `/tables/${table}`,
  })[route]

/** What is wrong with an answer to `route` of `table` ('' when nothing); `foreign` when it holds another table's data. */
function judge(table: string, route: Route, answer: Answer): { problem: string; foreign: boolean } {
  if (answer.status !== 200) return { problem: `status ${answer.status}: ${answer.text.slice(0, 200)}`, foreign: false }
  let body: { items?: unknown[]; count?: number; name?: string; indexes?: Array<{ name: string }>; tbl?: string }
  try {
    body = JSON.parse(answer.text)
  } catch {
    return { problem: `not JSON: ${answer.text.slice(0, 100)}`, foreign: false }
  }
  const foreignItem = (items: unknown[]) => items.some((i) => (i as DocItem | null)?.tbl !== table)
  switch (route) {
    case 'details': {
      if (body.name !== table) return { problem: `details of ${body.name}`, foreign: true }
      const indexes = (body.indexes ?? []).map((i) => i.name).join(',')
      return { problem: indexes === (HAS_GSI[table] ? GSI : '') ? '' : `indexes ${indexes}`, foreign: false }
    }
    case 'item':
      if (body.tbl !== table) return { problem: `the item of ${body.tbl}`, foreign: true }
      return { problem: sameItem(body, expected(table, 'p0', 4)) ? '' : `item ${answer.text}`, foreign: false }
    case 'items':
    case 'query': {
      const items = body.items ?? []
      if (foreignItem(items)) return { problem: `items of ${[...new Set(items.map((i) => (i as DocItem).tbl))].join(',')}`, foreign: true }
      const want = route === 'items' ? 7 : 5
      if (items.length !== want || body.count !== want) return { problem: `${items.length} items, count ${body.count}`, foreign: false }
      const bad = items.find((i) => !sameItem(i, expected(table, (i as DocItem).pk, (i as DocItem).sk)))
      if (bad) return { problem: `item ${JSON.stringify(bad)}`, foreign: false }
      if (route === 'query' && items.map((i) => `${(i as DocItem).pk}/${(i as DocItem).sk}`).join(',') !== 'p1/0,p1/1,p1/2,p1/3,p1/4') {
        return { problem: `query page ${JSON.stringify(items)}`, foreign: false }
      }
      return { problem: '', foreign: false }
    }
  }
}

t.test(`${ROUNDS} rounds of concurrent cold and no-cache reads of 3 tables across 2 API processes: no answer with another table's data`, async (t) => {
  let answers = 0
  let foreign = 0
  const problems: string[] = []
  const outcomes = new Map<string, number>()
  const foreignByWave = new Map<string, number>()
  for (let round = 0; round < ROUNDS; round++) {
    // Every round starts cold: all entries (and both processes' near caches) invalid.
    const cleared = await fleet.apis[round % 2]!.request('/cache', { method: 'DELETE', headers: bearer('admin') })
    t.equal(cleared.status, 200, `round ${round}: DELETE /cache`)
    // First wave: cold and no-cache reads of every kind of every table, on both processes at once;
    // second wave: the same reads answered from the cache (Redis or a near cache) the first wave filled.
    for (const wave of ['cold', 'cached'] as const) {
      const reads = fleet.apis.flatMap((api, p) =>
        TABLES.flatMap((table) =>
          ROUTES.flatMap((route) =>
            (wave === 'cold' ? [false, true] : [false]).map((noCache, i) => ({
              table,
              route,
              what: `round ${round} ${wave} api${p} ${noCache ? 'no-cache ' : ''}${pathOf(table, route)}`,
              promise: api.request(pathOf(table, route), {
                headers: {
                  ...bearer('read'),
                  ...(noCache ? { 'cache-control': 'no-cache' } : {}),
                  ...((p + i + round) % 2 === 0 ? { 'accept-encoding': 'gzip' } : {}),
                },
              }),
            })),
          ),
        ),
      )
      for (const read of reads) {
        const answer = await read.promise
        answers++
        const outcome = `${wave} ${answer.headers['x-cache']}`
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
        const verdict = judge(read.table, read.route, answer)
        if (verdict.foreign) {
          foreign++
          foreignByWave.set(wave, (foreignByWave.get(wave) ?? 0) + 1)
        }
        if (verdict.problem) problems.push(`${read.what}: ${verdict.problem}`)
      }
    }
  }
  t.comment(
    `${answers} answers (${[...outcomes].map(([k, v]) => `${k}: ${v}`).join(', ')}); ${foreign} with another table's data (${[...foreignByWave].map(([k, v]) => `${k}: ${v}`).join(', ') || 'none'}), ${problems.length} wrong in all`,
  )
  for (const p of problems.slice(0, 10)) t.comment(p)
  t.equal(foreign, 0, `answers with another table's data (of ${answers})`)
  t.equal(problems.length, 0, `wrong answers of any kind (of ${answers})`)
})
