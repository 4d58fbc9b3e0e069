import { Type } from 'typebox'
import { MAX_LISTED_PROBLEMS, MAX_OPERATIONS } from '../../../shared/batches/index.ts'
import { ErrorResponse, Literals } from '../schemas.ts'

/**
 * 16 MB: DynamoDB's own cap on one BatchWriteItem request, and room for 10,000 operations of ~1.6 KB of
 * typed JSON each. Parsing holds a few times the body in memory, so this also bounds what one request
 * can cost the API; larger loads are sent as several batches.
 */
export const BATCH_BODY_LIMIT = 16 * 1024 * 1024

const Attributes = (description: string) => Type.Object({}, { additionalProperties: true, description })

const Operation = Type.Object(
  {
    put: Type.Optional(Attributes('the whole item, its full primary key included')),
    delete: Type.Optional(Attributes('exactly the primary key of the item to delete')),
  },
  { description: 'exactly one of put or delete' },
)

export const BatchFormat = Type.Union([Type.Literal('typed'), Type.Literal('document')], {
  default: 'document',
  description:
    'document (default): plain JSON as `view=document` reads it, so what a dashboard read it can write back: string S, ' +
    'number N (taken from the JSON text exactly: 38 digits stay 38 digits, never through a double), boolean BOOL, null NULL, ' +
    'array L, object M. typed: DynamoDB attribute-value JSON, e.g. {"id":{"S":"a"},"n":{"N":"1.50"}}, for binary (B as ' +
    'base64) and sets, which documents cannot express. Until issue 14 the default was typed: send format "typed" with typed items.',
})

export const BatchBody = Type.Object(
  {
    operations: Type.Array(Operation, { minItems: 1, maxItems: MAX_OPERATIONS }),
    format: BatchFormat,
  },
  { additionalProperties: false },
)

export const BatchHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 255,
      pattern: '^[\\x21-\\x7e]+$',
      description:
        'Makes the request safe to repeat: the same key with the same content (per API key and table) answers ' +
        'the original batch id and writes nothing again; with other content, 409. Kept JOB_RETENTION_DAYS.',
    }),
  ),
})

export const BatchAccepted = Type.Object({ id: Type.String({ description: 'the batch id, for GET /batches/:id' }) })

export const OperationError = Type.Object({ index: Type.Integer({ minimum: 0 }), reason: Type.String() })

export const BatchInvalid = Type.Object(
  {
    ...ErrorResponse.properties,
    invalid: Type.Optional(Type.Array(OperationError, { maxItems: MAX_LISTED_PROBLEMS, description: 'the first invalid operations, by index' })),
  },
  { description: 'The request or some operations are invalid; nothing was stored or queued' },
)

export const BatchParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 300 }) })

export const BatchStatusView = Type.Object({
  id: Type.String(),
  table: Type.String(),
  status: Literals(['queued', 'processing', 'retrying', 'completed', 'failed'], {
    description:
      'retrying: a run stopped on a transient failure and resumes at the next attempt; failed: the attempts ran ' +
      'out (retry the job from Bull Board to resume); completed: every operation was written or refused',
  }),
  format: BatchFormat,
  total: Type.Integer(),
  written: Type.Integer(),
  failed: Type.Integer({ description: 'operations DynamoDB refused as invalid' }),
  attempts: Type.Integer({ description: 'BatchWriteItem calls made, retries included' }),
  errors: Type.Array(OperationError, { description: "refused operations with DynamoDB's reason, the first 100 by index" }),
  error: Type.Union([Type.String(), Type.Null()], { description: 'why the last run stopped (retrying, failed)' }),
  createdAt: Type.String({ format: 'date-time' }),
  startedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  completedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
    description: 'when it completed or failed; JOB_RETENTION_DAYS later the batch is removed',
  }),
})
