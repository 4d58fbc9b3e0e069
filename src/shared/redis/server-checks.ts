import type { Redis } from 'ioredis'
import type { LogSink } from '../logger.ts'
import { masters } from './slots.ts'

/**
 * Whether Redis may evict keys the service cannot lose. Everything the fleet keeps in Redis counts on
 * staying until it expires or is deleted: a generation that disappears reads as 0 again and can make
 * invalidated entries valid (docs/coherence.md), BullMQ loses jobs and job locks, batch ledgers and
 * export state go missing. So the only safe settings are no memory limit at all (`maxmemory 0`) or
 * `maxmemory-policy noeviction` (BullMQ's own requirement), under which a full Redis refuses writes
 * instead of dropping keys. Read from INFO, not CONFIG GET: managed services (ElastiCache, MemoryDB)
 * refuse CONFIG but answer INFO, and BullMQ reads the same field the same way.
 */
export interface EvictionReading {
  /** maxmemory-policy of the node that evicts most readily (the first unsafe one on a cluster). */
  policy: string
  /** maxmemory in bytes of that node; 0 is no limit. */
  maxmemory: number
  /** True when no key can be evicted: no limit, or noeviction, on every node. */
  safe: boolean
}

/** Whether one node with this limit and policy keeps every key until it expires. */
export const keepsEveryKey = (maxmemory: number, policy: string) => maxmemory === 0 || policy === 'noeviction'

/** maxmemory and maxmemory_policy out of an `INFO memory` answer; undefined when either is absent. */
export function parseMemoryInfo(info: string): Omit<EvictionReading, 'safe'> | undefined {
  const field = (name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim()
  const policy = field('maxmemory_policy')
  const maxmemory = Number(field('maxmemory'))
  if (policy === undefined || policy === '' || !Number.isFinite(maxmemory)) return undefined
  return { policy, maxmemory }
}

/** Reads every master's eviction settings; the first unsafe node wins. Rejects when Redis cannot answer. */
export async function readEviction(redis: Redis): Promise<EvictionReading | undefined> {
  const nodes = await Promise.all(masters(redis).map(async (node) => parseMemoryInfo(await node.info('memory'))))
  if (nodes.some((n) => n === undefined)) return undefined
  const readings = (nodes as Array<Omit<EvictionReading, 'safe'>>).map((n) => ({ ...n, safe: keepsEveryKey(n.maxmemory, n.policy) }))
  return readings.find((r) => !r.safe) ?? readings[0]
}

/** The oldest Redis the service runs on: its invalidation script declares flags (a shebang), new in 7.0. */
export const MIN_REDIS_VERSION = [7, 0] as const

/** Whether a `redis_version` (or `valkey_version`) from INFO is at least MIN_REDIS_VERSION; true when unknown. */
export function versionSupported(version: string | undefined): boolean {
  const match = /^(\d+)\.(\d+)/.exec(version ?? '')
  if (!match) return true
  const [major, minor] = [Number(match[1]), Number(match[2])]
  return major > MIN_REDIS_VERSION[0] || (major === MIN_REDIS_VERSION[0] && minor >= MIN_REDIS_VERSION[1])
}

/**
 * Checks the Redis `redis` reaches each time it becomes ready (so a restart into a wrong setup is seen
 * too): logs `redis.version_unsupported` (error) below Redis 7.0, where invalidations cannot run, and
 * `redis.eviction_unsafe` (warn) when it may evict keys. The gauge dynacache_redis_eviction_safe and the
 * alert DynacacheRedisMayEvict say the latter to Prometheus (ops/README.md).
 */
export function watchRedisServer(redis: Redis, logger: LogSink, connection: string): void {
  const check = async () => {
    const info = await redis.info()
    const version = /^redis_version:(.*)$/m.exec(info)?.[1]?.trim()
    if (!versionSupported(version)) {
      logger.error({
        msg: 'redis.version_unsupported',
        connection,
        version,
        fix: `run Redis ${MIN_REDIS_VERSION.join('.')} or later: invalidations fail on this one, so cached entries outlive writes`,
      })
    }
    const reading = await readEviction(redis)
    if (reading && !reading.safe) {
      logger.warn({
        msg: 'redis.eviction_unsafe',
        connection,
        policy: reading.policy,
        maxmemory: reading.maxmemory,
        fix: 'set maxmemory-policy noeviction (or no maxmemory): evicted generations can serve invalidated entries, evicted jobs are lost',
      })
    }
  }
  // Unreadable (Redis went away again): the next ready checks again.
  const checkQuietly = () => void check().catch(() => {})
  redis.on('ready', checkQuietly)
  if (redis.status === 'ready') checkQuietly()
}
