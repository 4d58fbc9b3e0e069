import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { errors } from '../../shared/errors.ts'

/** Liveness and readiness probes are never limited: an orchestrator must always reach them. */
export const RATE_LIMIT_EXEMPT = new Set(['/health', '/ready'])

/** The client a request counts against: its API key (set by auth), else its address. */
export const rateLimitKey = (request: FastifyRequest) =>
  request.apiKeyId ? `key:${request.apiKeyId}` : `ip:${request.ip}`

/**
 * RATE_LIMIT_PER_MIN requests per minute per API key, counted in Redis so the limit holds across every
 * API process. Runs in preParsing, after auth (onRequest) has identified the key and before any body is
 * read. While Redis is down requests are not limited rather than delayed or refused.
 */
async function rateLimitPlugin(app: FastifyInstance) {
  await app.register(rateLimit, {
    global: true,
    hook: 'preParsing',
    max: app.config.RATE_LIMIT_PER_MIN,
    timeWindow: 60_000,
    redis: app.redis,
    nameSpace: `${app.keys.prefix}:{*}:rl:`,
    skipOnError: true,
    enableDraftSpec: true,
    keyGenerator: rateLimitKey,
    allowList: (request) =>
      RATE_LIMIT_EXEMPT.has(request.routeOptions.url ?? '') || app.redis.status !== 'ready',
    errorResponseBuilder: (_request, context) => errors.DC_ERR_RATE_LIMITED(Math.max(1, Math.ceil(context.ttl / 1000))),
  })
}

export default fp(rateLimitPlugin, { name: 'rate-limit', dependencies: ['connections', 'auth'] })
