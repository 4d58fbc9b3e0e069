import { errors } from '../errors.ts'
import { safeReason, safeText } from '../safe-message.ts'

const THROTTLING = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'LimitExceededException',
])

/** Maps an AWS SDK failure onto our error codes: missing table 404, validation 400, throttling and the rest 503. */
export function mapDynamoError(err: unknown, table: string | null): Error {
  const name = (err as { name?: string } | null)?.name ?? 'Error'
  if (name === 'ResourceNotFoundException') return errors.DC_ERR_TABLE_NOT_FOUND(table ?? '')
  if (THROTTLING.has(name)) return new errors.DC_ERR_DYNAMO_THROTTLED(table ?? 'tables', { cause: err })
  if (name === 'ValidationException') {
    return new errors.DC_ERR_DYNAMO_REJECTED(safeText((err as Error).message), { cause: err })
  }
  // The driver's text (addresses, ARNs) stays on `cause`, for the log.
  return new errors.DC_ERR_DYNAMO_UNAVAILABLE(safeReason(err), { cause: err })
}

/** True for failures where serving a stale entry beats an error (the source is down, not the request wrong). */
export function isUnavailable(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code
  return code === 'DC_ERR_DYNAMO_UNAVAILABLE' || code === 'DC_ERR_DYNAMO_THROTTLED' || code === 'DC_ERR_BUDGET_EXHAUSTED'
}
