/**
 * How a cache entry is laid out in Redis, shared by the store, its Lua script and the purge job.
 * An entry is a hash: `g` its table's generation it was written under (for the purge job), `d` the
 * composite of every generation it depends on (docs/coherence.md), `e` ETag, `m` metadata JSON, `b`
 * the gzip body when it fits in one chunk. Larger bodies live in chunk keys named by `m.version`.
 */
export const ENTRY_FIELDS = { generation: 'g', dependencies: 'd', etag: 'e', meta: 'm', body: 'b' } as const

export interface EntryMeta {
  /** ms since epoch when the value was read from DynamoDB */
  createdAt: number
  /** seconds the entry is fresh */
  ttl: number
  etag: string
  /** HTTP status the body answers with (200, or 404 for a cached miss) */
  status: number
  /** uncompressed body bytes */
  size: number
  /** stored gzip bytes */
  gzipSize: number
  /** 0 when the body is inline in the hash, else how many chunk keys hold it */
  chunks: number
  /** names this write's chunk keys, so a rewrite never mixes chunks of two versions */
  version: string
}
