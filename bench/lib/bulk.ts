import { BatchWriteItemCommand, type DynamoDBClient, ScanCommand, type WriteRequest } from '@aws-sdk/client-dynamodb'
import type { Item } from '../../test/helpers/tables.ts'

export interface BulkWriteResult {
  /** BatchWriteItem calls made, resends of unprocessed requests included. */
  calls: number
  /** Requests DynamoDB handed back unprocessed (and that were sent again). */
  unprocessed: number
}

/**
 * The plain BatchWriteItem loop: `lanes` loops in parallel, each taking the next 25 items and sending
 * them, then at once whatever comes back unprocessed, until the call is through. No backoff, no
 * bookkeeping: the least a client can do. Items are made by `itemAt(i)` as they are sent, so 200,000 of
 * them never sit in memory at once.
 */
export async function writeItems(client: DynamoDBClient, table: string, count: number, itemAt: (i: number) => Item, lanes: number): Promise<BulkWriteResult> {
  const result: BulkWriteResult = { calls: 0, unprocessed: 0 }
  let next = 0
  async function lane() {
    for (;;) {
      const start = next
      if (start >= count) return
      next = Math.min(count, start + 25)
      let requests: WriteRequest[] = []
      for (let i = start; i < next; i++) requests.push({ PutRequest: { Item: itemAt(i) } })
      while (requests.length > 0) {
        result.calls++
        const out = await client.send(new BatchWriteItemCommand({ RequestItems: { [table]: requests } }))
        requests = out.UnprocessedItems?.[table] ?? []
        result.unprocessed += requests.length
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, lanes) }, lane))
  return result
}

/** Items in a table, by a parallel Scan with Select COUNT (every page, so nothing is estimated). */
export async function countItems(client: DynamoDBClient, table: string, segments = 4): Promise<number> {
  const counts = await Promise.all(
    Array.from({ length: segments }, async (_, segment) => {
      let n = 0
      let key: Record<string, unknown> | undefined
      do {
        const out = await client.send(
          new ScanCommand({
            TableName: table,
            Select: 'COUNT',
            Segment: segment,
            TotalSegments: segments,
            ...(key ? { ExclusiveStartKey: key as never } : {}),
          }),
        )
        n += out.Count ?? 0
        key = out.LastEvaluatedKey
      } while (key)
      return n
    }),
  )
  return counts.reduce((a, b) => a + b, 0)
}
