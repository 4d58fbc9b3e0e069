import type { FastifyInstance } from 'fastify'
import type { Static } from 'typebox'
import type { Principal } from '../../../shared/access.ts'
import {
  type CreateExportDeps,
  createDownloadTokens,
  createExportFlows,
  createExportStorage,
  createExportStore,
  createProgressFeed,
  type DownloadTokens,
  type ExportFlows,
  type ExportRecord,
  type ExportStorage,
  type ExportStore,
  exportPaths,
  fieldsOf,
  type ProgressFeed,
  tenantOf,
} from '../../../shared/exports/index.ts'
import { createConfiguredRedis } from '../../../shared/redis/index.ts'
import type { ExportView } from './schemas.ts'

/** What the export routes share; built once per API instance. */
export interface ExportApi {
  store: ExportStore
  storage: ExportStorage
  flows: ExportFlows
  tokens: DownloadTokens
  feed: ProgressFeed
  /** What creating an export needs (POST /exports and schedules). */
  creating: CreateExportDeps
  /** A signed download link (path and query) for a completed export, bound to its tenant. */
  signedDownload(record: Pick<ExportRecord, 'id' | 'tenant'>): string
  /**
   * True when the caller may know of the export: it belongs to the caller's tenant (admins included: a
   * tenant is the boundary) and its table is one the caller may see. Everything else is a missing export.
   */
  visible(principal: Principal | undefined, record: ExportRecord): boolean
  /** The record as the API shows it. */
  view(record: ExportRecord): Static<typeof ExportView>
  /** Ends the open event streams (before the server closes, so it does not wait for clients). */
  readonly streams: Set<() => void>
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString())

export function createExportApi(app: FastifyInstance): ExportApi {
  const { config } = app
  const store = createExportStore({ redis: app.redis, keys: app.keys })
  const tokens = createDownloadTokens(config.CURSOR_SECRET, config.DOWNLOAD_LINK_TTL)
  const signedDownload = (record: Pick<ExportRecord, 'id' | 'tenant'>) =>
    `${exportPaths(record.id).download}?token=${tokens.sign(record.id, tenantOf(record)).token}`
  const flows = createExportFlows(app.redis, app.keys.queuePrefix)
  return {
    store,
    storage: createExportStorage(config),
    flows,
    creating: { store, flows, quotas: app.quotas, segments: config.EXPORT_SEGMENTS },
    tokens,
    feed: createProgressFeed({
      store,
      // Blocking reads need a connection of their own that waits for Redis (the request one fails fast).
      connect: () => createConfiguredRedis(config, 'background', 'api-export-events', app.log),
      logger: app.log,
    }),
    signedDownload,
    visible: (principal, record) => principal !== undefined && tenantOf(record) === principal.tenant && app.tableVisible(principal, record.table),
    streams: new Set(),
    view: (r) => ({
      id: r.id,
      table: r.table,
      index: r.index ?? null,
      format: r.format,
      gzip: r.gzip,
      filter: r.filter ?? null,
      query: r.query ? JSON.parse(r.query) : null,
      fields: fieldsOf(r) ?? null,
      schedule: r.schedule ?? null,
      scheduledAt: iso(r.scheduledAt),
      notify: r.notify ?? null,
      status: r.status,
      progress: r.progress,
      processedItems: r.processedItems,
      segments: r.segments,
      createdAt: new Date(r.createdAt).toISOString(),
      startedAt: iso(r.startedAt),
      completedAt: iso(r.completedAt),
      error: r.error ?? null,
      bytes: r.bytes ?? null,
      download: r.status === 'completed' ? signedDownload(r) : null,
      links: exportPaths(r.id),
    }),
  }
}
