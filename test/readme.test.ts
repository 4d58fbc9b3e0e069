import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')

t.test('the README starts with the two commands', async (t) => {
  const firstBlock = readme.slice(0, readme.indexOf('##', readme.indexOf('```')))
  t.match(firstBlock, 'npm install && npm start')
  t.match(firstBlock, 'npm install && npm test')
})

t.test('the README fits on about three screens: topics live in docs/', async (t) => {
  const lines = readme.split('\n').length
  t.ok(lines <= 150, `README.md has ${lines} lines (at most 150); move the detail to a page under docs/`)
  t.ok(Buffer.byteLength(readme) <= 12_000, `README.md has ${Buffer.byteLength(readme)} bytes (at most 12,000)`)
})

t.test('the README links every page under docs/, and every link it has resolves', async (t) => {
  const links = [...readme.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/.test(l))
  for (const link of links) t.ok(existsSync(fileURLToPath(new URL(`../${link}`, import.meta.url))), `README link ${link} exists`)
  for (const page of [
    'architecture',
    'api',
    'caching',
    'coherence',
    'workers',
    'exports',
    'batch-writes',
    'console',
    'operations',
    'security',
    'configuration',
    'development',
  ]) {
    t.ok(links.includes(`docs/${page}.md`), `README links docs/${page}.md`)
  }
})
