import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { type CachedResource, etagOf } from '../../../shared/cache/index.ts'
import { inflate } from '../../../shared/cache/inflate.ts'
import { cursorBinding, HIDDEN_PARAM } from '../../../shared/dynamo/resource-loader.ts'
import { fieldsParam, parseFields } from '../../../shared/dynamo/projection.ts'
import { parseFilter } from '../../../shared/dynamo/query-builder.ts'
import { errors } from '../../../shared/errors.ts'
import { assertFilterSize } from '../../../shared/quotas/filter-size.ts'
import { acceptsGzip, sendCached, singleEtag, wantsRefresh } from '../../cached-reply.ts'
import { TableParams } from '../schemas.ts'
import batchGetRoute from './batch-get.ts'
import { ItemQuery, ItemsQuery, NotModified, PageOrCount, QueryQuery, readErrors, TableDetails } from './schemas.ts'

type Params = Record<string, string | number | undefined>

/** Keeps the parameters that identify a read, as strings, dropping what is absent. */
function canonical(params: Params): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') out[k] = String(v)
  return out
}

/** The canonical `fields` list (validated before the cache or DynamoDB see it), or undefined. */
const fieldsOf = (q: Params) => (typeof q.fields === 'string' ? fieldsParam(parseFields(q.fields)) : undefined)

/**
 * What identifies a page read: with select=count, limit and view change nothing (one entry for both
 * views) and fields cannot apply, so it is refused rather than ignored.
 */
function pageParams(q: Params, params: Params): Record<string, string> {
  if (q.select !== 'count') return canonical({ ...params, fields: fieldsOf(q), view: q.view })
  if (q.fields !== undefined) throw errors.DC_ERR_VALIDATION('fields cannot be used with select=count')
  return canonical({ ...params, limit: undefined, select: 'count' })
}

const cachedHeaders = {
  description: 'Cached: ETag, Cache-Control, Age, Cache-Status, X-Cache and Vary headers; gzip as stored when accepted',
}

export default async function tableRoutes(app: FastifyInstance) {
  /** Looks the read up in the cache (or DynamoDB) and answers it; validation has already happened. */
  async function answer(request: FastifyRequest, reply: FastifyReply, resource: CachedResource) {
    if (resource.params.cursor) app.cursors.decode(resource.params.cursor, cursorBinding(resource))
    const noCache = wantsRefresh(request)
    const result = await app.cache.read(resource, {
      ifNoneMatch: singleEtag(request.headers['if-none-match']),
      noCache,
      plain: !acceptsGzip(request.headers['accept-encoding']),
    })
    return sendCached(request, reply, result, app.config, noCache, resource.kind)
  }

  app.get('/tables', {
    config: { scope: 'read' },
    schema: {
      tags: ['reads'],
      summary: 'Tables the API may expose',
      description: `Only the tables the key may see (TABLES_ALLOW / TABLES_DENY and the key's own tables). ${cachedHeaders.description}`,
      response: { 200: Type.Object({ tables: Type.Array(Type.String()) }), 304: NotModified, ...readErrors },
    },
  }, async (request, reply) => {
    // One cached list for every key, narrowed here on every request rather than one entry per glob set:
    // the allow list and the key's tables then apply whoever filled the entry (another deployment sharing
    // the Redis included), and a list of names costs microseconds to filter. The ETag is the narrowed body's.
    const noCache = wantsRefresh(request)
    const result = await app.cache.read({ table: null, kind: 'tables', params: {} }, { noCache })
    const { tables } = JSON.parse((result.body ?? (await inflate(result.gzip!))).toString()) as { tables: string[] }
    const body = Buffer.from(JSON.stringify({ tables: tables.filter((name) => app.tableVisible(request.principal, name)) }))
    const { gzip: _stored, ...rest } = result
    return sendCached(request, reply, { ...rest, body, etag: etagOf(body) }, app.config, noCache, 'tables')
  })

  app.get('/tables/:table', {
    config: { scope: 'read' },
    schema: {
      tags: ['reads'],
      summary: 'Table details: key schema, attributes, indexes, billing, status, stream, size and count',
      ...cachedHeaders,
      params: TableParams,
      response: { 200: TableDetails, 304: NotModified, ...readErrors },
    },
  }, async (request, reply) => {
    const { table } = request.params as { table: string }
    // A table the caller may not see gets the cached 404 a missing table gets, from an entry of its own
    // that only ever holds that 404: the table's real entry, whoever filled it, is never looked at.
    const hidden = !app.tableVisible(request.principal, table)
    return answer(request, reply, { table, kind: 'details', params: hidden ? { [HIDDEN_PARAM]: '1' } : {} })
  })

  app.get('/tables/:table/items', {
    config: { scope: 'read' },
    schema: {
      tags: ['reads'],
      summary: 'One Scan page of the table or of an index',
      ...cachedHeaders,
      params: TableParams,
      querystring: ItemsQuery,
      response: { 200: PageOrCount, 304: NotModified, ...readErrors },
    },
  }, async (request, reply) => {
    const { table } = request.params as { table: string }
    app.assertTableVisible(request.principal, table)
    const q = request.query as Params
    return answer(request, reply, { table, kind: 'items', params: pageParams(q, { limit: q.limit, cursor: q.cursor, index: q.index }) })
  })

  app.get('/tables/:table/items/:pk', {
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
  }, async (request, reply) => {
    const { table, pk } = request.params as { table: string; pk: string }
    app.assertTableVisible(request.principal, table)
    const q = request.query as Params
    return answer(request, reply, { table, kind: 'item', params: canonical({ pk, sk: q.sk, fields: fieldsOf(q), view: q.view }) })
  })

  batchGetRoute(app)

  app.get('/tables/:table/query', {
    config: { scope: 'read' },
    schema: {
      tags: ['reads'],
      summary: 'Query the table or an index: partition key, optional sort-key condition and filter',
      ...cachedHeaders,
      params: TableParams,
      querystring: QueryQuery,
      response: { 200: PageOrCount, 304: NotModified, ...readErrors },
    },
  }, async (request, reply) => {
    const { table } = request.params as { table: string }
    app.assertTableVisible(request.principal, table)
    const q = request.query as Params
    // Malformed filters are refused before the cache or DynamoDB see them.
    assertFilterSize(q.filter, app.config.FILTER_MAX_BYTES)
    if (typeof q.filter === 'string') parseFilter(q.filter)
    const params = pageParams(q, {
      pk: q.pk, sk: q.sk, skOp: q.skOp, sk2: q.sk2, index: q.index, filter: q.filter, order: q.order,
      limit: q.limit, cursor: q.cursor,
    })
    return answer(request, reply, { table, kind: 'query', params })
  })
}
