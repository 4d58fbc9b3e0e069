import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Browser, chromium } from 'playwright-core'
import type { Tap } from './tap.ts'

/** Debian's Chromium; .ci/run installs it (`apt-get install -y chromium`), tests never download a browser. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** Screenshots and other artefacts a test keeps for people to look at (git-ignored). */
export const TEST_OUTPUT = fileURLToPath(new URL('../../test-output/', import.meta.url))

/**
 * Headless Chromium for one test file, closed at teardown. Fails with a clear message (never skips)
 * when Chromium is missing, so a browser check cannot silently stop running.
 */
export async function launchBrowser(t: Tap): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`)
  }
  // Playwright gives each launch a new empty profile. Without the background-networking flags
  // Chromium keeps dialling out, and this machine's closed network refuses it.
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  })
  t.teardown(() => browser.close())
  return browser
}

/** A path under test-output/ for a file a test writes, creating the folder. */
export async function outputPath(name: string): Promise<string> {
  await mkdir(TEST_OUTPUT, { recursive: true })
  return join(TEST_OUTPUT, name)
}
