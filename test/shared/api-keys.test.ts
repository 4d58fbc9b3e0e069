import { createHash } from 'node:crypto'
import t from 'tap'
import { DEFAULT_TENANT } from '../../src/shared/access.ts'
import { loadApiKeys, parseApiKeysFile } from '../../src/shared/api-keys.ts'
import { ConfigError } from '../../src/shared/config.ts'

const KEY = 'a-key-of-tenant-acme-0001'
const sha256 = (s: string) => createHash('sha256').update(s).digest()

t.test('file entries: key or sha256, scopes, tenant and tables', async (t) => {
  const [plain, hashed, bare] = parseApiKeysFile(
    JSON.stringify([
      { key: KEY, scopes: ['read', 'export'], tenant: 'acme', tables: ['orders-*'] },
      { sha256: sha256('another-key-of-globex-01').toString('hex').toUpperCase(), scopes: ['admin'], tenant: 'globex' },
      { key: 'a-key-of-no-tenant-00001', scopes: ['write'] },
    ]),
  )
  t.ok(plain!.digest.equals(sha256(KEY)), 'a key is kept as its SHA-256 only')
  t.same([...plain!.principal.scopes], ['read', 'export'])
  t.equal(plain!.principal.tenant, 'acme')
  t.same(plain!.principal.tables, ['orders-*'])
  t.equal(plain!.principal.id, sha256(KEY).toString('hex').slice(0, 12), 'the id is a prefix of the hash, as for API_KEYS')
  t.ok(hashed!.digest.equals(sha256('another-key-of-globex-01')), 'sha256 in any case')
  t.equal(hashed!.principal.tables, null, 'no tables: every table')
  t.equal(bare!.principal.tenant, DEFAULT_TENANT)
})

t.test('API_KEYS and API_KEYS_FILE together; either alone; neither is a config error', async (t) => {
  const file = JSON.stringify([{ key: KEY, scopes: ['read'], tenant: 'acme' }])
  const both = loadApiKeys({ API_KEYS: 'bbbbbbbbbbbbbbbb:admin', API_KEYS_FILE: '/keys.json' }, () => file)
  t.same(
    both.map((e) => e.principal.tenant),
    [DEFAULT_TENANT, 'acme'],
  )
  t.equal(loadApiKeys({ API_KEYS_FILE: '/keys.json' }, () => file).length, 1)
  t.equal(loadApiKeys({ API_KEYS: 'bbbbbbbbbbbbbbbb:admin' }).length, 1)
  t.throws(() => loadApiKeys({}), ConfigError)
})

t.test('every refusal names API_KEYS_FILE and the entry, and never holds a key', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ keys: [] }, /^API_KEYS_FILE is invalid: expected a non-empty JSON list/],
    [[`${KEY}`], /entry 0: expected an object/],
    [
      [
        { key: KEY, scopes: ['read'] },
        { key: KEY, scopes: 'read' },
      ],
      /entry 1: "scopes"/,
    ],
    [[{ key: KEY, scopes: [] }], /entry 0: "scopes"/],
    [[{ scopes: ['read'] }], /entry 0: expected exactly one of "key" and "sha256"/],
    [[{ key: `${KEY} x`, scopes: ['read'] }], /entry 0: "key" must be/],
    [[{ sha256: KEY, scopes: ['read'] }], /entry 0: "sha256" must be/],
    [[{ key: KEY, scopes: ['read'], tenant: '' }], /entry 0: "tenant"/],
    [[{ key: KEY, scopes: ['read'], tables: ['bad name'] }], /entry 0: "tables"/],
    [[{ key: KEY, scopes: ['read'], [KEY]: 1 }], /entry 0: unknown field/],
  ]
  for (const [content, message] of cases) {
    const err = t.throws(() => parseApiKeysFile(JSON.stringify(content))) as unknown as Error
    t.type(err, ConfigError)
    t.match(err.message, message)
    t.notOk(err.message.includes(KEY), `${message}: no key in the message`)
  }
  const notJson = t.throws(() => parseApiKeysFile(`[{"key": "${KEY}", oops`)) as unknown as Error
  t.match(notJson.message, /^API_KEYS_FILE is invalid: .*not valid JSON$/)
  t.notOk(notJson.message.includes(KEY), "JSON.parse's message, which quotes the text, is not passed on")
})

t.test('NODE_ENV=production refuses the published dev keys in the file, by value or by hash', async (t) => {
  const devKey = 'dev-admin-key-change-me'
  for (const entry of [
    { key: devKey, scopes: ['admin'] },
    { sha256: sha256(devKey).toString('hex'), scopes: ['admin'] },
  ]) {
    const file = JSON.stringify([{ key: KEY, scopes: ['read'] }, entry])
    const err = (() => {
      try {
        loadApiKeys({ API_KEYS_FILE: '/keys.json', NODE_ENV: 'production' }, () => file)
      } catch (e) {
        return e as Error
      }
    })()
    t.type(err, ConfigError)
    t.match(err?.message, /^API_KEYS_FILE is invalid: entry 1 is a well-known development key/)
    t.notMatch(err?.message, devKey)
    t.equal(loadApiKeys({ API_KEYS_FILE: '/keys.json', NODE_ENV: 'local' }, () => file).length, 2, 'accepted outside production')
  }
})
