import type { Job, Queue } from 'bullmq'
import { isTerminal } from '../shared/exports/index.ts'
import type { QueuePayload } from '../shared/queues/index.ts'
import type { WorkerDeps } from './deps.ts'
import { exportServices } from './export-services.ts'

/** One retention schedule for the whole fleet: upserting by a fixed id is idempotent across workers. */
export const EXPORT_CLEANUP_SCHEDULER_ID = 'export-retention'
const HOUR_MS = 3600_000

export async function scheduleExportCleanup(queue: Queue) {
  await queue.upsertJobScheduler(EXPORT_CLEANUP_SCHEDULER_ID, { every: HOUR_MS }, { name: 'export-cleanup', data: {} })
}

/**
 * Removes exports that finished more than JOB_RETENTION_DAYS ago: files first, then the record, so a
 * crash in between leaves a record to retry with rather than a file nobody knows of. Then removes
 * stored files whose export no longer exists at all (a record is always written before any file).
 */
export default function createExportCleanupProcessor(deps: WorkerDeps, clock: () => number = Date.now) {
  const { config, logger } = deps
  const { store, storage } = exportServices(deps)

  return async function exportCleanup(_job: Job<QueuePayload<'export-cleanup'>>) {
    const cutoff = clock() - config.JOB_RETENTION_DAYS * 24 * HOUR_MS
    let removed = 0
    for await (const batch of store.createdBefore(cutoff)) {
      for (const { id, createdAt } of batch) {
        const record = await store.get(id)
        // Only finished exports expire; one still running is left alone however old.
        if (record && (!isTerminal(record.status) || (record.completedAt ?? record.createdAt) >= cutoff)) continue
        await storage.remove(id)
        await store.remove(id, createdAt)
        removed++
      }
    }
    let orphans = 0
    for (const id of await storage.list()) {
      if (await store.exists(id)) continue
      await storage.remove(id)
      orphans++
    }
    if (removed + orphans > 0) logger.info({ msg: 'export.retention', removed, orphans, days: config.JOB_RETENTION_DAYS })
    return { removed, orphans }
  }
}
