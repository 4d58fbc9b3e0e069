import { createHash } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { buildApp } from '../../src/api/app.ts'
import { createDownloadTokens } from '../../src/shared/exports/tokens.ts'
import { createLogger } from '../../src/shared/logger.ts'
import { startWorkerFleet } from '../../src/workers/fleet.ts'
import { auth, build, KEYS, startQueues, testConfig, uniquePrefix } from '../helpers/app.ts'
import { startEntry } from '../helpers/processes.ts'
import { startServices } from '../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../helpers/tables.ts'
import { waitFor } from '../helpers/wait.ts'

// Two tenants side by side (acme, globex), each with its own keys, on tables of one shape; a key of the
// default tenant limited to `orders-*`; a key given by its SHA-256 only; API_KEYS (the test keys) beside them.
const services = await startServices(t)
const dynamo = testDynamo(t, services.dynamoEndpoint)
const TABLES = ['orders-eu', 'orders-us', 'users'] as const
for (const table of TABLES) {
  await createTable(dynamo, table, { pk: 'S', sk: 'N' })
  await putItems(
    dynamo,
    table,
    Array.from({ length: 12 }, (_, i) => ({ pk: { S: `p${i % 3}` }, sk: { N: String(i) }, from: { S: table } })),
  )
}

const KEY = {
  acmeExport: 'acme-export-key-00000001',
  acmeWrite: 'acme-write-key-000000001',
  acmeAdmin: 'acme-admin-key-000000001',
  globexExport: 'globex-export-key-000001',
  globexWrite: 'globex-write-key-0000001',
  globexAdmin: 'globex-admin-key-0000001',
  orders: 'orders-only-key-00000001',
  ordersAdmin: 'orders-admin-key-0000001',
  hashed: 'hashed-users-key-0000001',
} as const
const bearer = (key: string) => ({ authorization: `Bearer ${key}` })
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')

const dir = await mkdtemp(join(tmpdir(), 'dc-tenancy-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const keysFile = join(dir, 'keys.json')
await writeFile(
  keysFile,
  JSON.stringify([
    { key: KEY.acmeExport, scopes: ['export'], tenant: 'acme' },
    { key: KEY.acmeWrite, scopes: ['write'], tenant: 'acme' },
    { key: KEY.acmeAdmin, scopes: ['admin'], tenant: 'acme' },
    { key: KEY.globexExport, scopes: ['export'], tenant: 'globex' },
    { key: KEY.globexWrite, scopes: ['write'], tenant: 'globex' },
    { key: KEY.globexAdmin, scopes: ['admin'], tenant: 'globex' },
    { key: KEY.orders, scopes: ['read', 'write', 'export'], tables: ['orders-*'] },
    { key: KEY.ordersAdmin, scopes: ['admin'], tables: ['orders-*'] },
    { sha256: sha256(KEY.hashed), scopes: ['read'], tenant: 'acme', tables: ['users'] },
  ]),
)

const overrides = { REDIS_PREFIX: uniquePrefix(), API_KEYS_FILE: keysFile, EXPORT_DIR: join(dir, 'exports'), EXPORT_SEGMENTS: '2' }
const app = await build(t, services, overrides)
await startQueues(app, ['batch-write'])
const workerConfig = testConfig(services, { ...overrides, WORKER_QUEUES: 'export-segment,export-assemble,batch-write,cache-maintenance' })
const fleet = await startWorkerFleet(workerConfig, createLogger(workerConfig, 'test-worker'))
t.teardown(() => fleet.close(3000))

const get = (url: string, key: string) => app.inject({ url, headers: bearer(key) })

/** The export, finished: polled with its own tenant's key. */
async function exportOf(key: string, table: string): Promise<{ id: string; download: string }> {
  const res = await app.inject({ method: 'POST', url: '/exports', headers: bearer(key), payload: { table, format: 'jsonl' } })
  if (res.statusCode !== 202) throw new Error(`POST /exports: ${res.statusCode} ${res.body}`)
  const { id } = res.json() as { id: string }
  return waitFor(`export ${id}`, async () => {
    const view = (await get(`/exports/${id}`, key)).json()
    if (view.status === 'failed' || view.status === 'cancelled') throw new Error(`export ${id} ${view.status}: ${view.error}`)
    return view.status === 'completed' && (view as { id: string; download: string })
  })
}

/** Same status and body as the answer for an id that never existed (the id itself swapped). */
function sameAsMissing(t: Test, res: LightMyRequestResponse, missing: LightMyRequestResponse, id: string, missingId: string, what: string) {
  t.equal(res.statusCode, 404, `${what}: 404`)
  t.equal(res.body.replaceAll(id, missingId), missing.body, `${what}: the body of a missing id`)
}

t.test('API_KEYS_FILE keys authenticate beside API_KEYS, a key given by its SHA-256 included', async (t) => {
  const hashed = await get('/tables', KEY.hashed)
  t.equal(hashed.statusCode, 200, 'the sha256 entry authenticates with the key it hashes')
  t.same(hashed.json().tables, ['users'], 'and sees only its tables')
  t.equal((await get('/tables', sha256(KEY.hashed))).statusCode, 401, 'the hash itself is not a key')
  t.same((await get('/tables', KEYS.read)).json().tables, [...TABLES], 'API_KEYS still works: default tenant, every table')
  t.equal((await get('/tables', KEY.acmeExport)).statusCode, 403, 'scopes come from the file')
  t.equal((await get('/tables', 'no-such-key-000000000001')).statusCode, 401)
})

t.test("two tenants: every export route of one answers 404 for the other's exports; download tokens are bound to the tenant", async (t) => {
  const [acme, globex] = await Promise.all([exportOf(KEY.acmeExport, 'orders-eu'), exportOf(KEY.globexExport, 'orders-us')])
  const tenants = [
    { name: 'acme', exp: acme, own: [KEY.acmeExport, KEY.acmeAdmin], others: [KEY.globexExport, KEY.globexAdmin, KEYS.export, KEYS.admin] },
    { name: 'globex', exp: globex, own: [KEY.globexExport, KEY.globexAdmin], others: [KEY.acmeExport, KEY.acmeAdmin, KEYS.export, KEYS.admin] },
  ]
  const missingId = '00000000-0000-4000-8000-000000000000'
  for (const { name, exp, own, others } of tenants) {
    const routes = [
      { method: 'GET' as const, url: (id: string) => `/exports/${id}` },
      { method: 'GET' as const, url: (id: string) => `/exports/${id}/events` },
      { method: 'GET' as const, url: (id: string) => `/exports/${id}/download` },
      { method: 'DELETE' as const, url: (id: string) => `/exports/${id}` },
    ]
    for (const key of others) {
      for (const { method, url } of routes) {
        const ask = (id: string) => app.inject({ method, url: url(id), headers: bearer(key) })
        sameAsMissing(t, await ask(exp.id), await ask(missingId), exp.id, missingId, `${name}'s export, ${method} ${url(':id')} by ${key.slice(0, 12)}`)
      }
      const listed = (await get('/exports?limit=100', key)).json().exports as Array<{ id: string }>
      t.notOk(
        listed.some((e) => e.id === exp.id),
        `${name}'s export is not in the list of ${key.slice(0, 12)}`,
      )
    }
    for (const key of own) {
      t.equal((await get(`/exports/${exp.id}`, key)).json().status, 'completed', `${key.slice(0, 12)} of ${name} (an admin too) sees its tenant's export`)
      t.ok(
        (await get('/exports?limit=100', key)).json().exports.some((e: { id: string }) => e.id === exp.id),
        `and lists it`,
      )
    }
    t.equal((await app.inject({ url: exp.download })).statusCode, 200, `${name}'s signed link downloads its own export`)
  }
  t.equal((await get(`/exports/${acme.id}`, KEY.acmeExport)).json().status, 'completed', "the other tenant's DELETE cancelled nothing")

  // A token carried over to the other tenant's export, and a token minted for the right id but another tenant.
  const tokenOf = (link: string) => new URL(link, 'http://x').searchParams.get('token')!
  const swapped = [
    [`/exports/${globex.id}/download?token=${tokenOf(acme.download)}`, "acme's token on globex's export"],
    [`/exports/${acme.id}/download?token=${tokenOf(globex.download)}`, "globex's token on acme's export"],
  ]
  const tokens = createDownloadTokens(app.config.CURSOR_SECRET!, 600)
  for (const [tenant, exp] of [
    ['globex', acme],
    ['acme', globex],
    ['default', acme],
  ] as const) {
    swapped.push([
      `/exports/${exp.id}/download?token=${tokens.sign(exp.id, tenant).token}`,
      `a token of ${exp === acme ? 'acme' : 'globex'}'s id signed for ${tenant}`,
    ])
  }
  for (const [url, what] of swapped) {
    const res = await app.inject({ url: url! })
    t.equal(res.statusCode, 403, what!)
    t.equal(res.json().code, 'DC_ERR_DOWNLOAD_FORBIDDEN', what!)
  }
})

t.test('two tenants: batch status and Idempotency-Key belong to the tenant', async (t) => {
  const payload = { format: 'typed', operations: [{ put: { pk: { S: 'batch' }, sk: { N: '1' }, from: { S: 'batch' } } }] }
  const post = (key: string) =>
    app.inject({ method: 'POST', url: '/tables/orders-eu/batches', headers: { ...bearer(key), 'idempotency-key': 'nightly-import-1' }, payload })
  const acme = await post(KEY.acmeWrite)
  const globex = await post(KEY.globexWrite)
  t.equal(acme.statusCode, 202)
  t.equal(globex.statusCode, 202)
  t.not(globex.json().id, acme.json().id, 'the same Idempotency-Key and body from another tenant is another batch')
  t.equal(globex.headers['idempotent-replayed'], undefined)
  const replay = await post(KEY.acmeWrite)
  t.equal(replay.json().id, acme.json().id, 'within the tenant it replays')
  t.equal(replay.headers['idempotent-replayed'], 'true')

  const missingId = `orders-eu.${'A'.repeat(16)}`
  for (const [owner, id, others] of [
    ['acme', acme.json().id, [KEY.globexWrite, KEY.globexAdmin, KEYS.write, KEYS.admin]],
    ['globex', globex.json().id, [KEY.acmeWrite, KEY.acmeAdmin, KEYS.write, KEYS.admin]],
  ] as const) {
    for (const key of others) {
      sameAsMissing(t, await get(`/batches/${id}`, key), await get(`/batches/${missingId}`, key), id, missingId, `${owner}'s batch by ${key.slice(0, 12)}`)
    }
  }
  t.equal((await get(`/batches/${acme.json().id}`, KEY.acmeAdmin)).statusCode, 200, "acme's admin sees acme's batch")
  const done = await waitFor('the batches to finish', async () => {
    const views = await Promise.all([get(`/batches/${acme.json().id}`, KEY.acmeWrite), get(`/batches/${globex.json().id}`, KEY.globexWrite)])
    const statuses = views.map((v) => v.json().status)
    return statuses.every((s) => s === 'completed' || s === 'failed') && views.map((v) => v.json())
  })
  t.same(
    done.map((v) => v.status),
    ['completed', 'completed'],
  )
  t.notOk('tenant' in done[0], 'the view does not carry the tenant')
})

t.test('a key limited to orders-* gets 404 for users on every route, after another key cached it too', async (t) => {
  // Same length as `users`, so the bodies compare with the name swapped.
  const [hidden, missing] = ['users', 'nopes']
  const reads = [
    (table: string) => `/tables/${table}`,
    (table: string) => `/tables/${table}/items?limit=5`,
    (table: string) => `/tables/${table}/items/p0?sk=0`,
    (table: string) => `/tables/${table}/query?pk=p1&limit=5`,
  ]
  for (const url of reads) {
    const filled = await get(url(hidden), KEYS.read)
    t.equal(filled.statusCode, 200, `${url(':table')}: a key that sees users reads it (and caches it)`)
    t.equal((await get(url(hidden), KEYS.read)).headers['x-cache'], 'HIT', `${url(':table')}: cached`)
    for (let round = 0; round < 2; round++) {
      const denied = await get(url(hidden), KEY.orders)
      const absent = await get(url(missing), KEY.orders)
      t.equal(denied.statusCode, 404, `${url(':table')}: 404 for the limited key`)
      t.equal(denied.json().code, 'DC_ERR_TABLE_NOT_FOUND')
      t.equal(denied.body.replaceAll(hidden, missing), absent.body, `${url(':table')}: the body of a missing table`)
      t.notOk(denied.body.includes('"from"'), 'no item of users')
    }
    t.equal((await get(url('orders-eu'), KEY.orders)).statusCode, 200, `${url(':table')}: its own tables answer`)
    t.equal((await get(url('orders-eu'), KEY.hashed)).statusCode, 404, `${url(':table')}: and the users-only key gets 404 for orders`)
  }
  const writes: Array<[string, 'POST' | 'DELETE', string, (table: string) => string, object | undefined]> = [
    ['batches', 'POST', KEY.orders, (table) => `/tables/${table}/batches`, { format: 'typed', operations: [{ delete: { pk: { S: 'p0' }, sk: { N: '0' } } }] }],
    ['exports', 'POST', KEY.orders, () => '/exports', undefined],
    ['invalidate', 'DELETE', KEY.ordersAdmin, (table) => `/tables/${table}/cache`, undefined],
    ['warmup', 'POST', KEY.ordersAdmin, () => '/cache/warmup', undefined],
  ]
  for (const [what, method, key, url, body] of writes) {
    const payload = (table: string) => (what === 'exports' ? { table, format: 'csv' } : what === 'warmup' ? { tables: [table] } : body)
    const ask = (table: string) => app.inject({ method, url: url(table), headers: bearer(key), ...(payload(table) ? { payload: payload(table) } : {}) })
    const denied = await ask(hidden)
    const absent = await ask(missing)
    t.equal(denied.statusCode, 404, `${what}: users is 404`)
    t.equal(denied.body.replaceAll(hidden, missing), absent.body, `${what}: the body of a missing table`)
    t.ok([200, 202].includes((await ask('orders-us')).statusCode), `${what}: its own tables are accepted`)
  }
})

t.test('/tables and /cache/stats show a limited key only its tables', async (t) => {
  await get('/tables/users/items?limit=3', KEYS.read)
  await get('/tables/orders-us/items?limit=3', KEY.orders)
  const list = await get('/tables', KEY.orders)
  t.same(list.json().tables, ['orders-eu', 'orders-us'])
  t.equal(
    (await app.inject({ url: '/tables', headers: { ...bearer(KEY.orders), 'if-none-match': list.headers.etag as string } })).statusCode,
    304,
    'its ETag is its own list',
  )
  t.not(list.headers.etag, (await get('/tables', KEYS.read)).headers.etag, 'another key with other tables has another ETag')

  const all = (await get('/cache/stats', KEYS.read)).json()
  t.ok(all.tables.users, 'a key that sees every table sees users in the stats')
  const limited = (await get('/cache/stats', KEY.orders)).json() as {
    totals: Record<string, number>
    tables: Record<string, Record<string, number>>
    popular: Array<{ table: string }>
  }
  t.same(Object.keys(limited.tables).sort(), ['orders-eu', 'orders-us'], 'only its tables (not users, not the list `*`)')
  t.ok(limited.popular.length > 0 && limited.popular.every((p) => p.table.startsWith('orders-')), 'popular among its tables only')
  for (const counter of ['hits', 'misses', 'stale', 'errors'] as const) {
    const sum = Object.values(limited.tables).reduce((n, s) => n + s[counter]!, 0)
    t.equal(limited.totals[counter], sum, `totals.${counter} is over its tables`)
  }
  t.same(Object.keys((await get('/cache/stats', KEY.hashed)).json().tables), ['users'])
})

t.test('a bad API_KEYS_FILE stops start-up with a message naming it, never the key', async (t) => {
  const badFile = (what: string) => join(dir, `bad-${what.replaceAll(' ', '-')}.json`)
  const secret = 'super-secret-key-value-0001'
  const cases: Array<[string, string, RegExp]> = [
    ['not JSON', `[{ "key": "${secret}", scopes: [] `, /^API_KEYS_FILE is invalid: .*not valid JSON/],
    [
      'bad scope',
      JSON.stringify([
        { key: KEY.acmeAdmin, scopes: ['admin'] },
        { key: secret, scopes: ['root'] },
      ]),
      /^API_KEYS_FILE is invalid: entry 1: "scopes"/,
    ],
    ['short key', JSON.stringify([{ key: 'short-secret', scopes: ['read'] }]), /^API_KEYS_FILE is invalid: entry 0: "key"/],
    ['key and sha256', JSON.stringify([{ key: secret, sha256: sha256(secret), scopes: ['read'] }]), /^API_KEYS_FILE is invalid: entry 0: expected exactly one/],
    ['bad sha256', JSON.stringify([{ sha256: secret, scopes: ['read'] }]), /^API_KEYS_FILE is invalid: entry 0: "sha256"/],
    ['unknown field', JSON.stringify([{ key: secret, scopes: ['read'], tenants: 'acme' }]), /^API_KEYS_FILE is invalid: entry 0: unknown field "tenants"/],
    ['bad tenant', JSON.stringify([{ key: secret, scopes: ['read'], tenant: 'a b' }]), /^API_KEYS_FILE is invalid: entry 0: "tenant"/],
    ['bad tables', JSON.stringify([{ key: secret, scopes: ['read'], tables: [] }]), /^API_KEYS_FILE is invalid: entry 0: "tables"/],
    [
      'twice',
      JSON.stringify([
        { key: secret, scopes: ['read'] },
        { sha256: sha256(secret), scopes: ['admin'], tenant: 'x' },
      ]),
      /^API_KEYS_FILE is invalid: entry 1: the same key as entry 0/,
    ],
    [
      'also in API_KEYS',
      JSON.stringify([{ key: KEYS.read, scopes: ['read'], tenant: 'acme' }]),
      /^API_KEYS_FILE is invalid: entry 0: the key is also in API_KEYS/,
    ],
    ['empty', '[]', /^API_KEYS_FILE is invalid: expected a non-empty JSON list/],
  ]
  for (const [what, content, message] of cases) {
    const file = badFile(what)
    await writeFile(file, content)
    const err = await buildApp(testConfig(services, { API_KEYS_FILE: file })).then(
      (built) => built.close().then(() => undefined),
      (e: Error) => e,
    )
    if (!t.ok(err, `${what}: refused`)) continue
    t.equal(err!.name, 'ConfigError', what)
    t.match(err!.message, message, what)
    for (const s of [secret, KEY.acmeAdmin, KEYS.read, 'short-secret']) t.notOk(err!.message.includes(s), `${what}: no key in the message`)
  }
  const missing = await buildApp(testConfig(services, { API_KEYS_FILE: join(dir, 'absent.json') })).catch((e: Error) => e)
  t.match((missing as Error).message, /^API_KEYS_FILE is invalid: cannot read the file \(ENOENT\)/)

  // The real entry point: one line on stderr, exit 1, before any connection is opened.
  const file = badFile('bad scope')
  const child = startEntry(t, 'src/api/server.ts', {
    REDIS_URL: 'redis://127.0.0.1:1',
    CURSOR_SECRET: 'test-cursor-secret-0123456789',
    API_KEYS_FILE: file,
  })
  t.equal(await child.exited, 1)
  t.match(child.output(), /^dynacache: configuration error: API_KEYS_FILE is invalid: entry 1: "scopes"/)
  t.notOk(child.output().includes(secret), 'the key is not printed')
  t.notOk(/\n\s+at /.test(child.output()), 'no stack trace')
})

t.test('API_KEYS_FILE alone is enough to start the API', async (t) => {
  const only = await buildApp(testConfig(services, { API_KEYS: '', API_KEYS_FILE: keysFile }))
  t.teardown(() => only.close())
  t.equal((await only.inject({ url: '/tables', headers: bearer(KEY.orders) })).statusCode, 200)
  t.equal((await only.inject({ url: '/tables', headers: auth('read') })).statusCode, 401, 'no API_KEYS, no test keys')
})
