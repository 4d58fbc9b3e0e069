import { randomBytes } from 'node:crypto'

/**
 * Request ids for log correlation: a random per-process prefix (48 bits) and a counter, unique across
 * processes in practice and far cheaper than a UUID per request. They are not secrets: nothing may use
 * a request id as a token (it is predictable within a process).
 */
export function createRequestIds(): () => string {
  const prefix = randomBytes(6).toString('hex')
  let next = 0
  return () => `${prefix}-${(++next).toString(36)}`
}
