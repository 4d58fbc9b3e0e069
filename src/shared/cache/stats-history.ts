import type { Redis } from 'ioredis'
import { type KeyedCommand, pipelineByTag } from '../redis/index.ts'
import type { RedisKeys } from '../redis/keys.ts'

/** One minute, the history's resolution. */
export const MINUTE_MS = 60_000
/** How far back GET /cache/stats/history can look. */
export const MAX_HISTORY_MINUTES = 24 * 60
/**
 * Each minute's hash lives this long after its last write: an hour more than the 24 h the API reads,
 * so the oldest minute shown is never half expired.
 */
export const HISTORY_RETENTION_S = 25 * 3600

const COUNTERS = ['hits', 'misses', 'stale', 'errors'] as const
export type HistoryCounter = (typeof COUNTERS)[number]
const IS_COUNTER: ReadonlySet<string> = new Set(COUNTERS)

/** Per-minute counts, oldest first, one entry per minute of `StatsHistoryPage.times`. */
export type HistorySeries = Record<HistoryCounter, number[]>

export interface StatsHistoryPage {
  /** Seconds between two points (60). */
  step: number
  /** Start of each minute, epoch seconds, oldest first; the last one is the current, still filling, minute. */
  times: number[]
  /** Every table added up (the table list's own reads included, under `*`). */
  totals: HistorySeries
  /** Per table, only tables with a count in the window. */
  tables: Record<string, HistorySeries>
}

export interface StatsHistoryReadOptions {
  /** Minutes to return, ending with the current one (1..MAX_HISTORY_MINUTES). */
  minutes: number
  /** Only this table (totals are then that table's counts). */
  table?: string
  /** Only tables this predicate admits, in `tables` and in `totals` (a key restricted to some tables). */
  visible?: (table: string) => boolean
}

/** Reads the per-minute counters every API process adds to (see `historyCommands`). */
export interface StatsHistory {
  read(options: StatsHistoryReadOptions): Promise<StatsHistoryPage>
}

export const epochMinute = (ms: number) => Math.floor(ms / MINUTE_MS)

/**
 * The commands adding one stats flush to the current minute's hash: the same `<table>|<counter>`
 * fields as the all-time counters, HINCRBY so every process's flush adds into one total.
 */
export function historyCommands(keys: RedisKeys, counts: ReadonlyMap<string, number>, at: number): KeyedCommand[] {
  if (counts.size === 0) return []
  const key = keys.statsMinute(epochMinute(at))
  const commands: KeyedCommand[] = []
  for (const [field, n] of counts) commands.push({ key, add: (p) => p.hincrby(key, field, n) })
  commands.push({ key, add: (p) => p.expire(key, HISTORY_RETENTION_S) })
  return commands
}

const emptySeries = (length: number): HistorySeries => ({
  hits: new Array(length).fill(0),
  misses: new Array(length).fill(0),
  stale: new Array(length).fill(0),
  errors: new Array(length).fill(0),
})

export function createStatsHistory({ redis, keys, now = Date.now }: { redis: Redis; keys: RedisKeys; now?: () => number }): StatsHistory {
  return {
    async read({ minutes, table, visible }) {
      const count = Math.min(Math.max(1, Math.floor(minutes)), MAX_HISTORY_MINUTES)
      const last = epochMinute(now())
      const first = last - count + 1
      const commands: KeyedCommand[] = Array.from({ length: count }, (_, i) => {
        const key = keys.statsMinute(first + i)
        return { key, add: (p) => p.hgetall(key) }
      })
      const replies = await pipelineByTag(redis, commands)
      const totals = emptySeries(count)
      // Table names come from requests, and `__proto__` is a valid one: no prototype to write through.
      const tables: Record<string, HistorySeries> = Object.create(null)
      for (const [i, [err, raw]] of replies.entries()) {
        if (err) throw err
        for (const [field, value] of Object.entries((raw ?? {}) as Record<string, string>)) {
          const bar = field.lastIndexOf('|')
          const [name, counter] = [field.slice(0, bar), field.slice(bar + 1)]
          if (!IS_COUNTER.has(counter)) continue
          if (table !== undefined && name !== table) continue
          if (visible && !visible(name)) continue
          const n = Number(value)
          const series = tables[name] ?? emptySeries(count)
          tables[name] = series
          series[counter as HistoryCounter][i]! += n
          totals[counter as HistoryCounter][i]! += n
        }
      }
      const times = Array.from({ length: count }, (_, i) => ((first + i) * MINUTE_MS) / 1000)
      return { step: MINUTE_MS / 1000, times, totals, tables }
    },
  }
}
