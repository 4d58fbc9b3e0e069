import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import type { ApiConfig } from '../../shared/config.ts'
import { createDynamoClients, type DynamoClients } from '../../shared/dynamo/client.ts'
import { createConfiguredGateway } from '../../shared/dynamo/configured-gateway.ts'
import type { CallObservation, DynamoGateway } from '../../shared/dynamo/gateway.ts'
import { createQueueProducers, type QueueProducers } from '../../shared/queues/index.ts'
import { closeRedis, createConfiguredRedis, waitForReady } from '../../shared/redis/index.ts'
import { createRedisKeys, type RedisKeys } from '../../shared/redis/keys.ts'
import { watchRedisServer } from '../../shared/redis/server-checks.ts'

declare module 'fastify' {
  interface FastifyInstance {
    config: ApiConfig
    /** Fail-fast Redis connection for request paths and queue producers. */
    redis: Redis
    dynamo: DynamoClients
    /** Every DynamoDB call of the API goes through this (errors mapped, breaker, budget, metrics). */
    gateway: DynamoGateway
    queues: QueueProducers
    keys: RedisKeys
  }
}

export interface ConnectionsOptions {
  config: ApiConfig
  /** Sees every DynamoDB call (metrics, tests). */
  observeDynamo?(call: CallObservation): void
}

async function connections(app: FastifyInstance, opts: ConnectionsOptions) {
  const { config } = opts
  const redis = createConfiguredRedis(config, 'request', 'api', app.log)
  const keys = createRedisKeys(config.REDIS_PREFIX)
  const dynamo = createDynamoClients(config)
  const queues = createQueueProducers(redis, keys.queuePrefix)
  const gateway = createConfiguredGateway({
    config,
    dynamo,
    redis,
    keys,
    priority: 'user',
    logger: app.log,
    ...(opts.observeDynamo ? { observe: opts.observeDynamo } : {}),
  })

  app.decorate('config', config)
  app.decorate('redis', redis)
  app.decorate('keys', keys)
  app.decorate('dynamo', dynamo)
  app.decorate('gateway', gateway)
  app.decorate('queues', queues)

  // Start with a connected Redis when there is one, but never refuse to start without it: reads bypass.
  await waitForReady(redis, 2000)
  watchRedisServer(redis, app.log, 'api')

  app.addHook('onClose', async () => {
    await queues.close()
    await closeRedis(redis)
    dynamo.close()
  })
}

export default fp(connections, { name: 'connections' })
