/** How long and how often each part of the benchmark runs; `--quick` trades precision for time. */
export interface BenchOptions {
  quick: boolean
  /** Measured length of one HTTP load run, seconds (wrk takes whole seconds). */
  durationS: number
  /** Discarded run before each measured one, seconds. */
  warmupS: number
  /** Concurrent connections of every HTTP load run. */
  connections: number
  /** Measured runs per compared route; routes alternate A, B, B, A... */
  rounds: { hit: number; plain: number; revalidate: number; stats: number; latency: number; nearOff: number }
  stampede: { requests: number; rounds: number }
  miss: { samples: number; warmup: number }
  /** Scenario 6: items in the export table (seeded once per run) and alternating export / bare-Scan rounds. */
  export: { items: number; rounds: number }
  /**
   * Scenario 7: puts per run, operations per POSTed batch (at most the API's 10,000) and alternating
   * API / bare-loop rounds (then one run of each with unprocessed requests injected).
   */
  batch: { puts: number; perBatch: number; rounds: number }
  /** Items per page of the hot and cold pages (~200 B each, so ~20 KB). */
  pageItems: number
  /** Use the Node HTTP load loop even when wrk is installed. */
  nodeLoad: boolean
  /** Exit 1 when a target fails (a crashed scenario always exits 1). */
  strict: boolean
  /** Scenario ids to run (all when empty). */
  only: ReadonlySet<string>
}

const FULL: Omit<BenchOptions, 'nodeLoad' | 'strict' | 'only'> = {
  quick: false,
  durationS: 5,
  warmupS: 1,
  connections: 50,
  rounds: { hit: 5, plain: 4, revalidate: 4, stats: 6, latency: 3, nearOff: 8 },
  stampede: { requests: 500, rounds: 3 },
  miss: { samples: 40, warmup: 5 },
  export: { items: 200_000, rounds: 3 },
  batch: { puts: 20_000, perBatch: 10_000, rounds: 3 },
  pageItems: 100,
}

const QUICK: typeof FULL = {
  ...FULL,
  quick: true,
  durationS: 2,
  rounds: { hit: 2, plain: 1, revalidate: 2, stats: 2, latency: 1, nearOff: 3 },
  stampede: { requests: 500, rounds: 1 },
  miss: { samples: 15, warmup: 3 },
  // A tenth of the table: seeding 200,000 items alone takes most of a minute.
  export: { items: 20_000, rounds: 2 },
  // Half the puts in two batches: the same shape (two jobs, the same calls in flight) in half the time.
  batch: { puts: 10_000, perBatch: 5_000, rounds: 1 },
}

export const USAGE = `npm run bench [-- options]
  --quick        short run (under 2 minutes), does not rewrite BENCHMARKS.md
  --only=1,4     run only these scenarios
  --node-load    use the built-in Node HTTP load loop instead of wrk
  --strict       exit 1 when a target fails
  --help`

export function parseOptions(argv: readonly string[]): BenchOptions | 'help' {
  let quick = false
  let nodeLoad = false
  let strict = false
  let only = new Set<string>()
  for (const arg of argv) {
    if (arg === '--quick') quick = true
    else if (arg === '--node-load') nodeLoad = true
    else if (arg === '--strict') strict = true
    else if (arg.startsWith('--only=')) only = new Set(arg.slice('--only='.length).split(',').filter(Boolean))
    else if (arg === '--help' || arg === '-h') return 'help'
    else throw new Error(`unknown option ${arg}\n${USAGE}`)
  }
  return { ...(quick ? QUICK : FULL), nodeLoad, strict, only }
}
