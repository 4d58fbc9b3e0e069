import t from 'tap'
import { createPrincipal, createTablePolicy, DEFAULT_TENANT, parseApiKeys, tableGlobs } from '../../src/shared/access.ts'

t.test('API_KEYS parses into keys and scopes', async (t) => {
  const keys = parseApiKeys('aaaaaaaaaaaaaaaa:read,export;bbbbbbbbbbbbbbbb:admin')
  t.same([...keys.get('aaaaaaaaaaaaaaaa')!], ['read', 'export'])
  t.same([...keys.get('bbbbbbbbbbbbbbbb')!], ['admin'])
})

t.test('table globs: allowed by one, denied by none, and valid names only', async (t) => {
  const allowed = createTablePolicy('orders*,users', 'orders_secret*')
  t.ok(allowed('orders'))
  t.ok(allowed('orders-2024'))
  t.ok(allowed('users'))
  t.notOk(allowed('users2'))
  t.notOk(allowed('orders_secret_x'))
  t.notOk(allowed('payments'))
  const all = createTablePolicy('*', '')
  t.ok(all('anything.goes-here_1'))
  t.notOk(all('ab'), 'too short for DynamoDB')
  t.notOk(all('has space'), 'not a DynamoDB name')
  t.notOk(all('x'.repeat(256)), 'too long')
})

t.test('a principal sees the tables of its globs, or every table without any', async (t) => {
  const limited = createPrincipal({ id: 'k1', scopes: new Set(['read']), tenant: 'acme', tables: ['users', 'orders-*', 'users'] })
  t.equal(limited.tenant, 'acme')
  t.same(limited.tables, ['orders-*', 'users'], 'sorted and deduplicated: one table-list identity per glob set')
  t.ok(limited.canSee('orders-eu'))
  t.ok(limited.canSee('users'))
  t.notOk(limited.canSee('users2'), 'a name is matched whole')
  t.notOk(limited.canSee('payments'))
  t.notOk(limited.canSee('orders'), '`orders-*` needs the dash')
  const everything = createPrincipal({ id: 'k2', scopes: new Set(['admin']) })
  t.equal(everything.tenant, DEFAULT_TENANT, 'no tenant is the default tenant')
  t.equal(everything.tables, null)
  t.ok(everything.canSee('anything-at-all'))
  t.ok(Object.isFrozen(limited), 'a principal cannot be changed by a route')
})

t.test('table globs: ? is one character, regex characters are literal', async (t) => {
  const match = tableGlobs(['logs-202?', 'a.b'])
  t.ok(match('logs-2024'))
  t.notOk(match('logs-20245'))
  t.ok(match('a.b'))
  t.notOk(match('axb'), 'a dot is a dot')
  t.ok(tableGlobs(null)('whatever'))
})
