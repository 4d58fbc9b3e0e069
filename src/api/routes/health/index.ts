import { ListTablesCommand } from '@aws-sdk/client-dynamodb'
import type { FastifyInstance } from 'fastify'
import { Type } from 'typebox'

const Check = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable')]),
})
const DynamoCheck = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable')]),
  breaker: Type.Optional(
    Type.Union([Type.Literal('closed'), Type.Literal('open'), Type.Literal('half-open')], {
      description: "this process's DynamoDB circuit breaker",
    }),
  ),
})
const Readiness = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable')]),
  checks: Type.Object({ redis: Check, dynamodb: DynamoCheck }),
})

/** How long one readiness result answers every probe of this process: probes never hammer Redis or DynamoDB. */
export const READY_CACHE_MS = 2000

type Status = 'ok' | 'unavailable'

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

/** Runs one dependency check; why it failed goes to the log, never into the answer. */
async function check(app: FastifyInstance, dependency: string, work: () => Promise<unknown>, ms: number): Promise<Status> {
  try {
    await withTimeout(work(), ms)
    return 'ok'
  } catch (err) {
    app.log.warn({ msg: 'ready.check.failed', dependency, err: (err as Error).message || (err as Error).name })
    return 'unavailable'
  }
}

export default async function healthRoutes(app: FastifyInstance) {
  // One result per READY_CACHE_MS and at most one check in flight, however many probes arrive.
  let last: { at: number; result: { redis: Status; dynamodb: Status } } | undefined
  let running: Promise<{ redis: Status; dynamodb: Status }> | undefined
  const readiness = () => {
    if (last && Date.now() - last.at < READY_CACHE_MS) return Promise.resolve(last.result)
    running ??= (async () => {
      const timeout = Math.min(app.config.DYNAMO_TIMEOUT_MS, 2000)
      const [redis, dynamodb] = await Promise.all([
        check(app, 'redis', () => app.redis.ping(), timeout),
        check(app, 'dynamodb', () => app.dynamo.raw.send(new ListTablesCommand({ Limit: 1 })), timeout),
      ])
      last = { at: Date.now(), result: { redis, dynamodb } }
      return last.result
    })().finally(() => {
      running = undefined
    })
    return running
  }

  app.get(
    '/health',
    {
      schema: { tags: ['operations'], summary: 'Liveness', response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
    },
    async () => ({ status: 'ok' as const }),
  )

  app.get(
    '/ready',
    {
      schema: {
        tags: ['operations'],
        summary: 'Readiness: Redis and DynamoDB answer',
        response: { 200: Readiness, 503: Readiness },
      },
    },
    async (_request, reply) => {
      const { redis, dynamodb } = await readiness()
      const ok = redis === 'ok' && dynamodb === 'ok'
      // The breaker is reported (live, not cached), not failed on: with it open the API still serves from the cache.
      const checks = { redis: { status: redis }, dynamodb: { status: dynamodb, breaker: app.gateway.breakerState() } }
      return reply.code(ok ? 200 : 503).send({ status: ok ? 'ok' : 'unavailable', checks })
    },
  )
}
