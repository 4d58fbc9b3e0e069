import type { Redis } from 'ioredis'
import type { RedisKeys } from '../redis/keys.ts'
import { defineScripts } from '../redis/scripts.ts'

/** Why a slot was refused: the member limit or the weight (bytes) limit, with what the owner holds. */
export interface Refusal {
  limit: 'count' | 'weight'
  count: number
  total: number
}

/**
 * Fleet-wide counted slots per owner (a tenant, an API key), in Redis. Each slot is a member with a
 * lease: a process that dies without releasing its slots leaks them only until their leases end.
 */
export interface SlotPool {
  /** Takes a slot unless the owner is at a limit (expired leases are dropped first). */
  acquire(owner: string, member: string, opts: { leaseMs: number; max: number; weight?: number; maxWeight?: number }): Promise<Refusal | undefined>
  /** Extends a held slot's lease, renaming it when `rename` is given; false when it is no longer held. */
  renew(owner: string, member: string, leaseMs: number, rename?: string): Promise<boolean>
  release(owner: string, ...members: string[]): Promise<void>
  /** The owner's members with their lease expiry (ms), expired ones included until the next acquire. */
  members(owner: string): Promise<Array<{ member: string; expiresAt: number }>>
}

export function createSlotPool({ redis, keys, kind, now = Date.now }: { redis: Redis; keys: RedisKeys; kind: string; now?: () => number }): SlotPool {
  defineScripts(redis)
  const k = (owner: string) => [keys.quota(kind, owner, 'members'), keys.quota(kind, owner, 'weights')] as const

  return {
    async acquire(owner, member, { leaseMs, max, weight = 0, maxWeight = 0 }) {
      const at = now()
      const [ok, limit, count, total] = await redis.dcQuotaAcquire(...k(owner), at, member, at + leaseMs, max, weight, maxWeight)
      return ok === 1 ? undefined : { limit: limit as Refusal['limit'], count: Number(count), total: Number(total) }
    },
    async renew(owner, member, leaseMs, rename = '') {
      const at = now()
      return (await redis.dcQuotaRenew(...k(owner), member, at + leaseMs, rename, at)) === 1
    },
    async release(owner, ...members) {
      if (members.length > 0) await redis.dcQuotaRelease(...k(owner), ...members)
    },
    async members(owner) {
      const flat = await redis.zrange(k(owner)[0], '0', '-1', 'WITHSCORES')
      const out: Array<{ member: string; expiresAt: number }> = []
      for (let i = 0; i < flat.length; i += 2) out.push({ member: flat[i]!, expiresAt: Number(flat[i + 1]) })
      return out
    },
  }
}
