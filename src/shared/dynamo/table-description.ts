import type { TableDescription as SdkTableDescription } from '@aws-sdk/client-dynamodb'

export type KeyAttributeType = 'S' | 'N' | 'B'

export interface KeyAttribute {
  name: string
  type: KeyAttributeType
}

/** A primary key or index key: partition key and optional sort key. */
export interface KeyDefinition {
  partition: KeyAttribute
  sort?: KeyAttribute
}

export interface IndexDescription {
  name: string
  kind: 'GSI' | 'LSI'
  key: KeyDefinition
  projection: { type: string; nonKeyAttributes?: string[] }
  status?: string
}

/** Table details as the API returns them (GET /tables/:table) and as the read operations use them. */
export interface TableDescription {
  name: string
  status: string
  key: KeyDefinition
  attributeDefinitions: KeyAttribute[]
  indexes: IndexDescription[]
  billingMode: string
  provisionedThroughput?: { readCapacityUnits: number; writeCapacityUnits: number }
  stream: { enabled: boolean; viewType?: string }
  itemCount: number
  sizeBytes: number
  createdAt?: string
  arn?: string
}

function keyDefinition(schema: Array<{ AttributeName?: string; KeyType?: string }> | undefined, types: Map<string, KeyAttributeType>): KeyDefinition {
  const attr = (role: 'HASH' | 'RANGE') => {
    const name = schema?.find((k) => k.KeyType === role)?.AttributeName
    return name === undefined ? undefined : { name, type: types.get(name) ?? 'S' }
  }
  const sort = attr('RANGE')
  return { partition: attr('HASH')!, ...(sort ? { sort } : {}) }
}

/** Normalizes DescribeTable's answer into the shape the API serves and the readers use. */
export function toTableDescription(raw: SdkTableDescription): TableDescription {
  const types = new Map<string, KeyAttributeType>((raw.AttributeDefinitions ?? []).map((d) => [d.AttributeName!, d.AttributeType as KeyAttributeType]))
  const indexes: IndexDescription[] = [
    ...(raw.GlobalSecondaryIndexes ?? []).map((i) => ({
      name: i.IndexName!,
      kind: 'GSI' as const,
      key: keyDefinition(i.KeySchema, types),
      projection: {
        type: i.Projection?.ProjectionType ?? 'ALL',
        ...(i.Projection?.NonKeyAttributes ? { nonKeyAttributes: i.Projection.NonKeyAttributes } : {}),
      },
      ...(i.IndexStatus ? { status: i.IndexStatus } : {}),
    })),
    ...(raw.LocalSecondaryIndexes ?? []).map((i) => ({
      name: i.IndexName!,
      kind: 'LSI' as const,
      key: keyDefinition(i.KeySchema, types),
      projection: {
        type: i.Projection?.ProjectionType ?? 'ALL',
        ...(i.Projection?.NonKeyAttributes ? { nonKeyAttributes: i.Projection.NonKeyAttributes } : {}),
      },
    })),
  ]
  const throughput = raw.ProvisionedThroughput
  return {
    name: raw.TableName!,
    status: raw.TableStatus ?? 'UNKNOWN',
    key: keyDefinition(raw.KeySchema, types),
    attributeDefinitions: [...types].map(([name, type]) => ({ name, type })),
    indexes,
    billingMode: raw.BillingModeSummary?.BillingMode ?? (throughput?.ReadCapacityUnits ? 'PROVISIONED' : 'PAY_PER_REQUEST'),
    ...(throughput?.ReadCapacityUnits
      ? {
          provisionedThroughput: {
            readCapacityUnits: throughput.ReadCapacityUnits,
            writeCapacityUnits: throughput.WriteCapacityUnits ?? 0,
          },
        }
      : {}),
    stream: {
      enabled: raw.StreamSpecification?.StreamEnabled ?? false,
      ...(raw.StreamSpecification?.StreamViewType ? { viewType: raw.StreamSpecification.StreamViewType } : {}),
    },
    itemCount: raw.ItemCount ?? 0,
    sizeBytes: raw.TableSizeBytes ?? 0,
    ...(raw.CreationDateTime ? { createdAt: raw.CreationDateTime.toISOString() } : {}),
    ...(raw.TableArn ? { arn: raw.TableArn } : {}),
  }
}

/** The key definition of the table or of one of its indexes; undefined for an unknown index. */
export function keyOf(table: TableDescription, index?: string): KeyDefinition | undefined {
  if (!index) return table.key
  return table.indexes.find((i) => i.name === index)?.key
}
