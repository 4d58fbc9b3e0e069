import { type Job, UnrecoverableError } from 'bullmq'
import { isPermanent } from '../shared/error-classes.ts'

/** True while a job runs its last attempt: if this run fails, BullMQ does not retry it. */
export function isLastAttempt(job: Pick<Job, 'attemptsMade' | 'opts'>): boolean {
  // attemptsMade counts the runs that failed before this one; a deferred run (deferJob) spends none.
  return job.attemptsMade + 1 >= (job.opts.attempts ?? 1)
}

export interface JobFailure {
  /** No retry follows (a permanent failure, or the last attempt): the job's record should say it failed. */
  final: boolean
  /** What the processor throws: a permanent failure as UnrecoverableError (no retry), anything else as it came (the queue's backoff retries it). */
  error: unknown
}

/** What a processor's failure does to its job: fail it now, or let the queue retry it. */
export function failOrRetry(job: Pick<Job, 'attemptsMade' | 'opts'>, err: unknown): JobFailure {
  if (err instanceof UnrecoverableError) return { final: true, error: err }
  if (isPermanent(err)) return { final: true, error: new UnrecoverableError((err as Error).message) }
  return { final: isLastAttempt(job), error: err }
}
