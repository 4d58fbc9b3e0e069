import t from 'tap'
import { auth, build, uniquePrefix } from '../helpers/app.ts'
import { startServices } from '../helpers/services.ts'
import { createTable, testDynamo } from '../helpers/tables.ts'

const services = await startServices(t, { ownRedis: true })
await createTable(testDynamo(t, services.dynamoEndpoint), 'limited', { id: 'S' })

const isErrorShape = (body: Record<string, unknown>, statusCode: number, code: string) =>
  body.statusCode === statusCode && body.code === code && Object.keys(body).sort().join() === 'code,error,message,statusCode'

t.test('600 a minute per key across two API instances: never more, at most 1.5 leases fewer; 429 after', async (t) => {
  const prefix = uniquePrefix()
  const limited = { REDIS_PREFIX: prefix, RATE_LIMIT_PER_MIN: '600' }
  const apis = [await build(t, services, limited), await build(t, services, limited)]
  // Leases of 600 / 20 = 30 far from the limit: the other instance may hold up to 1.5 of them unspent.
  const tolerance = 45
  const statuses: number[] = []
  for (let batch = 0; batch < 16; batch++) {
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => apis[i % 2]!.inject({ url: '/tables', headers: auth('read') })))
    statuses.push(...answers.map((r) => r.statusCode))
  }
  const admitted = statuses.filter((s) => s === 200).length
  t.same([...new Set(statuses)].sort(), [200, 429], 'answers are 200 or 429, nothing else')
  t.ok(admitted <= 600, `never more than the limit fleet-wide: ${admitted} of 800 admitted`)
  t.ok(admitted >= 600 - tolerance, `within the stated tolerance: ${admitted} >= ${600 - tolerance}`)
  t.same([...new Set(statuses.slice(0, 600 - tolerance))], [200], 'the first 555 all pass')

  const last = await apis[0]!.inject({ url: '/tables/limited', headers: auth('read') })
  t.equal(last.statusCode, 429, 'past the limit refused, on either instance')
  t.ok(isErrorShape(last.json(), 429, 'DC_ERR_RATE_LIMITED'), last.body)
  const retryAfter = Number(last.headers['retry-after'])
  t.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After: ${retryAfter}`)
  t.equal(last.headers['ratelimit-limit'], '600')
  t.equal(last.headers['ratelimit-remaining'], '0')
  t.match(last.headers['ratelimit-reset'], /^\d+$/)
  t.equal((await apis[1]!.inject({ url: '/tables', headers: auth('read') })).statusCode, 429, 'the other instance agrees')

  const other = await apis[1]!.inject({ url: '/tables', headers: auth('admin') })
  t.equal(other.statusCode, 200, 'another key is unaffected')
  t.equal(other.headers['ratelimit-limit'], '600')
  t.equal(other.headers['ratelimit-remaining'], '599')
  t.match(other.headers['ratelimit-reset'], /^\d+$/)
})

t.test('one instance admits exactly the limit: nothing is held elsewhere', async (t) => {
  const app = await build(t, services, { REDIS_PREFIX: uniquePrefix(), RATE_LIMIT_PER_MIN: '100' })
  const statuses: number[] = []
  for (let batch = 0; batch < 3; batch++) {
    const answers = await Promise.all(Array.from({ length: 50 }, () => app.inject({ url: '/tables', headers: auth('read') })))
    statuses.push(...answers.map((r) => r.statusCode))
  }
  t.equal(statuses.filter((s) => s === 200).length, 100)
  t.equal(statuses.filter((s) => s === 429).length, 50)
})

t.test('health and readiness are never limited; unauthenticated routes count per address', async (t) => {
  const app = await build(t, services, { RATE_LIMIT_PER_MIN: '3' })
  for (let i = 0; i < 10; i++) {
    const health = await app.inject('/health')
    t.equal(health.statusCode, 200)
    t.equal(health.headers['ratelimit-limit'], undefined)
    t.equal((await app.inject('/ready')).statusCode, 200)
  }
  const docs = []
  for (let i = 0; i < 4; i++) docs.push((await app.inject('/openapi.json')).statusCode)
  t.same(docs, [200, 200, 200, 429], 'the document is limited by client address')
  t.equal((await app.inject({ url: '/tables', headers: auth('read') })).statusCode, 200, 'a key has its own budget')
})

t.test('wrong keys count against the client address, so key guessing is slowed down', async (t) => {
  const app = await build(t, services, { RATE_LIMIT_PER_MIN: '3', REDIS_PREFIX: uniquePrefix() })
  const guesses = []
  for (let i = 0; i < 5; i++) {
    const res = await app.inject({ url: '/tables', headers: { authorization: `Bearer guess-${i}-0000000000` } })
    guesses.push(res.statusCode)
  }
  t.same(guesses, [401, 401, 401, 429, 429], 'three guesses a minute, then 429')
  t.equal((await app.inject({ url: '/tables', headers: auth('read') })).statusCode, 200, 'a valid key keeps its own budget')
  const forbidden = await app.inject({ method: 'DELETE', url: '/cache', headers: auth('read') })
  t.equal(forbidden.statusCode, 403, 'a key without the scope is still 403, counted against the key')
})

t.test('with Redis down requests are neither refused nor delayed by the limiter', async (t) => {
  const app = await build(t, services, { RATE_LIMIT_PER_MIN: '2' })
  await services.redis!.kill()
  t.teardown(() => services.redis!.start())
  // Let the connection notice, as it would long before the next request in production.
  for (let i = 0; i < 50 && app.redis.status === 'ready'; i++) await new Promise((r) => setTimeout(r, 20))
  // Not delayed: a limiter that waited for Redis would hang until it came back (it does not in this test),
  // so each request is only required to finish; no bound on its speed, which depends on the machine.
  for (let i = 0; i < 5; i++) {
    const res = await app.inject({ url: '/tables', headers: auth('read') })
    t.equal(res.statusCode, 200, res.body)
    t.equal(res.headers['x-cache'], 'BYPASS')
  }
})
