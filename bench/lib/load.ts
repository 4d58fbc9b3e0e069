import { spawnSync } from 'node:child_process'
import type { Cleanup } from './cleanup.ts'
import { createNodeLoad } from './node-load.ts'
import { createWrk } from './wrk.ts'

export interface LoadRequest {
  url: string
  headers: Readonly<Record<string, string>>
  connections: number
  durationS: number
}

/** One closed-loop HTTP load run: `connections` clients each sending the next request on a response. */
export interface LoadResult {
  requests: number
  durationS: number
  rps: number
  /** Response bytes read, headers included. */
  bytes: number
  latencyMs: { p50: number; p90: number; p99: number; max: number }
  /** Responses outside 2xx/3xx. */
  badStatus: number
  /** Connect, read, write errors and timeouts. */
  socketErrors: number
}

export interface LoadTool {
  /** What the output says was used, e.g. "wrk 4.1.0 (1 thread)". */
  readonly name: string
  run(request: LoadRequest): Promise<LoadResult>
}

function wrkVersion(): string | undefined {
  const probe = spawnSync('wrk', ['--version'], { encoding: 'utf8' })
  if (probe.error) return undefined
  const text = `${probe.stdout}${probe.stderr}`
  return /wrk\s+(\S+)/.exec(text)?.[1] ?? 'unknown version'
}

/** wrk when it is on PATH (and not refused with --node-load), else the built-in Node loop. */
export function pickLoadTool(cleanup: Cleanup, preferNode: boolean): LoadTool {
  const version = preferNode ? undefined : wrkVersion()
  if (version) return createWrk(cleanup, version)
  return createNodeLoad(preferNode ? 'node http loop (--node-load)' : 'node http loop (wrk not found on PATH)')
}
