import { createBullBoard } from '@bull-board/api'
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter'
import { FastifyAdapter } from '@bull-board/fastify'
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import { sendError } from './error-handler.ts'

export const BULL_BOARD_PATH = '/admin/queues'

/** Job data and results beyond this are shown cut, so a stray large payload cannot stall the page. */
export const MAX_SHOWN_BYTES = 4096

/** Job data as the board shows it: as is when small, else the first MAX_SHOWN_BYTES of its JSON. */
export function readable(value: unknown): unknown {
  if (value === undefined || value === null) return value
  const json = JSON.stringify(value)
  if (json === undefined || json.length <= MAX_SHOWN_BYTES) return value
  return { truncated: true, bytes: Buffer.byteLength(json), preview: json.slice(0, MAX_SHOWN_BYTES) }
}

/** The password of an `Authorization: Basic` header (any user name), or undefined. */
export function basicPassword(header: string | undefined): string | undefined {
  const match = typeof header === 'string' ? /^Basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(header) : null
  if (!match) return undefined
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  return colon === -1 ? undefined : decoded.slice(colon + 1)
}

/**
 * Bull Board over every queue at /admin/queues. A browser signs in with HTTP Basic auth whose
 * password is an admin API key (any user name). Its routes are hidden from the OpenAPI document.
 */
export default async function bullBoard(app: FastifyInstance) {
  const serverAdapter = new FastifyAdapter().setBasePath(BULL_BOARD_PATH)
  createBullBoard({
    queues: app.queues.names.map((name) => {
      const adapter = new BullMQAdapter(app.queues.queue(name), { allowRetries: true })
      adapter.setFormatter('data', readable)
      adapter.setFormatter('returnValue', readable)
      return adapter
    }),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'dynacache queues', hideDocsLink: true } },
  })

  app.addHook('onRoute', (route: RouteOptions) => {
    route.schema = { ...route.schema, hide: true }
  })

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const password = basicPassword(request.headers.authorization)
    const key = password === undefined ? undefined : app.authenticate(password)
    if (key?.scopes.has('admin')) {
      request.apiKeyId = key.id
      return
    }
    reply.header('www-authenticate', 'Basic realm="dynacache admin", charset="UTF-8"')
    return sendError(reply, 401, 'DC_ERR_UNAUTHORIZED', 'Sign in with HTTP Basic auth: any user name, an admin API key as the password')
  })

  await app.register(serverAdapter.registerPlugin(), { prefix: BULL_BOARD_PATH })
}
