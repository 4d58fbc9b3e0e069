import { randomBytes } from 'node:crypto'
import type { EntryMeta } from '../../src/shared/cache/entry-layout.ts'
import type { CacheStore, StoredEntry } from '../../src/shared/cache/store.ts'

/**
 * The CacheStore contract in memory, for fast tests of the read path's core (single-flight, freshness,
 * isolation) without Redis. Keys are (table, id) exactly as the Redis store keys them; `reads` and
 * `writes` count calls per table so a test can see which table a write landed under.
 */
export function createMemoryStore() {
  const entries = new Map<string, { generation: string; entry: StoredEntry }>()
  const generations = new Map<string, number>()
  const locks = new Map<string, string>()
  const keyOf = (table: string | null, id: string) => JSON.stringify([table, id])
  const generationOf = (table: string | null) => String(generations.get(String(table)) ?? 0)
  const writes: Array<{ table: string | null; id: string; body: Buffer }> = []

  const store: CacheStore = {
    async read(table, id, ifNoneMatch = '') {
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
    async lock(table, id) {
      const key = keyOf(table, id)
      if (locks.has(key)) return null
      const token = randomBytes(8).toString('hex')
      locks.set(key, token)
      return token
    },
    async unlock(table, id, token) {
      const key = keyOf(table, id)
      if (locks.get(key) === token) locks.delete(key)
    },
  }

  return {
    store,
    writes,
    /** Bumps a table's generation: every entry of it becomes invisible, as DELETE /tables/:table/cache does. */
    invalidate(table: string | null) {
      generations.set(String(table), Number(generationOf(table)) + 1)
    },
  }
}
