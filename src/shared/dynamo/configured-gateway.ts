import type { Redis } from 'ioredis'
import type { Config } from '../config.ts'
import type { LogSink } from '../logger.ts'
import type { RedisKeys } from '../redis/keys.ts'
import { createCapacityBudget } from './capacity-budget.ts'
import type { DynamoClients } from './client.ts'
import { type CallObservation, type CallPriority, createDynamoGateway, type DynamoGateway, resilienceFrom } from './gateway.ts'

/** The gateway as both process roles build it from config: the API as 'user', workers as 'background'. */
export function createConfiguredGateway(deps: {
  config: Config
  dynamo: DynamoClients
  redis: Redis
  keys: RedisKeys
  priority: CallPriority
  logger?: LogSink
  observe?(call: CallObservation): void
}): DynamoGateway {
  const { config, priority } = deps
  return createDynamoGateway({
    client: deps.dynamo.raw,
    priority,
    slowCallMs: config.SLOW_CALL_MS,
    resilience: resilienceFrom(config, priority),
    budget: createCapacityBudget({
      redis: deps.redis,
      keys: deps.keys,
      unitsPerSecond: config.DYNAMO_READ_BUDGET,
      userReservedShare: config.USER_RESERVED_SHARE,
    }),
    // Only batch writes spend it, and they are all background work: no share is held back.
    writeBudget: createCapacityBudget({
      redis: deps.redis,
      keys: deps.keys,
      unitsPerSecond: config.DYNAMO_WRITE_BUDGET,
      userReservedShare: 0,
      counter: (keys, table, epochSecond) => keys.writeBudget(table, epochSecond),
    }),
    ...(deps.logger ? { logger: deps.logger } : {}),
    ...(deps.observe ? { observe: deps.observe } : {}),
  })
}
