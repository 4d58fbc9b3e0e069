import { Counter, Gauge, type Registry } from 'prom-client'
import type { EvictionReading } from './redis/server-checks.ts'

/*
 * Metrics read when Prometheus scrapes, not counted as things happen: queue depths and job durations,
 * the breaker and Redis states, fleet-wide export outcomes. Reads from Redis are bounded by a timeout.
 */

/** The part of a BullMQ Queue the metrics read at scrape time. */
export interface QueueLike {
  getJobCounts(...types: string[]): Promise<Record<string, number>>
  getJobs(
    types: Array<'completed' | 'waiting'>,
    start?: number,
    end?: number,
    asc?: boolean,
  ): Promise<Array<{ timestamp?: number; delay?: number; processedOn?: number; finishedOn?: number } | undefined>>
}

export interface QueueSource {
  readonly names: readonly string[]
  /** The queue, started: a Queue whose start failed once (a Redis hiccup) must not fail every later scrape. */
  queue(name: string): QueueLike | Promise<QueueLike>
  /** False while Redis is down: the scrape then reports no queue values instead of waiting. */
  ready(): boolean
}

const QUEUE_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'paused', 'completed', 'failed'] as const
const BREAKER_STATES = ['closed', 'half-open', 'open'] as const
const EXPORT_END_STATES = ['completed', 'failed', 'cancelled'] as const
/** Completed jobs a scrape looks at for the duration quantiles. */
const RECENT_JOBS = 100
const QUANTILES = [0.5, 0.9, 0.99] as const

/** `work`, or a rejection once `ms` passed without its answer. */
export function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  work.catch(() => {})
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer))
}

function quantile(sorted: number[], q: number): number {
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[index]!
}

/** Queue depths and recent job durations, read from Redis at scrape time within `timeoutMs`. */
export function addQueueCollectors(registers: Registry[], source: QueueSource, timeoutMs: number): void {
  type Reading = Array<{ name: string; counts: Record<string, number>; seconds: number[]; oldestWaitingMs: number }> | undefined
  // registry.metrics() collects every metric concurrently: the three gauges share one read per scrape.
  let inflight: Promise<Reading> | undefined
  async function readQueues(): Promise<Reading> {
    if (!source.ready()) return undefined
    try {
      return await withTimeout(
        Promise.all(
          source.names.map(async (name) => {
            const queue = await source.queue(name)
            const [counts, jobs, [oldest]] = await Promise.all([
              queue.getJobCounts(...QUEUE_STATES),
              queue.getJobs(['completed'], 0, RECENT_JOBS - 1, false),
              queue.getJobs(['waiting'], 0, 0, true),
            ])
            // A delayed job waits from the end of its delay, not from when it was added.
            const since = oldest?.timestamp ? oldest.timestamp + (oldest.delay ?? 0) : undefined
            const seconds = jobs
              .filter((j) => j?.processedOn && j.finishedOn)
              .map((j) => (j!.finishedOn! - j!.processedOn!) / 1000)
              .sort((a, b) => a - b)
            return {
              name,
              counts,
              seconds,
              oldestWaitingMs: since === undefined ? 0 : Math.max(0, Date.now() - since),
            }
          }),
        ),
        timeoutMs,
      )
    } catch {
      return undefined
    }
  }
  const reading = () => {
    inflight ??= readQueues().finally(() => setImmediate(() => (inflight = undefined)))
    return inflight
  }

  new Gauge({
    name: 'dynacache_queue_jobs',
    help: 'Jobs per queue and state, read from Redis at scrape time',
    labelNames: ['queue', 'state'] as const,
    registers,
    async collect() {
      this.reset()
      for (const { name, counts } of (await reading()) ?? []) {
        for (const state of QUEUE_STATES) this.set({ queue: name, state }, counts[state] ?? 0)
      }
    },
  })
  new Gauge({
    name: 'dynacache_queue_recent_job_duration_seconds',
    help: `Processing time quantiles over the last ${RECENT_JOBS} completed jobs of each queue, read at scrape time`,
    labelNames: ['queue', 'quantile'] as const,
    registers,
    async collect() {
      this.reset()
      for (const { name, seconds } of (await reading()) ?? []) {
        if (seconds.length === 0) continue
        for (const q of QUANTILES) this.set({ queue: name, quantile: String(q) }, quantile(seconds, q))
      }
    },
  })
  new Gauge({
    name: 'dynacache_queue_oldest_waiting_job_age_seconds',
    help: 'Age of the oldest job waiting in each queue (0 when none waits), read at scrape time',
    labelNames: ['queue'] as const,
    registers,
    async collect() {
      this.reset()
      for (const { name, oldestWaitingMs } of (await reading()) ?? []) this.set({ queue: name }, oldestWaitingMs / 1000)
    },
  })
  new Gauge({
    name: 'dynacache_queue_scrape_success',
    help: '1 when this scrape read every queue from Redis in time, else 0 (queue values are then absent)',
    registers,
    async collect() {
      this.set((await reading()) ? 1 : 0)
    },
  })
}

/** A circuit breaker state gauge (1 for the current state), read at scrape time. */
export function addBreakerGauge(registers: Registry[], state: () => string): void {
  new Gauge({
    name: 'dynacache_dynamo_breaker_state',
    help: 'DynamoDB circuit breaker of this process: 1 for its current state (closed, half-open, open)',
    labelNames: ['state'] as const,
    registers,
    collect() {
      const current = state()
      for (const s of BREAKER_STATES) this.set({ state: s }, s === current ? 1 : 0)
    },
  })
}

/** dynacache_redis_up: 1 while this process's Redis connection is ready, read at scrape time. */
export function addRedisGauge(registers: Registry[], ready: () => boolean): void {
  new Gauge({
    name: 'dynacache_redis_up',
    help: "1 while this process's Redis connection is ready, else 0",
    registers,
    collect() {
      this.set(ready() ? 1 : 0)
    },
  })
}

/**
 * dynacache_redis_eviction_safe{policy}: 1 when Redis keeps every key until it expires (no maxmemory, or
 * noeviction), 0 when it may evict some (redis/server-checks.ts says what is lost then), read at scrape time
 * within `timeoutMs`. No sample while Redis cannot answer.
 */
export function addEvictionGauge(registers: Registry[], read: () => Promise<EvictionReading | undefined>, timeoutMs: number): void {
  new Gauge({
    name: 'dynacache_redis_eviction_safe',
    help: 'Whether Redis keeps every key until it expires (1: no maxmemory or maxmemory-policy noeviction) or may evict them (0), by policy',
    labelNames: ['policy'] as const,
    registers,
    async collect() {
      const reading = await withTimeout(read(), timeoutMs).catch(() => undefined)
      this.reset()
      if (reading) this.set({ policy: reading.policy }, reading.safe ? 1 : 0)
    },
  })
}

/** dynacache_cache_invalidations_owed: tables this process owes a whole invalidation (owed-invalidations.ts). */
export function addOwedInvalidationsGauge(registers: Registry[], owed: () => number): void {
  new Gauge({
    name: 'dynacache_cache_invalidations_owed',
    help: 'Tables this process must still invalidate because a write could not reach Redis; 0 once Redis took them',
    registers,
    collect() {
      this.set(owed())
    },
  })
}

/** Fleet-wide counts of exports by terminal status, read from Redis at scrape time within `timeoutMs`. */
export function addExportOutcomes(registers: Registry[], read: () => Promise<Record<string, string | number>>, timeoutMs: number): void {
  // A counter kept in Redis by the export store (every process that finishes an export adds to it).
  new Counter({
    name: 'dynacache_exports_finished_total',
    help: 'Exports that ended, by status (completed, failed, cancelled), fleet-wide: the same value from every API process',
    labelNames: ['status'] as const,
    registers,
    async collect() {
      const counts = await withTimeout(read(), timeoutMs).catch(() => undefined)
      // Unread (Redis down or slow): no samples, rather than a drop to 0 that rate() would take for a reset.
      this.reset()
      if (!counts) return
      for (const status of EXPORT_END_STATES) this.inc({ status }, Number(counts[status] ?? 0))
    },
  })
}
