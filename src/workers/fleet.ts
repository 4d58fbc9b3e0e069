import { type Job, type Queue, Worker } from 'bullmq'
import { type Config, ConfigError, type WorkerConfig } from '../shared/config.ts'
import type { Logger } from '../shared/logger.ts'
import { isQueueName, QUEUE_NAMES, type QueueName } from '../shared/queues/index.ts'
import { closeRedis, createConfiguredRedis, waitForReady } from '../shared/redis/index.ts'
import { queueTelemetry } from '../shared/telemetry/tracing.ts'
import { createWorkerDeps } from './deps.ts'
import { scheduleExportCleanup } from './export-cleanup.ts'
import { PROCESSORS } from './processors.ts'
import { scheduleStreamsDiscovery, stopFollowing } from './streams/schedules.ts'

export interface WorkerFleet {
  readonly queues: readonly QueueName[]
  /** Stops taking jobs, lets active ones finish within the timeout, then closes every connection. */
  close(timeoutMs: number): Promise<void>
}

/** WORKER_QUEUES as a list of queue names; `all` means every queue. */
export function selectQueues(spec: string): QueueName[] {
  if (spec.trim() === 'all') return [...QUEUE_NAMES]
  const names = spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  const unknown = names.filter((n) => !isQueueName(n))
  if (unknown.length > 0 || names.length === 0) {
    throw new ConfigError(`WORKER_QUEUES names unknown queues (${unknown.join(', ')}); known: all, ${QUEUE_NAMES.join(', ')}`)
  }
  return names as QueueName[]
}

/** One prefetch schedule for the whole fleet: upserting by a fixed id is idempotent across workers. */
export const PREFETCH_SCHEDULER_ID = 'popular-tables'

async function schedulePrefetch(queue: Queue, config: Config) {
  await queue.upsertJobScheduler(PREFETCH_SCHEDULER_ID, { every: config.PREFETCH_INTERVAL_S * 1000 }, { name: 'prefetch', data: {} })
}

/** The only place that constructs BullMQ Workers: one per selected queue, sharing one set of deps. */
export async function startWorkerFleet(config: WorkerConfig, logger: Logger): Promise<WorkerFleet> {
  const names = selectQueues(config.WORKER_QUEUES)
  const deps = createWorkerDeps(config, logger)
  const { keys, queues, producerRedis } = deps
  const blocking = createConfiguredRedis(config, 'background', 'worker-blocking', logger)

  const workers = names.map((name) => {
    const processor = PROCESSORS[name](deps) as (job: Job) => Promise<unknown>
    const worker = new Worker(name, processor, {
      connection: blocking,
      prefix: keys.queuePrefix,
      concurrency: config.WORKER_CONCURRENCY,
      autorun: true,
      // A killed worker stops renewing its job locks; after this long another worker takes the job over.
      lockDuration: config.JOB_STALL_MS,
      stalledInterval: config.JOB_STALL_MS,
      ...queueTelemetry(),
    })
    worker.on('failed', (job, err) => logger.warn({ msg: 'job.failed', queue: name, jobId: job?.id, attempt: job?.attemptsMade, err: err.message }))
    worker.on('completed', (job) => logger.debug({ msg: 'job.completed', queue: name, jobId: job.id, ms: Date.now() - (job.processedOn ?? Date.now()) }))
    worker.on('error', (err) => logger.warn({ msg: 'worker.error', queue: name, err: err.message }))
    return worker
  })
  await Promise.all(workers.map((w) => w.waitUntilReady()))
  if (names.includes('prefetch') && (await waitForReady(producerRedis, 10_000))) {
    await schedulePrefetch(queues.queue('prefetch'), config)
  }
  if (names.includes('export-cleanup') && (await waitForReady(producerRedis, 10_000))) {
    await scheduleExportCleanup(queues.queue('export-cleanup'))
  }
  if (names.includes('streams-follow') && (await waitForReady(producerRedis, 10_000))) {
    const queue = queues.queue('streams-follow')
    if (config.STREAMS_FOLLOW !== 'off') {
      // Its first job runs at once: streams are found at start, then every STREAMS_DISCOVER_S.
      await scheduleStreamsDiscovery(queue, config)
    } else {
      // Following was turned off (or never on): what an earlier fleet scheduled goes. STREAMS_FOLLOW is
      // fleet-wide, so a warning: a worker left with `off` beside following ones would undo them. Not a
      // reason to stop this worker's other queues; a leftover discovery job does the same (processor.ts).
      await stopFollowing(queue, producerRedis, keys.streamsFollowed).then(
        (removed) =>
          removed.length > 0 &&
          logger.warn({
            msg: 'streams.unscheduled',
            schedules: removed,
            why: 'STREAMS_FOLLOW=off on a worker serving streams-follow; set it alike on every such worker, or leave streams-follow out of WORKER_QUEUES here',
          }),
        (err: Error) => logger.warn({ msg: 'streams.unschedule_failed', err: err.message }),
      )
    }
  }
  logger.info({ msg: 'worker.started', queues: names, concurrency: config.WORKER_CONCURRENCY })

  return {
    queues: names,
    async close(timeoutMs) {
      // Graceful first: active jobs finish. Past the bound, force: unfinished jobs stay in Redis and
      // another worker picks them up after the stall interval, so nothing is lost either way.
      // Long jobs (export segments, batches) see their abort signal and hand themselves back at their
      // next checkpoint, so they are not left active; short ones ignore it and finish.
      for (const w of workers) w.cancelAllJobs('worker shutting down')
      const graceful = Promise.all(workers.map((w) => w.close()))
      const bound = new Promise<'timeout'>((resolve) => setTimeout(resolve, Math.max(timeoutMs - 500, 0), 'timeout').unref())
      if ((await Promise.race([graceful, bound])) === 'timeout') {
        logger.warn({ msg: 'worker.shutdown.forced', timeoutMs })
        await Promise.all(workers.map((w) => w.close(true)))
      }
      await Promise.all([deps.close(), closeRedis(blocking)])
    },
  }
}
