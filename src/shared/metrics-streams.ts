import { Counter, Gauge, type Registry } from 'prom-client'
import type { RedisKeys } from './redis/keys.ts'

/*
 * The DynamoDB Streams follower's metrics (src/workers/streams). Workers serve no /metrics: the follower
 * keeps its state in Redis as it works (lease.ts: in the same script call as each checkpoint or lease
 * renewal) and every API process reads it at scrape time, so each reports the same fleet-wide values.
 */

/** One followed table's state, as a scrape reads it. */
export interface StreamsTableState {
  table: string
  /** Records applied to the cache, fleet-wide, since the table was first followed. */
  applied: number
  /** Whole-table invalidations because unread stream history was trimmed or lost. */
  lost: number
  /** Shards whose lease is held now (not expired). */
  held: number
  /**
   * Seconds the follower may be behind: 0 for a shard whose holder is alive and last found its tip
   * after its last record; else now minus the newest of the last applied record's creation time and the
   * last time the shard was found at its tip. The table's is its worst shard's; undefined while no
   * shard has been read yet.
   */
  lagSeconds: number | undefined
}

/** The state of one table from its stats and live hashes (keys.ts `streamFollow`), at `nowMs` (Redis time). */
export function streamsTableState(table: string, stats: Record<string, string>, live: Record<string, string>, nowMs: number): StreamsTableState {
  const shards = new Map<string, { e?: number; c?: number; t?: number }>()
  for (const [field, value] of Object.entries(live)) {
    const kind = field.slice(0, 2)
    if (kind !== 'e:' && kind !== 'c:' && kind !== 't:') continue
    const shard = field.slice(2)
    const entry = shards.get(shard) ?? {}
    entry[kind[0] as 'e' | 'c' | 't'] = Number(value)
    shards.set(shard, entry)
  }
  let held = 0
  let lagMs: number | undefined
  for (const { e, c, t } of shards.values()) {
    const alive = e !== undefined && e > nowMs
    if (alive) held++
    if (c === undefined && t === undefined) continue
    const shardLag = alive && t !== undefined ? 0 : Math.max(0, nowMs - Math.max(c ?? 0, t ?? 0))
    lagMs = Math.max(lagMs ?? 0, shardLag)
  }
  return {
    table,
    applied: Number(stats.applied ?? 0),
    lost: Number(stats.lost ?? 0),
    held,
    lagSeconds: lagMs === undefined ? undefined : lagMs / 1000,
  }
}

/** The part of an ioredis connection the scrape uses. */
export interface StreamsRedis {
  smembers(key: string): Promise<string[]>
  hgetall(key: string): Promise<Record<string, string>>
  time(): Promise<[string, string] | Array<string | number>>
}

/** Every followed table's state (the set the follower's discovery keeps), sorted by table. */
export async function readStreamsState(redis: StreamsRedis, keys: RedisKeys): Promise<StreamsTableState[]> {
  const [tables, [seconds, micros]] = await Promise.all([redis.smembers(keys.streamsFollowed), redis.time()])
  // Redis's clock, which the follower's scripts write with, not this process's.
  const nowMs = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
  return Promise.all(
    tables.sort().map(async (table) => {
      const [stats, live] = await Promise.all([redis.hgetall(keys.streamFollow(table, 'stats')), redis.hgetall(keys.streamFollow(table, 'live'))])
      return streamsTableState(table, stats, live, nowMs)
    }),
  )
}

/**
 * dynacache_streams_* read at scrape time through `read` within `timeoutMs`; absent when unread (Redis
 * down or slow), rather than a drop to 0 that rate() would take for a reset.
 */
export function addStreamsCollectors(
  registers: Registry[],
  read: () => Promise<StreamsTableState[]>,
  withTimeout: <T>(work: Promise<T>, ms: number) => Promise<T>,
  timeoutMs: number,
): void {
  // registry.metrics() collects every metric concurrently: the four share one read per scrape.
  let inflight: Promise<StreamsTableState[] | undefined> | undefined
  const reading = () => {
    inflight ??= withTimeout(read(), timeoutMs)
      .catch(() => undefined)
      .finally(() => setImmediate(() => (inflight = undefined)))
    return inflight
  }
  const labelNames = ['table'] as const
  new Counter({
    name: 'dynacache_streams_records_applied_total',
    help: 'Stream records the DynamoDB Streams follower applied to the cache, by table, fleet-wide (read from Redis at scrape time)',
    labelNames,
    registers,
    async collect() {
      const states = await reading()
      this.reset()
      for (const s of states ?? []) this.inc({ table: s.table }, s.applied)
    },
  })
  new Counter({
    name: 'dynacache_streams_history_lost_total',
    help: 'Whole-table invalidations because unread stream history was trimmed or lost, by table, fleet-wide',
    labelNames,
    registers,
    async collect() {
      const states = await reading()
      this.reset()
      for (const s of states ?? []) this.inc({ table: s.table }, s.lost)
    },
  })
  new Gauge({
    name: 'dynacache_streams_shards_held',
    help: 'Stream shards of each followed table whose lease a worker holds now (0: nobody follows the table)',
    labelNames,
    registers,
    async collect() {
      const states = await reading()
      this.reset()
      for (const s of states ?? []) this.set({ table: s.table }, s.held)
    },
  })
  new Gauge({
    name: 'dynacache_streams_lag_seconds',
    help:
      'How far behind its stream the follower may be, by table: 0 while every shard holder last found its tip after its last ' +
      "record, else now minus the newest of the last applied record's creation time and the last read at the tip (worst shard)",
    labelNames,
    registers,
    async collect() {
      const states = await reading()
      this.reset()
      for (const s of states ?? []) if (s.lagSeconds !== undefined) this.set({ table: s.table }, s.lagSeconds)
    },
  })
}
