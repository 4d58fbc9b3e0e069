import t from 'tap'
import { auth, build, KEYS } from '../helpers/app.ts'
import { startServices } from '../helpers/services.ts'
import { createTable, testDynamo } from '../helpers/tables.ts'

const services = await startServices(t)
const dynamo = testDynamo(t, services.dynamoEndpoint)
await createTable(dynamo, 'orders', { id: 'S' })
await createTable(dynamo, 'secret-orders', { id: 'S' })
const app = await build(t, services, { TABLES_DENY: 'secret-*' })

type Scope = keyof typeof KEYS
/** Every scoped route (docs/architecture.md, Route -> file) with the scope it needs. */
const ROUTES: Array<[string, string, Scope, unknown?]> = [
  ['GET', '/tables', 'read'],
  ['GET', '/tables/orders', 'read'],
  ['GET', '/tables/orders/items', 'read'],
  ['GET', '/tables/orders/items/x', 'read'],
  ['GET', '/tables/orders/query?pk=x', 'read'],
  ['GET', '/cache/stats', 'read'],
  ['DELETE', '/tables/orders/cache', 'admin'],
  ['DELETE', '/cache', 'admin'],
  ['POST', '/cache/warmup', 'admin', {}],
  ['GET', '/metrics', 'admin'],
  ['POST', '/exports', 'export', { table: 'orders', format: 'jsonl' }],
  ['GET', '/exports', 'export'],
  ['GET', '/exports/00000000-0000-0000-0000-000000000000', 'export'],
  ['GET', '/exports/00000000-0000-0000-0000-000000000000/events', 'export'],
  ['GET', '/exports/00000000-0000-0000-0000-000000000000/download', 'export'],
  ['DELETE', '/exports/00000000-0000-0000-0000-000000000000', 'export'],
  ['POST', '/tables/orders/batches', 'write', { format: 'typed', operations: [{ put: { id: { S: 'a' } } }] }],
  ['GET', '/batches/00000000-0000-0000-0000-000000000000', 'write'],
]

t.test('every scoped route refuses a missing or wrong key (401) and each insufficient scope (403), leaking nothing', async (t) => {
  for (const [method, url, scope, payload] of ROUTES) {
    const send = (headers: Record<string, string>) => app.inject({ method: method as 'GET', url, headers, ...(payload ? { payload: payload as object } : {}) })
    const wrong: Array<Record<string, string>> = [
      {},
      { authorization: `Bearer ${KEYS.read}x` },
      { authorization: KEYS.admin },
      { authorization: `Basic ${KEYS.admin}` },
    ]
    for (const headers of wrong) {
      const res = await send(headers)
      t.equal(res.statusCode, 401, `${method} ${url} with ${JSON.stringify(headers).slice(0, 40)}`)
      t.same(Object.keys(res.json()).sort(), ['code', 'error', 'message', 'statusCode'], 'only the error, no data')
    }
    for (const other of ['read', 'write', 'export'] as const) {
      if (other === scope) continue
      const res = await send(auth(other))
      t.equal(res.statusCode, 403, `${method} ${url} with a ${other} key`)
      t.equal(res.json().code, 'DC_ERR_FORBIDDEN')
    }
    const allowed = await send(auth(scope))
    t.not(allowed.statusCode, 401, `${method} ${url} accepts a ${scope} key`)
    t.not(allowed.statusCode, 403)
  }
})

t.test('Bull Board refuses requests without admin credentials', async (t) => {
  const basic = (user: string, pass: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` })
  t.equal((await app.inject('/admin/queues')).statusCode, 401)
  t.equal((await app.inject({ url: '/admin/queues', headers: basic('admin', KEYS.read) })).statusCode, 401, 'a read key is not enough')
  t.equal((await app.inject({ url: '/admin/queues', headers: auth('admin') })).statusCode, 401, 'Bearer is not Basic')
  t.equal((await app.inject({ url: '/admin/queues', headers: basic('admin', KEYS.admin) })).statusCode, 200)
})

t.test('a denied table is indistinguishable from a missing one on every table route', async (t) => {
  const routes: Array<[string, string, Scope, unknown?]> = [
    ['GET', '/tables/%s', 'read'],
    ['GET', '/tables/%s/items', 'read'],
    ['GET', '/tables/%s/items/x', 'read'],
    ['GET', '/tables/%s/query?pk=x', 'read'],
    ['DELETE', '/tables/%s/cache', 'admin'],
    ['POST', '/cache/warmup', 'admin', { tables: ['%s'] }],
    ['POST', '/exports', 'export', { table: '%s', format: 'jsonl' }],
    ['POST', '/tables/%s/batches', 'write', { format: 'typed', operations: [{ put: { id: { S: 'a' } } }] }],
  ]
  for (const [method, template, scope, payload] of routes) {
    const answer = async (table: string) => {
      const res = await app.inject({
        method: method as 'GET',
        url: template.replace('%s', table),
        headers: auth(scope),
        ...(payload ? { payload: JSON.parse(JSON.stringify(payload).replace('%s', table)) } : {}),
      })
      return { status: res.statusCode, body: res.body.replaceAll(table, '<table>') }
    }
    t.same(await answer('secret-orders'), await answer('missing-orders'), `${method} ${template}`)
  }
})
