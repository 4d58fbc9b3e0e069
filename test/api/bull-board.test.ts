import type { AddressInfo } from 'node:net'
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import t from 'tap'
import { basicPassword, MAX_SHOWN_BYTES, readable } from '../../src/api/plugins/bull-board.ts'
import { build, KEYS } from '../helpers/app.ts'
import { launchBrowser, outputPath } from '../helpers/browser.ts'
import { startServices } from '../helpers/services.ts'

const services = await startServices(t)
const app = await build(t, services)
await app.listen({ port: 0, host: '127.0.0.1' })
const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

// Something to look at: one job waiting in a queue no worker serves here (added over a patient connection).
const connection = new Redis(services.redisUrl, { maxRetriesPerRequest: null })
const producer = new Queue('cache-maintenance', { connection, prefix: app.keys.queuePrefix })
await producer.add('cache-maintenance', { kind: 'purge', table: 'orders' })
t.teardown(async () => {
  await producer.close()
  connection.disconnect()
})

t.test('401 with a Basic challenge without an admin key; 200 with one, any user name', async (t) => {
  const cases: Array<[string, Record<string, string>]> = [
    ['no credentials', {}],
    ['wrong password', { authorization: basic('admin', 'not-a-key-at-all-000000') }],
    ['a read key', { authorization: basic('admin', KEYS.read) }],
    ['an admin key as Bearer', { authorization: `Bearer ${KEYS.admin}` }],
    ['no colon', { authorization: `Basic ${Buffer.from(KEYS.admin).toString('base64')}` }],
  ]
  for (const url of ['/admin/queues', '/admin/queues/api/queues']) {
    for (const [name, headers] of cases) {
      const res = await app.inject({ url, headers })
      t.equal(res.statusCode, 401, `${url}: ${name}`)
      t.match(res.headers['www-authenticate'], /^Basic realm="dynacache admin"/)
      t.equal(res.json().code, 'DC_ERR_UNAUTHORIZED')
    }
    const ok = await app.inject({ url, headers: { authorization: basic('anyone', KEYS.admin) } })
    t.equal(ok.statusCode, 200, `${url} with the admin key`)
  }
  const api = await app.inject({ url: '/admin/queues/api/queues', headers: { authorization: basic('ops', KEYS.admin) } })
  const names = (api.json() as { queues: Array<{ name: string }> }).queues.map((q) => q.name).sort()
  t.same(names, [...app.queues.names].sort(), 'every queue is on the board')
})

t.test('static assets and the API behind the board need the key too', async (t) => {
  const page = await app.inject({ url: '/admin/queues', headers: { authorization: basic('a', KEYS.admin) } })
  const asset = /src="(static\/js\/[^"]+)"/.exec(page.body)?.[1]
  t.ok(asset, 'the page loads a script')
  t.equal((await app.inject(`/admin/queues/${asset}`)).statusCode, 401)
  t.equal((await app.inject({ url: `/admin/queues/${asset}`, headers: { authorization: basic('a', KEYS.admin) } })).statusCode, 200)
})

t.test('job data is shown as is when small and cut when large', async (t) => {
  t.same(readable({ table: 'orders' }), { table: 'orders' })
  const big = readable({ blob: 'x'.repeat(MAX_SHOWN_BYTES * 2) }) as { truncated: boolean; preview: string }
  t.equal(big.truncated, true)
  t.equal(big.preview.length, MAX_SHOWN_BYTES)
  t.equal(basicPassword(basic('u', 'p:with:colons')), 'p:with:colons')
  t.equal(basicPassword('Bearer x'), undefined)
})

t.test('Bull Board is not in the OpenAPI document', async (t) => {
  const doc = (await app.inject('/openapi.json')).json() as { paths: Record<string, unknown> }
  t.same(
    Object.keys(doc.paths).filter((p) => p.startsWith('/admin')),
    [],
  )
})

t.test('a real browser signs in with the admin key and sees every queue', async (t) => {
  const browser = await launchBrowser(t)
  const context = await browser.newContext({ httpCredentials: { username: 'ops', password: KEYS.admin } })
  const page = await context.newPage()
  const problems: string[] = []
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy/i.test(msg.text())) problems.push(msg.text())
  })
  const response = await page.goto(`${base}/admin/queues`, { waitUntil: 'domcontentloaded' })
  t.equal(response?.status(), 200)
  t.match(response?.headers()['content-security-policy'], /default-src 'self'/, 'helmet CSP is on the board too')
  for (const name of app.queues.names) {
    await page.getByText(name, { exact: true }).first().waitFor({ timeout: 15_000 })
    t.pass(`the board shows queue ${name}`)
  }
  // The waiting job of the queue, its data readable on the page.
  await page.goto(`${base}/admin/queues/queue/cache-maintenance?status=waiting`, { waitUntil: 'domcontentloaded' })
  await page
    .getByText(/"?table"?:\s*"orders"/)
    .first()
    .waitFor({ timeout: 15_000 })
  t.pass('the waiting job shows its data')
  await page.screenshot({ path: await outputPath('bull-board.png'), fullPage: true })
  t.same(problems, [], 'no script errors and nothing blocked by CSP')

  // Headless Chromium cannot show the sign-in prompt, so a 401 challenge ends the navigation.
  const anonymous = await browser.newContext()
  const refused = await (await anonymous.newPage()).goto(`${base}/admin/queues`).then(
    (res) => `status ${res?.status()}`,
    (err: Error) => err.message,
  )
  t.match(refused, /ERR_INVALID_AUTH_CREDENTIALS|status 401/, 'without credentials the browser is refused')
  await anonymous.close()
  await context.close()
})
