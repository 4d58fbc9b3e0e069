import type { Redis } from 'ioredis'
import { type KeyedCommand, pipelineByTag } from '../redis/index.ts'
import type { RedisKeys } from '../redis/keys.ts'
import type { CacheOutcome } from './read-cache.ts'
import type { CachedResource } from './resources.ts'
import { historyCommands } from './stats-history.ts'

export interface TableStats {
  hits: number
  misses: number
  stale: number
  errors: number
  lastAccess: string | null
}

export interface StatsSnapshot {
  totals: { hits: number; misses: number; stale: number; errors: number; hitRate: number }
  tables: Record<string, TableStats>
  popular: Array<{ table: string; score: number }>
}

/**
 * Hit/miss/stale/error counters and a decaying popularity score per table. Counted in memory and
 * flushed to Redis in one pipeline per interval, so a request costs no Redis round trip for stats;
 * every process adds into the same keys, so a read merges the whole fleet.
 */
export interface CacheStats {
  record(table: string | null, outcome: CacheOutcome | 'error'): void
  /** Counts a request for a page or query, so prefetch can keep a table's most requested reads warm. */
  recordRead(resource: CachedResource): void
  /** A table's most requested reads, most requested first. */
  hotReads(table: string, top: number): Promise<CachedResource[]>
  flush(): Promise<void>
  /** Counters merged over the fleet; with `visible`, only those tables, and totals and popularity over them. */
  snapshot(top?: number, visible?: (table: string) => boolean): Promise<StatsSnapshot>
  /** Tables by popularity, most popular first (prefetch uses this). */
  popular(top: number): Promise<Array<{ table: string; score: number }>>
  close(): Promise<void>
}

const COUNTER: Record<CacheOutcome | 'error', keyof Omit<TableStats, 'lastAccess'>> = {
  hit: 'hits',
  stale: 'stale',
  miss: 'misses',
  revalidated: 'misses',
  bypass: 'misses',
  'stale-if-error': 'stale',
  error: 'errors',
}

const COUNTER_NAMES: ReadonlySet<string> = new Set(Object.values(COUNTER))

function chunkPairs(flat: string[]): string[][] {
  const pairs: string[][] = []
  for (let i = 0; i < flat.length; i += 2) pairs.push([flat[i]!, flat[i + 1]!])
  return pairs
}

const HOUR_MS = 3600_000
/** Popularity looks back this many hours, each hour weighing half the one after it. */
const POPULARITY_HOURS = 12
const LIST = '*'
const HOT_READS_KEPT = 100
/** Distinct reads of one table counted in memory between two flushes. */
const HOT_READS_PENDING_MAX = 1000

export interface CacheStatsOptions {
  redis: Redis
  keys: RedisKeys
  ttlSeconds: number
  flushIntervalMs?: number
  /** Turns counting off entirely (the benchmark measures what stats cost). */
  enabled?: boolean
  now?: () => number
}

export function createCacheStats({ redis, keys, ttlSeconds, flushIntervalMs = 1000, enabled = true, now = Date.now }: CacheStatsOptions): CacheStats {
  let pending = new Map<string, number>()
  let lastAccess = new Map<string, number>()
  let popularity = new Map<string, number>()
  let hot = new Map<string, Map<string, number>>()
  // A read's member in the hot-reads set, by the resource object (the hit lane keeps one per route).
  const members = new WeakMap<CachedResource, string>()

  const bump = (field: string) => pending.set(field, (pending.get(field) ?? 0) + 1)

  async function flush() {
    if (pending.size === 0 && popularity.size === 0) return
    const [counts, access, popular, reads] = [pending, lastAccess, popularity, hot]
    pending = new Map()
    lastAccess = new Map()
    popularity = new Map()
    hot = new Map()
    const bucket = Math.floor(now() / HOUR_MS)
    // Counters and popularity share the `{*}` slot, each table's hot reads are in the table's own slot.
    const commands: KeyedCommand[] = []
    const on = (key: string, add: KeyedCommand['add']) => commands.push({ key, add })
    for (const [field, n] of counts) on(keys.stats, (p) => p.hincrby(keys.stats, field, n))
    // The same counts per minute, for GET /cache/stats/history.
    commands.push(...historyCommands(keys, counts, now()))
    for (const [table, at] of access) on(keys.stats, (p) => p.hset(keys.stats, `${table}|last`, at))
    on(keys.stats, (p) => p.expire(keys.stats, ttlSeconds))
    const hour = keys.popularity(bucket)
    for (const [table, n] of popular) on(hour, (p) => p.zincrby(hour, n, table))
    if (popular.size > 0) on(hour, (p) => p.expire(hour, (POPULARITY_HOURS + 1) * 3600))
    for (const [table, members] of reads) {
      const key = keys.hotReads(table)
      for (const [member, n] of members) on(key, (p) => p.zincrby(key, n, member))
      // Keep the 100 most requested; the tail is noise.
      on(key, (p) => p.zremrangebyrank(key, 0, -(HOT_READS_KEPT + 1)))
      on(key, (p) => p.expire(key, ttlSeconds))
    }
    try {
      await pipelineByTag(redis, commands)
    } catch {
      // Redis is down: statistics are best effort, and losing an interval beats blocking requests.
    }
  }

  const timer = enabled ? setInterval(() => void flush(), flushIntervalMs) : undefined
  timer?.unref()

  async function popular(top: number) {
    const bucket = Math.floor(now() / HOUR_MS)
    const buckets = Array.from({ length: POPULARITY_HOURS }, (_, i) => keys.popularity(bucket - i))
    const weights = buckets.map((_, i) => 2 ** -i)
    const reply = (await redis.call('ZUNION', buckets.length, ...buckets, 'WEIGHTS', ...weights, 'WITHSCORES')) as unknown[]
    // RESP2 answers a flat [member, score, ...]; RESP3 answers [[member, score], ...].
    const pairs = Array.isArray(reply[0]) ? (reply as string[][]) : chunkPairs(reply as string[])
    const ranked = pairs.map(([table, score]) => ({ table: String(table), score: Math.round(Number(score) * 1000) / 1000 }))
    return ranked.sort((a, b) => b.score - a.score).slice(0, top)
  }

  return {
    record(table, outcome) {
      if (!enabled) return
      const name = table ?? LIST
      bump(`${name}|${COUNTER[outcome]}`)
      lastAccess.set(name, now())
      if (table !== null) popularity.set(table, (popularity.get(table) ?? 0) + 1)
    },
    recordRead(resource) {
      if (!enabled || resource.table === null) return
      // The hit lane answers a hot read with the same resource object each time: its JSON is made once.
      let member = members.get(resource)
      if (member === undefined) {
        member = JSON.stringify(resource)
        members.set(resource, member)
      }
      const table = hot.get(resource.table) ?? new Map<string, number>()
      hot.set(resource.table, table)
      // Between two flushes, distinct reads past this bound are not counted: the tail is noise anyway.
      if (table.size >= HOT_READS_PENDING_MAX && !table.has(member)) return
      table.set(member, (table.get(member) ?? 0) + 1)
    },
    async hotReads(table, top) {
      const members = await redis.zrevrange(keys.hotReads(table), 0, top - 1)
      return members.map((m) => JSON.parse(m) as CachedResource)
    },
    flush,
    popular,
    async snapshot(top = 10, visible) {
      await flush()
      // Narrowed, the ranking is taken over every table first (ZUNION returns them all anyway), then cut.
      const [raw, everyTable] = await Promise.all([redis.hgetall(keys.stats), popular(visible ? Number.MAX_SAFE_INTEGER : top)])
      const ranked = visible ? everyTable.filter((p) => visible(p.table)).slice(0, top) : everyTable
      // Table names come from requests, and `__proto__` is a valid one: no prototype to write through.
      const tables: Record<string, TableStats> = Object.create(null)
      const totals = { hits: 0, misses: 0, stale: 0, errors: 0, hitRate: 0 }
      for (const [field, value] of Object.entries(raw)) {
        const bar = field.lastIndexOf('|')
        const [table, counter] = [field.slice(0, bar), field.slice(bar + 1)]
        if (visible && !visible(table)) continue
        const stats = tables[table] ?? { hits: 0, misses: 0, stale: 0, errors: 0, lastAccess: null }
        tables[table] = stats
        if (counter === 'last') stats.lastAccess = new Date(Number(value)).toISOString()
        else if (COUNTER_NAMES.has(counter)) {
          const n = Number(value)
          stats[counter as keyof typeof totals & keyof TableStats] = n as never
          totals[counter as 'hits' | 'misses' | 'stale' | 'errors'] += n
        }
      }
      const answered = totals.hits + totals.stale + totals.misses
      totals.hitRate = answered === 0 ? 0 : Math.round(((totals.hits + totals.stale) / answered) * 10000) / 10000
      return { totals, tables, popular: ranked }
    },
    async close() {
      if (timer) clearInterval(timer)
      await flush()
    },
  }
}
