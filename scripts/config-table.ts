import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { configReference, REQUIRED_FOR } from '../src/shared/config.ts'
import { QUEUE_NAMES } from '../src/shared/queues/definitions.ts'

/**
 * `npm run readme`: the generated parts of docs/, so they cannot drift from the code. docs/configuration.md
 * gets the config table (from the schema); docs/architecture.md gets route -> file, queue -> processor
 * and variable -> where it is read (from the sources). test/docs.test.ts fails when either is stale.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url))
export const CONFIGURATION_DOC = join(ROOT, 'docs/configuration.md')
export const ARCHITECTURE_DOC = join(ROOT, 'docs/architecture.md')

const rel = (path: string) => relative(ROOT, path).split('\\').join('/')
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8')
const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\s+/g, ' ').trim()

/** Every .ts file under a folder of the repository, as repository paths, sorted. */
function sources(dir: string): string[] {
  const walk = (abs: string): string[] =>
    readdirSync(abs)
      .sort()
      .flatMap((name) => {
        const path = join(abs, name)
        return statSync(path).isDirectory() ? walk(path) : name.endsWith('.ts') ? [rel(path)] : []
      })
  return walk(join(ROOT, dir))
}

/** Source text without comments, so a variable named in a comment does not count as read. */
const code = (path: string) =>
  read(path)
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1')

/** The configuration table, generated from the config schema. */
export function configTable(): string {
  const required = new Map<string, string[]>()
  for (const [role, names] of Object.entries(REQUIRED_FOR)) {
    for (const name of names) required.set(name, [...(required.get(name) ?? []), role])
  }
  const rows = configReference().map(({ name, default: def, description }) => {
    const shown = required.has(name) ? `(required for ${required.get(name)!.join(', ')})` : def === '' ? '' : `\`${def}\``
    return `| \`${name}\` | ${shown} | ${description.replace(/\|/g, '\\|')} |`
  })
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n')
}

export interface RouteRow {
  method: string
  path: string
  scope: string
  file: string
  summary: string
}

const OPENAPI_METHODS = ['get', 'post', 'put', 'patch', 'delete', 'head', 'options']

/** The OpenAPI document's operations (generated from the route schemas), with Fastify's `:param` paths. */
export function openapiOperations(): Array<{ method: string; path: string; summary: string }> {
  const doc = JSON.parse(read('openapi/openapi.json')) as { paths: Record<string, Record<string, { summary?: string }>> }
  return Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops)
      .filter(([method]) => OPENAPI_METHODS.includes(method))
      .map(([method, op]) => ({ method: method.toUpperCase(), path: path.replace(/\{(\w+)\}/g, ':$1'), summary: op.summary ?? '' })),
  )
}

/**
 * Every route declared in src/api (routes and plugins) with `app.<method>('<path>', ...)`. A path built
 * from a template (`/exports/schedules/:id/${action}`) is expanded from the OpenAPI document.
 */
export function routeRows(): RouteRow[] {
  const documented = openapiOperations()
  const rows: RouteRow[] = []
  for (const file of [...sources('src/api/routes'), ...sources('src/api/plugins')]) {
    const text = code(file)
    if (/\.route\(\s*\{/.test(text)) throw new Error(`${file}: declare routes with app.get/post/...('/path'), which this script reads`)
    const calls = [...text.matchAll(/\b(?:app|fastify|instance|server)\.(get|post|put|patch|delete|head|options)(?:<[^(]*?>)?\(\s*(['`])(\/[^'`]*)\2/g)]
    calls.forEach((call, i) => {
      const method = call[1]!.toUpperCase()
      const literal = call[3]!
      const options = text.slice(call.index, calls[i + 1]?.index ?? text.length)
      const scope = /scope:\s*'(\w+)'/.exec(options)?.[1] ?? 'none'
      const paths = literal.includes('${')
        ? (() => {
            const pattern = new RegExp(
              `^${literal
                .split(/\$\{[^}]*\}/)
                .map((s) => s.replace(/[.*+?^()|[\]\\]/g, '\\$&'))
                .join('[^/]+')}$`,
            )
            const found = documented.filter((op) => op.method === method && pattern.test(op.path)).map((op) => op.path)
            return found.length > 0 ? found : [literal.replace(/\$\{\s*(\w+)[^}]*\}/g, ':$1')]
          })()
        : [literal]
      for (const path of paths) {
        const summary = documented.find((op) => op.method === method && op.path === path)?.summary ?? ''
        rows.push({ method, path, scope, file, summary })
      }
    })
  }
  return rows.sort((a, b) => a.path.localeCompare(b.path) || a.method.localeCompare(b.method))
}

/** Paths mounted by a library rather than declared route by route. */
const MOUNTED = [
  { path: '/docs', scope: 'none', file: 'src/api/plugins/swagger.ts', summary: 'Swagger UI (@fastify/swagger-ui)' },
  { path: '/admin/queues', scope: 'HTTP Basic, an admin key', file: 'src/api/plugins/bull-board.ts', summary: 'Bull Board (@bull-board/fastify)' },
  {
    path: '/console/',
    scope: 'none (the page asks for a key)',
    file: 'src/api/plugins/console.ts',
    summary: 'the web console (@fastify/static over dist/console)',
  },
]

export function routeTable(): string {
  const rows = routeRows().map((r) => `| \`${r.method} ${r.path}\` | ${r.scope} | \`${r.file}\` | ${cell(r.summary)} |`)
  const mounted = MOUNTED.map((m) => `| \`${m.path}\` (and below) | ${m.scope} | \`${m.file}\` | ${m.summary} |`)
  return ['| route | scope | file | what |', '|---|---|---|---|', ...rows, ...mounted].join('\n')
}

/** The processor file of each queue, from the imports of src/workers/processors.ts. */
export function processorFiles(): Map<string, string> {
  const text = code('src/workers/processors.ts')
  const imported = new Map<string, string>()
  for (const m of text.matchAll(/import\s+(\w+)\s+from\s+'\.\/([\w./-]+)'/g)) imported.set(m[1]!, `src/workers/${m[2]}`)
  const body = text.slice(text.indexOf('PROCESSORS'))
  const files = new Map<string, string>()
  for (const m of body.matchAll(/^\s*'?([\w-]+)'?\s*:\s*(.+?),?$/gm)) {
    const factory = [...m[2]!.matchAll(/\b(\w+)\b/g)].map((w) => w[1]!).find((w) => imported.has(w))
    if (factory) files.set(m[1]!, imported.get(factory)!)
  }
  return files
}

/** The doc comment of each queue's payload in src/shared/queues/definitions.ts. */
function queueDescriptions(): Map<string, string> {
  const text = read('src/shared/queues/definitions.ts')
  const body = text.slice(text.indexOf('interface QueuePayloads'), text.indexOf('export type QueueName'))
  const out = new Map<string, string>()
  for (const m of body.matchAll(/\/\*\*([\s\S]*?)\*\/\s*'?([\w-]+)'?\s*:/g)) out.set(m[2]!, m[1]!.replace(/^\s*\*\s?/gm, ' '))
  return out
}

/** Files that add jobs to a queue: enqueue('q'), queue('q'), a flow's queueName: 'q', a scheduler's name: 'q'. */
function producerFiles(queue: string): string[] {
  const q = queue.replace(/-/g, '\\-')
  const pattern = new RegExp(`enqueue\\(\\s*'${q}'|queue\\(\\s*'${q}'\\s*\\)|queueName:\\s*'${q}'|name:\\s*'${q}'`)
  return sources('src').filter((file) => !file.startsWith('src/shared/queues/') && pattern.test(code(file)))
}

export function queueTable(): string {
  const files = processorFiles()
  const about = queueDescriptions()
  const rows = QUEUE_NAMES.map((name) => {
    const producers = producerFiles(name)
      .map((f) => `\`${f}\``)
      .join(', ')
    return `| \`${name}\` | \`${files.get(name) ?? 'src/workers/processors.ts'}\` | ${producers} | ${cell(about.get(name) ?? '')} |`
  })
  return ['| queue | processor | jobs added by | what a job does |', '|---|---|---|---|', ...rows].join('\n')
}

/** Files (outside config.ts) that read each config variable: `config.NAME`, `{ NAME }`, `'NAME'`. */
export function configReaders(): Map<string, string[]> {
  const files = sources('src')
    .filter((f) => f !== 'src/shared/config.ts')
    .map((f) => [f, code(f)] as const)
  const out = new Map<string, string[]>()
  for (const { name } of configReference()) {
    const pattern = new RegExp(`\\.${name}\\b|\\[['"]${name}['"]\\]|[{,]\\s*${name}\\s*[,}:]|['"]${name}['"]`)
    out.set(
      name,
      files.filter(([, text]) => pattern.test(text)).map(([f]) => f),
    )
  }
  return out
}

export function configReadTable(): string {
  const rows = [...configReaders()].map(([name, files]) => {
    const where = files.length > 0 ? files.map((f) => `\`${f}\``).join(', ') : 'only `src/shared/config.ts` (validation)'
    return `| \`${name}\` | ${where} |`
  })
  return ['| variable | read in |', '|---|---|', ...rows].join('\n')
}

const start = (name: string) => `<!-- ${name}:start (generated by npm run readme from the code) -->`
const end = (name: string) => `<!-- ${name}:end -->`

/** The document with the section between `name`'s markers replaced by `body`. */
export function withSection(doc: string, name: string, body: string): string {
  const from = doc.indexOf(start(name))
  const to = doc.indexOf(end(name))
  if (from < 0 || to < from) throw new Error(`the document lacks the ${start(name)} ... ${end(name)} markers`)
  return `${doc.slice(0, from + start(name).length)}\n${body}\n${doc.slice(to)}`
}

export const configurationWithTable = (doc: string) => withSection(doc, 'config', configTable())

export const architectureWithTables = (doc: string) =>
  withSection(withSection(withSection(doc, 'routes', routeTable()), 'queues', queueTable()), 'config-reads', configReadTable())

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(CONFIGURATION_DOC, configurationWithTable(readFileSync(CONFIGURATION_DOC, 'utf8')))
  writeFileSync(ARCHITECTURE_DOC, architectureWithTables(readFileSync(ARCHITECTURE_DOC, 'utf8')))
  console.log('docs/configuration.md and the tables of docs/architecture.md regenerated')
}
