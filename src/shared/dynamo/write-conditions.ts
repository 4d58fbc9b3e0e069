import type { AttributeValue } from '@aws-sdk/client-dynamodb'
import { stringify } from 'lossless-json'
import { etagOf } from '../cache/read-cache.ts'
import { codeOf } from '../error-classes.ts'
import { errors } from '../errors.ts'
import { type AttributeMap, itemToDocumentJson, itemToTypedJson } from './item-json.ts'
import { buildScanFilter } from './query-builder.ts'

/** An expression with its placeholder maps, ready to merge into a write's input. */
export interface Expression {
  expression: string
  names: Record<string, string>
  values: Record<string, AttributeValue>
}

/**
 * A `condition` (the filter grammar of reads, as JSON text or as a parsed value whose numbers are
 * lossless) as a ConditionExpression. Throws DC_ERR_INVALID_CONDITION naming the first problem.
 */
export function parseCondition(raw: unknown): Expression {
  const text = typeof raw === 'string' ? raw : (stringify(raw) ?? '')
  let built: ReturnType<typeof buildScanFilter>
  try {
    built = buildScanFilter(text)
  } catch (err) {
    if (codeOf(err) !== 'DC_ERR_INVALID_FILTER') throw err
    throw new errors.DC_ERR_INVALID_CONDITION((err as Error).message.replace(/\bfilter\b/g, 'condition'))
  }
  if (!built.FilterExpression) throw new errors.DC_ERR_INVALID_CONDITION('condition is empty: give at least one { attr, op, value }')
  return { expression: built.FilterExpression, names: built.ExpressionAttributeNames ?? {}, values: built.ExpressionAttributeValues ?? {} }
}

/** The ETags an item's entry can have: its document and typed bodies, as GET /tables/:t/items/:pk answers them. */
export function itemEtags(item: AttributeMap): string[] {
  return [etagOf(Buffer.from(itemToDocumentJson(item))), etagOf(Buffer.from(itemToTypedJson(item)))]
}

const opaque = (tag: string) => tag.trim().replace(/^W\//, '')

/** True when an If-Match header names one of the item's ETags (weak comparison), or is `*` and the item exists. */
export function ifMatchHolds(header: string, item: AttributeMap | undefined): boolean {
  if (!item) return false
  if (header.trim() === '*') return true
  const ours = itemEtags(item).map(opaque)
  return header.split(',').some((tag) => ours.includes(opaque(tag)))
}

// Past this many characters of pins, maps and lists are pinned by size only (DynamoDB caps expressions at 4 KB).
const PIN_BUDGET = 3000

/**
 * A condition that holds while the item still has the values it had when read (If-Match): every
 * attribute read equals its value, maps and lists by size and by each element. Attributes added
 * since the read are not seen (a condition can only name attributes it knows).
 */
export function pinCondition(item: AttributeMap, partitionKey: string): Expression {
  const names: Record<string, string> = {}
  const values: Record<string, AttributeValue> = {}
  const nameIds = new Map<string, string>()
  const name = (n: string) => {
    let id = nameIds.get(n)
    if (!id) {
      id = `#p${nameIds.size}`
      nameIds.set(n, id)
      names[id] = n
    }
    return id
  }
  let count = 0
  const value = (v: AttributeValue) => {
    const id = `:p${count++}`
    values[id] = v
    return id
  }
  const parts = [`attribute_exists(${name(partitionKey)})`]
  let length = 0
  const add = (part: string) => {
    parts.push(part)
    length += part.length + 5
  }
  const pin = (path: string, v: AttributeValue) => {
    if (v.M !== undefined || v.L !== undefined) {
      const size = v.M !== undefined ? Object.keys(v.M).length : v.L!.length
      add(`size(${path}) = ${value({ N: String(size) })}`)
      if (length > PIN_BUDGET) return
      if (v.M !== undefined) for (const [k, e] of Object.entries(v.M)) pin(`${path}.${name(k)}`, e)
      else for (const [i, e] of v.L!.entries()) pin(`${path}[${i}]`, e)
      return
    }
    if (length <= PIN_BUDGET) add(`${path} = ${value(v)}`)
  }
  for (const [k, v] of Object.entries(item)) if (k !== partitionKey) pin(name(k), v)
  return { expression: parts.join(' AND '), names, values }
}

/** Joins expressions with AND, their placeholders merged (each kind uses its own prefixes). */
function all(parts: Array<Expression | undefined>): Expression | undefined {
  const present = parts.filter((p): p is Expression => p !== undefined)
  if (present.length === 0) return undefined
  return {
    expression: present.map((p) => (present.length === 1 ? p.expression : `(${p.expression})`)).join(' AND '),
    names: Object.assign({}, ...present.map((p) => p.names)),
    values: Object.assign({}, ...present.map((p) => p.values)),
  }
}

interface ConditionInput {
  ConditionExpression?: string
  ExpressionAttributeNames?: Record<string, string>
  ExpressionAttributeValues?: Record<string, AttributeValue>
}

/** The ConditionExpression and placeholders of the parts given, ANDed; {} when there are none. */
export function conditionInput(parts: Array<Expression | undefined>): ConditionInput {
  const joined = all(parts)
  if (!joined) return {}
  return {
    ConditionExpression: joined.expression,
    ...(Object.keys(joined.names).length ? { ExpressionAttributeNames: joined.names } : {}),
    ...(Object.keys(joined.values).length ? { ExpressionAttributeValues: joined.values } : {}),
  }
}

/** 412: the condition or the If-Match pin did not hold. */
export const conditionFailed = () =>
  new errors.DC_ERR_CONDITION_FAILED('The condition did not hold (or the item changed since the ETag in If-Match); nothing was written')
