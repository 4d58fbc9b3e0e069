import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { CallObservation } from './dynamo/gateway.ts'
import { httpCells, readCells } from './metrics-cells.ts'
import {
  addBreakerGauge,
  addEvictionGauge,
  addExportOutcomes,
  addOwedInvalidationsGauge,
  addQueueCollectors,
  addRedisGauge,
  type QueueSource,
  withTimeout,
} from './metrics-scrape.ts'
import { addStreamsCollectors, type StreamsTableState } from './metrics-streams.ts'
import type { EvictionReading } from './redis/server-checks.ts'

export type { QueueLike, QueueSource } from './metrics-scrape.ts'

/** What a cached read answered with, as the metrics count it. */
export type CacheOutcomeLabel = 'hit' | 'miss' | 'stale' | 'bypass' | 'error'

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
  /** countCacheRead of one (table, outcome) of a table that exists, bound once (the hit lane's, per route). */
  cacheReadCounter(table: string, outcome: CacheOutcomeLabel): () => void
  /** Observes one HTTP request's duration through a label set made once per (method, route, status). */
  observeHttp(method: string, route: string, statusCode: number, seconds: number): void
  /** observeHttp of one (method, route, status), bound once (the hit lane's, per route). */
  httpObserver(method: string, route: string, statusCode: number): (seconds: number) => void
  /** Queue depths and recent job durations, read from Redis at scrape time within `timeoutMs`. */
  addQueueCollectors(source: QueueSource, timeoutMs: number): void
  /** A circuit breaker state gauge (1 for the current state), read at scrape time. */
  addBreakerGauge(state: () => string): void
  /** dynacache_redis_up: 1 while this process's Redis connection is ready, read at scrape time. */
  addRedisGauge(ready: () => boolean): void
  /** dynacache_redis_eviction_safe: whether Redis may evict keys (redis/server-checks.ts), read at scrape time within `timeoutMs`. */
  addEvictionGauge(read: () => Promise<EvictionReading | undefined>, timeoutMs: number): void
  /** dynacache_cache_invalidations_owed: tables this process owes a whole invalidation, read at scrape time. */
  addOwedInvalidationsGauge(owed: () => number): void
  /** Fleet-wide counts of exports by terminal status, read from Redis at scrape time within `timeoutMs`. */
  addExportOutcomes(read: () => Promise<Record<string, string | number>>, timeoutMs: number): void
  /** The Streams follower's fleet-wide dynacache_streams_* metrics, read at scrape time within `timeoutMs`. */
  addStreamsCollectors(read: () => Promise<StreamsTableState[]>, timeoutMs: number): void
  /** The Prometheus text exposition. */
  render(): Promise<string>
  readonly contentType: string
}

const MAX_TABLE_LABELS = 500
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] as const

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

  // Updated in place on the hot path (metrics-cells.ts).
  const reads = readCells(cacheReads)
  const http = httpCells(httpDuration, HTTP_BUCKETS)

  const tableLabels = new Set<string>()
  const tableLabel = (table: string, exists = true) => {
    if (tableLabels.has(table)) return table
    if (!exists) return '_other'
    if (tableLabels.size >= MAX_TABLE_LABELS) return '_other'
    tableLabels.add(table)
    return table
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
      reads.inc(tableLabel(table, exists), outcome)
    },
    cacheReadCounter: (table, outcome) => reads.bind(tableLabel(table), outcome),
    observeHttp: http.observe,
    httpObserver: http.bind,
    addQueueCollectors: (source, timeoutMs) => addQueueCollectors(registers, source, timeoutMs),
    addBreakerGauge: (state) => addBreakerGauge(registers, state),
    addRedisGauge: (ready) => addRedisGauge(registers, ready),
    addEvictionGauge: (read, timeoutMs) => addEvictionGauge(registers, read, timeoutMs),
    addOwedInvalidationsGauge: (owed) => addOwedInvalidationsGauge(registers, owed),
    addExportOutcomes: (read, timeoutMs) => addExportOutcomes(registers, read, timeoutMs),
    addStreamsCollectors: (read, timeoutMs) => addStreamsCollectors(registers, read, withTimeout, timeoutMs),
    render: () => registry.metrics(),
    contentType: registry.contentType,
  }
}
