import type { AttributeValue, WriteRequest } from '@aws-sdk/client-dynamodb'
import { DocumentProblem, documentMap } from '../dynamo/document-values.ts'
import { type AttributeMap, itemToTypedJson, typedJsonToAttributeValues } from '../dynamo/item-json.ts'
import { KEY_MAX_BYTES, type KeyRole } from '../dynamo/key-values.ts'
import { canonicalNumber } from '../dynamo/numbers.ts'
import type { KeyAttribute, KeyAttributeType, TableDescription } from '../dynamo/table-description.ts'
import { inspectItem, MAX_ITEM_BYTES } from './item-rules.ts'

/** The most operations one batch may hold. */
export const MAX_OPERATIONS = 10_000

/** How many invalid operations a 400 lists (the count of all of them is in the message). */
export const MAX_LISTED_PROBLEMS = 10

/**
 * document (the default): plain JSON as `view=document` reads it (strings, numbers taken from their JSON
 * text exactly, booleans, null, lists, maps). typed: DynamoDB attribute-value JSON, for sets and binary.
 */
export type BatchFormat = 'typed' | 'document'

export interface BatchOperation {
  kind: 'put' | 'delete'
  /** The item for a put, the key for a delete. */
  attributes: AttributeMap
}

export interface OperationProblem {
  index: number
  reason: string
}

export interface ParsedOperations {
  operations: BatchOperation[]
  /** The first invalid operations, at most MAX_LISTED_PROBLEMS. */
  problems: OperationProblem[]
  /** How many operations are invalid in all. */
  invalidCount: number
}

const TYPE_NAMES: Record<KeyAttributeType, string> = { S: 'string (S)', N: 'number (N)', B: 'binary (B)' }

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
}

/** The key attribute names of a table: partition key, then sort key if any. */
export function keyNames(table: TableDescription): string[] {
  return table.key.sort ? [table.key.partition.name, table.key.sort.name] : [table.key.partition.name]
}

function keyPart(v: AttributeValue | undefined): string {
  if (v?.S !== undefined) return `S${v.S}`
  if (v?.N !== undefined) return `N${canonicalNumber(v.N)}`
  if (v?.B !== undefined) return `B${Buffer.from(v.B).toString('base64')}`
  return '?'
}

/** One string per primary key, equal exactly when DynamoDB sees the same key (numbers by value). */
export function keyString(names: readonly string[], attributes: AttributeMap): string {
  return names.map((n) => keyPart(attributes[n])).join('\u0000')
}

const typeOf = (v: AttributeValue) => Object.keys(v).find((k) => (v as unknown as Record<string, unknown>)[k] !== undefined) ?? '?'

/** What is wrong with one key attribute's value, by the attribute's type and role; undefined if fine. */
function keyValueProblem(attr: KeyAttribute, role: KeyRole, value: AttributeValue, of: 'table' | 'index' = 'table'): string | undefined {
  const actual = typeOf(value)
  const label = `${of === 'index' ? 'index key' : `${role} key`} '${attr.name}'`
  if (actual !== attr.type) return `${label} must be a ${TYPE_NAMES[attr.type]}, got ${actual}`
  const max = KEY_MAX_BYTES[role]
  const bytes = value.S !== undefined ? Buffer.byteLength(value.S, 'utf8') : value.B !== undefined ? value.B.byteLength : 1
  if (bytes === 0) return `${label} must not be empty`
  if (bytes > max) return `${label} is ${bytes} bytes; DynamoDB allows at most ${max}`
  return undefined
}

/** A document item (the body parsed losslessly: numbers keep their JSON text) as attribute values. */
function fromDocument(json: Record<string, unknown>): AttributeMap {
  try {
    return documentMap(json)
  } catch (err) {
    if (err instanceof DocumentProblem) throw new Error(`not a document item: ${err.message}`)
    throw err
  }
}

interface OperationContext {
  format: BatchFormat
  keys: Array<{ attr: KeyAttribute; role: KeyRole }>
  /** Index key attributes that are not table key attributes, with their types and roles. */
  indexKeys: Array<{ attr: KeyAttribute; role: KeyRole }>
}

/** One raw operation to a checked BatchOperation; throws an Error whose message is the reason. */
function parseOperation(raw: unknown, ctx: OperationContext): BatchOperation {
  const kinds = isRecord(raw) ? Object.keys(raw) : []
  if (kinds.length !== 1 || (kinds[0] !== 'put' && kinds[0] !== 'delete')) {
    throw new Error('must be {"put": item} or {"delete": key}')
  }
  const kind = kinds[0] as 'put' | 'delete'
  const body = (raw as Record<string, unknown>)[kind]
  if (!isRecord(body)) throw new Error(`${kind} must be an object of attributes`)
  let attributes: AttributeMap
  try {
    attributes = ctx.format === 'typed' ? typedJsonToAttributeValues(body) : fromDocument(body)
  } catch (err) {
    throw new Error((err as Error).message)
  }
  for (const { attr, role } of ctx.keys) {
    const value = attributes[attr.name]
    if (value === undefined) throw new Error(`${kind} lacks the ${role} key '${attr.name}' (${TYPE_NAMES[attr.type]})`)
    const wrong = keyValueProblem(attr, role, value)
    if (wrong) throw new Error(wrong)
  }
  if (kind === 'delete') {
    const extra = Object.keys(attributes).find((name) => !ctx.keys.some((k) => k.attr.name === name))
    if (extra !== undefined) {
      const names = ctx.keys.map((k) => `'${k.attr.name}'`).join(' and ')
      throw new Error(`delete must be exactly the key (${names}); '${extra}' is not a key attribute`)
    }
  } else {
    for (const { attr, role } of ctx.indexKeys) {
      const value = attributes[attr.name]
      const wrong = value === undefined ? undefined : keyValueProblem(attr, role, value, 'index')
      if (wrong) throw new Error(wrong)
    }
  }
  const { bytes, problem } = inspectItem(attributes)
  if (problem) throw new Error(problem)
  if (bytes > MAX_ITEM_BYTES) {
    throw new Error(`the item is ${bytes} bytes; DynamoDB's limit is ${MAX_ITEM_BYTES} (400 KB, attribute names included)`)
  }
  return { kind, attributes }
}

/**
 * Checks every operation of a batch against the table before anything is stored: the shape, typed
 * (or document) JSON, the full primary key with the right types on each put, exactly the key on each
 * delete, index key types, DynamoDB's value rules, the 400 KB item limit and no two operations on one key.
 */
export function parseOperations(table: TableDescription, raw: readonly unknown[], format: BatchFormat): ParsedOperations {
  const keys: OperationContext['keys'] = [{ attr: table.key.partition, role: 'partition' }]
  if (table.key.sort) keys.push({ attr: table.key.sort, role: 'sort' })
  const types = new Map(table.attributeDefinitions.map((d) => [d.name, d.type]))
  // An attribute that is a sort key of any index gets the tighter sort-key size limit.
  const indexRoles = new Map<string, KeyRole>()
  for (const { key } of table.indexes) {
    if (!indexRoles.has(key.partition.name)) indexRoles.set(key.partition.name, 'partition')
    if (key.sort) indexRoles.set(key.sort.name, 'sort')
  }
  const indexKeys = [...indexRoles]
    .filter(([name]) => !keys.some((k) => k.attr.name === name))
    .map(([name, role]) => ({ attr: { name, type: types.get(name) ?? 'S' }, role }))
  const ctx: OperationContext = { format, keys, indexKeys }
  const names = keyNames(table)

  const operations: BatchOperation[] = []
  const problems: OperationProblem[] = []
  let invalidCount = 0
  const seen = new Map<string, number>()
  raw.forEach((entry, index) => {
    try {
      const op = parseOperation(entry, ctx)
      const key = keyString(names, op.attributes)
      const first = seen.get(key)
      if (first !== undefined) {
        throw new Error(`same key as operations[${first}]; DynamoDB refuses two operations on one key in a batch`)
      }
      seen.set(key, index)
      operations.push(op)
    } catch (err) {
      invalidCount++
      if (problems.length < MAX_LISTED_PROBLEMS) problems.push({ index, reason: (err as Error).message })
    }
  })
  return { operations, problems, invalidCount }
}

/** The operations as stored in Redis: a JSON array of {"put": typed item} / {"delete": typed key}. */
export function encodeOperations(operations: readonly BatchOperation[]): string {
  let out = '['
  for (let i = 0; i < operations.length; i++) {
    const op = operations[i]!
    out += `${i === 0 ? '' : ','}{"${op.kind}":${itemToTypedJson(op.attributes)}}`
  }
  return `${out}]`
}

/** The stored operations back, each with the bytes its request takes on the wire (for call sizing). */
export function decodeOperations(json: string): Array<BatchOperation & { wireBytes: number }> {
  return (JSON.parse(json) as Array<Record<string, unknown>>).map((raw) => {
    const kind = 'put' in raw ? 'put' : 'delete'
    const attributes = typedJsonToAttributeValues(raw[kind])
    return { kind, attributes, wireBytes: Buffer.byteLength(itemToTypedJson(attributes)) + 32 }
  })
}

/** The BatchWriteItem request of one operation. */
export function toWriteRequest(op: BatchOperation): WriteRequest {
  return op.kind === 'put' ? { PutRequest: { Item: op.attributes } } : { DeleteRequest: { Key: op.attributes } }
}

/** The item or key of a request DynamoDB handed back unprocessed. */
export function writeRequestAttributes(request: WriteRequest): AttributeMap | undefined {
  return request.PutRequest?.Item ?? request.DeleteRequest?.Key
}
