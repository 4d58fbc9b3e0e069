import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import { createStatsHistory, MAX_HISTORY_MINUTES } from '../../../shared/cache/stats-history.ts'
import { authErrors, ErrorResponse, TableName } from '../schemas.ts'

const Series = Type.Object(
  {
    hits: Type.Array(Type.Integer()),
    misses: Type.Array(Type.Integer()),
    stale: Type.Array(Type.Integer()),
    errors: Type.Array(Type.Integer()),
  },
  { description: 'counts per minute, one per entry of `times`' },
)

export const HistoryQuery = Type.Object(
  {
    minutes: Type.Integer({ minimum: 1, maximum: MAX_HISTORY_MINUTES, default: 60, description: 'minutes to return, ending now' }),
    table: Type.Optional(TableName),
  },
  { additionalProperties: false },
)

export const HistoryResponse = Type.Object({
  step: Type.Integer({ description: 'seconds between points (60)' }),
  times: Type.Array(Type.Integer(), { description: 'start of each minute, epoch seconds, oldest first; the last is still filling' }),
  totals: Series,
  tables: Type.Record(Type.String(), Series),
})

/** The name the table list's reads are counted under (stats.ts). */
const LIST_STATS = '*'

/** GET /cache/stats/history: per-minute hits, misses, stale and errors, merged over every API process. */
export default async function historyRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const history = createStatsHistory({ redis: app.redis, keys: app.keys })

  app.get(
    '/cache/stats/history',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['cache'],
        summary: 'Hits, misses, stale and errors per minute, per table and in total, for up to 24 hours',
        description:
          'Every API process adds its counts into one Redis hash per minute (kept 25 hours), so the history is the ' +
          "fleet's and survives restarts. A table's series is present only when it had a count in the window. Only the " +
          "tables the key may see, as in GET /cache/stats (the table list's reads, under `*`, to keys that see every " +
          'table); totals are over those. With `table`, only that table.',
        querystring: HistoryQuery,
        response: { 200: HistoryResponse, 400: ErrorResponse, ...authErrors, 503: ErrorResponse },
      },
    },
    async (request) => {
      const { minutes, table } = request.query
      // This process's pending counts first, so the current minute includes them.
      await app.cache.stats.flush()
      // The same tables as GET /cache/stats shows this key, so the two always add up.
      const principal = request.principal
      const visible = (name: string) => (name === LIST_STATS ? principal?.tables === null : app.tableVisible(principal, name))
      return history.read({ minutes, visible, ...(table ? { table } : {}) })
    },
  )
}
