import type { Job } from 'bullmq'
import type { CachedResource } from '../shared/cache/index.ts'
import { isBudgetExhausted } from '../shared/error-classes.ts'
import type { QueuePayload } from '../shared/queues/index.ts'
import { deferJob } from './defer.ts'
import type { WorkerDeps } from './deps.ts'
import { createJobChecks } from './job-checks.ts'

/** The cached reads of a table that a prefetch keeps warm, beyond its details and first page. */
const HOT_READS_PER_TABLE = 10

/** The first items page exactly as GET /tables/:table/items with no parameters caches it. */
export const firstPage = (table: string): CachedResource => ({ table, kind: 'items', params: { limit: '50', view: 'document' } })

/**
 * Refreshes, for the popular (or named) tables, whatever is stale or missing: details, the first
 * page and the most requested cached reads; and the table list. Fresh entries cost nothing:
 * refresh() skips them, so a deferred and re-run prefetch only does what is left.
 */
export default function createPrefetchProcessor({ cache, config, logger }: WorkerDeps) {
  const checks = createJobChecks(config)
  return async function prefetch(job: Job<QueuePayload<'prefetch'>>, token?: string) {
    const named = job.data?.tables
    checks.require(named === undefined || (Array.isArray(named) && named.length <= 1000), job, 'tables must be a list of table names')
    // Named tables (from POST /cache/warmup, or typed into Bull Board) count only when allowed.
    const tables = (named ?? (await cache.stats.popular(config.PREFETCH_TOP)).map((p) => p.table)).filter(checks.tableAllowed)
    const resources: CachedResource[] = [{ table: null, kind: 'tables', params: {} }]
    for (const table of tables) {
      resources.push({ table, kind: 'details', params: {} }, firstPage(table))
      for (const hot of await cache.stats.hotReads(table, HOT_READS_PER_TABLE)) {
        if (!resources.some((r) => JSON.stringify(r) === JSON.stringify(hot))) resources.push(hot)
      }
    }
    let refreshed = 0
    let failed = 0
    for (const resource of resources) {
      try {
        if ((await cache.refresh(resource)) === 'refreshed') refreshed++
      } catch (err) {
        if (isBudgetExhausted(err)) throw await deferJob(job, token, 1000)
        // A table that vanished or a read DynamoDB refuses must not stop the others.
        failed++
        logger.warn({ msg: 'prefetch.read.failed', table: resource.table, kind: resource.kind, err: (err as Error).message })
      }
    }
    logger.info({ msg: 'prefetch.done', tables, refreshed, failed, considered: resources.length })
    return { tables, refreshed, failed, considered: resources.length }
  }
}
