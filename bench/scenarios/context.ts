import type { Cleanup } from '../lib/cleanup.ts'
import type { LoadTool } from '../lib/load.ts'
import type { Series, SeriesSummary } from '../lib/measure.ts'
import type { BenchOptions } from '../lib/options.ts'
import type { Row } from '../lib/report.ts'
import type { Features } from '../lib/server-protocol.ts'
import type { BenchStack } from '../lib/stack.ts'

export interface ScenarioContext {
  options: BenchOptions
  stack: BenchStack
  load: LoadTool
  /** Undo steps run at the end (or on a crash): register every process a scenario starts. */
  cleanup: Cleanup
  log(line: string): void
  /** Alternating wrk runs of the given routes (see lib/measure.ts), medians per route. */
  measure(series: readonly Series[], rounds: number): Promise<Record<string, SeriesSummary>>
}

/**
 * One numbered scenario of issue 8. A scenario whose feature has not landed declares `requires` and
 * prints "not built"; writing its `run` is all it takes to add it.
 */
export interface Scenario {
  id: string
  title: string
  /** Target as the issue states it, shown on "not built" rows. */
  target: string
  requires?: keyof Features
  run?(ctx: ScenarioContext): Promise<Row[]>
}
