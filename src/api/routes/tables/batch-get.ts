import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { Type } from 'typebox'
import { etagOf } from '../../../shared/cache/index.ts'
import { inflate } from '../../../shared/cache/inflate.ts'
import { batchKeyParams, MAX_BATCH_GET_KEYS } from '../../../shared/dynamo/batch-keys.ts'
import { ItemBatch, runInItemBatch } from '../../../shared/dynamo/item-batch.ts'
import { fieldsParam, parseFields, projectionFor } from '../../../shared/dynamo/projection.ts'
import { wantsRefresh, X_CACHE } from '../../cached-reply.ts'
import { TableParams } from '../schemas.ts'
import { Fields, readErrors, View } from './schemas.ts'

export const BatchGetBody = Type.Object(
  {
    keys: Type.Array(Type.Record(Type.String(), Type.Unknown()), {
      minItems: 1,
      maxItems: MAX_BATCH_GET_KEYS,
      description:
        'primary keys, each with exactly the key attributes: typed ({"PK": {"S": "a"}, "SK": {"N": "1"}}) or document ({"PK": "a", "SK": 1}; binary as base64). Each key at most once.',
    }),
    fields: Type.Optional(Fields),
    view: View,
  },
  { additionalProperties: false },
)

export const BatchGetAnswer = Type.Object({
  items: Type.Array(Type.Unknown(), { description: 'in request order; null where no item has the key' }),
})

/** POST /tables/:table/items/batch-get: many items by key, each through its own item entry. */
export default function batchGetRoute(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  app.post(
    '/tables/:table/items/batch-get',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['reads'],
        summary: 'Up to 100 items by key, each served from its own cached item entry; the misses read with one BatchGetItem',
        description:
          "Each key is looked up in the same entry `GET /tables/:table/items/:pk?sk=` uses (with the same fields and view), so a batch warms single reads and the other way round. The keys no entry answers are read together with BatchGetItem (UnprocessedKeys retried with backoff) and stored as item entries. `X-Cache-Items` gives each item's outcome (HIT, STALE, MISS or BYPASS) in request order; the body does not, so equal batches answer the same bytes.",
        params: TableParams,
        body: BatchGetBody,
        response: { 200: BatchGetAnswer, ...readErrors },
      },
    },
    async (request, reply) => {
      const { table } = request.params
      app.assertTableVisible(request.principal, table)
      const body = request.body
      // Everything is checked before any entry is read: the fields, each key against the schema, duplicates.
      const paths = body.fields === undefined ? undefined : parseFields(body.fields)
      const description = await app.cache.describe(table)
      if (paths) projectionFor(description, paths)
      const keys = batchKeyParams(description, body.keys)
      const fields = paths ? fieldsParam(paths) : undefined
      const noCache = wantsRefresh(request)
      const batch = new ItemBatch(keys.length)
      const results = await Promise.all(
        keys.map((key, i) => {
          const params: Record<string, string> = { pk: key.pk }
          if (key.sk !== undefined) params.sk = key.sk
          if (fields !== undefined) params.fields = fields
          params.view = body.view
          return runInItemBatch(batch, i, () => app.cache.read({ table, kind: 'item', params }, { noCache, plain: true }))
        }),
      )
      const parts = await Promise.all(
        results.map(async (r) => {
          if (r.status === 404) return 'null'
          return (r.body ?? (await inflate(r.gzip!))).toString()
        }),
      )
      const out = Buffer.from(`{"items":[${parts.join(',')}]}`)
      reply.header('x-cache-items', results.map((r) => X_CACHE[r.outcome]).join(','))
      reply.header('etag', etagOf(out))
      reply.header('cache-control', 'private, no-cache')
      // JSON put together from cached bytes: the schema documents it, but no object is serialized to check against it.
      const bytes: FastifyReply = reply
      return bytes.type('application/json; charset=utf-8').send(out)
    },
  )
}
