import type { FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import { invalidateAll, invalidateTable } from '../../../shared/cache/invalidation.ts'
import { ALL_TABLES } from '../../../shared/cache/invalidation-feed.ts'
import { authErrors, ErrorResponse, TableParams } from '../schemas.ts'

const Invalidated = Type.Object({
  invalidated: Type.Array(Type.String(), { description: 'tables whose entries are now invalid' }),
  purgeJobId: Type.Union([Type.String(), Type.Null()], { description: 'background clean-up job, null if it could not be queued' }),
})

export default async function invalidateRoutes(app: FastifyInstance) {
  /** Queues the physical clean-up; the generation bump alone already made the entries invalid. */
  async function purgeLater(table: string | null) {
    try {
      return await app.queues.enqueue('cache-maintenance', { kind: 'purge', table })
    } catch (err) {
      app.log.warn({ msg: 'cache.purge.not-queued', table, err: (err as Error).message })
      return null
    }
  }

  app.delete('/tables/:table/cache', {
    config: { scope: 'admin' },
    schema: {
      tags: ['cache'],
      summary: "Invalidate everything cached for a table (O(1)); clean-up runs in the background",
      params: TableParams,
      response: { 200: Invalidated, ...authErrors, 404: ErrorResponse, 503: ErrorResponse },
    },
  }, async (request) => {
    const { table } = request.params as { table: string }
    await app.assertTableExists(table, request.principal)
    await invalidateTable(app.redis, app.keys, table)
    // This process drops its near-cache copies now; the others hear of it through the feed.
    app.cache.forget(table)
    return { invalidated: [table], purgeJobId: await purgeLater(table) }
  })

  app.delete('/cache', {
    config: { scope: 'admin' },
    schema: {
      tags: ['cache'],
      summary: 'Invalidate everything cached, for every table',
      response: { 200: Invalidated, ...authErrors, 503: ErrorResponse },
    },
  }, async () => {
    const tables = await invalidateAll(app.redis, app.keys)
    app.cache.forget(ALL_TABLES)
    return { invalidated: tables, purgeJobId: await purgeLater(null) }
  })
}
