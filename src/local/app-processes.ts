import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { stopChild } from './services/ports.ts'

export type AppName = 'api' | 'worker'

/** A dynacache entry point (API or worker) run as a child process of the local stack. */
export interface AppProcess {
  readonly name: AppName
  readonly child: ChildProcess
  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  stop(graceMs: number): Promise<void>
}

const ENTRIES: Record<AppName, string> = { api: '../api/server', worker: '../workers/main' }

// Run from dist/ the entries are compiled .js; run from src/ (tests, tsx) they are .ts and need the
// same loader this process was started with.
const fromSource = import.meta.url.endsWith('.ts')

/** Starts `node <entry>` with its output on this terminal; `onExit` hears of every exit. */
export function startApp(
  name: AppName,
  env: Record<string, string>,
  onExit: (name: AppName, code: number | null, signal: NodeJS.Signals | null) => void,
): AppProcess {
  const entry = fileURLToPath(new URL(`${ENTRIES[name]}${fromSource ? '.ts' : '.js'}`, import.meta.url))
  const child = spawn(process.execPath, [...(fromSource ? process.execArgv : []), entry], {
    env,
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  child.once('exit', (code, signal) => onExit(name, code, signal))
  return { name, child, stop: (graceMs) => stopChild(child, 'SIGTERM', graceMs) }
}

/** Polls GET /health until it answers 200; rejects after `timeoutMs` or when `signal` aborts. */
export async function waitForHealth(baseUrl: string, signal: AbortSignal, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = 'no answer'
  while (Date.now() < deadline) {
    signal.throwIfAborted()
    try {
      const res = await fetch(`${baseUrl}/health`, {
        signal: AbortSignal.any([signal, AbortSignal.timeout(2000)]),
      })
      if (res.ok) return
      last = `HTTP ${res.status}`
    } catch (err) {
      signal.throwIfAborted()
      last = (err as Error).message
    }
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  throw new Error(`the API did not answer ${baseUrl}/health within ${timeoutMs / 1000} s (${last})`)
}
