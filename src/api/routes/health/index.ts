import { ListTablesCommand } from '@aws-sdk/client-dynamodb'
import type { FastifyInstance } from 'fastify'
import { Type } from 'typebox'

const Check = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('failed')]),
  error: Type.Optional(Type.String()),
  breaker: Type.Optional(Type.Union([Type.Literal('closed'), Type.Literal('open'), Type.Literal('half-open')], {
    description: "this process's DynamoDB circuit breaker",
  })),
})
const Readiness = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable')]),
  checks: Type.Object({ redis: Check, dynamodb: Check }),
})

async function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([work, timeout])
  } finally {
    clearTimeout(timer)
  }
}

async function check(work: () => Promise<unknown>, ms: number) {
  try {
    await withTimeout(work(), ms)
    return { status: 'ok' as const }
  } catch (err) {
    return { status: 'failed' as const, error: (err as Error).message || (err as Error).name }
  }
}

export default async function healthRoutes(app: FastifyInstance) {
  app.get('/health', {
    schema: { tags: ['operations'], summary: 'Liveness', response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
  }, async () => ({ status: 'ok' as const }))

  app.get('/ready', {
    schema: {
      tags: ['operations'],
      summary: 'Readiness: Redis and DynamoDB answer',
      response: { 200: Readiness, 503: Readiness },
    },
  }, async (_request, reply) => {
    const timeout = Math.min(app.config.DYNAMO_TIMEOUT_MS, 2000)
    const [redis, dynamodb] = await Promise.all([
      check(() => app.redis.ping(), timeout),
      check(() => app.dynamo.raw.send(new ListTablesCommand({ Limit: 1 })), timeout),
    ])
    const ok = redis.status === 'ok' && dynamodb.status === 'ok'
    // The breaker is reported, not failed on: with it open the API still serves from the cache.
    const checks = { redis, dynamodb: { ...dynamodb, breaker: app.gateway.breakerState() } }
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ok' : 'unavailable', checks })
  })
}
