import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import t from 'tap'
import { createExportFlows } from '../../../src/shared/exports/flow.ts'
import { createQueueProducers } from '../../../src/shared/queues/index.ts'
import { closeRedis, createRedis, waitForReady } from '../../../src/shared/redis/index.ts'
import { startServices } from '../../helpers/services.ts'
import { sleep } from '../../helpers/wait.ts'

// Its own Redis: CLIENT PAUSE stalls every client of the server.
const services = await startServices(t, { ownRedis: true })
const admin = new Redis(services.redisUrl)
t.teardown(() => admin.quit())

/** A fast connection (1 s command timeout, as the API's) that is ready. */
async function fastConnection(t: { teardown(fn: () => unknown): void }) {
  const redis = createRedis({ url: services.redisUrl, role: 'request', name: 'test-producers' })
  t.teardown(() => closeRedis(redis))
  if (!(await waitForReady(redis, 5000))) throw new Error('the test connection did not become ready')
  return redis
}

/**
 * Redis stops answering for longer than the fast connection's 1 s command timeout while a BullMQ
 * producer starts: its start-up (a version check) fails, as it can on a loaded machine.
 */
async function failStartUpThen<T>(start: () => Promise<unknown> | unknown, after: () => Promise<T>): Promise<T> {
  await admin.call('CLIENT', 'PAUSE', '1500', 'ALL')
  const starting = Promise.resolve().then(start)
  await starting.catch(() => {})
  await sleep(1600)
  return after()
}

t.test('a queue whose start-up failed is replaced: the next enqueue succeeds', async (t) => {
  const redis = await fastConnection(t)
  const producers = createQueueProducers(redis, '{test}:q1')
  t.teardown(() => producers.close())
  const broken = await failStartUpThen(
    () => producers.queue('email').waitUntilReady(),
    async () => producers.queue('email'),
  )
  await t.rejects(broken.waitUntilReady(), 'the first Queue failed to start')
  const id = await producers.enqueue('email', { template: 'export-completed', exportId: 'e1' })
  t.ok(id, 'the enqueue after it succeeded')
  const check = new Queue('email', { connection: admin, prefix: '{test}:q1' })
  t.teardown(() => check.close())
  t.equal(await check.getWaitingCount(), 1, 'and the job is in Redis, once')
})

t.test('an export flow producer whose start-up failed is replaced: the next export is queued', async (t) => {
  const redis = await fastConnection(t)
  const flows = createExportFlows(redis, '{test}:q2')
  t.teardown(() => flows.close())
  await failStartUpThen(
    () => flows.start('x1', 2),
    async () => undefined,
  )
  await flows.start('x2', 2)
  const segments = new Queue('export-segment', { connection: admin, prefix: '{test}:q2' })
  t.teardown(() => segments.close())
  const ids = (await segments.getJobs(['waiting', 'waiting-children', 'delayed', 'prioritized'])).map((j) => j.id)
  t.ok(ids.includes('x2-0') && ids.includes('x2-1'), `the export's segments are queued (${ids.join(', ')})`)
})
