import type { FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import { authErrors, ErrorResponse } from '../schemas.ts'

/** The name the table list's reads are counted under (stats.ts). */
const LIST_STATS = '*'

const Counters = { hits: Type.Integer(), misses: Type.Integer(), stale: Type.Integer(), errors: Type.Integer() }

export const StatsResponse = Type.Object({
  totals: Type.Object({ ...Counters, hitRate: Type.Number({ minimum: 0, maximum: 1 }) }),
  tables: Type.Record(Type.String(), Type.Object({ ...Counters, lastAccess: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]) })),
  popular: Type.Array(Type.Object({ table: Type.String(), score: Type.Number() })),
})

export default async function statsRoutes(app: FastifyInstance) {
  app.get(
    '/cache/stats',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['cache'],
        summary: 'Hit, miss, stale and error counts per table across every API process, and table popularity',
        description:
          "Only the tables the key may see (TABLES_ALLOW / TABLES_DENY and the key's own tables); totals and popular are " +
          "computed over those. The table list's own reads count under the name `*`, shown to keys that see every table.",
        response: { 200: StatsResponse, ...authErrors, 503: ErrorResponse },
      },
    },
    async (request) => {
      const all = request.principal?.tables === null
      // `*` (the table list) is every key's reads: only a key that sees every table sees it.
      return app.cache.stats.snapshot(10, (table) => (table === LIST_STATS ? all : app.tableVisible(request.principal, table)))
    },
  )
}
