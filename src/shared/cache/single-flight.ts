import type { LogSink } from '../logger.ts'
import type { CacheStore, StoredEntry } from './store.ts'

export interface SingleFlightOptions {
  store: CacheStore
  /** How long the fill lock is held at most (a crashed holder frees it after this). */
  lockTtlMs: number
  /** How long a process waits for another process's fill before loading itself. */
  lockWaitMs: number
  now: () => number
  sleep?: (ms: number) => Promise<void>
  logger?: LogSink
}

/** What a fill produced: our own load, or the entry another caller (here or in another process) stored. */
export type Filled<T> = { value: T; collapsed: boolean }

export interface SingleFlight {
  /**
   * Runs `load` at most once per entry at a time: in this process (concurrent callers share the
   * promise) and across processes (the Redis fill lock; a loser waits for the holder's write of an
   * entry newer than `after` and takes it through `adopt`). If the wait runs out it loads itself.
   */
  run<T>(table: string | null, id: string, after: number, load: () => Promise<T>, adopt: (entry: StoredEntry) => T): Promise<Filled<T>>
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export function createSingleFlight({ store, lockTtlMs, lockWaitMs, now, sleep = realSleep, logger }: SingleFlightOptions): SingleFlight {
  // Keyed by table and id both (as the store and the near cache are): the id already digests the table,
  // and this keeps a flight of one table from ever answering another's, whatever ids look like.
  const inFlight = new Map<string, Promise<Filled<unknown>>>()
  const keyOf = (table: string | null, id: string) => `${table ?? ''}\u0000${id}`

  /** Polls for the lock holder's write: an entry newer than `after` appears, or the wait runs out. */
  async function awaitOtherFill(table: string | null, id: string, after: number): Promise<StoredEntry | undefined> {
    const deadline = now() + lockWaitMs
    for (let delay = 10; now() < deadline; delay = Math.min(delay * 2, 100)) {
      await sleep(delay)
      const { entry } = await store.read(table, id)
      if (entry?.gzip && entry.meta.createdAt > after) return entry
    }
    return undefined
  }

  async function fly<T>(table: string | null, id: string, after: number, load: () => Promise<T>, adopt: (entry: StoredEntry) => T): Promise<Filled<T>> {
    const token = await store.lock(table, id, lockTtlMs)
    if (!token) {
      const other = await awaitOtherFill(table, id, after)
      if (other) return { value: adopt(other), collapsed: true }
      logger?.warn({ msg: 'cache.lock.timeout', table })
    }
    try {
      if (token) {
        // Another process may have filled the entry between our read and our lock: use its value.
        const { entry: current } = await store.read(table, id)
        if (current?.gzip && current.meta.createdAt > after) return { value: adopt(current), collapsed: true }
      }
      return { value: await load(), collapsed: false }
    } finally {
      if (token) await store.unlock(table, id, token).catch(() => {})
    }
  }

  return {
    run(table, id, after, load, adopt) {
      const key = keyOf(table, id)
      const pending = inFlight.get(key) as Promise<Filled<ReturnType<typeof adopt>>> | undefined
      if (pending) return pending.then(({ value }) => ({ value, collapsed: true }))
      const work = fly(table, id, after, load, adopt)
      inFlight.set(key, work)
      work.finally(() => inFlight.delete(key)).catch(() => {})
      return work
    },
  }
}
