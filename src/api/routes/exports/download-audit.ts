import { createHash } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'

/** A download token's id for the audit log: a 12-hex-digit SHA-256 prefix, never the token. */
export const tokenId = (token: string) => createHash('sha256').update(token).digest('hex').slice(0, 12)

/**
 * Writes one `export.download` audit line when the answer to a download request is over, whatever it
 * was: who (the key's id, or the link token's id), which export, the tenant when known, the status,
 * the outcome (`completed`, `aborted` when the client left mid-file, `refused`) and the bytes sent.
 * Call it first thing in the handler, so refusals are audited too.
 */
export function auditDownload(request: FastifyRequest, reply: FastifyReply, exportId: string, token: string | undefined): void {
  let written = false
  const write = (finishedEvent: boolean) => {
    if (written) return
    written = true
    const status = reply.raw.statusCode
    // 'finish': the whole answer was handed to the OS; 'close' alone: the client left before that.
    const finished = finishedEvent || reply.raw.writableFinished
    const outcome = status >= 400 ? 'refused' : finished ? 'completed' : 'aborted'
    const length = Number(reply.getHeader('content-length'))
    const tenant = request.principal?.tenant
    request.log.info({
      msg: 'export.download',
      exportId,
      via: token === undefined ? 'key' : 'token',
      key: request.apiKeyId ?? null,
      tokenId: token === undefined ? null : tokenId(token),
      ...(tenant === undefined ? {} : { tenant }),
      status,
      outcome,
      bytes: outcome === 'completed' && Number.isFinite(length) ? length : null,
    })
  }
  reply.raw.once('finish', () => write(true))
  reply.raw.once('close', () => write(false))
}
