import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { DEFAULT_TENANT, type Principal } from '../../../shared/access.ts'
import { errors } from '../../../shared/errors.ts'
import { createExport, type ExportRecord, exportPaths, validateExport } from '../../../shared/exports/index.ts'
import { assertFilterSize, summarizeFilter } from '../../../shared/quotas/filter-size.ts'
import downloadRoute from './download.ts'
import eventsRoute from './events.ts'
import scheduleRoutes from './schedules.ts'
import { CreatedExport, CreateExportBody, ErrorResponse, ExportList, ExportParams, ExportView, exportErrors, ListQuery } from './schemas.ts'
import { createExportApi } from './services.ts'

const listBinding = (status: string | undefined) => `exports\u0001${status ?? ''}`

/** Bulk exports (scope export): create, follow, list, cancel and download. */
export default async function exportRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const api = createExportApi(app)
  const { store, storage, flows } = api
  app.addHook('preClose', async () => {
    for (const end of api.streams) end()
  })
  app.addHook('onClose', async () => {
    await api.feed.close()
    await flows.close()
    storage.close()
  })

  /**
   * An export, or 404 when there is none, when it is another tenant's, or when its table is hidden from
   * the caller (TABLES_ALLOW/TABLES_DENY or the key's tables): the same answer, so nothing tells them apart.
   */
  async function load(principal: Principal | undefined, id: string): Promise<ExportRecord> {
    const record = await store.get(id)
    if (!record || !api.visible(principal, record)) throw new errors.DC_ERR_EXPORT_NOT_FOUND(id)
    return record
  }

  app.post(
    '/exports',
    {
      config: { scope: 'export' },
      schema: {
        tags: ['exports'],
        summary: 'Export a table, an index, a query or a filtered subset as CSV or JSONL, optionally only chosen columns',
        description:
          'Validates everything first (table allowed and existing, index, format, filter, email) and queues nothing on a 4xx. ' +
          'The export runs as EXPORT_SEGMENTS parallel scan segments on the workers (a query export as one segment); follow it at links.events. ' +
          '`query` takes the key condition of GET /tables/:table/query (pk, sk, skOp, sk2, order) with the same checks; `fields` chooses and orders the columns. ' +
          'A filter over FILTER_MAX_BYTES is 400 DC_ERR_FILTER_TOO_LARGE; a tenant with TENANT_EXPORTS_MAX exports queued or processing gets 429 DC_ERR_EXPORT_QUOTA.',
        body: CreateExportBody,
        // 429 DC_ERR_EXPORT_QUOTA: TENANT_EXPORTS_MAX exports of the tenant are queued or processing.
        response: { 202: CreatedExport, 400: ErrorResponse, 429: ErrorResponse, ...exportErrors },
      },
    },
    async (request, reply) => {
      const body = request.body
      assertFilterSize(body.filter, app.config.FILTER_MAX_BYTES)
      app.assertTableVisible(request.principal, body.table)
      const table = await app.cache.describe(body.table)
      const validated = validateExport(table, body, app.config.FILTER_MAX_BYTES)
      const caller = { id: request.principal?.id ?? '', tenant: request.principal?.tenant ?? DEFAULT_TENANT }
      const record = await createExport(api.creating, caller, validated, table, request.apiKeyId ? { createdBy: request.apiKeyId } : {})
      request.log.info({
        msg: 'export.queued',
        exportId: record.id,
        table: record.table,
        format: record.format,
        segments: record.segments,
        query: record.query !== undefined,
      })
      const links = exportPaths(record.id)
      return reply.code(202).header('location', links.self).send({ id: record.id, status: 'queued', links })
    },
  )

  app.get(
    '/exports',
    {
      config: { scope: 'export' },
      schema: {
        tags: ['exports'],
        summary: 'Export history, newest first',
        querystring: ListQuery,
        response: { 200: ExportList, 400: ErrorResponse, ...exportErrors },
      },
    },
    async (request) => {
      const q = request.query
      const before = q.cursor ? app.cursors.decode(q.cursor, listBinding(q.status)).m?.S : undefined
      if (q.cursor && !before) throw new errors.DC_ERR_INVALID_CURSOR()
      // Only the caller's tenant's exports of tables it may see, as if no other existed (full pages all the same).
      const where = (record: ExportRecord) => api.visible(request.principal, record)
      const page = await store.list({ limit: q.limit, where, ...(q.status ? { status: q.status } : {}), ...(before ? { before } : {}) })
      return {
        exports: page.records.map((record) => ({ ...api.view(record), filter: summarizeFilter(record.filter ?? null) })),
        cursor: page.next ? app.cursors.encode({ m: { S: page.next } }, listBinding(q.status)) : null,
      }
    },
  )

  app.get(
    '/exports/:id',
    {
      config: { scope: 'export' },
      schema: {
        tags: ['exports'],
        summary: 'An export: status, progress, timings, error and a signed download link once completed',
        params: ExportParams,
        response: { 200: ExportView, ...exportErrors },
      },
    },
    async (request) => api.view(await load(request.principal, request.params.id)),
  )

  app.delete(
    '/exports/:id',
    {
      config: { scope: 'export' },
      schema: {
        tags: ['exports'],
        summary: 'Cancel an export: its segments stop within a page and its partial output is removed',
        params: ExportParams,
        response: { 200: ExportView, 409: ErrorResponse, ...exportErrors },
      },
    },
    async (request) => {
      const { id } = request.params
      await load(request.principal, id)
      const { before, changed } = await store.finish(id, 'cancelled')
      if (before === 'missing') throw new errors.DC_ERR_EXPORT_NOT_FOUND(id)
      if (!changed) throw new errors.DC_ERR_EXPORT_FINISHED(id, before)
      // Now for what is already written; the assembler removes it again once every segment has stopped.
      await storage.remove(id).catch((err) => request.log.warn({ msg: 'export.cancel.cleanup-failed', exportId: id, err: (err as Error).message }))
      request.log.info({ msg: 'export.cancelled', exportId: id, was: before })
      return api.view(await load(request.principal, id))
    },
  )

  await app.register(eventsRoute, { api })
  await app.register(downloadRoute, { api })
  await app.register(scheduleRoutes)
}
