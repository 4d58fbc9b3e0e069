import { FlowProducer } from 'bullmq'
import type { Redis } from 'ioredis'
import { errors } from '../errors.ts'
import { QUEUE_OPTIONS, type QueuePayload, startedProducer } from '../queues/index.ts'
import { queueTelemetry } from '../telemetry/tracing.ts'

/** Queues exports as BullMQ flows. */
export interface ExportFlows {
  /**
   * One 'export-assemble' parent (job id = export id) over one 'export-segment' child per segment
   * (`<id>-<segment>`), so the segments run on any workers in parallel and the parent runs once all
   * are done. A child that fails for good does not block the parent, which then fails the export.
   * Throws DC_ERR_QUEUE_UNAVAILABLE (503) at once when Redis cannot take it.
   */
  start(exportId: string, segments: number): Promise<void>
  close(): Promise<void>
}

export function createExportFlows(connection: Redis, prefix: string): ExportFlows {
  let producer: FlowProducer | undefined
  const create = () => {
    const created = new FlowProducer({ connection, prefix, ...queueTelemetry() })
    // Errors surface on add; the connection's own listener logs outages once.
    created.on('error', () => {})
    return created
  }
  /** The producer once started; a failed one is closed and replaced. */
  const started = () => {
    producer ??= create()
    return startedProducer(producer, (failed) => {
      // Concurrent callers may all see the failure: only the first replaces it.
      if (producer && producer !== failed) return producer
      failed.close().catch(() => {})
      producer = create()
      return producer
    })
  }
  return {
    async start(exportId, segments) {
      if (connection.status !== 'ready') throw new errors.DC_ERR_QUEUE_UNAVAILABLE()
      const parent: QueuePayload<'export-assemble'> = { exportId }
      try {
        await (await started()).add(
          {
            name: 'export-assemble',
            queueName: 'export-assemble',
            data: parent,
            opts: { jobId: exportId },
            children: Array.from({ length: segments }, (_, segment) => ({
              name: 'export-segment',
              queueName: 'export-segment',
              data: { exportId, segment, totalSegments: segments } satisfies QueuePayload<'export-segment'>,
              opts: { jobId: `${exportId}-${segment}`, ignoreDependencyOnFailure: true },
            })),
          },
          {
            // A FlowProducer does not read the queues' defaults: give each level its queue's policy.
            queuesOptions: {
              'export-assemble': { defaultJobOptions: QUEUE_OPTIONS['export-assemble'] },
              'export-segment': { defaultJobOptions: QUEUE_OPTIONS['export-segment'] },
            },
          },
        )
      } catch (cause) {
        throw new errors.DC_ERR_QUEUE_UNAVAILABLE({ cause })
      }
    },
    async close() {
      await producer?.close()
    },
  }
}
