import { execFileSync } from 'node:child_process'
import t from 'tap'
import { HEAP_GROWING_PERCENT, limitHeapGrowth } from '../../src/workers/heap-growth.ts'

const MODULE = new URL('../../src/workers/heap-growth.ts', import.meta.url).href

/** What limitHeapGrowth() returns in a fresh node process started with these arguments. */
function applied(nodeArgs: string[]): string {
  const script = `const { limitHeapGrowth } = await import(${JSON.stringify(MODULE)}); console.log(String(limitHeapGrowth()))`
  return execFileSync(process.execPath, [...nodeArgs, '--import=tsx', '--input-type=module', '-e', script], { encoding: 'utf8' }).trim()
}

t.test('the worker caps heap growth unless node was given its own value', async (t) => {
  t.equal(applied([]), String(HEAP_GROWING_PERCENT), 'set when node has no --heap-growing-percent')
  t.equal(applied(['--heap-growing-percent=40']), 'undefined', 'an operator value on the command line wins')
  t.equal(limitHeapGrowth(['--heap-growing-percent', '40']), undefined, 'also in its two-argument form')
})
