/** biome-ignore-all lint/performance/useDomNodeTextContent: Playwright's locator.innerText(), not the DOM property */
import pino from 'pino'
import t from 'tap'
import { CONSOLE_CSP } from '../../src/api/plugins/console.ts'
import { DEMO_ORDERS_TABLE, DEMO_USERS_TABLE, PRECISE_NUMBER } from '../../src/local/demo-data.ts'
import { auth, build } from '../helpers/app.ts'
import { waitFor } from '../helpers/wait.ts'
import { KEYS, openConsole, screenshot, signIn, startConsoleStack } from './rig.ts'

// Generous: a browser, dynalite and a seed on a shared 2-core machine; every wait is for a condition.
t.setTimeout(300_000)
const stack = await startConsoleStack(t)
const { app, base } = stack

/** The API's own answer, for comparison with what the page shows. */
async function apiJson<T>(url: string): Promise<T> {
  const res = await app.inject({ url, headers: auth('read') })
  if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body}`)
  return res.json() as T
}

t.test('the console is served: cached assets, no-cache page, its own strict CSP', async (t) => {
  const page = await app.inject('/console/')
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.equal(page.headers['cache-control'], 'no-cache', 'the page is revalidated every time')
  t.equal(page.headers['content-security-policy'], CONSOLE_CSP)
  t.match(CONSOLE_CSP, /script-src 'self'(;|$)/)
  t.notMatch(CONSOLE_CSP, /unsafe-inline|unsafe-eval/)
  t.notMatch(page.body, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script')
  t.equal((await app.inject('/console')).statusCode, 200, '/console without the slash')
  const assets = [...page.body.matchAll(/(?:src|href)="(\/console\/assets\/[^"]+)"/g)].map((m) => m[1]!)
  t.ok(assets.length >= 2, 'a script and a stylesheet')
  for (const asset of assets) {
    const res = await app.inject(asset)
    t.equal(res.statusCode, 200, asset)
    t.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable', `${asset} is cached for a year`)
    const br = await app.inject({ url: asset, headers: { 'accept-encoding': 'br, gzip' } })
    t.equal(br.headers['content-encoding'], 'br', `${asset} compressed at build time`)
    t.ok(br.rawPayload.length < res.rawPayload.length / 2, `${asset}: ${br.rawPayload.length} of ${res.rawPayload.length} bytes`)
    t.match(br.headers.vary, /accept-encoding/i)
    t.equal(br.headers['cache-control'], res.headers['cache-control'])
  }
  t.notMatch(page.body, /https?:\/\//, 'no absolute URL in the page: nothing from a CDN')
  t.equal((await app.inject('/console/nope.js')).statusCode, 404)
  t.equal((await app.inject('/console/../package.json')).statusCode, 404)
})

t.test('without a built console the API works: one log line, no route', async (t) => {
  const lines: string[] = []
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) })
  const bare = await build(t, stack.services, {}, { console: { root: '/nonexistent/console' }, logger })
  t.equal((await bare.inject('/console/')).statusCode, 404)
  t.equal((await bare.inject('/health')).statusCode, 200)
  t.equal((await bare.inject({ url: '/auth/whoami', headers: auth('read') })).statusCode, 200)
  t.equal(lines.filter((l) => l.includes('"console.absent"')).length, 1, 'said once')
})

t.test('whoami answers any valid key with its scopes and tenant, 401 otherwise', async (t) => {
  for (const scope of ['read', 'write', 'export', 'admin'] as const) {
    const res = await app.inject({ url: '/auth/whoami', headers: auth(scope) })
    t.equal(res.statusCode, 200, scope)
    t.same(res.json(), { scopes: [scope], tenant: 'default', tables: null })
  }
  const wrong = await app.inject({ url: '/auth/whoami', headers: { authorization: 'Bearer not-a-key-000000000000' } })
  t.same([wrong.statusCode, wrong.json().code], [401, 'DC_ERR_UNAUTHORIZED'])
  t.equal((await app.inject('/auth/whoami')).statusCode, 401)
})

t.test('a read key browses a demo table, pages forward and back, opens the 38-digit item, runs a query', async (t) => {
  const { page, problems } = await openConsole(stack)
  await signIn(stack, page, KEYS.read)
  t.match(await page.getByTestId('scopes').innerText(), /read/)
  t.equal(await page.getByTestId('tenant').innerText(), 'default')

  // Tables, with their statistics.
  await page.getByTestId('tables').getByRole('link', { name: DEMO_USERS_TABLE }).waitFor()
  await screenshot(page, 'tables')
  await page.getByRole('link', { name: DEMO_USERS_TABLE }).click()
  await page.getByTestId('table-details').getByText('userId (S)').waitFor()
  t.match(await page.getByTestId('table-details').innerText(), /byEmail GSI: email \(S\)/, 'indexes with their keys')

  // Page 1 of the scan is the API's page 1, then page 2, and back.
  const limit = 25
  await page.getByLabel('Page size').selectOption(String(limit))
  const first = await apiJson<{ items: Array<{ userId: string }>; cursor: string }>(`/tables/${DEMO_USERS_TABLE}/items?limit=${limit}`)
  const second = await apiJson<{ items: Array<{ userId: string }> }>(
    `/tables/${DEMO_USERS_TABLE}/items?limit=${limit}&cursor=${encodeURIComponent(first.cursor)}`,
  )
  const shownIds = async () => {
    const grid = page.getByTestId('items')
    await grid.waitFor()
    return grid.locator('tbody tr td:nth-child(2)').allInnerTexts()
  }
  const expectPage = async (n: number, ids: string[], what: string) => {
    await page.getByTestId('page-number').getByText(`Page ${n}`).waitFor()
    await page
      .getByTestId('items')
      .locator('tbody tr')
      .nth(ids.length - 1)
      .waitFor()
    // The new page is on screen once its first id and its row count are. Polled from here: the console's
    // CSP (no unsafe-eval) refuses waitForFunction's string predicates, and the test has no DOM types.
    const probe = `(([first, count]) => {
      const cells = [...document.querySelectorAll('[data-testid="items"] tbody tr td:nth-child(2)')]
      return cells.length === count && cells[0]?.textContent === first
    })(${JSON.stringify([ids[0], ids.length])})`
    await waitFor(`page ${n} on screen`, async () => (await page.evaluate(probe)) === true)
    t.same(await shownIds(), ids, what)
  }
  await expectPage(
    1,
    first.items.map((i) => i.userId),
    'page 1 as the API answers it',
  )
  t.match(await page.getByTestId('x-cache').first().innerText(), /X-Cache: (HIT|MISS|STALE)/, 'the answer shows X-Cache')
  await page.getByRole('button', { name: 'Next ›' }).click()
  await expectPage(
    2,
    second.items.map((i) => i.userId),
    'page 2 through the cursor',
  )
  await page.getByRole('button', { name: '‹ Previous' }).click()
  await expectPage(
    1,
    first.items.map((i) => i.userId),
    'back on page 1',
  )
  // Keyboard: n pages forward.
  await page.locator('main').click({ position: { x: 5, y: 5 } })
  await page.keyboard.press('n')
  await expectPage(
    2,
    second.items.map((i) => i.userId),
    'n pages forward',
  )
  // Another source from page 2 starts at its page 1: no cursor of the table is sent with the index (that would be a 400).
  const byEmail = await apiJson<{ items: Array<{ email: string }> }>(`/tables/${DEMO_USERS_TABLE}/items?limit=${limit}&index=byEmail`)
  await page.getByLabel('Source').selectOption('byEmail')
  // The index's key comes first in the grid.
  await expectPage(
    1,
    byEmail.items.map((i) => i.email),
    'page 1 of the index',
  )
  await page.getByLabel('Source').selectOption('')
  await expectPage(
    1,
    first.items.map((i) => i.userId),
    'back to the table, page 1',
  )
  await page.getByRole('button', { name: 'Next ›' }).click()
  await expectPage(
    2,
    second.items.map((i) => i.userId),
    'page 2 again',
  )
  // Sets and binary are marked in the grid.
  t.ok(await page.getByTestId('items').locator('abbr.type-tag', { hasText: 'SS' }).count(), 'string sets are marked')
  t.ok(await page.getByTestId('items').locator('abbr.type-tag', { hasText: 'B' }).count(), 'binary is marked')
  await page.getByRole('button', { name: 'Cards' }).click()
  await page.locator('.cards [data-testid="item"]').first().waitFor()
  await screenshot(page, 'items-cards')
  await page.getByRole('button', { name: 'Grid' }).click()
  await page.getByTestId('items').locator('tbody tr').first().waitFor()
  await screenshot(page, 'items-grid')
  // Keyboard: from the first row's Open link, arrow down, Enter opens the second item.
  await page.getByRole('link', { name: 'Open item 1', exact: true }).focus()
  await page.keyboard.press('ArrowDown')
  await page.keyboard.press('Enter')
  const opened = page.getByTestId('document-view').getByText(`"userId": "${second.items[1]!.userId}"`)
  await opened.waitFor()
  t.equal(await opened.count(), 1, 'arrow keys and Enter open the second item')
  await page.goBack()
  await page.getByTestId('items').waitFor()
  // At 1280 px nothing but the grid's own box scrolls sideways.
  const overflow = async () => page.evaluate('document.scrollingElement.scrollWidth - window.innerWidth')
  t.equal(await overflow(), 0, 'no sideways scroll of the page at 1280 px')

  // user-00001 holds a 38-digit number: found with a query, opened, every digit on screen.
  await page.getByRole('link', { name: 'Query' }).click()
  await page.locator('input[name="pk"]').fill('user-00001')
  await page.getByRole('button', { name: 'Run query' }).click()
  await page.getByTestId('result-count').getByText('1 items').waitFor()
  t.ok(await page.getByTestId('items').getByText(PRECISE_NUMBER, { exact: true }).count(), 'the grid shows every digit')
  await page.getByTestId('items').getByRole('link', { name: 'Open item 1' }).click()
  const documentView = page.getByTestId('document-view')
  await documentView.waitFor()
  t.match(await documentView.innerText(), `"ledgerBalance": ${PRECISE_NUMBER}`, 'document view: the number with all 38 digits, unquoted')
  t.match(await page.getByTestId('typed-view').innerText(), `"N": "${PRECISE_NUMBER}"`, 'typed view: the same digits')
  t.match(await page.getByTestId('x-cache').innerText(), /X-Cache: (HIT|MISS)/)
  await screenshot(page, 'item')
  // A laptop: 1366 x 768, then a narrow 1024 px window: still no sideways scroll.
  for (const width of [1366, 1024]) {
    await page.setViewportSize({ width, height: 768 })
    t.equal(await overflow(), 0, `no sideways scroll at ${width} px`)
  }
  await screenshot(page, 'item-1024')
  await page.setViewportSize({ width: 1280, height: 800 })

  // A query on the byStatus index with a sort-key condition and a filter: the items the API returns.
  const q = {
    index: 'byStatus',
    pk: 'paid',
    skOp: 'ge',
    sk: '2023-01-01',
    filter: JSON.stringify([{ attr: 'currency', op: 'eq', value: 'USD' }]),
  }
  const expected = await apiJson<{ items: Array<{ PK: string; SK: string }> }>(
    `/tables/${DEMO_ORDERS_TABLE}/query?${new URLSearchParams({ ...q, limit: '50' })}`,
  )
  t.ok(expected.items.length > 0, `the API finds ${expected.items.length} items`)
  await page.goto(`${base}/console/#/tables/${DEMO_ORDERS_TABLE}/query`)
  await page.getByLabel('Index').selectOption('byStatus')
  await page.locator('input[name="pk"]').fill(q.pk)
  await page.locator('select[name="skOp"]').selectOption(q.skOp)
  await page.locator('input[name="sk"]').fill(q.sk)
  await page.getByRole('button', { name: 'Add filter' }).click()
  await page.getByLabel('Filter 1 attribute').fill('currency')
  await page.getByLabel('Filter 1 value').fill('USD')
  await page.locator('input[name="limit"]').fill('50')
  await page.getByRole('button', { name: 'Run query' }).click()
  await page.getByTestId('result-count').getByText(`${expected.items.length} items`, { exact: true }).waitFor()
  const grid = page.getByTestId('items')
  const headers = await grid.locator('thead th').allInnerTexts()
  const col = (name: string) => headers.indexOf(name) + 1
  const rows = await grid
    .locator('tbody tr')
    .evaluateAll(
      (trs, [pk, sk]) => trs.map((tr) => `${tr.children[pk as number]!.textContent}|${tr.children[sk as number]!.textContent}`),
      [col('PK') - 1, col('SK') - 1],
    )
  t.same(
    rows,
    expected.items.map((i) => `${i.PK}|${i.SK}`),
    'the same items, in the same order',
  )
  t.match(await page.getByTestId('x-cache').first().innerText(), /X-Cache/)

  // The query is a shareable link with no key in it; it opens the same query in a new tab.
  const shared = page.url()
  t.match(shared, /#\/tables\/demo-orders\/query\?/)
  t.notMatch(shared, new RegExp(KEYS.read))
  t.match(new URL(shared).hash, /skOp=ge/)
  await screenshot(page, 'query')
  // A new tab has its own sessionStorage: the link asks for a key first, then runs the query.
  const other = await page.context().newPage()
  await other.goto(shared)
  await other.getByLabel('API key').fill(KEYS.read)
  await other.getByRole('button', { name: 'Sign in' }).click()
  const count = other.getByTestId('result-count').getByText(`${expected.items.length} items`, { exact: true })
  await count.waitFor()
  t.equal(await count.textContent(), `${expected.items.length} items`, 'the shared link signs in, then runs the same query')
  await other.close()

  t.same(problems, [], 'no request left the origin, no console or script error')
  await page.context().close()
})

t.test('a read key sees no export, batch or admin controls; a wrong key gets a clear message', async (t) => {
  const { page, problems } = await openConsole(stack, { allowErrors: /status of 401/ })
  await page.goto(`${base}/console/`)
  await page.getByLabel('API key').waitFor()
  await screenshot(page, 'sign-in')
  await page.getByLabel('API key').fill('not-a-key-at-all-0000000')
  await page.getByRole('button', { name: 'Sign in' }).click()
  const message = await page.getByTestId('sign-in-error').innerText()
  t.match(message, /not accepted/, 'the refusal is explained')
  t.match(message, /DC_ERR_UNAUTHORIZED/)
  await screenshot(page, 'sign-in-refused')
  t.equal(await page.evaluate('sessionStorage.length'), 0, 'a refused key is not kept')

  await page.getByLabel('API key').fill(KEYS.read)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByTestId('scopes').waitFor()
  const nav = await page.getByRole('navigation', { name: 'Sections' }).innerText()
  t.match(nav, /Tables/)
  t.match(nav, /Cache/)
  t.notMatch(nav, /Exports|Batches/, 'no export or batch section')
  await page.goto(`${base}/console/#/tables/${DEMO_USERS_TABLE}`)
  await page.getByTestId('table-details').waitFor()
  t.equal(await page.getByTestId('admin-controls').count(), 0, 'no admin controls on the table')
  await page.goto(`${base}/console/#/cache`)
  await page.getByTestId('totals').waitFor()
  t.equal(await page.getByTestId('admin-controls').count(), 0, 'no admin controls on the cache page')
  t.equal(await page.getByRole('button', { name: /Invalidate|Warm up/ }).count(), 0)
  await page.goto(`${base}/console/#/exports`)
  await page.getByText('Nothing here for this key').waitFor()
  t.equal(await page.getByTestId('export-form').count(), 0, 'no export form, even by URL')
  t.equal(await page.evaluate('document.cookie'), '', 'no cookie')
  t.same(problems, [])
  await page.context().close()
})
