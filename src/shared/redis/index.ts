import { Redis, type RedisOptions } from 'ioredis'
import type { ApiConfig, WorkerConfig } from '../config.ts'
import type { LogSink } from '../logger.ts'
import { openCluster } from './cluster.ts'

export { hashTagOf, isCluster, type KeyedCommand, masters, pipelineByTag, scanKeys } from './slots.ts'

/**
 * - `request`: request paths and queue producers. No offline queue and one retry, so a dead Redis fails a
 *   command at once instead of holding an HTTP request.
 * - `background`: BullMQ Workers, QueueEvents, subscribers and worker commands, which must wait for Redis forever
 *   (BullMQ rejects anything but maxRetriesPerRequest: null).
 * On a cluster the offline queue is the Cluster's own option and the rest applies to each node connection.
 */
export type RedisRole = 'request' | 'background'

export interface RedisFactoryOptions {
  /** A redis:// URL; with `cluster`, comma-separated seed node URLs. */
  url: string
  role: RedisRole
  name: string
  /** REDIS_CLUSTER: connect to a Redis Cluster (an ioredis Cluster, typed as Redis). */
  cluster?: boolean
  logger?: LogSink
}

const ROLE_OPTIONS: Record<RedisRole, { enableOfflineQueue: boolean; node: RedisOptions }> = {
  // No auto-pipelining: ioredis makes a Pipeline for each batch, and a Pipeline copies every defined
  // script onto itself (15 µs here with the service's scripts, 3 µs without). A request issues one or two
  // commands per turn, so batches are small: with it on, a hit read from Redis (near cache off) cost
  // ~90 µs of CPU and ~50 MB more RSS; with it off, ~75 µs (BENCHMARKS.md, scenario 10).
  request: { enableOfflineQueue: false, node: { maxRetriesPerRequest: 1, commandTimeout: 1000, connectTimeout: 2000 } },
  background: { enableOfflineQueue: true, node: { maxRetriesPerRequest: null, connectTimeout: 5000 } },
}

/** Reconnect forever, capped at 1 s between tries. */
const retryStrategy = (times: number) => Math.min(50 * 2 ** Math.min(times, 5), 1000)

/** Opens one connection (or one cluster client) that reconnects forever; outages are logged once each. */
export function createRedis({ url, role, name, cluster = false, logger }: RedisFactoryOptions): Redis {
  const { enableOfflineQueue, node } = ROLE_OPTIONS[role]
  const redis = cluster
    ? openCluster(url, { enableOfflineQueue, retryStrategy, redisOptions: { ...node, connectionName: name } })
    : new Redis(url, { ...node, enableOfflineQueue, connectionName: name, retryStrategy })
  let healthy = true
  redis.on('error', (err: Error) => {
    // One line per outage, not one per reconnect attempt.
    if (healthy) logger?.warn({ msg: 'redis.down', connection: name, err: err.message })
    healthy = false
  })
  redis.on('ready', () => {
    if (!healthy) logger?.info({ msg: 'redis.up', connection: name })
    healthy = true
  })
  return redis
}

/** A connection to the deployment's Redis: REDIS_URL, as a cluster client when REDIS_CLUSTER is set. */
export function createConfiguredRedis(
  config: Pick<ApiConfig | WorkerConfig, 'REDIS_URL' | 'REDIS_CLUSTER'>,
  role: RedisRole,
  name: string,
  logger?: LogSink,
): Redis {
  return createRedis({ url: config.REDIS_URL, cluster: config.REDIS_CLUSTER, role, name, ...(logger ? { logger } : {}) })
}

/** Closes a connection, falling back to disconnect when QUIT cannot be sent (Redis is down). */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'end') return
  try {
    await Promise.race([redis.quit(), new Promise((_, reject) => setTimeout(reject, 1000).unref())])
  } catch {
    redis.disconnect()
  }
}

/**
 * True for the errors a fail-fast connection raises while Redis is unreachable, and for a Redis that
 * refuses writes because it is full (`maxmemory` under noeviction): either way, retry later (503).
 */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false
  // A MULTI refused as a whole names why in the errors of the commands it queued (ioredis keeps them).
  const queued = (err as { previousErrors?: unknown[] }).previousErrors
  if (err.message.startsWith('EXECABORT') && queued?.some(isRedisUnavailable)) return true
  return (
    err.name === 'MaxRetriesPerRequestError' ||
    err.name === 'ClusterAllFailedError' ||
    /enableOfflineQueue|Connection is closed|Command timed out|ECONNREFUSED|ECONNRESET|EPIPE|CLUSTERDOWN|None of startup nodes|Cluster is disconnect|^OOM command not allowed/.test(
      err.message,
    )
  )
}

/** Resolves when the connection is ready, or after `timeoutMs` (whichever comes first); true if ready. */
export async function waitForReady(redis: Redis, timeoutMs: number): Promise<boolean> {
  if (redis.status === 'ready') return true
  let timer: NodeJS.Timeout | undefined
  const ready = await Promise.race([
    new Promise<boolean>((resolve) => redis.once('ready', () => resolve(true))),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs)
    }),
  ])
  clearTimeout(timer)
  return ready
}
