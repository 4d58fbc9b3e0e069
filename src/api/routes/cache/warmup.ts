import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import { authErrors, ErrorResponse, TableName } from '../schemas.ts'

const WarmupBody = Type.Object(
  { tables: Type.Optional(Type.Array(TableName, { minItems: 1, maxItems: 100, uniqueItems: true })) },
  { additionalProperties: false },
)

export default async function warmupRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  app.post(
    '/cache/warmup',
    {
      config: { scope: 'admin' },
      bodyLimit: 64 * 1024,
      schema: {
        tags: ['cache'],
        summary: 'Queue a prefetch now: of the named tables, or of the most popular ones',
        body: Type.Union([WarmupBody, Type.Null()]),
        response: { 202: Type.Object({ jobId: Type.String() }), 400: ErrorResponse, ...authErrors, 404: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (request, reply) => {
      const tables = request.body?.tables
      // Denied and missing tables are both 404, before anything is queued.
      for (const table of tables ?? []) await app.assertTableExists(table, request.principal)
      const jobId = await app.queues.enqueue('prefetch', tables ? { tables } : {})
      return reply.code(202).send({ jobId })
    },
  )
}
