import type { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams'
import type { Queue } from 'bullmq'
import type { Redis } from 'ioredis'
import type { Config } from '../../shared/config.ts'
import { followedStreams } from './selection.ts'

/** The fleet-wide schedule that looks for streams enabled or disabled since. */
export const DISCOVER_SCHEDULER_ID = 'streams-discover'
/** Each followed table's schedule id: one pass per STREAMS_PASS_MS. */
export const tableSchedulerId = (table: string) => `streams:${table}`

/** Upserts the discovery schedule (idempotent across workers: one fixed id). */
export async function scheduleStreamsDiscovery(queue: Queue, config: Pick<Config, 'STREAMS_DISCOVER_S'>): Promise<void> {
  await queue.upsertJobScheduler(DISCOVER_SCHEDULER_ID, { every: config.STREAMS_DISCOVER_S * 1000 }, { name: 'discover', data: {} })
}

/**
 * Gives every followed table with a stream its pass schedule and removes the schedules of tables no
 * longer followed. Returns the tables followed.
 */
export async function syncTableSchedules(
  queue: Queue,
  client: DynamoDBStreamsClient,
  follows: (table: string) => boolean,
  config: Pick<Config, 'STREAMS_PASS_MS'>,
): Promise<string[]> {
  const tables = [...(await followedStreams(client, follows)).keys()].sort()
  const wanted = new Set(tables.map(tableSchedulerId))
  for (const table of tables) {
    await queue.upsertJobScheduler(tableSchedulerId(table), { every: config.STREAMS_PASS_MS }, { name: 'follow', data: { table } })
  }
  for (const s of await queue.getJobSchedulers(0, -1)) {
    const id = s.id ?? s.key
    if (id.startsWith('streams:') && !wanted.has(id)) await queue.removeJobScheduler(id)
  }
  return tables
}

/**
 * What a worker starting with STREAMS_FOLLOW=off does: removes the discovery schedule and every table's
 * pass schedule, and empties the set of followed tables. Schedules are kept in Redis, so without this the
 * fleet would go on listing streams and running empty passes after following was turned off, and
 * /metrics would go on reporting the last followed tables with no shard held (DynacacheStreamsNotFollowed).
 * Idempotent: workers starting together each remove what is left. Returns what this call removed.
 */
export async function stopFollowing(queue: Queue, redis: Pick<Redis, 'del'>, followedKey: string): Promise<string[]> {
  const removed: string[] = []
  for (const s of await queue.getJobSchedulers(0, -1)) {
    const id = s.id ?? s.key
    if (id !== DISCOVER_SCHEDULER_ID && !id.startsWith('streams:')) continue
    // False when a worker starting beside this one removed it first.
    if (await queue.removeJobScheduler(id)) removed.push(id)
  }
  await redis.del(followedKey)
  return removed
}
