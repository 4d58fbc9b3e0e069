import type { AttributeValue } from '@aws-sdk/client-dynamodb'
import { errors } from '../errors.ts'
import { checkQueryFilter, type FilterCondition, type FilterInput, type FilterNode, parseFilterTree } from './filter.ts'
import { compareKeyValues, toKeyAttributeValue } from './key-values.ts'
import { keyOf, type TableDescription } from './table-description.ts'

// The filter grammar lives in filter.ts; these names stay importable from here for existing callers.
export {
  type AnyFilterOp,
  ATTRIBUTE_TYPES,
  FILTER_LIST_OPS,
  FILTER_OPS,
  type FilterCondition,
  type FilterInput,
  type FilterNode,
  type FilterOp,
  MAX_FILTER_ATTR_LENGTH,
  MAX_FILTER_CONDITIONS,
  MAX_IN_VALUES,
  parseFilter,
  parseFilterTree,
} from './filter.ts'

/** Sort-key conditions a query accepts (`skOp`). */
export const SORT_KEY_OPS = ['eq', 'lt', 'le', 'gt', 'ge', 'between', 'begins_with'] as const
export type SortKeyOp = (typeof SORT_KEY_OPS)[number]

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

const invalidQuery = (message: string) => new errors.DC_ERR_INVALID_QUERY(message)

/**
 * Query input for the table or one of its indexes: partition-key equality, an optional sort-key
 * condition and an optional filter, every name and value behind a placeholder.
 * Throws DC_ERR_INDEX_NOT_FOUND for an unknown index, DC_ERR_INVALID_KEY for a value that does not fit
 * its key's type, DC_ERR_INVALID_QUERY for an inconsistent sk/skOp/sk2/order and DC_ERR_INVALID_FILTER.
 */
export function buildQuery(table: TableDescription, params: QueryParams): BuiltQuery {
  const { pk, sk, sk2, index, order = 'asc' } = params
  const key = keyOf(table, index)
  if (!key) throw new errors.DC_ERR_INDEX_NOT_FOUND(index, table.name)
  const target = index ? `Index '${index}'` : `Table '${table.name}'`

  if (params.skOp !== undefined && !(SORT_KEY_OPS as readonly string[]).includes(params.skOp)) {
    throw invalidQuery(`skOp must be one of ${SORT_KEY_OPS.join(', ')}`)
  }
  if (sk === undefined && params.skOp !== undefined) throw invalidQuery(`skOp=${params.skOp} needs a sort-key value in sk`)
  const skOp = (params.skOp ?? 'eq') as SortKeyOp
  if (sk2 !== undefined && (sk === undefined || skOp !== 'between')) {
    throw invalidQuery('sk2 is only allowed with skOp=between (and sk)')
  }
  if (sk !== undefined && !key.sort) throw invalidQuery(`${target} has no sort key, so sk cannot be used`)
  if (skOp === 'between' && sk2 === undefined) throw invalidQuery('skOp=between needs both bounds: sk and sk2')
  if (sk !== undefined && skOp === 'begins_with' && key.sort?.type === 'N') {
    throw invalidQuery(`skOp=begins_with needs a string or binary sort key; '${key.sort.name}' is a number (N)`)
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
      if (compareKeyValues(low, high) > 0) throw invalidQuery('skOp=between needs sk to be less than or equal to sk2')
      keyCondition += ` AND ${name} BETWEEN ${ph.value(low)} AND ${ph.value(high)}`
    } else if (skOp === 'begins_with') keyCondition += ` AND begins_with(${name}, ${ph.value(low)})`
    else keyCondition += ` AND ${name} ${COMPARATORS[skOp]} ${ph.value(low)}`
  }

  const tree = params.filter === undefined ? undefined : parseFilterTree(params.filter)
  if (tree) checkQueryFilter(tree, table, key)
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
