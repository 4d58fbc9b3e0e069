import type { Row } from '../lib/report.ts'
import { batchWrites } from './batch-writes.ts'
import { cacheHitGzip, cacheHitPlain } from './cache-hit.ts'
import type { Scenario, ScenarioContext } from './context.ts'
import { exportJsonl } from './export.ts'
import { latency } from './latency.ts'
import { missPath } from './miss-path.ts'
import { revalidation } from './revalidation.ts'
import { stampede } from './stampede.ts'
import { statsOverhead } from './stats-overhead.ts'

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
