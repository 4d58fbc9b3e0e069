import { type Job, UnrecoverableError } from 'bullmq'
import { createTablePolicy, isValidTableName } from '../shared/access.ts'
import type { CachedResource, ResourceKind } from '../shared/cache/index.ts'
import type { Config } from '../shared/config.ts'

/**
 * Checks of job data before a processor acts on it. Jobs can be added by hand (Bull Board, redis-cli),
 * so a processor trusts no field of one: the table must be allowed by TABLES_ALLOW / TABLES_DENY and
 * the job must be the one the API queued for its record (same id, same table, same segments). A job
 * that fails a check can never succeed: it throws UnrecoverableError and touches nothing.
 */
export interface JobChecks {
  /** The table is a valid name that TABLES_ALLOW / TABLES_DENY let dynacache use. */
  tableAllowed(table: unknown): table is string
  /** Throws unless `condition` holds; `why` ends up in the job's failedReason (and the log). */
  require(condition: unknown, job: Job, why: string): void
  /** Throws UnrecoverableError for `job`, saying why. */
  refuse(job: Job, why: string): never
  /** A cache-refresh resource of a known kind, on an allowed table, with string parameters. */
  resource(value: unknown, job: Job): CachedResource
}

const KINDS: ReadonlySet<ResourceKind> = new Set(['tables', 'details', 'items', 'item', 'query'])

export const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

export function createJobChecks(config: Pick<Config, 'TABLES_ALLOW' | 'TABLES_DENY'>): JobChecks {
  const allowed = createTablePolicy(config.TABLES_ALLOW, config.TABLES_DENY)
  const tableAllowed = (table: unknown): table is string => typeof table === 'string' && isValidTableName(table) && allowed(table)

  const refuse = (job: Job, why: string): never => {
    throw new UnrecoverableError(`Invalid ${job.queueName} job ${job.id}: ${why}`)
  }
  const require = (condition: unknown, job: Job, why: string) => {
    if (!condition) refuse(job, why)
  }

  return {
    tableAllowed,
    require,
    refuse,
    resource(value, job) {
      if (!isObject(value)) return refuse(job, 'resource is not an object')
      const { table, kind, params } = value
      require(typeof kind === 'string' && KINDS.has(kind as ResourceKind), job, 'unknown resource kind')
      require(kind === 'tables' ? table === null : tableAllowed(table), job, 'the table is not one dynacache may read')
      require(isObject(params) && Object.values(params).every((v) => typeof v === 'string'), job, 'params must be strings')
      return value as unknown as CachedResource
    },
  }
}
