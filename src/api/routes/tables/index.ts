import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { type CachedResource, etagOf } from '../../../shared/cache/index.ts'
import { inflate } from '../../../shared/cache/inflate.ts'
import { parseFilter } from '../../../shared/dynamo/filter.ts'
import { fieldsParam, parseFields } from '../../../shared/dynamo/projection.ts'
import { cursorBinding, HIDDEN_PARAM } from '../../../shared/dynamo/resource-loader.ts'
import { errors } from '../../../shared/errors.ts'
import { assertFilterSize } from '../../../shared/quotas/filter-size.ts'
import { acceptsGzip, sendCached, singleEtag, wantsRefresh } from '../../cached-reply.ts'
import { TableParams } from '../schemas.ts'
import batchGetRoute from './batch-get.ts'
import { consistentItemRead, consistentPageRead } from './consistent-reads.ts'
import invalidationRoutes from './invalidations.ts'
import itemWriteRoutes from './item-writes.ts'
import { ItemQuery, ItemsQuery, NotModified, PageOrCount, QueryQuery, readErrors, TableDetails } from './schemas.ts'

type Params = Record<string, string | number | undefined>

/** Keeps the parameters that identify a read, as strings, dropping what is absent. */
function canonical(params: Params): Record<string, string> {
  const out: Record<string, string> = {}
  // for...in rather than Object.entries: no pair arrays per request on the hit path.
  for (const k in params) {
    const v = params[k]
    if (v !== undefined && v !== '') out[k] = String(v)
  }
  return out
}

/** The canonical `fields` list (validated before the cache or DynamoDB see it), or undefined. */
const fieldsOf = (q: Params) => (typeof q.fields === 'string' ? fieldsParam(parseFields(q.fields)) : undefined)

/**
 * What identifies a page read: with select=count, limit and view change nothing (one entry for both
 * views) and fields cannot apply, so it is refused rather than ignored.
 */
function pageParams(q: Params, params: Params): Record<string, string> {
  if (q.select !== 'count') {
    // canonical({ ...params, fields, view }) without the spread copy (the keys keep that order).
    const out = canonical(params)
    const fields = fieldsOf(q)
    if (fields !== undefined && fields !== '') out.fields = fields
    if (q.view !== undefined && q.view !== '') out.view = String(q.view)
    return out
  }
  if (q.fields !== undefined) throw new errors.DC_ERR_VALIDATION('fields cannot be used with select=count')
  return canonical({ ...params, limit: undefined, select: 'count' })
}

const cachedHeaders = {
  description: 'Cached: ETag, Cache-Control, Age, Cache-Status, X-Cache and Vary headers; gzip as stored when accepted',
}

export default async function tableRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  /** Looks the read up in the cache (or DynamoDB) and answers it; validation has already happened. */
  async function answer(request: FastifyRequest, reply: FastifyReply, resource: CachedResource) {
    if (resource.params.cursor) app.cursors.decode(resource.params.cursor, cursorBinding(resource))
    const noCache = wantsRefresh(request)
    const result = await app.cache.read(resource, {
      ifNoneMatch: singleEtag(request.headers['if-none-match']),
      noCache,
      plain: !acceptsGzip(request.headers['accept-encoding']),
    })
    // A fresh hit: the same request again may be answered by the hit lane, in front of Fastify.
    if (result.outcome === 'hit' && result.status === 200 && !noCache) app.hitLane?.learn(request, reply, resource)
    return sendCached(request, reply, result, app.config, noCache, resource.kind)
  }

  app.get(
    '/tables',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['reads'],
        summary: 'Tables the API may expose',
        description: `Only the tables the key may see (TABLES_ALLOW / TABLES_DENY and the key's own tables). ${cachedHeaders.description}`,
        response: { 200: Type.Object({ tables: Type.Array(Type.String()) }), 304: NotModified, ...readErrors },
      },
    },
    async (request, reply) => {
      // One cached list for every key, narrowed here on every request rather than one entry per glob set:
      // the allow list and the key's tables then apply whoever filled the entry (another deployment sharing
      // the Redis included), and a list of names costs microseconds to filter. The ETag is the narrowed body's.
      const noCache = wantsRefresh(request)
      const result = await app.cache.read({ table: null, kind: 'tables', params: {} }, { noCache })
      const { tables }: { tables: string[] } = JSON.parse((result.body ?? (await inflate(result.gzip!))).toString())
      const body = Buffer.from(JSON.stringify({ tables: tables.filter((name) => app.tableVisible(request.principal, name)) }))
      const { gzip: _stored, ...rest } = result
      return sendCached(request, reply, { ...rest, body, etag: etagOf(body) }, app.config, noCache, 'tables')
    },
  )

  app.get(
    '/tables/:table',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['reads'],
        summary: 'Table details: key schema, attributes, indexes, billing, status, stream, size and count',
        ...cachedHeaders,
        params: TableParams,
        response: { 200: TableDetails, 304: NotModified, ...readErrors },
      },
    },
    async (request, reply) => {
      const { table } = request.params
      // A table the caller may not see gets the cached 404 a missing table gets, from an entry of its own
      // that only ever holds that 404: the table's real entry, whoever filled it, is never looked at.
      const hidden = !app.tableVisible(request.principal, table)
      return answer(request, reply, { table, kind: 'details', params: hidden ? { [HIDDEN_PARAM]: '1' } : {} })
    },
  )

  app.get(
    '/tables/:table/items',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['reads'],
        summary: 'One Scan page of the table or of an index',
        ...cachedHeaders,
        params: TableParams,
        querystring: ItemsQuery,
        response: { 200: PageOrCount, 304: NotModified, ...readErrors },
      },
    },
    async (request, reply) => {
      const { table } = request.params
      app.assertTableVisible(request.principal, table)
      const { consistent, ...q } = request.query
      const resource = { table, kind: 'items' as const, params: pageParams(q, { limit: q.limit, cursor: q.cursor, index: q.index }) }
      // consistent=true: a ConsistentRead, never from the cache; its answer replaces the entry.
      if (consistent === true) return consistentPageRead(app, request, reply, resource)
      return answer(request, reply, resource)
    },
  )

  app.get(
    '/tables/:table/items/:pk',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['reads'],
        summary: 'One item by key (S as is, N as a number, B as base64url)',
        ...cachedHeaders,
        params: Type.Object({ table: TableParams.properties.table, pk: Type.String({ minLength: 1, maxLength: 2048 }) }),
        querystring: ItemQuery,
        response: {
          200: Type.Object({}, { additionalProperties: true, description: 'The item: document or typed view' }),
          304: NotModified,
          ...readErrors,
        },
      },
    },
    async (request, reply) => {
      const { table, pk } = request.params
      app.assertTableVisible(request.principal, table)
      const q = request.query
      const resource = { table, kind: 'item' as const, params: canonical({ pk, sk: q.sk, fields: fieldsOf({ fields: q.fields }), view: q.view }) }
      // consistent=true: a ConsistentRead, never from the cache; its answer replaces the entry.
      if (q.consistent === true) return consistentItemRead(app, request, reply, resource)
      return answer(request, reply, resource)
    },
  )

  batchGetRoute(app)
  // PUT, PATCH, DELETE of an item, in a context of their own: their JSON bodies are parsed losslessly.
  await app.register(itemWriteRoutes)
  await app.register(invalidationRoutes)

  app.get(
    '/tables/:table/query',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['reads'],
        summary: 'Query the table or an index: partition key, optional sort-key condition and filter',
        ...cachedHeaders,
        params: TableParams,
        querystring: QueryQuery,
        response: { 200: PageOrCount, 304: NotModified, ...readErrors },
      },
    },
    async (request, reply) => {
      const { table } = request.params
      app.assertTableVisible(request.principal, table)
      const { consistent, ...q } = request.query
      // Malformed filters are refused before the cache or DynamoDB see them.
      assertFilterSize(q.filter, app.config.FILTER_MAX_BYTES)
      if (typeof q.filter === 'string') parseFilter(q.filter)
      const params = pageParams(q, {
        pk: q.pk,
        sk: q.sk,
        skOp: q.skOp,
        sk2: q.sk2,
        index: q.index,
        filter: q.filter,
        order: q.order,
        limit: q.limit,
        cursor: q.cursor,
      })
      if (consistent === true) return consistentPageRead(app, request, reply, { table, kind: 'query', params })
      return answer(request, reply, { table, kind: 'query', params })
    },
  )
}
