import type { AttributeValue } from '@aws-sdk/client-dynamodb'
import { inspectItem, MAX_ITEM_BYTES } from '../batches/item-rules.ts'
import { keyNames, keyString } from '../batches/operations.ts'
import { errors } from '../errors.ts'
import { DocumentProblem, documentMap } from './document-values.ts'
import { type AttributeMap, typedJsonToAttributeValues } from './item-json.ts'
import type { TableDescription } from './table-description.ts'

/** document: the plain JSON `view=document` reads (numbers exact); typed: DynamoDB attribute-value JSON (sets, binary). */
export type WriteFormat = 'document' | 'typed'

const invalidItem = (message: string) => new errors.DC_ERR_INVALID_ITEM(message)

/** Attribute names that key the table or any of its indexes, with their types. */
export function keyAttributes(description: TableDescription) {
  const table = new Set(keyNames(description))
  const types = new Map(description.attributeDefinitions.map((d) => [d.name, d.type]))
  const index = new Map<string, string>()
  for (const { key } of description.indexes) {
    for (const attr of [key.partition, ...(key.sort ? [key.sort] : [])]) {
      if (!table.has(attr.name)) index.set(attr.name, types.get(attr.name) ?? attr.type)
    }
  }
  return { table, index }
}

/** The type of an attribute value (S, N, M, ...). */
export const typeOf = (v: AttributeValue) => Object.keys(v).find((k) => (v as unknown as Record<string, unknown>)[k] !== undefined) ?? '?'

/** What is wrong with a value given to an index key attribute, or undefined. */
export function indexKeyProblem(name: string, type: string, v: AttributeValue): string | undefined {
  if (typeOf(v) !== type) return `'${name}' is a key of an index and must be of type ${type}, got ${typeOf(v)}`
  if ((v.S !== undefined && v.S === '') || (v.B !== undefined && v.B.byteLength === 0)) return `'${name}' is a key of an index and must not be empty`
  return undefined
}

function convertItem(body: unknown, format: WriteFormat, what: string): AttributeMap {
  try {
    return format === 'typed' ? typedJsonToAttributeValues(body) : documentMap(body)
  } catch (err) {
    if (err instanceof DocumentProblem) throw invalidItem(`${what}: ${err.message}`)
    throw invalidItem(`${what}: ${(err as Error).message}`)
  }
}

/**
 * The item a PUT writes: the body (document or typed) with the URL's key. Key attributes in the body
 * must equal the URL's; index keys must have their types; DynamoDB's value rules and the 400 KB limit
 * are checked. Throws DC_ERR_INVALID_ITEM or DC_ERR_INVALID_KEY; nothing has been written then.
 */
export function itemForPut(description: TableDescription, key: AttributeMap, body: unknown, format: WriteFormat): AttributeMap {
  const item = convertItem(body, format, 'the item')
  const names = keyNames(description)
  for (const name of names) {
    if (item[name] === undefined) item[name] = key[name]!
  }
  if (keyString(names, item) !== keyString(names, key)) {
    throw new errors.DC_ERR_INVALID_KEY(`the item's key attributes (${names.join(', ')}) differ from the key in the URL`)
  }
  return checkedItem(description, item)
}

/** Checks an item against the table's index key types and DynamoDB's value rules and size; returns it. */
export function checkedItem(description: TableDescription, item: AttributeMap): AttributeMap {
  const { index } = keyAttributes(description)
  for (const [name, type] of index) {
    const problem = item[name] === undefined ? undefined : indexKeyProblem(name, type, item[name]!)
    if (problem) throw invalidItem(problem)
  }
  const { bytes, problem } = inspectItem(item)
  if (problem) throw invalidItem(problem)
  if (bytes > MAX_ITEM_BYTES) throw invalidItem(`the item is ${bytes} bytes; DynamoDB's limit is ${MAX_ITEM_BYTES} (400 KB, attribute names included)`)
  return item
}
