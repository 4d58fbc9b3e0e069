import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { CallObservation } from './dynamo/gateway.ts'

/** What a cached read answered with, as the metrics count it. */
export type CacheOutcomeLabel = 'hit' | 'miss' | 'stale' | 'bypass' | 'error'

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
  queue(name: string): QueueLike
  /** False while Redis is down: the scrape then reports no queue values instead of waiting. */
  ready(): boolean
}

export interface Metrics {
  /** One registry per process role instance: several apps in one process never share metrics. */
  readonly registry: Registry
  readonly httpDuration: Histogram<'method' | 'route' | 'status_code'>
  readonly cacheReads: Counter<'table' | 'outcome'>
  readonly dynamoDuration: Histogram<'operation'>
  readonly dynamoErrors: Counter<'operation' | 'error'>
  /** Requests refused with 429, by error code: the per-key rate limit (DC_ERR_RATE_LIMITED) or a quota. */
  readonly refusals: Counter<'code'>
  /** Open Server-Sent Events streams; SSE routes call inc() on open and dec() on close. */
  readonly sseConnections: Gauge
  /** The gateway's observe hook. */
  observeDynamo(call: CallObservation): void
  /**
   * Counts one cached read; tables beyond a bound share one label so probing names cannot blow up series,
   * and a 404 (`exists` false) takes no new label: names of missing tables never crowd out real ones.
   */
  countCacheRead(table: string, outcome: CacheOutcomeLabel, exists?: boolean): void
  /** Observes one HTTP request's duration through a label set made once per (method, route, status). */
  observeHttp(method: string, route: string, statusCode: number, seconds: number): void
  /** Queue depths and recent job durations, read from Redis at scrape time within `timeoutMs`. */
  addQueueCollectors(source: QueueSource, timeoutMs: number): void
  /** A circuit breaker state gauge (1 for the current state), read at scrape time. */
  addBreakerGauge(state: () => string): void
  /** dynacache_redis_up: 1 while this process's Redis connection is ready, read at scrape time. */
  addRedisGauge(ready: () => boolean): void
  /** Fleet-wide counts of exports by terminal status, read from Redis at scrape time within `timeoutMs`. */
  addExportOutcomes(read: () => Promise<Record<string, string | number>>, timeoutMs: number): void
  /** The Prometheus text exposition. */
  render(): Promise<string>
  readonly contentType: string
}

const QUEUE_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'paused', 'completed', 'failed'] as const
const BREAKER_STATES = ['closed', 'half-open', 'open'] as const
const EXPORT_END_STATES = ['completed', 'failed', 'cancelled'] as const
/** Completed jobs a scrape looks at for the duration quantiles. */
const RECENT_JOBS = 100
const QUANTILES = [0.5, 0.9, 0.99] as const
const MAX_TABLE_LABELS = 500
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] as const

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
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

/** A Prometheus registry with dynacache's metrics; no global state, so it is safe to create many. */
export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry()
  const registers = [registry]
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry })

  const httpDuration = new Histogram({
    name: 'dynacache_http_request_duration_seconds',
    help: 'HTTP request duration by route pattern and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [...HTTP_BUCKETS],
    registers,
  })
  const cacheReads = new Counter({
    name: 'dynacache_cache_reads_total',
    help: 'Cached reads by table and outcome (hit, miss, stale, bypass, error); the table list counts as table "*"',
    labelNames: ['table', 'outcome'] as const,
    registers,
  })
  const dynamoDuration = new Histogram({
    name: 'dynacache_dynamo_call_duration_seconds',
    help: 'DynamoDB call latency by operation, retries included, failed calls too',
    labelNames: ['operation'] as const,
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  })
  const dynamoErrors = new Counter({
    name: 'dynacache_dynamo_call_errors_total',
    help: 'Failed DynamoDB calls by operation and error name',
    labelNames: ['operation', 'error'] as const,
    registers,
  })
  const refusals = new Counter({
    name: 'dynacache_http_refusals_total',
    help: 'Requests refused with 429 by error code: DC_ERR_RATE_LIMITED for the per-key rate limit, *_QUOTA for quotas',
    labelNames: ['code'] as const,
    registers,
  })
  const sseConnections = new Gauge({
    name: 'dynacache_sse_connections',
    help: 'Open Server-Sent Events connections',
    registers,
  })

  // Label sets made once and reused: prom-client otherwise hashes a labels object on every call. The
  // first inc goes through prom-client (creating the series), later ones add to its cell in place.
  type CounterCell = { value: number; labels: Record<string, string> }
  const counterMap = (cacheReads as unknown as { hashMap?: Record<string, CounterCell> })
  const readCells = new Map<string, CounterCell | null>()
  const countRead = (table: string, outcome: CacheOutcomeLabel) => {
    const key = `${outcome} ${table}`
    const cell = readCells.get(key)
    if (cell) {
      cell.value += 1
      return
    }
    cacheReads.inc({ table, outcome })
    if (cell === null) return
    const found = Object.values(counterMap.hashMap ?? {}).find((c) => c.labels?.table === table && c.labels?.outcome === outcome)
    readCells.set(key, found && typeof found.value === 'number' ? found : null)
  }

  // Bounded: routes are the app's patterns (plus 'unmatched'), methods and status codes few. Each label
  // set's cell is created once (zero()) and then updated in place; prom-client's observe() would hash
  // and validate the labels object on every request. Falls back to observe() if its internals change.
  type Cell = { sum: number; count: number; bucketValues: Record<number, number> }
  const internals = httpDuration as unknown as { hashMap?: Record<string, Cell & { labels: Record<string, string> }> }
  const httpCells = new Map<string, Cell | ((seconds: number) => void)>()
  const cellOf = (labels: Record<'method' | 'route' | 'status_code', string>) => {
    httpDuration.zero(labels)
    const found = Object.values(internals.hashMap ?? {}).find(
      (c) => c.labels?.method === labels.method && c.labels?.route === labels.route && c.labels?.status_code === labels.status_code,
    )
    return found && typeof found.bucketValues === 'object' ? found : (seconds: number) => httpDuration.observe(labels, seconds)
  }
  const observeHttp = (method: string, route: string, statusCode: number, seconds: number) => {
    const key = `${statusCode} ${method} ${route}`
    let cell = httpCells.get(key)
    if (!cell) {
      cell = cellOf({ method, route, status_code: String(statusCode) })
      httpCells.set(key, cell)
    }
    if (typeof cell === 'function') return cell(seconds)
    cell.sum += seconds
    cell.count += 1
    // prom-client counts each value in its first bucket (cumulated when rendered); beyond the last, only +Inf.
    for (const bound of HTTP_BUCKETS) {
      if (seconds <= bound) {
        cell.bucketValues[bound] = (cell.bucketValues[bound] ?? 0) + 1
        break
      }
    }
  }

  const tableLabels = new Set<string>()
  const tableLabel = (table: string, exists = true) => {
    if (tableLabels.has(table)) return table
    if (!exists) return '_other'
    if (tableLabels.size >= MAX_TABLE_LABELS) return '_other'
    tableLabels.add(table)
    return table
  }

  function addQueueCollectors(source: QueueSource, timeoutMs: number) {
    type Reading = Array<{ name: string; counts: Record<string, number>; seconds: number[]; oldestWaitingMs: number }> | undefined
    // registry.metrics() collects every metric concurrently: the three gauges share one read per scrape.
    let inflight: Promise<Reading> | undefined
    async function readQueues(): Promise<Reading> {
      if (!source.ready()) return undefined
      try {
        return await withTimeout(
          Promise.all(
            source.names.map(async (name) => {
              const queue = source.queue(name)
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
              return { name, counts, seconds, oldestWaitingMs: since === undefined ? 0 : Math.max(0, Date.now() - since) }
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

  function addBreakerGauge(state: () => string) {
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

  function addRedisGauge(ready: () => boolean) {
    new Gauge({
      name: 'dynacache_redis_up',
      help: "1 while this process's Redis connection is ready, else 0",
      registers,
      collect() {
        this.set(ready() ? 1 : 0)
      },
    })
  }

  function addExportOutcomes(read: () => Promise<Record<string, string | number>>, timeoutMs: number) {
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

  return {
    registry,
    httpDuration,
    cacheReads,
    dynamoDuration,
    dynamoErrors,
    refusals,
    sseConnections,
    observeDynamo(call) {
      dynamoDuration.observe({ operation: call.operation }, call.ms / 1000)
      if (call.error) dynamoErrors.inc({ operation: call.operation, error: call.error })
    },
    countCacheRead(table, outcome, exists) {
      countRead(tableLabel(table, exists), outcome)
    },
    observeHttp,
    addQueueCollectors,
    addBreakerGauge,
    addRedisGauge,
    addExportOutcomes,
    render: () => registry.metrics(),
    contentType: registry.contentType,
  }
}
