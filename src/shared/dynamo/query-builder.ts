import type { AttributeValue } from '@aws-sdk/client-dynamodb'
import { errors } from '../errors.ts'
import { checkDynamoNumber, compareKeyValues, decodeBase64Url, toKeyAttributeValue } from './key-values.ts'
import { keyOf, type TableDescription } from './table-description.ts'

/** Sort-key conditions a query accepts (`skOp`). */
export const SORT_KEY_OPS = ['eq', 'lt', 'le', 'gt', 'ge', 'between', 'begins_with'] as const
export type SortKeyOp = (typeof SORT_KEY_OPS)[number]

/** Filter operators (`filter[i].op`). */
export const FILTER_OPS = [
  'eq',
  'ne',
  'lt',
  'le',
  'gt',
  'ge',
  'begins_with',
  'contains',
  'exists',
  'not_exists',
] as const
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
// A filter is an array of objects whose values may be {"N": ...}: anything deeper is a mistake.
const MAX_JSON_DEPTH = 8

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

/**
 * A filter as JSON text (numbers keep every digit) or as an already parsed array (numbers there are JS
 * numbers, so integers beyond 2^53 are refused: send them as JSON text or as {"N": "..."}).
 */
export type FilterInput = string | readonly unknown[]

/** Query parameters as the route receives them. */
export interface QueryParams {
  pk: string
  sk?: string
  skOp?: string
  sk2?: string
  index?: string
  filter?: FilterInput
  order?: 'asc' | 'desc'
}

/** The parts of a QueryCommandInput that a query request determines; spread it into the input. */
export interface BuiltQuery {
  IndexName?: string
  KeyConditionExpression: string
  FilterExpression?: string
  ExpressionAttributeNames: Record<string, string>
  ExpressionAttributeValues: Record<string, AttributeValue>
  ScanIndexForward: boolean
}

/** The filter parts of a ScanCommandInput; empty for an empty filter, since DynamoDB rejects empty maps. */
export interface ScanFilter {
  FilterExpression?: string
  ExpressionAttributeNames?: Record<string, string>
  ExpressionAttributeValues?: Record<string, AttributeValue>
}

// ---- filter JSON ----------------------------------------------------------------------------------

// Hand-written: Node 20's JSON.parse gives revivers no source text, so a 38-digit number would be rounded.
class JsonNumber {
  constructor(readonly text: string) {}
}
type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | Map<string, JsonValue>

const JSON_WS = /[ \t\n\r]*/y
const JSON_NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y
const JSON_LITERAL = /true|false|null/y

const invalidFilter = (message: string) => errors.DC_ERR_INVALID_FILTER(message)

/** Strict JSON (RFC 8259) with numbers kept as their text and objects as Maps (no prototype keys). */
function parseJson(text: string): JsonValue {
  let pos = 0
  const fail = (problem: string): never => {
    throw invalidFilter(`filter is not valid JSON: ${problem} at position ${pos}`)
  }
  const skip = () => {
    JSON_WS.lastIndex = pos
    JSON_WS.exec(text)
    pos = JSON_WS.lastIndex
  }
  const sticky = (re: RegExp): string | undefined => {
    re.lastIndex = pos
    const m = re.exec(text)
    if (m) pos = re.lastIndex
    return m?.[0]
  }
  const string = (): string => {
    // Find the closing quote by hand (linear), then let JSON.parse judge escapes and control characters.
    let end = pos + 1
    while (end < text.length && text.charCodeAt(end) !== 34) end += text.charCodeAt(end) === 92 ? 2 : 1
    if (end >= text.length) fail('unterminated string')
    try {
      const s = JSON.parse(text.slice(pos, end + 1)) as string
      pos = end + 1
      return s
    } catch {
      return fail('invalid string')
    }
  }
  const value = (depth: number): JsonValue => {
    skip()
    if (depth > MAX_JSON_DEPTH) fail(`nesting deeper than ${MAX_JSON_DEPTH} levels`)
    const c = text[pos]
    if (c === '"') return string()
    if (c === '[' || c === '{') {
      pos++
      skip()
      const close = c === '[' ? ']' : '}'
      const list: JsonValue[] = []
      const map = new Map<string, JsonValue>()
      if (text[pos] === close) {
        pos++
        return c === '[' ? list : map
      }
      for (;;) {
        if (c === '[') list.push(value(depth + 1))
        else {
          skip()
          if (text[pos] !== '"') fail('expected a property name')
          const key = string()
          if (map.has(key)) fail(`duplicate property ${JSON.stringify(key)}`)
          skip()
          if (text[pos] !== ':') fail("expected ':'")
          pos++
          map.set(key, value(depth + 1))
        }
        skip()
        if (text[pos] === ',') pos++
        else if (text[pos] === close) {
          pos++
          return c === '[' ? list : map
        } else fail(`expected ',' or '${close}'`)
      }
    }
    const number = sticky(JSON_NUMBER)
    if (number !== undefined) return new JsonNumber(number)
    const literal = sticky(JSON_LITERAL)
    if (literal !== undefined) return literal === 'null' ? null : literal === 'true'
    return fail(c === undefined ? 'unexpected end' : `unexpected ${JSON.stringify(c)}`)
  }
  const result = value(0)
  skip()
  if (pos < text.length) fail('unexpected text after the value')
  return result
}

/** An already parsed value in the same shape the text parser produces. */
function fromParsed(v: unknown, at: string, depth: number): JsonValue {
  if (depth > MAX_JSON_DEPTH) throw invalidFilter(`${at} is nested deeper than ${MAX_JSON_DEPTH} levels`)
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v
  if (typeof v === 'bigint') return new JsonNumber(String(v))
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw invalidFilter(`${at} must be a finite number`)
    if (Number.isInteger(v) && !Number.isSafeInteger(v)) {
      throw invalidFilter(
        `${at} is an integer too large to be exact once parsed; send it as {"N": "<digits>"}`,
      )
    }
    return new JsonNumber(String(v))
  }
  if (Array.isArray(v)) return v.map((item, i) => fromParsed(item, `${at}[${i}]`, depth + 1))
  if (
    typeof v === 'object' &&
    (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null)
  ) {
    return new Map(Object.entries(v).map(([k, item]) => [k, fromParsed(item, `${at}.${k}`, depth + 1)]))
  }
  throw invalidFilter(`${at} is not a JSON value`)
}

// ---- filter conditions ----------------------------------------------------------------------------

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
  const numberText =
    v instanceof JsonNumber
      ? v.text
      : typed?.[0] === 'N' && typeof typed[1] === 'string'
        ? typed[1]
        : undefined
  if (numberText !== undefined) {
    try {
      return { N: checkDynamoNumber(numberText) }
    } catch (err) {
      throw invalidFilter(`${at} is not a DynamoDB number: ${(err as Error).message}`)
    }
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

function condition(item: Map<string, JsonValue>, at: string): FilterCondition {
  for (const key of item.keys()) {
    if (key !== 'attr' && key !== 'op' && key !== 'value' && key !== 'size') {
      throw invalidFilter(`${at} has the unknown property ${JSON.stringify(key)}; allowed: attr, op, value, size`)
    }
  }
  const attr = item.get('attr')
  if (typeof attr !== 'string' || attr.length === 0) {
    throw invalidFilter(
      `${at}.attr must be a non-empty string: an attribute name, or a dotted path such as a.b`,
    )
  }
  if (attr.length > MAX_FILTER_ATTR_LENGTH) {
    throw invalidFilter(`${at}.attr must be at most ${MAX_FILTER_ATTR_LENGTH} characters; got ${attr.length}`)
  }
  const path = attr.split('.')
  if (path.includes(''))
    throw invalidFilter(`${at}.attr ${JSON.stringify(attr)} has an empty name between dots`)
  if (path.length > MAX_PATH_DEPTH)
    throw invalidFilter(`${at}.attr nests deeper than ${MAX_PATH_DEPTH} levels`)
  const op = item.get('op')
  if (typeof op !== 'string' || !ALL_OPS.includes(op)) {
    throw invalidFilter(`${at}.op must be one of ${ALL_OPS.join(', ')}`)
  }
  if (item.has('size')) {
    if (item.get('size') !== true) throw invalidFilter(`${at}.size must be true (compare the attribute's size) or absent`)
    if (!SIZE_OPS.includes(op)) throw invalidFilter(`${at}.op must be one of ${SIZE_OPS.join(', ')} with size`)
    if (!item.has('value')) throw invalidFilter(`${at}.value is required with op ${op}`)
    const value = filterValue(item.get('value')!, `${at}.value`)
    if (value.N === undefined) throw invalidFilter(`${at}.value must be a number with size`)
    return { attr, path, op: op as FilterOp, value, size: true }
  }
  if (op === 'in') {
    const list = item.get('value')
    if (!Array.isArray(list) || list.length === 0) throw invalidFilter(`${at}.value must be a non-empty array of values with op in`)
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
  if (!rule.types.includes(Object.keys(value)[0]!))
    throw invalidFilter(`${at}.value must be ${rule.says} for op ${filterOp}`)
  return { attr, path, op: filterOp, value }
}

const GROUP_KEYS = ['and', 'or', 'not']

// One node: a group ({ and: [...] }, { or: [...] }, { not: node }) or a condition; leaves collected in order.
function node(item: JsonValue, at: string, leaves: Array<{ condition: FilterCondition; at: string }>): FilterNode {
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
  if (!Array.isArray(inner) || inner.length === 0) throw invalidFilter(`${at}.${group} must be a non-empty array of conditions`)
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
export function parseFilterTree(filter: FilterInput): { root: FilterNode; conditions: Array<{ condition: FilterCondition; at: string }> } {
  const doc = typeof filter === 'string' ? parseJson(filter) : fromParsed(filter, 'filter', 0)
  const leaves: Array<{ condition: FilterCondition; at: string }> = []
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

// ---- expressions ----------------------------------------------------------------------------------

/** Placeholders for every name and value, so no user text is ever part of an expression. */
class Placeholders {
  readonly names: Record<string, string> = {}
  readonly values: Record<string, AttributeValue> = {}
  #nameIds = new Map<string, string>()
  #valueCount = 0

  name(name: string): string {
    let id = this.#nameIds.get(name)
    if (id === undefined) {
      id = `#k${this.#nameIds.size}`
      this.#nameIds.set(name, id)
      this.names[id] = name
    }
    return id
  }

  path(segments: string[]): string {
    return segments.map((s) => this.name(s)).join('.')
  }

  value(value: AttributeValue): string {
    const id = `:v${this.#valueCount++}`
    this.values[id] = value
    return id
  }
}

const COMPARATORS = { eq: '=', ne: '<>', lt: '<', le: '<=', gt: '>', ge: '>=' } as const

function conditionExpression(c: FilterCondition, ph: Placeholders): string {
  const path = ph.path(c.path)
  if (c.size) return `size(${path}) ${COMPARATORS[c.op as keyof typeof COMPARATORS]} ${ph.value(c.value!)}`
  switch (c.op) {
    case 'in':
      return `${path} IN (${c.values!.map((v) => ph.value(v)).join(', ')})`
    case 'attribute_type':
      return `attribute_type(${path}, ${ph.value(c.value!)})`
    case 'exists':
      return `attribute_exists(${path})`
    case 'not_exists':
      return `attribute_not_exists(${path})`
    case 'begins_with':
    case 'contains':
      return `${c.op}(${path}, ${ph.value(c.value!)})`
    default:
      return `${path} ${COMPARATORS[c.op]} ${ph.value(c.value!)}`
  }
}

// Groups below the top are parenthesised; the top-level array stays a plain AND list as it always was.
function nodeExpression(n: FilterNode, ph: Placeholders, top = false): string {
  if ('and' in n || 'or' in n) {
    const [children, joiner] = 'and' in n ? [n.and, ' AND '] : [n.or, ' OR ']
    const inner = children.map((child) => nodeExpression(child, ph)).join(joiner)
    return top || children.length === 1 ? inner : `(${inner})`
  }
  if ('not' in n) return `(NOT ${nodeExpression(n.not, ph)})`
  return conditionExpression(n, ph)
}

function filterExpression(root: FilterNode | undefined, ph: Placeholders): string | undefined {
  if (root === undefined || ('and' in root && root.and.length === 0)) return undefined
  return nodeExpression(root, ph, true)
}

/**
 * The FilterExpression and its placeholder maps for a Scan (or an export), from the same filter syntax
 * as queries. An empty filter gives `{}`. Throws DC_ERR_INVALID_FILTER.
 */
export function buildScanFilter(filter: FilterInput): ScanFilter {
  const ph = new Placeholders()
  const expression = filterExpression(parseFilterTree(filter).root, ph)
  if (expression === undefined) return {}
  return {
    FilterExpression: expression,
    ExpressionAttributeNames: ph.names,
    // Absent rather than empty when only exists/not_exists are used: DynamoDB rejects an empty map.
    ...(Object.keys(ph.values).length > 0 ? { ExpressionAttributeValues: ph.values } : {}),
  }
}

const invalidQuery = (message: string) => errors.DC_ERR_INVALID_QUERY(message)

/**
 * Query input for the table or one of its indexes: partition-key equality, an optional sort-key
 * condition and an optional filter, every name and value behind a placeholder.
 * Throws DC_ERR_INDEX_NOT_FOUND for an unknown index, DC_ERR_INVALID_KEY for a value that does not fit
 * its key's type, DC_ERR_INVALID_QUERY for an inconsistent sk/skOp/sk2/order and DC_ERR_INVALID_FILTER.
 */
export function buildQuery(table: TableDescription, params: QueryParams): BuiltQuery {
  const { pk, sk, sk2, index, order = 'asc' } = params
  const key = keyOf(table, index)
  if (!key) throw errors.DC_ERR_INDEX_NOT_FOUND(index, table.name)
  const target = index ? `Index '${index}'` : `Table '${table.name}'`

  if (params.skOp !== undefined && !(SORT_KEY_OPS as readonly string[]).includes(params.skOp)) {
    throw invalidQuery(`skOp must be one of ${SORT_KEY_OPS.join(', ')}`)
  }
  if (sk === undefined && params.skOp !== undefined)
    throw invalidQuery(`skOp=${params.skOp} needs a sort-key value in sk`)
  const skOp = (params.skOp ?? 'eq') as SortKeyOp
  if (sk2 !== undefined && (sk === undefined || skOp !== 'between')) {
    throw invalidQuery('sk2 is only allowed with skOp=between (and sk)')
  }
  if (sk !== undefined && !key.sort) throw invalidQuery(`${target} has no sort key, so sk cannot be used`)
  if (skOp === 'between' && sk2 === undefined)
    throw invalidQuery('skOp=between needs both bounds: sk and sk2')
  if (sk !== undefined && skOp === 'begins_with' && key.sort?.type === 'N') {
    throw invalidQuery(
      `skOp=begins_with needs a string or binary sort key; '${key.sort.name}' is a number (N)`,
    )
  }
  if (order !== 'asc' && order !== 'desc') throw invalidQuery('order must be asc or desc')

  const ph = new Placeholders()
  let keyCondition = `${ph.name(key.partition.name)} = ${ph.value(toKeyAttributeValue(key.partition, pk, 'partition'))}`
  if (sk !== undefined && key.sort) {
    const name = ph.name(key.sort.name)
    const low = toKeyAttributeValue(key.sort, sk, 'sort')
    if (skOp === 'between') {
      const high = toKeyAttributeValue(key.sort, sk2!, 'sort')
      // DynamoDB rejects an inverted range; say so in terms of the request's own parameters.
      if (compareKeyValues(low, high) > 0)
        throw invalidQuery('skOp=between needs sk to be less than or equal to sk2')
      keyCondition += ` AND ${name} BETWEEN ${ph.value(low)} AND ${ph.value(high)}`
    } else if (skOp === 'begins_with') keyCondition += ` AND begins_with(${name}, ${ph.value(low)})`
    else keyCondition += ` AND ${name} ${COMPARATORS[skOp]} ${ph.value(low)}`
  }

  const tree = params.filter === undefined ? undefined : parseFilterTree(params.filter)
  const conditions = tree?.conditions ?? []
  const queried = new Set([key.partition.name, ...(key.sort ? [key.sort.name] : [])])
  const scalarKeys = new Set(
    [table.key, ...table.indexes.map((i) => i.key)].flatMap((k) => [
      k.partition.name,
      ...(k.sort ? [k.sort.name] : []),
    ]),
  )
  for (const { condition: c, at } of conditions) {
    const head = c.path[0]!
    // DynamoDB refuses both; catching them here gives a 400 that names the condition.
    if (queried.has(head)) {
      throw invalidFilter(
        `${at}.attr '${head}' is a key attribute of this query: use pk, sk and skOp for it`,
      )
    }
    if (c.path.length > 1 && scalarKeys.has(head)) {
      throw invalidFilter(
        `${at}.attr '${c.attr}': key attribute '${head}' is a scalar and has no nested attributes`,
      )
    }
  }
  const filterExpr = filterExpression(tree?.root, ph)

  return {
    ...(index ? { IndexName: index } : {}),
    KeyConditionExpression: keyCondition,
    ...(filterExpr ? { FilterExpression: filterExpr } : {}),
    ExpressionAttributeNames: ph.names,
    ExpressionAttributeValues: ph.values,
    ScanIndexForward: order === 'asc',
  }
}
