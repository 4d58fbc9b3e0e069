import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { keyNames } from '../../../shared/batches/operations.ts'
import { etagOf } from '../../../shared/cache/index.ts'
import { asStored } from '../../../shared/dynamo/document-values.ts'
import type { AttributeMap } from '../../../shared/dynamo/item-json.ts'
import { itemForPut } from '../../../shared/dynamo/item-put.ts'
import { buildUpdate } from '../../../shared/dynamo/item-update.ts'
import { deleteItem, putItem, updateItem, type WriteConditions } from '../../../shared/dynamo/item-writes.ts'
import { keyFromParams } from '../../../shared/dynamo/key-values.ts'
import { itemValue } from '../../../shared/dynamo/resource-loader.ts'
import { parseCondition } from '../../../shared/dynamo/write-conditions.ts'
import { errors } from '../../../shared/errors.ts'
import { assertFilterSize } from '../../../shared/quotas/filter-size.ts'
import { useLosslessJson } from '../../lossless-body.ts'
import { IfMatchHeaders, Item, ItemBody, ItemDeleteQuery, ItemParams, ItemWriteQuery, PatchBody, writeErrors } from './item-write-schemas.ts'
import { createSerializer, itemId } from './write-serializer.ts'
import { writeOrForget, writeThrough } from './write-through.ts'

/** The condition parts of a write: `condition` (query or PATCH body) and If-Match; checked before any call. */
function conditionsOf(maxFilterBytes: number, ifMatch: string | undefined, condition: unknown): WriteConditions {
  if (condition === undefined) return ifMatch === undefined ? {} : { ifMatch }
  if (typeof condition === 'string') assertFilterSize(condition, maxFilterBytes)
  return { condition: parseCondition(condition), ...(ifMatch !== undefined ? { ifMatch } : {}) }
}

function answerItem(reply: FastifyReply, item: AttributeMap, view: string) {
  const { body } = itemValue(item, view)
  reply.header('etag', etagOf(body)).header('cache-control', 'private, no-cache')
  return reply.code(200).type('application/json; charset=utf-8').send(body)
}

const writeDescription =
  'Goes to DynamoDB at once (scope write), then the cache follows: the item, its partition, the index partitions of its old and new ' +
  "image and the table's scan pages are invalidated, and the item's entry (document and typed view) is replaced with the new image " +
  '(write-through), in every API process. `condition` or If-Match make the write conditional (412 DC_ERR_CONDITION_FAILED, nothing written).'

/** PUT, PATCH and DELETE of one item; JSON bodies here are parsed losslessly (numbers keep their text). */
export default async function itemWriteRoutes(fastify: FastifyInstance) {
  useLosslessJson(fastify)
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const oneAtATime = createSerializer()

  app.put(
    '/tables/:table/items/:pk',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['writes'],
        summary: 'Write a whole item (PutItem); answers the item as written',
        description: writeDescription,
        params: ItemParams,
        querystring: ItemWriteQuery,
        headers: IfMatchHeaders,
        body: ItemBody,
        response: { 200: Item, ...writeErrors },
      },
    },
    async (request, reply) => {
      const { table, pk } = request.params
      const q = request.query
      app.assertTableVisible(request.principal, table)
      const description = await app.cache.describe(table)
      const key = keyFromParams(description, pk, q.sk)
      const conditions = conditionsOf(app.config.FILTER_MAX_BYTES, request.headers['if-match'], q.condition)
      const item = itemForPut(description, key, request.body, q.format)
      const written = await oneAtATime(itemId(description, keyNames(description), key), async () => {
        const result = await writeOrForget(app, request, table, key, () => putItem(app.gateway, description, key, item, conditions))
        const images = { ...result, newImage: asStored(item) }
        await writeThrough(app, request, table, pk, q.sk, key, images)
        return images
      })
      request.log.info({ msg: 'item.put', table })
      return answerItem(reply, written.newImage, q.view)
    },
  )

  app.patch(
    '/tables/:table/items/:pk',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['writes'],
        summary: 'Change parts of an item (UpdateItem: set, remove, add, delete); answers the item as it is now',
        description:
          `${writeDescription} Paths are document paths (a.b, tags[0]); no two may overlap; key attributes of the table never change; an index ` +
          'key takes a value of its type. A key with no item creates one (as UpdateItem does) unless a condition says otherwise.',
        params: ItemParams,
        querystring: ItemWriteQuery,
        headers: IfMatchHeaders,
        body: PatchBody,
        response: { 200: Item, ...writeErrors },
      },
    },
    async (request, reply) => {
      const { table, pk } = request.params
      const q = request.query
      const body = request.body
      app.assertTableVisible(request.principal, table)
      const description = await app.cache.describe(table)
      const key = keyFromParams(description, pk, q.sk)
      if (q.condition !== undefined && body.condition !== undefined) {
        throw new errors.DC_ERR_INVALID_CONDITION('give condition once: in the query or in the body')
      }
      const conditions = conditionsOf(app.config.FILTER_MAX_BYTES, request.headers['if-match'], q.condition ?? body.condition)
      const update = buildUpdate(description, body, q.format)
      const result = await oneAtATime(itemId(description, keyNames(description), key), async () => {
        const images = await writeOrForget(app, request, table, key, () => updateItem(app.gateway, description, key, update, conditions))
        await writeThrough(app, request, table, pk, q.sk, key, images)
        return images
      })
      request.log.info({ msg: 'item.patch', table })
      return answerItem(reply, result.newImage!, q.view)
    },
  )

  app.delete(
    '/tables/:table/items/:pk',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['writes'],
        summary: 'Delete an item (DeleteItem); 204 whether or not it existed',
        description: `${writeDescription} Answers 204 with no body, also when no item had the key (DynamoDB's own semantics); use a condition such as [{"attr":"<pk>","op":"exists"}] to require it.`,
        params: ItemParams,
        querystring: ItemDeleteQuery,
        headers: IfMatchHeaders,
        response: { 204: { type: 'null', description: 'Deleted (or there was nothing to delete)' }, ...writeErrors },
      },
    },
    async (request, reply) => {
      const { table, pk } = request.params
      const q = request.query
      app.assertTableVisible(request.principal, table)
      const description = await app.cache.describe(table)
      const key = keyFromParams(description, pk, q.sk)
      const conditions = conditionsOf(app.config.FILTER_MAX_BYTES, request.headers['if-match'], q.condition)
      const result = await oneAtATime(itemId(description, keyNames(description), key), async () => {
        const images = await writeOrForget(app, request, table, key, () => deleteItem(app.gateway, description, key, conditions))
        await writeThrough(app, request, table, pk, q.sk, key, images)
        return images
      })
      request.log.info({ msg: 'item.delete', table, existed: result.oldImage !== null })
      return reply.code(204).header('cache-control', 'private, no-cache').send(null)
    },
  )
}
