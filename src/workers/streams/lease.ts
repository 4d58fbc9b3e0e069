import type { Redis } from 'ioredis'
import type { RedisKeys } from '../../shared/redis/keys.ts'
import { defineScripts } from '../../shared/redis/scripts.ts'

/** Sequence numbers kept per shard with STREAMS_AUDIT. */
export const AUDIT_MAX = 10_000

/**
 * One holder per shard fleet-wide: a lease is a key set NX with the holder's token and an expiry, renewed
 * while the holder reads; a holder that dies stops renewing and another takes the shard after the expiry.
 * Progress is recorded only under the lease (a script checks the token), so a holder that lost its lease
 * (paused past the expiry) cannot move the checkpoint of the one that took over.
 */
export interface ShardLeases {
  /**
   * Takes the lease, or renews it when this token has it; false when another holder has it. `atTip`: a
   * read since the last record applied found the shard's tip (the metrics then count it caught up).
   */
  take(table: string, shard: string, token: string, atTip?: boolean): Promise<boolean>
  /**
   * Sets the shard's state (checkpoint, done, or '' = none) and renews the lease; false when the lease is
   * lost. `applied`: the sequence numbers applied, `createdMs` the last one's approximate creation time.
   */
  commit(table: string, shard: string, token: string, state: string, applied?: string[], createdMs?: number): Promise<boolean>
  /** Gives the lease up (only this token's). */
  release(table: string, shard: string, token: string): Promise<void>
  /** Counts a whole-table invalidation because stream history was lost (for /metrics). */
  historyLost(table: string): Promise<void>
}

export function createShardLeases(deps: { redis: Redis; keys: RedisKeys; leaseMs: number; audit: boolean }): ShardLeases {
  const { redis, keys, leaseMs } = deps
  defineScripts(redis)
  const lease = (table: string, shard: string) => keys.streamFollow(table, `lease:${shard}`)
  const live = (table: string) => keys.streamFollow(table, 'live')
  // Leases that are no shard's (the first follow's) leave no trace in the live hash.
  const shardId = (shard: string) => (shard.startsWith('@') ? '' : shard)
  return {
    take: async (table, shard, token, atTip = false) =>
      (await redis.dcStreamLease(lease(table, shard), live(table), token, leaseMs, shardId(shard), atTip ? '1' : '')) === 1,
    async commit(table, shard, token, state, applied = [], createdMs) {
      const audit = keys.streamFollow(table, `audit:${shard}`)
      const kept = deps.audit ? AUDIT_MAX : 0
      const created = createdMs === undefined ? '' : String(createdMs)
      const ok = await redis.dcStreamCommit(
        lease(table, shard),
        keys.streamFollow(table, 'shards'),
        audit,
        keys.streamFollow(table, 'stats'),
        live(table),
        token,
        leaseMs,
        shard,
        state,
        kept,
        applied.length,
        created,
        ...(kept ? applied : []),
      )
      return ok === 1
    },
    async release(table, shard, token) {
      await redis.dcStreamRelease(lease(table, shard), live(table), token, shardId(shard))
    },
    async historyLost(table) {
      await redis.hincrby(keys.streamFollow(table, 'stats'), 'lost', 1)
    },
  }
}
