import { Job, Queue, UnrecoverableError, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import t from 'tap'
import { errors } from '../../src/shared/errors.ts'
import { failOrRetry, isLastAttempt } from '../../src/workers/attempts.ts'
import { deferJob } from '../../src/workers/defer.ts'
import { uniquePrefix } from '../helpers/app.ts'
import { ownRedis } from '../helpers/services.ts'
import { waitFor } from '../helpers/wait.ts'

const at = (attemptsMade: number, attempts?: number) => ({
  attemptsMade,
  opts: attempts === undefined ? {} : { attempts },
})

t.test('isLastAttempt: the run after attempts - 1 failed ones', async (t) => {
  t.ok(isLastAttempt(at(0)), 'a job without attempts has one')
  t.same(
    [0, 1, 2].map((made) => isLastAttempt(at(made, 3))),
    [false, false, true],
  )
  t.ok(isLastAttempt(at(5, 3)), 'past the last (a job retried by hand) is last too')
})

t.test('failOrRetry: permanent failures end the job as unrecoverable, others retry until the last attempt', async (t) => {
  const gone = new errors.DC_ERR_TABLE_NOT_FOUND('orders')
  const permanent = failOrRetry(at(0, 3), gone)
  t.ok(permanent.final)
  t.ok(permanent.error instanceof UnrecoverableError, 'thrown as UnrecoverableError: BullMQ does not retry it')
  t.equal((permanent.error as Error).message, gone.message, 'with the same message')

  const unrecoverable = new UnrecoverableError('bad job data')
  t.same(failOrRetry(at(0, 3), unrecoverable), { final: true, error: unrecoverable }, 'an UnrecoverableError as it is')

  const down = new errors.DC_ERR_DYNAMO_UNAVAILABLE('timeout')
  t.same(failOrRetry(at(0, 3), down), { final: false, error: down }, 'transient with attempts left: retried')
  t.same(failOrRetry(at(2, 3), down), { final: true, error: down }, 'transient on the last attempt: final, thrown as it is')
  const unknown = new Error('surprise')
  t.same(failOrRetry(at(1, 3), unknown), { final: false, error: unknown }, 'an unknown failure is retried')
})

// The same decisions against real BullMQ runs: attemptsMade as a processor sees it on each run.
const redis = process.env.REDIS_URL ? { url: process.env.REDIS_URL, close: async () => {} } : await ownRedis()
t.teardown(() => redis.close())

type Processor = (job: Job, token?: string) => Promise<unknown>

/** A queue and a worker of a fresh name and prefix, closed after `t`; the processor runs each attempt. */
async function runJob(t: { teardown(fn: () => unknown): void }, attempts: number, processor: Processor): Promise<Job> {
  const prefix = uniquePrefix()
  const connection = new Redis(redis.url, { maxRetriesPerRequest: null })
  const blocking = new Redis(redis.url, { maxRetriesPerRequest: null })
  const queue = new Queue('attempts', { connection, prefix })
  const worker = new Worker('attempts', processor, { connection: blocking, prefix })
  worker.on('error', () => {})
  t.teardown(async () => {
    await worker.close(true)
    await queue.close()
    await Promise.all([connection.quit(), blocking.quit()])
  })
  const job = await queue.add('attempts', {}, { attempts })
  await waitFor('the job to fail for good', async () => (await queue.getJobState(job.id!)) === 'failed', 60_000)
  return (await Job.fromId(queue, job.id!))!
}

t.test('a job retried until its attempts are spent sees its last attempt on the last run only', async (t) => {
  const seen: boolean[] = []
  const job = await runJob(t, 3, async (job) => {
    seen.push(isLastAttempt(job))
    const { final, error } = failOrRetry(job, new errors.DC_ERR_DYNAMO_UNAVAILABLE('timeout'))
    t.equal(final, isLastAttempt(job), 'a transient failure is final exactly on the last attempt')
    throw error
  })
  t.same(seen, [false, false, true])
  t.equal(job.attemptsMade, 3)
  t.equal(job.failedReason, 'DynamoDB is unavailable: timeout')
})

t.test('a permanent failure fails the job on its first run', async (t) => {
  let runs = 0
  const job = await runJob(t, 3, async (job) => {
    runs++
    throw failOrRetry(job, new errors.DC_ERR_TABLE_NOT_FOUND('orders')).error
  })
  t.equal(runs, 1, 'no retry')
  t.equal(job.failedReason, "Table 'orders' not found")
})

t.test('a deferred run spends no attempt', async (t) => {
  const seen: boolean[] = []
  const job = await runJob(t, 2, async (job, token) => {
    seen.push(isLastAttempt(job))
    if (seen.length === 1) throw await deferJob(job, token, 0)
    throw failOrRetry(job, new Error('transient')).error
  })
  t.same(seen, [false, false, true], 'deferred once, then both attempts ran')
  t.equal(job.attemptsMade, 2)
})
