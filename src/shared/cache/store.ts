import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { RedisKeys } from '../redis/keys.ts'
import { defineScripts } from '../redis/scripts.ts'
import { inSpan } from '../telemetry/tracing.ts'
import type { InvalidationMode } from './coherence.ts'
import { ENTRY_FIELDS, type EntryMeta } from './entry-layout.ts'
import { invalidationChannel } from './invalidation-feed.ts'

/**
 * Generation values by dependency tag, TABLE_GENERATION for the table's own: what a bump left (a
 * write-through of that write stores under them), or what a read saw before it loaded (a consistent read).
 */
export type Bumped = ReadonlyMap<string, string>

/** The tag under which a `Bumped` holds the table's own generation. */
export const TABLE_GENERATION = ''

/** What a read of an entry found. */
export interface StoredEntry {
  meta: EntryMeta
  /** The gzip body; absent when the caller's ETag matched (a 304 needs no body). */
  gzip?: Buffer
}

export interface ReadResult {
  /** The composite of the current generations the entry depends on, to tag a write that follows this read. */
  generation: string
  entry?: StoredEntry
  /** True when the entry was invalidated softly and this read serves it the one last time. */
  invalidated?: boolean
}

export interface ReadOptions {
  /** The entry's dependency tags (dependencies.ts); the table's own generation is always checked first. */
  deps?: readonly string[]
  /** May serve, once, an entry invalidated softly (dcCacheRead.lua). */
  soft?: boolean
}

/** The Redis side of the cache: entries, generations, chunking. Knows nothing of HTTP or DynamoDB. */
export interface CacheStore {
  /** One round trip for inline bodies, two for chunked ones. `ifNoneMatch` skips the body on a match. */
  read(table: string | null, id: string, ifNoneMatch?: string, options?: ReadOptions): Promise<ReadResult>
  /**
   * Writes an entry atomically under `generation` (a composite a read returned), kept `staleIfErrorTtl`
   * seconds past its ttl (the store's default when absent); removes the chunks of `previous` if it had any.
   */
  write(
    table: string | null,
    id: string,
    generation: string,
    meta: Omit<EntryMeta, 'chunks' | 'version' | 'gzipSize'>,
    gzip: Buffer,
    previous?: EntryMeta,
    staleIfErrorTtl?: number,
  ): Promise<EntryMeta>
  /** Takes the fill lock for an entry; returns a token to release it with, or null if another holds it. */
  lock(table: string | null, id: string, ttlMs: number): Promise<string | null>
  unlock(table: string | null, id: string, token: string): Promise<void>
  /** The composite of the current generations of the table and these dependencies, as `read` answers it. */
  generations(table: string | null, deps: readonly string[]): Promise<string>
  /**
   * Bumps dependency generations of one table (invalidates the entries that depend on them) and
   * publishes `announce` on the invalidation channel, atomically in one round trip.
   */
  bump(table: string | null, deps: readonly string[], mode: InvalidationMode, announce?: string): Promise<Bumped>
}

export interface CacheStoreOptions {
  redis: Redis
  keys: RedisKeys
  chunkBytes: number
  /** Seconds past its ttl an entry is kept for stale-if-error. */
  staleIfErrorTtl: number
  /**
   * Seconds a dependency generation is kept after its last bump: at least the longest an entry lives
   * (ttl + stale-if-error), so no entry written before a bump outlives the bump's record.
   */
  dependencyTtl: number
}

export function createCacheStore({ redis, keys, chunkBytes, staleIfErrorTtl, dependencyTtl }: CacheStoreOptions): CacheStore {
  defineScripts(redis)
  const generationKeys = (table: string | null, deps: readonly string[]) => [keys.generation(table), ...deps.map((d) => keys.dependency(table, d))]

  async function readChunks(table: string | null, id: string, meta: EntryMeta): Promise<Buffer | undefined> {
    const chunkKeys = Array.from({ length: meta.chunks }, (_, i) => keys.chunk(table, id, meta.version, i))
    const parts = await redis.mgetBuffer(...chunkKeys)
    // A writer replaced this version between our two round trips: report a miss, never a torn body.
    if (parts.some((p) => p === null)) return undefined
    return Buffer.concat(parts as Buffer[], meta.gzipSize)
  }

  return {
    async read(table, id, ifNoneMatch = '', options = {}) {
      const keyList = [keys.entry(table, id), ...generationKeys(table, options.deps ?? [])]
      const reply = await inSpan('redis.script dcCacheRead', { 'db.system': 'redis', 'dynacache.table': table ?? '*' }, () =>
        redis.dcCacheReadBuffer(keyList.length, ...keyList, ifNoneMatch, options.soft ? '1' : ''),
      )
      const generation = reply[0]!.toString()
      const how = reply[1]?.toString()
      if (!how) return { generation }
      const meta = JSON.parse(reply[2]!.toString()) as EntryMeta
      const invalidated = how === 's' ? { invalidated: true } : {}
      if (reply.length === 3) return { generation, entry: { meta }, ...invalidated }
      if (meta.chunks === 0) return { generation, entry: { meta, gzip: reply[3]! }, ...invalidated }
      const gzip = await readChunks(table, id, meta)
      return gzip ? { generation, entry: { meta, gzip }, ...invalidated } : { generation }
    },

    async write(table, id, generation, partial, gzip, previous, keepPastTtl = staleIfErrorTtl) {
      const chunks = gzip.length > chunkBytes ? Math.ceil(gzip.length / chunkBytes) : 0
      const meta: EntryMeta = { ...partial, gzipSize: gzip.length, chunks, version: randomBytes(6).toString('base64url') }
      const keepMs = (meta.ttl + keepPastTtl) * 1000
      const entryKey = keys.entry(table, id)
      // All keys share the table's hash tag, so this MULTI is atomic on Redis Cluster too.
      const tx = redis.multi()
      for (let i = 0; i < chunks; i++) {
        tx.set(keys.chunk(table, id, meta.version, i), gzip.subarray(i * chunkBytes, (i + 1) * chunkBytes), 'PX', keepMs)
      }
      tx.hset(entryKey, {
        // The table's own generation first: the purge job compares it alone.
        [ENTRY_FIELDS.generation]: generation.split(',', 1)[0]!,
        [ENTRY_FIELDS.dependencies]: generation,
        [ENTRY_FIELDS.etag]: meta.etag,
        [ENTRY_FIELDS.meta]: JSON.stringify(meta),
      })
      if (chunks === 0) tx.hset(entryKey, ENTRY_FIELDS.body, gzip)
      else tx.hdel(entryKey, ENTRY_FIELDS.body)
      tx.pexpire(entryKey, keepMs)
      for (let i = 0; i < (previous?.chunks ?? 0); i++) tx.unlink(keys.chunk(table, id, previous!.version, i))
      await tx.exec()
      return meta
    },

    async lock(table, id, ttlMs) {
      const token = randomBytes(8).toString('base64url')
      const ok = await redis.set(keys.lock(table, id), token, 'PX', ttlMs, 'NX')
      return ok === 'OK' ? token : null
    },

    async unlock(table, id, token) {
      await redis.dcUnlock(keys.lock(table, id), token)
    },

    async generations(table, deps) {
      const values = await redis.mget(...generationKeys(table, deps))
      return values.map((v) => v ?? '0').join(',')
    },

    async bump(table, deps, mode, announce = '') {
      if (deps.length === 0) return new Map()
      const depKeys = deps.map((d) => keys.dependency(table, d))
      const values = await redis.dcCacheBump(depKeys.length, ...depKeys, mode, dependencyTtl * 1000, invalidationChannel(keys.prefix), announce)
      return new Map(deps.map((d, i) => [d, values[i]!]))
    },
  }
}
