import { FastifyOtelInstrumentation } from '@fastify/otel'
import { fastifySSE } from '@fastify/sse'
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions, LogController } from 'fastify'
import { loadApiKeys } from '../shared/api-keys.ts'
import type { ApiConfig } from '../shared/config.ts'
import { loggerOptions } from '../shared/logger.ts'
import { tracingEnabled } from '../shared/telemetry/tracing.ts'
import type { HitLane } from './hit-lane.ts'
import { serverWithFront } from './http-server.ts'
import auth, { enforceAuth } from './plugins/auth.ts'
import bullBoard from './plugins/bull-board.ts'
import cache, { type CachePluginOptions } from './plugins/cache.ts'
import connections, { type ConnectionsOptions } from './plugins/connections.ts'
import consoleUi, { type ConsoleOptions } from './plugins/console.ts'
import errorHandler from './plugins/error-handler.ts'
import hitLane from './plugins/hit-lane.ts'
import limits, { serverLimits } from './plugins/limits.ts'
import metrics, { metricsRoutes } from './plugins/metrics.ts'
import rateLimit from './plugins/rate-limit.ts'
import requestLog from './plugins/request-log.ts'
import security from './plugins/security.ts'
import swagger from './plugins/swagger.ts'
import tablesPolicy from './plugins/tables-policy.ts'
import { createRequestIds } from './request-id.ts'
import whoamiRoutes from './routes/auth/whoami.ts'
import batchRoutes from './routes/batches/index.ts'
import historyRoutes from './routes/cache/history.ts'
import invalidateRoutes from './routes/cache/invalidate.ts'
import statsRoutes from './routes/cache/stats.ts'
import warmupRoutes from './routes/cache/warmup.ts'
import exportRoutes from './routes/exports/index.ts'
import healthRoutes from './routes/health/index.ts'
import tableRoutes from './routes/tables/index.ts'

export interface BuildOptions {
  /** Overrides the pino options derived from config (tests capture logs through this). */
  logger?: FastifyServerOptions['loggerInstance'] | FastifyServerOptions['logger']
  cache?: CachePluginOptions
  observeDynamo?: ConnectionsOptions['observeDynamo']
  /** Extra routes registered with the app's own plugins and hooks (the benchmark's reference routes). */
  routes?: FastifyPluginAsync
  /** Where the built web console is (tests build their own); dist/console by default. */
  console?: ConsoleOptions
}

/** The API as a Fastify instance, ready but not listening: plugins first, then routes. */
export async function buildApp(config: ApiConfig, options: BuildOptions = {}): Promise<FastifyInstance> {
  // Read first: a bad API_KEYS_FILE stops start-up (ConfigError) before any connection is opened.
  const apiKeys = loadApiKeys(config)
  const logger = options.logger ?? loggerOptions(config, 'dynacache-api')
  const requestId = createRequestIds()
  // Set once the app is ready: the hit lane answers repeated fresh hits in front of Fastify (hit-lane.ts).
  let lane: HitLane | null = null
  const app = Fastify({
    ...(typeof (logger as { info?: unknown }).info === 'function'
      ? { loggerInstance: logger as FastifyServerOptions['loggerInstance'] }
      : { logger: logger as FastifyServerOptions['logger'] }),
    requestIdHeader: 'x-request-id',
    // plugins/request-log.ts writes one line per request instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: requestId,
    serverFactory: (handler, opts) => serverWithFront(handler, opts, (req, res, fastify) => lane?.serve(req, res, fastify) === true),
    bodyLimit: 1024 * 1024,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 2048 },
    forceCloseConnections: 'idle',
    // REQUEST_TIMEOUT_MS, CONNECTION_TIMEOUT_MS (plugins/limits.ts exempts event streams).
    ...serverLimits(config),
    // Reject unknown properties rather than silently dropping them: a typo gets a clear 400.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
  })

  // Request spans, first so every later plugin's hooks and the handlers run inside them; only with tracing on.
  if (tracingEnabled()) await app.register(new FastifyOtelInstrumentation({ instrumentHooks: false }).plugin())
  await app.register(errorHandler)
  await app.register(metrics)
  await app.register(requestLog)
  // Before auth, so a 401 carries security and CORS headers too.
  await app.register(security, { corsOrigins: config.CORS_ORIGINS })
  const observeDynamo = options.observeDynamo
  await app.register(connections, {
    config,
    observeDynamo: (call) => {
      app.metrics.observeDynamo(call)
      observeDynamo?.(call)
    },
  })
  await app.register(auth, { keys: apiKeys })
  // Quotas, the connection cap and Connection: close after a 401; before the routes it watches.
  await app.register(limits)
  await app.register(rateLimit)
  await app.register(enforceAuth)
  await app.register(tablesPolicy)
  await app.register(cache, options.cache ?? {})
  await app.register(hitLane, { requestId })
  // Learns routes as they are added: before every route.
  await app.register(swagger)
  await app.register(bullBoard)
  // Server-Sent Events (export progress); the heartbeat is the keep-alive comment.
  await app.register(fastifySSE, { heartbeatInterval: config.SSE_KEEPALIVE_MS })

  await app.register(healthRoutes)
  await app.register(invalidateRoutes)
  await app.register(tableRoutes)
  await app.register(statsRoutes)
  await app.register(historyRoutes)
  await app.register(whoamiRoutes)
  await app.register(warmupRoutes)
  await app.register(batchRoutes)
  await app.register(exportRoutes)
  await app.register(metricsRoutes)
  await app.register(consoleUi, options.console ?? {})
  if (options.routes) await app.register(options.routes)

  await app.ready()
  lane = app.hitLane
  return app
}
