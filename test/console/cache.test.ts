/** biome-ignore-all lint/performance/useDomNodeTextContent: Playwright's locator.innerText(), not the DOM property */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { DEMO_ORDERS_TABLE, DEMO_USERS_TABLE } from '../../src/local/demo-data.ts'
import { auth, build } from '../helpers/app.ts'
import { waitFor } from '../helpers/wait.ts'
import { KEYS, openConsole, screenshot, signIn, startConsoleStack } from './rig.ts'

// Generous: a browser, dynalite and a seed on a shared 2-core machine; every wait is for a condition.
t.setTimeout(300_000)
const stack = await startConsoleStack(t)
const { app, base } = stack

type Counts = { hits: number; misses: number; stale: number; errors: number }
const get = async <T>(url: string): Promise<T> => (await app.inject({ url, headers: auth('read') })).json() as T

// Some traffic before the page opens: misses, then hits, on two tables and the table list.
for (let round = 0; round < 3; round++) {
  await get('/tables')
  await get(`/tables/${DEMO_USERS_TABLE}/items?limit=10`)
  await get(`/tables/${DEMO_ORDERS_TABLE}/items?limit=10`)
  await get(`/tables/${DEMO_USERS_TABLE}/items/user-00003`)
}

t.test('GET /cache/stats/history: per-minute series that add up to /cache/stats', async (t) => {
  const history = await get<{
    step: number
    times: number[]
    totals: Counts & Record<string, number[]>
    tables: Record<string, Record<keyof Counts, number[]>>
  }>('/cache/stats/history?minutes=30')
  const stats = await get<{ totals: Counts; tables: Record<string, Counts> }>('/cache/stats')
  t.equal(history.step, 60)
  t.equal(history.times.length, 30)
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)
  for (const counter of ['hits', 'misses', 'stale', 'errors'] as const) {
    t.equal(sum(history.totals[counter] as unknown as number[]), stats.totals[counter], `total ${counter}`)
    t.equal(sum(history.tables[DEMO_USERS_TABLE]![counter]), stats.tables[DEMO_USERS_TABLE]![counter], `${DEMO_USERS_TABLE} ${counter}`)
  }
  t.ok(stats.totals.hits > 0 && stats.totals.misses > 0)
  t.equal((await app.inject({ url: '/cache/stats/history?minutes=0', headers: auth('read') })).statusCode, 400)
  t.equal((await app.inject({ url: '/cache/stats/history?minutes=1441', headers: auth('read') })).statusCode, 400)
  t.equal((await app.inject('/cache/stats/history')).statusCode, 401)
})

t.test('the cache page draws the history and shows the numbers of /cache/stats', async (t) => {
  const { page, problems } = await openConsole(stack)
  await signIn(stack, page, KEYS.admin, '#/cache')
  const chart = page.getByTestId('chart-counts').locator('canvas')
  await chart.waitFor()
  await page.getByTestId('total-hits').waitFor()

  // The hits line is drawn: pixels of its colour in the canvas, not only axes.
  const drawn = (await page.evaluate(`((canvas) => {
    const hex = getComputedStyle(document.documentElement).getPropertyValue('--c-hits').trim()
    const [r, g, b] = [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16))
    const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height)
    let coloured = 0
    let painted = 0
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] > 0) painted++
      if (Math.abs(data[i] - r) < 12 && Math.abs(data[i + 1] - g) < 12 && Math.abs(data[i + 2] - b) < 12 && data[i + 3] > 200) coloured++
    }
    return { coloured, painted, width: canvas.width }
  })(document.querySelector('[data-testid="chart-counts"] canvas'))`)) as { coloured: number; painted: number; width: number }
  t.ok(drawn.width > 300, `the chart has a width (${drawn.width})`)
  t.ok(drawn.painted > 0, 'the canvas is not empty')
  t.ok(drawn.coloured > 0, `the hits series is drawn (${drawn.coloured} pixels)`)

  const stats = await get<{ totals: Counts & { hitRate: number } }>('/cache/stats')
  const shown = async (id: string) => Number(await page.getByTestId(id).innerText())
  t.equal(await shown('total-hits'), stats.totals.hits, 'hits as /cache/stats')
  t.equal(await shown('total-misses'), stats.totals.misses, 'misses as /cache/stats')
  t.equal(await shown('total-stale'), stats.totals.stale, 'stale as /cache/stats')
  t.equal(await shown('total-errors'), stats.totals.errors, 'errors as /cache/stats')
  t.equal(await page.getByTestId('total-hit-rate').innerText(), `${(stats.totals.hitRate * 100).toFixed(1)}%`, 'hit rate')
  await screenshot(page, 'cache')

  // Dark theme, for people who prefer it (and the screenshot).
  await page.getByRole('button', { name: 'Theme: auto' }).click()
  await page.getByRole('button', { name: 'Theme: light' }).click()
  await page.getByRole('button', { name: 'Theme: dark' }).waitFor()
  // The label and the page's theme change in one commit (theme.tsx); polled from here all the same (the
  // console's CSP refuses waitForFunction's string predicates), so a busy machine cannot fail it.
  t.equal(await waitFor('the dark theme on the page', async () => (await page.evaluate('document.documentElement.dataset.theme')) === 'dark', 10_000), true)
  await page.getByTestId('chart-counts').locator('canvas').waitFor()
  await screenshot(page, 'cache-dark')

  // One table's series.
  await page.getByTestId('chart-table').selectOption(DEMO_USERS_TABLE)
  const title = page.getByText(`Answers per minute, ${DEMO_USERS_TABLE}`)
  await title.waitFor()
  t.equal(await title.count(), 1, 'a table of its own')
  t.same(problems, [])
  await page.context().close()
})

t.test('an admin invalidation makes the next item read in the browser a MISS', async (t) => {
  const { page, problems } = await openConsole(stack)
  await signIn(stack, page, KEYS.admin)
  const item = `${base}/console/#/tables/${DEMO_USERS_TABLE}/item?pk=user-00007`
  const outcome = async () => {
    await page.getByTestId('document-view').waitFor()
    return /X-Cache: (\w+)/.exec(await page.getByTestId('x-cache').innerText())?.[1]
  }
  await page.goto(item)
  t.equal(await outcome(), 'MISS', 'first read')
  await page.reload()
  t.equal(await outcome(), 'HIT', 'read again: from the cache')

  await page.goto(`${base}/console/#/tables/${DEMO_USERS_TABLE}`)
  await page.getByRole('button', { name: `Invalidate ${DEMO_USERS_TABLE}` }).click()
  await page.getByText(`Everything cached for ${DEMO_USERS_TABLE} is now invalid.`).waitFor()
  await screenshot(page, 'table-admin')
  // The console's own link: a hash change, no reload.
  await page.goto(item)
  t.equal(await outcome(), 'MISS', 'after the invalidation')
  await page.reload()
  t.equal(await outcome(), 'HIT', 'and cached again')

  // Warm-up is queued.
  await page.goto(`${base}/console/#/cache`)
  await page.getByTestId('admin-controls').getByRole('button', { name: 'Warm up' }).click()
  const queued = page.getByText(/Warm-up queued \(job /)
  await queued.waitFor()
  t.match(await queued.textContent(), /Warm-up queued \(job \S+/, 'warm-up queued from the cache page, with its job id')
  t.same(problems, [])
  await page.context().close()
})

t.test('a key of tenant acme restricted to one table: tenant and tables shown, only that table in the history', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dc-console-keys-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const key = 'acme-users-read-key-000000001'
  await writeFile(join(dir, 'keys.json'), JSON.stringify([{ key, scopes: ['read'], tenant: 'acme', tables: [DEMO_USERS_TABLE] }]))
  // A second API process on the same Redis prefix: the same statistics, keys from API_KEYS_FILE too.
  const other = await build(
    t,
    stack.services,
    { REDIS_PREFIX: app.keys.prefix, API_KEYS_FILE: join(dir, 'keys.json') },
    { console: { root: stack.consoleRoot } },
  )
  await other.listen({ port: 0, host: '127.0.0.1' })
  const otherBase = `http://127.0.0.1:${(other.server.address() as AddressInfo).port}`
  const headers = { authorization: `Bearer ${key}` }

  t.same((await other.inject({ url: '/auth/whoami', headers })).json(), { scopes: ['read'], tenant: 'acme', tables: [DEMO_USERS_TABLE] })
  const history = (await other.inject({ url: '/cache/stats/history?minutes=60', headers })).json() as {
    totals: Record<keyof Counts, number[]>
    tables: Record<string, unknown>
  }
  const stats = (await other.inject({ url: '/cache/stats', headers })).json() as { totals: Counts; tables: Record<string, Counts> }
  t.same(Object.keys(history.tables), [DEMO_USERS_TABLE], 'only its table')
  t.same(Object.keys(stats.tables), [DEMO_USERS_TABLE])
  t.equal(
    history.totals.hits.reduce((a, b) => a + b, 0),
    stats.totals.hits,
    'its totals add up to its /cache/stats',
  )

  const { page, problems } = await openConsole({ ...stack, app: other, base: otherBase })
  await signIn({ ...stack, app: other, base: otherBase }, page, key, '#/cache')
  t.equal(await page.getByTestId('tenant').innerText(), 'acme')
  t.match(await page.getByTestId('who').innerText(), `tables: ${DEMO_USERS_TABLE}`)
  await page.getByTestId('total-hits').waitFor()
  t.same(await page.getByTestId('chart-table').locator('option').allInnerTexts(), ['all tables', DEMO_USERS_TABLE])
  t.equal(Number(await page.getByTestId('total-hits').innerText()), stats.totals.hits)
  await screenshot(page, 'cache-tenant')
  t.same(problems, [])
  await page.context().close()
})
