import { randomBytes } from 'node:crypto'
import type { InvalidationMode } from '../../src/shared/cache/coherence.ts'
import type { EntryMeta } from '../../src/shared/cache/entry-layout.ts'
import type { CacheStore, StoredEntry } from '../../src/shared/cache/store.ts'

/** A generation after a bump, as dcCacheBump.lua writes it: `n` (hard) or `n/h` (soft, h at the last hard bump). */
export function bumped(value: string, mode: InvalidationMode): string {
  const n = Number(/^\d+/.exec(value)?.[0] ?? 0)
  if (mode === 'hard') return String(n + 1)
  return `${n + 1}/${/\/(\d+)$/.exec(value)?.[1] ?? n}`
}

/** Whether an entry written under `written` may be served once under `current` (dcCacheRead.lua). */
export function softlyInvalidated(written: string, current: string[]): boolean {
  const parts = written.split(',')
  if (parts.length !== current.length) return false
  return parts.every((w, i) => {
    if (w === current[i]) return true
    const hard = /\/(\d+)$/.exec(current[i]!)?.[1]
    const n = /^\d+/.exec(w)?.[0]
    return hard !== undefined && n !== undefined && Number(n) >= Number(hard)
  })
}

/**
 * The CacheStore contract in memory, for fast tests of the read path's core (single-flight, freshness,
 * isolation, coherence) without Redis. Keys are (table, id) exactly as the Redis store keys them;
 * `writes` lists every write with its table so a test can see which table a write landed under, `reads`
 * counts reads, `bumps` lists every bump of dependency tags. Locks expire after their ttl on `now` (a
 * test's fake clock; Date.now by default), as Redis PX does.
 */
export function createMemoryStore(options: { now?: () => number } = {}) {
  const now = options.now ?? Date.now
  const entries = new Map<string, { generation: string; entry: StoredEntry }>()
  // Generations by [table, tag]; the table's own generation is tag ''.
  const generations = new Map<string, string>()
  const locks = new Map<string, { token: string; until: number }>()
  const counts = { reads: 0 }
  const keyOf = (table: string | null, id: string) => JSON.stringify([table, id])
  const generationOf = (table: string | null, tag = '') => generations.get(JSON.stringify([table, tag])) ?? '0'
  const bump = (table: string | null, tag: string, mode: InvalidationMode) =>
    generations.set(JSON.stringify([table, tag]), bumped(generationOf(table, tag), mode))
  const currentOf = (table: string | null, deps: readonly string[]) => [generationOf(table), ...deps.map((d) => generationOf(table, d))]
  const writes: Array<{ table: string | null; id: string; body: Buffer }> = []
  const bumps: Array<{ table: string | null; tags: readonly string[]; mode: InvalidationMode; announce?: string }> = []

  const store: CacheStore = {
    async read(table, id, ifNoneMatch = '', { deps = [], soft = false } = {}) {
      counts.reads++
      const current = currentOf(table, deps)
      const generation = current.join(',')
      const held = entries.get(keyOf(table, id))
      if (!held) return { generation }
      let invalidated = false
      if (held.generation !== generation) {
        if (!soft || !softlyInvalidated(held.generation, current)) return { generation }
        // Served this once: the next read misses.
        held.generation = '-'
        invalidated = true
      }
      const flag = invalidated ? { invalidated } : {}
      if (ifNoneMatch !== '' && ifNoneMatch === held.entry.meta.etag) return { generation, entry: { meta: held.entry.meta }, ...flag }
      return { generation, entry: held.entry, ...flag }
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
    async generations(table, deps) {
      return currentOf(table, deps).join(',')
    },
    async bump(table, tags, mode, announce) {
      for (const tag of tags) bump(table, tag, mode)
      bumps.push({ table, tags, mode, ...(announce ? { announce } : {}) })
      return new Map(tags.map((tag) => [tag, generationOf(table, tag)]))
    },
  }

  return {
    store,
    writes,
    bumps,
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
    invalidate(table: string | null, mode: InvalidationMode = 'hard') {
      bump(table, '', mode)
    },
  }
}
