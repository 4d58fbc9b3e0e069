import { QueueEvents } from 'bullmq'
import { Redis } from 'ioredis'
import t from 'tap'
import { createQueueProducers } from '../../src/shared/queues/index.ts'
import { createRedisKeys } from '../../src/shared/redis/keys.ts'
import { configEnv, testConfig } from '../helpers/app.ts'
import { startEntry, waitForLog } from '../helpers/processes.ts'
import { startServices } from '../helpers/services.ts'

const services = await startServices(t)

t.test('a job queued on the API side is completed by a real worker process', async (t) => {
  const config = testConfig(services, { LOG_LEVEL: 'info' })
  const keys = createRedisKeys(config.REDIS_PREFIX)
  const redis = new Redis(services.redisUrl)
  t.teardown(() => redis.quit())

  // Entries of an old generation of table `orders`, and one of the current generation.
  await redis.set(keys.generation('orders'), '2')
  await redis.hset(keys.entry('orders', 'old1'), { g: '1', m: JSON.stringify({ chunks: 0, version: 'v' }) })
  await redis.hset(keys.entry('orders', 'old2'), { g: '1', m: JSON.stringify({ chunks: 2, version: 'v9' }) })
  await redis.set(keys.chunk('orders', 'old2', 'v9', 0), 'x')
  await redis.set(keys.chunk('orders', 'old2', 'v9', 1), 'y')
  await redis.hset(keys.entry('orders', 'live'), { g: '2', m: JSON.stringify({ chunks: 0, version: 'v' }) })

  const worker = startEntry(t, 'src/workers/main.ts', configEnv(config))
  await waitForLog(worker, /worker\.started/)

  const producers = createQueueProducers(redis, keys.queuePrefix)
  t.teardown(() => producers.close())
  const events = new QueueEvents('cache-maintenance', { connection: { url: services.redisUrl }, prefix: keys.queuePrefix })
  t.teardown(() => events.close())
  await events.waitUntilReady()

  const id = await producers.enqueue('cache-maintenance', { kind: 'purge', table: 'orders' })
  const job = (await producers.queue('cache-maintenance').getJob(id))!
  const result = await job.waitUntilFinished(events, 15000)
  t.same(result, { scanned: 3, removed: 4 }, 'two dead entries and their two chunks removed')
  t.equal(await redis.exists(keys.entry('orders', 'old1'), keys.entry('orders', 'old2')), 0)
  t.equal(await redis.exists(keys.chunk('orders', 'old2', 'v9', 0), keys.chunk('orders', 'old2', 'v9', 1)), 0)
  t.equal(await redis.exists(keys.entry('orders', 'live')), 1, 'the current generation is untouched')
  t.not(worker.child.pid, process.pid, 'processed in another process')
})

t.test('SIGTERM: the worker and the API exit 0 within SHUTDOWN_TIMEOUT_MS', async (t) => {
  const config = testConfig(services, { LOG_LEVEL: 'info', SHUTDOWN_TIMEOUT_MS: '4000', PORT: '0', HOST: '127.0.0.1' })
  const worker = startEntry(t, 'src/workers/main.ts', configEnv(config))
  const api = startEntry(t, 'src/api/server.ts', configEnv(config))
  await Promise.all([waitForLog(worker, /worker\.started/), waitForLog(api, /Server listening/)])

  for (const [name, proc] of [
    ['worker', worker],
    ['api', api],
  ] as const) {
    const started = Date.now()
    proc.signal('SIGTERM')
    const code = await proc.exited
    const ms = Date.now() - started
    // close-with-grace exits 1 once SHUTDOWN_TIMEOUT_MS has passed: exit 0 is a stop within it.
    t.equal(code, 0, `${name} exits 0: stopped within SHUTDOWN_TIMEOUT_MS (${ms} ms)`)
    t.notMatch(proc.output(), /unhandled|UnhandledPromiseRejection/i, `${name}: no unhandled rejection`)
  }
})

t.test('a bad config stops start:api with exit 1 and one clear line', async (t) => {
  const base = configEnv(testConfig(services))
  for (const [change, expected] of [
    [{ CURSOR_SECRET: '' }, /^dynacache: configuration error: CURSOR_SECRET is required/],
    [{ TABLE_ITEMS_TTL: 'abc' }, /^dynacache: configuration error: TABLE_ITEMS_TTL is invalid: expected an integer/],
  ] as const) {
    const api = startEntry(t, 'src/api/server.ts', { ...base, ...change })
    t.equal(await api.exited, 1)
    const lines = api.output().trim().split('\n')
    t.equal(lines.length, 1, 'one line, no stack trace')
    t.match(lines[0], expected)
  }
})
