import type { Job } from 'bullmq'
import { codeOf, isPermanent } from '../shared/error-classes.ts'
import { errors } from '../shared/errors.ts'
import { createExport, createExportFlows, createExportSchedules, validateExport } from '../shared/exports/index.ts'
import type { QueuePayload } from '../shared/queues/index.ts'
import { createQuotas } from '../shared/quotas/index.ts'
import type { WorkerDeps } from './deps.ts'
import { exportServices } from './export-services.ts'
import { createJobChecks } from './job-checks.ts'

/** The tick a scheduler's job is for, from its id (`repeat:<scheduler>:<ms>`), else when it was due. */
function tickMillis(id: string, job: Job): number {
  const ms = Number(id.slice(id.lastIndexOf(':') + 1))
  return Number.isSafeInteger(ms) && ms > 0 ? ms : job.timestamp + (job.delay ?? 0)
}

export interface ScheduleRunResult {
  exportId?: string
  /** Why no export was started for this tick. */
  skipped?: 'missing' | 'paused' | 'already-run' | 'refused'
  reason?: string
}

// Retrying this tick cannot help a permanent failure, nor a full quota (by the retry, the tick is late):
// the run is logged and skipped, the schedule keeps its next ticks.
const isRefusal = (err: unknown) => isPermanent(err) || codeOf(err) === 'DC_ERR_EXPORT_QUOTA'

/**
 * One tick of an export schedule: starts an ordinary export through the same create path as
 * POST /exports (validation, the tenant's quota, the flow), owned by the schedule's tenant. A tick is
 * claimed once fleet-wide, so however many workers there are and however often the job is retried, a
 * tick starts at most one export. A run the quota (or a table gone since) refuses is logged and skipped.
 */
export default function createExportScheduleProcessor(deps: WorkerDeps) {
  const { redis, keys, config, logger, cache, queues } = deps
  const { store } = exportServices(deps)
  const schedules = createExportSchedules({ redis, keys, queue: () => queues.queue('export-schedule') })
  const flows = createExportFlows(redis, keys.queuePrefix)
  const quotas = createQuotas({ redis, keys, config })
  const checks = createJobChecks(config)

  return async function exportSchedule(job: Job<QueuePayload<'export-schedule'>>): Promise<ScheduleRunResult> {
    const { scheduleId } = job.data
    checks.require(typeof scheduleId === 'string', job, 'the job names no schedule')
    const schedule = await schedules.get(scheduleId)
    if (!schedule) return { skipped: 'missing' }
    if (schedule.paused) return { skipped: 'paused' }
    // A scheduler's job id is `repeat:<scheduler>:<tick ms>`: one per tick, whichever worker takes it.
    const tick = String(job.id)
    if (!(await schedules.claimRun(scheduleId, tick))) return { skipped: 'already-run' }
    const caller = { id: schedule.createdBy ?? `schedule:${scheduleId}`, tenant: schedule.tenant }
    try {
      // A table TABLES_ALLOW / TABLES_DENY hides is not found, as the API answers for it.
      if (!checks.tableAllowed(schedule.export.table)) throw new errors.DC_ERR_TABLE_NOT_FOUND(schedule.export.table)
      const table = await cache.describe(schedule.export.table)
      const request = validateExport(table, schedule.export, config.FILTER_MAX_BYTES)
      const record = await createExport({ store, flows, quotas, segments: config.EXPORT_SEGMENTS }, caller, request, table, {
        schedule: scheduleId,
        scheduledAt: tickMillis(tick, job),
        ...(schedule.createdBy ? { createdBy: schedule.createdBy } : {}),
      })
      logger.info({ msg: 'export.schedule.run', scheduleId, tenant: schedule.tenant, exportId: record.id, tick })
      return { exportId: record.id }
    } catch (err) {
      const code = codeOf(err)
      if (isRefusal(err)) {
        logger.warn({ msg: 'export.schedule.skipped', scheduleId, tenant: schedule.tenant, tick, code, reason: (err as Error).message })
        return { skipped: 'refused', reason: code }
      }
      // Transient (Redis, DynamoDB): give the tick back so the retry may run it.
      await redis.del(keys.exportSchedules({ run: `${scheduleId}:${tick}` })).catch(() => {})
      throw err
    }
  }
}
