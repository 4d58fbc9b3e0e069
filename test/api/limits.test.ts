import { createHash, randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { type ClientRequest, get, type IncomingMessage } from 'node:http'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import t from 'tap'
import { auth, build } from '../helpers/app.ts'
import { startServices } from '../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../helpers/tables.ts'
import { sleep, waitFor } from '../helpers/wait.ts'

const services = await startServices(t)
const dynamo = testDynamo(t, services.dynamoEndpoint)
await createTable(dynamo, 'orders', { PK: 'S', SK: 'N' })
await putItems(
  dynamo,
  'orders',
  Array.from({ length: 20 }, (_, i) => ({ PK: { S: `c${i % 4}` }, SK: { N: String(i) }, note: { S: `n${i}` } })),
)
const redis = new Redis(services.redisUrl)
t.teardown(() => redis.quit())

// Three keys of two tenants (plus the shared test keys of the default tenant).
const TENANT_KEYS = { acme: 'acme-key-00000000000001', acme2: 'acme-key-00000000000002', globex: 'globex-key-000000000001', initech: 'initech-key-00000000001' }
const keysFile = join(tmpdir(), `dc-limits-${randomBytes(4).toString('hex')}.json`)
await writeFile(
  keysFile,
  JSON.stringify([
    { key: TENANT_KEYS.acme, scopes: ['read', 'write', 'export'], tenant: 'acme' },
    { key: TENANT_KEYS.acme2, scopes: ['read', 'write', 'export'], tenant: 'acme' },
    { key: TENANT_KEYS.globex, scopes: ['read', 'write', 'export'], tenant: 'globex' },
    { key: TENANT_KEYS.initech, scopes: ['read', 'write', 'export'], tenant: 'initech' },
  ]),
)
const as = (who: keyof typeof TENANT_KEYS) => ({ authorization: `Bearer ${TENANT_KEYS[who]}` })
/** The principal id the API derives from a key (what per-key quotas are counted under). */
const keyId = (key: string) => createHash('sha256').update(key).digest('hex').slice(0, 12)

async function countKeys(match: string): Promise<number> {
  let n = 0
  let cursor = '0'
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000)
    cursor = next
    n += found.length
  } while (cursor !== '0')
  return n
}
async function keysOf(match: string): Promise<string[]> {
  const out: string[] = []
  let cursor = '0'
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000)
    cursor = next
    out.push(...found)
  } while (cursor !== '0')
  return out
}

/** Everything a request could have stored or queued: cache entries, batches, exports, queue keys. */
async function footprint(app: FastifyInstance) {
  const p = app.config.REDIS_PREFIX
  return {
    orders: await countKeys(`${p}:{orders}:*`),
    exports: await redis.zcard(app.keys.exportHistory),
    exportKeys: await countKeys(`${p}:{*exports}:*`),
    queued: await countKeys(`{${p}}:q:*`),
  }
}

const filterOf = (bytes: number) => [{ attr: 'note', op: 'contains', value: 'x'.repeat(bytes) }]

t.test('a table that does not exist leaves its negative entry and nothing else', async (t) => {
  const app = await build(t, services, { STALE_IF_ERROR_SHORT_TTL: '60', NEGATIVE_TTL: '30' })
  const p = app.config.REDIS_PREFIX
  for (const url of ['/tables/no-such-table', '/tables/no-such-table/items?limit=5', '/tables/no-such-table/items/p1', '/tables/no-such-table/query?pk=x']) {
    for (let i = 0; i < 3; i++) {
      const res = await app.inject({ url, headers: auth('read') })
      t.equal(res.statusCode, 404, url)
      t.equal(res.json().code, 'DC_ERR_TABLE_NOT_FOUND', url)
    }
  }
  t.equal((await app.inject({ url: '/tables/orders/items?limit=2', headers: auth('read') })).statusCode, 200)
  await app.cache.stats.flush()

  const left = await keysOf(`${p}:{no-such-table}:*`)
  t.equal(left.length, 1, `only the negative details entry is stored (${left.join(', ')})`)
  t.match(left[0], /:e:/)
  const pttl = await redis.pttl(left[0]!)
  t.ok(pttl > 0 && pttl <= (30 + 60) * 1000, `kept NEGATIVE_TTL + STALE_IF_ERROR_SHORT_TTL at most (${pttl} ms)`)

  const stats = await redis.hgetall(app.keys.stats)
  t.notOk(
    Object.keys(stats).some((f) => f.startsWith('no-such-table|')),
    'no counters for it',
  )
  t.ok(
    Object.keys(stats).some((f) => f.startsWith('orders|')),
    'an existing table is counted',
  )
  t.equal(await redis.sismember(app.keys.cachedTables, 'no-such-table'), 0, 'not in the cached-tables set')
  t.equal(await redis.sismember(app.keys.cachedTables, 'orders'), 1)
  t.equal(await redis.zscore(app.keys.popularity(Math.floor(Date.now() / 3600_000)), 'no-such-table'), null, 'no popularity')
  t.equal(await redis.exists(app.keys.hotReads('no-such-table')), 0, 'no hot reads')
  const snapshot = await app.cache.stats.snapshot()
  t.notOk('no-such-table' in snapshot.tables)
  t.notOk((await app.metrics.render()).includes('no-such-table'), 'no metrics label for it')
})

t.test('negative entries and query pages keep the short stale-if-error retention', async (t) => {
  const app = await build(t, services, { STALE_IF_ERROR_SHORT_TTL: '60', STALE_IF_ERROR_TTL: '86400', QUERY_RESULTS_TTL: '900', TABLE_ITEMS_TTL: '1800' })
  const p = app.config.REDIS_PREFIX
  async function entryOf(url: string) {
    const before = new Set(await keysOf(`${p}:{orders}:e:*`))
    const res = await app.inject({ url, headers: auth('read') })
    const added = (await keysOf(`${p}:{orders}:e:*`)).filter((k) => !before.has(k))
    return { res, added, pttl: added.length === 1 ? await redis.pttl(added[0]!) : -1 }
  }
  // The scan page needs the table's details: read them first so each request below adds one entry.
  await app.inject({ url: '/tables/orders', headers: auth('read') })

  const query = await entryOf('/tables/orders/query?pk=c1&limit=3')
  t.equal(query.res.statusCode, 200)
  t.match(query.res.headers['cache-control'], /stale-if-error=60(,|$)/)
  t.ok(query.pttl > 0 && query.pttl <= (900 + 60) * 1000, `a query page is kept ttl + 60 s (${query.pttl} ms)`)

  const missing = await entryOf('/tables/orders/items/nobody?sk=1')
  t.equal(missing.res.statusCode, 404)
  t.match(missing.res.headers['cache-control'], /stale-if-error=60(,|$)/)
  t.ok(missing.pttl > 0 && missing.pttl <= (app.config.NEGATIVE_TTL + 60) * 1000, `a negative entry is kept its ttl + 60 s (${missing.pttl} ms)`)

  const page = await entryOf('/tables/orders/items?limit=3')
  t.equal(page.res.statusCode, 200)
  t.match(page.res.headers['cache-control'], /stale-if-error=86400/)
  t.ok(page.pttl > (1800 + 60) * 1000, `a scan page keeps STALE_IF_ERROR_TTL (${page.pttl} ms)`)
})

t.test('filter: FILTER_MAX_BYTES on queries and exports, refused before anything is stored; the export list shows a summary', async (t) => {
  const app = await build(t, services, { API_KEYS_FILE: keysFile, FILTER_MAX_BYTES: '2048' })
  await app.inject({ url: '/tables/orders', headers: auth('read') })
  const before = await footprint(app)

  const big = encodeURIComponent(JSON.stringify(filterOf(2100)))
  const query = await app.inject({ url: `/tables/orders/query?pk=c1&filter=${big}`, headers: auth('read') })
  t.equal(query.statusCode, 400)
  t.equal(query.json().code, 'DC_ERR_FILTER_TOO_LARGE')
  t.match(query.json().message, /2048 bytes allowed/)

  for (const filter of [filterOf(2100), JSON.stringify(filterOf(2100))]) {
    const created = await app.inject({ method: 'POST', url: '/exports', headers: as('acme'), payload: { table: 'orders', format: 'jsonl', filter } })
    t.equal(created.statusCode, 400, `refused as ${typeof filter}`)
    t.equal(created.json().code, 'DC_ERR_FILTER_TOO_LARGE')
  }
  t.same(await footprint(app), before, 'nothing cached, stored or queued')

  const accepted = await app.inject({
    method: 'POST',
    url: '/exports',
    headers: as('acme'),
    payload: { table: 'orders', format: 'jsonl', filter: filterOf(1500) },
  })
  t.equal(accepted.statusCode, 202)
  const { id } = accepted.json()
  const listed = (await app.inject({ url: '/exports', headers: as('acme') })).json().exports.find((e: { id: string }) => e.id === id)
  t.ok(listed.filter.length < 300, `the list carries a summary (${listed.filter.length} characters)`)
  t.match(listed.filter, /bytes\)$/)
  const one = (await app.inject({ url: `/exports/${id}`, headers: as('acme') })).json()
  t.same(JSON.parse(one.filter), filterOf(1500), 'GET /exports/:id has the whole filter')
})

t.test('exports: TENANT_EXPORTS_MAX per tenant, 429 before anything is stored or queued, freed by a cancel', async (t) => {
  const app = await build(t, services, { API_KEYS_FILE: keysFile, TENANT_EXPORTS_MAX: '2' })
  const create = (who: keyof typeof TENANT_KEYS) =>
    app.inject({ method: 'POST', url: '/exports', headers: as(who), payload: { table: 'orders', format: 'csv' } })

  const [a1, a2] = [await create('acme'), await create('acme2')]
  t.same([a1.statusCode, a2.statusCode], [202, 202])
  const before = await footprint(app)
  const refused = await create('acme')
  t.equal(refused.statusCode, 429)
  t.equal(refused.json().code, 'DC_ERR_EXPORT_QUOTA')
  t.ok(refused.headers['retry-after'], 'with Retry-After')
  t.same(await footprint(app), before, 'nothing stored or queued')

  // Two tenants at once: globex's limit is its own, and acme's refusal did not touch it.
  const globex = await Promise.all([create('globex'), create('globex')])
  t.same(
    globex.map((r) => r.statusCode),
    [202, 202],
  )
  t.equal((await create('globex')).statusCode, 429)

  const cancelled = await app.inject({ method: 'DELETE', url: `/exports/${a1.json().id}`, headers: as('acme') })
  t.equal(cancelled.statusCode, 200)
  t.equal((await create('acme')).statusCode, 202, 'a cancelled export frees its slot')
  t.equal((await create('globex')).statusCode, 429, 'and only for its own tenant')
})

t.test('batches: TENANT_BATCHES_MAX and TENANT_BATCHES_MB per tenant, 429 before anything is stored or queued', async (t) => {
  const app = await build(t, services, { API_KEYS_FILE: keysFile, TENANT_BATCHES_MAX: '2', TENANT_BATCHES_MB: '1' })
  let n = 0
  const send = (who: keyof typeof TENANT_KEYS, operations = [{ put: { PK: 'b', SK: n++, note: 'x' } }]) =>
    app.inject({ method: 'POST', url: '/tables/orders/batches', headers: as(who), payload: { format: 'document', operations } })

  t.same([(await send('acme')).statusCode, (await send('acme2')).statusCode], [202, 202])
  const before = await footprint(app)
  const refused = await send('acme')
  t.equal(refused.statusCode, 429)
  t.equal(refused.json().code, 'DC_ERR_BATCH_QUOTA')
  t.match(refused.json().message, /2 unfinished batches/)
  t.same(await footprint(app), before, 'nothing stored or queued')
  t.equal((await send('globex')).statusCode, 202, 'another tenant is counted apart')

  // ~1.1 MB of incompressible operations is past a 1 MB budget on its own.
  const heavy = Array.from({ length: 5 }, (_, i) => ({ put: { PK: 'heavy', SK: i, note: randomBytes(225_000).toString('base64') } }))
  const beforeHeavy = await footprint(app)
  const tooBig = await send('initech', heavy)
  t.equal(tooBig.statusCode, 429)
  t.equal(tooBig.json().code, 'DC_ERR_BATCH_QUOTA')
  t.match(tooBig.json().message, /1 MB/)
  t.same(await footprint(app), beforeHeavy, 'nothing of it stored or queued')
  t.equal((await send('initech', heavy.slice(0, 2))).statusCode, 202, 'a lighter batch of the same tenant fits')
})

/** Opens an event stream; resolves with its status once the head arrives (the request stays open on 200). */
function openStream(
  base: string,
  id: string,
  headers: Record<string, string>,
): Promise<{ status: number; res: IncomingMessage; req: ClientRequest; body: () => Promise<string> }> {
  return new Promise((resolve, reject) => {
    const req = get(`${base}/exports/${id}/events`, { headers: { ...headers, accept: 'text/event-stream' }, agent: false }, (res) => {
      resolve({
        status: res.statusCode ?? 0,
        res,
        req,
        body: () =>
          new Promise((done) => {
            let text = ''
            res.on('data', (c) => (text += c))
            res.on('end', () => done(text))
          }),
      })
    })
    req.on('error', reject)
  })
}

t.test('150 event streams from one key: the ones past KEY_STREAMS_MAX are refused; other keys unaffected; closing frees', async (t) => {
  const app = await build(t, services, { API_KEYS_FILE: keysFile, SSE_KEEPALIVE_MS: '60000' })
  t.equal(app.config.KEY_STREAMS_MAX, 100, 'the default cap')
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const exportOf = async (who: keyof typeof TENANT_KEYS) =>
    (await app.inject({ method: 'POST', url: '/exports', headers: as(who), payload: { table: 'orders', format: 'csv' } })).json().id as string
  const acmeExport = await exportOf('acme')
  const globexExport = await exportOf('globex')
  const streams: Array<Awaited<ReturnType<typeof openStream>>> = []
  t.teardown(() => {
    for (const s of streams) s.req.destroy()
  })

  for (let i = 0; i < 150; i++) streams.push(await openStream(base, acmeExport, as('acme')))
  const open = streams.filter((s) => s.status === 200)
  const refused = streams.filter((s) => s.status === 429)
  t.equal(open.length, 100, '100 streams open')
  t.equal(refused.length, 50, 'the other 50 refused')
  t.equal(JSON.parse(await refused[0]!.body()).code, 'DC_ERR_STREAM_QUOTA')
  t.equal(await redis.zcard(app.keys.quota('stream', keyId(TENANT_KEYS.acme), 'members')), 100, 'counted in Redis, for the fleet')

  const sameTenant = await openStream(base, acmeExport, as('acme2'))
  const otherTenant = await openStream(base, globexExport, as('globex'))
  streams.push(sameTenant, otherTenant)
  t.same([sameTenant.status, otherTenant.status], [200, 200], "another key's streams are its own, in the same tenant or another")

  for (const s of open.slice(0, 10)) s.req.destroy()
  await waitFor('closed streams to free their slots', async () => (await redis.zcard(app.keys.quota('stream', keyId(TENANT_KEYS.acme), 'members'))) === 90)
  const again = []
  for (let i = 0; i < 11; i++) {
    const s = await openStream(base, acmeExport, as('acme'))
    streams.push(s)
    again.push(s.status)
  }
  t.same(again, [...Array(10).fill(200), 429], 'exactly the freed slots are available again')
})

/** A raw connection with what it received and whether the server closed it. */
function rawConnection(port: number): Promise<{ socket: Socket; received: () => string; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let data = ''
    socket.setEncoding('utf8')
    socket.on('data', (c) => (data += c))
    const closed = new Promise<void>((done) => socket.on('close', () => done()))
    socket.on('error', () => {})
    socket.once('connect', () => resolve({ socket, received: () => data, closed }))
    socket.once('error', reject)
  })
}

/** Resolves true when `closed` settles within `ms`, false otherwise. */
const closesWithin = (closed: Promise<void>, ms: number) => Promise.race([closed.then(() => true), sleep(ms).then(() => false)])

t.test('connections: a trickled body is cut at REQUEST_TIMEOUT_MS, idle ones at CONNECTION_TIMEOUT_MS, event streams live on, 401 closes', async (t) => {
  const REQUEST_TIMEOUT_MS = 400
  const CONNECTION_TIMEOUT_MS = 600
  const app = await build(t, services, {
    API_KEYS_FILE: keysFile,
    REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    CONNECTION_TIMEOUT_MS: String(CONNECTION_TIMEOUT_MS),
    SSE_KEEPALIVE_MS: '60000',
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  // Generous: Node checks the timeouts every REQUEST_TIMEOUT_MS / 4; a loaded machine may take far longer.
  const bound = 50 * Math.max(REQUEST_TIMEOUT_MS, CONNECTION_TIMEOUT_MS)
  const before = await footprint(app)

  const trickle = await rawConnection(port)
  const body = JSON.stringify({ operations: [{ put: { PK: 'slow', SK: 1, note: 'y'.repeat(200) } }] })
  trickle.socket.write(
    `POST /tables/orders/batches HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TENANT_KEYS.acme}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
  )
  let sent = 0
  const dribble = setInterval(() => {
    // One byte every 50 ms: always active, never finished within the timeout.
    if (sent < body.length - 1 && !trickle.socket.destroyed) trickle.socket.write(body[sent++]!)
  }, 50)
  t.teardown(() => clearInterval(dribble))
  t.ok(await closesWithin(trickle.closed, bound), 'the server cut the trickled request')
  clearInterval(dribble)
  t.ok(sent < body.length - 1, 'before the body was complete')
  t.match(trickle.received(), /^HTTP\/1\.1 408/, 'with 408 Request Timeout')
  t.same(await footprint(app), before, 'nothing stored or queued')

  const silent = await rawConnection(port)
  t.ok(await closesWithin(silent.closed, bound), 'a connection that sends nothing is closed')

  const exportId = (await app.inject({ method: 'POST', url: '/exports', headers: as('acme'), payload: { table: 'orders', format: 'csv' } })).json().id
  const stream = await openStream(`http://127.0.0.1:${port}`, exportId, as('acme'))
  t.equal(stream.status, 200)
  let streamClosed = false
  stream.res.on('close', () => (streamClosed = true))
  // Three times the longer timeout with no keep-alive due: a stream must outlive both.
  await sleep(3 * Math.max(REQUEST_TIMEOUT_MS, CONNECTION_TIMEOUT_MS))
  t.notOk(streamClosed, 'the event stream lives on past both timeouts')
  stream.req.destroy()

  const wrongKey = await rawConnection(port)
  wrongKey.socket.write('GET /tables HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nAuthorization: Bearer not-a-key-of-anyone-123\r\n\r\n')
  t.ok(await closesWithin(wrongKey.closed, bound), 'the server closes the connection after a 401')
  t.match(wrongKey.received(), /^HTTP\/1\.1 401/)
  t.match(wrongKey.received(), /\r\nconnection: close\r\n/i)

  const injected = await app.inject({ url: '/tables', headers: { authorization: 'Bearer wrong-key-000000000000' } })
  t.equal(injected.statusCode, 401)
  t.equal(injected.headers.connection, 'close')
})

t.test('connections: MAX_CONNECTIONS caps the open connections of a process', async (t) => {
  const app = await build(t, services, { MAX_CONNECTIONS: '3' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const held = []
  for (let i = 0; i < 3; i++) {
    const c = await rawConnection(port)
    c.socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n')
    await waitFor('an answer', async () => c.received().includes('\r\n\r\n'))
    t.match(c.received(), /^HTTP\/1\.1 200/)
    held.push(c)
  }
  const extra = await rawConnection(port)
  extra.socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n')
  t.ok(await closesWithin(extra.closed, 30_000), 'a fourth connection is closed')
  t.equal(extra.received(), '', 'without an answer')
  held[0]!.socket.destroy()
  await held[0]!.closed
  const answered = await waitFor('a slot under the cap', async () => {
    const c = await rawConnection(port)
    c.socket.write('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    await c.closed
    return /^HTTP\/1\.1 200/.test(c.received()) && c.received()
  })
  t.match(answered, /^HTTP\/1\.1 200/, 'a closed connection makes room again')
  for (const c of held) c.socket.destroy()
})
