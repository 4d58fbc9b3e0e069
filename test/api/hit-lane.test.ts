import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { gunzipSync } from 'node:zlib'
import type { FastifyInstance } from 'fastify'
import pino from 'pino'
import t, { type Test } from 'tap'
import { buildApp } from '../../src/api/app.ts'
import { KEYS, testConfig, uniquePrefix } from '../helpers/app.ts'
import { startServices } from '../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../helpers/tables.ts'
import type { Tap } from '../helpers/tap.ts'
import { waitFor } from '../helpers/wait.ts'

// The hit lane answers a repeated fresh hit in front of Fastify. Shown here over real HTTP: the same bytes
// and headers as Fastify's answer, two tables of one shape and two key holders read at once through two
// API processes, writes seen at once, the rate limit, metrics, statistics and the log line.
const services = await startServices(t)
const dynamo = testDynamo(t, services.dynamoEndpoint)
const TABLES = ['lane-a', 'lane-b'] as const
for (const table of TABLES) {
  await createTable(dynamo, table, { pk: 'S', sk: 'N' })
  await putItems(
    dynamo,
    table,
    Array.from({ length: 12 }, (_, i) => ({ pk: { S: `p${i % 3}` }, sk: { N: String(i) }, from: { S: table }, v: { N: '1' } })),
  )
}

const KEY = { alpha: 'alpha-read-key-000000001', beta: 'beta-read-key-0000000001' } as const
const dir = await mkdtemp(join(tmpdir(), 'dc-lane-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const keysFile = join(dir, 'keys.json')
await writeFile(
  keysFile,
  JSON.stringify([
    { key: KEY.alpha, scopes: ['read'], tenant: 'alpha', tables: ['lane-a'] },
    { key: KEY.beta, scopes: ['read'], tenant: 'beta', tables: ['lane-b'] },
  ]),
)
const bearer = (key: string) => `Bearer ${key}`

/** An API process listening on 127.0.0.1 (the lane sits in its HTTP server: inject() never reaches it). */
async function listening(t: Tap, overrides: Record<string, string>, logger?: pino.Logger): Promise<{ app: FastifyInstance; port: number }> {
  const app = await buildApp(testConfig(services, { API_KEYS_FILE: keysFile, NEAR_CACHE_TTL_MS: '60000', ...overrides }), logger ? { logger } : {})
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  // The near cache keeps nothing until its invalidation feed is subscribed.
  if (app.config.NEAR_CACHE_TTL_MS > 0) await waitFor('the near cache', async () => app.cache.nearCacheLive())
  return { app, port: (app.server.address() as AddressInfo).port }
}

interface Answer {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
}

const agent = new Agent({ keepAlive: true, maxSockets: 16 })
t.teardown(() => agent.destroy())

/** A GET with exactly these headers, the body as sent (no decompression). */
function get(port: number, path: string, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers, agent }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

const lane = (app: FastifyInstance) => {
  if (!app.hitLane) throw new Error('the hit lane is off')
  return app.hitLane
}

/** Reads until the lane answers (the read is then learned); that first answer of the lane. */
async function learned(app: FastifyInstance, port: number, path: string, headers: Record<string, string>): Promise<Answer> {
  return waitFor(`the lane to answer ${path}`, async () => {
    const before = lane(app).answered
    const answer = await get(port, path, headers)
    return lane(app).answered > before && answer
  })
}

/** Fastify's own answer to the same request (inject() never reaches the lane), with the headers Node's server adds. */
async function fastifyAnswer(app: FastifyInstance, path: string, headers: Record<string, string>, overHttp: Answer): Promise<Answer> {
  const res = await app.inject({ url: path, headers })
  const named: IncomingHttpHeaders = {}
  for (const [name, value] of Object.entries(res.headers)) if (value !== undefined) named[name] = String(value)
  for (const name of ['date', 'connection', 'keep-alive']) named[name] = overHttp.headers[name] as string
  return { status: res.statusCode, headers: named, body: res.rawPayload }
}

/** Headers whose values change from one answer to the next, and the shape each must keep. */
const MOVING: Record<string, RegExp> = {
  date: /^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/,
  age: /^\d+$/,
  'ratelimit-remaining': /^\d+$/,
  'ratelimit-reset': /^\d+$/,
  'cache-status': /^dynacache; hit; ttl=\d+$/,
  'cache-control': /^private, max-age=\d+, stale-while-revalidate=\d+, stale-if-error=\d+$/,
}

function sameAnswer(t: Test, lane: Answer, fastify: Answer, what: string) {
  t.equal(lane.status, fastify.status, `${what}: status`)
  t.same(Object.keys(lane.headers).sort(), Object.keys(fastify.headers).sort(), `${what}: the same header names`)
  for (const [name, value] of Object.entries(fastify.headers)) {
    const shape = MOVING[name]
    if (shape) t.match(lane.headers[name], shape, `${what}: ${name} ${lane.headers[name]}`)
    else t.equal(lane.headers[name], value, `${what}: ${name}`)
  }
  t.equal(lane.headers['cache-control']?.replace(/max-age=\d+/, ''), fastify.headers['cache-control']?.replace(/max-age=\d+/, ''), `${what}: cache-control`)
  t.ok(lane.body.equals(fastify.body), `${what}: the same body bytes`)
}

const READS = ['/tables/lane-a/items/p0?sk=3', '/tables/lane-a/query?pk=p1&limit=3', '/tables/lane-a/items?limit=5', '/tables/lane-a'] as const

const VARIANTS = [
  { cors: '', near: '60000' },
  { cors: '*', near: '60000' },
  { cors: 'https://dash.example', near: '60000' },
  // Without a near cache the lane reads Redis once, as Fastify's hit would.
  { cors: '', near: '0' },
]

for (const { cors, near } of VARIANTS) {
  t.test(`a learned read is answered in the lane with Fastify's bytes and headers (CORS_ORIGINS=${cors || 'empty'}, NEAR_CACHE_TTL_MS=${near})`, async (t) => {
    const { app, port } = await listening(t, { REDIS_PREFIX: uniquePrefix(), CORS_ORIGINS: cors, NEAR_CACHE_TTL_MS: near })
    for (const path of READS) {
      // Fastify's answer over HTTP: the headers Node's server adds (Date, Connection, Keep-Alive).
      const overHttp = await get(port, path, { authorization: bearer(KEYS.read) })
      for (const client of ['gzip', 'plain', '304'] as const) {
        const headers: Record<string, string> = { authorization: bearer(KEYS.read) }
        if (client !== 'plain') headers['accept-encoding'] = 'gzip, deflate, br'
        const first = await learned(app, port, path, headers)
        if (client === '304') headers['if-none-match'] = String(first.headers.etag)
        const before = lane(app).answered
        const answer = await get(port, path, headers)
        t.equal(lane(app).answered, before + 1, `${path} (${client}): answered in the lane`)
        sameAnswer(t, answer, await fastifyAnswer(app, path, headers, overHttp), `${path} (${client})`)
        t.equal(answer.status, client === '304' ? 304 : 200)
        t.equal(answer.headers['content-encoding'], client === 'gzip' ? 'gzip' : undefined, `${path} (${client}): encoding`)
      }
    }
  })
}

const ITEM_PATHS = (table: string) => [
  `/tables/${table}/items/p0?sk=3`,
  `/tables/${table}/items/p2?sk=5`,
  `/tables/${table}/query?pk=p1&limit=3`,
  `/tables/${table}/items?limit=5`,
]

t.test("two tables of one shape, three key holders and two API processes at once: every answer is its own table's", async (t) => {
  const prefix = uniquePrefix()
  const servers = [await listening(t, { REDIS_PREFIX: prefix }), await listening(t, { REDIS_PREFIX: prefix })]
  const readers = [
    { key: KEYS.read, sees: ['lane-a', 'lane-b'] },
    { key: KEY.alpha, sees: ['lane-a'] },
    { key: KEY.beta, sees: ['lane-b'] },
  ]
  const jobs = servers.flatMap((server) =>
    readers.flatMap((reader) =>
      TABLES.flatMap((table) => ITEM_PATHS(table).flatMap((path) => [true, false].map((gzip) => ({ server, reader, table, path, gzip })))),
    ),
  )
  const run = async ({ server, reader, table, path, gzip }: (typeof jobs)[number]) => {
    const answer = await get(server.port, path, { authorization: bearer(reader.key), ...(gzip ? { 'accept-encoding': 'gzip' } : {}) })
    const text = (answer.headers['content-encoding'] === 'gzip' ? gunzipSync(answer.body) : answer.body).toString()
    return { answer, text, visible: reader.sees.includes(table), table }
  }
  // Each read three times, one after another: the second is Fastify's fresh hit, which the lane learns.
  for (let round = 0; round < 3; round++) for (const job of jobs) await run(job)
  const before = servers.map(({ app }) => lane(app).answered)
  // Then every read eight times over, shuffled, 16 at a time over both processes.
  const shuffled = Array.from({ length: 8 }, () => jobs)
    .flat()
    .map((job) => ({ job, order: Math.random() }))
    .sort((a, b) => a.order - b.order)
  const results = await Promise.all(shuffled.map(({ job }) => run(job)))
  let wrong = 0
  for (const { answer, text, visible, table } of results) {
    const other = table === 'lane-a' ? 'lane-b' : 'lane-a'
    const right = visible
      ? answer.status === 200 && text.includes(`"from":"${table}"`) && !text.includes(`"from":"${other}"`)
      : answer.status === 404 && text.includes('DC_ERR_TABLE_NOT_FOUND') && !text.includes('"from"')
    if (!right) wrong++
  }
  t.equal(wrong, 0, `${results.length} answers, each from its own table, and a hidden table's a 404`)
  for (const [i, { app }] of servers.entries())
    t.ok(lane(app).answered > before[i]!, `process ${i + 1} answered ${lane(app).answered - before[i]!} of them in the lane`)
})

t.test('a write is seen at once by the process that made it and through the feed by the other; no old answer after', async (t) => {
  const prefix = uniquePrefix()
  const [one, two] = [await listening(t, { REDIS_PREFIX: prefix }), await listening(t, { REDIS_PREFIX: prefix })]
  const path = '/tables/lane-b/items/p1?sk=4'
  const headers = { authorization: bearer(KEYS.read) }
  const version = (a: Answer) => (JSON.parse(a.body.toString()) as { v: number }).v
  for (const { app, port } of [one!, two!]) {
    await learned(app, port, path, headers)
    const before = lane(app).answered
    t.equal(version(await get(port, path, headers)), 1, 'the item as first written')
    t.equal(lane(app).answered, before + 1, 'answered in the lane')
  }
  const put = await one!.app.inject({
    method: 'PUT',
    url: path,
    headers: { authorization: bearer(KEYS.write), 'content-type': 'application/json' },
    payload: '{"from":"lane-b","v":2}',
  })
  t.equal(put.statusCode, 200, put.body)
  t.equal(version(await get(one!.port, path, headers)), 2, 'the writing process answers the new item at once')
  await waitFor('the other process to see the write', async () => version(await get(two!.port, path, headers)) === 2)
  const after = await Promise.all(Array.from({ length: 20 }, (_, i) => get((i % 2 === 0 ? one : two)!.port, path, headers)))
  t.same([...new Set(after.map(version))], [2], 'and every answer after it, from either process, is the new item')
})

t.test('the lane spends the same fleet-wide budget: two processes admit at most RATE_LIMIT_PER_MIN', async (t) => {
  const prefix = uniquePrefix()
  const servers = [
    await listening(t, { REDIS_PREFIX: prefix, RATE_LIMIT_PER_MIN: '40' }),
    await listening(t, { REDIS_PREFIX: prefix, RATE_LIMIT_PER_MIN: '40' }),
  ]
  const path = '/tables/lane-a/items/p0?sk=0'
  const statuses: number[] = []
  const started = Date.now()
  for (let i = 0; i < 90; i++) {
    const answer = await get(servers[i % 2]!.port, path, { authorization: bearer(KEY.alpha), 'accept-encoding': 'gzip' })
    statuses.push(answer.status)
    if (answer.status === 429) {
      t.match(answer.headers['retry-after'], /^\d+$/, 'a refusal says when to retry')
      t.match(answer.body.toString(), /DC_ERR_RATE_LIMITED/)
    }
  }
  const admitted = statuses.filter((s) => s === 200).length
  t.equal(admitted + statuses.filter((s) => s === 429).length, 90, 'each request admitted or refused')
  // The window is a minute from the first lease: a run that took longer saw two windows.
  if (Date.now() - started < 55_000) t.ok(admitted <= 40, `admitted ${admitted}, at most 40 in the window`)
  // Tokens a process holds unspent are lost to the other: 1.5 leases of 2 (docs/security.md, Rate limits).
  t.ok(admitted >= 37, `admitted ${admitted}, within 3 of the limit`)
  for (const { app } of servers) t.ok(lane(app).answered > 0, `the lane answered ${lane(app).answered} of them`)
})

t.test('a lane answer counts in metrics, statistics and the request log as a Fastify hit does', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    },
  })
  const { app, port } = await listening(t, { REDIS_PREFIX: uniquePrefix() }, pino({ level: 'info' }, sink))
  const path = '/tables/lane-a/query?pk=p2&limit=2'
  const headers = { authorization: bearer(KEYS.read), 'x-request-id': 'lane-req-1' }
  await learned(app, port, path, headers)
  const admin = { authorization: bearer(KEYS.admin) }
  const counts = async () => {
    const stats = (await app.inject({ url: '/cache/stats', headers: admin })).json() as { tables: Record<string, { hits: number }> }
    const metrics = (await app.inject({ url: '/metrics', headers: admin })).body
    const reads = /dynacache_cache_reads_total\{table="lane-a",outcome="hit"\} (\d+)/.exec(metrics)
    const timed = /dynacache_http_request_duration_seconds_count\{method="GET",route="\/tables\/:table\/query",status_code="200"\} (\d+)/.exec(metrics)
    return { hits: stats.tables['lane-a']?.hits ?? 0, reads: Number(reads?.[1] ?? 0), timed: Number(timed?.[1] ?? 0) }
  }
  const before = await counts()
  const answered = lane(app).answered
  const logged = lines.length
  for (let i = 0; i < 5; i++) t.equal((await get(port, path, headers)).status, 200)
  t.equal(lane(app).answered, answered + 5, 'five answers in the lane')
  const after = await counts()
  t.same(after, { hits: before.hits + 5, reads: before.reads + 5, timed: before.timed + 5 }, 'statistics, cache reads and request durations count each')
  const laneLines = lines.slice(logged).filter((l) => l.msg === 'request.completed' && l.url === path)
  t.equal(laneLines.length, 5, 'one log line per answer')
  t.match(laneLines[0], { reqId: 'lane-req-1', method: 'GET', route: '/tables/:table/query', status: 200, cache: 'HIT', table: 'lane-a', key: String })
})

t.test('what the lane leaves to Fastify: other methods, Origin, Cache-Control, an unlearned URL, a closing app', async (t) => {
  const { app, port } = await listening(t, { REDIS_PREFIX: uniquePrefix(), CORS_ORIGINS: 'https://dash.example' })
  const path = '/tables/lane-a/items/p2?sk=2'
  const headers = { authorization: bearer(KEYS.read) }
  await learned(app, port, path, headers)
  const untouched = async (what: string, answer: Promise<Answer>, check: (a: Answer) => boolean) => {
    const before = lane(app).answered
    const a = await answer
    t.equal(lane(app).answered, before, `${what}: not in the lane`)
    t.ok(check(a), `${what}: answered by Fastify (${a.status} ${a.headers['x-cache'] ?? ''})`)
  }
  await untouched(
    'Origin',
    get(port, path, { ...headers, origin: 'https://dash.example' }),
    (a) => a.headers['access-control-allow-origin'] === 'https://dash.example',
  )
  await untouched('Cache-Control: no-cache', get(port, path, { ...headers, 'cache-control': 'no-cache' }), (a) => a.headers['x-cache'] === 'MISS')
  await untouched('another spelling of the URL', get(port, `${path}&`, headers), (a) => a.headers['x-cache'] === 'HIT')
  await untouched('another key', get(port, path, { authorization: bearer(KEY.beta) }), (a) => a.status === 404)
  await untouched('a wrong key', get(port, path, { authorization: bearer('not-a-key-at-all-0000001') }), (a) => a.status === 401)
  const head = new Promise<Answer>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'HEAD', headers, agent }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.alloc(0) }))
    })
    req.on('error', reject)
    req.end()
  })
  await untouched('HEAD', head, (a) => a.status === 200)
  const before = lane(app).answered
  t.equal((await get(port, path, headers)).status, 200)
  t.equal(lane(app).answered, before + 1, 'the learned request itself is still in the lane')
  lane(app).close()
  await untouched('after close', get(port, path, headers), (a) => a.headers['x-cache'] === 'HIT')
})

t.test('without a near cache, a read that is no longer a fresh hit goes on to Fastify, counted once by the rate limit', async (t) => {
  const { app, port } = await listening(t, { REDIS_PREFIX: uniquePrefix(), NEAR_CACHE_TTL_MS: '0', RATE_LIMIT_PER_MIN: '1000' })
  const path = '/tables/lane-b/query?pk=p0&limit=4'
  const headers = { authorization: bearer(KEY.beta) }
  const admin = { authorization: bearer(KEYS.admin) }
  await learned(app, port, path, headers)
  const seen: Array<{ cache: string; lane: boolean; remaining: number }> = []
  const read = async () => {
    const before = lane(app).answered
    const answer = await get(port, path, headers)
    t.equal(answer.status, 200)
    t.match(answer.body.toString(), '"from":"lane-b"')
    seen.push({ cache: String(answer.headers['cache-status']), lane: lane(app).answered > before, remaining: Number(answer.headers['ratelimit-remaining']) })
  }
  await read()
  t.equal((await app.inject({ method: 'DELETE', url: '/tables/lane-b/cache', headers: admin })).statusCode, 200)
  await read()
  await read()
  t.equal((await app.inject({ method: 'DELETE', url: '/tables/lane-b/cache?mode=soft', headers: admin })).statusCode, 200)
  await read()
  await read()
  t.match(
    seen,
    [
      { lane: true, cache: /^dynacache; hit; ttl=/ },
      { lane: false, cache: /fwd=uri-miss/ },
      { lane: true, cache: /^dynacache; hit; ttl=/ },
      { lane: false, cache: /detail=invalidated/ },
      { lane: false, cache: /fwd=uri-miss/ },
    ],
    'a fresh hit in the lane; after a hard invalidation a miss, then the lane again; after a soft one the entry served once, stale, then a miss',
  )
  const steps = seen.slice(1).map((s, i) => seen[i]!.remaining - s.remaining)
  t.same(steps, [1, 1, 1, 1], 'each request spends exactly one token, also when the lane handed it on')
})
