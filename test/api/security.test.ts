import { Writable } from 'node:stream'
import { pino } from 'pino'
import t from 'tap'
import { ConfigError, loadConfig } from '../../src/shared/config.ts'
import { loggerOptions } from '../../src/shared/logger.ts'
import { auth, build, KEYS, testConfig } from '../helpers/app.ts'
import { startDynamoProxy } from '../helpers/dynamo-proxy.ts'
import { startServices } from '../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../helpers/tables.ts'

const services = await startServices(t)
const proxy = await startDynamoProxy(services.dynamoEndpoint)
t.teardown(() => proxy.close())
const viaProxy = { ...services, dynamoEndpoint: proxy.endpoint }
const dynamo = testDynamo(t, services.dynamoEndpoint)
await createTable(dynamo, 'public-orders', { PK: 'S' })
await createTable(dynamo, 'secret-payroll', { PK: 'S' })
await putItems(dynamo, 'secret-payroll', [{ PK: { S: 'x' }, salary: { N: '1' } }])

const app = await build(t, viaProxy, { TABLES_DENY: 'secret-*' })

/** Helmet headers that only matter for a page a browser renders, never sent with JSON. */
const PAGE_ONLY = [
  'x-dns-prefetch-control',
  'x-download-options',
  'x-permitted-cross-domain-policies',
  'origin-agent-cluster',
  'cross-origin-opener-policy',
  'x-xss-protection',
]

t.test('JSON answers carry the API headers, a 401 and a 404 included, and none of the page headers', async (t) => {
  const hit = await app.inject({ url: '/tables/public-orders/items?limit=5', headers: auth('read') })
  t.equal(hit.statusCode, 200)
  for (const res of [await app.inject('/health'), await app.inject('/tables'), await app.inject('/no/such/route'), hit]) {
    t.equal(res.headers['x-content-type-options'], 'nosniff')
    t.equal(res.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'")
    t.equal(res.headers['x-frame-options'], 'DENY')
    t.match(res.headers['strict-transport-security'], /max-age=\d+/)
    t.equal(res.headers['referrer-policy'], 'no-referrer')
    t.equal(res.headers['cross-origin-resource-policy'], 'same-origin')
    t.equal(res.headers['x-powered-by'], undefined)
    for (const name of PAGE_ONLY) t.equal(res.headers[name], undefined, `no ${name} on ${res.raw.req.url}`)
  }
})

t.test("pages get helmet's headers and its CSP: Swagger UI and Bull Board", async (t) => {
  for (const url of ['/docs/', '/admin/queues']) {
    const res = await app.inject(url)
    t.match(res.headers['content-security-policy'], /default-src 'self'/, url)
    t.notMatch(res.headers['content-security-policy'], /upgrade-insecure-requests/, url)
    t.equal(res.headers['x-frame-options'], 'SAMEORIGIN', url)
    t.equal(res.headers['cross-origin-opener-policy'], 'same-origin', url)
    t.equal(res.headers['x-content-type-options'], 'nosniff', url)
    t.equal(res.headers['x-powered-by'], undefined, url)
  }
})

t.test('CORS only for the configured origins', async (t) => {
  const origin = 'https://dash.example.com'
  const preflight = {
    method: 'OPTIONS' as const,
    url: '/tables',
    headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
  }

  const none = await app.inject(preflight)
  t.equal(none.headers['access-control-allow-origin'], undefined, 'no CORS when CORS_ORIGINS is empty')
  t.equal((await app.inject({ url: '/tables', headers: { origin, ...auth('read') } })).headers['access-control-allow-origin'], undefined)

  const corsApp = await build(t, viaProxy, { CORS_ORIGINS: `${origin}, https://ops.example.com` })
  const allowed = await corsApp.inject(preflight)
  t.equal(allowed.statusCode, 204)
  t.equal(allowed.headers['access-control-allow-origin'], origin)
  t.match(allowed.headers['access-control-allow-headers'], /authorization/)
  const read = await corsApp.inject({ url: '/tables', headers: { origin, ...auth('read') } })
  t.equal(read.statusCode, 200)
  t.equal(read.headers['access-control-allow-origin'], origin)
  t.match(read.headers['access-control-expose-headers'], /x-cache/)
  const denied = await corsApp.inject({ url: '/tables', headers: { origin: 'https://evil.example.com', ...auth('read') } })
  t.equal(denied.headers['access-control-allow-origin'], undefined, 'other origins get no CORS headers')
  const unauthorized = await corsApp.inject({ url: '/tables', headers: { origin } })
  t.equal(unauthorized.statusCode, 401)
  t.equal(unauthorized.headers['access-control-allow-origin'], origin, 'a browser can read the 401 too')

  t.throws(() => loadConfig({ CORS_ORIGINS: 'dash.example.com' }), ConfigError, 'an origin without a scheme is refused')
  t.equal(loadConfig({ CORS_ORIGINS: '*' }).CORS_ORIGINS, '*')
})

t.test('bodies: routes that take none accept almost none', async (t) => {
  const res = await app.inject({
    method: 'DELETE',
    url: '/cache',
    headers: { ...auth('admin'), 'content-type': 'application/json' },
    payload: JSON.stringify({ pad: 'x'.repeat(4096) }),
  })
  t.equal(res.statusCode, 413)
  t.equal(res.json().code, 'DC_ERR_PAYLOAD_TOO_LARGE')
})

interface TableRoute {
  method: 'GET' | 'DELETE' | 'POST'
  url(table: string): string
  key: keyof typeof KEYS
  payload?(table: string): object
}
/** Every route that names a table, with what it needs to get past validation. */
const TABLE_ROUTES: TableRoute[] = [
  { method: 'GET', url: (table) => `/tables/${table}`, key: 'read' },
  { method: 'GET', url: (table) => `/tables/${table}/items?limit=5`, key: 'read' },
  { method: 'GET', url: (table) => `/tables/${table}/items/x`, key: 'read' },
  { method: 'GET', url: (table) => `/tables/${table}/query?pk=x`, key: 'read' },
  { method: 'DELETE', url: (table) => `/tables/${table}/cache`, key: 'admin' },
]
// Routes other issues add are covered as soon as they exist.
if (app.hasRoute({ method: 'POST', url: '/tables/:table/batches' })) {
  TABLE_ROUTES.push({
    method: 'POST',
    url: (table) => `/tables/${table}/batches`,
    key: 'write',
    payload: () => ({ format: 'typed', operations: [{ put: { PK: { S: 'x' } } }] }),
  })
}
if (app.hasRoute({ method: 'POST', url: '/exports' })) {
  TABLE_ROUTES.push({ method: 'POST', url: () => '/exports', key: 'export', payload: (table) => ({ table, format: 'csv' }) })
}

/** Headers that differ between any two answers. */
const VOLATILE = new Set(['date', 'x-request-id', 'ratelimit-remaining', 'ratelimit-reset'])

t.test('table names are checked against DynamoDB rules before anything else', async (t) => {
  proxy.reset()
  for (const { method, url, key, payload } of TABLE_ROUTES) {
    for (const bad of ['ab', 'a%20b', 'x'.repeat(256), 'semi%3Bcolon']) {
      const name = payload ? decodeURIComponent(bad) : bad
      const res = await app.inject({ method, url: url(bad), headers: auth(key), ...(payload ? { payload: payload(name) } : {}) })
      t.equal(res.statusCode, 400, `${method} ${url(bad.slice(0, 12))}`)
      t.equal(res.json().code, 'DC_ERR_VALIDATION')
    }
  }
  t.equal(proxy.calls.length, 0, 'DynamoDB never saw them')
})

t.test('a denied table answers exactly like a missing one, on every table route', async (t) => {
  // Same length names, so even Content-Length agrees.
  const [deniedName, missingName] = ['secret-payroll', 'absent-payroll']
  for (const { method, url, key, payload } of TABLE_ROUTES) {
    for (let round = 0; round < 2; round++) {
      const ask = (table: string) => app.inject({ method, url: url(table), headers: auth(key), ...(payload ? { payload: payload(table) } : {}) })
      const denied = await ask(deniedName)
      const missing = await ask(missingName)
      const name = `${method} ${url(':table')} (${round === 0 ? 'first' : 'again'})`
      t.equal(denied.statusCode, 404, name)
      t.equal(missing.statusCode, 404, name)
      t.equal(denied.body.replaceAll(deniedName, missingName), missing.body, `${name}: same body`)
      // The ETag hashes the body, which names the table: compared through the bodies above.
      const headers = (h: Record<string, unknown>) =>
        Object.fromEntries(
          Object.entries(h)
            .filter(([k]) => !VOLATILE.has(k))
            .map(([k, v]) => [k, k === 'etag' ? 'W/"…"' : v]),
        )
      t.same(headers(denied.headers), headers(missing.headers), `${name}: same headers`)
    }
  }
  t.notOk((await app.inject({ url: '/tables', headers: auth('read') })).json().tables.includes('secret-payroll'))
})

t.test('keys and tokens never reach the log; one line per request with route, status, duration, X-Cache, table', async (t) => {
  const lines: string[] = []
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean))
      done()
    },
  })
  const logger = pino(loggerOptions(testConfig(viaProxy, { LOG_LEVEL: 'trace' }), 'dynacache-api'), stream)
  const logged = await build(t, viaProxy, { SLOW_CALL_MS: '1' }, { logger })
  proxy.setFaults({ latencyMs: 5 })
  const basic = `Basic ${Buffer.from(`ops:${KEYS.admin}`).toString('base64')}`
  const requests = [
    { url: '/tables/public-orders/items?limit=5', headers: auth('read') },
    { url: '/tables/public-orders/items?limit=5', headers: auth('read') },
    { url: '/tables?token=SECRET-DOWNLOAD-TOKEN-1', headers: auth('admin') },
    { url: '/exports/abc/download?token=SECRET-DOWNLOAD-TOKEN-2&x=1' },
    { url: '/tables', headers: { authorization: 'Bearer not-a-real-key-but-secret-0001' } },
    { url: '/admin/queues/api/queues', headers: { authorization: basic } },
    { url: '/metrics', headers: { authorization: `bearer ${KEYS.admin}`, cookie: 'session=SECRET-COOKIE' } },
  ]
  const answers = []
  for (const r of requests) answers.push(await logged.inject(r))
  proxy.setFaults({})
  // onResponse hooks may run just after inject() resolves.
  const completed = () => lines.filter((l) => l.includes('"msg":"request.completed"')).length
  for (let i = 0; i < 100 && completed() < requests.length; i++) await new Promise((r) => setTimeout(r, 10))

  const text = lines.join('\n')
  const secrets = [...Object.values(KEYS), 'SECRET-DOWNLOAD-TOKEN', 'not-a-real-key-but-secret-0001', basic.slice(6), 'SECRET-COOKIE']
  for (const secret of secrets) t.notOk(text.includes(secret), `${secret.slice(0, 12)}... is not in the log`)
  t.notOk(/bearer|basic /i.test(text), 'no Authorization value at all')

  const done = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'request.completed')
  t.equal(done.length, requests.length, 'exactly one line per request')
  t.equal(new Set(done.map((l) => l.reqId)).size, requests.length)
  t.equal(lines.filter((l) => /"msg":"(incoming request|request completed)"/.test(l)).length, 0, "Fastify's own request lines are off")
  const [miss, hit] = done
  t.match(miss, { method: 'GET', route: '/tables/:table/items', status: 200, cache: 'MISS', table: 'public-orders', ms: Number })
  t.match(hit, { cache: 'HIT', table: 'public-orders' })
  t.match(done[2].url, /token=\[redacted\]/)
  t.equal(done[4].status, 401)
  t.equal(answers[5]!.statusCode, 200)
  t.ok(
    lines.some((l) => /"level":40/.test(l) && /"msg":"dynamo.slow"/.test(l)),
    'slow DynamoDB calls are warnings',
  )
})
