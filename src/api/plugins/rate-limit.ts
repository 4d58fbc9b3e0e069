import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { errors } from '../../shared/errors.ts'
import { defineScripts } from '../../shared/redis/scripts.ts'
import { type BudgetAnswer, chargedAnswer, createKeyBudget, type KeyBudget } from '../key-budget.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The per-key request budget (key-budget.ts); the hit lane spends from it too. */
    keyBudget: KeyBudget
  }
}

const WINDOW_MS = 60_000

/** Liveness and readiness probes are never limited: an orchestrator must always reach them. */
export const RATE_LIMIT_EXEMPT = new Set(['/health', '/ready'])

/** The client a request counts against: its API key (set by auth), else its address. */
export const rateLimitKey = (request: FastifyRequest) => (request.apiKeyId ? `key:${request.apiKeyId}` : `ip:${request.ip}`)

/**
 * RATE_LIMIT_PER_MIN requests per minute per API key, fleet-wide without a Redis round trip per request:
 * each process spends tokens it takes from a Redis counter in leases (src/api/key-budget.ts; the
 * tolerance is in docs/security.md, Rate limits). Requests without a key (a wrong key, public routes) are counted
 * strictly in Redis per client address (@fastify/rate-limit), so key guessing is slowed down exactly.
 * Both run in preParsing, after auth (onRequest) has identified the key and before any body is read.
 * While Redis is down requests are not limited rather than delayed or refused.
 */
async function rateLimitPlugin(app: FastifyInstance) {
  const limit = app.config.RATE_LIMIT_PER_MIN
  defineScripts(app.redis)
  const budget = createKeyBudget(app.redis, {
    limit,
    windowMs: WINDOW_MS,
    counterKey: (client) => `${app.keys.prefix}:{*}:rlb:${client}`,
  })
  app.decorate('keyBudget', budget)
  const answer = (reply: FastifyReply, result: BudgetAnswer) => {
    reply.header('ratelimit-limit', result.limit)
    reply.header('ratelimit-remaining', result.remaining)
    reply.header('ratelimit-reset', result.resetS)
    if (result.allowed) return undefined
    reply.header('retry-after', result.resetS)
    return new errors.DC_ERR_RATE_LIMITED(result.resetS)
  }
  // App-level, so it runs before the route-level hooks (@fastify/rate-limit's, then auth-enforce's).
  app.addHook('preParsing', (request, reply, payload, done) => {
    if (!request.apiKeyId || RATE_LIMIT_EXEMPT.has(request.routeOptions.url ?? '')) return done(null, payload)
    // A request the hit lane took, spent a token for, and then handed on is not counted twice.
    const result = chargedAnswer(request.raw) ?? budget.consume(rateLimitKey(request))
    if (result === undefined) return done(null, payload)
    if (!(result instanceof Promise)) {
      const refused = answer(reply, result)
      return refused ? done(refused) : done(null, payload)
    }
    result.then(
      (r) => {
        const refused = answer(reply, r)
        if (refused) done(refused)
        else done(null, payload)
      },
      () => done(null, payload),
    )
  })

  await app.register(rateLimit, {
    global: true,
    hook: 'preParsing',
    max: limit,
    timeWindow: WINDOW_MS,
    redis: app.redis,
    nameSpace: `${app.keys.prefix}:{*}:rl:`,
    skipOnError: true,
    enableDraftSpec: true,
    keyGenerator: rateLimitKey,
    // Keyed requests were counted by the budget above.
    allowList: (request) => request.apiKeyId !== undefined || RATE_LIMIT_EXEMPT.has(request.routeOptions.url ?? '') || app.redis.status !== 'ready',
    errorResponseBuilder: (_request, context) => new errors.DC_ERR_RATE_LIMITED(Math.max(1, Math.ceil(context.ttl / 1000))),
  })
}

export default fp(rateLimitPlugin, { name: 'rate-limit', dependencies: ['connections', 'auth'] })
