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
  /** Told when the fill lock cannot be taken because Redis refused (full) or failed: the load runs unlocked. */
  lockFailed?: (table: string | null, err: unknown) => void
}

/** What a fill produced: our own load, or the entry another caller (here or in another process) stored. */
export type Filled<T> = { value: T; collapsed: boolean }

export interface SingleFlight {
  /**
   * Runs `load` at most once per entry at a time: in this process (concurrent callers share the
   * promise) and across processes (the Redis fill lock; a loser waits for the holder's write of an
   * entry newer than `after` and takes it through `adopt`). If the wait runs out it loads itself.
   * `deps` are the entry's dependency tags, for the store reads that look for the other's write.
   */
  run<T>(
    table: string | null,
    id: string,
    generation: string,
    after: number,
    load: () => Promise<T>,
    adopt: (entry: StoredEntry) => T,
    deps?: readonly string[],
  ): Promise<Filled<T>>
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export function createSingleFlight({ store, lockTtlMs, lockWaitMs, now, sleep = realSleep, logger, lockFailed }: SingleFlightOptions): SingleFlight {
  // Keyed by table and id both (as the store and the near cache are): the id already digests the table,
  // and this keeps a flight of one table from ever answering another's, whatever ids look like. And by
  // the generation the caller read: a read that starts after an invalidation never joins a load that
  // began before it (it would answer with data the invalidation was meant to drop).
  const inFlight = new Map<string, Promise<Filled<unknown>>>()
  const keyOf = (table: string | null, id: string, generation: string) => `${table ?? ''}\u0000${id}\u0000${generation}`

  /**
   * Waits for the lock holder: its write of an entry newer than `after` appears (adopted), or the lock
   * comes free without one (the holder failed: we take the lock and load ourselves at once, instead of
   * waiting out the whole lock wait), or the wait runs out (we load anyway, without the lock).
   */
  async function awaitOther(
    table: string | null,
    id: string,
    deps: readonly string[],
    after: number,
  ): Promise<{ entry: StoredEntry } | { token: string | null }> {
    const deadline = now() + lockWaitMs
    for (let delay = 10; now() < deadline; delay = Math.min(delay * 2, 100)) {
      await sleep(delay)
      const { entry } = await store.read(table, id, '', { deps })
      if (entry?.gzip && entry.meta.createdAt > after) return { entry }
      let token: string | null
      try {
        token = await store.lock(table, id, lockTtlMs)
      } catch (err) {
        // Redis stopped taking writes while we waited (full): load now, unlocked, as below.
        lockFailed?.(table, err)
        return { token: null }
      }
      if (token) return { token }
    }
    logger?.warn({ msg: 'cache.lock.timeout', table })
    return { token: null }
  }

  async function fly<T>(
    table: string | null,
    id: string,
    deps: readonly string[],
    after: number,
    load: () => Promise<T>,
    adopt: (entry: StoredEntry) => T,
  ): Promise<Filled<T>> {
    let token: string | null
    try {
      token = await store.lock(table, id, lockTtlMs)
    } catch (err) {
      // Redis answers reads but refuses the lock (full under noeviction): load, without the fleet-wide
      // guard (this process's own single flight still holds), rather than fail a read DynamoDB can answer.
      lockFailed?.(table, err)
      return { value: await load(), collapsed: false }
    }
    if (!token) {
      const waited = await awaitOther(table, id, deps, after)
      if ('entry' in waited) return { value: adopt(waited.entry), collapsed: true }
      token = waited.token
    }
    try {
      if (token) {
        // Another process may have filled the entry between our read and our lock: use its value.
        const { entry: current } = await store.read(table, id, '', { deps })
        if (current?.gzip && current.meta.createdAt > after) return { value: adopt(current), collapsed: true }
      }
      return { value: await load(), collapsed: false }
    } finally {
      if (token) await store.unlock(table, id, token).catch(() => {})
    }
  }

  return {
    run(table, id, generation, after, load, adopt, deps = []) {
      const key = keyOf(table, id, generation)
      const pending = inFlight.get(key) as Promise<Filled<ReturnType<typeof adopt>>> | undefined
      if (pending) return pending.then(({ value }) => ({ value, collapsed: true }))
      const work = fly(table, id, deps, after, load, adopt)
      inFlight.set(key, work)
      work.finally(() => inFlight.delete(key)).catch(() => {})
      return work
    },
  }
}
