import type { AttributeValue } from '@aws-sdk/client-dynamodb'
import type { AttributeMap } from '../dynamo/item-json.ts'
import { type BuiltProjection, parseFields, projectionFor } from '../dynamo/projection.ts'
import type { TableDescription } from '../dynamo/table-description.ts'
import { errors } from '../errors.ts'

/** Most columns an export's `fields` may choose. */
export const MAX_EXPORT_FIELDS = 100
/** Longest path, in characters (the filter's attr limit). */
const MAX_FIELD_LENGTH = 255

// A document path: names separated by dots, each optionally followed by list indexes: a, b.c, tags[0]
// (no commas or spaces in names: the read routes' `fields=` grammar, projection.ts).
const PATH = /^[^.[\],\s]+(?:\[\d{1,9}\])*(?:\.[^.[\],\s]+(?:\[\d{1,9}\])*)*$/

type Step = string | number

/**
 * An export's `fields`: an array of document paths or the same as comma-separated text. Returns the
 * paths in order; throws DC_ERR_VALIDATION for a malformed or repeated path or more than MAX_EXPORT_FIELDS.
 */
export function parseExportFields(input: unknown): string[] {
  const invalid = (message: string) => new errors.DC_ERR_VALIDATION(`fields: ${message}`)
  let list: unknown[]
  if (typeof input === 'string') list = input.split(',').map((s) => s.trim())
  else if (Array.isArray(input)) list = input
  else throw invalid('must be an array of attribute paths or comma-separated text')
  if (list.length === 0 || (list.length === 1 && list[0] === '')) throw invalid('must name at least one attribute')
  if (list.length > MAX_EXPORT_FIELDS) throw invalid(`at most ${MAX_EXPORT_FIELDS} paths, got ${list.length}`)
  const seen = new Set<string>()
  list.forEach((path, i) => {
    if (typeof path !== 'string' || path.length === 0 || path.length > MAX_FIELD_LENGTH || !PATH.test(path)) {
      throw invalid(`fields[${i}] must be a document path such as a, b.c or tags[0] (up to ${MAX_FIELD_LENGTH} characters)`)
    }
    if (seen.has(path)) throw invalid(`fields[${i}] '${path}' is repeated`)
    seen.add(path)
  })
  return list as string[]
}

function stepsOf(path: string): Step[] {
  const steps: Step[] = []
  for (const part of path.split('.')) {
    const bracket = part.indexOf('[')
    steps.push(bracket < 0 ? part : part.slice(0, bracket))
    if (bracket >= 0) for (const m of part.slice(bracket).matchAll(/\[(\d+)\]/g)) steps.push(Number(m[1]))
  }
  return steps
}

/** The value at a document path of an item, or undefined when the item has none there. */
export function valueAt(item: AttributeMap, path: string): AttributeValue | undefined {
  let value: AttributeValue | undefined
  for (const [i, step] of stepsOf(path).entries()) {
    if (i === 0) value = Object.hasOwn(item, step as string) ? item[step as string] : undefined
    else if (typeof step === 'number') value = value?.L?.[step]
    else value = value?.M && Object.hasOwn(value.M, step) ? value.M[step] : undefined
    if (value === undefined) return undefined
  }
  return value
}

/**
 * The ProjectionExpression an export with `fields` reads with (placeholders `#p`, apart from the
 * query's and filter's `#k`), the key attributes included. Each path is cut at its first list index
 * (`tags[1].k` reads `tags`): DynamoDB compacts projected list elements (`tags[1]` comes back as the
 * list's element 0), so the whole list is read and the element picked by {@link valueAt}. Throws
 * DC_ERR_VALIDATION for paths DynamoDB would refuse (overlapping, or into a key attribute).
 */
export function exportProjection(table: TableDescription, fields: readonly string[], index?: string): BuiltProjection {
  // Validates the paths as given (overlaps, depth, key attributes) with the read routes' grammar.
  projectionFor(table, parseFields(fields.join(',')), index)
  const cut = [...new Set(fields.map((f) => f.replace(/\[.*$/, '')))]
  // A cut path inside another cut path is read with it (`a.b` covers `a.b.c`).
  const kept = cut.filter((p) => !cut.some((q) => q !== p && p.startsWith(`${q}.`)))
  return projectionFor(table, parseFields(kept.join(',')), index)
}

/**
 * The item as the export writes it when `fields` are chosen: one attribute per path, named by the path
 * text, in the paths' order; paths the item lacks are left out (an empty CSV cell).
 */
export function projectItem(item: AttributeMap, fields: readonly string[]): AttributeMap {
  const out: AttributeMap = {}
  for (const path of fields) {
    const value = valueAt(item, path)
    // defineProperty: a path named __proto__ must become a key, not the prototype.
    if (value !== undefined) Object.defineProperty(out, path, { value, enumerable: true, writable: true, configurable: true })
  }
  return out
}
