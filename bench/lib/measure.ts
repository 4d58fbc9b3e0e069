import { cpuSeconds } from './cpu.ts'
import { httpRequest } from './http.ts'
import type { LoadResult, LoadTool } from './load.ts'
import { fmtInt, fmtMs, fmtUs, median } from './numbers.ts'

/** One route under HTTP load, and the process whose CPU time it is charged. */
export interface Series {
  key: string
  label: string
  url: string
  headers: Readonly<Record<string, string>>
  pid: number
  /** An API process's /bench/gc: the run's time in garbage collection is then read around it. */
  gcUrl?: string
}

export interface Sample {
  rps: number
  /** Server CPU (user + system, all threads) per request, µs. */
  cpuUs: number
  p50Ms: number
  p99Ms: number
  requests: number
  bytesPerRequest: number
  /** Share of the process's CPU time spent in garbage collection during the run (with `gcUrl`). */
  gcShare?: number
}

/** Medians over a series' measured runs. */
export interface SeriesSummary {
  key: string
  label: string
  rps: number
  cpuUs: number
  p50Ms: number
  p99Ms: number
  bytesPerRequest: number
  samples: Sample[]
}

export interface MeasureSettings {
  load: LoadTool
  durationS: number
  warmupS: number
  connections: number
  log(line: string): void
}

async function measureOnce(settings: MeasureSettings, series: Series): Promise<Sample> {
  const request = { url: series.url, headers: series.headers, connections: settings.connections }
  await settings.load.run({ ...request, durationS: settings.warmupS })
  const gcBefore = series.gcUrl ? await gcMs(series) : 0
  const cpuBefore = cpuSeconds(series.pid)
  const result: LoadResult = await settings.load.run({ ...request, durationS: settings.durationS })
  const cpuAfter = cpuSeconds(series.pid)
  const gcAfter = series.gcUrl ? await gcMs(series) : 0
  if (result.requests === 0 || result.badStatus > 0 || result.socketErrors > result.requests * 0.01) {
    throw new Error(`${series.label}: ${result.requests} requests, ${result.badStatus} outside 2xx/3xx, ${result.socketErrors} socket errors`)
  }
  return {
    rps: result.rps,
    cpuUs: ((cpuAfter - cpuBefore) * 1e6) / result.requests,
    p50Ms: result.latencyMs.p50,
    p99Ms: result.latencyMs.p99,
    requests: result.requests,
    bytesPerRequest: result.bytes / result.requests,
    ...(series.gcUrl ? { gcShare: (gcAfter - gcBefore) / ((cpuAfter - cpuBefore) * 1000) } : {}),
  }
}

/** The API process's time in garbage collection so far, ms (bench/server.ts, GET /bench/gc). */
async function gcMs(series: Series): Promise<number> {
  const res = await httpRequest(series.gcUrl!, { headers: { ...series.headers, 'accept-encoding': 'identity' } })
  if (res.status !== 200) throw new Error(`${series.gcUrl}: ${res.status}`)
  return (JSON.parse(res.body.toString()) as { ms: number }).ms
}

/**
 * Measures every series `rounds` times, alternating the order each round (A B C, C B A, ...) so slow
 * drift of the machine weighs on all of them alike. Each run follows a discarded warm-up run.
 */
export async function measureInterleaved(settings: MeasureSettings, series: readonly Series[], rounds: number): Promise<Record<string, SeriesSummary>> {
  const samples = new Map<string, Sample[]>(series.map((s) => [s.key, []]))
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? series : [...series].reverse()
    for (const s of order) {
      const sample = await measureOnce(settings, s)
      samples.get(s.key)!.push(sample)
      settings.log(
        `  round ${round + 1}/${rounds} ${s.label}: ${fmtInt(sample.rps)} req/s, ${fmtUs(sample.cpuUs)} CPU/req, ` +
          `p50 ${fmtMs(sample.p50Ms)}, p99 ${fmtMs(sample.p99Ms)}`,
      )
    }
  }
  const out: Record<string, SeriesSummary> = {}
  for (const s of series) {
    const list = samples.get(s.key)!
    out[s.key] = {
      key: s.key,
      label: s.label,
      rps: median(list.map((x) => x.rps)),
      cpuUs: median(list.map((x) => x.cpuUs)),
      p50Ms: median(list.map((x) => x.p50Ms)),
      p99Ms: median(list.map((x) => x.p99Ms)),
      bytesPerRequest: median(list.map((x) => x.bytesPerRequest)),
      samples: list,
    }
  }
  return out
}
