import type { Redis } from 'ioredis'
import { errors } from '../errors.ts'
import type { RedisKeys } from '../redis/keys.ts'
import { defineScripts } from '../redis/scripts.ts'
import type { CallPriority } from './gateway.ts'

/**
 * A capacity budget: DYNAMO_READ_BUDGET read units (or, built with its own counter,
 * DYNAMO_WRITE_BUDGET write units) per second per table, shared by every API and worker process through
 * one Redis counter per table and second. Users may take the whole budget; background work only what
 * is left below budget x (1 - USER_RESERVED_SHARE), so it yields while users are busy and catches up after.
 */
export interface CapacityBudget {
  /**
   * Admits a call and reserves `reserve` units at once (by default a read's smallest cost, 0.5), so
   * concurrent callers see each other before any of them has finished; throws DC_ERR_BUDGET_EXHAUSTED
   * when this priority may not call on the table in this second. Undefined when Redis cannot say (calls
   * go on unbudgeted).
   */
  admit(table: string, priority: CallPriority, reserve?: number): Promise<Admission | undefined>
  /** Replaces the reservation with what the call consumed (0 for a failed call). Fire and forget. */
  settle(admission: Admission | undefined, units: number): void
  readonly enabled: boolean
}

export interface Admission {
  /** The counter of the second the call was admitted in. */
  key: string
  reserved: number
}

/** The least a read costs: an eventually consistent read of up to 4 KB. */
export const MIN_READ_UNITS = 0.5

export interface CapacityBudgetOptions {
  redis: Redis
  keys: RedisKeys
  unitsPerSecond: number
  userReservedShare: number
  /** The counter of a table and second: the read budget's by default; the write budget has its own. */
  counter?: (keys: RedisKeys, table: string, epochSecond: number) => string
  now?: () => number
}

export function createCapacityBudget({
  redis,
  keys,
  unitsPerSecond,
  userReservedShare,
  counter = (k, table, epochSecond) => k.budget(table, epochSecond),
  now = Date.now,
}: CapacityBudgetOptions): CapacityBudget {
  if (unitsPerSecond <= 0) return { enabled: false, admit: async () => undefined, settle: () => {} }
  defineScripts(redis)
  const limits: Record<CallPriority, number> = {
    user: unitsPerSecond,
    background: unitsPerSecond * (1 - userReservedShare),
  }
  const second = () => Math.floor(now() / 1000)

  return {
    enabled: true,
    async admit(table, priority, reserve = MIN_READ_UNITS) {
      const key = counter(keys, table, second())
      let allowed = 1
      try {
        allowed = await redis.dcBudgetAdmit(key, limits[priority], reserve)
      } catch {
        // Without Redis the budget cannot be shared; calls go on rather than all failing.
        return undefined
      }
      if (!allowed) throw new errors.DC_ERR_BUDGET_EXHAUSTED(table)
      return { key, reserved: reserve }
    },
    settle(admission, units) {
      if (!admission) return
      const delta = units - admission.reserved
      if (delta === 0) return
      redis
        .multi()
        .incrbyfloat(admission.key, delta)
        .expire(admission.key, 5)
        .exec()
        .catch(() => {})
    },
  }
}

/** Read units of a response when DynamoDB did not report them: 0.5 per started 4 KB (eventually consistent). */
export function estimateReadUnits(output: { Items?: unknown[]; Item?: unknown; Count?: number }): number {
  const body = output.Items ?? (output.Item ? [output.Item] : [])
  if (body.length === 0) return 0.5
  const bytes = Buffer.byteLength(JSON.stringify(body, (_k, v) => (v instanceof Uint8Array ? 'x'.repeat(v.length) : v)))
  return Math.ceil(bytes / 4096) * 0.5
}
