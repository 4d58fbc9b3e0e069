import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import pino from 'pino'
import t from 'tap'
import { createRedisKeys } from '../../../src/shared/redis/keys.ts'
import { startWorkerFleet } from '../../../src/workers/fleet.ts'
import { DISCOVER_SCHEDULER_ID, tableSchedulerId } from '../../../src/workers/streams/schedules.ts'
import { testConfig, uniquePrefix } from '../../helpers/app.ts'
import { startServices } from '../../helpers/services.ts'
import type { Tap } from '../../helpers/tap.ts'
import { waitFor } from '../../helpers/wait.ts'

const services = await startServices(t)
const connection = new Redis(services.redisUrl, { maxRetriesPerRequest: null })
t.teardown(() => connection.quit())

/** A fleet's streams-follow queue as a worker of `prefix` names it, with the schedules a following fleet left. */
async function followedBefore(t: Tap, prefix: string, tables: string[]) {
  const queue = new Queue('streams-follow', { connection, prefix: createRedisKeys(prefix).queuePrefix })
  t.teardown(() => queue.close())
  await queue.upsertJobScheduler(DISCOVER_SCHEDULER_ID, { every: 60_000 }, { name: 'discover', data: {} })
  for (const table of tables) await queue.upsertJobScheduler(tableSchedulerId(table), { every: 60_000 }, { name: 'follow', data: { table } })
  // Not the follower's: a schedule of another kind on the same queue stays.
  await queue.upsertJobScheduler('operator-made', { every: 60_000 }, { name: 'follow', data: { table: 'by-hand' } })
  // Paused, so no job runs here: what is asserted is what the workers' start did.
  await queue.pause()
  await connection.sadd(createRedisKeys(prefix).streamsFollowed, ...tables)
  return queue
}

const ids = async (queue: Queue) => (await queue.getJobSchedulers(0, -1)).map((s) => s.id ?? s.key).sort()

t.test('workers starting together with STREAMS_FOLLOW=off remove every streams schedule, and only those', async (t) => {
  const prefix = uniquePrefix()
  const other = uniquePrefix()
  const queue = await followedBefore(t, prefix, ['orders', 'events'])
  // Another deployment on the same Redis, still following: its schedules are not ours to remove.
  const otherQueue = await followedBefore(t, other, ['orders'])
  t.same(await ids(queue), ['operator-made', 'streams-discover', 'streams:events', 'streams:orders'])

  const lines: Array<Record<string, unknown>> = []
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) })
  const config = testConfig(services, { REDIS_PREFIX: prefix, WORKER_QUEUES: 'streams-follow', STREAMS_FOLLOW: 'off' })
  const fleets = await Promise.all([startWorkerFleet(config, logger), startWorkerFleet(config, logger)])
  t.teardown(() => Promise.all(fleets.map((f) => f.close(2000))))

  t.same(await ids(queue), ['operator-made'])
  t.same(await ids(otherQueue), ['operator-made', 'streams-discover', 'streams:orders'], 'the other prefix is untouched')
  t.equal(await connection.exists(createRedisKeys(prefix).streamsFollowed), 0, '/metrics reports no followed table any more')
  t.equal(await connection.scard(createRedisKeys(other).streamsFollowed), 1)

  // The schedules' first jobs were queued before the workers started: they run, as no-ops (no Streams
  // call: no DYNAMODB_STREAMS_ENDPOINT is set, so one would fail), and nothing schedules another.
  await queue.resume()
  const done = await waitFor('the queued streams jobs to run', async () => {
    const jobs = await queue.getJobs(['completed', 'failed'])
    return jobs.filter((j) => j.repeatJobKey?.startsWith('streams')).length === 3 ? jobs : undefined
  })
  const results = done
    .filter((j) => j.repeatJobKey?.startsWith('streams'))
    .map((j) => ({ name: j.name, failed: j.failedReason ?? null, result: j.returnvalue as { tables?: unknown; stream?: unknown } }))
    .sort((a, b) => a.name.localeCompare(b.name))
  t.same(
    results.map((r) => [r.name, r.failed, r.result?.tables ?? r.result?.stream]),
    [
      ['discover', null, []],
      ['follow', null, null],
      ['follow', null, null],
    ],
  )
  const left = await queue.getJobs(['delayed', 'waiting', 'prioritized', 'active'])
  t.same(
    left.filter((j) => j.repeatJobKey?.startsWith('streams')).map((j) => j.id),
    [],
    'no streams job is left to run',
  )
  const removed = lines.filter((l) => l.msg === 'streams.unscheduled').flatMap((l) => l.schedules as string[])
  t.same(removed.sort(), ['streams-discover', 'streams:events', 'streams:orders'], 'each removal logged once across the two workers')
})

t.test('a worker that follows streams schedules discovery and keeps the table schedules', async (t) => {
  const prefix = uniquePrefix()
  const queue = await followedBefore(t, prefix, ['orders'])
  const config = testConfig(services, { REDIS_PREFIX: prefix, WORKER_QUEUES: 'streams-follow', STREAMS_FOLLOW: 'auto', STREAMS_DISCOVER_S: '3600' })
  const fleet = await startWorkerFleet(config, pino({ level: 'silent' }))
  t.teardown(() => fleet.close(2000))
  t.same(await ids(queue), ['operator-made', 'streams-discover', 'streams:orders'])
  t.same(await connection.smembers(createRedisKeys(prefix).streamsFollowed), ['orders'])
})
