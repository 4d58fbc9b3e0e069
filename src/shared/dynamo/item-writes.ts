import {
  DeleteItemCommand,
  type DeleteItemCommandOutput,
  GetItemCommand,
  type GetItemCommandOutput,
  PutItemCommand,
  type PutItemCommandOutput,
  UpdateItemCommand,
  type UpdateItemCommandOutput,
} from '@aws-sdk/client-dynamodb'
import { BrokenCircuitError } from 'cockatiel'
import { codeOf } from '../error-classes.ts'
import { errors } from '../errors.ts'
import type { DynamoGateway } from './gateway.ts'
import type { AttributeMap } from './item-json.ts'
import { keyAttributes } from './item-put.ts'
import type { BuiltUpdate } from './item-update.ts'
import type { TableDescription } from './table-description.ts'
import { conditionFailed, conditionInput, type Expression, ifMatchHolds, pinCondition } from './write-conditions.ts'

// The DynamoDB calls of single-item writes; their values are checked in item-put.ts / item-update.ts, conditions built in write-conditions.ts.

/** What makes a write conditional: a parsed `condition` and/or the item as read for If-Match. */
export interface WriteConditions {
  condition?: Expression
  /** The If-Match header; checked against a consistent read before the write, then pinned. */
  ifMatch?: string
}

/**
 * Rethrows DynamoDB's ConditionalCheckFailedException (mapped by the gateway) as 412, and a write that got
 * no clear answer (timeout, lost connection, 5xx; the gateway does not resend those) as 503 saying so.
 */
function rethrow(err: unknown): never {
  const cause = (err as { cause?: { name?: string } }).cause
  if (cause?.name === 'ConditionalCheckFailedException' || (err as { name?: string }).name === 'ConditionalCheckFailedException') throw conditionFailed()
  if (codeOf(err) === 'DC_ERR_DYNAMO_UNAVAILABLE' && !(cause instanceof BrokenCircuitError)) {
    throw new errors.DC_ERR_DYNAMO_UNAVAILABLE(
      'no clear answer to the write (timeout, lost connection or a server error), so it may or may not have been applied: read the item with consistent=true before trying again',
      { cause: err },
    )
  }
  throw err
}

/** One item by key, ConsistentRead: the item as it is now (undefined when there is none). */
export async function readItem(
  gateway: DynamoGateway,
  table: string,
  key: AttributeMap,
  projection?: { ProjectionExpression: string; ExpressionAttributeNames: Record<string, string> },
): Promise<AttributeMap | undefined> {
  const out = await gateway.send<GetItemCommandOutput>(table, new GetItemCommand({ TableName: table, Key: key, ConsistentRead: true, ...projection }))
  return out.Item
}

/** The If-Match pin: reads the item consistently, 412 unless an ETag matches, then a condition that it is unchanged. */
async function ifMatchPin(
  gateway: DynamoGateway,
  description: TableDescription,
  key: AttributeMap,
  ifMatch: string | undefined,
): Promise<Expression | undefined> {
  if (ifMatch === undefined) return undefined
  const current = await readItem(gateway, description.name, key)
  if (!current || !ifMatchHolds(ifMatch, current)) throw conditionFailed()
  return pinCondition(current, description.key.partition.name)
}

/** The images of one write: what the item was (null: absent; undefined: unknown) and what it is now. */
export interface WriteResult {
  oldImage: AttributeMap | null | undefined
  newImage: AttributeMap | null
}

/** PutItem with ReturnValues ALL_OLD: both images are known exactly. */
export async function putItem(
  gateway: DynamoGateway,
  description: TableDescription,
  key: AttributeMap,
  item: AttributeMap,
  conditions: WriteConditions,
): Promise<WriteResult> {
  const table = description.name
  const pin = await ifMatchPin(gateway, description, key, conditions.ifMatch)
  try {
    const out = await gateway.send<PutItemCommandOutput>(
      table,
      new PutItemCommand({ TableName: table, Item: item, ReturnValues: 'ALL_OLD', ...conditionInput([conditions.condition, pin]) }),
    )
    return { oldImage: out.Attributes ?? null, newImage: item }
  } catch (err) {
    return rethrow(err)
  }
}

/**
 * UpdateItem with ReturnValues ALL_NEW. DynamoDB returns one image per call, so the old image is known
 * only where it can be derived: an update that touches no index key leaves the item's index keys as
 * they are (old image: the key and the index keys of the new one); otherwise it is unknown.
 */
export async function updateItem(
  gateway: DynamoGateway,
  description: TableDescription,
  key: AttributeMap,
  update: BuiltUpdate,
  conditions: WriteConditions,
): Promise<WriteResult> {
  const table = description.name
  const pin = await ifMatchPin(gateway, description, key, conditions.ifMatch)
  const condition = conditionInput([conditions.condition, pin])
  let out: UpdateItemCommandOutput
  try {
    out = await gateway.send<UpdateItemCommandOutput>(
      table,
      new UpdateItemCommand({
        TableName: table,
        Key: key,
        UpdateExpression: update.expression,
        ConditionExpression: condition.ConditionExpression,
        ExpressionAttributeNames: { ...update.names, ...condition.ExpressionAttributeNames },
        ExpressionAttributeValues:
          Object.keys(update.values).length || condition.ExpressionAttributeValues ? { ...update.values, ...condition.ExpressionAttributeValues } : undefined,
        ReturnValues: 'ALL_NEW',
      }),
    )
  } catch (err) {
    return rethrow(err)
  }
  const newImage = out.Attributes ?? { ...key }
  const { index } = keyAttributes(description)
  if ([...update.touched].some((name) => index.has(name))) return { oldImage: undefined, newImage }
  const oldImage: AttributeMap = { ...key }
  for (const name of index.keys()) if (newImage[name] !== undefined) oldImage[name] = newImage[name]!
  return { oldImage, newImage }
}

/** DeleteItem with ReturnValues ALL_OLD: the old image is known exactly, the new one is null. */
export async function deleteItem(gateway: DynamoGateway, description: TableDescription, key: AttributeMap, conditions: WriteConditions): Promise<WriteResult> {
  const table = description.name
  const pin = await ifMatchPin(gateway, description, key, conditions.ifMatch)
  try {
    const out = await gateway.send<DeleteItemCommandOutput>(
      table,
      new DeleteItemCommand({ TableName: table, Key: key, ReturnValues: 'ALL_OLD', ...conditionInput([conditions.condition, pin]) }),
    )
    return { oldImage: out.Attributes ?? null, newImage: null }
  } catch (err) {
    return rethrow(err)
  }
}
