import type { Row } from '../lib/report.ts'
import { batchWrites } from './batch-writes.ts'
import { cacheHitGzip, cacheHitPlain } from './cache-hit.ts'
import { coherence } from './coherence.ts'
import type { Scenario, ScenarioContext } from './context.ts'
import { exportJsonl } from './export.ts'
import { latency } from './latency.ts'
import { missPath } from './miss-path.ts'
import { nearCacheOff } from './near-cache-off.ts'
import { revalidation } from './revalidation.ts'
import { stampede } from './stampede.ts'
import { statsOverhead } from './stats-overhead.ts'
import { streamsVisibility } from './streams-visibility.ts'

/** Issue 8's scenarios, in its order. */
export const SCENARIOS: readonly Scenario[] = [
  cacheHitGzip,
  cacheHitPlain,
  revalidation,
  stampede,
  missPath,
  exportJsonl,
  batchWrites,
  statsOverhead,
  latency,
  nearCacheOff,
  coherence,
  streamsVisibility,
]

/**
 * The order they run in: the HTTP throughput comparisons first, while both API processes are fresh.
 * Stampede, miss path, export and batch writes leave the main API process with a bigger heap
 * (2.6 MB batch bodies, thousands of entries), which then showed as a gap between it and the
 * statistics-off process in scenario 8 (0.87x in a full run, 0.96x alone). Rows print in issue order.
 */
export const RUN_ORDER: readonly Scenario[] = [
  cacheHitGzip,
  cacheHitPlain,
  revalidation,
  statsOverhead,
  latency,
  nearCacheOff,
  stampede,
  missPath,
  exportJsonl,
  batchWrites,
  coherence,
  streamsVisibility,
]

const label = (s: Scenario) => `${s.id}. ${s.title}`

const placeholder = (s: Scenario, verdict: Row['verdict'], figure: string): Row => ({
  scenario: label(s),
  figure,
  reference: '-',
  ratio: '-',
  target: s.target,
  verdict,
})

/** Runs one scenario; a missing feature gives "not built", a crash gives an error row (and the run goes on). */
export async function runScenario(scenario: Scenario, ctx: ScenarioContext): Promise<Row[]> {
  if (scenario.requires && !ctx.stack.features[scenario.requires]) return [placeholder(scenario, 'not built', 'not built')]
  if (!scenario.run) return [placeholder(scenario, 'not measured', 'route exists; scenario not written yet')]
  try {
    return await scenario.run(ctx)
  } catch (err) {
    ctx.log(`  ${label(scenario)} failed: ${(err as Error).stack ?? err}`)
    return [{ ...placeholder(scenario, 'error', `error: ${(err as Error).message.slice(0, 80)}`), data: { error: String(err) } }]
  }
}
