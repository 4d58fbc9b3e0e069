import t from 'tap'
import { freePort } from '../../../src/local/services/ports.ts'
import { auth, configEnv, testConfig } from '../../helpers/app.ts'
import { type ReceivedSpan, startOtlpReceiver } from '../../helpers/otlp-receiver.ts'
import { startEntry, waitForLog } from '../../helpers/processes.ts'
import { startServices } from '../../helpers/services.ts'
import { createTable, putItems, testDynamo } from '../../helpers/tables.ts'
import { waitFor } from '../../helpers/wait.ts'

// The API and a worker as real processes exporting to a receiver in this test, the way a collector would see them.
const services = await startServices(t)
const receiver = await startOtlpReceiver()
t.teardown(() => receiver.close())
const dynamo = testDynamo(t, services.dynamoEndpoint)
await createTable(dynamo, 'traced', { PK: 'S', SK: 'N' })
await putItems(
  dynamo,
  'traced',
  Array.from({ length: 300 }, (_, i) => ({ PK: { S: `p${i % 7}` }, SK: { N: String(i) }, v: { S: `value ${i}` } })),
)

const port = await freePort()
const env = configEnv(testConfig(services, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, LOG_LEVEL: 'info', HOST: '127.0.0.1', EXPORT_SEGMENTS: '3' }))
const api = startEntry(t, 'src/api/server.ts', { ...env, PORT: String(port) })
const worker = startEntry(t, 'src/workers/main.ts', env)
await Promise.all([waitForLog(api, /Server listening/), waitForLog(worker, /worker\.started/)])
const base = `http://127.0.0.1:${port}`

const spansOf = (traceId: string) => receiver.spans.filter((s) => s.traceId === traceId)
const named = (spans: ReceivedSpan[], pattern: RegExp) => spans.filter((s) => pattern.test(s.name))

t.test('a read: the request span, the cache lookup with its outcome, the DynamoDB call under it', async (t) => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
  // A caller's W3C trace context is continued, so dynacache's spans join the dashboard's trace.
  const res = await fetch(`${base}/tables/traced/items/p1?sk=1`, { headers: { ...auth('read'), traceparent: `00-${traceId}-00f067aa0ba902b7-01` } })
  t.equal(res.status, 200)
  const spans = await waitFor('the read spans', async () => {
    const found = spansOf(traceId)
    return named(found, /^cache\.lookup$/).length > 0 && named(found, /^dynamodb\.GetItem$/).length > 0 ? found : undefined
  })
  t.ok(spans.every((s) => s.service === 'dynacache-api'))
  const request = spans.find((s) => s.parentSpanId === '00f067aa0ba902b7')
  t.ok(request, 'the request span is a child of the caller span')
  const lookup = named(spans, /^cache\.lookup$/).find((s) => s.attributes['dynacache.kind'] === 'item')!
  t.equal(lookup.attributes['dynacache.cache.outcome'], 'miss')
  t.equal(lookup.attributes['dynacache.table'], 'traced')
  const getItem = named(spans, /^dynamodb\.GetItem$/)[0]!
  t.same(getItem.attributes['aws.dynamodb.table_names'], ['traced'])
  // The DynamoDB call happened inside the lookup: walk up from it.
  const byId = new Map(spans.map((s) => [s.spanId, s]))
  const ancestors: string[] = []
  for (let s = byId.get(getItem.parentSpanId); s; s = byId.get(s.parentSpanId)) ancestors.push(s.name)
  t.ok(ancestors.includes('cache.lookup'), `GetItem under the lookup (${ancestors.join(' < ')})`)
  const script = named(spans, /^redis\.script dcCacheRead$/).find((s) => s.parentSpanId === lookup.spanId)
  t.ok(script, 'the Redis read script is a span under the lookup')
})

t.test('an export: one trace from the POST through the queue, every segment job, the assembly and the email', async (t) => {
  const res = await fetch(`${base}/exports`, {
    method: 'POST',
    headers: { ...auth('export'), 'content-type': 'application/json' },
    body: JSON.stringify({ table: 'traced', format: 'csv', notify: 'ops@example.com' }),
  })
  t.equal(res.status, 202)
  const { id } = (await res.json()) as { id: string }
  await waitFor('the export to complete', async () => {
    const state = (await (await fetch(`${base}/exports/${id}`, { headers: auth('export') })).json()) as { status: string }
    return state.status === 'completed'
  })
  // The POST's span names the route; its trace is the export's.
  const post = await waitFor('the POST /exports span', async () =>
    receiver.spans.find((s) => s.service === 'dynacache-api' && s.attributes['http.route'] === '/exports' && s.attributes['http.request.method'] === 'POST'),
  )
  const spans = await waitFor('the worker spans of the export', async () => {
    const found = spansOf(post.traceId)
    const processed = named(found, /^process /)
    const done = ['export-segment', 'export-assemble', 'email'].every((q) => processed.some((s) => s.name.includes(q)))
    return done && named(processed, /export-segment/).length >= 3 ? found : undefined
  })
  const services = new Set(spans.map((s) => s.service))
  t.same([...services].sort(), ['dynacache-api', 'dynacache-worker'], 'API and worker spans in one trace')
  t.ok(named(spans, /^add /).length > 0, 'the queue hop is a span of its own')
  t.equal(named(spans, /^process .*export-segment/).length, 3, 'each of the 3 segment jobs')
  t.equal(named(spans, /^process .*export-assemble/).length, 1, 'the assembly')
  t.equal(named(spans, /^process .*email/).length, 1, 'the email')
  t.ok(named(spans, /^dynamodb\.Scan$/).length >= 3, "the segments' Scans in the same trace")
  t.same(receiver.rejected, [], 'every export was OTLP/HTTP JSON on /v1/traces')
})
