import t from 'tap'
import { createTablePolicy, parseApiKeys } from '../../src/shared/access.ts'

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
