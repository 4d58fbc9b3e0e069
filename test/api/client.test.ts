import type { AddressInfo } from 'node:net'
import createClient from 'openapi-fetch'
import t from 'tap'
import { auth, build } from '../helpers/app.ts'
import { startServices } from '../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../helpers/tables.ts'
import type { components, paths } from './generated/openapi-types.ts'

// A client typed from openapi/openapi.json (openapi-typescript types, checked by `npm run typecheck`)
// calling a listening API over HTTP. openapi-fetch 0.9 (the last to read openapi-typescript 6 types;
// 7 needs the TypeScript 5 compiler API, which TypeScript 7 no longer ships) checks paths but infers
// `data` loosely, so answers and parameters are pinned to the generated types explicitly below.
type Get<P extends keyof paths> = paths[P] extends { get: infer O } ? O : never
type Json<P extends keyof paths> = Get<P> extends { responses: { 200: { content: { 'application/json': infer B } } } } ? B : never
type Params<P extends keyof paths> = Get<P> extends { parameters: infer Q } ? Q : never
type ErrorBody = components['schemas']['Error']
const services = await startServices(t)
const dynamo = testDynamo(t, services.dynamoEndpoint)
await createTable(dynamo, 'client-orders', { PK: 'S', SK: 'N' })
await putItems(
  dynamo,
  'client-orders',
  Array.from({ length: 7 }, (_, i) => ({ PK: { S: 'c1' }, SK: { N: String(i) }, total: { N: `${i}.5` } })),
)

const app = await build(t, services)
await app.listen({ port: 0, host: '127.0.0.1' })
const client = createClient<paths>({
  baseUrl: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
  headers: auth('read'),
})

t.test('GET /tables', async (t) => {
  const { data, error, response } = await client.GET('/tables')
  t.equal(response.status, 200)
  t.equal(error, undefined)
  const body: Json<'/tables'> = data
  t.ok(body.tables.includes('client-orders'), JSON.stringify(body))
})

t.test('GET /tables/{table}/items, page by page with the cursor', async (t) => {
  const seen: unknown[] = []
  let cursor: string | undefined
  let pages = 0
  do {
    const params: Params<'/tables/{table}/items'> = {
      path: { table: 'client-orders' },
      query: { limit: 3, ...(cursor ? { cursor } : {}) },
    }
    const { data, error, response } = await client.GET('/tables/{table}/items', { params })
    t.equal(response.status, 200, JSON.stringify(error))
    // The 200 is a page or, with select=count, a count.
    if (!data || !('items' in data)) break
    const page: Json<'/tables/{table}/items'> = data
    t.equal(page.items.length, page.count)
    seen.push(...page.items)
    cursor = page.cursor ?? undefined
    pages++
  } while (cursor && pages < 10)
  t.equal(seen.length, 7, 'every item once')
  t.equal(pages, 3)
})

t.test('errors come back typed in the error shape', async (t) => {
  const { data, error, response } = await client.GET('/tables/{table}/items', {
    params: { path: { table: 'no-such-table' }, query: {} },
  })
  t.equal(response.status, 404)
  t.equal(data, undefined)
  const body: ErrorBody | undefined = error
  t.equal(body?.code, 'DC_ERR_TABLE_NOT_FOUND')
})

/** Never called: it only has to type-check, proving the generated types constrain the calls. */
export function typeChecks() {
  // @ts-expect-error an unknown route
  void client.GET('/no-such-route')
  // @ts-expect-error the table is a required path parameter
  const noTable: Params<'/tables/{table}/items'> = { query: {} }
  // @ts-expect-error view is document or typed
  const badView: Params<'/tables/{table}/items'> = { path: { table: 'x' }, query: { view: 'xml' } }
  // @ts-expect-error a page's cursor is a string or null
  const badPage: Json<'/tables/{table}/items'> = { items: [], count: 0, cursor: 1 }
  // @ts-expect-error every error has a code
  const badError: ErrorBody = { statusCode: 404, error: 'Not Found', message: 'x' }
  return [noTable, badView, badPage, badError]
}
