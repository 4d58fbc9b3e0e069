import createError from '@fastify/error'

/**
 * Every error dynacache answers with, grouped by section. Each key equals its code (a test checks),
 * so `errors.DC_ERR_X` always produces `code: 'DC_ERR_X'` in the response body.
 */
export const errors = {
  // Requests
  DC_ERR_VALIDATION: createError('DC_ERR_VALIDATION', '%s', 400),
  DC_ERR_NOT_FOUND: createError('DC_ERR_NOT_FOUND', 'Route %s not found', 404),
  DC_ERR_NOT_ACCEPTABLE: createError('DC_ERR_NOT_ACCEPTABLE', '%s', 406),
  DC_ERR_PAYLOAD_TOO_LARGE: createError('DC_ERR_PAYLOAD_TOO_LARGE', 'Request body is too large', 413),
  DC_ERR_UNSUPPORTED_MEDIA_TYPE: createError('DC_ERR_UNSUPPORTED_MEDIA_TYPE', '%s', 415),

  // Auth
  DC_ERR_UNAUTHORIZED: createError('DC_ERR_UNAUTHORIZED', 'A valid API key is required (Authorization: Bearer <key>)', 401),
  DC_ERR_FORBIDDEN: createError('DC_ERR_FORBIDDEN', "This API key lacks the '%s' scope", 403),
  DC_ERR_RATE_LIMITED: createError('DC_ERR_RATE_LIMITED', 'Rate limit exceeded, retry in %s seconds', 429),

  // Tables and items
  DC_ERR_TABLE_NOT_FOUND: createError('DC_ERR_TABLE_NOT_FOUND', "Table '%s' not found", 404),
  DC_ERR_ITEM_NOT_FOUND: createError('DC_ERR_ITEM_NOT_FOUND', 'Item not found in table %s', 404),
  DC_ERR_INDEX_NOT_FOUND: createError('DC_ERR_INDEX_NOT_FOUND', "Index '%s' not found on table %s", 400),
  DC_ERR_INVALID_KEY: createError('DC_ERR_INVALID_KEY', '%s', 400),
  DC_ERR_INVALID_CURSOR: createError('DC_ERR_INVALID_CURSOR', 'The cursor is invalid, tampered with or from another request', 400),
  DC_ERR_INVALID_QUERY: createError('DC_ERR_INVALID_QUERY', '%s', 400),
  DC_ERR_INVALID_FILTER: createError('DC_ERR_INVALID_FILTER', '%s', 400),
  DC_ERR_FILTER_TOO_LARGE: createError('DC_ERR_FILTER_TOO_LARGE', 'The filter is %s bytes, more than the %s bytes allowed', 400),

  // Writes of single items and invalidations
  DC_ERR_CONDITION_FAILED: createError('DC_ERR_CONDITION_FAILED', '%s', 412),
  DC_ERR_INVALID_CONDITION: createError('DC_ERR_INVALID_CONDITION', '%s', 400),
  DC_ERR_INVALID_ITEM: createError('DC_ERR_INVALID_ITEM', '%s', 400),
  DC_ERR_INVALID_UPDATE: createError('DC_ERR_INVALID_UPDATE', '%s', 400),

  // Dependencies
  DC_ERR_DYNAMO_UNAVAILABLE: createError('DC_ERR_DYNAMO_UNAVAILABLE', 'DynamoDB is unavailable: %s', 503),
  DC_ERR_DYNAMO_THROTTLED: createError('DC_ERR_DYNAMO_THROTTLED', 'DynamoDB is throttling requests to %s', 503),
  DC_ERR_BUDGET_EXHAUSTED: createError('DC_ERR_BUDGET_EXHAUSTED', 'The DynamoDB read budget of %s is used up for this second', 503),
  DC_ERR_DYNAMO_REJECTED: createError('DC_ERR_DYNAMO_REJECTED', 'DynamoDB rejected the request: %s', 400),
  DC_ERR_QUEUE_UNAVAILABLE: createError('DC_ERR_QUEUE_UNAVAILABLE', 'The job queue is unavailable, retry later', 503),
  DC_ERR_REDIS_UNAVAILABLE: createError('DC_ERR_REDIS_UNAVAILABLE', 'Redis is unavailable, retry later', 503),

  // Jobs
  DC_ERR_EXPORT_NOT_FOUND: createError('DC_ERR_EXPORT_NOT_FOUND', "Export '%s' not found", 404),
  DC_ERR_EXPORT_NOT_READY: createError('DC_ERR_EXPORT_NOT_READY', "Export '%s' is %s: it has no file to download", 409),
  DC_ERR_EXPORT_FINISHED: createError('DC_ERR_EXPORT_FINISHED', "Export '%s' is already %s and cannot be cancelled", 409),
  DC_ERR_DOWNLOAD_FORBIDDEN: createError('DC_ERR_DOWNLOAD_FORBIDDEN', 'The download link is invalid or has expired', 403),
  DC_ERR_EXPORT_STORAGE_UNAVAILABLE: createError('DC_ERR_EXPORT_STORAGE_UNAVAILABLE', 'Export storage is unavailable: %s', 503),
  DC_ERR_SCHEDULE_NOT_FOUND: createError('DC_ERR_SCHEDULE_NOT_FOUND', "Export schedule '%s' not found", 404),
  DC_ERR_BATCH_NOT_FOUND: createError('DC_ERR_BATCH_NOT_FOUND', "Batch '%s' not found", 404),
  DC_ERR_BATCH_INVALID: createError('DC_ERR_BATCH_INVALID', '%s', 400),
  DC_ERR_IDEMPOTENCY_CONFLICT: createError('DC_ERR_IDEMPOTENCY_CONFLICT', 'Idempotency-Key was already used with a different request body', 409),

  // Quotas (per tenant or per key, fleet-wide)
  DC_ERR_EXPORT_QUOTA: createError(
    'DC_ERR_EXPORT_QUOTA',
    'This tenant already has %s exports queued or processing, the most it may have at once; retry when one finishes',
    429,
  ),
  DC_ERR_BATCH_QUOTA: createError('DC_ERR_BATCH_QUOTA', '%s', 429),
  DC_ERR_STREAM_QUOTA: createError('DC_ERR_STREAM_QUOTA', 'This API key already has %s event streams open, the most it may have at once', 429),

  // Everything else
  DC_ERR_INTERNAL: createError('DC_ERR_INTERNAL', 'Internal server error', 500),
} as const

export type ErrorCode = keyof typeof errors

/** Seconds a client should wait before retrying a 503 (or a 429 quota refusal) of this kind. */
export const RETRY_AFTER_SECONDS: Partial<Record<ErrorCode, number>> = {
  DC_ERR_DYNAMO_UNAVAILABLE: 5,
  DC_ERR_DYNAMO_THROTTLED: 1,
  DC_ERR_BUDGET_EXHAUSTED: 1,
  DC_ERR_QUEUE_UNAVAILABLE: 5,
  DC_ERR_REDIS_UNAVAILABLE: 5,
  DC_ERR_EXPORT_STORAGE_UNAVAILABLE: 5,
  DC_ERR_EXPORT_QUOTA: 10,
  DC_ERR_BATCH_QUOTA: 10,
  DC_ERR_STREAM_QUOTA: 10,
}

export function isDcError(err: unknown): err is Error & { code: ErrorCode; statusCode: number } {
  const code = (err as { code?: unknown } | null)?.code
  return err instanceof Error && typeof code === 'string' && code in errors
}
