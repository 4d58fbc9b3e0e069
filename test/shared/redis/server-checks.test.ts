import { Writable } from 'node:stream'
import { Redis } from 'ioredis'
import pino from 'pino'
import t from 'tap'
import { keepsEveryKey, parseMemoryInfo, readEviction, versionSupported, watchRedisServer } from '../../../src/shared/redis/server-checks.ts'
import { createWorkerDeps } from '../../../src/workers/deps.ts'
import { auth, build, testConfig } from '../../helpers/app.ts'
import { startServices } from '../../helpers/services.ts'
import { waitFor } from '../../helpers/wait.ts'

// Its own Redis: the tests change its memory settings.
const services = await startServices(t, { ownRedis: true })
const admin = new Redis(services.redisUrl)
t.teardown(() => admin.disconnect())

const setEviction = async (maxmemory: string, policy: string) => {
  await admin.config('SET', 'maxmemory', maxmemory)
  await admin.config('SET', 'maxmemory-policy', policy)
}

/** Lines of a pino logger, kept as parsed objects. */
function capturedLogger() {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line))
      done()
    },
  })
  return { logger: pino({ level: 'info' }, stream), lines }
}

const evictionSample = (text: string) => {
  const match = /^dynacache_redis_eviction_safe\{policy="([^"]*)"\} (\S+)$/m.exec(text)
  return match ? { policy: match[1], value: Number(match[2]) } : undefined
}

t.test('a limit with an evicting policy is unsafe; no limit, or noeviction, keeps every key', async (t) => {
  t.equal(keepsEveryKey(0, 'allkeys-lru'), true, 'no maxmemory: nothing is ever evicted')
  t.equal(keepsEveryKey(1 << 30, 'noeviction'), true)
  for (const policy of ['allkeys-lru', 'allkeys-lfu', 'allkeys-random', 'volatile-lru', 'volatile-lfu', 'volatile-random', 'volatile-ttl']) {
    t.equal(keepsEveryKey(1 << 30, policy), false, policy)
  }
})

t.test('Redis 7.0 or later (Valkey reports a redis_version too); an unknown version is not refused', async (t) => {
  for (const v of ['7.0.0', '7.0.15', '7.2.4', '8.0.1', '10.1.0']) t.ok(versionSupported(v), v)
  for (const v of ['6.2.14', '6.0.0', '5.0.7']) t.notOk(versionSupported(v), v)
  t.ok(versionSupported(undefined))
  t.ok(versionSupported((await admin.info('server')).match(/^redis_version:(.*)$/m)?.[1]?.trim()), 'the Redis the tests run on')
})

t.test('INFO memory of a real Redis is read for the limit and the policy', async (t) => {
  await setEviction('50mb', 'allkeys-lru')
  t.same(parseMemoryInfo(await admin.info('memory')), { policy: 'allkeys-lru', maxmemory: 50 * 1024 * 1024 })
  t.same(await readEviction(admin), { policy: 'allkeys-lru', maxmemory: 50 * 1024 * 1024, safe: false })
  await setEviction('0', 'volatile-lru')
  t.same(await readEviction(admin), { policy: 'volatile-lru', maxmemory: 0, safe: true })
  t.equal(parseMemoryInfo('# Memory\r\nused_memory:1\r\n'), undefined, 'a server without the fields is unknown, not safe')
})

t.test('two API processes report the same verdict on their metrics, and follow a change', async (t) => {
  await setEviction('64mb', 'allkeys-lru')
  const apps = await Promise.all([build(t, services, { METRICS_SCRAPE_TIMEOUT_MS: '10000' }), build(t, services, { METRICS_SCRAPE_TIMEOUT_MS: '10000' })])
  // A scrape whose INFO did not answer in time has no sample: scrape again, the value is what is checked.
  const reported = (i: number, policy: string) =>
    waitFor(`app ${i} to report ${policy}`, async () => {
      const sample = evictionSample((await apps[i]!.inject({ url: '/metrics', headers: auth('admin') })).body)
      return sample?.policy === policy ? sample : undefined
    })
  for (const i of [0, 1]) t.same(await reported(i, 'allkeys-lru'), { policy: 'allkeys-lru', value: 0 }, `app ${i}`)
  await setEviction('64mb', 'noeviction')
  for (const i of [0, 1]) t.same(await reported(i, 'noeviction'), { policy: 'noeviction', value: 1 }, `app ${i}`)
  await setEviction('0', 'volatile-lru')
  for (const i of [0, 1]) t.same(await reported(i, 'volatile-lru'), { policy: 'volatile-lru', value: 1 }, `app ${i}: no limit, nothing evicted`)
  await setEviction('0', 'noeviction')
})

t.test('API and worker log redis.eviction_unsafe when they connect to a Redis that may evict', async (t) => {
  await setEviction('64mb', 'volatile-lru')
  t.teardown(() => setEviction('0', 'noeviction'))
  const api = capturedLogger()
  await build(t, services, {}, { logger: api.logger })
  const worker = capturedLogger()
  const deps = createWorkerDeps(testConfig(services), worker.logger)
  t.teardown(() => deps.close())
  for (const [who, lines] of [
    ['api', api.lines],
    ['worker', worker.lines],
  ] as const) {
    await waitFor(`${who} warns`, async () => lines.some((l) => l.msg === 'redis.eviction_unsafe'), 20_000)
    const line = lines.find((l) => l.msg === 'redis.eviction_unsafe')!
    t.equal(line.policy, 'volatile-lru', who)
    t.equal(line.connection, who)
    t.equal(line.level, 40, `${who}: a warning`)
  }
})

t.test('a safe Redis is not warned about; a Redis that is gone is not either', async (t) => {
  await setEviction('64mb', 'noeviction')
  const { logger, lines } = capturedLogger()
  const redis = new Redis(services.redisUrl)
  t.teardown(() => redis.disconnect())
  watchRedisServer(redis, logger, 'test')
  await new Promise((resolve) => redis.once('ready', resolve))
  // The check is two INFOs after ready, one after the other; PINGs sent one after another on the same
  // connection answer after both, and each reply's continuation runs after the check's has logged.
  for (let i = 0; i < 4; i++) await redis.ping()
  t.same(
    lines.filter((l) => l.msg === 'redis.eviction_unsafe' || l.msg === 'redis.version_unsupported'),
    [],
  )
  const gone = new Redis('redis://127.0.0.1:1', { lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null })
  t.teardown(() => gone.disconnect())
  await t.rejects(readEviction(gone), 'unreadable is an error (no sample, no log), never a verdict')
})
