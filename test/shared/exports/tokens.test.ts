import t from 'tap'
import { createCursorCodec } from '../../../src/shared/cursor.ts'
import { createDownloadTokens } from '../../../src/shared/exports/tokens.ts'

const SECRET = 'test-cursor-secret-0123456789'
const tokens = createDownloadTokens(SECRET, 3600)

t.test('a token opens its own export until it expires', async (t) => {
  const now = Date.UTC(2030, 0, 1)
  const { token, expiresAt } = tokens.sign('exp-1', now)
  t.equal(expiresAt, now + 3600_000)
  t.ok(tokens.verify(token, 'exp-1', now), 'valid at once')
  t.ok(tokens.verify(token, 'exp-1', now + 3599_000), 'valid just before expiry')
  t.notOk(tokens.verify(token, 'exp-1', now + 3600_000), 'expired at the expiry')
  t.notOk(tokens.verify(token, 'exp-2', now), 'not for another export')
  t.notOk(createDownloadTokens('another-secret-0123456789', 3600).verify(token, 'exp-1', now), 'not with another secret')
})

t.test('a tampered token is refused', async (t) => {
  const now = Date.now()
  const { token } = tokens.sign('exp-1', now)
  const [expiry, signature] = token.split('.') as [string, string]
  const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1)
  t.notOk(tokens.verify(`${expiry}.${flip(signature, 5)}`, 'exp-1', now), 'signature changed')
  const later = (Number.parseInt(expiry, 36) + 86400 * 365).toString(36)
  t.notOk(tokens.verify(`${later}.${signature}`, 'exp-1', now), 'expiry pushed out')
  for (const bad of ['', '.', 'abc', `${expiry}.`, `.${signature}`, `${token}x`, `${expiry}.${signature}.x`, 'ZZ.'.padEnd(60, 'a')]) {
    t.notOk(tokens.verify(bad, 'exp-1', now), `malformed: ${JSON.stringify(bad.slice(0, 20))}`)
  }
})

t.test('a pagination cursor signed with the same secret is not a download token', async (t) => {
  const cursor = createCursorCodec(SECRET).encode({ m: { S: 'exp-1' } }, 'exp-1')
  t.notOk(tokens.verify(cursor, 'exp-1'))
})
