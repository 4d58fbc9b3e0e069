import { createHmac, timingSafeEqual } from 'node:crypto'
import { DEFAULT_TENANT } from '../access.ts'

/**
 * Signed, expiring download tokens: `<expiry, epoch seconds, base36>.<HMAC-SHA256>` over the export
 * id, its tenant and the expiry with CURSOR_SECRET. The signed text starts with its own label, so a
 * token can never pass for a cursor (or the reverse) even though both use the same secret.
 */
export interface DownloadTokens {
  /** A token for one export of one tenant, valid for the configured time from `now`. */
  sign(exportId: string, tenant: string, now?: number): { token: string; expiresAt: number }
  /** True only for an untampered, unexpired token issued for this export of this tenant. */
  verify(token: string, exportId: string, tenant: string, now?: number): boolean
}

const TOKEN = /^([0-9a-z]{1,11})\.([A-Za-z0-9_-]{43})$/

export function createDownloadTokens(secret: string, ttlSeconds: number): DownloadTokens {
  // The default tenant signs the text tokens had before tenants existed, so links already mailed keep
  // working; any other tenant adds a field, and no id or tenant holds \u0000, so the two never coincide.
  const mac = (exportId: string, tenant: string, expiry: string) =>
    createHmac('sha256', secret)
      .update(
        tenant === DEFAULT_TENANT ? `dynacache-download\u0000${exportId}\u0000${expiry}` : `dynacache-download\u0000${exportId}\u0000${tenant}\u0000${expiry}`,
      )
      .digest()

  return {
    sign(exportId, tenant, now = Date.now()) {
      const expiresAt = Math.floor(now / 1000) + ttlSeconds
      const expiry = expiresAt.toString(36)
      return { token: `${expiry}.${mac(exportId, tenant, expiry).toString('base64url')}`, expiresAt: expiresAt * 1000 }
    },

    verify(token, exportId, tenant, now = Date.now()) {
      const m = TOKEN.exec(token)
      if (!m) return false
      const [, expiry, signature] = m as unknown as [string, string, string]
      const presented = Buffer.from(signature, 'base64url')
      const expected = mac(exportId, tenant, expiry)
      if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return false
      return Number.parseInt(expiry, 36) * 1000 > now
    },
  }
}
