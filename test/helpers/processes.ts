import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { stopChild, waitForOutput } from '../../src/local/services/ports.ts'
import type { Tap } from './tap.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export interface ChildHandle {
  readonly child: ChildProcess
  /** Everything it printed so far. */
  output(): string
  /** Resolves with the exit code (or signal name) once it exits. */
  readonly exited: Promise<number | string>
  signal(sig: NodeJS.Signals): void
  stop(): Promise<void>
}

/** Runs one of dynacache's entry points (src/api/server.ts, src/workers/main.ts) as a real child process. */
export function startEntry(t: Tap | undefined, entry: string, env: Record<string, string>): ChildHandle {
  const child = spawn(process.execPath, ['--import=tsx', entry], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()))
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()))
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig ?? 'unknown')))
  const handle: ChildHandle = {
    child,
    output: () => out,
    exited,
    signal: (sig) => child.kill(sig),
    stop: () => stopChild(child, 'SIGKILL', 0),
  }
  t?.teardown(async () => {
    await handle.stop()
    // A failed test shows what the process said (or DC_TEST_CHILD_LOGS=1 always does).
    if (process.env.DC_TEST_CHILD_LOGS || t.passing?.() === false) {
      process.stderr.write(`--- ${entry} (pid ${child.pid}) output, last 8 KB ---\n${out.slice(-8192)}\n--- end ${entry} ---\n`)
    }
  })
  return handle
}

/**
 * Waits for a child to print a line matching `pattern` (pino JSON logs, e.g. /"worker.started"/). A minute: a
 * process importing the app through tsx took over 20 s on a machine loaded to 8 on 2 cores.
 */
export function waitForLog(handle: ChildHandle, pattern: RegExp, timeoutMs = 60_000): Promise<void> {
  if (pattern.test(handle.output())) return Promise.resolve()
  return waitForOutput(handle.child, pattern, 'child process', timeoutMs)
}
