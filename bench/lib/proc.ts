import { readFileSync } from 'node:fs'

/** One `VmXxx:  N kB` field of /proc/<pid>/status in bytes; NaN where /proc (or the process) is absent. */
function statusBytes(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status)
    return match ? Number(match[1]) * 1024 : Number.NaN
  } catch {
    return Number.NaN
  }
}

/** Peak resident set size of a process so far (VmHWM), bytes. */
export const peakRssBytes = (pid: number) => statusBytes(pid, 'VmHWM')

/** Resident set size of a process now (VmRSS), bytes. */
export const rssBytes = (pid: number) => statusBytes(pid, 'VmRSS')

export const fmtMb = (bytes: number) => (Number.isFinite(bytes) ? `${(bytes / 2 ** 20).toFixed(0)} MB` : 'n/a')
