import type { ServerOptions } from 'node:http'
import type { FastifyInstance, preHandlerHookHandler, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../../shared/config.ts'
import { createQuotas, type Quotas } from '../../shared/quotas/index.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Per-tenant and per-key quotas, counted fleet-wide in Redis (shared/quotas). */
    quotas: Quotas
  }
}

/** Server options bounding a connection: how long to send a request, how long to stay idle. */
export function serverLimits(config: Config): { requestTimeout: number; connectionTimeout: number; http: ServerOptions } {
  return {
    requestTimeout: config.REQUEST_TIMEOUT_MS,
    connectionTimeout: config.CONNECTION_TIMEOUT_MS,
    http: {
      requestTimeout: config.REQUEST_TIMEOUT_MS,
      headersTimeout: Math.min(60_000, config.REQUEST_TIMEOUT_MS),
      // Node checks the two timeouts every this often (30 s by default): a fraction of the timeout keeps the cut close to it.
      connectionsCheckingInterval: Math.min(30_000, Math.max(25, Math.floor(config.REQUEST_TIMEOUT_MS / 4))),
    },
  }
}

/**
 * Bounds what one client can hold: quotas (decorated for the routes), event streams counted per key
 * and exempt from the idle timeout, the connection cap, and no keep-alive after a 401.
 */
async function limits(app: FastifyInstance) {
  const quotas = createQuotas({ redis: app.redis, keys: app.keys, config: app.config })
  app.decorate('quotas', quotas)
  app.server.maxConnections = app.config.MAX_CONNECTIONS

  // An event stream is idle between keep-alives by design: it holds a stream slot of its key instead.
  const streamSlot: preHandlerHookHandler = async (request, reply) => {
    const slot = await quotas.openStream(request.principal)
    reply.raw.once('close', () => slot.release())
    // (inject()'s stand-in socket has no timeout to turn off.)
    const socket = request.raw.socket as { setTimeout?: (ms: number) => unknown } | undefined
    socket?.setTimeout?.(0)
  }
  app.addHook('onRoute', (route: RouteOptions & { sse?: unknown }) => {
    if (!route.sse) return
    const hooks = route.preHandler
    route.preHandler = [...(Array.isArray(hooks) ? hooks : hooks ? [hooks] : []), streamSlot]
  })

  // A client without a valid key gets no kept-alive connection to try the next one on.
  // Callback style: an async hook would cost every answer a promise.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (reply.statusCode === 401) reply.header('connection', 'close')
    done(null, payload)
  })

  app.addHook('onClose', () => quotas.close())
}

export default fp(limits, { name: 'limits', dependencies: ['connections'] })
