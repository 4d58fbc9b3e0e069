import { randomBytes } from 'node:crypto'
import type { EntryMeta } from '../../src/shared/cache/entry-layout.ts'
import type { CacheStore, StoredEntry } from '../../src/shared/cache/store.ts'

/**
 * The CacheStore contract in memory, for fast tests of the read path's core (single-flight, freshness,
 * isolation) without Redis. Keys are (table, id) exactly as the Redis store keys them; `writes` lists
 * every write with its table so a test can see which table a write landed under, `reads` counts reads.
 * Locks expire after their ttl on `now` (a test's fake clock; Date.now by default), as Redis PX does.
 */
export function createMemoryStore(options: { now?: () => number } = {}) {
  const now = options.now ?? Date.now
  const entries = new Map<string, { generation: string; entry: StoredEntry }>()
  const generations = new Map<string, number>()
  const locks = new Map<string, { token: string; until: number }>()
  const counts = { reads: 0 }
  const keyOf = (table: string | null, id: string) => JSON.stringify([table, id])
  const generationOf = (table: string | null) => String(generations.get(JSON.stringify(table)) ?? 0)
  const writes: Array<{ table: string | null; id: string; body: Buffer }> = []

  const store: CacheStore = {
    async read(table, id, ifNoneMatch = '') {
      counts.reads++
      const generation = generationOf(table)
      const held = entries.get(keyOf(table, id))
      if (!held || held.generation !== generation) return { generation }
      if (ifNoneMatch !== '' && ifNoneMatch === held.entry.meta.etag) return { generation, entry: { meta: held.entry.meta } }
      return { generation, entry: held.entry }
    },
    async write(table, id, generation, partial, gzip) {
      const meta: EntryMeta = { ...partial, gzipSize: gzip.length, chunks: 0, version: randomBytes(6).toString('base64url') }
      entries.set(keyOf(table, id), { generation, entry: { meta, gzip } })
      writes.push({ table, id, body: gzip })
      return meta
    },
    async lock(table, id, ttlMs) {
      const key = keyOf(table, id)
      const held = locks.get(key)
      if (held && held.until > now()) return null
      const token = randomBytes(8).toString('hex')
      locks.set(key, { token, until: now() + ttlMs })
      return token
    },
    async unlock(table, id, token) {
      const key = keyOf(table, id)
      if (locks.get(key)?.token === token) locks.delete(key)
    },
  }

  return {
    store,
    writes,
    /** Calls of `read` so far. */
    get reads() {
      return counts.reads
    },
    /** Whether someone holds the fill lock of an entry now. */
    locked(table: string | null, id: string) {
      const held = locks.get(keyOf(table, id))
      return held !== undefined && held.until > now()
    },
    /** Bumps a table's generation: every entry of it becomes invisible, as DELETE /tables/:table/cache does. */
    invalidate(table: string | null) {
      generations.set(JSON.stringify(table), Number(generationOf(table)) + 1)
    },
  }
}
