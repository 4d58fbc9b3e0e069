/** biome-ignore-all lint/performance/useDomNodeTextContent: Playwright's locator.innerText(), not the DOM property */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import t from 'tap'
import { DEMO_ORDERS_TABLE } from '../../src/local/demo-data.ts'
import { auth } from '../helpers/app.ts'
import { KEYS, openConsole, screenshot, signIn, startConsoleStack } from './rig.ts'

const ORDERS = 20_000
// Seeding 20,000 items and exporting them twice is more than the 120 s default on a busy machine.
t.setTimeout(600_000)
const exportDir = await mkdtemp(join(tmpdir(), 'dc-console-exports-'))
t.teardown(() => rm(exportDir, { recursive: true, force: true }))
const stack = await startConsoleStack(t, { users: 50, orders: ORDERS, workers: true, overrides: { EXPORT_DIR: exportDir, EXPORT_PAGE_LIMIT: '500' } })
const { app } = stack

t.test('an export key starts an export of 20,000 items, watches the bar reach 100% and downloads it, without a reload', async (t) => {
  const { page, problems, requests } = await openConsole(stack)
  await signIn(stack, page, KEYS.export, '#/exports')
  const nav = await page.getByRole('navigation', { name: 'Sections' }).innerText()
  t.match(nav, /Exports/)
  t.notMatch(nav, /Batches/, 'no batch section for an export key')
  await page.getByText('No exports yet').waitFor()
  // Survives only as long as the document does: still there at the end means no reload happened.
  await page.evaluate('window.marker = 42')

  const form = page.getByTestId('export-form')
  await form.getByLabel('Table').fill(DEMO_ORDERS_TABLE)
  await form.getByLabel('Format').selectOption('csv')
  await form.getByRole('button', { name: 'Start export' }).click()
  const row = page.getByTestId('export').first()
  await row.waitFor()

  // Every value the bar takes, recorded in the page as it changes (a string: tsx would wrap named functions).
  await page.evaluate(`(() => {
    const seen = []
    window.seen = seen
    const note = () => {
      const bar = document.querySelector('[data-testid="export"] [role="progressbar"]')
      const v = Number(bar && bar.getAttribute('aria-valuenow'))
      if (seen[seen.length - 1] !== v) seen.push(v)
    }
    note()
    new MutationObserver(note).observe(document.querySelector('[data-testid="exports"]'), { subtree: true, attributes: true, childList: true })
  })()`)
  await row.getByTestId('download').waitFor({ timeout: 180_000 })
  const seen = (await page.evaluate('window.seen')) as number[]
  t.equal(seen[seen.length - 1], 100, `the bar ends at 100% (values seen: ${seen.join(', ')})`)
  t.ok(seen.length >= 2, 'it moved while the page watched')
  t.same(
    [...seen].sort((a, b) => a - b),
    seen,
    'it never went back',
  )
  t.equal(await row.getAttribute('data-status'), 'completed')
  t.equal(await page.evaluate('window.marker'), 42, 'no reload')
  t.ok(
    requests.some((u) => /\/exports\/[^/]+\/events$/.test(u)),
    'progress came over the event stream',
  )
  t.notOk(
    requests.some((u) => u.includes(KEYS.export)),
    'the key is in no URL',
  )
  await screenshot(page, 'exports')

  // The download: fetched with the Authorization header, handed over as a file.
  const [download] = await Promise.all([page.waitForEvent('download'), row.getByTestId('download').click()])
  const file = await readFile((await download.path())!, 'utf8')
  const lines = file.trimEnd().split('\n')
  t.match(download.suggestedFilename(), /\.csv$/)
  t.equal(lines.length, ORDERS + 1, 'a header and 20,000 rows')
  t.match(lines[0], /PK/)
  t.same(problems, [], 'no request left the origin, no console error')
  await page.context().close()
})

t.test('another export is cancelled from the console', async (t) => {
  // Its segments wait (the queue is paused), so the cancel always finds it unfinished, however fast the machine.
  const connection = new Redis(stack.services.redisUrl, { maxRetriesPerRequest: null })
  const segments = new Queue('export-segment', { connection, prefix: app.keys.queuePrefix })
  t.teardown(async () => {
    await segments.resume()
    await segments.close()
    connection.disconnect()
  })
  await segments.pause()

  const { page, problems } = await openConsole(stack)
  await signIn(stack, page, KEYS.export, '#/exports')
  const form = page.getByTestId('export-form')
  await form.getByLabel('Table').fill(DEMO_ORDERS_TABLE)
  await form.getByLabel('Format').selectOption('jsonl')
  await form.getByRole('button', { name: 'Start export' }).click()
  const row = page.locator('[data-testid="export"][data-status="queued"]').first()
  await row.waitFor()
  const id = await row.getAttribute('data-export-id')
  await row.getByRole('button', { name: 'Cancel' }).click()
  await page.locator(`[data-testid="export"][data-export-id="${id}"][data-status="cancelled"]`).waitFor()
  t.equal(await page.locator(`[data-export-id="${id}"]`).getByRole('button', { name: 'Cancel' }).count(), 0, 'no cancel button once cancelled')
  const view = (await app.inject({ url: `/exports/${id}`, headers: auth('export') })).json()
  t.equal(view.status, 'cancelled', 'the API says so too')
  await screenshot(page, 'exports-cancelled')
  t.same(problems, [])
  await page.context().close()
})
