import { type JobsOptions, Queue } from 'bullmq'
import type { Redis } from 'ioredis'
import { errors } from '../errors.ts'
import { queueTelemetry } from '../telemetry/tracing.ts'
import { QUEUE_NAMES, QUEUE_OPTIONS, type QueueName, type QueuePayload } from './definitions.ts'
import { startedProducer } from './started.ts'

export interface QueueProducers {
  /** Adds a job; throws DC_ERR_QUEUE_UNAVAILABLE (503) at once when Redis cannot take it. */
  enqueue<Q extends QueueName>(name: Q, data: QueuePayload<Q>, opts?: JobsOptions): Promise<string>
  /** The BullMQ Queue for a name (Bull Board, metrics, tests); created on first use. */
  queue(name: QueueName): Queue
  /** The Queue once started, replaced once if its start failed (as enqueue does); for warm-up. */
  started(name: QueueName): Promise<Queue>
  readonly names: readonly QueueName[]
  close(): Promise<void>
}

/**
 * Producers for every queue over one shared connection. Give it a `fast` connection: with no offline
 * queue, an enqueue during a Redis outage fails at once instead of hanging the request.
 */
export function createQueueProducers(connection: Redis, prefix: string): QueueProducers {
  const queues = new Map<QueueName, Queue>()

  function queue(name: QueueName): Queue {
    let q = queues.get(name)
    if (!q) {
      // BullMQ checks the Redis version once when a Queue starts; it waits for a ready connection
      // (the enqueue path below only gets here once Redis is ready, so that wait is short).
      q = new Queue(name, { connection, prefix, defaultJobOptions: QUEUE_OPTIONS[name], ...queueTelemetry() })
      // Errors surface on enqueue; the connection's own listener logs outages once.
      q.on('error', () => {})
      queues.set(name, q)
    }
    return q
  }

  /** The queue once started; a failed one is left (not closed: Bull Board may hold it) for a new one. */
  const started = (name: QueueName) =>
    startedProducer(queue(name), (failed) => {
      // Concurrent callers may all see the failure: only the first replaces it.
      if (queues.get(name) === failed) queues.delete(name)
      return queue(name)
    })

  return {
    names: QUEUE_NAMES,
    queue,
    started,
    async enqueue(name, data, opts) {
      if (connection.status !== 'ready') throw new errors.DC_ERR_QUEUE_UNAVAILABLE()
      try {
        const job = await (await started(name)).add(name, data as never, opts)
        return job.id!
      } catch (cause) {
        throw new errors.DC_ERR_QUEUE_UNAVAILABLE({ cause })
      }
    },
    async close() {
      await Promise.all([...queues.values()].map((q) => q.close()))
    },
  }
}
