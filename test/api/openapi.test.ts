import { readFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import SwaggerParser from '@apidevtools/swagger-parser'
import type { OpenAPI } from 'openapi-types'
import t from 'tap'
import { generatedFiles } from '../../scripts/openapi.ts'
import { build } from '../helpers/app.ts'
import { launchBrowser, outputPath } from '../helpers/browser.ts'
import { startServices } from '../helpers/services.ts'

const ROOT = new URL('../../', import.meta.url)
const services = await startServices(t)
const app = await build(t, services)
const files = await generatedFiles(app)

interface Operation {
  parameters?: Array<{ in: string; name: string }>
  security?: unknown[]
  responses: Record<string, unknown>
  summary?: string
}
const doc = JSON.parse(files['openapi/openapi.json']!) as { paths: Record<string, Record<string, Operation>> }
const operations = Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ path, method, op })))

t.test('the checked-in files are what the code generates (run `npm run openapi` if not)', async (t) => {
  for (const [path, generated] of Object.entries(files)) {
    const onDisk = await readFile(new URL(path, ROOT), 'utf8').catch(() => '(missing)')
    t.ok(onDisk === generated, `${path} is up to date; if not, run npm run openapi and commit the result`)
  }
  t.ok(files['openapi/openapi.json']!.endsWith('}\n'), 'ends with a newline')
})

t.test('the document validates with a real OpenAPI validator, which does reject a broken one', async (t) => {
  const valid = await SwaggerParser.validate(structuredClone(doc) as unknown as OpenAPI.Document)
  t.equal((valid as { openapi?: string }).openapi, '3.0.3')
  const broken = structuredClone(doc) as { paths: Record<string, Record<string, { responses: unknown }>> }
  broken.paths['/tables']!.get!.responses = { 200: { content: { 'application/json': { schema: { const: 1 } } } } }
  await t.rejects(SwaggerParser.validate(broken as unknown as OpenAPI.Document), 'a response without description and a JSON Schema keyword OpenAPI 3.0 lacks')
})

t.test('/openapi.json serves the same document', async (t) => {
  const res = await app.inject('/openapi.json')
  t.equal(res.statusCode, 200)
  t.same(res.json(), doc)
})

t.test('every operation documents its parameters, answers, errors and auth', async (t) => {
  t.ok(operations.length >= 10, `${operations.length} operations`)
  for (const { path, method, op } of operations) {
    const name = `${method.toUpperCase()} ${path}`
    t.ok(op.summary, `${name} has a summary`)
    const success = Object.keys(op.responses).filter((s) => /^2/.test(s))
    t.ok(success.length > 0, `${name} documents its success answer`)
    for (const param of path.match(/\{(\w+)\}/g) ?? []) {
      t.ok(
        op.parameters?.some((p) => p.in === 'path' && `{${p.name}}` === param),
        `${name} documents ${param}`,
      )
    }
    const route = app.hasRoute({ method: method.toUpperCase() as 'GET', url: path.replace(/\{(\w+)\}/g, ':$1') })
    t.ok(route, `${name} is a real route`)
    if (op.security) {
      for (const status of ['401', '403', '429']) t.ok(op.responses[status], `${name} documents ${status}`)
    }
  }
  const secured = operations.filter((o) => o.op.security).map((o) => `${o.method} ${o.path}`)
  t.ok(secured.includes('get /tables/{table}/items'), 'read routes carry the bearer scheme')
  t.ok(secured.includes('get /metrics'), '/metrics carries it too')
  t.notOk(secured.includes('get /health'), '/health does not')
  t.notOk(
    Object.keys(doc.paths).some((p) => p.startsWith('/admin') || p.startsWith('/docs')),
    'Bull Board and the docs are hidden',
  )
})

t.test('Swagger UI renders in a real browser under the security headers', async (t) => {
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const browser = await launchBrowser(t)
  const page = await browser.newPage()
  const problems: string[] = []
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy/i.test(msg.text())) problems.push(msg.text())
  })
  const response = await page.goto(`${base}/docs`, { waitUntil: 'domcontentloaded' })
  t.equal(response?.status(), 200)
  t.match(response?.headers()['content-security-policy'], /script-src 'self'/)
  await page.locator('.opblock-summary-path', { hasText: '/tables/{table}/items' }).first().waitFor({ timeout: 15_000 })
  t.pass('the operations are listed')
  await page.getByText('dynacache', { exact: false }).first().waitFor()
  await page.screenshot({ path: await outputPath('swagger-ui.png'), fullPage: false })
  t.same(problems, [], 'no script errors and nothing blocked by CSP')
})
