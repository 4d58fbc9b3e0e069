import { startDynalite } from '../../src/local/services/dynalite.ts'
import { type LocalRedis, redisServerOnPath, startRedisServer } from '../../src/local/services/redis.ts'
import { startSes } from '../../src/local/services/ses.ts'
import type { Tap } from './tap.ts'

// Stand-ins accept any credentials; the SDK only needs some to sign with.
process.env.AWS_ACCESS_KEY_ID ??= 'local'
process.env.AWS_SECRET_ACCESS_KEY ??= 'local'

export interface TestServices {
  redisUrl: string
  dynamoEndpoint: string
  sesEndpoint: string
  /** Present when this file owns its Redis (not given by REDIS_URL), so a test may stop and restart it. */
  redis?: LocalRedis
  close(): Promise<void>
}

async function containerRuntimeAnswers(): Promise<boolean> {
  try {
    const { getContainerRuntimeClient } = await import('testcontainers')
    await getContainerRuntimeClient()
    return true
  } catch {
    return false
  }
}

/** A Redis the test owns: redis-server from PATH, else a testcontainers Redis when a runtime answers. */
export async function ownRedis(): Promise<{ url: string; local?: LocalRedis; close(): Promise<void> }> {
  const binary = redisServerOnPath()
  if (binary) {
    const local = await startRedisServer(binary)
    return { url: local.url, local, close: () => local.stop() }
  }
  if (await containerRuntimeAnswers()) {
    const { GenericContainer } = await import('testcontainers')
    const container = await new GenericContainer('redis:7-alpine').withExposedPorts(6379).start()
    return {
      url: `redis://${container.getHost()}:${container.getMappedPort(6379)}`,
      close: async () => {
        await container.stop()
      },
    }
  }
  throw new Error('Tests need redis-server on PATH (apt-get install -y redis-server), a Docker engine, or REDIS_URL')
}

/**
 * Real services for one test file: its own redis-server, dynalite child process and SES stand-in,
 * each replaced by REDIS_URL / DYNAMODB_ENDPOINT / SES_ENDPOINT when those are set.
 * Pass `ownRedis: true` for tests that stop and restart Redis (they always get their own).
 */
export async function startServices(t: Tap, opts: { ownRedis?: boolean } = {}): Promise<TestServices> {
  const env = process.env
  const [redis, dynamo, ses] = await Promise.all([
    env.REDIS_URL && !opts.ownRedis ? { url: env.REDIS_URL, close: async () => {} } : ownRedis(),
    env.DYNAMODB_ENDPOINT ? { endpoint: env.DYNAMODB_ENDPOINT, stop: async () => {} } : startDynalite(),
    env.SES_ENDPOINT ? { endpoint: env.SES_ENDPOINT, stop: async () => {} } : startSes(),
  ])
  const services: TestServices = {
    redisUrl: redis.url,
    dynamoEndpoint: dynamo.endpoint,
    sesEndpoint: ses.endpoint,
    ...('local' in redis && redis.local ? { redis: redis.local } : {}),
    close: async () => {
      await Promise.all([redis.close(), dynamo.stop(), ses.stop()])
    },
  }
  t.teardown(() => services.close())
  return services
}
