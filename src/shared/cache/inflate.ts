import { promisify } from 'node:util'
import { gunzip, gunzipSync } from 'node:zlib'
import { LRUCache } from 'lru-cache'

const gunzipAsync = promisify(gunzip)
/** Below this, inflating inline is cheaper than a trip to the thread pool. */
const INLINE_GUNZIP_BYTES = 64 * 1024
/** Memory for inflated bodies kept for clients without gzip (bytes, gzip copy included). */
const INFLATED_MAX_BYTES = 16 * 1024 * 1024
/** A body larger than this (inflated) is inflated each time rather than kept. */
const INFLATED_ENTRY_MAX_BYTES = 2 * 1024 * 1024

interface Inflated {
  /** A copy of the gzip bytes this was inflated from (never a view pinning a larger socket buffer). */
  gzip: Buffer
  plain: Buffer
}

/**
 * Bodies inflated recently, by ETag. Content-addressed: a kept body is used only when the gzip bytes
 * are the very same (compared in full), and the same gzip bytes always inflate to the same body, so it
 * can never answer with another entry's body, another table's included, whatever the ETags say. With the
 * near cache off, every hit reads fresh gzip bytes from Redis; without this a plain client made every
 * hit allocate the whole inflated page, and the API went GC-bound.
 */
const recent = new LRUCache<string, Inflated>({
  maxSize: INFLATED_MAX_BYTES,
  sizeCalculation: (v, etag) => v.gzip.length + v.plain.length + etag.length + 64,
})

async function inflateNow(gzip: Buffer): Promise<Buffer> {
  return gzip.length < INLINE_GUNZIP_BYTES ? gunzipSync(gzip) : gunzipAsync(gzip)
}

/**
 * A stored gzip body, inflated for a client that does not take gzip. With `etag`, a body inflated
 * recently from the same bytes is answered again without inflating (and without allocating).
 */
export async function inflate(gzip: Buffer, etag?: string): Promise<Buffer> {
  if (etag === undefined) return inflateNow(gzip)
  const kept = recent.get(etag)
  if (kept?.gzip.equals(gzip)) return kept.plain
  const plain = await inflateNow(gzip)
  if (plain.length <= INFLATED_ENTRY_MAX_BYTES) recent.set(etag, { gzip: Buffer.from(gzip), plain })
  return plain
}
