import { createHash } from 'node:crypto'
import t from 'tap'
import { createKeyCheck, VERIFIED_KEYS_MAX } from '../../../src/api/plugins/auth.ts'
import { parseApiKeysFile } from '../../../src/shared/api-keys.ts'

const READ = 'auth-test-read-key-0001'
const ADMIN = 'auth-test-admin-key-002'
const keys = parseApiKeysFile(
  JSON.stringify([
    { key: READ, scopes: ['read'] },
    { key: ADMIN, scopes: ['admin'] },
  ]),
)

/** The check with a counting sha256, to see when a presented key is hashed. */
function counted() {
  let hashes = 0
  const check = createKeyCheck(keys, (s) => {
    hashes++
    return createHash('sha256').update(s).digest()
  })
  return { check, hashes: () => hashes }
}

t.test('a known key is hashed once, then answered from the map of verified keys', async (t) => {
  const { check, hashes } = counted()
  const first = check(READ)
  t.ok(first?.scopes.has('read'))
  for (let i = 0; i < 100; i++) t.equal(check(READ), first)
  t.equal(hashes(), 1, 'one sha256 for 101 requests with the same key')
  t.ok(check(ADMIN)?.scopes.has('admin'))
  t.equal(hashes(), 2)
})

t.test('a wrong key is hashed and compared every time, and never remembered', async (t) => {
  const { check, hashes } = counted()
  for (let i = 0; i < 50; i++) t.equal(check(`${READ}x`), undefined)
  t.equal(hashes(), 50, 'every wrong key goes through the constant-time comparison')
  // A wrong key that shares a prefix with a real one and the real one itself still resolve correctly.
  t.equal(check(READ.slice(0, -1)), undefined)
  t.ok(check(READ))
})

t.test('many distinct wrong keys do not fill the map: the first real key is still remembered', async (t) => {
  const { check, hashes } = counted()
  for (let i = 0; i < VERIFIED_KEYS_MAX + 10; i++) check(`wrong-key-${i.toString().padStart(16, '0')}`)
  const before = hashes()
  t.ok(check(READ))
  t.ok(check(READ))
  t.equal(hashes() - before, 1, 'the real key was remembered after the flood of wrong ones')
})
