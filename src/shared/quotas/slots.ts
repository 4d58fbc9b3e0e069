import type { Redis, Result } from 'ioredis'
import type { RedisKeys } from '../redis/keys.ts'

/*
 * KEYS[1] members (sorted set, score = lease expiry ms), KEYS[2] weights (hash, member -> bytes)
 * ARGV[1] now ms, ARGV[2] member, ARGV[3] lease expiry ms, ARGV[4] max members,
 * ARGV[5] member weight, ARGV[6] max total weight (0 = no weight limit)
 * Drops expired members, then admits the member if both limits allow it (a member already held only
 * has its lease renewed); both keys expire with the last lease. Returns { 1, count, total } when admitted, { 0, 'count' | 'weight', count, total }
 * when refused.
 */
const ACQUIRE_SCRIPT = `
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, m in ipairs(expired) do redis.call('HDEL', KEYS[2], m) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local count = redis.call('ZCARD', KEYS[1])
local total = 0
local maxWeight = tonumber(ARGV[6])
if maxWeight > 0 then
  for _, w in ipairs(redis.call('HVALS', KEYS[2])) do total = total + tonumber(w) end
end
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  if count >= tonumber(ARGV[4]) then return { 0, 'count', count, total } end
  if maxWeight > 0 and total + tonumber(ARGV[5]) > maxWeight then return { 0, 'weight', count, total } end
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[5])
  count = count + 1
  total = total + tonumber(ARGV[5])
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local keep = math.max(1, tonumber(last[2]) - tonumber(ARGV[1]))
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('PEXPIRE', KEYS[2], keep)
return { 1, count, total }
`

/*
 * KEYS[1] members, KEYS[2] weights; ARGV[1] member, ARGV[2] new lease expiry ms, ARGV[3] new name ('' = keep), ARGV[4] now ms
 * Renews a held member's lease (and renames it); returns 1, or 0 when it is no longer held.
 */
const RENEW_SCRIPT = `
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local member = ARGV[1]
if ARGV[3] ~= '' then
  local weight = redis.call('HGET', KEYS[2], ARGV[1]) or '0'
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[3], weight)
  member = ARGV[3]
end
redis.call('ZADD', KEYS[1], ARGV[2], member)
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local keep = math.max(1, tonumber(last[2]) - tonumber(ARGV[4]))
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('PEXPIRE', KEYS[2], keep)
return 1
`

/* KEYS[1] members, KEYS[2] weights; ARGV the members to release. Returns how many were held. */
const RELEASE_SCRIPT = `
for _, m in ipairs(ARGV) do redis.call('HDEL', KEYS[2], m) end
return redis.call('ZREM', KEYS[1], unpack(ARGV))
`

declare module 'ioredis' {
  interface RedisCommander<Context> {
    dcQuotaAcquire(members: string, weights: string, now: number, member: string, expiry: number, max: number, weight: number, maxWeight: number): Result<[number, string | number, number, number?], Context>
    dcQuotaRenew(members: string, weights: string, member: string, expiry: number, rename: string, now: number): Result<number, Context>
    dcQuotaRelease(members: string, weights: string, ...release: string[]): Result<number, Context>
  }
}

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

const defined = new WeakSet<Redis>()

export function createSlotPool({ redis, keys, kind, now = Date.now }: { redis: Redis; keys: RedisKeys; kind: string; now?: () => number }): SlotPool {
  if (!defined.has(redis)) {
    redis.defineCommand('dcQuotaAcquire', { numberOfKeys: 2, lua: ACQUIRE_SCRIPT })
    redis.defineCommand('dcQuotaRenew', { numberOfKeys: 2, lua: RENEW_SCRIPT })
    redis.defineCommand('dcQuotaRelease', { numberOfKeys: 2, lua: RELEASE_SCRIPT })
    defined.add(redis)
  }
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
