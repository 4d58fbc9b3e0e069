import type { AttributeValue } from '@aws-sdk/client-dynamodb'
import { errors } from '../errors.ts'
import { type FilterInput, filterJson } from './filter-json.ts'
import { decodeBase64Url } from './key-values.ts'
import { parseNumber } from './numbers.ts'
import { JsonNumber, type JsonValue } from './strict-json.ts'
import type { KeyDefinition, TableDescription } from './table-description.ts'

/** Filter operators (`filter[i].op`). */
export const FILTER_OPS = ['eq', 'ne', 'lt', 'le', 'gt', 'ge', 'begins_with', 'contains', 'exists', 'not_exists'] as const
export type FilterOp = (typeof FILTER_OPS)[number]

/** Operators beyond FILTER_OPS: `in` (a list of values) and `attribute_type` (a DynamoDB type name). */
export const FILTER_LIST_OPS = ['in', 'attribute_type'] as const
export type AnyFilterOp = FilterOp | (typeof FILTER_LIST_OPS)[number]
const ALL_OPS: readonly string[] = [...FILTER_OPS, ...FILTER_LIST_OPS]
/** Type names `attribute_type` accepts. */
export const ATTRIBUTE_TYPES = ['S', 'SS', 'N', 'NS', 'B', 'BS', 'BOOL', 'NULL', 'L', 'M'] as const
// Comparisons a `size` condition may use.
const SIZE_OPS = ['eq', 'ne', 'lt', 'le', 'gt', 'ge']

/** Most conditions one filter may hold (counted across every group). */
export const MAX_FILTER_CONDITIONS = 20
/** Most values one `in` condition may list (DynamoDB's limit for IN). */
export const MAX_IN_VALUES = 100
/** Longest `attr` (the whole dotted path), in characters. */
export const MAX_FILTER_ATTR_LENGTH = 255
// DynamoDB rejects document paths nested deeper than 32 levels.
const MAX_PATH_DEPTH = 32

/**
 * One validated filter condition; `path` is `attr` split at dots, `value` is absent for exists/not_exists,
 * `values` holds the list of `in`, `size` compares the size of the attribute rather than its value.
 */
export interface FilterCondition {
  attr: string
  path: string[]
  op: AnyFilterOp
  value?: AttributeValue
  values?: AttributeValue[]
  size?: true
}

/** A filter as a tree: conditions combined with and, or and not. A top-level array is an `and`. */
export type FilterNode = FilterCondition | { and: FilterNode[] } | { or: FilterNode[] } | { not: FilterNode }

export type { FilterInput } from './filter-json.ts'

/** A validated filter: its tree, and its conditions in order, each with its position in the filter. */
export interface ParsedFilter {
  root: FilterNode
  conditions: Array<{ condition: FilterCondition; at: string }>
}

const invalidFilter = (message: string) => new errors.DC_ERR_INVALID_FILTER(message)

const VALUE_KINDS = 'a string, number, boolean, null, {"N": "<number>"} or {"B": "<base64url>"}'
// Which value types each operator can take; DynamoDB rejects ordering or prefix tests on the others.
const OP_TYPES: Record<Exclude<FilterOp, 'exists' | 'not_exists'>, { types: string[]; says: string }> = {
  eq: { types: ['S', 'N', 'B', 'BOOL', 'NULL'], says: VALUE_KINDS },
  ne: { types: ['S', 'N', 'B', 'BOOL', 'NULL'], says: VALUE_KINDS },
  lt: { types: ['S', 'N', 'B'], says: 'a string or a number' },
  le: { types: ['S', 'N', 'B'], says: 'a string or a number' },
  gt: { types: ['S', 'N', 'B'], says: 'a string or a number' },
  ge: { types: ['S', 'N', 'B'], says: 'a string or a number' },
  begins_with: { types: ['S', 'B'], says: 'a string' },
  contains: { types: ['S', 'N', 'B'], says: 'a string or a number' },
}

function filterValue(v: JsonValue, at: string): AttributeValue {
  if (typeof v === 'string') return { S: v }
  if (typeof v === 'boolean') return { BOOL: v }
  if (v === null) return { NULL: true }
  const typed = v instanceof Map && v.size === 1 ? [...v][0]! : undefined
  const numberText = v instanceof JsonNumber ? v.text : typed?.[0] === 'N' && typeof typed[1] === 'string' ? typed[1] : undefined
  if (numberText !== undefined) {
    const parsed = parseNumber(numberText)
    if (!parsed.ok) throw invalidFilter(`${at} is not a DynamoDB number: ${parsed.reason}`)
    return { N: parsed.n }
  }
  if (typed?.[0] === 'B' && typeof typed[1] === 'string') {
    try {
      return { B: decodeBase64Url(typed[1]) }
    } catch (err) {
      throw invalidFilter(`${at}.B is not base64url: ${(err as Error).message}`)
    }
  }
  throw invalidFilter(`${at} must be ${VALUE_KINDS}`)
}

function attrPath(attr: JsonValue | undefined, at: string): string[] {
  if (typeof attr !== 'string' || attr.length === 0) {
    throw invalidFilter(`${at}.attr must be a non-empty string: an attribute name, or a dotted path such as a.b`)
  }
  if (attr.length > MAX_FILTER_ATTR_LENGTH) {
    throw invalidFilter(`${at}.attr must be at most ${MAX_FILTER_ATTR_LENGTH} characters; got ${attr.length}`)
  }
  const path = attr.split('.')
  if (path.includes('')) throw invalidFilter(`${at}.attr ${JSON.stringify(attr)} has an empty name between dots`)
  if (path.length > MAX_PATH_DEPTH) throw invalidFilter(`${at}.attr nests deeper than ${MAX_PATH_DEPTH} levels`)
  return path
}

function condition(item: Map<string, JsonValue>, at: string): FilterCondition {
  for (const key of item.keys()) {
    if (key !== 'attr' && key !== 'op' && key !== 'value' && key !== 'size') {
      throw invalidFilter(`${at} has the unknown property ${JSON.stringify(key)}; allowed: attr, op, value, size`)
    }
  }
  const path = attrPath(item.get('attr'), at)
  const attr = item.get('attr') as string
  const op = item.get('op')
  if (typeof op !== 'string' || !ALL_OPS.includes(op)) {
    throw invalidFilter(`${at}.op must be one of ${ALL_OPS.join(', ')}`)
  }
  if (item.has('size')) {
    if (item.get('size') !== true) {
      throw invalidFilter(`${at}.size must be true (compare the attribute's size) or absent`)
    }
    if (!SIZE_OPS.includes(op)) throw invalidFilter(`${at}.op must be one of ${SIZE_OPS.join(', ')} with size`)
    if (!item.has('value')) throw invalidFilter(`${at}.value is required with op ${op}`)
    const value = filterValue(item.get('value')!, `${at}.value`)
    if (value.N === undefined) throw invalidFilter(`${at}.value must be a number with size`)
    return { attr, path, op: op as FilterOp, value, size: true }
  }
  if (op === 'in') {
    const list = item.get('value')
    if (!Array.isArray(list) || list.length === 0) {
      throw invalidFilter(`${at}.value must be a non-empty array of values with op in`)
    }
    if (list.length > MAX_IN_VALUES) {
      throw invalidFilter(`${at}.value lists ${list.length} values; at most ${MAX_IN_VALUES} are allowed with op in`)
    }
    return { attr, path, op: 'in', values: list.map((v, j) => filterValue(v, `${at}.value[${j}]`)) }
  }
  if (op === 'attribute_type') {
    const type = item.get('value')
    if (typeof type !== 'string' || !(ATTRIBUTE_TYPES as readonly string[]).includes(type)) {
      throw invalidFilter(`${at}.value must be one of ${ATTRIBUTE_TYPES.join(', ')} with op attribute_type`)
    }
    return { attr, path, op: 'attribute_type', value: { S: type } }
  }
  const filterOp = op as FilterOp
  if (filterOp === 'exists' || filterOp === 'not_exists') {
    if (item.has('value')) throw invalidFilter(`${at}.value must not be given with op ${filterOp}`)
    return { attr, path, op: filterOp }
  }
  if (!item.has('value')) throw invalidFilter(`${at}.value is required with op ${filterOp}`)
  const value = filterValue(item.get('value')!, `${at}.value`)
  const rule = OP_TYPES[filterOp as keyof typeof OP_TYPES]
  if (!rule.types.includes(Object.keys(value)[0]!)) {
    throw invalidFilter(`${at}.value must be ${rule.says} for op ${filterOp}`)
  }
  return { attr, path, op: filterOp, value }
}

const GROUP_KEYS = ['and', 'or', 'not']

// One node: a group ({ and: [...] }, { or: [...] }, { not: node }) or a condition; leaves collected in order.
function node(item: JsonValue, at: string, leaves: ParsedFilter['conditions']): FilterNode {
  if (!(item instanceof Map)) throw invalidFilter(`${at} must be an object { attr, op, value }`)
  const group = [...item.keys()].find((k) => GROUP_KEYS.includes(k))
  if (group === undefined) {
    const c = condition(item, at)
    leaves.push({ condition: c, at })
    return c
  }
  if (item.size !== 1) throw invalidFilter(`${at} must have only the property ${JSON.stringify(group)}`)
  const inner = item.get(group)!
  if (group === 'not') return { not: node(inner, `${at}.not`, leaves) }
  if (!Array.isArray(inner) || inner.length === 0) {
    throw invalidFilter(`${at}.${group} must be a non-empty array of conditions`)
  }
  const children = inner.map((child, i) => node(child, `${at}.${group}[${i}]`, leaves))
  return group === 'and' ? { and: children } : { or: children }
}

/**
 * Validates a filter and returns it as a tree, with its conditions in order. A filter is a JSON array of
 * conditions (ANDed), or one group: `{ "or": [...] }`, `{ "and": [...] }`, `{ "not": ... }`, nested freely
 * within the JSON depth limit. A condition is `{ attr, op, value }`, or `{ attr, op, value, size: true }` to
 * compare the attribute's size; `in` takes an array of up to 100 values, `attribute_type` a type name.
 * At most 20 conditions in all. Throws DC_ERR_INVALID_FILTER naming the position of the first problem.
 */
export function parseFilterTree(filter: FilterInput): ParsedFilter {
  const doc = filterJson(filter)
  const leaves: ParsedFilter['conditions'] = []
  let root: FilterNode
  if (Array.isArray(doc)) {
    if (doc.length > MAX_FILTER_CONDITIONS) {
      throw invalidFilter(`filter has ${doc.length} conditions; at most ${MAX_FILTER_CONDITIONS} are allowed`)
    }
    root = { and: doc.map((item, i) => node(item, `filter[${i}]`, leaves)) }
  } else if (doc instanceof Map && doc.size === 1 && GROUP_KEYS.includes([...doc.keys()][0]!)) {
    root = node(doc, 'filter', leaves)
  } else {
    throw invalidFilter('filter must be a JSON array of { attr, op, value } conditions, or one { "and" | "or" | "not": ... } group')
  }
  if (leaves.length > MAX_FILTER_CONDITIONS) {
    throw invalidFilter(`filter has ${leaves.length} conditions; at most ${MAX_FILTER_CONDITIONS} are allowed`)
  }
  return { root, conditions: leaves }
}

/**
 * Validates a filter (see parseFilterTree) and returns its conditions in order.
 * Number values keep their exact text (a JSON number, or {"N": "..."}); {"B": "<base64url>"} gives binary.
 * Throws DC_ERR_INVALID_FILTER naming the position of the first problem, e.g. "filter[2].op must be ...".
 */
export function parseFilter(filter: FilterInput): FilterCondition[] {
  return parseFilterTree(filter).conditions.map((c) => c.condition)
}

/**
 * Refuses what DynamoDB refuses in a query's filter, with a 400 that names the condition: a condition
 * on a key attribute of the queried key (use pk, sk and skOp), or a nested path under any key attribute
 * of the table or its indexes (keys are scalars). Throws DC_ERR_INVALID_FILTER.
 */
export function checkQueryFilter(filter: ParsedFilter, table: TableDescription, key: KeyDefinition): void {
  const queried = new Set([key.partition.name, ...(key.sort ? [key.sort.name] : [])])
  const scalarKeys = new Set([table.key, ...table.indexes.map((i) => i.key)].flatMap((k) => [k.partition.name, ...(k.sort ? [k.sort.name] : [])]))
  for (const { condition: c, at } of filter.conditions) {
    const head = c.path[0]!
    if (queried.has(head)) {
      throw invalidFilter(`${at}.attr '${head}' is a key attribute of this query: use pk, sk and skOp for it`)
    }
    if (c.path.length > 1 && scalarKeys.has(head)) {
      throw invalidFilter(`${at}.attr '${c.attr}': key attribute '${head}' is a scalar and has no nested attributes`)
    }
  }
}
