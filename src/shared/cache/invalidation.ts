import type { Redis } from 'ioredis'
import { pipelineByTag } from '../redis/index.ts'
import type { RedisKeys } from '../redis/keys.ts'
import { ALL_TABLES, invalidationChannel, invalidationMessage } from './invalidation-feed.ts'

/**
 * Invalidation is a generation bump: every entry remembers the generation it was written under and a
 * read treats any other generation as a miss. O(1) per table on the request path; the dead keys are
 * removed later by the cache-maintenance job. The bump is then announced, so every API process drops
 * its near-cache copies of the table at once.
 */
export async function invalidateTable(redis: Redis, keys: RedisKeys, table: string | null): Promise<number> {
  const generation = await redis.incr(keys.generation(table))
  await redis.publish(invalidationChannel(keys.prefix), invalidationMessage(table))
  return generation
}

/** Bumps the generation of every table that has ever been cached, and of the table list. */
export async function invalidateAll(redis: Redis, keys: RedisKeys): Promise<string[]> {
  const tables = await redis.smembers(keys.cachedTables)
  // Each table's generation lives in its table's slot: one INCR each, pipelined per slot on a cluster.
  const generations = [...tables, null].map((table) => keys.generation(table))
  const replies = await pipelineByTag(redis, generations.map((key) => ({ key, add: (p) => p.incr(key) })))
  const failed = replies.find(([err]) => err)
  if (failed) throw failed[0]
  await redis.publish(invalidationChannel(keys.prefix), ALL_TABLES)
  return tables
}

/** Records that a table has cached entries, so DELETE /cache can find it without scanning keys. */
export async function rememberCachedTable(redis: Redis, keys: RedisKeys, table: string): Promise<void> {
  await redis.sadd(keys.cachedTables, table)
}
