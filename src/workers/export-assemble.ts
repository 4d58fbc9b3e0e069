import type { Job } from 'bullmq'
import { keyOf } from '../shared/dynamo/table-description.ts'
import { assembleExport, type Checkpoint, type ExportRecord } from '../shared/exports/index.ts'
import type { QueuePayload } from '../shared/queues/index.ts'
import { safeReason, safeText } from '../shared/safe-message.ts'
import { failOrRetry } from './attempts.ts'
import type { WorkerDeps } from './deps.ts'
import { exportServices } from './export-services.ts'
import { createJobChecks } from './job-checks.ts'

export interface AssembleResult {
  status: string
  bytes?: number
  rows?: number
}

/** The export stopped being processing while its file was written (cancelled). */
class AssemblyStopped extends Error {
  override name = 'AssemblyStopped'
}

/**
 * Runs once every segment of an export is done (the parent of its flow): writes the file from the
 * parts, completes the export, removes the parts and queues the email. Cancelled or failed exports
 * get their output removed (and a failure email). Safe to re-run at any point: a completed export is
 * not written again and its email job id is fixed, so a retry never mails twice.
 */
export default function createExportAssembleProcessor(deps: WorkerDeps) {
  const { cache, queues, logger, config } = deps
  const { store, storage } = exportServices(deps)
  const checks = createJobChecks(config)

  /** Queues the email; failing to do so is logged, never the export's failure. */
  async function notify(record: ExportRecord, template: 'export-completed' | 'export-failed') {
    if (!record.notify) return
    try {
      await queues.enqueue('email', { template, exportId: record.id }, { jobId: `${record.id}-${template}` })
    } catch (err) {
      logger.warn({ msg: 'export.email.not-queued', exportId: record.id, template, err: (err as Error).message })
    }
  }

  async function fail(record: ExportRecord, reason: string): Promise<AssembleResult> {
    await store.finish(record.id, 'failed', { error: reason })
    await storage.remove(record.id)
    const failed = (await store.get(record.id)) ?? record
    await notify(failed, 'export-failed')
    logger.warn({ msg: 'export.failed', exportId: record.id, reason: failed.error ?? reason })
    return { status: 'failed' }
  }

  return async function exportAssemble(job: Job<QueuePayload<'export-assemble'>>): Promise<AssembleResult> {
    const { exportId } = job.data
    // Only the export's own flow parent (job id = export id) assembles it.
    checks.require(typeof exportId === 'string' && job.id === exportId, job, 'the job id is not its export id')
    const record = await store.get(exportId)
    if (!record) return { status: 'missing' }
    if (!checks.tableAllowed(record.table) && record.status !== 'completed' && record.status !== 'cancelled') {
      return fail(record, 'the table is not allowed (TABLES_ALLOW / TABLES_DENY)')
    }
    if (record.status === 'cancelled') {
      await storage.remove(exportId)
      return { status: 'cancelled' }
    }
    if (record.status === 'completed') {
      // A retry after the export completed: finish what the earlier run may not have.
      await storage.removeParts(exportId)
      await notify(record, 'export-completed')
      return { status: 'completed', bytes: record.bytes ?? 0, rows: record.processedItems }
    }
    if (record.status === 'failed') return fail(record, record.error ?? 'failed')

    const failures = Object.values(await job.getIgnoredChildrenFailures())
    if (failures.length > 0) return fail(record, `a segment failed: ${safeText(String(failures[0]))}`)
    const checkpoints = await store.checkpoints(exportId, record.segments)
    const unfinished = checkpoints.findIndex((cp) => !cp?.done)
    if (unfinished >= 0) return fail(record, `segment ${unfinished} did not finish`)

    try {
      const table = await cache.describe(record.table)
      const keys = [keyOf(table), ...(record.index ? [keyOf(table, record.index)] : [])].filter((k) => k !== undefined)
      const { file, bytes } = await assembleExport({
        storage,
        record,
        checkpoints: checkpoints as Checkpoint[],
        keys,
        async onProgress(fraction) {
          const status = await store.raiseProgress(exportId, 95 + Math.min(4, Math.floor(4 * fraction)))
          if (status !== 'processing') throw new AssemblyStopped(status)
        },
      })
      const { changed, before } = await store.finish(exportId, 'completed', { file, bytes })
      if (!changed) {
        // Cancelled (or failed) while the file was written: it must not stay.
        await storage.remove(exportId)
        return { status: before }
      }
      await storage.removeParts(exportId)
      const completed = (await store.get(exportId)) ?? record
      logger.info({ msg: 'export.completed', exportId, table: record.table, format: record.format, rows: completed.processedItems, bytes })
      await notify(completed, 'export-completed')
      return { status: 'completed', bytes, rows: completed.processedItems }
    } catch (err) {
      if (err instanceof AssemblyStopped) {
        await storage.remove(exportId)
        return { status: err.message }
      }
      const { final, error } = failOrRetry(job, err)
      if (final) {
        logger.warn({ msg: 'export.assemble.error', exportId, err: (err as Error).message })
        await fail(record, `assembling the file failed: ${safeReason(err)}`)
      }
      throw error
    }
  }
}
