import t from 'tap'
import { DEFAULT_TENANT } from '../../../src/shared/access.ts'
import { createCursorCodec } from '../../../src/shared/cursor.ts'
import { createDownloadTokens } from '../../../src/shared/exports/tokens.ts'

const SECRET = 'test-cursor-secret-0123456789'
const tokens = createDownloadTokens(SECRET, 3600)

t.test('a token opens its own export until it expires', async (t) => {
  const now = Date.UTC(2030, 0, 1)
  const { token, expiresAt } = tokens.sign('exp-1', DEFAULT_TENANT, now)
  t.equal(expiresAt, now + 3600_000)
  t.ok(tokens.verify(token, 'exp-1', DEFAULT_TENANT, now), 'valid at once')
  t.ok(tokens.verify(token, 'exp-1', DEFAULT_TENANT, now + 3599_000), 'valid just before expiry')
  t.notOk(tokens.verify(token, 'exp-1', DEFAULT_TENANT, now + 3600_000), 'expired at the expiry')
  t.notOk(tokens.verify(token, 'exp-2', DEFAULT_TENANT, now), 'not for another export')
  t.notOk(createDownloadTokens('another-secret-0123456789', 3600).verify(token, 'exp-1', DEFAULT_TENANT, now), 'not with another secret')
})

t.test('a tampered token is refused', async (t) => {
  const now = Date.now()
  const { token } = tokens.sign('exp-1', DEFAULT_TENANT, now)
  const [expiry, signature] = token.split('.') as [string, string]
  const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1)
  t.notOk(tokens.verify(`${expiry}.${flip(signature, 5)}`, 'exp-1', DEFAULT_TENANT, now), 'signature changed')
  const later = (Number.parseInt(expiry, 36) + 86400 * 365).toString(36)
  t.notOk(tokens.verify(`${later}.${signature}`, 'exp-1', DEFAULT_TENANT, now), 'expiry pushed out')
  for (const bad of ['', '.', 'abc', `${expiry}.`, `.${signature}`, `${token}x`, `${expiry}.${signature}.x`, 'ZZ.'.padEnd(60, 'a')]) {
    t.notOk(tokens.verify(bad, 'exp-1', DEFAULT_TENANT, now), `malformed: ${JSON.stringify(bad.slice(0, 20))}`)
  }
})

t.test('a pagination cursor signed with the same secret is not a download token', async (t) => {
  const cursor = createCursorCodec(SECRET).encode({ m: { S: 'exp-1' } }, 'exp-1')
  t.notOk(tokens.verify(cursor, 'exp-1', DEFAULT_TENANT))
})

t.test("a token is bound to its export's tenant", async (t) => {
  const now = Date.UTC(2030, 0, 1)
  const acme = tokens.sign('exp-1', 'acme', now).token
  t.ok(tokens.verify(acme, 'exp-1', 'acme', now))
  t.notOk(tokens.verify(acme, 'exp-1', 'globex', now), 'not for the same id in another tenant')
  t.notOk(tokens.verify(acme, 'exp-1', DEFAULT_TENANT, now), 'not for the default tenant')
  t.notOk(tokens.verify(acme, 'exp-2', 'acme', now), 'not for another export of the tenant')
  const fallback = tokens.sign('exp-1', DEFAULT_TENANT, now).token
  t.notOk(tokens.verify(fallback, 'exp-1', 'acme', now), "the default tenant's token opens no other tenant's export")
})

t.test("the default tenant's tokens are the ones signed before tenants existed (links already mailed keep working)", async (t) => {
  const { createHmac } = await import('node:crypto')
  const expiry = (Math.floor(Date.UTC(2030, 0, 1) / 1000) + 3600).toString(36)
  const legacy = `${expiry}.${createHmac('sha256', SECRET).update(`dynacache-download\u0000exp-1\u0000${expiry}`).digest('base64url')}`
  t.ok(tokens.verify(legacy, 'exp-1', DEFAULT_TENANT, Date.UTC(2030, 0, 1)))
  t.notOk(tokens.verify(legacy, 'exp-1', 'acme', Date.UTC(2030, 0, 1)))
})
