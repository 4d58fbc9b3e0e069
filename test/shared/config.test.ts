import t from 'tap'
import { configReference, loadConfig } from '../../src/shared/config.ts'

const API_ENV = {
  REDIS_URL: 'redis://127.0.0.1:6379/0',
  API_KEYS: 'aaaaaaaaaaaaaaaa:read,export;bbbbbbbbbbbbbbbb:admin',
  CURSOR_SECRET: '0123456789abcdef0123',
}

t.test('defaults match product.md', async (t) => {
  const c = loadConfig({})
  t.equal(c.PORT, 3000)
  t.equal(c.HOST, '0.0.0.0')
  t.equal(c.TABLE_LIST_TTL, 1800)
  t.equal(c.TABLE_DETAILS_TTL, 3600)
  t.equal(c.QUERY_RESULTS_TTL, 900)
  t.equal(c.STALE_THRESHOLD, 0.75)
  t.equal(c.CACHE_CHUNK_BYTES, 524288)
  t.equal(c.WORKER_QUEUES, 'all')
  t.equal(c.DYNAMO_READ_BUDGET, 0)
  t.equal(c.LOG_LEVEL, 'info')
  t.ok(Object.isFrozen(c), 'config is frozen')
})

t.test('strings from the environment become numbers', async (t) => {
  const c = loadConfig({ TABLE_ITEMS_TTL: '60', STALE_THRESHOLD: '0.5', PORT: '8080' })
  t.equal(c.TABLE_ITEMS_TTL, 60)
  t.equal(c.STALE_THRESHOLD, 0.5)
  t.equal(c.PORT, 8080)
})

t.test('a bad value names the variable and what it expects', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ TABLE_ITEMS_TTL: 'abc' }, /^TABLE_ITEMS_TTL="abc" is invalid: expected an integer/],
    [{ STALE_THRESHOLD: '2' }, /^STALE_THRESHOLD="2" is invalid: expected a number/],
    [{ PORT: '70000' }, /^PORT=/],
    [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL="loud" is invalid/],
    [{ REDIS_URL: 'localhost:6379' }, /^REDIS_URL=/],
    [{ API_KEYS: 'short:read' }, /^API_KEYS=/],
    [{ API_KEYS: 'aaaaaaaaaaaaaaaa:superuser' }, /^API_KEYS=/],
    [{ EXPORT_STORAGE: 's3' }, /^EXPORT_S3_BUCKET is required/],
  ]
  for (const [env, message] of cases) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', message }, JSON.stringify(env))
  }
})

t.test('the api role requires REDIS_URL, API_KEYS and CURSOR_SECRET; workers REDIS_URL and CURSOR_SECRET', async (t) => {
  t.ok(loadConfig(API_ENV, 'api'))
  for (const missing of ['REDIS_URL', 'API_KEYS', 'CURSOR_SECRET'] as const) {
    const env: Record<string, string> = { ...API_ENV }
    delete env[missing]
    t.throws(() => loadConfig(env, 'api'), { message: new RegExp(`^${missing} is required`) })
  }
  t.throws(() => loadConfig({}, 'worker'), { message: /^REDIS_URL is required/ })
  t.throws(() => loadConfig({ REDIS_URL: API_ENV.REDIS_URL! }, 'worker'), { message: /^CURSOR_SECRET is required/ }, 'workers sign links and decode cursors')
})

t.test('every variable is documented', async (t) => {
  for (const v of configReference()) t.ok(v.description.length > 5, `${v.name} has a description`)
})
