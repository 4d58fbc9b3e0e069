import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import type { Cleanup } from './cleanup.ts'

/** Pids of this process's direct children, from /proc (empty where /proc is absent). */
export function childPids(parent = process.pid): number[] {
  const pids: number[] = []
  let entries: string[] = []
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e))
  } catch {
    return pids
  }
  for (const entry of entries) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      // Field 4 (ppid) follows the parenthesised command name and the state.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === parent) pids.push(Number(entry))
    } catch {
      // The process ended while we looked.
    }
  }
  return pids
}

// $1 is the pid to watch, the rest are the pids to stop once it is gone.
const SCRIPT = 'p=$1; shift; while kill -0 "$p" 2>/dev/null; do sleep 1; done; kill -TERM "$@" 2>/dev/null; sleep 3; kill -KILL "$@" 2>/dev/null'

/**
 * A detached shell that stops the given processes if this one dies without cleaning up (SIGKILL):
 * signals and errors are handled by the cleanup steps, but redis-server and dynalite cannot notice
 * their parent's death themselves. Stopped first by the cleanup, once it is not needed.
 */
export function startWatchdog(cleanup: Cleanup, pids: readonly number[]): void {
  if (pids.length === 0) return
  const child = spawn('sh', ['-c', SCRIPT, 'bench-watchdog', String(process.pid), ...pids.map(String)], {
    stdio: 'ignore',
    detached: true,
  })
  child.unref()
  cleanup.add('watchdog', () => void child.kill('SIGKILL'))
}
