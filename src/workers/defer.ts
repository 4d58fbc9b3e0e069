import { DelayedError, type Job } from 'bullmq'

/** True for failures that mean "not now": the read budget is used up for this second. */
export const isBudgetExhausted = (err: unknown) => (err as { code?: string } | null)?.code === 'DC_ERR_BUDGET_EXHAUSTED'

/**
 * Puts a job back to wait instead of failing it: background work yields to users while they use the
 * read budget, and does not spend its retry attempts doing so. Throw the returned error from the processor.
 */
export async function deferJob(job: Job, token: string | undefined, delayMs: number): Promise<DelayedError> {
  const jitter = Math.floor(Math.random() * delayMs * 0.5)
  await job.moveToDelayed(Date.now() + delayMs + jitter, token)
  return new DelayedError()
}
