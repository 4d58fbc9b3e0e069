import { promisify } from 'node:util'
import { gunzip, gunzipSync } from 'node:zlib'

const gunzipAsync = promisify(gunzip)
/** Below this, inflating inline is cheaper than a trip to the thread pool. */
const INLINE_GUNZIP_BYTES = 64 * 1024

/** A stored gzip body, inflated for a client that does not take gzip. */
export async function inflate(gzip: Buffer): Promise<Buffer> {
  return gzip.length < INLINE_GUNZIP_BYTES ? gunzipSync(gzip) : gunzipAsync(gzip)
}
