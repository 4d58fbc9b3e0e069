import type { FastifyInstance } from 'fastify'
import {
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
  type ProgressFeed,
} from '../../../shared/exports/index.ts'
import { createConfiguredRedis } from '../../../shared/redis/index.ts'

/** What the export routes share; built once per API instance. */
export interface ExportApi {
  store: ExportStore
  storage: ExportStorage
  flows: ExportFlows
  tokens: DownloadTokens
  feed: ProgressFeed
  /** A signed download link (path and query) for a completed export. */
  signedDownload(id: string): string
  /** The record as the API shows it. */
  view(record: ExportRecord): Record<string, unknown>
  /** Ends the open event streams (before the server closes, so it does not wait for clients). */
  readonly streams: Set<() => void>
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString())

export function createExportApi(app: FastifyInstance): ExportApi {
  const { config } = app
  const store = createExportStore({ redis: app.redis, keys: app.keys })
  const tokens = createDownloadTokens(config.CURSOR_SECRET!, config.DOWNLOAD_LINK_TTL)
  const signedDownload = (id: string) => `${exportPaths(id).download}?token=${tokens.sign(id).token}`
  return {
    store,
    storage: createExportStorage(config),
    flows: createExportFlows(app.redis, app.keys.queuePrefix),
    tokens,
    feed: createProgressFeed({
      store,
      // Blocking reads need a connection of their own that waits for Redis (the request one fails fast).
      connect: () => createConfiguredRedis(config, 'blocking', 'api-export-events', app.log),
      logger: app.log,
    }),
    signedDownload,
    streams: new Set(),
    view: (r) => ({
      id: r.id,
      table: r.table,
      index: r.index ?? null,
      format: r.format,
      gzip: r.gzip,
      filter: r.filter ?? null,
      notify: r.notify ?? null,
      status: r.status,
      progress: r.progress,
      processedItems: r.processedItems,
      segments: r.segments,
      createdAt: iso(r.createdAt),
      startedAt: iso(r.startedAt),
      completedAt: iso(r.completedAt),
      error: r.error ?? null,
      bytes: r.bytes ?? null,
      download: r.status === 'completed' ? signedDownload(r.id) : null,
      links: exportPaths(r.id),
    }),
  }
}
