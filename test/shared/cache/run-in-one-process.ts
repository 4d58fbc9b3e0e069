import { readdirSync } from 'node:fs'

/*
 * `npm run test:core`: every test file of the cache core, imported in turn into this ONE process.
 * Why: alone, a file spends ~0.2 s on its tests and 2-3 s of CPU starting (tsx, tap, typebox), because on
 * Node 20 every module crosses the off-thread loader hooks (a no-op hook costs as much as tsx's) and
 * typebox alone has ~680. One process pays that once; the script also loads typebox and tap with
 * --import BEFORE tsx, so only the ~50 TypeScript files go through the hooks (971 modules -> 94).
 * Not a .test.ts file, so `npm test` never runs it: the full suite still gives each file its own process.
 * Run directly (not under the tap runner) it prints raw TAP and exits 1 on any failure; tap's root
 * timeout (TAP_TIMEOUT, 30 s) ends a hang.
 */
const here = new URL('.', import.meta.url)
const files = readdirSync(here)
  .filter((name) => name.endsWith('.test.ts'))
  .sort()
// One after another: each file registers its tests on tap's root in file order, as it would alone.
for (const file of files) await import(new URL(file, here).href)
