import { errors } from '../errors.ts'
import { safeReason, safeText } from '../safe-message.ts'

/** DynamoDB's throttling errors (the AWS SDK's name for each); the only place that lists them. */
const THROTTLING = new Set(['ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded', 'LimitExceededException'])

/** True for an AWS SDK failure that says DynamoDB is throttling (busy, not broken). */
export const isThrottling = (err: unknown): boolean => THROTTLING.has((err as { name?: string } | null)?.name ?? '')

/** Maps an AWS SDK failure onto our error codes: missing table 404, validation 400, throttling and the rest 503. */
export function mapDynamoError(err: unknown, table: string | null): Error {
  const name = (err as { name?: string } | null)?.name ?? 'Error'
  if (name === 'ResourceNotFoundException') return new errors.DC_ERR_TABLE_NOT_FOUND(table ?? '')
  if (isThrottling(err)) return new errors.DC_ERR_DYNAMO_THROTTLED(table ?? 'tables', { cause: err })
  if (name === 'ValidationException') {
    return new errors.DC_ERR_DYNAMO_REJECTED(safeText((err as Error).message), { cause: err })
  }
  // The driver's text (addresses, ARNs) stays on `cause`, for the log.
  return new errors.DC_ERR_DYNAMO_UNAVAILABLE(safeReason(err), { cause: err })
}
