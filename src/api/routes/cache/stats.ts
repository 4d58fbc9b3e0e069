import type { FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import { authErrors, ErrorResponse } from '../schemas.ts'

const Counters = { hits: Type.Integer(), misses: Type.Integer(), stale: Type.Integer(), errors: Type.Integer() }

export const StatsResponse = Type.Object({
  totals: Type.Object({ ...Counters, hitRate: Type.Number({ minimum: 0, maximum: 1 }) }),
  tables: Type.Record(
    Type.String(),
    Type.Object({ ...Counters, lastAccess: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]) }),
  ),
  popular: Type.Array(Type.Object({ table: Type.String(), score: Type.Number() })),
})

export default async function statsRoutes(app: FastifyInstance) {
  app.get('/cache/stats', {
    config: { scope: 'read' },
    schema: {
      tags: ['cache'],
      summary: 'Hit, miss, stale and error counts per table across every API process, and table popularity',
      description: "The table list's own reads count under the name `*`.",
      response: { 200: StatsResponse, ...authErrors, 503: ErrorResponse },
    },
  }, async () => app.reads.stats.snapshot())
}
