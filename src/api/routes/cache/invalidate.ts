import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import { invalidateAll } from '../../../shared/cache/invalidation.ts'
import { ALL_TABLES } from '../../../shared/cache/invalidation-feed.ts'
import { authErrors, ErrorResponse, TableParams } from '../schemas.ts'

const ModeQuery = Type.Object({
  mode: Type.Optional(
    Type.Union([Type.Literal('hard'), Type.Literal('soft')], {
      description:
        'hard: the next read of an invalidated entry misses and waits for DynamoDB; soft: it is served once more as STALE (Cache-Status detail=invalidated) while one refresh is queued. Default: INVALIDATION_MODE',
    }),
  ),
})

const Invalidated = Type.Object({
  invalidated: Type.Array(Type.String(), { description: 'tables whose entries are now invalid' }),
  purgeJobId: Type.Union([Type.String(), Type.Null()], { description: 'background clean-up job, null if it could not be queued' }),
})

export default async function invalidateRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  /** Queues the physical clean-up; the generation bump alone already made the entries invalid. */
  async function purgeLater(table: string | null) {
    try {
      return await app.queues.enqueue('cache-maintenance', { kind: 'purge', table })
    } catch (err) {
      app.log.warn({ msg: 'cache.purge.not-queued', table, err: (err as Error).message })
      return null
    }
  }

  app.delete(
    '/tables/:table/cache',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['cache'],
        summary: 'Invalidate everything cached for a table (O(1)); clean-up runs in the background',
        params: TableParams,
        querystring: ModeQuery,
        response: { 200: Invalidated, ...authErrors, 404: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (request) => {
      const { table } = request.params
      await app.assertTableExists(table, request.principal)
      // This process drops its near-cache copies at once; the others hear of it through the feed.
      await app.cache.invalidateTable(table, request.query.mode ? { mode: request.query.mode } : {})
      return { invalidated: [table], purgeJobId: await purgeLater(table) }
    },
  )

  app.delete(
    '/cache',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['cache'],
        summary: 'Invalidate everything cached, for every table',
        querystring: ModeQuery,
        response: { 200: Invalidated, ...authErrors, 503: ErrorResponse },
      },
    },
    async (request) => {
      const tables = await invalidateAll(app.redis, app.keys, request.query.mode ?? app.config.INVALIDATION_MODE)
      app.cache.forget(ALL_TABLES)
      return { invalidated: tables, purgeJobId: await purgeLater(null) }
    },
  )
}
