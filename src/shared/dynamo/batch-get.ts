import { type AttributeValue, BatchGetItemCommand, type BatchGetItemCommandOutput, type KeysAndAttributes } from '@aws-sdk/client-dynamodb'
import { keyString } from '../batches/operations.ts'
import { DEFAULT_RETRY, type RetryPolicy, retryUnprocessed } from '../batches/unprocessed.ts'
import { errors } from '../errors.ts'
import type { DynamoGateway } from './gateway.ts'
import type { AttributeMap } from './item-json.ts'
import { compareKeyValues } from './key-values.ts'

/** DynamoDB's limit of keys per BatchGetItem call. */
export const MAX_KEYS_PER_BATCH_GET = 100

export interface BatchGetOptions {
  /** Attributes to return; the key attributes are always added. All attributes when omitted. */
  attributes?: readonly string[]
  /** A ready projection (e.g. projectionFor's, keys included); takes the place of `attributes`. */
  projection?: { ProjectionExpression: string; ExpressionAttributeNames: Record<string, string> }
  consistentRead?: boolean
  /** BatchGetItem calls in flight at once. */
  parallelCalls?: number
  retry?: Partial<RetryPolicy>
}

/**
 * Reads many items of one table by primary key: BatchGetItem calls of up to 100 keys, several in
 * parallel, with UnprocessedKeys (and throttling or 5xx) retried with exponential backoff and full
 * jitter. Answers in the order of `keys`, undefined where no item exists; a key given twice is read
 * once. Throws the last DynamoDB error, or DC_ERR_DYNAMO_THROTTLED, when keys are still unread after
 * the retries.
 */
export async function batchGetItems(
  gateway: DynamoGateway,
  table: string,
  keys: readonly AttributeMap[],
  options: BatchGetOptions = {},
): Promise<Array<AttributeMap | undefined>> {
  if (keys.length === 0) return []
  const names = Object.keys(keys[0]!)
  const positions = new Map<string, number[]>()
  const unique: AttributeMap[] = []
  for (const [i, key] of keys.entries()) {
    if (Object.keys(key).length !== names.length || names.some((n) => key[n] === undefined)) {
      throw new TypeError(`Every key must have exactly the attributes ${names.join(', ')} (key ${i} does not)`)
    }
    const id = keyString(names, key)
    const at = positions.get(id)
    if (at) at.push(i)
    else {
      positions.set(id, [i])
      unique.push(key)
    }
  }

  // DynamoDB answers numbers normalised ('1.0' asked comes back as '1'): match those by value.
  const sameValue = (a: AttributeValue | undefined, b: AttributeValue | undefined) => {
    try {
      return a !== undefined && b !== undefined && compareKeyValues(a, b) === 0
    } catch {
      return false
    }
  }
  const positionsOf = (item: AttributeMap): number[] => {
    const exact = positions.get(keyString(names, item))
    if (exact) return exact
    const asked = unique.find((k) => names.every((n) => sameValue(k[n], item[n])))
    return asked ? (positions.get(keyString(names, asked)) ?? []) : []
  }

  const projection: Omit<KeysAndAttributes, 'Keys'> = {
    ...(options.consistentRead ? { ConsistentRead: true } : {}),
  }
  if (options.projection) {
    projection.ProjectionExpression = options.projection.ProjectionExpression
    projection.ExpressionAttributeNames = options.projection.ExpressionAttributeNames
  } else if (options.attributes) {
    const wanted = [...new Set([...names, ...options.attributes])]
    projection.ProjectionExpression = wanted.map((_, i) => `#a${i}`).join(', ')
    projection.ExpressionAttributeNames = Object.fromEntries(wanted.map((name, i) => [`#a${i}`, name]))
  }
  const policy = { ...DEFAULT_RETRY, ...options.retry }
  const results: Array<AttributeMap | undefined> = new Array(keys.length)

  async function readGroup(group: AttributeMap[]) {
    const outcome = await retryUnprocessed(
      group,
      async (pending) => {
        const out = await gateway.send<BatchGetItemCommandOutput>(
          table,
          new BatchGetItemCommand({ RequestItems: { [table]: { ...projection, Keys: pending } } }),
        )
        for (const item of out.Responses?.[table] ?? []) {
          for (const i of positionsOf(item)) results[i] = item
        }
        return (out.UnprocessedKeys?.[table]?.Keys ?? []) as AttributeMap[]
      },
      policy,
    )
    if (outcome.remaining.length > 0) throw outcome.lastError ?? new errors.DC_ERR_DYNAMO_THROTTLED(table)
  }

  const groups: AttributeMap[][] = []
  for (let i = 0; i < unique.length; i += MAX_KEYS_PER_BATCH_GET) groups.push(unique.slice(i, i + MAX_KEYS_PER_BATCH_GET))
  const lanes = Math.max(1, Math.min(options.parallelCalls ?? 4, groups.length))
  let next = 0
  let failed = false
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      try {
        while (!failed && next < groups.length) await readGroup(groups[next++]!)
      } catch (err) {
        failed = true
        throw err
      }
    }),
  )
  return results
}
