import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { type CacheService, createCacheService } from '../../shared/cache/cache-service.ts'
import { type CursorCodec, createCursorCodec } from '../../shared/cursor.ts'
import { createConfiguredRedis } from '../../shared/redis/index.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The cached read path: reads through near cache, Redis and DynamoDB; stats; table descriptions. */
    cache: CacheService
    cursors: CursorCodec
  }
}

export interface CachePluginOptions {
  /** Statistics on (default) or off; the benchmark compares both. */
  stats?: boolean
}

async function cache(app: FastifyInstance, opts: CachePluginOptions) {
  const { config } = app
  // The near cache's invalidation feed needs a connection of its own (a subscribed one runs nothing else).
  const near =
    config.NEAR_CACHE_TTL_MS > 0
      ? {
          ttlMs: config.NEAR_CACHE_TTL_MS,
          maxBytes: config.NEAR_CACHE_MAX_MB * 1024 * 1024,
          subscriber: createConfiguredRedis(config, 'background', 'api-invalidations', app.log),
        }
      : undefined
  const service = createCacheService({
    config,
    redis: app.redis,
    keys: app.keys,
    gateway: app.gateway,
    queues: app.queues,
    logger: app.log,
    ...(opts.stats === false ? { stats: false } : {}),
    ...(near ? { near } : {}),
  })
  app.decorate('cache', service)
  app.decorate('cursors', createCursorCodec(config.CURSOR_SECRET))
  // Runs before connections close (onClose hooks run in reverse), so the last stats flush still reaches Redis.
  app.addHook('onClose', () => service.close())
}

export default fp(cache, { name: 'cache', dependencies: ['connections'] })
