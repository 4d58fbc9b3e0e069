import { Redis, type RedisOptions } from 'ioredis'
import type { LogSink } from '../logger.ts'

/**
 * - `fast`: request paths and queue producers. No offline queue and one retry, so a dead Redis fails a
 *   command at once instead of holding an HTTP request.
 * - `blocking`: BullMQ Workers and QueueEvents, which must wait for Redis forever
 *   (BullMQ rejects anything but maxRetriesPerRequest: null).
 */
export type RedisRole = 'fast' | 'blocking'

export interface RedisFactoryOptions {
  url: string
  role: RedisRole
  name: string
  logger?: LogSink
}

const ROLE_OPTIONS: Record<RedisRole, RedisOptions> = {
  fast: { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 1000, connectTimeout: 2000 },
  blocking: { enableOfflineQueue: true, maxRetriesPerRequest: null, connectTimeout: 5000 },
}

/** Opens one ioredis connection that reconnects forever (capped at 1 s between tries). */
export function createRedis({ url, role, name, logger }: RedisFactoryOptions): Redis {
  const redis = new Redis(url, {
    ...ROLE_OPTIONS[role],
    connectionName: name,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 5), 1000),
  })
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

/** Closes a connection, falling back to disconnect when QUIT cannot be sent (Redis is down). */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'end') return
  try {
    await Promise.race([redis.quit(), new Promise((_, reject) => setTimeout(reject, 1000).unref())])
  } catch {
    redis.disconnect()
  }
}

/** True for the errors a fail-fast connection raises while Redis is unreachable. */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false
  return (
    err.name === 'MaxRetriesPerRequestError' ||
    /enableOfflineQueue|Connection is closed|Command timed out|ECONNREFUSED|ECONNRESET|EPIPE/.test(err.message)
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
