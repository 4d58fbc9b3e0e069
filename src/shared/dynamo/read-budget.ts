import type { Redis, Result } from 'ioredis'
import { errors } from '../errors.ts'
import type { RedisKeys } from '../redis/keys.ts'
import type { CallPriority } from './gateway.ts'

/**
 * DYNAMO_READ_BUDGET read units per second per table, shared by every API and worker process through
 * one Redis counter per table and second. Users may take the whole budget; background work only what
 * is left below budget x (1 - USER_RESERVED_SHARE), so it yields while users are busy and catches up after.
 */
export interface ReadBudget {
  /** Throws DC_ERR_BUDGET_EXHAUSTED when this priority may not read the table in this second. */
  admit(table: string, priority: CallPriority): Promise<void>
  /** Records what a call consumed (fire and forget). */
  charge(table: string, units: number): void
  readonly enabled: boolean
}

/*
 * KEYS[1] the table's counter for this second; ARGV[1] the limit for the caller's priority.
 * Returns 1 when the caller may read, 0 when the second's consumption already reached its limit.
 */
const ADMIT_SCRIPT = `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used < tonumber(ARGV[1]) then return 1 end
return 0
`

declare module 'ioredis' {
  interface RedisCommander<Context> {
    dcBudgetAdmit(key: string, limit: number): Result<number, Context>
  }
}

export interface ReadBudgetOptions {
  redis: Redis
  keys: RedisKeys
  unitsPerSecond: number
  userReservedShare: number
  now?: () => number
}

const defined = new WeakSet<Redis>()

export function createReadBudget({ redis, keys, unitsPerSecond, userReservedShare, now = Date.now }: ReadBudgetOptions): ReadBudget {
  if (unitsPerSecond <= 0) return { enabled: false, admit: async () => {}, charge: () => {} }
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
    async admit(table, priority) {
      let allowed = 1
      try {
        allowed = await redis.dcBudgetAdmit(keys.budget(table, second()), limits[priority])
      } catch {
        // Without Redis the budget cannot be shared; reads go on rather than all failing.
        return
      }
      if (!allowed) throw errors.DC_ERR_BUDGET_EXHAUSTED(table)
    },
    charge(table, units) {
      if (units <= 0) return
      const key = keys.budget(table, second())
      redis.multi().incrbyfloat(key, units).expire(key, 5).exec().catch(() => {})
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
