import type { Redis } from 'ioredis'
import { type CacheService, createCacheService } from '../shared/cache/cache-service.ts'
import type { WorkerConfig } from '../shared/config.ts'
import { createDynamoClients, type DynamoClients } from '../shared/dynamo/client.ts'
import { createConfiguredGateway } from '../shared/dynamo/configured-gateway.ts'
import type { DynamoGateway } from '../shared/dynamo/gateway.ts'
import type { Logger } from '../shared/logger.ts'
import { createQueueProducers, type QueueProducers } from '../shared/queues/index.ts'
import { closeRedis, createConfiguredRedis } from '../shared/redis/index.ts'
import { createRedisKeys, type RedisKeys } from '../shared/redis/keys.ts'
import { watchRedisServer } from '../shared/redis/server-checks.ts'

/** What a processor may use. Built once per worker process by createWorkerDeps and passed to every factory. */
export interface WorkerDeps {
  config: WorkerConfig
  /** Command connection for processors' own reads and writes (not the Workers' blocking ones). */
  redis: Redis
  keys: RedisKeys
  dynamo: DynamoClients
  /** Every DynamoDB call a processor makes goes through this (errors mapped, breaker, budget). */
  gateway: DynamoGateway
  queues: QueueProducers
  logger: Logger
  /** The cached read path, shared with the API (refreshes, prefetch). */
  cache: CacheService
}

/** WorkerDeps that own their connections and clients. */
export interface OwnedWorkerDeps extends WorkerDeps {
  /** The 'request' connection under the producers, the gateway's budgets and the cache (fails fast while Redis is down). */
  producerRedis: Redis
  /** Closes what createWorkerDeps opened (not the Workers, nor their blocking connection): close those first. */
  close(): Promise<void>
}

/**
 * The deps of a worker process, wired as the fleet runs them: its calls at 'background' priority, the
 * producers and the cache on a fail-fast connection. Tests that run a processor by hand use this too.
 */
export function createWorkerDeps(config: WorkerConfig, logger: Logger): OwnedWorkerDeps {
  const keys = createRedisKeys(config.REDIS_PREFIX)
  const redis = createConfiguredRedis(config, 'background', 'worker-commands', logger)
  const producerRedis = createConfiguredRedis(config, 'request', 'worker-producers', logger)
  watchRedisServer(redis, logger, 'worker')
  const dynamo = createDynamoClients(config)
  const queues = createQueueProducers(producerRedis, keys.queuePrefix)
  const gateway = createConfiguredGateway({
    config,
    dynamo,
    redis: producerRedis,
    keys,
    priority: 'background',
    logger,
  })
  const cache = createCacheService({ config, redis: producerRedis, keys, gateway, queues, logger })
  return {
    config,
    redis,
    keys,
    dynamo,
    gateway,
    queues,
    logger,
    cache,
    producerRedis,
    async close() {
      await cache.close()
      await queues.close()
      await Promise.all([closeRedis(redis), closeRedis(producerRedis)])
      dynamo.close()
    },
  }
}
