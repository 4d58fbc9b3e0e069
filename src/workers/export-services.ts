import {
  createDownloadTokens,
  createExportStorage,
  createExportStore,
  type DownloadTokens,
  type ExportStorage,
  type ExportStore,
} from '../shared/exports/index.ts'
import type { WorkerDeps } from './deps.ts'

export interface ExportServices {
  store: ExportStore
  storage: ExportStorage
  /** Undefined when the worker has no CURSOR_SECRET: it cannot sign download links then. */
  tokens?: DownloadTokens
}

const built = new WeakMap<WorkerDeps, ExportServices>()

/** The export store and storage of a worker process, built once and shared by its export processors. */
export function exportServices(deps: WorkerDeps): ExportServices {
  let services = built.get(deps)
  if (!services) {
    const { config } = deps
    services = {
      store: createExportStore({ redis: deps.redis, keys: deps.keys }),
      storage: createExportStorage(config),
      ...(config.CURSOR_SECRET ? { tokens: createDownloadTokens(config.CURSOR_SECRET, config.DOWNLOAD_LINK_TTL) } : {}),
    }
    built.set(deps, services)
  }
  return services
}
