import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http'

/** The options of Fastify's own that shape its HTTP server (fastify/lib/server.js, getServerInstance). */
export interface FastifyServerShape {
  http?: ServerOptions | null
  keepAliveTimeout?: number
  requestTimeout?: number
  connectionTimeout?: number
  maxRequestsPerSocket?: number
}

/**
 * Fastify's HTTP server, made as Fastify makes it (its serverFactory option), with one difference: each
 * request is first offered to `front` (the hit lane), and reaches Fastify when `front` did not take it,
 * or later, when `front` took it and hands it on. Everything server-wide (timeouts, the connection cap, closing) stays Fastify's.
 */
export function serverWithFront(
  fastifyHandler: (req: IncomingMessage, res: ServerResponse) => void,
  options: FastifyServerShape,
  front: (req: IncomingMessage, res: ServerResponse, fastify: (req: IncomingMessage, res: ServerResponse) => void) => boolean,
): Server {
  const server = createServer(options.http ?? {}, (req, res) => {
    if (!front(req, res, fastifyHandler)) fastifyHandler(req, res)
  })
  if (options.keepAliveTimeout !== undefined) server.keepAliveTimeout = options.keepAliveTimeout
  if (options.requestTimeout !== undefined) server.requestTimeout = options.requestTimeout
  if (options.connectionTimeout !== undefined) server.setTimeout(options.connectionTimeout)
  if (options.maxRequestsPerSocket !== undefined && options.maxRequestsPerSocket > 0) server.maxRequestsPerSocket = options.maxRequestsPerSocket
  return server
}
