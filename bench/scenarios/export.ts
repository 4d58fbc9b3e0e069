import { createReadStream } from 'node:fs'
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { createDynamoClients } from '../../src/shared/dynamo/client.ts'
import { createTable } from '../../test/helpers/tables.ts'
import { type BareResult, runBare } from '../lib/bare.ts'
import { writeItems } from '../lib/bulk.ts'
import { cpuSeconds } from '../lib/cpu.ts'
import { httpRequest } from '../lib/http.ts'
import { fmtInt, fmtRatio, fmtUs, median } from '../lib/numbers.ts'
import { fmtMb, peakRssBytes, rssBytes } from '../lib/proc.ts'
import { benchItem } from '../lib/seed.ts'
import { type BenchStack, bearer, EXPORT_SETTINGS, type WorkerProcess } from '../lib/stack.ts'
import type { Scenario } from './context.ts'

const TABLE = 'bench_export'
const RSS_LIMIT = 250 * 2 ** 20
/** Parallel BatchWriteItem calls that seed the table (straight to dynalite). */
const SEED_LANES = 8

interface Run {
  ms: number
  items: number
  bytes: number
  /** CPU time of the process that did the work (the worker, or the bare client), µs. */
  cpuUs: number
  /** The worker's largest VmRSS seen while polling, while segments ran and while the file was assembled. */
  rss?: { scanning: number; assembling: number }
  /** About how long the assembly (parts joined into the file) took: from the first poll that saw it to completedAt. */
  assemblyMs?: number
}

const rate = (r: Run) => (r.items * 1000) / r.ms
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Lines and bytes of a file, read as a stream. */
async function countLines(path: string): Promise<{ lines: number; bytes: number }> {
  let lines = 0
  let bytes = 0
  for await (const chunk of createReadStream(path)) {
    const buf = chunk as Buffer
    bytes += buf.length
    for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) lines++
  }
  return { lines, bytes }
}

/**
 * One export through the real system: POST /exports, polled until it is terminal. Its duration is the
 * export's own completedAt - createdAt (stamped by the API and the worker), so polling adds nothing.
 * The file is checked (one line per item) and removed.
 */
async function exportOnce(stack: BenchStack, worker: WorkerProcess, table: string, expected: number): Promise<Run> {
  const headers = { authorization: bearer('export'), 'content-type': 'application/json' }
  const cpu0 = cpuSeconds(worker.pid)
  const created = await httpRequest(`${stack.api.baseUrl}/exports`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ table, format: 'jsonl' }),
  })
  if (created.status !== 202) throw new Error(`POST /exports: ${created.status} ${created.body.toString().slice(0, 300)}`)
  const { id } = JSON.parse(created.body.toString()) as { id: string }
  const started = Date.now()
  const deadline = started + 60_000 + expected // a minute, plus 1 ms per item
  let view: {
    status: string
    progress: number
    processedItems: number
    createdAt: string
    completedAt: string | null
    error: string | null
    bytes: number | null
  }
  const rss = { scanning: 0, assembling: 0 }
  let assemblySeen: number | undefined
  for (;;) {
    const res = await httpRequest(`${stack.api.baseUrl}/exports/${id}`, { headers })
    if (res.status !== 200) throw new Error(`GET /exports/${id}: ${res.status} ${res.body.toString().slice(0, 300)}`)
    view = JSON.parse(res.body.toString())
    // Progress 95-99 is the assembly (the parts joined into the file); below, the segments scan.
    const phase = view.progress >= 95 ? 'assembling' : 'scanning'
    rss[phase] = Math.max(rss[phase], rssBytes(worker.pid) || 0)
    if (phase === 'assembling') assemblySeen ??= Date.now()
    if (['completed', 'failed', 'cancelled'].includes(view.status)) break
    if (Date.now() > deadline) throw new Error(`export ${id} of ${table} still ${view.status} after ${Math.round((Date.now() - started) / 1000)} s`)
    await sleep(100)
  }
  const cpuUs = (cpuSeconds(worker.pid) - cpu0) * 1e6
  if (view.status !== 'completed') throw new Error(`export ${id} of ${table} ${view.status}: ${view.error}`)
  if (view.processedItems !== expected) throw new Error(`export ${id} of ${table}: ${view.processedItems} items, expected ${expected}`)
  const dir = join(stack.exportDir, 'bench', id)
  const file = await countLines(join(dir, 'export.jsonl'))
  if (file.lines !== expected) throw new Error(`export ${id} of ${table}: the file has ${file.lines} lines, expected ${expected}`)
  await rm(dir, { recursive: true, force: true })
  const completedAt = Date.parse(view.completedAt!)
  const assemblyMs = Math.max(0, completedAt - (assemblySeen ?? completedAt))
  return { ms: completedAt - Date.parse(view.createdAt), items: view.processedItems, bytes: file.bytes, cpuUs, rss, assemblyMs }
}

/**
 * 6. A JSONL export of the whole table through the real system (API process, one real worker process
 * serving export-segment and export-assemble, EXPORT_SEGMENTS segments, local storage) against a bare
 * parallel Scan with the same segment count and page size that writes the same JSONL lines to one file
 * (bench/lib/bare-client.ts, a process of its own). Both read dynalite directly, the same endpoint;
 * the read budget is 0 (unlimited). Rounds alternate (E B, B E, ...); the ratio is the median of the
 * per-round ratios of items/s. The worker's peak RSS is its VmHWM over every round.
 */
export const exportJsonl: Scenario = {
  id: '6',
  title: 'export to JSONL vs parallel Scan',
  target: '>= 0.7x, worker RSS < 250 MB',
  requires: 'exports',
  async run({ stack, options, cleanup, log }) {
    const { items, rounds } = options.export
    const { segments, pageLimit } = EXPORT_SETTINGS
    const direct = createDynamoClients({ DYNAMODB_ENDPOINT: stack.dynamoEndpoint, AWS_REGION: 'us-east-1', DYNAMO_TIMEOUT_MS: 30_000 })
    const t0 = performance.now()
    try {
      await createTable(direct.raw, TABLE, { id: 'S' })
      await writeItems(direct.raw, TABLE, items, (i) => benchItem(i + 1), SEED_LANES)
    } finally {
      direct.close()
    }
    const seedMs = performance.now() - t0
    log(
      `  seeded ${TABLE} with ${fmtInt(items)} items in ${(seedMs / 1000).toFixed(1)} s (${fmtInt((items * 1000) / seedMs)} items/s, ${SEED_LANES} parallel BatchWriteItem)`,
    )

    const worker = await stack.startWorker('export worker', {
      DYNAMODB_ENDPOINT: stack.dynamoEndpoint,
      WORKER_QUEUES: 'export-segment,export-assemble',
      // Every segment of the export at once in this one process.
      WORKER_CONCURRENCY: String(Math.max(4, segments)),
    })
    const exports: Run[] = []
    const bares: Run[] = []
    const bareResults: BareResult[] = []
    let idleRss: number
    let peakRss: number
    try {
      idleRss = rssBytes(worker.pid)
      const bareDir = join(stack.scratchDir, 'bare')
      await mkdir(bareDir, { recursive: true })
      const bare = async (round: number): Promise<Run> => {
        const out = join(bareDir, `scan-${round}.jsonl`)
        const result = await runBare(cleanup, log, {
          mode: 'scan',
          endpoint: stack.dynamoEndpoint,
          table: TABLE,
          segments,
          limit: pageLimit,
          out,
          warmupTable: stack.tables.hot,
        })
        bareResults.push(result)
        const file = await countLines(out)
        if (result.items !== items || file.lines !== items) throw new Error(`bare Scan wrote ${file.lines} lines of ${result.items} items, expected ${items}`)
        await rm(out, { force: true })
        await rm(`${out}.warmup`, { force: true })
        return { ms: result.ms, items: result.items, bytes: file.bytes, cpuUs: result.cpuUs }
      }
      // Untimed: the first export of a fresh worker (JIT, connections); the bare client warms up the same way.
      await exportOnce(stack, worker, stack.tables.hot, 1000)
      for (let round = 0; round < rounds; round++) {
        const order = round % 2 === 0 ? (['export', 'bare'] as const) : (['bare', 'export'] as const)
        for (const side of order) {
          if (side === 'export') exports.push(await exportOnce(stack, worker, TABLE, items))
          else bares.push(await bare(round))
        }
        const [e, b] = [exports.at(-1)!, bares.at(-1)!]
        log(
          `  round ${round + 1}/${rounds}: export ${fmtInt(rate(e))} items/s (${(e.ms / 1000).toFixed(2)} s, ${fmtUs(e.cpuUs / e.items)} CPU/item), ` +
            `bare Scan ${fmtInt(rate(b))} items/s (${(b.ms / 1000).toFixed(2)} s, ${fmtUs(b.cpuUs / b.items)} CPU/item): ${fmtRatio(rate(e) / rate(b))}; ` +
            `assembly ~${(e.assemblyMs! / 1000).toFixed(1)} s; worker RSS seen ${fmtMb(e.rss!.scanning)} scanning, ${fmtMb(e.rss!.assembling)} assembling, VmHWM ${fmtMb(peakRssBytes(worker.pid))}`,
        )
      }
      peakRss = peakRssBytes(worker.pid)
    } finally {
      await worker.stop()
    }

    const ratio = median(exports.map((e, i) => rate(e) / rate(bares[i]!)))
    const [exportRate, bareRate] = [median(exports.map(rate)), median(bares.map(rate))]
    const [exportCpu, bareCpu] = [median(exports.map((r) => r.cpuUs / r.items)), median(bares.map((r) => r.cpuUs / r.items))]
    const bareRss = Math.max(...bareResults.map((r) => r.peakRssBytes))
    const size = `${fmtInt(items)} items${options.quick ? ' (--quick: smaller table)' : ''}, ${segments} segments`
    log(`  worker RSS ${fmtMb(idleRss)} idle after start, peak (VmHWM) ${fmtMb(peakRss)}; bare client peak ${fmtMb(bareRss)}`)
    return [
      {
        scenario: `6. export ${size} to JSONL vs parallel Scan`,
        figure: `export ${fmtInt(exportRate)} items/s, ${fmtUs(exportCpu)} worker CPU/item`,
        reference: `bare Scan ${fmtInt(bareRate)} items/s, ${fmtUs(bareCpu)} CPU/item`,
        ratio: fmtRatio(ratio),
        target: '>= 0.7x',
        verdict: ratio >= 0.7 ? 'pass' : 'FAIL',
        data: {
          items,
          segments,
          pageLimit,
          rounds,
          seedMs,
          exports,
          bares,
          ratios: exports.map((e, i) => rate(e) / rate(bares[i]!)),
          file: { bytes: exports[0]?.bytes, bytesPerItem: exports[0] ? exports[0].bytes / items : undefined },
        },
      },
      {
        scenario: `6. export worker peak RSS (${size})`,
        figure: `worker VmHWM ${fmtMb(peakRss)} (${fmtMb(idleRss)} after start; ${worker.runtime} JS)`,
        reference: `bare Scan process ${fmtMb(bareRss)}`,
        ratio: '-',
        target: '< 250 MB',
        verdict: peakRss < RSS_LIMIT ? 'pass' : 'FAIL',
        data: { peakRssBytes: peakRss, idleRssBytes: idleRss, bareRssBytes: bareRss, runtime: worker.runtime },
      },
    ]
  },
}
