import type { Redis, Result } from 'ioredis'
import { errors } from '../errors.ts'
import type { RedisKeys } from '../redis/keys.ts'
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

/*
 * KEYS[1] the table's counter for this second; ARGV[1] the limit for the caller's priority,
 * ARGV[2] the units to reserve. Returns 1 (and reserves) when the second's consumption is below the
 * limit, 0 when it already reached it.
 */
const ADMIT_SCRIPT = `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[1]) then return 0 end
redis.call('INCRBYFLOAT', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], 5)
return 1
`

declare module 'ioredis' {
  interface RedisCommander<Context> {
    dcBudgetAdmit(key: string, limit: number, reserve: number): Result<number, Context>
  }
}

export interface CapacityBudgetOptions {
  redis: Redis
  keys: RedisKeys
  unitsPerSecond: number
  userReservedShare: number
  /** The counter of a table and second: the read budget's by default; the write budget has its own. */
  counter?: (keys: RedisKeys, table: string, epochSecond: number) => string
  now?: () => number
}

const defined = new WeakSet<Redis>()

export function createCapacityBudget({
  redis,
  keys,
  unitsPerSecond,
  userReservedShare,
  counter = (k, table, epochSecond) => k.budget(table, epochSecond),
  now = Date.now,
}: CapacityBudgetOptions): CapacityBudget {
  if (unitsPerSecond <= 0) return { enabled: false, admit: async () => undefined, settle: () => {} }
  if (!defined.has(redis)) {
    redis.defineCommand('dcBudgetAdmit', { numberOfKeys: 1, lua: ADMIT_SCRIPT })
    defined.add(redis)
  }
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
      if (!allowed) throw errors.DC_ERR_BUDGET_EXHAUSTED(table)
      return { key, reserved: reserve }
    },
    settle(admission, units) {
      if (!admission) return
      const delta = units - admission.reserved
      if (delta === 0) return
      redis.multi().incrbyfloat(admission.key, delta).expire(admission.key, 5).exec().catch(() => {})
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
