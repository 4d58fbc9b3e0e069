import type { LogSink } from '../logger.ts'

/**
 * A cache that cannot write still answers: what a miss loaded came from DynamoDB either way, and the
 * next read loads again. Redis refuses writes when it is full under `maxmemory-policy noeviction` (the
 * policy docs/coherence.md asks for: it keeps generations and jobs, and refuses instead of evicting), or
 * a write can fail mid-way; either is logged (`cache.store_failed`), not answered. Under a full Redis
 * every miss fails to store, so the line is written at most once per `everyMs`, with how many failures
 * it stands for.
 */
export function createStoreFailureLog(logger: LogSink | undefined, everyMs = 10_000, now: () => number = Date.now) {
  let lastAt = Number.NEGATIVE_INFINITY
  let unlogged = 0
  return function storeFailed(table: string | null, step: 'lock' | 'write', err: unknown): void {
    unlogged++
    const t = now()
    if (t - lastAt < everyMs) return
    logger?.warn({ msg: 'cache.store_failed', table, step, err: (err as Error)?.message ?? String(err), failures: unlogged })
    lastAt = t
    unlogged = 0
  }
}

export type StoreFailed = ReturnType<typeof createStoreFailureLog>
