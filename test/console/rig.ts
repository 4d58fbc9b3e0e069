import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { CONSOLE_DIR } from '../../src/api/plugins/console.ts'
import { seedDemoTables } from '../../src/local/seed.ts'
import { build, configEnv, KEYS, testConfig, uniquePrefix } from '../helpers/app.ts'
import { launchBrowser, outputPath } from '../helpers/browser.ts'
import { startEntry, waitForLog } from '../helpers/processes.ts'
import { startServices, type TestServices } from '../helpers/services.ts'
import type { Tap } from '../helpers/tap.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SOURCES = join(ROOT, 'console')

function newestMtime(dir: string): number {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs)
  }
  return newest
}

/**
 * The built console: dist/console when `npm run build` made it from the current sources, otherwise a
 * fresh Vite build into a folder of this test file's own (removed at teardown).
 */
export async function consoleBuild(t: Tap): Promise<string> {
  const index = join(CONSOLE_DIR, 'index.html')
  if (existsSync(index) && statSync(index).mtimeMs >= newestMtime(SOURCES)) return CONSOLE_DIR
  const outDir = mkdtempSync(join(tmpdir(), 'dc-console-'))
  t.teardown(() => rmSync(outDir, { recursive: true, force: true }))
  const { build: viteBuild } = await import('vite')
  await viteBuild({ configFile: join(SOURCES, 'vite.config.ts'), logLevel: 'warn', build: { outDir, emptyOutDir: true } })
  return outDir
}

export interface ConsoleStack {
  services: TestServices
  app: FastifyInstance
  /** http://127.0.0.1:<port>, the API's (and the console's) origin. */
  base: string
  browser: Browser
  /** The built console the API serves. */
  consoleRoot: string
}

/**
 * Real services with the demo tables seeded (small counts unless asked), the API listening with the
 * built console, headless Chromium, and (with `workers`) a real worker process.
 */
export async function startConsoleStack(
  t: Tap,
  opts: { users?: number; orders?: number; workers?: boolean; overrides?: Record<string, string> } = {},
): Promise<ConsoleStack> {
  const [root, services] = await Promise.all([consoleBuild(t), startServices(t)])
  await seedDemoTables({ endpoint: services.dynamoEndpoint }, { users: opts.users ?? 120, orders: opts.orders ?? 300 })
  const overrides = { REDIS_PREFIX: uniquePrefix(), ...opts.overrides }
  if (opts.workers) {
    const worker = startEntry(t, 'src/workers/main.ts', configEnv(testConfig(services, { ...overrides, LOG_LEVEL: 'info' })))
    await waitForLog(worker, /worker\.started/, 60_000)
  }
  const app = await build(t, services, overrides, { console: { root } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const browser = await launchBrowser(t)
  return { services, app, base, browser, consoleRoot: root }
}

export interface ConsolePage {
  context: BrowserContext
  page: Page
  /** Script errors, console errors and requests that left the origin, as they happened. */
  problems: string[]
  /** Every URL the page requested. */
  requests: string[]
}

/**
 * A page on the console at 1280x800, recording every request (each must stay on the API's origin)
 * and every console error or page error. `allowErrors` admits expected console errors (a refused key's 401).
 */
export async function openConsole(
  stack: ConsoleStack,
  opts: { allowErrors?: RegExp; viewport?: { width: number; height: number } } = {},
): Promise<ConsolePage> {
  const context = await stack.browser.newContext({ viewport: opts.viewport ?? { width: 1280, height: 800 }, acceptDownloads: true })
  const page = await context.newPage()
  const problems: string[] = []
  const requests: string[] = []
  const origin = new URL(stack.base).origin
  page.on('request', (req) => {
    const url = req.url()
    requests.push(url)
    if (!url.startsWith('blob:') && !url.startsWith('data:') && new URL(url).origin !== origin) problems.push(`request left the origin: ${url}`)
  })
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !opts.allowErrors?.test(msg.text())) problems.push(`console error: ${msg.text()}`)
  })
  page.setDefaultTimeout(30_000)
  return { context, page, problems, requests }
}

/** Signs in on the console with `key` and waits for the signed-in header. */
export async function signIn(stack: ConsoleStack, page: Page, key: string, hash = '') {
  await page.goto(`${stack.base}/console/${hash}`, { waitUntil: 'domcontentloaded' })
  await page.getByLabel('API key').fill(key)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByTestId('scopes').waitFor()
}

export async function screenshot(page: Page, name: string) {
  await page.screenshot({ path: await outputPath(`console-${name}.png`), fullPage: true })
}

export { KEYS }
