/**
 * `npm run bench`: issue 8's benchmark. Starts its own redis-server, dynalite and two API processes,
 * runs every scenario, prints one table, writes bench/results/latest.json and (full runs) the results
 * section of BENCHMARKS.md. Everything it starts is stopped on exit, error or Ctrl-C.
 */
import { cpus, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import closeWithGrace from 'close-with-grace'
import { createCleanup } from './lib/cleanup.ts'
import { pickLoadTool } from './lib/load.ts'
import { type MeasureSettings, measureInterleaved } from './lib/measure.ts'
import { fmtBytes } from './lib/numbers.ts'
import { type BenchOptions, parseOptions, USAGE } from './lib/options.ts'
import { markdownTable, type Row, textTable, updateBenchmarksMd, writeJson } from './lib/report.ts'
import { type BenchStack, describeRefMode, startStack } from './lib/stack.ts'
import type { ScenarioContext } from './scenarios/context.ts'
import { RUN_ORDER, runScenario, SCENARIOS } from './scenarios/index.ts'

const RESULTS = fileURLToPath(new URL('./results/latest.json', import.meta.url))
const BENCHMARKS_MD = fileURLToPath(new URL('../BENCHMARKS.md', import.meta.url))

const t0 = performance.now()
const elapsed = () => Math.round((performance.now() - t0) / 1000)
const log = (line: string) => process.stderr.write(`[bench ${String(elapsed()).padStart(3)}s] ${line}\n`)

let parsed: ReturnType<typeof parseOptions>
try {
  parsed = parseOptions(process.argv.slice(2))
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`)
  process.exit(2)
}
if (parsed === 'help') {
  process.stdout.write(`${USAGE}\n`)
  process.exit(0)
}
const options: BenchOptions = parsed

const cleanup = createCleanup(log)
/** Set on a signal or crash: stop between scenarios and write no results of a broken run. */
let aborting = false
const grace = closeWithGrace({ delay: 20_000, logger: false }, async ({ err, signal }) => {
  aborting = true
  if (signal) log(`${signal}: stopping everything the benchmark started`)
  if (err) log(`crashed: ${err.stack ?? err}`)
  await cleanup.run()
})

function describeRun(stack: BenchStack, loadName: string) {
  const cpu = cpus()
  const { page } = stack
  return {
    machine: `${cpu.length} x ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GB, Node ${process.version}`,
    load: `${loadName}, ${options.connections} connections, ${options.durationS} s per run after ${options.warmupS} s warm-up`,
    page: `${page.url}: ${page.items} items, ${fmtBytes(page.bytes)} JSON, ${fmtBytes(page.gzipBytes)} gzip`,
    reference: describeRefMode(stack.api.ready),
  }
}

function summary(rows: readonly Row[]): string {
  const failed = rows.filter((r) => r.verdict === 'FAIL' || r.verdict === 'error')
  return failed.length === 0
    ? 'Every measured target met.'
    : `Not met: ${failed.map((r) => `${r.scenario} (${r.verdict === 'error' ? 'error' : `${r.ratio}, target ${r.target}`})`).join('; ')}.`
}

async function main(): Promise<number> {
  const load = pickLoadTool(cleanup, options.nodeLoad)
  log(`${options.quick ? 'quick' : 'full'} run; HTTP load: ${load.name}`)
  const stack = await startStack(cleanup, options.pageItems, log)
  const settings: MeasureSettings = {
    load,
    durationS: options.durationS,
    warmupS: options.warmupS,
    connections: options.connections,
    log,
  }
  const ctx: ScenarioContext = { options, stack, load, cleanup, log, measure: (series, rounds) => measureInterleaved(settings, series, rounds) }

  const startedAt = new Date()
  const byScenario = new Map<string, Row[]>()
  for (const scenario of RUN_ORDER) {
    if (options.only.size > 0 && !options.only.has(scenario.id)) continue
    log(`${scenario.id}. ${scenario.title}`)
    byScenario.set(scenario.id, await runScenario(scenario, ctx))
    if (aborting) throw new Error('interrupted: no results written')
  }
  const rows: Row[] = SCENARIOS.flatMap((scenario) => byScenario.get(scenario.id) ?? [])

  const run = describeRun(stack, load.name)
  const mode = options.quick ? 'quick' : 'full'
  const header = [
    `dynacache benchmark, ${mode} run, ${startedAt.toISOString()}, ${elapsed()} s`,
    `machine: ${run.machine}`,
    `HTTP load: ${run.load}; figures are medians over alternating runs, ratios the median of per-round ratios`,
    `page: ${run.page}`,
    `reference routes: ${run.reference}`,
  ]
  process.stdout.write(`\n${header.join('\n')}\n\n${textTable(rows)}\n\n${summary(rows)}\n`)

  writeJson(RESULTS, {
    mode,
    startedAt: startedAt.toISOString(),
    durationS: elapsed(),
    ...run,
    loadTool: load.name,
    settings: { ...options, only: [...options.only] },
    page: stack.page,
    features: stack.features,
    rows,
  })
  log(`wrote ${RESULTS}`)
  if (!options.quick && options.only.size === 0) {
    updateBenchmarksMd(
      BENCHMARKS_MD,
      [
        `## Last full run`,
        '',
        `${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC, ${elapsed()} s. ${run.machine}.`,
        `HTTP load: ${run.load}. Page: ${run.page}. Reference routes: ${run.reference}.`,
        '',
        markdownTable(rows),
        '',
        summary(rows),
      ].join('\n'),
    )
    log(`rewrote the results section of ${BENCHMARKS_MD}`)
  } else {
    log('BENCHMARKS.md left alone (only full runs of every scenario rewrite it)')
  }

  if (rows.some((r) => r.verdict === 'error')) return 1
  return options.strict && rows.some((r) => r.verdict === 'FAIL') ? 1 : 0
}

let exitCode = 1
try {
  exitCode = await main()
} catch (err) {
  log(`failed: ${(err as Error).stack ?? err}`)
} finally {
  await cleanup.run()
  grace.uninstall()
}
process.exitCode = exitCode
