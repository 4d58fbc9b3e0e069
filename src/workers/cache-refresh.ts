import type { Job } from 'bullmq'
import { describeResource } from '../shared/cache/index.ts'
import { isBudgetExhausted } from '../shared/error-classes.ts'
import type { QueuePayload } from '../shared/queues/index.ts'
import { deferJob } from './defer.ts'
import type { WorkerDeps } from './deps.ts'
import { createJobChecks } from './job-checks.ts'

/**
 * Reloads a stale entry. Goes through the same single-flight as the API, so a refresh and a user miss
 * on one key make one DynamoDB read; an entry that someone already refreshed is left alone.
 */
export default function createCacheRefreshProcessor({ cache, logger, config }: WorkerDeps) {
  const checks = createJobChecks(config)
  return async function cacheRefresh(job: Job<QueuePayload<'cache-refresh'>>, token?: string) {
    // A refresh fills the cache: never for a table the deployment does not expose, nor a made-up kind.
    const resource = checks.resource(job.data?.resource, job)
    try {
      const outcome = await cache.refresh(resource)
      logger.debug({ msg: 'cache.refresh', resource: describeResource(resource), outcome })
      return { outcome }
    } catch (err) {
      if (isBudgetExhausted(err)) throw await deferJob(job, token, 1000)
      throw err
    }
  }
}
