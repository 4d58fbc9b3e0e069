import t from 'tap'
import { configReference, loadConfig } from '../../src/shared/config.ts'

const API_ENV = {
  REDIS_URL: 'redis://127.0.0.1:6379/0',
  API_KEYS: 'aaaaaaaaaaaaaaaa:read,export;bbbbbbbbbbbbbbbb:admin',
  CURSOR_SECRET: '0123456789abcdef0123',
}

t.test('defaults match docs/configuration.md', async (t) => {
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
    [{ TABLE_ITEMS_TTL: 'abc' }, /^TABLE_ITEMS_TTL is invalid: expected an integer/],
    [{ STALE_THRESHOLD: '2' }, /^STALE_THRESHOLD is invalid: expected a number/],
    [{ PORT: '70000' }, /^PORT is invalid/],
    [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL is invalid/],
    [{ REDIS_URL: 'localhost:6379' }, /^REDIS_URL is invalid/],
    [{ API_KEYS: 'short:read' }, /^API_KEYS is invalid/],
    [{ API_KEYS: 'aaaaaaaaaaaaaaaa:superuser' }, /^API_KEYS is invalid/],
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

t.test('a config error names the variable and never echoes its value', async (t) => {
  const secrets: Array<[Record<string, string>, string]> = [
    [{ ...API_ENV, API_KEYS: 'my-secret-key-value-1234:superuser' }, 'API_KEYS'],
    [{ ...API_ENV, CURSOR_SECRET: 'short-secret' }, 'CURSOR_SECRET'],
    [{ ...API_ENV, REDIS_URL: 'http://user:hunter2-password@redis:6379' }, 'REDIS_URL'],
    [{ ...API_ENV, REDIS_CLUSTER: 'true', REDIS_URL: 'redis://:hunter2-password@a:1,nope' }, 'REDIS_URL'],
    [{ ...API_ENV, PORT: 'port-secret-looking-value' }, 'PORT'],
  ]
  for (const [env, name] of secrets) {
    const err = (() => {
      try {
        loadConfig(env, 'api')
      } catch (e) {
        return e as Error
      }
    })()
    if (!t.ok(err, `${name} is refused`)) continue
    t.equal(err!.name, 'ConfigError')
    t.match(err!.message, new RegExp(`^${name} is invalid`), `names ${name}`)
    for (const value of Object.values(env)) {
      for (const part of value.split(/[:@,/]/).filter((p) => p.length >= 6)) {
        t.notOk(err!.message.includes(part), `${name}: the message does not contain "${part}"`)
      }
    }
  }
})

t.test('NODE_ENV=production refuses the well-known development secrets', async (t) => {
  const devKeys = 'dev-admin-key-change-me:read,write,export,admin;dev-read-key-change-me:read'
  const devSecret = 'dev-only-cursor-secret-change-me'
  t.throws(
    () => loadConfig({ ...API_ENV, API_KEYS: devKeys }, 'api'),
    {
      name: 'ConfigError',
      message: /^API_KEYS holds a well-known development key/,
    },
    'NODE_ENV defaults to production',
  )
  t.throws(
    () => loadConfig({ ...API_ENV, NODE_ENV: 'production', API_KEYS: `${API_ENV.API_KEYS};dev-read-key-change-me:read` }, 'api'),
    {
      message: /^API_KEYS /,
    },
    'one dev key among good ones is enough to refuse',
  )
  t.throws(() => loadConfig({ ...API_ENV, CURSOR_SECRET: devSecret }, 'api'), { message: /^CURSOR_SECRET is a well-known development value/ })
  t.throws(() => loadConfig({ REDIS_URL: API_ENV.REDIS_URL, CURSOR_SECRET: devSecret }, 'worker'), { message: /^CURSOR_SECRET / })
  for (const NODE_ENV of ['local', 'development', 'test']) {
    t.ok(loadConfig({ ...API_ENV, NODE_ENV, API_KEYS: devKeys, CURSOR_SECRET: devSecret }, 'api'), `NODE_ENV=${NODE_ENV} accepts them`)
  }
  const err = (() => {
    try {
      loadConfig({ ...API_ENV, API_KEYS: devKeys }, 'api')
    } catch (e) {
      return e as Error
    }
  })()
  t.notOk(err?.message.includes('dev-admin-key-change-me'), 'the refused key is not echoed')
})
