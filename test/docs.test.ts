import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { ARCHITECTURE_DOC, architectureWithTables, CONFIGURATION_DOC, configurationWithTable, openapiOperations } from '../scripts/config-table.ts'
import { ConfigSchema } from '../src/shared/config.ts'
import { QUEUE_NAMES } from '../src/shared/queues/definitions.ts'
import { PROCESSORS } from '../src/workers/processors.ts'

const root = (path: string) => fileURLToPath(new URL(`../${path}`, import.meta.url))
const architecture = readFileSync(ARCHITECTURE_DOC, 'utf8')
const pages = readdirSync(root('docs')).filter((f) => f.endsWith('.md'))
const text = (page: string) => readFileSync(root(`docs/${page}`), 'utf8')

/** GitHub's anchor for a heading. */
const slug = (heading: string) =>
  heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-')

t.test('docs/configuration.md holds the table the config schema gives (run `npm run readme` to update it)', async (t) => {
  const doc = readFileSync(CONFIGURATION_DOC, 'utf8')
  t.equal(doc, configurationWithTable(doc))
})

t.test("docs/architecture.md's route, queue and config tables match the code (run `npm run readme` to update them)", async (t) => {
  t.equal(architecture, architectureWithTables(architecture))
})

t.test('docs/architecture.md names every route, with its file', async (t) => {
  // Independent of the generator: the OpenAPI document (generated from the registered routes) ...
  for (const { method, path } of openapiOperations()) {
    t.match(architecture, `\`${method} ${path}\``, `${method} ${path} is in docs/architecture.md`)
  }
  // ... and every literal route declaration under src/api/routes, hidden ones included.
  const walk = (dir: string): string[] =>
    readdirSync(root(dir), { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(`${dir}/${e.name}`) : e.name.endsWith('.ts') ? [`${dir}/${e.name}`] : [],
    )
  const files = walk('src/api/routes')
  t.ok(files.length > 5, 'route files found')
  for (const file of files) {
    for (const m of readFileSync(root(file), 'utf8').matchAll(
      /\b(?:app|fastify|instance|server)\.(get|post|put|patch|delete|head|options)(?:<[^(]*?>)?\(\s*'(\/[^']*)'/g,
    )) {
      const row = architecture.split('\n').find((line) => line.startsWith(`| \`${m[1]!.toUpperCase()} ${m[2]}\``))
      t.ok(row?.includes(`\`${file}\``), `${m[1]!.toUpperCase()} ${m[2]} is in docs/architecture.md with ${file}`)
    }
  }
})

t.test('docs/architecture.md names every queue with its processor file', async (t) => {
  t.same(Object.keys(PROCESSORS).sort(), [...QUEUE_NAMES].sort(), 'every queue has a processor')
  for (const name of QUEUE_NAMES) {
    const row = architecture.split('\n').find((line) => line.startsWith(`| \`${name}\` | \`src/workers/`))
    t.ok(row, `queue ${name} is in docs/architecture.md with its processor`)
    const file = row && /\| `(src\/workers\/[^`]+)`/.exec(row)?.[1]
    t.ok(file && existsSync(root(file)), `the processor file of ${name} exists (${file})`)
  }
})

t.test('docs/architecture.md names every config variable and where it is read', async (t) => {
  const names = Object.keys(ConfigSchema.properties)
  t.ok(names.length > 40, 'config variables found')
  for (const name of names) {
    t.ok(architecture.includes(`| \`${name}\` | `), `${name} is in docs/architecture.md`)
  }
})

t.test('every link between the docs resolves, anchors included', async (t) => {
  const documents = [...pages.map((p) => `docs/${p}`), 'README.md']
  for (const document of documents) {
    const body = readFileSync(root(document), 'utf8')
    for (const [, target, anchor] of body.matchAll(/\]\(([^)#\s]*)(?:#([^)\s]*))?\)/g)) {
      if (target && /^[a-z]+:/.test(target)) continue
      const file = target ? new URL(target, new URL(`../${document}`, import.meta.url)) : new URL(`../${document}`, import.meta.url)
      t.ok(existsSync(file), `${document}: link ${target} exists`)
      if (!anchor || !existsSync(file) || !file.pathname.endsWith('.md')) continue
      const headings = [...readFileSync(file, 'utf8').matchAll(/^#+ (.+)$/gm)].map((h) => slug(h[1]!))
      t.ok(headings.includes(anchor), `${document}: anchor #${anchor} exists in ${target || document}`)
    }
  }
})

t.test('every source file the docs name exists', async (t) => {
  for (const page of pages) {
    for (const [, path] of text(page).matchAll(/`((?:src|test|scripts|bench|console|ops|openapi)\/[\w./-]+\.(?:ts|tsx|lua|json|yml))`/g)) {
      t.ok(existsSync(root(path!)), `docs/${page} names ${path}, which exists`)
    }
  }
})

t.test('comments point at docs/ in this repository, never at a document outside it', async (t) => {
  const outside = /\bproduct\.md\b|\bstack-notes\b|shared\/docs\b|\bstyle\.md\b/
  const walk = (dir: string): string[] =>
    readdirSync(root(dir), { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? (e.name === 'node_modules' ? [] : walk(`${dir}/${e.name}`)) : /\.(ts|tsx|lua)$/.test(e.name) ? [`${dir}/${e.name}`] : [],
    )
  const files = [...walk('src'), ...walk('test'), ...walk('scripts'), ...walk('bench'), ...walk('console')].filter((f) => f !== 'test/docs.test.ts')
  t.ok(files.length > 100, 'source files found')
  t.same(
    files.filter((f) => outside.test(readFileSync(root(f), 'utf8'))),
    [],
    'no file names product.md, stack-notes, style.md or ../shared/docs',
  )
})
