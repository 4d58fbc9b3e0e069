import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { stopChild } from '../../src/local/services/ports.ts'
import { entries } from './build.ts'
import type { Cleanup } from './cleanup.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** What the bare client (bare-client.ts, a process of its own) is asked to do; see that file. */
export type BareTask =
  | {
      mode: 'scan'
      endpoint: string
      table: string
      segments: number
      /** Items per Scan page (the export's EXPORT_PAGE_LIMIT); 0 = DynamoDB's 1 MB pages. */
      limit: number
      /** The JSONL file to write. */
      out: string
      /** A small table scanned the same way first, untimed. */
      warmupTable: string
    }
  | {
      mode: 'batch-write'
      endpoint: string
      table: string
      /** Items benchItem(first) .. benchItem(first + count - 1) are put. */
      first: number
      count: number
      lanes: number
      /** Puts of the first items of the same range, untimed, before the timed run. */
      warmupPuts: number
      timeoutMs: number
    }

export interface BareResult {
  ms: number
  items: number
  /** scan: bytes of JSONL written. */
  bytes?: number
  /** batch-write: BatchWriteItem calls and requests handed back unprocessed. */
  calls?: number
  unprocessed?: number
  /** User + system CPU of this process during the timed run. */
  cpuUs: number
  /** VmHWM of this process at the end. */
  peakRssBytes: number
}

export const BARE_RESULT_MARK = 'BARE_RESULT '

/**
 * Runs one bare task in a child process (compiled like the workers, see build.ts) and returns its
 * result; throws with its output if it fails.
 */
export async function runBare(cleanup: Cleanup, log: (line: string) => void, task: BareTask, timeoutMs = 600_000): Promise<BareResult> {
  const entry = await entries(log)
  const child = spawn(process.execPath, [...entry.bare, JSON.stringify(task)], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local' },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  })
  const drop = cleanup.add(`bare ${task.mode}`, () => stopChild(child, 'SIGKILL', 0))
  let output = ''
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()))
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()))
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  try {
    const [code, signal] = (await new Promise((resolve) => child.once('exit', (c, s) => resolve([c, s])))) as [number | null, string | null]
    const line = output.split('\n').find((l) => l.startsWith(BARE_RESULT_MARK))
    if (code !== 0 || !line) throw new Error(`bare ${task.mode} exited ${signal ?? code}: ${output.slice(-800)}`)
    return JSON.parse(line.slice(BARE_RESULT_MARK.length)) as BareResult
  } finally {
    clearTimeout(timer)
    drop()
  }
}
