import { createBullBoard } from '@bull-board/api'
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter'
import { FastifyAdapter } from '@bull-board/fastify'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, preParsingHookHandler, RouteOptions } from 'fastify'
import { isDcError } from '../../shared/errors.ts'
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

  // Refused after the rate limit has counted the request (against the client's address when the
  // password is wrong), as a wrong Bearer key is: password guessing is slowed down the same way.
  const refuse: preParsingHookHandler = (request, reply, payload, done) => {
    if (request.apiKeyId) return done(null, payload)
    reply.header('www-authenticate', 'Basic realm="dynacache admin", charset="UTF-8"')
    sendError(reply, 401, 'DC_ERR_UNAUTHORIZED', 'Sign in with HTTP Basic auth: any user name, an admin API key as the password')
  }

  // The board's own error handler answers in its format; ours (429 of the rate limit, ...) keep theirs.
  const boardErrors = (serverAdapter as unknown as { errorHandler: (err: Error) => { status?: number; body: unknown } }).errorHandler
  const errorHandler = (err: FastifyError, _request: FastifyRequest, reply: FastifyReply) => {
    if (isDcError(err)) return sendError(reply, err.statusCode, err.code, err.message)
    const response = boardErrors(err)
    return reply.status(response.status || 500).send(response.body)
  }

  app.addHook('onRoute', (route: RouteOptions) => {
    route.schema = { ...route.schema, hide: true }
    route.errorHandler = errorHandler
    // A route-level hook added after the rate limit's own (see auth-enforce in auth.ts).
    const hooks = route.preParsing
    route.preParsing = [...(Array.isArray(hooks) ? hooks : hooks ? [hooks] : []), refuse]
  })

  // Identifies the caller only; `refuse` answers 401 once the rate limit has counted the attempt.
  app.addHook('onRequest', async (request: FastifyRequest) => {
    const password = basicPassword(request.headers.authorization)
    const key = password === undefined ? undefined : app.authenticate(password)
    if (key?.scopes.has('admin')) request.apiKeyId = key.id
  })

  await app.register(serverAdapter.registerPlugin(), { prefix: BULL_BOARD_PATH })
}
