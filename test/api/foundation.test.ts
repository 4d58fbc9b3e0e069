import { CreateTableCommand } from '@aws-sdk/client-dynamodb'
import t from 'tap'
import { createDynamoClients } from '../../src/shared/dynamo/client.ts'
import { auth, build } from '../helpers/app.ts'
import { startServices } from '../helpers/services.ts'

const services = await startServices(t, { ownRedis: true })
const app = await build(t, services)

const dynamo = createDynamoClients({ DYNAMODB_ENDPOINT: services.dynamoEndpoint, AWS_REGION: 'us-east-1', DYNAMO_TIMEOUT_MS: 2000 })
t.teardown(() => dynamo.close())
await dynamo.raw.send(
  new CreateTableCommand({
    TableName: 'widgets',
    KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
    AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
    BillingMode: 'PAY_PER_REQUEST',
  }),
)

const isErrorShape = (body: Record<string, unknown>, statusCode: number, code: string) =>
  body.statusCode === statusCode &&
  body.code === code &&
  typeof body.error === 'string' &&
  typeof body.message === 'string' &&
  Object.keys(body).sort().join() === 'code,error,message,statusCode'

t.test('GET /health needs no key', async (t) => {
  const res = await app.inject('/health')
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ok' })
})

t.test('401 without a valid key, in the error shape', async (t) => {
  for (const headers of [{}, { authorization: 'Bearer nope-nope-nope-nope' }, { authorization: 'Basic abc' }, { authorization: 'Bearer' }]) {
    const res = await app.inject({ method: 'DELETE', url: '/cache', headers })
    t.equal(res.statusCode, 401, JSON.stringify(headers))
    t.ok(isErrorShape(res.json(), 401, 'DC_ERR_UNAUTHORIZED'), res.body)
  }
})

t.test('403 with a key that lacks the scope', async (t) => {
  for (const scope of ['read', 'write', 'export'] as const) {
    const res = await app.inject({ method: 'DELETE', url: '/cache', headers: auth(scope) })
    t.equal(res.statusCode, 403, scope)
    t.ok(isErrorShape(res.json(), 403, 'DC_ERR_FORBIDDEN'), res.body)
    t.match(res.json().message, /admin/)
  }
  const ok = await app.inject({ method: 'DELETE', url: '/cache', headers: auth('admin') })
  t.equal(ok.statusCode, 200, ok.body)
})

t.test('unknown routes answer 404 in the same shape', async (t) => {
  const res = await app.inject('/no/such/route?x=1')
  t.equal(res.statusCode, 404)
  t.ok(isErrorShape(res.json(), 404, 'DC_ERR_NOT_FOUND'), res.body)
  t.match(res.json().message, 'GET /no/such/route')
})

t.test('bad params are 400 DC_ERR_VALIDATION; missing and bad tables are 404', async (t) => {
  const bad = await app.inject({ method: 'DELETE', url: '/tables/a%20b/cache', headers: auth('admin') })
  t.equal(bad.statusCode, 400)
  t.ok(isErrorShape(bad.json(), 400, 'DC_ERR_VALIDATION'), bad.body)
  const missing = await app.inject({ method: 'DELETE', url: '/tables/nope-table/cache', headers: auth('admin') })
  t.equal(missing.statusCode, 404)
  t.ok(isErrorShape(missing.json(), 404, 'DC_ERR_TABLE_NOT_FOUND'), missing.body)
  const present = await app.inject({ method: 'DELETE', url: '/tables/widgets/cache', headers: auth('admin') })
  t.equal(present.statusCode, 200, present.body)
  t.same(present.json().invalidated, ['widgets'])
  t.type(present.json().purgeJobId, 'string', 'the clean-up job was queued')
})

t.test('/ready is 503 while Redis is stopped and 200 again when it returns', async (t) => {
  const before = await app.inject('/ready')
  t.equal(before.statusCode, 200, before.body)
  t.same(before.json().checks, { redis: { status: 'ok' }, dynamodb: { status: 'ok', breaker: 'closed' } })

  await services.redis!.kill()
  // /ready answers from a result cached for READY_CACHE_MS: the outage shows once that result expires.
  let down = await app.inject('/ready')
  for (let i = 0; i < 50 && down.statusCode === 200; i++) {
    await new Promise((r) => setTimeout(r, 100))
    down = await app.inject('/ready')
  }
  t.equal(down.statusCode, 503, down.body)
  t.equal(down.json().checks.redis.status, 'unavailable')
  t.equal(down.json().checks.dynamodb.status, 'ok')
  // It answered (a hang would end in the test's timeout): at worst /ready waits out its check timeout,
  // min(DYNAMO_TIMEOUT_MS, 2 s), and says Redis is unavailable instead of waiting on it.

  const enqueue = await app.inject({ method: 'DELETE', url: '/cache', headers: auth('admin') })
  t.equal(enqueue.statusCode, 503, 'a route that needs Redis answers 503')
  t.ok(enqueue.headers['retry-after'], 'with Retry-After')
  t.equal(enqueue.json().code, 'DC_ERR_REDIS_UNAVAILABLE')

  await services.redis!.start()
  let after = await app.inject('/ready')
  for (let i = 0; i < 50 && after.statusCode !== 200; i++) {
    await new Promise((r) => setTimeout(r, 100))
    after = await app.inject('/ready')
  }
  t.equal(after.statusCode, 200, 'ready again after Redis returns')
})
