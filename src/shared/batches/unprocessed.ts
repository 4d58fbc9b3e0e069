import { ExponentialBackoff, fullJitterGenerator, type IBackoff } from 'cockatiel'
import { isUnavailable } from '../error-classes.ts'

/** How the requests DynamoDB leaves unprocessed (or refuses while busy) are retried. */
export interface RetryPolicy {
  /** Calls for one group of requests, the first included, before what is left is handed back. */
  maxCalls: number
  /** Ceiling of the first wait; it doubles per retry up to maxDelayMs, and each wait is random below it (full jitter). */
  initialDelayMs: number
  maxDelayMs: number
}

export const DEFAULT_RETRY: RetryPolicy = { maxCalls: 10, initialDelayMs: 50, maxDelayMs: 5000 }

export interface RetryOutcome<R> {
  /** What was still unprocessed when the calls ran out (empty when everything went through). */
  remaining: R[]
  calls: number
  /** The failure of the last call, when it failed (throttling, 5xx, timeout). */
  lastError?: Error
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Sends `requests`, then again whatever each call hands back unprocessed, waiting between calls with
 * exponential backoff and full jitter (AWS's advice for UnprocessedItems / UnprocessedKeys). A call
 * that fails because DynamoDB is throttling or unavailable is retried the same way; any other error
 * is thrown at once. `send` returns the requests left unprocessed.
 */
export async function retryUnprocessed<R>(
  requests: R[],
  send: (requests: R[]) => Promise<R[]>,
  policy: RetryPolicy,
  wait: (ms: number) => Promise<unknown> = sleep,
): Promise<RetryOutcome<R>> {
  const factory = new ExponentialBackoff({
    generator: fullJitterGenerator,
    initialDelay: policy.initialDelayMs,
    maxDelay: policy.maxDelayMs,
  })
  let backoff: IBackoff<unknown> | undefined
  let remaining = requests
  let calls = 0
  let lastError: Error | undefined
  while (remaining.length > 0 && calls < policy.maxCalls) {
    if (calls > 0) {
      backoff = backoff ? backoff.next(undefined) : factory.next()
      await wait(backoff.duration)
    }
    calls++
    try {
      remaining = await send(remaining)
      lastError = undefined
    } catch (err) {
      if (!isUnavailable(err)) throw err
      lastError = err as Error
    }
  }
  return { remaining, calls, ...(lastError ? { lastError } : {}) }
}
