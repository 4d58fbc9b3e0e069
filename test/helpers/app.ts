import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/api/app.ts'
import { type ApiConfig, type Config, loadConfig } from '../../src/shared/config.ts'
import type { QueueName } from '../../src/shared/queues/definitions.ts'
import type { TestServices } from './services.ts'
import type { Tap } from './tap.ts'
import { uniquePrefix } from './unique-prefix.ts'
import { sleep } from './wait.ts'

/** Dev keys every test app accepts, one per scope plus an all-scope admin key. */
export const KEYS = {
  read: 'test-read-key-0000000001',
  write: 'test-write-key-000000002',
  export: 'test-export-key-00000003',
  admin: 'test-admin-key-000000004',
} as const

export const auth = (scope: keyof typeof KEYS) => ({ authorization: `Bearer ${KEYS[scope]}` })

// A unique Redis prefix, so test files (and tests) sharing one Redis never see each other's keys.
export { uniquePrefix } from './unique-prefix.ts'

/** Config for a test process: the services' addresses, a unique prefix, quiet logs, plus overrides. */
export function testConfig(services: TestServices, overrides: Record<string, string> = {}): ApiConfig {
  return loadConfig(
    {
      REDIS_URL: services.redisUrl,
      DYNAMODB_ENDPOINT: services.dynamoEndpoint,
      SES_ENDPOINT: services.sesEndpoint,
      REDIS_PREFIX: uniquePrefix(),
      API_KEYS: `${KEYS.read}:read;${KEYS.write}:write;${KEYS.export}:export;${KEYS.admin}:admin`,
      CURSOR_SECRET: 'test-cursor-secret-0123456789',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
      SHUTDOWN_TIMEOUT_MS: '5000',
      DYNAMO_TIMEOUT_MS: '2000',
      // Tests send bursts far above 600 a minute from one key; test/api/rate-limit.test.ts sets its own limits.
      RATE_LIMIT_PER_MIN: '1000000',
      // Tests queue far more than a tenant's default share; test/api/limits.test.ts sets its own quotas.
      TENANT_BATCHES_MAX: '100000',
      TENANT_BATCHES_MB: '100000',
      TENANT_EXPORTS_MAX: '10000',
      ...overrides,
    },
    'api',
  )
}

/** A ready API instance for `inject()`, closed when the test ends. */
export async function build(
  t: Tap,
  services: TestServices,
  overrides: Record<string, string> = {},
  options: Parameters<typeof buildApp>[1] = {},
): Promise<FastifyInstance> {
  const app = await buildApp(testConfig(services, overrides), options)
  t.teardown(() => app.close())
  return app
}

/**
 * Starts an app's queue producers before a test relies on them. BullMQ checks the Redis version with
 * an INFO on the request connection (1 s command timeout) when a Queue starts; on a loaded machine that
 * can time out, and a Queue whose start failed stays failed, so each try takes a fresh one as enqueue does.
 */
export async function startQueues(app: FastifyInstance, names: readonly QueueName[] = app.queues.names): Promise<void> {
  for (const name of names) {
    for (let attempt = 1; ; attempt++) {
      try {
        await app.queues.started(name)
        break
      } catch (err) {
        if (attempt >= 20) throw err
        await sleep(250)
      }
    }
  }
}

/** Config as environment variables, for child processes. */
export function configEnv(config: Config): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(config)) if (v !== undefined) env[k] = String(v)
  return env
}
