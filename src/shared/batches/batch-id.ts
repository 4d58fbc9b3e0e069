import { createHash, randomBytes } from 'node:crypto'
import { DEFAULT_TENANT, isValidTableName } from '../access.ts'

const RANDOM = /^[A-Za-z0-9_-]{16}$/

/**
 * A new batch id: `<table>.<16 random base64url characters>`. The id names its table, so
 * GET /batches/:id finds the batch's keys (which share the table's hash tag) without a lookup key.
 */
export function newBatchId(table: string): string {
  return `${table}.${randomBytes(12).toString('base64url')}`
}

/** The table a batch id belongs to; undefined for anything newBatchId cannot have made. */
export function tableOfBatchId(id: string): string | undefined {
  const dot = id.lastIndexOf('.')
  if (dot < 0 || !RANDOM.test(id.slice(dot + 1))) return undefined
  const table = id.slice(0, dot)
  return isValidTableName(table) ? table : undefined
}

/** What identifies a request's content: the table and the operations as stored. */
export function batchFingerprint(table: string, operationsJson: string): string {
  return createHash('sha256').update(table).update('\n').update(operationsJson).digest('base64url')
}

/**
 * An Idempotency-Key scoped to the tenant and the API key that sent it, hashed so the client's key never
 * lands in Redis: another tenant's same key is another batch. The default tenant hashes what it did before
 * tenants existed, so a replay across the upgrade still finds its batch; no key id holds a newline.
 */
export function idempotencyDigest(tenant: string, apiKeyId: string, idempotencyKey: string): string {
  const scope = tenant === DEFAULT_TENANT ? apiKeyId : `${tenant}\n${apiKeyId}`
  return createHash('sha256').update(scope).update('\n').update(idempotencyKey).digest('base64url')
}
