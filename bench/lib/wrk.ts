import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Cleanup } from './cleanup.ts'
import type { LoadRequest, LoadResult, LoadTool } from './load.ts'

const REPORT_SCRIPT = fileURLToPath(new URL('./wrk-report.lua', import.meta.url))

interface WrkReport {
  requests: number
  durationUs: number
  bytes: number
  errors: { connect: number; read: number; write: number; status: number; timeout: number }
  latencyUs: { p50: number; p90: number; p99: number; max: number; mean: number }
}

/** wrk with one thread (the other core is the server's), its summary read from a Lua done() hook. */
export function createWrk(cleanup: Cleanup, version: string): LoadTool {
  return {
    name: `wrk ${version} (1 thread)`,
    run: (request) => runWrk(cleanup, request),
  }
}

function runWrk(cleanup: Cleanup, { url, headers, connections, durationS }: LoadRequest): Promise<LoadResult> {
  const args = ['-t1', `-c${connections}`, `-d${durationS}s`, '--timeout', '5s', '-s', REPORT_SCRIPT]
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}: ${value}`)
  args.push(url)
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    const drop = cleanup.add(`wrk ${url}`, () => void child.kill('SIGKILL'))
    // wrk stops itself after durationS; this only bounds a wedged run.
    const guard = setTimeout(() => child.kill('SIGKILL'), (durationS + 15) * 1000)
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    child.stderr.on('data', (c: Buffer) => (out += c.toString()))
    child.once('error', (err) => {
      clearTimeout(guard)
      drop()
      reject(err)
    })
    child.once('close', (code, signal) => {
      clearTimeout(guard)
      drop()
      const line = out.split('\n').find((l) => l.startsWith('WRK_JSON '))
      if (code !== 0 || !line) {
        reject(new Error(`wrk ${signal ?? `exited ${code}`} for ${url}: ${out.trim().slice(-400)}`))
        return
      }
      const r = JSON.parse(line.slice('WRK_JSON '.length)) as WrkReport
      const seconds = r.durationUs / 1e6
      resolve({
        requests: r.requests,
        durationS: seconds,
        rps: r.requests / seconds,
        bytes: r.bytes,
        latencyMs: { p50: r.latencyUs.p50 / 1000, p90: r.latencyUs.p90 / 1000, p99: r.latencyUs.p99 / 1000, max: r.latencyUs.max / 1000 },
        badStatus: r.errors.status,
        socketErrors: r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout,
      })
    })
  })
}
