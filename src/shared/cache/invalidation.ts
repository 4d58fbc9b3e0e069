import type { Redis } from 'ioredis'
import { pipelineByTag } from '../redis/index.ts'
import type { RedisKeys } from '../redis/keys.ts'
import { defineScripts } from '../redis/scripts.ts'
import type { InvalidationMode } from './coherence.ts'
import { ALL_TABLES, invalidationChannel, invalidationMessage } from './invalidation-feed.ts'

/**
 * Invalidation is a generation bump: every entry remembers the generations it was written under (its
 * table's own and its dependencies', docs/coherence.md) and a read treats any other as a miss, or, after
 * a soft bump, as STALE once. O(1) per table on the request path; the dead keys are removed later by the
 * cache-maintenance job. The bump is then announced, so every API process drops its near-cache copies at once.
 */
export async function invalidateTable(redis: Redis, keys: RedisKeys, table: string | null, mode: InvalidationMode = 'hard'): Promise<void> {
  defineScripts(redis)
  await redis.dcCacheBump(1, keys.generation(table), mode, 0, invalidationChannel(keys.prefix), invalidationMessage(table))
}

/** Bumps the generation of every table that has ever been cached, and of the table list. */
export async function invalidateAll(redis: Redis, keys: RedisKeys, mode: InvalidationMode = 'hard'): Promise<string[]> {
  defineScripts(redis)
  const tables = await redis.smembers(keys.cachedTables)
  // Each table's generation lives in its table's slot: one bump each, pipelined per slot on a cluster.
  const generations = [...tables, null].map((table) => keys.generation(table))
  const replies = await pipelineByTag(
    redis,
    generations.map((key) => ({ key, add: (p) => p.dcCacheBump(1, key, mode, 0, '', '') })),
  )
  const failed = replies.find(([err]) => err)
  if (failed) throw failed[0]
  await redis.publish(invalidationChannel(keys.prefix), ALL_TABLES)
  return tables
}

/** Announces bumped dependency generations of a table, so every API process drops its near-cache copies of them. */
export async function announceDependencies(redis: Redis, keys: RedisKeys, table: string | null, tags: readonly string[]): Promise<void> {
  await redis.publish(invalidationChannel(keys.prefix), invalidationMessage(table, tags))
}

/** Records that a table has cached entries, so DELETE /cache can find it without scanning keys. */
export async function rememberCachedTable(redis: Redis, keys: RedisKeys, table: string): Promise<void> {
  await redis.sadd(keys.cachedTables, table)
}
