import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import type { Job } from 'bullmq'
import { LRUCache } from 'lru-cache'
import type { QueuePayload } from '../../shared/queues/index.ts'
import type { WorkerDeps } from '../deps.ts'
import { createJobChecks, isObject } from '../job-checks.ts'
import { createStreamsClient } from './client.ts'
import { createShardLeases } from './lease.ts'
import { stopFollowing, syncTableSchedules } from './schedules.ts'
import { followPolicy } from './selection.ts'
import type { KeptIterator } from './shard-reader.ts'
import { followTablePass, type PassReport } from './table-pass.ts'

/**
 * The Streams follower as a BullMQ queue, so Bull Board shows it: a job scheduler per followed table
 * makes one job every STREAMS_PASS_MS, and each job is one pass (that long) over the shards it can
 * lease. A long-running loop per worker would follow the same way but show nothing; jobs also give the
 * fleet its takeover for free: a pass whose worker died stalls, and the next scheduled pass (on any
 * worker) takes each shard once its lease expires. Leases, not jobs, guarantee one reader per shard.
 */
export default function createStreamsFollowProcessor(deps: WorkerDeps) {
  const { config, redis, keys, cache, logger, queues } = deps
  const follows = followPolicy(config)
  // Created on the first job, so a worker with the follower off never builds a client.
  let client: ReturnType<typeof createStreamsClient> | undefined
  const streams = () => (client ??= createStreamsClient(config))
  const leases = createShardLeases({ redis, keys, leaseMs: config.STREAMS_LEASE_MS, audit: config.STREAMS_AUDIT })
  // Iterators expire after 15 minutes; one kept longer than 10 is not worth trying.
  const kept = new LRUCache<string, KeptIterator>({ max: 10_000, ttl: 10 * 60_000 })
  const worker = `${hostname()}:${process.pid}`
  const checks = createJobChecks(config)

  return async function streamsFollow(
    job: Job<QueuePayload<'streams-follow'>>,
    _token?: string,
    signal?: AbortSignal,
  ): Promise<PassReport | { tables: string[] }> {
    // Jobs can be added by hand (Bull Board): trust no field.
    checks.require(isObject(job.data), job, 'data is not an object')
    const { table } = job.data
    checks.require(table === undefined || checks.tableAllowed(table), job, 'the table is not one dynacache may read')
    if (table === undefined) {
      // A discovery queued before following was turned off: no Streams call, just what a start does.
      if (config.STREAMS_FOLLOW === 'off') {
        await stopFollowing(queues.queue('streams-follow'), redis, keys.streamsFollowed)
        return { tables: [] }
      }
      const tables = await syncTableSchedules(queues.queue('streams-follow'), streams(), follows, config)
      // The tables /metrics reports on (a followed table nobody holds a shard of shows as 0 held).
      const followed = redis.multi().del(keys.streamsFollowed)
      if (tables.length > 0) followed.sadd(keys.streamsFollowed, ...tables)
      await followed.exec()
      return { tables }
    }
    // A schedule left over from before STREAMS_FOLLOW changed: the next discovery removes it.
    if (!follows(table)) return { stream: null, shards: 0, held: [], outcomes: {} }
    const token = `${worker}:${randomBytes(4).toString('hex')}`
    const report = await followTablePass(
      { client: streams(), redis, keys, leases, cache, logger, kept, pollMs: config.STREAMS_POLL_MS, leaseMs: config.STREAMS_LEASE_MS },
      table,
      { token, until: Date.now() + config.STREAMS_PASS_MS, ...(signal ? { signal } : {}) },
    )
    await job.updateProgress({ shards: report.shards, held: report.held.length })
    return report
  }
}
