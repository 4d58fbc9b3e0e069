import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import t from 'tap'
import { redactUrl } from '../../src/api/plugins/request-log.ts'
import { READY_CACHE_MS } from '../../src/api/routes/health/index.ts'
import { loggerOptions } from '../../src/shared/logger.ts'
import { startWorkerFleet } from '../../src/workers/fleet.ts'
import { auth, build, KEYS, testConfig, uniquePrefix } from '../helpers/app.ts'
import { startDynamoProxy } from '../helpers/dynamo-proxy.ts'
import { startServices, type TestServices } from '../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../helpers/tables.ts'
import { waitFor } from '../helpers/wait.ts'

/** Issue 12, item 5: readiness, driver text in answers, Bull Board guessing, token redaction, download audit. */

const services = await startServices(t)
const proxy = await startDynamoProxy(services.dynamoEndpoint)
t.teardown(() => proxy.close())
const viaProxy: TestServices = { ...services, dynamoEndpoint: proxy.endpoint }
/** Nothing listens on port 1: every DynamoDB call fails with `connect ECONNREFUSED 127.0.0.1:1`. */
const deadDynamo: TestServices = { ...services, dynamoEndpoint: 'http://127.0.0.1:1' }
const dynamo = testDynamo(t, services.dynamoEndpoint)
await createTable(dynamo, 'gadgets', { id: 'S' })
await putItems(
  dynamo,
  'gadgets',
  Array.from({ length: 12 }, (_, i) => ({ id: { S: `g${i}` }, n: { N: String(i) } })),
)

/** Driver text that must never be in an answer. */
const DRIVER_TEXT = /ECONNREFUSED|127\.0\.0\.1|:1\b|arn:aws|\bsocket\b|getaddrinfo/

/** A logger whose JSON lines the test reads. */
function capture(overrides: Record<string, string> = {}) {
  const lines: string[] = []
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean))
      done()
    },
  })
  const logger = pino(loggerOptions(testConfig(services, { LOG_LEVEL: 'info', ...overrides }), 'dynacache-api'), stream)
  const parsed = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>)
  return { logger, lines, parsed }
}

/** onResponse hooks may run just after inject() resolves. */
async function linesWith(read: () => Array<Record<string, unknown>>, msg: string, count: number) {
  await waitFor(`${count} ${msg} lines`, async () => read().filter((l) => l.msg === msg).length >= count, 5000)
  return read().filter((l) => l.msg === msg)
}

t.test('/ready: many concurrent probes make one check; the answer says ok or unavailable only', async (t) => {
  const app = await build(t, viaProxy)
  let pings = 0
  const ping = app.redis.ping.bind(app.redis)
  app.redis.ping = (() => {
    pings++
    return ping()
  }) as typeof app.redis.ping
  proxy.reset()
  // Held in flight, so every probe below arrives while the one check is running.
  proxy.setFaults({ latencyMs: 300 })
  t.teardown(() => proxy.setFaults({}))
  const answers = await Promise.all(Array.from({ length: 40 }, () => app.inject('/ready')))
  proxy.setFaults({})
  t.equal(proxy.arrived('ListTables'), 1, '40 concurrent probes: one DynamoDB check')
  t.equal(pings, 1, 'and one Redis ping')
  for (const res of answers) t.equal(res.statusCode, 200)
  t.same(answers[0]!.json(), { status: 'ok', checks: { redis: { status: 'ok' }, dynamodb: { status: 'ok', breaker: 'closed' } } })

  // Within READY_CACHE_MS the result is reused: probes cost nothing.
  const again = await app.inject('/ready')
  t.equal(again.statusCode, 200)
  t.ok(READY_CACHE_MS >= 1000 && READY_CACHE_MS <= 10_000, `cached for a few seconds (${READY_CACHE_MS} ms)`)
})

t.test('/ready with DynamoDB down: 503 unavailable, the reason only in the log', async (t) => {
  const { logger, parsed } = capture()
  const app = await build(t, deadDynamo, { DYNAMO_TIMEOUT_MS: '1000' }, { logger })
  const answers = await Promise.all(Array.from({ length: 10 }, () => app.inject('/ready')))
  for (const res of answers) {
    t.equal(res.statusCode, 503)
    t.notMatch(res.body, DRIVER_TEXT, 'no driver text in the body')
  }
  t.same(answers[0]!.json(), { status: 'unavailable', checks: { redis: { status: 'ok' }, dynamodb: { status: 'unavailable', breaker: 'closed' } } })
  const failed = parsed().filter((l) => l.msg === 'ready.check.failed')
  t.equal(failed.length, 1, 'one check for 10 probes, logged once')
  t.match(failed[0], { dependency: 'dynamodb', err: String }, 'the log says why')
})

t.test('error answers carry no driver text; the log keeps it', async (t) => {
  const { logger, parsed } = capture()
  const app = await build(t, deadDynamo, { DYNAMO_TIMEOUT_MS: '2000', BREAKER_FAILURES: '100' }, { logger })
  for (const url of ['/tables', '/tables/gadgets', '/tables/gadgets/items', '/tables/gadgets/items/g1', '/tables/gadgets/query?pk=g1']) {
    const res = await app.inject({ url, headers: auth('read') })
    t.equal(res.statusCode, 503, `${url}: 503`)
    t.equal(res.json().code, 'DC_ERR_DYNAMO_UNAVAILABLE')
    t.notMatch(res.body, DRIVER_TEXT, `${url}: ${res.json().message}`)
  }
  const warmup = await app.inject({ method: 'POST', url: '/cache/warmup', headers: auth('admin'), payload: { tables: ['gadgets'] } })
  t.notMatch(warmup.body, DRIVER_TEXT, `warmup (assertTableExists): ${warmup.body}`)
  const logged = JSON.stringify(parsed().filter((l) => l.msg === 'request.unavailable'))
  t.match(logged, /ECONNREFUSED/, 'the full reason is in the log')
})

t.test('failed Bull Board passwords are rate limited like wrong Bearer keys', async (t) => {
  const app = await build(t, services, { RATE_LIMIT_PER_MIN: '3' })
  const basic = (password: string) => ({ authorization: `Basic ${Buffer.from(`ops:${password}`).toString('base64')}` })
  const statuses: number[] = []
  for (let i = 0; i < 5; i++) statuses.push((await app.inject({ url: '/admin/queues/api/queues', headers: basic(`guess-number-${i}-0000000`) })).statusCode)
  t.same(statuses, [401, 401, 401, 429, 429], 'the 4th wrong password in a minute is refused before it is checked')
  const limited = await app.inject({ url: '/admin/queues', headers: basic('yet-another-guess-000000') })
  t.equal(limited.json().code, 'DC_ERR_RATE_LIMITED')
  t.ok(limited.headers['retry-after'], 'with Retry-After')
  const bearer = await app.inject({ url: '/tables', headers: { authorization: 'Bearer wrong-bearer-key-00000000' } })
  t.equal(bearer.statusCode, 429, 'wrong Basic passwords and wrong Bearer keys count against the same address')
  const admin = await app.inject({ url: '/admin/queues/api/queues', headers: basic(KEYS.admin) })
  t.equal(admin.statusCode, 200, 'the admin key counts against itself, not the guessed address')
  const challenge = await build(t, services)
  const wrong = await challenge.inject({ url: '/admin/queues', headers: basic('nope-nope-nope-nope-0000') })
  t.equal(wrong.statusCode, 401)
  t.match(wrong.headers['www-authenticate'], /^Basic realm="dynacache admin"/, 'the 401 still carries the Basic challenge')
})

t.test('the request log removes tokens however the query is encoded', async (t) => {
  const secret = 'S3CRET-T0KEN'
  const urls = [
    `/exports/e1/download?token=${secret}`,
    `/exports/e1/download?TOKEN=${secret}`,
    `/exports/e1/download?%74oken=${secret}`,
    `/exports/e1/download?%74%6F%6B%65%6E=${secret}`,
    `/exports/e1/download?%2574oken=${secret}`,
    `/exports/e1/download?x=1&token=${secret}&token=${secret}`,
    `/exports/e1/download?x=1;token=${secret}`,
    `/exports/e1/download?token=${encodeURIComponent(secret).replace(/./g, (c) => `%${c.charCodeAt(0).toString(16)}`)}`,
    `/exports/e1/download?to+ken=${secret}&token+=${secret}`,
    `/exports/e1/download?access_token=${secret}`,
    `/exports/e1/download?token[]=${secret}`,
    `/exports/e1/download?%ZZ&%74oken=${secret}`,
    `/exports/e1/download?${encodeURIComponent(`token=${secret}`)}`,
  ]
  for (const url of urls) {
    const out = redactUrl(url)
    t.notOk(out.includes('S3CRET') || out.toLowerCase().includes('%53%33'), `${url} -> ${out}`)
    t.match(out, /^\/exports\/e1\/download\?/, 'the path stays')
  }
  t.equal(redactUrl('/exports/e1/download?x=1&token=abc&y=2'), '/exports/e1/download?x=1&token=[redacted]&y=2', 'other parameters stay')
  t.equal(redactUrl('/tables/t/items?limit=5'), '/tables/t/items?limit=5')
  t.equal(redactUrl('/tables/t/items'), '/tables/t/items')

  const { logger, lines, parsed } = capture()
  const app = await build(t, services, {}, { logger })
  for (const url of urls) await app.inject(url)
  const done = await linesWith(parsed, 'request.completed', urls.length)
  t.equal(done.length, urls.length)
  t.notOk(lines.join('\n').includes('S3CRET'), 'no encoding of the token reaches the log')
})

t.test('every download writes an audit line: who, which export, tenant, outcome, bytes', async (t) => {
  const exportDir = await mkdtemp(join(tmpdir(), 'dc-hardening-'))
  t.teardown(() => rm(exportDir, { recursive: true, force: true }))
  const overrides = { REDIS_PREFIX: uniquePrefix(), EXPORT_DIR: exportDir, EXPORT_SEGMENTS: '1' }
  const { logger, lines, parsed } = capture()
  const app: FastifyInstance = await build(t, services, overrides, { logger })
  const fleet = await startWorkerFleet(testConfig(services, overrides), pino({ level: 'silent' }))
  t.teardown(() => fleet.close(2000))

  const created = await app.inject({ method: 'POST', url: '/exports', headers: auth('export'), payload: { table: 'gadgets', format: 'jsonl' } })
  t.equal(created.statusCode, 202, created.body)
  const { id } = created.json() as { id: string }
  const view = await waitFor(
    'the export to complete',
    async () => {
      const v = (await app.inject({ url: `/exports/${id}`, headers: auth('export') })).json() as { status: string; download: string | null }
      return v.status === 'completed' && v.download ? v : undefined
    },
    30_000,
  )

  const byKey = await app.inject({ url: `/exports/${id}/download`, headers: auth('export') })
  t.equal(byKey.statusCode, 200)
  const token = new URL(view.download!, 'http://x').searchParams.get('token')!
  const byToken = await app.inject(`/exports/${id}/download?token=${encodeURIComponent(token)}`)
  t.equal(byToken.statusCode, 200, 'the signed link works')
  const forged = await app.inject(`/exports/${id}/download?token=forged-token-value`)
  t.equal(forged.statusCode, 403)
  const unknown = await app.inject({ url: '/exports/no-such-export/download', headers: auth('export') })
  t.equal(unknown.statusCode, 404)

  const audit = await linesWith(parsed, 'export.download', 4)
  t.equal(audit.length, 4, 'one line per download request, refusals included')
  const [key, link, refused, missing] = audit
  t.match(key, { exportId: id, via: 'key', key: String, tokenId: null, status: 200, outcome: 'completed', bytes: Number(byKey.headers['content-length']) })
  t.ok((key!.bytes as number) > 0, 'bytes sent')
  t.match(key, { tenant: String }, 'the tenant of the key')
  t.match(link, {
    exportId: id,
    via: 'token',
    key: null,
    tokenId: /^[0-9a-f]{12}$/,
    status: 200,
    outcome: 'completed',
    bytes: Number(byToken.headers['content-length']),
  })
  t.match(refused, { exportId: id, via: 'token', status: 403, outcome: 'refused', bytes: null })
  t.match(missing, { exportId: 'no-such-export', via: 'key', status: 404, outcome: 'refused' })
  t.notOk(lines.join('\n').includes(token), 'the token itself is not logged')
  t.notOk(lines.join('\n').includes('forged-token-value'), 'nor a forged one')
})
