/**
 * Issue 14, item 5: POST /tables/:table/invalidations, for writers that are not dynacache. A write made
 * behind the cache's back becomes visible in every API process once announced; `scope: table` drops the
 * whole table; two tables of one shape and two tenants stay apart; every invalid request answers 400
 * with its code and invalidates nothing.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PutItemCommand } from '@aws-sdk/client-dynamodb'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { build, uniquePrefix } from '../../helpers/app.ts'
import { startServices } from '../../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../../helpers/tables.ts'
import { waitFor } from '../../helpers/wait.ts'

const services = await startServices(t)
const dynamo = testDynamo(t, services.dynamoEndpoint)
const TABLES = ['inv-a', 'inv-b', 'inv-c'] as const
const BIG = '12345678901234567890123456789012345678'
for (const table of TABLES) {
  await createTable(dynamo, table, { pk: 'S', sk: 'N' }, { byG: { g: 'S', sk: 'N' } })
  await putItems(
    dynamo,
    table,
    [0, 1].map((sk) => ({ pk: { S: 'p' }, sk: { N: String(sk) }, g: { S: 'g1' }, v: { N: '1' }, tbl: { S: table } })),
  )
  await putItems(dynamo, table, [{ pk: { S: 'big' }, sk: { N: BIG }, v: { N: '1' } }])
}

const KEY = { acme: 'acme-inv-key-00000000001', acmeRead: 'acme-inv-read-key-000001', globex: 'globex-inv-key-000000001' } as const
const dir = await mkdtemp(join(tmpdir(), 'dc-invalidations-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const keysFile = join(dir, 'keys.json')
await writeFile(
  keysFile,
  JSON.stringify([
    { key: KEY.acme, scopes: ['read', 'write'], tenant: 'acme', tables: ['inv-a', 'inv-b'] },
    { key: KEY.acmeRead, scopes: ['read'], tenant: 'acme', tables: ['inv-a', 'inv-b'] },
    { key: KEY.globex, scopes: ['read', 'write'], tenant: 'globex', tables: ['inv-c'] },
  ]),
)
// Two API processes' worth of apps on one Redis prefix, each with a near cache that would hold an entry a minute.
const config = { REDIS_PREFIX: uniquePrefix(), API_KEYS_FILE: keysFile, NEAR_CACHE_TTL_MS: '60000' }
const apps = [await build(t, services, config), await build(t, services, config)] as const
for (const [i, app] of apps.entries()) await waitFor(`app ${i}'s near cache to go live`, async () => app.cache.nearCacheLive(), 20_000, 20)

const bearer = (key: string) => ({ authorization: `Bearer ${key}` })
type Doc = { v?: number; tbl?: string; count?: number; items: Array<{ v: number }> }
const doc = (res: { json(): unknown }) => res.json() as Doc
const keyOf = (table: string) => (table === 'inv-c' ? KEY.globex : KEY.acme)
const read = (app: FastifyInstance, table: string, path: string) => app.inject({ url: `/tables/${table}${path}`, headers: bearer(keyOf(table)) })
const invalidate = (app: FastifyInstance, table: string, payload: unknown, key: string = keyOf(table)) =>
  app.inject({
    method: 'POST',
    url: `/tables/${table}/invalidations`,
    headers: { ...bearer(key), 'content-type': 'application/json' },
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
  })

/** Reads `path` on every app twice, so each holds it (the second is a HIT). */
async function warm(t: Test, table: string, path: string) {
  for (const app of apps) {
    await read(app, table, path)
    t.equal((await read(app, table, path)).headers['x-cache'], 'HIT', `${table}${path} cached`)
  }
}

/** A write by another client, straight to DynamoDB: the cache does not know of it. */
const writeBehind = (table: string, pk: string, sk: string, v: number, g = 'g1') =>
  dynamo.send(new PutItemCommand({ TableName: table, Item: { pk: { S: pk }, sk: { N: sk }, g: { S: g }, v: { N: String(v) }, tbl: { S: table } } }))

t.test('a write by another client, announced with its images, is seen by every API process; another table of one shape keeps its entries', async (t) => {
  for (const table of ['inv-a', 'inv-b']) await warm(t, table, '/items/p?sk=0')
  await warm(t, 'inv-a', '/query?index=byG&pk=g2')
  await writeBehind('inv-a', 'p', '0', 2, 'g2')
  await writeBehind('inv-b', 'p', '0', 2, 'g2')
  t.equal((await read(apps[1], 'inv-a', '/items/p?sk=0')).json().v, 1, 'not announced yet: the cache still has the old item')

  const res = await invalidate(apps[0], 'inv-a', {
    changes: [
      {
        key: { pk: 'p', sk: 0 },
        oldImage: { pk: 'p', sk: 0, g: 'g1', v: 1, tbl: 'inv-a' },
        newImage: { pk: 'p', sk: 0, g: 'g2', v: 2, tbl: 'inv-a' },
      },
    ],
  })
  t.equal(res.statusCode, 200, res.body)
  t.same(res.json(), { invalidated: 1, scope: 'items' })
  for (const [i, app] of apps.entries()) {
    const item = await waitFor(
      `app ${i} to read the new item`,
      async () => {
        const r = await read(app, 'inv-a', '/items/p?sk=0')
        return doc(r).v === 2 ? doc(r) : undefined
      },
      20_000,
      5,
    )
    t.equal(item.v, 2, `app ${i}: the new item`)
    const query = await waitFor(
      `app ${i} to see the item in its new index partition`,
      async () => {
        const r = await read(app, 'inv-a', '/query?index=byG&pk=g2')
        return doc(r).count === 1 ? doc(r) : undefined
      },
      20_000,
      5,
    )
    t.equal(query.items[0]?.v, 2, `app ${i}: the new index partition has it`)
  }
  for (const app of apps) {
    const other = await read(app, 'inv-b', '/items/p?sk=0')
    t.equal(other.headers['x-cache'], 'HIT', 'inv-b: still cached')
    t.equal(other.json().v, 1, "inv-b: its own (old) entry, untouched by inv-a's invalidation")
  }
})

t.test('typed format, a 38-digit key, null and absent images', async (t) => {
  await warm(t, 'inv-a', `/items/big?sk=${BIG}`)
  await dynamo.send(new PutItemCommand({ TableName: 'inv-a', Item: { pk: { S: 'big' }, sk: { N: BIG }, v: { N: '5' } } }))
  const res = await invalidate(apps[1], 'inv-a', `{"changes":[{"key":{"pk":"big","sk":${BIG}}}]}`)
  t.equal(res.statusCode, 200, res.body)
  for (const [i, app] of apps.entries()) {
    const item = await waitFor(
      `app ${i} to read v=5`,
      async () => {
        const r = await read(app, 'inv-a', `/items/big?sk=${BIG}`)
        return doc(r).v === 5 ? r : undefined
      },
      20_000,
      5,
    )
    t.match(item.body, `"sk":${BIG}`, `app ${i}: every digit of the key`)
  }
  const typed = await invalidate(apps[0], 'inv-a', {
    format: 'typed',
    changes: [
      { key: { pk: { S: 'new' }, sk: { N: '1' } }, oldImage: null, newImage: { pk: { S: 'new' }, sk: { N: '1' }, tags: { SS: ['a'] } } },
      { key: { pk: { S: 'gone' }, sk: { N: '1' } }, newImage: null },
    ],
  })
  t.equal(typed.statusCode, 200, typed.body)
  t.equal(typed.json().invalidated, 2)
})

t.test('scope table: every entry of the table, in every process; other tables keep theirs', async (t) => {
  await warm(t, 'inv-a', '/items/p?sk=1')
  await warm(t, 'inv-a', '/items?limit=10')
  await warm(t, 'inv-b', '/items/p?sk=1')
  await writeBehind('inv-a', 'p', '1', 7)
  const res = await invalidate(apps[0], 'inv-a', { scope: 'table', mode: 'hard' })
  t.equal(res.statusCode, 200, res.body)
  t.same(res.json(), { invalidated: 0, scope: 'table' })
  for (const [i, app] of apps.entries()) {
    const item = await waitFor(
      `app ${i} to read v=7`,
      async () => {
        const r = await read(app, 'inv-a', '/items/p?sk=1')
        return doc(r).v === 7 ? doc(r) : undefined
      },
      20_000,
      5,
    )
    t.equal(item.v, 7, `app ${i}: the item`)
    const page = await waitFor(
      `app ${i} to read the scan page again`,
      async () => {
        const r = await read(app, 'inv-a', '/items?limit=10')
        return doc(r).items.some((it) => it.v === 7) ? doc(r) : undefined
      },
      20_000,
      5,
    )
    t.ok(
      page.items.some((it) => it.v === 7),
      `app ${i}: the scan page`,
    )
    t.equal((await read(app, 'inv-b', '/items/p?sk=1')).headers['x-cache'], 'HIT', `app ${i}: inv-b untouched`)
  }
  t.equal((await invalidate(apps[1], 'inv-b', { scope: 'table', mode: 'soft' })).statusCode, 200, 'mode soft is accepted')
})

t.test('two tenants at once: each announces only its own tables', async (t) => {
  await warm(t, 'inv-c', '/items/p?sk=0')
  await writeBehind('inv-c', 'p', '0', 9)
  const [mine, theirs] = await Promise.all([
    invalidate(apps[0], 'inv-c', { changes: [{ key: { pk: 'p', sk: 0 } }] }, KEY.globex),
    invalidate(apps[1], 'inv-c', { changes: [{ key: { pk: 'p', sk: 0 } }] }, KEY.acme),
  ])
  t.equal(mine.statusCode, 200, 'globex announces a write of its table')
  t.equal(theirs.statusCode, 404, 'acme cannot see inv-c')
  t.equal(theirs.json().code, 'DC_ERR_TABLE_NOT_FOUND')
  const item = await waitFor(
    'inv-c to read v=9',
    async () => {
      const r = await read(apps[1], 'inv-c', '/items/p?sk=0')
      return doc(r).v === 9 ? doc(r) : undefined
    },
    20_000,
    5,
  )
  t.equal(item.tbl, 'inv-c')
  const readOnly = await invalidate(apps[0], 'inv-a', { scope: 'table' }, KEY.acmeRead)
  t.equal(readOnly.statusCode, 403, 'scope write is needed')
  t.equal(readOnly.json().code, 'DC_ERR_FORBIDDEN')
})

t.test('every invalid request answers 400 with its code and invalidates nothing', async (t) => {
  // An entry read after the soft invalidation above: fresh.
  await warm(t, 'inv-b', `/items/big?sk=${BIG}`)
  const entry = { key: { pk: 'p', sk: 0 } }
  const cases: Array<[string, unknown, string, RegExp]> = [
    ['1,001 entries', { changes: Array.from({ length: 1001 }, () => entry) }, 'DC_ERR_VALIDATION', /must NOT have more than 1000 items/],
    ['no entries', { changes: [] }, 'DC_ERR_VALIDATION', /fewer than 1 items/],
    ['both changes and scope', { changes: [entry], scope: 'table' }, 'DC_ERR_VALIDATION', /either changes .* or scope/],
    ['neither', {}, 'DC_ERR_VALIDATION', /either changes .* or scope/],
    ['an unknown scope', { scope: 'everything' }, 'DC_ERR_VALIDATION', /scope/],
    ['an unknown mode', { scope: 'table', mode: 'lazy' }, 'DC_ERR_VALIDATION', /mode/],
    ['an unknown field', { scope: 'table', now: true }, 'DC_ERR_VALIDATION', /additional properties/],
    ['a key without its sort key', { changes: [entry, { key: { pk: 'p' } }] }, 'DC_ERR_INVALID_KEY', /changes\[1\]\.key lacks the key attribute 'sk'/],
    ['a key with more than the key', { changes: [{ key: { pk: 'p', sk: 0, v: 1 } }] }, 'DC_ERR_INVALID_KEY', /'v' is not a key attribute/],
    ['a key of the wrong type', { changes: [{ key: { pk: 'p', sk: '0' } }] }, 'DC_ERR_INVALID_KEY', /'sk' must be of type N/],
    ['an image with another key', { changes: [{ ...entry, newImage: { pk: 'q', sk: 0 } }] }, 'DC_ERR_INVALID_KEY', /newImage does not have the key/],
    ['an image that is no object', { changes: [{ ...entry, oldImage: 5 }] }, 'DC_ERR_INVALID_ITEM', /oldImage/],
    ['a 39-digit number', `{"changes":[{"key":{"pk":"p","sk":${'9'.repeat(39)}}}]}`, 'DC_ERR_INVALID_ITEM', /39 significant digits/],
    ['bad typed JSON', { format: 'typed', changes: [{ key: { pk: { S: 'p' }, sk: { N: 0 } } }] }, 'DC_ERR_INVALID_ITEM', /expected a number as a string/],
    ['invalid JSON', '{"scope": "table"', 'DC_ERR_VALIDATION', /not valid JSON/],
  ]
  for (const [what, payload, code, message] of cases) {
    const res = await invalidate(apps[0], 'inv-b', payload)
    t.equal(res.statusCode, 400, `${what}: 400`)
    t.equal(res.json().code, code, `${what}: ${code}`)
    t.match(res.json().message, message, `${what}: says why`)
  }
  for (const [i, app] of apps.entries()) t.equal((await read(app, 'inv-b', `/items/big?sk=${BIG}`)).headers['x-cache'], 'HIT', `app ${i}: still cached`)
  const missing = await invalidate(apps[0], 'no-such-table', { scope: 'table' })
  t.equal(missing.statusCode, 404)
})
