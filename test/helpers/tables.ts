import {
  type AttributeValue,
  BatchWriteItemCommand,
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb'
import { createDynamoClients } from '../../src/shared/dynamo/client.ts'
import type { Tap } from './tap.ts'

export type Item = Record<string, AttributeValue>

/** A low-level DynamoDB client for test set-up, closed at teardown. */
export function testDynamo(t: Tap, endpoint: string): DynamoDBClient {
  const clients = createDynamoClients({ DYNAMODB_ENDPOINT: endpoint, AWS_REGION: 'us-east-1', DYNAMO_TIMEOUT_MS: 10000 })
  t.teardown(() => clients.close())
  return clients.raw
}

/** Creates a table: `key` like { PK: 'S', SK: 'S' } (first is the partition key); `gsi` likewise. */
export async function createTable(
  client: DynamoDBClient,
  name: string,
  key: Record<string, 'S' | 'N' | 'B'>,
  gsi: Record<string, Record<string, 'S' | 'N' | 'B'>> = {},
) {
  const attrs = new Map<string, string>()
  const schema = (k: Record<string, string>) =>
    Object.entries(k).map(([n, type], i) => {
      attrs.set(n, type)
      return { AttributeName: n, KeyType: i === 0 ? ('HASH' as const) : ('RANGE' as const) }
    })
  const input: CreateTableCommandInput = {
    TableName: name,
    KeySchema: schema(key),
    BillingMode: 'PAY_PER_REQUEST',
    ...(Object.keys(gsi).length > 0
      ? { GlobalSecondaryIndexes: Object.entries(gsi).map(([IndexName, k]) => ({ IndexName, KeySchema: schema(k), Projection: { ProjectionType: 'ALL' } })) }
      : {}),
    AttributeDefinitions: [],
  }
  input.AttributeDefinitions = [...attrs].map(([AttributeName, AttributeType]) => ({ AttributeName, AttributeType: AttributeType as 'S' }))
  await client.send(new CreateTableCommand(input))
  // dynalite answers ResourceNotFound to writes while a table is still CREATING (seen on a loaded machine).
  for (let i = 0; i < 500; i++) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: name }))
    if (Table?.TableStatus === 'ACTIVE') return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`table ${name} did not become ACTIVE`)
}

/** Writes items in BatchWriteItem calls of 25, retrying unprocessed ones. */
export async function putItems(client: DynamoDBClient, table: string, items: Item[]) {
  const batches: Item[][] = []
  for (let i = 0; i < items.length; i += 25) batches.push(items.slice(i, i + 25))
  await Promise.all(
    Array.from({ length: 4 }, async (_, lane) => {
      for (let b = lane; b < batches.length; b += 4) {
        let requests = batches[b]!.map((Item) => ({ PutRequest: { Item } }))
        while (requests.length > 0) {
          const out = await client.send(new BatchWriteItemCommand({ RequestItems: { [table]: requests } }))
          requests = (out.UnprocessedItems?.[table] ?? []) as typeof requests
        }
      }
    }),
  )
}

/** An item with every DynamoDB type, including a 38-digit number. */
export function everyTypeItem(key: Item): Item {
  return {
    ...key,
    s: { S: 'héllo "world" \n\u0001' },
    n: { N: '12345678901234567890.123456789012345678' },
    neg: { N: '-0.000000000000000000000000000000000001' },
    b: { B: new Uint8Array([0, 1, 2, 253, 254, 255]) },
    ss: { SS: ['a', 'b'] },
    ns: { NS: ['1', '99999999999999999999999999999999999999'] },
    bs: { BS: [new Uint8Array([1]), new Uint8Array([2, 3])] },
    l: { L: [{ S: 'x' }, { N: '1.5' }, { NULL: true }, { M: { deep: { L: [{ BOOL: false }] } } }] },
    m: { M: { a: { S: 'b' }, nested: { M: { n: { N: '7' } } } } },
    t: { BOOL: true },
    nul: { NULL: true },
  }
}
