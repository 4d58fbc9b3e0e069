import type { Redis } from 'ioredis'
import type { CacheService } from '../shared/cache/cache-service.ts'
import type { Config } from '../shared/config.ts'
import type { DynamoClients } from '../shared/dynamo/client.ts'
import type { DynamoGateway } from '../shared/dynamo/gateway.ts'
import type { Logger } from '../shared/logger.ts'
import type { QueueProducers } from '../shared/queues/index.ts'
import type { RedisKeys } from '../shared/redis/keys.ts'

/** What a processor may use. Built once per worker process by main.ts and passed to every factory. */
export interface WorkerDeps {
  config: Config
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
