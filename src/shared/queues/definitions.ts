import type { DefaultJobOptions } from 'bullmq'
import type { CachedResource } from '../cache/resources.ts'

/**
 * Every queue and the payload its jobs carry, in one map, so a producer and its processor cannot
 * disagree. Payloads are references (table names, ids), never large data.
 */
export interface QueuePayloads {
  /**
   * Refreshes what is stale or missing for popular tables (or the named ones): table list, details,
   * first page and the most requested cached reads. Run by a job scheduler every PREFETCH_INTERVAL_S.
   */
  prefetch: { tables?: string[] }
  /** Reloads one stale cache entry (stale-while-revalidate); deduplicated per entry fleet-wide. */
  'cache-refresh': { resource: CachedResource }
  /**
   * Removes cache entries that invalidation left behind (SCAN + UNLINK): those of `table`, or of every
   * table when null, whose generation is no longer the table's current one.
   */
  'cache-maintenance': { kind: 'purge'; table: string | null }
  /**
   * Writes one accepted batch (POST /tables/:table/batches) to DynamoDB. The operations stay in Redis
   * under the batch id, which is also the job id; a re-run resumes after the last confirmed write.
   */
  'batch-write': { id: string; table: string }
  /**
   * Scans one segment of an export into its part, checkpointing after every page so a retry resumes
   * there. A child of the export's 'export-assemble' job (one BullMQ flow per export).
   */
  'export-segment': { exportId: string; segment: number; totalSegments: number }
  /** Joins an export's parts into its file once every segment is done: the parent of the flow. */
  'export-assemble': { exportId: string }
  /** Removes exports finished more than JOB_RETENTION_DAYS ago, and their files; one fleet-wide schedule. */
  'export-cleanup': Record<string, never>
  /** One tick of an export schedule (POST /exports/schedules): starts an ordinary export. Run by its job scheduler. */
  'export-schedule': { scheduleId: string }
  /** Sends one email through SES. Queued with a job id per export and outcome, so it is sent once. */
  email: { template: 'export-completed' | 'export-failed'; exportId: string }
  /**
   * The DynamoDB Streams follower (src/workers/streams): with `table`, one pass over that table's stream
   * (STREAMS_PASS_MS of reading the shards it can lease), run by a job scheduler per followed table;
   * without, a look for streams enabled or disabled since, which adds or removes those schedulers.
   */
  'streams-follow': { table?: string }
}

export type QueueName = keyof QueuePayloads
export type QueuePayload<Q extends QueueName> = QueuePayloads[Q]

const DAY_S = 24 * 3600

/** Retry and retention policy per queue. */
export const QUEUE_OPTIONS: { [Q in QueueName]: DefaultJobOptions } = {
  prefetch: {
    attempts: 3,
    backoff: { type: 'exponential', delay: 2000 },
    removeOnComplete: { age: DAY_S, count: 500 },
    removeOnFail: { age: 7 * DAY_S, count: 500 },
  },
  'cache-refresh': {
    attempts: 3,
    backoff: { type: 'exponential', delay: 500 },
    removeOnComplete: { age: 600, count: 1000 },
    removeOnFail: { age: DAY_S, count: 1000 },
  },
  'cache-maintenance': {
    attempts: 5,
    backoff: { type: 'exponential', delay: 1000 },
    removeOnComplete: { age: 3600, count: 1000 },
    removeOnFail: { age: 7 * DAY_S },
  },
  // Producers pass JOB_RETENTION_DAYS as the age per job; a run that gives up keeps its progress, so
  // each attempt (and a retry from Bull Board) resumes where the last one stopped.
  'batch-write': {
    attempts: 6,
    backoff: { type: 'exponential', delay: 2000 },
    removeOnComplete: { age: 30 * DAY_S },
    removeOnFail: { age: 30 * DAY_S },
  },
  // Each retry resumes from the segment's last checkpoint, so retries are cheap: allow plenty.
  'export-segment': {
    attempts: 8,
    backoff: { type: 'exponential', delay: 1000 },
    removeOnComplete: { age: DAY_S },
    removeOnFail: { age: 7 * DAY_S },
  },
  'export-assemble': {
    attempts: 5,
    backoff: { type: 'exponential', delay: 2000 },
    removeOnComplete: { age: 7 * DAY_S },
    removeOnFail: { age: 7 * DAY_S },
  },
  'export-cleanup': {
    attempts: 3,
    backoff: { type: 'exponential', delay: 10_000 },
    removeOnComplete: { count: 50 },
    removeOnFail: { count: 50 },
  },
  // A tick's run is claimed once (see schedules.ts), so a retry never starts a second export for it.
  'export-schedule': {
    attempts: 3,
    backoff: { type: 'exponential', delay: 2000 },
    removeOnComplete: { age: 7 * DAY_S, count: 1000 },
    removeOnFail: { age: 7 * DAY_S, count: 1000 },
  },
  // One job every few seconds per table: keep a short history; a failed pass is simply the next one's work.
  'streams-follow': {
    attempts: 1,
    removeOnComplete: { count: 100 },
    removeOnFail: { count: 100 },
  },
  // Completed jobs are kept a week: their ids are what stops a retried export from mailing twice.
  email: {
    attempts: 8,
    backoff: { type: 'exponential', delay: 2000 },
    removeOnComplete: { age: 7 * DAY_S },
    removeOnFail: { age: 7 * DAY_S },
  },
}

export const QUEUE_NAMES = Object.keys(QUEUE_OPTIONS) as QueueName[]

export function isQueueName(name: string): name is QueueName {
  return (QUEUE_NAMES as string[]).includes(name)
}
