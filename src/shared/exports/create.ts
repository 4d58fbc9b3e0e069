import { randomUUID } from 'node:crypto'
import type { FilterInput } from '../dynamo/filter.ts'
import { buildQuery, buildScanFilter } from '../dynamo/query-builder.ts'
import type { TableDescription } from '../dynamo/table-description.ts'
import { errors } from '../errors.ts'
import { assertFilterSize } from '../quotas/filter-size.ts'
import type { Quotas } from '../quotas/index.ts'
import { exportProjection, parseExportFields } from './fields.ts'
import type { ExportFlows } from './flow.ts'
import type { ExportFormat, ExportQuery, ExportRecord, ExportRequest } from './model.ts'
import type { ExportStore } from './store.ts'

/** An export as POST /exports (or a schedule) asks for it, before validation. */
export interface ExportDefinition {
  table: string
  format: ExportFormat
  index?: string
  filter?: unknown
  gzip: boolean
  notify?: string
  query?: ExportQuery
  fields?: unknown
}

/**
 * Checks a definition against its table and returns what the export record keeps. Throws the 400s:
 * DC_ERR_FILTER_TOO_LARGE, DC_ERR_INDEX_NOT_FOUND, DC_ERR_INVALID_FILTER, DC_ERR_INVALID_KEY,
 * DC_ERR_INVALID_QUERY (a query's key condition, as GET /tables/:table/query) and DC_ERR_VALIDATION (fields).
 */
export function validateExport(table: TableDescription, def: ExportDefinition, filterMaxBytes: number): ExportRequest {
  assertFilterSize(def.filter, filterMaxBytes)
  if (def.index !== undefined && !table.indexes.some((i) => i.name === def.index)) {
    throw new errors.DC_ERR_INDEX_NOT_FOUND(def.index, def.table)
  }
  if (def.filter !== undefined && typeof def.filter !== 'string' && (typeof def.filter !== 'object' || def.filter === null)) {
    throw new errors.DC_ERR_INVALID_FILTER(
      'filter must be the filter of GET /tables/:table/query (an array of conditions, or an and/or/not group), or that filter as JSON text',
    )
  }
  // The same grammar as reads (arrays of conditions, and/or/not groups, in, size, attribute_type): a group
  // object is judged as its JSON text, exactly as a read's `filter=` would be.
  const filter: FilterInput | undefined =
    def.filter !== null && typeof def.filter === 'object' && !Array.isArray(def.filter) ? JSON.stringify(def.filter) : (def.filter as FilterInput | undefined)
  const fields = def.fields === undefined ? undefined : parseExportFields(def.fields)
  if (fields) exportProjection(table, fields, def.index)
  let filtered: boolean
  if (def.query) {
    // The same checks as GET /tables/:table/query: key values by type, sort-key condition, filter.
    const built = buildQuery(table, { ...def.query, ...(def.index !== undefined ? { index: def.index } : {}), ...(filter !== undefined ? { filter } : {}) })
    filtered = built.FilterExpression !== undefined
  } else {
    // Refused here with the condition's position, never by a worker later.
    filtered = filter !== undefined && Object.keys(buildScanFilter(filter)).length > 0
  }
  return {
    table: def.table,
    format: def.format,
    gzip: def.gzip,
    ...(def.index !== undefined ? { index: def.index } : {}),
    ...(filtered ? { filter: typeof filter === 'string' ? filter : JSON.stringify(filter) } : {}),
    ...(def.notify !== undefined ? { notify: def.notify } : {}),
    ...(def.query ? { query: JSON.stringify(def.query) } : {}),
    ...(fields ? { fields: JSON.stringify(fields) } : {}),
  }
}

export interface CreateExportDeps {
  store: ExportStore
  flows: ExportFlows
  quotas: Quotas
  /** EXPORT_SEGMENTS: how many segments a Scan export runs as (a query export always runs as one). */
  segments: number
}

/**
 * Stores and queues a validated export for `caller`'s tenant: DC_ERR_EXPORT_QUOTA (429) when the
 * tenant is at its limit (nothing stored), DC_ERR_QUEUE_UNAVAILABLE (503) when the flow cannot be
 * queued (the record is removed again). The one create path of POST /exports and of scheduled runs.
 */
export async function createExport(
  deps: CreateExportDeps,
  caller: { id: string; tenant: string },
  request: ExportRequest,
  table: TableDescription,
  extra: Pick<ExportRecord, 'createdBy' | 'schedule' | 'scheduledAt'> = {},
): Promise<ExportRecord> {
  const record: ExportRecord = {
    id: randomUUID(),
    ...request,
    status: 'queued',
    progress: 0,
    processedItems: 0,
    scannedItems: 0,
    // DynamoDB refreshes ItemCount about every six hours (dynalite: always 0); 0 = unknown. A query reads part of it.
    expectedItems: request.query ? 0 : table.itemCount,
    segments: request.query ? 1 : deps.segments,
    createdAt: Date.now(),
    ...(extra.createdBy !== undefined ? { createdBy: extra.createdBy } : {}),
    ...(extra.schedule !== undefined ? { schedule: extra.schedule } : {}),
    ...(extra.scheduledAt !== undefined ? { scheduledAt: extra.scheduledAt } : {}),
    tenant: caller.tenant,
  }
  // Refused (429) when the tenant has TENANT_EXPORTS_MAX exports queued or processing; nothing stored then.
  await deps.quotas.admitExport(caller, record.id, () => deps.store.create(record))
  try {
    await deps.flows.start(record.id, record.segments)
  } catch (err) {
    await deps.store.remove(record.id, record.createdAt).catch(() => {})
    throw err
  }
  return record
}
