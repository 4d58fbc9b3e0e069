import { promisify } from 'node:util'
import { gzip as gzipCallback } from 'node:zlib'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { DEFAULT_TENANT } from '../../../shared/access.ts'
import {
  batchFingerprint,
  createBatchStore,
  encodeOperations,
  idempotencyDigest,
  keyNames,
  parseOperations,
  tableOfBatchId,
} from '../../../shared/batches/index.ts'
import { errors } from '../../../shared/errors.ts'
import { useLosslessJson } from '../../lossless-body.ts'
import { authErrors, ErrorResponse, TableParams } from '../schemas.ts'
import { BATCH_BODY_LIMIT, BatchAccepted, BatchBody, BatchHeaders, BatchInvalid, BatchParams, BatchStatusView } from './schemas.ts'

const gzip = promisify(gzipCallback)

export default async function batchRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  // Document items keep every digit: JSON bodies here are parsed with numbers as their text.
  useLosslessJson(fastify)
  const store = createBatchStore({ redis: app.redis, keys: app.keys, retentionDays: app.config.JOB_RETENTION_DAYS })
  const retentionS = app.config.JOB_RETENTION_DAYS * 24 * 3600

  app.post(
    '/tables/:table/batches',
    {
      config: { scope: 'write' },
      bodyLimit: BATCH_BODY_LIMIT,
      schema: {
        tags: ['batches'],
        summary: 'Queue up to 10,000 puts and deletes, written with BatchWriteItem by the workers',
        description:
          'Every operation is checked before anything is stored or queued: the table exists and is allowed; each put ' +
          'has the full primary key with the right types; each delete is exactly a key; index keys have their types; ' +
          'no two operations touch one key; each item is under 400 KB. Otherwise 400 DC_ERR_BATCH_INVALID lists the ' +
          'first invalid operations by index. The body may be up to 16 MB. Accepted batches answer 202 with an id; ' +
          'follow it at GET /batches/:id. Cached reads of the table are invalidated as the batch is written. ' +
          'A tenant with TENANT_BATCHES_MAX unfinished batches, or whose unfinished batches would pass TENANT_BATCHES_MB, gets 429 DC_ERR_BATCH_QUOTA.',
        params: TableParams,
        headers: BatchHeaders,
        body: BatchBody,
        response: {
          202: BatchAccepted,
          400: BatchInvalid,
          ...authErrors,
          404: ErrorResponse,
          409: ErrorResponse,
          413: ErrorResponse,
          // DC_ERR_BATCH_QUOTA: TENANT_BATCHES_MAX / TENANT_BATCHES_MB.
          429: ErrorResponse,
          503: ErrorResponse,
        },
      },
    },
    async (request, reply) => {
      const { table } = request.params
      const body = request.body
      app.assertTableVisible(request.principal, table)
      const description = await app.cache.describe(table)

      const { operations, problems, invalidCount } = parseOperations(description, body.operations, body.format)
      if (invalidCount > 0) {
        const listed = problems.map((p) => `operations[${p.index}]: ${p.reason}`).join('; ')
        const more = invalidCount > problems.length ? `; and ${invalidCount - problems.length} more` : ''
        const message = `${invalidCount} of ${body.operations.length} operations are invalid, nothing was queued: ${listed}${more}`
        return reply.code(400).type('application/json; charset=utf-8').send({
          statusCode: 400,
          code: 'DC_ERR_BATCH_INVALID',
          error: 'Bad Request',
          message,
          invalid: problems,
        })
      }

      const json = encodeOperations(operations)
      const idempotencyKey = request.headers['idempotency-key']
      const tenant = request.principal?.tenant ?? DEFAULT_TENANT
      const stored = await gzip(json, { level: 1 })
      // Refused (429) past TENANT_BATCHES_MAX unfinished batches or TENANT_BATCHES_MB of them; nothing stored then.
      const { id, created, status } = await app.quotas.admitBatch(request.principal, stored.length, () =>
        store.create({
          table,
          format: body.format,
          total: operations.length,
          keyNames: keyNames(description),
          operations: stored,
          fingerprint: batchFingerprint(table, json),
          tenant,
          ...(idempotencyKey ? { idempotency: idempotencyDigest(tenant, request.apiKeyId ?? '', idempotencyKey) } : {}),
        }),
      )
      // A replay queues again only a batch still waiting: the job id is the batch id, so no job is doubled.
      if (created || status === 'queued') {
        try {
          await app.queues.enqueue(
            'batch-write',
            { id, table },
            {
              jobId: id,
              removeOnComplete: { age: retentionS },
              removeOnFail: { age: retentionS },
            },
          )
        } catch (err) {
          if (created) await store.discard(id).catch(() => {})
          throw err
        }
      }
      request.log.info({ msg: created ? 'batch.accepted' : 'batch.replayed', id, table, total: operations.length })
      if (!created) reply.header('idempotent-replayed', 'true')
      return reply
        .code(202)
        .header('location', `/batches/${encodeURIComponent(id)}`)
        .send({ id })
    },
  )

  app.get(
    '/batches/:id',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['batches'],
        summary: 'Progress of a batch: written, failed with reasons, attempts, timestamps',
        description:
          'Finished batches (completed or failed) are removed JOB_RETENTION_DAYS after they finished: their Redis ' +
          'keys are given that expiry when they finish (and, while a batch is unfinished, on every write).',
        params: BatchParams,
        response: { 200: BatchStatusView, ...authErrors, 404: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (request) => {
      const { id } = request.params
      const table = tableOfBatchId(id)
      const view = table && app.tableVisible(request.principal, table) ? await store.view(id) : undefined
      // Another tenant's batch is as missing as an unknown id; an admin is no exception (a tenant is the boundary).
      if (!view || view.tenant !== (request.principal?.tenant ?? DEFAULT_TENANT)) throw new errors.DC_ERR_BATCH_NOT_FOUND(id)
      const { tenant: _owner, ...shown } = view
      return shown
    },
  )
}
