import { readFileSync } from 'node:fs'
import t from 'tap'
import { readmeWithConfig } from '../scripts/config-table.ts'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')

t.test('the README starts with the two commands', async (t) => {
  const firstBlock = readme.slice(0, readme.indexOf('##', readme.indexOf('```')))
  t.match(firstBlock, 'npm install && npm start')
  t.match(firstBlock, 'npm install && npm test')
})

t.test('the README configuration table matches the config schema (run `npm run readme` to update it)', async (t) => {
  t.equal(readme, readmeWithConfig(readme))
})
