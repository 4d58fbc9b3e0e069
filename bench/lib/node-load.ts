import { Agent, request } from 'node:http'
import type { LoadRequest, LoadResult, LoadTool } from './load.ts'
import { percentile } from './numbers.ts'

/**
 * The fallback when wrk is absent: N keep-alive connections from this process, each sending its next
 * request when the previous response ends. Bodies are counted, never decoded or turned into strings
 * (that is what makes autocannon distort gzip routes). It shares a core with nothing but the server,
 * yet a JS client is slower than wrk, so absolute figures are lower; ratios stay comparable.
 */
export function createNodeLoad(name: string): LoadTool {
  return { name, run: runNodeLoad }
}

async function runNodeLoad({ url, headers, connections, durationS }: LoadRequest): Promise<LoadResult> {
  const target = new URL(url)
  const agent = new Agent({ keepAlive: true, maxSockets: connections })
  const latencies: number[] = []
  let bytes = 0
  let badStatus = 0
  let socketErrors = 0
  const started = performance.now()
  const deadline = started + durationS * 1000

  const once = () =>
    new Promise<void>((resolve) => {
      const t0 = performance.now()
      const req = request({ host: target.hostname, port: target.port, path: `${target.pathname}${target.search}`, headers, agent }, (res) => {
        if ((res.statusCode ?? 0) >= 400) badStatus++
        res.on('data', (c: Buffer) => (bytes += c.length))
        res.on('end', () => {
          latencies.push(performance.now() - t0)
          resolve()
        })
        res.on('error', () => {
          socketErrors++
          resolve()
        })
      })
      req.on('error', () => {
        socketErrors++
        resolve()
      })
      req.end()
    })

  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < deadline) await once()
    }),
  )
  const seconds = (performance.now() - started) / 1000
  agent.destroy()
  return {
    requests: latencies.length,
    durationS: seconds,
    rps: latencies.length / seconds,
    bytes,
    latencyMs: {
      p50: percentile(latencies, 50),
      p90: percentile(latencies, 90),
      p99: percentile(latencies, 99),
      max: percentile(latencies, 100),
    },
    badStatus,
    socketErrors,
  }
}
