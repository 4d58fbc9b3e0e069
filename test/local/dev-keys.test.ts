import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { apiKeysSpec, loadOrCreateDevKeys } from '../../src/local/dev-keys.ts'
import { parseApiKeys } from '../../src/shared/access.ts'
import { loadConfig } from '../../src/shared/config.ts'

t.test('generated on the first start, saved owner-only, reused on the next', async (t) => {
  const file = join(t.testdir(), '.data', 'dev-keys.json')
  const first = await loadOrCreateDevKeys(file)
  t.equal(first.generated, true)
  t.equal((await stat(file)).mode & 0o777, 0o600)
  t.same(JSON.parse(await readFile(file, 'utf8')), first.devKeys)

  const second = await loadOrCreateDevKeys(file)
  t.equal(second.generated, false)
  t.same(second.devKeys, first.devKeys)
})

t.test('the keys are valid API_KEYS and CURSOR_SECRET; the admin key has every scope', async (t) => {
  const { devKeys } = await loadOrCreateDevKeys(join(t.testdir(), 'keys.json'))
  const spec = apiKeysSpec(devKeys)
  const config = loadConfig({ REDIS_URL: 'redis://127.0.0.1:1', API_KEYS: spec, CURSOR_SECRET: devKeys.cursorSecret }, 'api')
  t.equal(config.API_KEYS, spec)
  const keys = parseApiKeys(spec)
  t.same([...keys.get(devKeys.keys.read)!], ['read'])
  t.same([...keys.get(devKeys.keys.admin)!].sort(), ['admin', 'export', 'read', 'write'])
  t.equal(new Set(Object.values(devKeys.keys)).size, 4, 'four different keys')
})

t.test('a damaged file: good entries kept, bad ones regenerated', async (t) => {
  const dir = t.testdir()
  const file = join(dir, 'keys.json')
  await writeFile(file, JSON.stringify({ keys: { read: 'my-own-read-key-0001', write: 'short' }, cursorSecret: 42 }))
  const { devKeys, generated } = await loadOrCreateDevKeys(file)
  t.equal(generated, true)
  t.equal(devKeys.keys.read, 'my-own-read-key-0001')
  t.not(devKeys.keys.write, 'short')
  t.ok(devKeys.cursorSecret.length >= 16)

  await writeFile(file, '{ not json')
  t.equal((await loadOrCreateDevKeys(file)).generated, true, 'unreadable JSON starts afresh')
})
