import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { RedisKeys } from '../redis/keys.ts'
import { defineScripts } from '../redis/scripts.ts'
import { inSpan } from '../telemetry/tracing.ts'
import { ENTRY_FIELDS, type EntryMeta } from './entry-layout.ts'

/** What a read of an entry found. */
export interface StoredEntry {
  meta: EntryMeta
  /** The gzip body; absent when the caller's ETag matched (a 304 needs no body). */
  gzip?: Buffer
}

export interface ReadResult {
  /** The table's current generation, to tag a write that follows this read. */
  generation: string
  entry?: StoredEntry
}

/** The Redis side of the cache: entries, generations, chunking. Knows nothing of HTTP or DynamoDB. */
export interface CacheStore {
  /** One round trip for inline bodies, two for chunked ones. `ifNoneMatch` skips the body on a match. */
  read(table: string | null, id: string, ifNoneMatch?: string): Promise<ReadResult>
  /**
   * Writes an entry atomically under `generation`, kept `staleIfErrorTtl` seconds past its ttl (the
   * store's default when absent); removes the chunks of `previous` if it had any.
   */
  write(table: string | null, id: string, generation: string, meta: Omit<EntryMeta, 'chunks' | 'version' | 'gzipSize'>, gzip: Buffer, previous?: EntryMeta, staleIfErrorTtl?: number): Promise<EntryMeta>
  /** Takes the fill lock for an entry; returns a token to release it with, or null if another holds it. */
  lock(table: string | null, id: string, ttlMs: number): Promise<string | null>
  unlock(table: string | null, id: string, token: string): Promise<void>
}

export interface CacheStoreOptions {
  redis: Redis
  keys: RedisKeys
  chunkBytes: number
  /** Seconds past its ttl an entry is kept for stale-if-error. */
  staleIfErrorTtl: number
}

export function createCacheStore({ redis, keys, chunkBytes, staleIfErrorTtl }: CacheStoreOptions): CacheStore {
  defineScripts(redis)

  async function readChunks(table: string | null, id: string, meta: EntryMeta): Promise<Buffer | undefined> {
    const chunkKeys = Array.from({ length: meta.chunks }, (_, i) => keys.chunk(table, id, meta.version, i))
    const parts = await redis.mgetBuffer(...chunkKeys)
    // A writer replaced this version between our two round trips: report a miss, never a torn body.
    if (parts.some((p) => p === null)) return undefined
    return Buffer.concat(parts as Buffer[], meta.gzipSize)
  }

  return {
    async read(table, id, ifNoneMatch = '') {
      const reply = await inSpan('redis.script dcCacheRead', { 'db.system': 'redis', 'dynacache.table': table ?? '*' }, () =>
        redis.dcCacheReadBuffer(keys.generation(table), keys.entry(table, id), ifNoneMatch),
      )
      const generation = reply[0]!.toString()
      if (reply.length < 2 || !reply[1]) return { generation }
      const meta = JSON.parse(reply[1].toString()) as EntryMeta
      if (reply.length === 2) return { generation, entry: { meta } }
      if (meta.chunks === 0) return { generation, entry: { meta, gzip: reply[2]! } }
      const gzip = await readChunks(table, id, meta)
      return gzip ? { generation, entry: { meta, gzip } } : { generation }
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
        [ENTRY_FIELDS.generation]: generation,
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
  }
}
