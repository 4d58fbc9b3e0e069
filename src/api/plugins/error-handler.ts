import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify'
import fp from 'fastify-plugin'
import { type ErrorCode, errors, isDcError, RETRY_AFTER_SECONDS } from '../../shared/errors.ts'
import { isRedisUnavailable } from '../../shared/redis/index.ts'
import { safeText } from '../../shared/safe-message.ts'

export interface ErrorBody {
  statusCode: number
  code: ErrorCode
  error: string
  message: string
}

/** Fastify's own request errors, mapped onto ours so every answer has one shape and a DC_ERR_ code. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'DC_ERR_PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'DC_ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'DC_ERR_VALIDATION',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'DC_ERR_VALIDATION',
  FST_ERR_CTP_INVALID_JSON_BODY: 'DC_ERR_VALIDATION',
}

export function sendError(reply: FastifyReply, statusCode: number, code: ErrorCode, message: string) {
  const retryAfter = RETRY_AFTER_SECONDS[code]
  if (retryAfter !== undefined && !reply.hasHeader('retry-after')) reply.header('retry-after', retryAfter)
  const body: ErrorBody = { statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message }
  return reply.code(statusCode).type('application/json; charset=utf-8').send(body)
}

async function errorHandler(app: FastifyInstance) {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (isDcError(err)) {
      const cause = (err as Error).cause as Error | undefined
      // The driver's own words (addresses, ARNs) go to the log only; the answer gets them scrubbed.
      if (err.statusCode >= 500) request.log.warn({ msg: 'request.unavailable', code: err.code, err, cause: cause?.message })
      else if (cause) request.log.info({ msg: 'request.refused', code: err.code, cause: cause.message })
      return sendError(reply, err.statusCode, err.code, cause || err.statusCode >= 500 ? safeText(err.message) : err.message)
    }
    if (isRedisUnavailable(err)) {
      request.log.warn({ msg: 'request.redis-unavailable', err: err.message })
      return sendError(reply, 503, 'DC_ERR_REDIS_UNAVAILABLE', new errors.DC_ERR_REDIS_UNAVAILABLE().message)
    }
    if (err.validation) {
      const where = err.validationContext ?? 'request'
      return sendError(reply, 400, 'DC_ERR_VALIDATION', `${where}${err.message.replace(/^(body|querystring|params|headers)/, '')}`)
    }
    const mapped = err.code ? FASTIFY_CODES[err.code] : undefined
    const status = err.statusCode ?? 500
    if (mapped || (status >= 400 && status < 500)) {
      return sendError(reply, status, mapped ?? 'DC_ERR_VALIDATION', err.message)
    }
    request.log.error({ msg: 'request.failed', err })
    return sendError(reply, 500, 'DC_ERR_INTERNAL', new errors.DC_ERR_INTERNAL().message)
  })

  app.setNotFoundHandler((request, reply) =>
    sendError(reply, 404, 'DC_ERR_NOT_FOUND', new errors.DC_ERR_NOT_FOUND(`${request.method} ${request.url.split('?')[0]}`).message),
  )
}

export default fp(errorHandler, { name: 'error-handler' })
