import type { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams'
import type { Queue } from 'bullmq'
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
