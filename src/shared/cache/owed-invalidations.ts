import type { LogSink } from '../logger.ts'

export interface OwedInvalidationsOptions {
  /** Invalidates a table whole (a hard bump of its generation); rejects while Redis cannot take it. */
  invalidate(table: string): Promise<void>
  /** Whether the Redis connection is ready now. */
  ready(): boolean
  /** Subscribes to the connection becoming ready again (ioredis's 'ready' event). */
  onReady(listener: () => void): void
  logger?: LogSink
  /** How often an owed invalidation is tried again while the connection stays ready. */
  retryMs?: number
}

/**
 * Invalidations a write owes the cache because Redis could not take them when it happened. A write
 * that DynamoDB applied must make the cache forget what it changed, however Redis was doing: when the
 * bump after it fails (this process lost its Redis connection, or a command timed out), the write is
 * still answered, and its table is owed a whole-table hard invalidation, made as soon as the connection
 * is ready again, and tried again every `retryMs` until it lands. Another process that can reach Redis
 * may serve the table's old entries until then; that window, and a process that dies owing one (the
 * entries then live out their TTL), are in docs/coherence.md. Held in process memory, one per table.
 */
export function createOwedInvalidations(options: OwedInvalidationsOptions) {
  const { invalidate, ready, logger } = options
  const retryMs = options.retryMs ?? 1000
  const owed = new Set<string>()
  let settling: Promise<void> | undefined
  let timer: NodeJS.Timeout | undefined

  async function settleAll(): Promise<void> {
    for (const table of [...owed]) {
      try {
        await invalidate(table)
      } catch {
        // Still unreachable: the next ready, or the next retry, tries again.
        return
      }
      owed.delete(table)
      logger?.info({ msg: 'cache.invalidation.settled', table })
    }
  }

  function settle(): void {
    if (owed.size === 0 || settling || !ready()) return
    settling = settleAll().finally(() => {
      settling = undefined
    })
  }

  function arm(): void {
    if (timer) return
    timer = setInterval(() => {
      if (owed.size === 0) {
        clearInterval(timer)
        timer = undefined
        return
      }
      settle()
    }, retryMs)
    // Never what keeps a process alive: a process that stops owing is the documented loss.
    timer.unref()
  }

  options.onReady(settle)

  return {
    /** Records that `table` must be invalidated whole once Redis takes it (a write's bump failed). */
    owe(table: string): void {
      if (!owed.has(table)) logger?.warn({ msg: 'cache.invalidation.owed', table })
      owed.add(table)
      arm()
      settle()
    },
    /** Tables owed an invalidation now (the metric dynacache_cache_invalidations_owed). */
    get size(): number {
      return owed.size
    },
    /** Resolves once the current attempt (if any) is over; for tests and shutdown. */
    async settled(): Promise<void> {
      await settling
    },
    close(): void {
      if (timer) clearInterval(timer)
      timer = undefined
    },
  }
}

export type OwedInvalidations = ReturnType<typeof createOwedInvalidations>
