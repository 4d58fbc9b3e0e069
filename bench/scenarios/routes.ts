import { expectResponse, httpRequest } from '../lib/http.ts'
import type { Sample, SeriesSummary } from '../lib/measure.ts'
import { fmtInt, fmtMs, fmtRatio, fmtUs, median } from '../lib/numbers.ts'
import type { Row } from '../lib/report.ts'
import { type ApiProcess, type BenchStack, bearer } from '../lib/stack.ts'

/** Every measured request carries the same credentials, reference routes included (they ignore them). */
export const HEADERS = {
  gzip: { authorization: bearer('read'), 'accept-encoding': 'gzip' },
  plain: { authorization: bearer('read') },
  revalidate: (etag: string) => ({ authorization: bearer('read'), 'accept-encoding': 'gzip', 'if-none-match': etag }),
}

/** URLs of the hot page (through the cache) and of the reference routes on one API process. */
export function urls(stack: BenchStack, api: ApiProcess = stack.api) {
  return {
    hit: `${api.baseUrl}${stack.page.url}`,
    ceiling: `${api.refUrl}/bench/ceiling`,
    naive: `${api.refUrl}/bench/naive`,
    naiveLarge: `${api.refUrl}/bench/naive-1000`,
    hitLarge: `${api.baseUrl}${stack.largePage.url}`,
    redisBytes: `${api.refUrl}/bench/redis-bytes`,
  }
}

/** Makes every entry of a table invalid (generation bump) through the admin route. */
export async function invalidate(api: ApiProcess, table: string): Promise<void> {
  const res = await httpRequest(`${api.baseUrl}/tables/${table}/cache`, { method: 'DELETE', headers: { authorization: bearer('admin') } })
  if (res.status !== 200) throw new Error(`DELETE /tables/${table}/cache: ${res.status} ${res.body.toString().slice(0, 200)}`)
}

/** Checks a route answers as the scenario assumes before load is put on it. */
export const check = expectResponse

/** Throughput, server CPU per request and latency (p50/p99 under the run's closed loop of connections). */
export const throughput = (s: SeriesSummary, name = s.label) =>
  `${name} ${fmtInt(s.rps)} req/s, ${fmtUs(s.cpuUs)} CPU/req, p50 ${fmtMs(s.p50Ms)}, p99 ${fmtMs(s.p99Ms)}`

/** A row for a comparison that could not run (nginx absent): says why instead of a figure. */
export const skippedRow = (scenario: string, why: string, target = 'reported'): Row => ({
  scenario,
  figure: `skipped: ${why}`,
  reference: '-',
  ratio: '-',
  target,
  verdict: 'skipped',
})

/**
 * Median over rounds of a/b within each round: the two runs of a round are adjacent, so background
 * load that drifts between rounds (other work on a shared machine) cancels out of each ratio.
 */
export function pairedRatio(a: SeriesSummary, b: SeriesSummary, pick: (s: Sample) => number = (s) => s.rps): number {
  return median(a.samples.map((sample, i) => pick(sample) / pick(b.samples[i]!)))
}

/** A row comparing two routes' throughput, with a minimum ratio as target when there is one. */
export function throughputRow(scenario: string, a: SeriesSummary, b: SeriesSummary, min?: number): Row {
  const ratio = pairedRatio(a, b)
  return {
    scenario,
    figure: throughput(a),
    reference: throughput(b),
    ratio: fmtRatio(ratio),
    target: min === undefined ? 'reported' : `>= ${min}x`,
    verdict: min === undefined ? 'reported' : ratio >= min ? 'pass' : 'FAIL',
    data: { ratio, cpuRatio: pairedRatio(a, b, (x) => x.cpuUs), measured: a, reference: b },
  }
}
