import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { createTablePolicy } from '../../../shared/access.ts'
import { keyNames, keyString } from '../../../shared/batches/operations.ts'
import { type CachedResource, etagOf, type LoadedValue, ttlFor } from '../../../shared/cache/index.ts'
import { asStored } from '../../../shared/dynamo/document-values.ts'
import type { AttributeMap } from '../../../shared/dynamo/item-json.ts'
import { itemForPut } from '../../../shared/dynamo/item-put.ts'
import { buildUpdate } from '../../../shared/dynamo/item-update.ts'
import { deleteItem, putItem, readItem, updateItem, type WriteConditions, type WriteResult } from '../../../shared/dynamo/item-writes.ts'
import { keyFromParams } from '../../../shared/dynamo/key-values.ts'
import { parseFields, projectionFor } from '../../../shared/dynamo/projection.ts'
import { createResourceLoader, cursorBinding, itemNotFoundValue, itemValue } from '../../../shared/dynamo/resource-loader.ts'
import { parseCondition } from '../../../shared/dynamo/write-conditions.ts'
import { codeOf } from '../../../shared/error-classes.ts'
import { errors } from '../../../shared/errors.ts'
import { assertFilterSize } from '../../../shared/quotas/filter-size.ts'
import { sendCached } from '../../cached-reply.ts'
import { useLosslessJson } from '../../lossless-body.ts'
import { IfMatchHeaders, Item, ItemBody, ItemDeleteQuery, ItemParams, ItemWriteQuery, PatchBody, writeErrors } from './item-write-schemas.ts'

const VIEWS = ['document', 'typed'] as const

/** The item entry GET /tables/:table/items/:pk reads for this key and view (no fields). */
function itemResource(table: string, pk: string, sk: string | undefined, view: string): CachedResource {
  return { table, kind: 'item', params: { pk, ...(sk !== undefined ? { sk } : {}), view } }
}

/**
 * After a write: the cache learns of the change (the item, its partition, the index partitions of both
 * images, scan pages), then the item's entries under this key are replaced with the new image at once.
 * A failure here is logged, not answered: the write itself has happened.
 */
async function coherent(
  app: FastifyInstance,
  request: FastifyRequest,
  table: string,
  pk: string,
  sk: string | undefined,
  key: AttributeMap,
  result: WriteResult,
) {
  try {
    const after = await app.cache.applyChanges(table, [
      { key, ...(result.oldImage !== undefined ? { oldImage: result.oldImage } : {}), newImage: result.newImage },
    ])
    // Without the bump's values (the whole table was invalidated instead) the next read loads the item.
    if (!after) return
    await Promise.all(
      VIEWS.map((view) =>
        app.cache.storeValue(
          itemResource(table, pk, sk, view),
          result.newImage ? itemValue(result.newImage, view) : itemNotFoundValue(table, app.config.NEGATIVE_TTL),
          after,
        ),
      ),
    )
  } catch (err) {
    request.log.error({ msg: 'cache.write-through.failed', table, err: (err as Error).message })
  }
}

/**
 * Runs a write; when its outcome is unknown (503: no clear answer) it may have changed the item, so the
 * cache forgets the item as for a write with unknown images (item, partition, every index, scan pages).
 */
async function writeOrForget(app: FastifyInstance, request: FastifyRequest, table: string, key: AttributeMap, write: () => Promise<WriteResult>) {
  try {
    return await write()
  } catch (err) {
    if (codeOf(err) === 'DC_ERR_DYNAMO_UNAVAILABLE') {
      await app.cache.applyChanges(table, [{ key }]).catch((e: Error) => request.log.error({ msg: 'cache.write-through.failed', table, err: e.message }))
    }
    throw err
  }
}

/**
 * Runs the writes of one item in this process one after another, each with its cache update: otherwise a
 * write that DynamoDB took first could store its image through after a later one stored its own.
 */
function createSerializer() {
  const inFlight = new Map<string, Promise<unknown>>()
  return async function oneAtATime<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const previous = inFlight.get(id)
    const run = (previous ? previous.catch(() => {}) : Promise.resolve()).then(fn)
    const settled = run.catch(() => {})
    inFlight.set(id, settled)
    try {
      return await run
    } finally {
      if (inFlight.get(id) === settled) inFlight.delete(id)
    }
  }
}

/** The identity of an item for one-at-a-time writes: table and key, numbers by value. */
function itemId(description: { name: string }, names: string[], key: AttributeMap) {
  return `${description.name}\u0000${keyString(names, key)}`
}

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

/**
 * GET /tables/:table/items/:pk?consistent=true: a ConsistentRead, never answered from the cache; the
 * answer replaces the entry the same GET without `consistent` reads.
 */
export async function consistentItemRead(app: FastifyInstance, request: FastifyRequest, reply: FastifyReply, resource: CachedResource & { table: string }) {
  const { pk, sk, fields } = resource.params
  const description = await app.cache.describe(resource.table)
  const key = keyFromParams(description, pk!, sk)
  const projection = fields === undefined ? undefined : projectionFor(description, parseFields(fields))
  // What the cache answers now (near cache, Redis, or a load): if the consistent read differs, the cache
  // was behind a write made elsewhere, and every process learns of it as of a write.
  const cached = await app.cache.read(resource, { plain: true }).catch(() => undefined)
  // Read before the load: a write that lands between the read and the store leaves the entry unseen.
  const before = await app.cache.generationsOf(resource).catch(() => undefined)
  const found = await readItem(app.gateway, resource.table, key, projection)
  const value: LoadedValue = found ? itemValue(found, resource.params.view) : itemNotFoundValue(resource.table, app.config.NEGATIVE_TTL)
  try {
    if (!cached || cached.etag !== etagOf(value.body)) {
      // A projected item is not the whole image: its index keys are unknown then.
      // Stored under what this bump left: a write by another process whose bump comes later hides it.
      // (One whose DynamoDB write and bump both fall between this read and this bump is hidden by this
      // entry until its stream record is followed or the entry expires; docs/coherence.md.)
      const after = await app.cache.applyChanges(resource.table, [{ key, ...(fields === undefined ? { newImage: found ?? null } : {}) }])
      if (after) await app.cache.storeValue(resource, value, after)
    } else if (before) {
      await app.cache.storeValue(resource, value, before)
    }
  } catch (err) {
    request.log.warn({ msg: 'cache.store.failed', table: resource.table, err: (err as Error).message })
  }
  const result = {
    outcome: 'miss' as const,
    status: value.status,
    etag: etagOf(value.body),
    createdAt: Date.now(),
    ttl: value.ttl ?? ttlFor('item', app.config),
    body: value.body,
    collapsed: false,
  }
  return sendCached(request, reply, result, app.config, true, 'item')
}

const loaders = new WeakMap<FastifyInstance, ReturnType<typeof createResourceLoader>>()
/** A resource loader of this app's own, for consistent reads (the cache service's loads are never consistent). */
function loaderOf(app: FastifyInstance) {
  let loader = loaders.get(app)
  if (!loader) {
    const allowed = createTablePolicy(app.config.TABLES_ALLOW, app.config.TABLES_DENY)
    loader = createResourceLoader({
      gateway: app.gateway,
      cursors: app.cursors,
      tableAllowed: allowed,
      describe: (table) => app.cache.describe(table),
      negativeTtl: app.config.NEGATIVE_TTL,
    })
    loaders.set(app, loader)
  }
  return loader
}

/**
 * GET /tables/:table/items and /query with consistent=true: the page read with ConsistentRead, never
 * answered from the cache; the answer is stored as the entry the same read without `consistent` uses.
 * A global secondary index cannot be read consistently (DynamoDB refuses): 400.
 */
export async function consistentPageRead(app: FastifyInstance, request: FastifyRequest, reply: FastifyReply, resource: CachedResource & { table: string }) {
  const index = resource.params.index
  if (index !== undefined) {
    const description = await app.cache.describe(resource.table)
    if (description.indexes.some((i) => i.name === index && i.kind === 'GSI')) {
      throw new errors.DC_ERR_VALIDATION(`consistent=true cannot read the global secondary index '${index}': DynamoDB reads those eventually consistent only`)
    }
  }
  if (resource.params.cursor) app.cursors.decode(resource.params.cursor, cursorBinding(resource))
  const before = await app.cache.generationsOf(resource).catch(() => undefined)
  const value = await loaderOf(app)(resource, { consistent: true })
  try {
    if (before) await app.cache.storeValue(resource, value, before)
    // This process's near copy of the page would answer the old one until NEAR_CACHE_TTL_MS; other
    // processes' copies live at most that long (the near cache's documented lag).
    app.cache.forget(resource.table)
  } catch (err) {
    request.log.warn({ msg: 'cache.store.failed', table: resource.table, err: (err as Error).message })
  }
  const result = {
    outcome: 'miss' as const,
    status: value.status,
    etag: etagOf(value.body),
    createdAt: Date.now(),
    ttl: value.ttl ?? ttlFor(resource.kind, app.config),
    body: value.body,
    collapsed: false,
  }
  return sendCached(request, reply, result, app.config, true, resource.kind)
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
        await coherent(app, request, table, pk, q.sk, key, images)
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
        await coherent(app, request, table, pk, q.sk, key, images)
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
        await coherent(app, request, table, pk, q.sk, key, images)
        return images
      })
      request.log.info({ msg: 'item.delete', table, existed: result.oldImage !== null })
      return reply.code(204).header('cache-control', 'private, no-cache').send(null)
    },
  )
}
