import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/** Signed download tokens travel in the query string; they never reach a log line. */
export const redactUrl = (url: string) => url.replace(/([?&]token=)[^&#]*/gi, '$1[redacted]')

/**
 * One log line per request, written when the answer is sent: route, status, duration, X-Cache and
 * table. Replaces Fastify's own request/response lines (the app sets disableRequestLogging). Headers
 * are never logged, so no Authorization value can leak through this line.
 */
async function requestLog(app: FastifyInstance) {
  app.addHook('onResponse', async (request, reply) => {
    const xCache = reply.getHeader('x-cache')
    const line = {
      msg: 'request.completed',
      method: request.method,
      route: request.routeOptions.url ?? null,
      url: redactUrl(request.url),
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 10) / 10,
      cache: typeof xCache === 'string' ? xCache : null,
      table: (request.params as { table?: string } | undefined)?.table ?? null,
      key: request.apiKeyId ?? null,
    }
    if (reply.statusCode >= 500) request.log.warn(line)
    else request.log.info(line)
  })
}

export default fp(requestLog, { name: 'request-log' })
