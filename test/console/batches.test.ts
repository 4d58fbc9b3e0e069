/** biome-ignore-all lint/performance/useDomNodeTextContent: Playwright's locator.innerText(), not the DOM property */
import t from 'tap'
import { DEMO_USERS_TABLE } from '../../src/local/demo-data.ts'
import { auth } from '../helpers/app.ts'
import { KEYS, openConsole, screenshot, signIn, startConsoleStack } from './rig.ts'

t.setTimeout(300_000)
const stack = await startConsoleStack(t, { users: 50, orders: 50, workers: true })
const { app } = stack
const BIG = '12345678901234567890123456789012345678'

const jsonl = (...lines: string[]) => ({ name: 'ops.jsonl', mimeType: 'application/x-ndjson', buffer: Buffer.from(lines.join('\n')) })

t.test('a write key uploads operations: problems by line before anything is queued, then a valid file is written', async (t) => {
  // The API's 400 for the batch with bad keys is logged by Chromium as a failed resource: expected here.
  const { page, problems, requests } = await openConsole(stack, { viewport: { width: 1440, height: 900 }, allowErrors: /status of 400/ })
  await signIn(stack, page, KEYS.write, '#/batches')
  const nav = await page.getByRole('navigation', { name: 'Sections' }).innerText()
  t.match(nav, /Batches/)
  t.notMatch(nav, /Exports/)
  // A write-only key may not read the table list or key schema: it names the table.
  await page.getByTestId('batch-form').getByLabel('Table').fill(DEMO_USERS_TABLE)

  // What the file itself gets wrong is found in the page: nothing is sent.
  await page
    .getByTestId('batch-file')
    .setInputFiles(
      jsonl(
        `{"put":{"userId":{"S":"new-1"},"score":{"N":"${BIG}"}}}`,
        'this is not JSON',
        '{"put":{"userId":{"S":"x"}},"delete":{"userId":{"S":"y"}}}',
        '["put"]',
      ),
    )
  let listed = await page.getByTestId('batch-problems').innerText()
  t.match(listed, /3 problems in ops\.jsonl; nothing was queued/)
  t.match(listed, /line 2: not JSON/)
  t.match(listed, /line 3: an operation has exactly one of "put" or "delete"/)
  t.match(listed, /line 4: an operation must be an object/)
  t.notOk(
    requests.some((u) => /\/batches/.test(u)),
    'nothing was sent to the API',
  )
  await screenshot(page, 'batch-problems')

  // What needs the key schema the API finds; its answer is placed on the lines, and nothing is queued.
  await page
    .getByTestId('batch-file')
    .setInputFiles(jsonl(`{"put":{"userId":{"S":"new-1"},"score":{"N":"${BIG}"}}}`, '{"put":{"name":{"S":"no key"}}}', '', '{"put":{"userId":{"N":"7"}}}'))
  await page.getByRole('button', { name: 'Queue the batch' }).click()
  listed = await page.getByTestId('batch-problems').innerText()
  t.match(listed, /2 problems in ops\.jsonl; nothing was queued/)
  t.match(listed, /line 2: .*userId/, 'the missing key, on its line')
  t.match(listed, /line 4: .*userId/, 'the wrongly typed key, on its line (the blank line 3 counted)')

  await page
    .getByTestId('batch-file')
    .setInputFiles(
      jsonl(
        `{"put":{"userId":{"S":"new-1"},"score":{"N":"${BIG}"},"tags":{"SS":["a","b"]}}}`,
        '{"put":{"userId":{"S":"new-2"},"name":{"S":"Two"}}}',
        '{"delete":{"userId":{"S":"user-00002"}}}',
      ),
    )
  await page.getByTestId('batch-ready').getByText('3 operations (typed)').waitFor()
  await page.getByRole('button', { name: 'Queue the batch' }).click()
  const batch = page.locator('[data-testid="batch"][data-status="completed"]')
  await batch.waitFor({ timeout: 120_000 })
  t.match(await batch.innerText(), /3 written, 0 failed of 3/)
  t.equal(await batch.getByRole('progressbar').getAttribute('aria-valuenow'), '100')
  await screenshot(page, 'batch-done')

  const written = await app.inject({ url: `/tables/${DEMO_USERS_TABLE}/items/new-1?view=typed`, headers: { ...auth('read'), 'cache-control': 'no-cache' } })
  t.equal(written.json().score.N, BIG, 'every digit written')
  const deleted = await app.inject({ url: `/tables/${DEMO_USERS_TABLE}/items/user-00002`, headers: { ...auth('read'), 'cache-control': 'no-cache' } })
  t.equal(deleted.statusCode, 404, 'the delete happened')
  t.same(problems, [])
  await page.context().close()
})

t.test('a CSV of puts with a bad number is refused by line', async (t) => {
  const { page, problems } = await openConsole(stack)
  await signIn(stack, page, KEYS.admin, '#/batches')
  await page.getByTestId('batch-form').getByLabel('Table').selectOption(DEMO_USERS_TABLE)
  // Enabled once the table's key schema is in, which the checks need.
  await page.locator('[data-testid="batch-file"]:enabled').waitFor()
  await page.getByTestId('batch-file').setInputFiles({
    name: 'users.csv',
    mimeType: 'text/csv',
    buffer: Buffer.from('userId,name,age:N\ncsv-1,"Smith, Ann",41\ncsv-2,Bob,forty\n'),
  })
  const listed = await page.getByTestId('batch-problems').innerText()
  t.match(listed, /line 3: age: "forty" is not a number/)
  t.same(problems, [])
  await page.context().close()
})
