import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { DEFAULT_TENANT } from '../../../shared/access.ts'
import { errors } from '../../../shared/errors.ts'
import { downloadNameOf, type ExportRecord, tenantOf } from '../../../shared/exports/index.ts'
import { safeReason } from '../../../shared/safe-message.ts'
import { auditDownload } from './download-audit.ts'
import { DownloadQuery, ErrorResponse, ExportParams, exportErrors } from './schemas.ts'
import type { ExportApi } from './services.ts'

const CONTENT_TYPES = { jsonl: 'application/x-ndjson; charset=utf-8', csv: 'text/csv; charset=utf-8' } as const

/** Bearer auth with the export (or admin) scope, as the auth hook does for routes that declare a scope. */
function authenticateBearer(app: FastifyInstance, request: FastifyRequest) {
  const header = request.headers.authorization
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null
  const key = match ? app.authenticate(match[1]!) : undefined
  if (!key) throw new errors.DC_ERR_UNAUTHORIZED()
  request.apiKeyId = key.id
  request.principal = key
  if (!key.scopes.has('export') && !key.scopes.has('admin')) throw new errors.DC_ERR_FORBIDDEN('export')
}

/**
 * GET /exports/:id/download: streams the finished file from storage (local or S3). Either a Bearer key
 * with the export scope or the signed `token` of a download link; a wrong, foreign or expired token is
 * 403 before anything about the export is revealed.
 */
export default async function downloadRoute(fastify: FastifyInstance, { api }: { api: ExportApi }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  app.get(
    '/exports/:id/download',
    {
      // No `scope`: a signed token stands in for the key, so this route authenticates itself.
      schema: {
        tags: ['exports'],
        summary: 'Download the finished file (Bearer key with scope export, or the signed ?token= of a download link)',
        // Either the bearer key or no key at all (the signed token in the query stands in for it).
        security: [{ bearerAuth: [] }, {}],
        params: ExportParams,
        querystring: DownloadQuery,
        response: {
          200: {
            description: 'The file, as an attachment (Content-Disposition)',
            content: {
              'text/csv': { schema: Type.String() },
              'application/x-ndjson': { schema: Type.String() },
              'application/gzip': { schema: Type.String({ format: 'binary' }) },
            },
          },
          409: ErrorResponse,
          ...exportErrors,
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params
      const { token } = request.query
      auditDownload(request, reply, id, token)
      if (token === undefined) authenticateBearer(app, request)
      const record: ExportRecord | undefined = await api.store.get(id)
      if (token !== undefined) {
        // Bound to the export id and its tenant: a token fails the same way for a missing export as for
        // another export or another tenant's, so it reveals nothing about either.
        if (!api.tokens.verify(token, id, record ? tenantOf(record) : DEFAULT_TENANT)) throw new errors.DC_ERR_DOWNLOAD_FORBIDDEN()
        if (!record || !app.tableAllowed(record.table)) throw new errors.DC_ERR_EXPORT_NOT_FOUND(id)
      } else if (!record || !api.visible(request.principal, record)) {
        throw new errors.DC_ERR_EXPORT_NOT_FOUND(id)
      }
      if (record.status !== 'completed' || !record.file) throw new errors.DC_ERR_EXPORT_NOT_READY(id, record.status)
      let file: Awaited<ReturnType<typeof api.storage.openFile>>
      try {
        file = await api.storage.openFile(id, record.file)
      } catch (cause) {
        throw new errors.DC_ERR_EXPORT_STORAGE_UNAVAILABLE(safeReason(cause), { cause })
      }
      // Completed but its file is gone (retention ran): as good as not found.
      if (!file) throw new errors.DC_ERR_EXPORT_NOT_FOUND(id)
      // The file as a stream: the schema documents it, but no object is serialized to check against it.
      const stream: FastifyReply = reply
      return stream
        .header('content-type', record.gzip ? 'application/gzip' : CONTENT_TYPES[record.format])
        .header('content-length', file.bytes)
        .header('content-disposition', `attachment; filename="${downloadNameOf(record)}"`)
        .header('cache-control', 'private, no-store')
        .send(file.stream)
    },
  )
}
