import { type ErrorCode, isDcError } from './errors.ts'

/**
 * What kind of failure an error is, decided once for the read path, batches, exports and the workers.
 * Errors are told apart by what the catalogue (errors.ts) gives them, a code and a status, never by message.
 */

/** The `code` of an error (ours, Node's or a driver's), or undefined when it has none. */
export function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code
  return typeof code === 'string' ? code : undefined
}

const UNAVAILABLE: ReadonlySet<string> = new Set<ErrorCode>(['DC_ERR_DYNAMO_UNAVAILABLE', 'DC_ERR_DYNAMO_THROTTLED', 'DC_ERR_BUDGET_EXHAUSTED'])

/** DynamoDB is down, throttling, or the read budget is spent: the source cannot answer now, the request is not wrong (a stale entry beats an error). */
export const isUnavailable = (err: unknown): boolean => UNAVAILABLE.has(codeOf(err) ?? '')

/** The DynamoDB read or write budget is used up for this second: "not now", not a failure. */
export const isBudgetExhausted = (err: unknown): boolean => codeOf(err) === 'DC_ERR_BUDGET_EXHAUSTED'

/**
 * Failures no retry can fix, read off the catalogue's status: a 400 says the request as written is
 * invalid (a key, query, filter, fields, or DynamoDB's ValidationException), and it is as invalid on the
 * next run; a 404 says what it names (a table, an index, an export) is gone. A job meeting one fails at
 * once, its record saying why, instead of spending its attempts. Everything else is retried on purpose:
 * 409 and 412 (the state may change), 429 (a quota frees up), 503 (DynamoDB, Redis, the queue or export
 * storage come back), and anything not ours or unknown (DC_ERR_INTERNAL, a driver's surprise).
 */
export const isPermanent = (err: unknown): boolean => isDcError(err) && (err.statusCode === 400 || err.statusCode === 404)
