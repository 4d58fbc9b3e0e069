import { MAX_OPERATIONS } from '../../src/shared/batches/index.ts'
import { loadConfig } from '../../src/shared/config.ts'
import { createDynamoClients } from '../../src/shared/dynamo/client.ts'
import { BATCH_WRITE_DEFAULTS } from '../../src/workers/batch-write.ts'
import { createTable } from '../../test/helpers/tables.ts'
import { runBare } from '../lib/bare.ts'
import { countItems } from '../lib/bulk.ts'
import { cpuSeconds } from '../lib/cpu.ts'
import { httpRequest } from '../lib/http.ts'
import { fmtInt, fmtRatio, fmtUs, median } from '../lib/numbers.ts'
import { benchItem } from '../lib/seed.ts'
import { type BenchStack, bearer, type WorkerProcess } from '../lib/stack.ts'
import type { Scenario, ScenarioContext } from './context.ts'

const TABLES = {
  api: 'bench_batch_api',
  bare: 'bench_batch_bare',
  faultsApi: 'bench_batch_faults_api',
  faultsBare: 'bench_batch_faults_bare',
} as const
/** Share of each BatchWriteItem's requests the proxy hands back unprocessed in the second part. */
const UNPROCESSED = 0.3
/** Untimed puts (the first items of the same range) before the timed runs, on both sides. */
const WARMUP_PUTS = 500
const CALL_SIZE = 25

interface BatchView {
  status: string
  total: number
  written: number
  failed: number
  attempts: number
  error: string | null
  completedAt: string | null
}

interface Run {
  ms: number
  puts: number
  /** BatchWriteItem calls (the batches' `attempts`, or the bare loop's calls). */
  calls: number
  /** CPU of the processes that did the work: the API and the worker, or the bare client; µs. */
  cpuUs: number
  /** API runs: from the first POST until every batch was accepted (202), ms. */
  acceptMs?: number
  /** API runs: the API process's and the worker's shares of cpuUs. */
  apiCpuUs?: number
  workerCpuUs?: number
}

const rate = (r: Run) => (r.puts * 1000) / r.ms
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`

/** The request bodies for puts of benchItem(1..puts): as many batches as the API allows, typed JSON. */
function batchBodies(puts: number, perBatch: number): string[] {
  const bodies: string[] = []
  for (let first = 0; first < puts; first += perBatch) {
    const operations = Array.from({ length: Math.min(perBatch, puts - first) }, (_, i) => ({ put: benchItem(first + i + 1) }))
    bodies.push(JSON.stringify({ format: 'typed', operations }))
  }
  return bodies
}

/**
 * Every body POSTed at once to /tables/:table/batches, then each batch polled until it is finished. The
 * duration runs from just before the POSTs to the last batch's completedAt (stamped by the worker).
 */
async function apiRun(
  stack: BenchStack,
  worker: WorkerProcess,
  table: string,
  bodies: readonly string[],
  timeoutMs: number,
): Promise<Run & { views: BatchView[] }> {
  const headers = { authorization: bearer('write'), 'content-type': 'application/json' }
  const pids = [stack.api.pid, worker.pid]
  const cpu0 = pids.map(cpuSeconds)
  const t0 = Date.now()
  const ids = await Promise.all(
    bodies.map(async (body) => {
      const res = await httpRequest(`${stack.api.baseUrl}/tables/${table}/batches`, { method: 'POST', headers, body, timeoutMs: 60_000 })
      if (res.status !== 202) throw new Error(`POST /tables/${table}/batches: ${res.status} ${res.body.toString().slice(0, 300)}`)
      return (JSON.parse(res.body.toString()) as { id: string }).id
    }),
  )
  const acceptMs = Date.now() - t0
  const views = new Map<string, BatchView>()
  while (views.size < ids.length) {
    for (const id of ids) {
      if (views.has(id)) continue
      const res = await httpRequest(`${stack.api.baseUrl}/batches/${encodeURIComponent(id)}`, { headers })
      if (res.status !== 200) throw new Error(`GET /batches/${id}: ${res.status} ${res.body.toString().slice(0, 300)}`)
      const view = JSON.parse(res.body.toString()) as BatchView
      if (view.status === 'completed') views.set(id, view)
      else if (view.status === 'failed') throw new Error(`batch ${id} failed: ${view.error}; written ${view.written} of ${view.total}`)
    }
    if (views.size < ids.length) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`batches of ${table} not finished after ${secs(Date.now() - t0)}`)
      await sleep(100)
    }
  }
  const [apiCpuUs, workerCpuUs] = pids.map((pid, i) => (cpuSeconds(pid) - cpu0[i]!) * 1e6) as [number, number]
  const list = [...views.values()]
  const puts = list.reduce((n, v) => n + v.total, 0)
  const written = list.reduce((n, v) => n + v.written, 0)
  const failed = list.reduce((n, v) => n + v.failed, 0)
  if (written !== puts || failed !== 0) throw new Error(`batches of ${table}: written ${written} of ${puts}, failed ${failed}`)
  const end = Math.max(...list.map((v) => Date.parse(v.completedAt!)))
  return { ms: end - t0, puts, calls: list.reduce((n, v) => n + v.attempts, 0), cpuUs: apiCpuUs + workerCpuUs, apiCpuUs, workerCpuUs, acceptMs, views: list }
}

async function bareRun({ stack, cleanup, log }: ScenarioContext, table: string, puts: number, lanes: number): Promise<Run> {
  const result = await runBare(cleanup, log, {
    mode: 'batch-write',
    endpoint: stack.proxy.endpoint,
    table,
    first: 1,
    count: puts,
    lanes,
    warmupPuts: WARMUP_PUTS,
    timeoutMs: loadConfig({}).DYNAMO_TIMEOUT_MS,
  })
  return { ms: result.ms, puts: result.items, calls: result.calls ?? 0, cpuUs: result.cpuUs }
}

/**
 * 7. Puts through the API (POST /tables/:table/batches in batches of up to MAX_OPERATIONS, one real
 * worker process serving batch-write, then GET /batches/:id until done) against the plain BatchWriteItem
 * loop of a bare client process with the same number of calls in flight; both through the counting
 * proxy, the same endpoint. Rounds alternate; the ratio is the median of per-round ratios of puts/s.
 * Then the same puts into an empty table with 30% of every call's requests handed back unprocessed by
 * the proxy: every item must be in the table (Scan, Select COUNT) and the batches must say written =
 * total, failed 0; the attempts (BatchWriteItem calls) are reported, with the bare loop under the same
 * faults (resending at once, no backoff) for scale.
 */
export const batchWrites: Scenario = {
  id: '7',
  title: 'batch writes vs BatchWriteItem loop',
  target: 'reported; 30% unprocessed: all written',
  requires: 'batches',
  async run(ctx) {
    const { stack, options, log } = ctx
    const { puts, rounds } = options.batch
    const perBatch = Math.min(options.batch.perBatch, MAX_OPERATIONS)
    const direct = createDynamoClients({ DYNAMODB_ENDPOINT: stack.dynamoEndpoint, AWS_REGION: 'us-east-1', DYNAMO_TIMEOUT_MS: 30_000 })
    try {
      for (const table of Object.values(TABLES)) await createTable(direct.raw, table, { id: 'S' })
      const bodies = batchBodies(puts, perBatch)
      const concurrency = loadConfig({}).WORKER_CONCURRENCY
      // What the system has in flight: each running batch job makes parallelCalls calls at a time.
      const lanes = Math.min(bodies.length, concurrency) * BATCH_WRITE_DEFAULTS.parallelCalls
      const minCalls = Math.ceil(puts / CALL_SIZE)
      const quick = options.quick ? ' (--quick: fewer puts)' : ''
      const shape = `${fmtInt(puts)} puts in ${bodies.length} batch${bodies.length === 1 ? '' : 'es'}, ${lanes} calls in flight${quick}`
      log(`  ${shape} (${bodies.length} x ${fmtInt(Math.ceil(puts / bodies.length))} operations, ${(bodies[0]!.length / 2 ** 20).toFixed(1)} MB per body)`)

      const worker = await stack.startWorker('batch worker', { WORKER_QUEUES: 'batch-write', WORKER_CONCURRENCY: String(concurrency) })
      const apis: Run[] = []
      const bares: Run[] = []
      let faults: { api: Run & { views: BatchView[] }; bare: Run; inTable: number; bareInTable: number; proxyCalls: number; handedBack: number }
      try {
        await apiRun(stack, worker, TABLES.api, batchBodies(WARMUP_PUTS, WARMUP_PUTS), 60_000)
        for (let round = 0; round < rounds; round++) {
          const order = round % 2 === 0 ? (['api', 'bare'] as const) : (['bare', 'api'] as const)
          for (const side of order) {
            if (side === 'api') apis.push(await apiRun(stack, worker, TABLES.api, bodies, 300_000))
            else bares.push(await bareRun(ctx, TABLES.bare, puts, lanes))
          }
          const [a, b] = [apis.at(-1)!, bares.at(-1)!]
          log(
            `  round ${round + 1}/${rounds}: API ${fmtInt(rate(a))} puts/s (${secs(a.ms)} of which ${secs(a.acceptMs!)} to accept the POSTs, ${a.calls} calls, CPU/put ${fmtUs(a.apiCpuUs! / a.puts)} API + ${fmtUs(a.workerCpuUs! / a.puts)} worker), ` +
              `bare loop ${fmtInt(rate(b))} puts/s (${secs(b.ms)}, ${b.calls} calls, ${fmtUs(b.cpuUs / b.puts)} CPU/put): ${fmtRatio(rate(a) / rate(b))}`,
          )
        }

        log(`  ${Math.round(UNPROCESSED * 100)}% of every BatchWriteItem's requests handed back unprocessed by the proxy`)
        const mark = stack.proxy.calls.length
        stack.proxy.setFaults({ unprocessed: UNPROCESSED })
        let api: Run & { views: BatchView[] }
        let bare: Run
        let proxyCalls: number
        let handedBack: number
        try {
          api = await apiRun(stack, worker, TABLES.faultsApi, bodies, 600_000)
          const calls = stack.proxy.calls.slice(mark).filter((c) => c.operation === 'BatchWriteItem' && c.table === TABLES.faultsApi)
          proxyCalls = calls.length
          handedBack = calls.reduce((n, c) => n + (c.unprocessed ?? 0), 0)
          bare = await bareRun(ctx, TABLES.faultsBare, puts, lanes)
        } finally {
          stack.proxy.setFaults({})
        }
        const [inTable, bareInTable] = [await countItems(direct.raw, TABLES.faultsApi), await countItems(direct.raw, TABLES.faultsBare)]
        faults = { api, bare, inTable, bareInTable, proxyCalls, handedBack }
        log(
          `  API: ${fmtInt(inTable)} of ${fmtInt(puts)} items in the table, status written ${api.views.map((v) => v.written).join(' + ')}, ` +
            `failed ${api.views.reduce((n, v) => n + v.failed, 0)}; ${api.calls} attempts (${proxyCalls} calls at the proxy, ${handedBack} requests handed back), ${secs(api.ms)}`,
        )
        log(`  bare loop: ${fmtInt(bareInTable)} items in the table, ${bare.calls} calls, ${secs(bare.ms)}`)
      } finally {
        await worker.stop()
      }

      const ratio = median(apis.map((a, i) => rate(a) / rate(bares[i]!)))
      const [apiRate, bareRate] = [median(apis.map(rate)), median(bares.map(rate))]
      const perPut = (runs: Run[], pick: (r: Run) => number) => median(runs.map((r) => pick(r) / r.puts))
      const [apiCpu, workerCpu, bareCpu] = [perPut(apis, (r) => r.apiCpuUs!), perPut(apis, (r) => r.workerCpuUs!), perPut(bares, (r) => r.cpuUs)]
      const f = faults
      const failed = f.api.views.reduce((n, v) => n + v.failed, 0)
      const written = f.api.views.reduce((n, v) => n + v.written, 0)
      const allWritten = f.inTable === puts && written === puts && failed === 0
      return [
        {
          scenario: `7. batch writes: ${shape}, vs BatchWriteItem loop`,
          figure: `API ${fmtInt(apiRate)} puts/s, CPU/put ${fmtUs(apiCpu)} API + ${fmtUs(workerCpu)} worker`,
          reference: `bare loop ${fmtInt(bareRate)} puts/s, ${fmtUs(bareCpu)} CPU/put`,
          ratio: fmtRatio(ratio),
          target: 'reported',
          verdict: 'reported',
          data: { puts, batches: bodies.length, lanes, rounds, apis, bares, ratios: apis.map((a, i) => rate(a) / rate(bares[i]!)) },
        },
        {
          scenario: `7. batch writes, ${fmtInt(puts)} puts, ${Math.round(UNPROCESSED * 100)}% unprocessed injected`,
          figure: `${fmtInt(f.inTable)}/${fmtInt(puts)} in table (Scan COUNT), written ${fmtInt(written)}, failed ${failed}; ${fmtInt(f.api.calls)} attempts (${fmtInt(minCalls)} with no faults), ${secs(f.api.ms)}`,
          reference: `bare loop, resends at once: ${fmtInt(f.bare.calls)} calls, ${secs(f.bare.ms)}`,
          ratio: fmtRatio(rate(f.api) / rate(f.bare)),
          target: 'all written',
          verdict: allWritten ? 'pass' : 'FAIL',
          data: {
            unprocessedRate: UNPROCESSED,
            inTable: f.inTable,
            written,
            failed,
            attempts: f.api.calls,
            proxyCalls: f.proxyCalls,
            handedBack: f.handedBack,
            minCalls,
            ms: f.api.ms,
            batches: f.api.views,
            bare: { ...f.bare, inTable: f.bareInTable },
          },
        },
      ]
    } finally {
      direct.close()
    }
  },
}
