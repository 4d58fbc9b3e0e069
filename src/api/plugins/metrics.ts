import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { Type } from 'typebox'
import { type CacheOutcomeLabel, createMetrics, type Metrics } from '../../shared/metrics.ts'
import { readStreamsState } from '../../shared/metrics-streams.ts'
import { readEviction } from '../../shared/redis/server-checks.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** This app's Prometheus metrics (its own registry); e.g. `app.metrics.sseConnections.inc()`. */
    metrics: Metrics
  }
}

const OUTCOMES: Record<string, CacheOutcomeLabel> = { HIT: 'hit', STALE: 'stale', MISS: 'miss', BYPASS: 'bypass' }

/** The table a cached read was for ('*' for the table list), or undefined for routes that are not cached reads. */
function cachedReadTable(request: FastifyRequest): string | undefined {
  const route = request.routeOptions.url
  if (request.method !== 'GET' || !route?.startsWith('/tables')) return undefined
  return (request.params as { table?: string } | undefined)?.table ?? '*'
}

function observe(app: FastifyInstance, request: FastifyRequest, reply: FastifyReply) {
  const route = request.routeOptions.url ?? 'unmatched'
  app.metrics.observeHttp(request.method, route, reply.statusCode, reply.elapsedTime / 1000)
  const table = cachedReadTable(request)
  if (table === undefined) return
  const xCache = reply.getHeader('x-cache')
  const outcome = typeof xCache === 'string' ? OUTCOMES[xCache] : reply.statusCode >= 500 ? 'error' : undefined
  if (outcome) app.metrics.countCacheRead(table, outcome, reply.statusCode !== 404)
}

/**
 * Prometheus metrics with a registry per app. Register before `connections` and pass
 * `app.metrics.observeDynamo` as its observer so DynamoDB calls are timed.
 */
async function metrics(app: FastifyInstance) {
  const m = createMetrics()
  app.decorate('metrics', m)
  // Reads X-Cache rather than hooking the cache, so the read path needs no knowledge of metrics.
  // Callback style: an async hook would cost every answer a promise.
  app.addHook('onResponse', (request, reply, done) => {
    observe(app, request, reply)
    done()
  })
  // A 429 alone does not say whether the rate limit or a quota refused: the thrown error's code does.
  app.addHook('onError', async (_request, _reply, error) => {
    if (error.statusCode === 429 && typeof error.code === 'string') m.refusals.inc({ code: error.code })
  })
  app.addHook('onReady', async () => {
    m.addQueueCollectors(
      {
        names: app.queues.names,
        queue: (name) => app.queues.started(name as never),
        ready: () => app.redis.status === 'ready',
      },
      app.config.METRICS_SCRAPE_TIMEOUT_MS,
    )
    m.addRedisGauge(() => app.redis.status === 'ready')
    m.addOwedInvalidationsGauge(() => app.cache.invalidationsOwed)
    m.addEvictionGauge(async () => {
      if (app.redis.status !== 'ready') throw new Error('Redis not ready')
      return readEviction(app.redis)
    }, app.config.METRICS_SCRAPE_TIMEOUT_MS)
    m.addExportOutcomes(async () => {
      if (app.redis.status !== 'ready') throw new Error('Redis not ready')
      return app.redis.hgetall(app.keys.exportOutcomes)
    }, app.config.METRICS_SCRAPE_TIMEOUT_MS)
    m.addStreamsCollectors(async () => {
      if (app.redis.status !== 'ready') throw new Error('Redis not ready')
      return readStreamsState(app.redis, app.keys)
    }, app.config.METRICS_SCRAPE_TIMEOUT_MS)
    const gateway = app.gateway as { breakerState?: () => string }
    if (typeof gateway.breakerState === 'function') m.addBreakerGauge(() => gateway.breakerState!())
  })
}

/** GET /metrics (admin): registered with the routes so it is documented, authenticated and rate limited. */
export async function metricsRoutes(app: FastifyInstance) {
  app.get(
    '/metrics',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics of this API process',
        description:
          'Prometheus text format: HTTP durations by route and status, cached reads per table and outcome, DynamoDB ' +
          'call latency and errors by operation, breaker state, queue depths and recent job durations per queue ' +
          '(read from Redis at scrape time, absent when Redis does not answer within 500 ms), SSE connections, and the ' +
          'DynamoDB Streams follower per table: records applied, shards held, lag, history lost (fleet-wide, from Redis).',
        response: {
          200: {
            description: 'Prometheus text exposition format 0.0.4',
            content: { 'text/plain': { schema: Type.String() } },
          },
        },
      },
    },
    async (_request, reply) => {
      const body = await app.metrics.render()
      return reply.type(app.metrics.contentType).send(body)
    },
  )
}

export default fp(metrics, { name: 'metrics' })
