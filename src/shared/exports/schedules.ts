import { getNextMillis, type Queue } from 'bullmq'
import type { Redis } from 'ioredis'
import { errors } from '../errors.ts'
import type { RedisKeys } from '../redis/keys.ts'
import type { ExportDefinition } from './create.ts'

/** An export schedule as the store keeps it. Times are epoch milliseconds. */
export interface ExportSchedule {
  id: string
  tenant: string
  /** A 5-field cron pattern (minute precision) or 6 fields with seconds first. */
  cron: string
  /** IANA time zone the pattern is read in. */
  timezone: string
  /** What each run exports, as POST /exports takes it (validated when the schedule was made). */
  export: ExportDefinition
  paused: boolean
  createdAt: number
  createdBy?: string
}

/**
 * Checks a cron pattern and IANA time zone the way BullMQ's job schedulers will read them, and returns
 * the next run (ms). Throws DC_ERR_VALIDATION naming what is wrong.
 */
export function checkCron(cron: string, timezone: string, now = Date.now()): number {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone })
  } catch {
    throw new errors.DC_ERR_VALIDATION(`timezone '${timezone}' is not an IANA time zone (e.g. Europe/Paris, UTC)`)
  }
  const fields = cron.trim().split(/\s+/).length
  // cron-parser reads 4 fields too (with odd defaults): only the two usual forms are taken.
  if (fields !== 5 && fields !== 6) throw new errors.DC_ERR_VALIDATION(`cron '${cron}' must have 5 fields (minute hour day month weekday) or 6 (seconds first)`)
  let next: number | undefined
  try {
    next = getNextMillis(now, { pattern: cron, tz: timezone })
  } catch (err) {
    throw new errors.DC_ERR_VALIDATION(`cron '${cron}' does not parse: ${(err as Error).message}`)
  }
  if (next === undefined || !Number.isFinite(next)) throw new errors.DC_ERR_VALIDATION(`cron '${cron}' never runs`)
  return next
}

/** The BullMQ job scheduler of a schedule, on the 'export-schedule' queue. */
export const schedulerIdOf = (scheduleId: string) => `export-schedule-${scheduleId}`

/** Export schedules: records in one Redis hash, each running as a BullMQ job scheduler while not paused. */
export interface ExportSchedules {
  /** Stores the schedule, then starts its job scheduler (the record is removed again if that fails). */
  create(schedule: ExportSchedule): Promise<void>
  get(id: string): Promise<ExportSchedule | undefined>
  /** The tenant's schedules, oldest first. */
  list(tenant: string): Promise<ExportSchedule[]>
  /** Pauses (removes the job scheduler) or resumes (starts it again); returns the updated schedule. */
  setPaused(schedule: ExportSchedule, paused: boolean): Promise<ExportSchedule>
  /** Stops the job scheduler and removes the record. */
  remove(schedule: ExportSchedule): Promise<void>
  /** The next run of a schedule that is not paused, from its job scheduler (ms), else null. */
  nextRun(schedule: ExportSchedule): Promise<number | null>
  /** Claims one tick of a schedule for a run: true once per tick fleet-wide (a retried tick is not run twice). */
  claimRun(scheduleId: string, tick: string): Promise<boolean>
}

const DAY_MS = 24 * 3600_000

export function createExportSchedules({ redis, keys, queue }: { redis: Redis; keys: RedisKeys; queue: () => Queue }): ExportSchedules {
  const key = keys.exportSchedules()
  const start = (s: ExportSchedule) =>
    queue().upsertJobScheduler(schedulerIdOf(s.id), { pattern: s.cron, tz: s.timezone }, { name: 'export-schedule', data: { scheduleId: s.id } })
  const save = (s: ExportSchedule) => redis.hset(key, s.id, JSON.stringify(s))
  const api: ExportSchedules = {
    async create(schedule) {
      await save(schedule)
      try {
        await start(schedule)
      } catch (cause) {
        await redis.hdel(key, schedule.id).catch(() => {})
        throw new errors.DC_ERR_QUEUE_UNAVAILABLE({ cause })
      }
    },
    async get(id) {
      const raw = await redis.hget(key, id)
      return raw ? (JSON.parse(raw) as ExportSchedule) : undefined
    },
    async list(tenant) {
      const all = Object.values(await redis.hgetall(key)).map((raw) => JSON.parse(raw) as ExportSchedule)
      return all.filter((s) => s.tenant === tenant).sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id))
    },
    async setPaused(schedule, paused) {
      const next = { ...schedule, paused }
      if (paused) {
        await save(next)
        await queue().removeJobScheduler(schedulerIdOf(schedule.id))
      } else {
        await start(next)
        await save(next)
      }
      return next
    },
    async remove(schedule) {
      await queue().removeJobScheduler(schedulerIdOf(schedule.id))
      await redis.hdel(key, schedule.id)
    },
    async nextRun(schedule) {
      if (schedule.paused) return null
      const found = await queue().getJobScheduler(schedulerIdOf(schedule.id))
      return found?.next ?? null
    },
    async claimRun(scheduleId, tick) {
      return (await redis.set(keys.exportSchedules({ run: `${scheduleId}:${tick}` }), '1', 'PX', DAY_MS, 'NX')) === 'OK'
    },
  }
  return api
}
