import type { Job } from 'bullmq'
import type { QueueName, QueuePayload } from '../shared/queues/index.ts'
import createBatchWriteProcessor from './batch-write.ts'
import createCacheMaintenanceProcessor from './cache-maintenance.ts'
import createCacheRefreshProcessor from './cache-refresh.ts'
import type { WorkerDeps } from './deps.ts'
import createEmailProcessor from './email.ts'
import createExportAssembleProcessor from './export-assemble.ts'
import createExportCleanupProcessor from './export-cleanup.ts'
import createExportScheduleProcessor from './export-schedule.ts'
import createExportSegmentProcessor from './export-segment.ts'
import createPrefetchProcessor from './prefetch.ts'
import createStreamsFollowProcessor from './streams/processor.ts'

type ProcessorFactory<Q extends QueueName> = (deps: WorkerDeps) => (job: Job<QueuePayload<Q>>, token?: string) => Promise<unknown>

/** One processor factory per queue; the type makes a queue without a processor a compile error. */
export const PROCESSORS: { [Q in QueueName]: ProcessorFactory<Q> } = {
  'cache-maintenance': createCacheMaintenanceProcessor,
  'cache-refresh': createCacheRefreshProcessor,
  prefetch: createPrefetchProcessor,
  'batch-write': (deps) => createBatchWriteProcessor(deps),
  'export-segment': createExportSegmentProcessor,
  'export-assemble': createExportAssembleProcessor,
  'export-cleanup': (deps) => createExportCleanupProcessor(deps),
  'export-schedule': createExportScheduleProcessor,
  email: (deps) => createEmailProcessor(deps),
  'streams-follow': createStreamsFollowProcessor,
}
