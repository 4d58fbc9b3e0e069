import type { Redis } from 'ioredis'
import type { RedisKeys } from '../redis/keys.ts'

/**
 * Invalidation is a generation bump: every entry remembers the generation it was written under and a
 * read treats any other generation as a miss. O(1) per table on the request path; the dead keys are
 * removed later by the cache-maintenance job.
 */
export async function invalidateTable(redis: Redis, keys: RedisKeys, table: string | null): Promise<number> {
  return redis.incr(keys.generation(table))
}

/** Bumps the generation of every table that has ever been cached, and of the table list. */
export async function invalidateAll(redis: Redis, keys: RedisKeys): Promise<string[]> {
  const tables = await redis.smembers(keys.cachedTables)
  const pipeline = redis.pipeline()
  // One INCR per table keeps it Redis Cluster safe (each table's generation is in its own slot).
  for (const table of tables) pipeline.incr(keys.generation(table))
  pipeline.incr(keys.generation(null))
  await pipeline.exec()
  return tables
}

/** Records that a table has cached entries, so DELETE /cache can find it without scanning keys. */
export async function rememberCachedTable(redis: Redis, keys: RedisKeys, table: string): Promise<void> {
  await redis.sadd(keys.cachedTables, table)
}
