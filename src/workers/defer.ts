import { DelayedError, type Job } from 'bullmq'

/**
 * Puts a job back to wait instead of failing it: background work yields to users while they use the
 * read budget, and does not spend its retry attempts doing so. Throw the returned error from the processor.
 */
export async function deferJob(job: Job, token: string | undefined, delayMs: number): Promise<DelayedError> {
  const jitter = Math.floor(Math.random() * delayMs * 0.5)
  await job.moveToDelayed(Date.now() + delayMs + jitter, token)
  return new DelayedError()
}
