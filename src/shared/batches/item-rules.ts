import type { AttributeValue } from '@aws-sdk/client-dynamodb'
import type { AttributeMap } from '../dynamo/item-json.ts'
import { canonicalNumber, numberBytes, parseNumber } from '../dynamo/numbers.ts'
import { hasLoneSurrogate } from '../dynamo/strings.ts'

/** DynamoDB's item size limit: 400 KB, attribute names included. */
export const MAX_ITEM_BYTES = 400 * 1024

/** How deep DynamoDB lets lists and maps nest. */
export const MAX_NESTING = 32

const utf8 = (s: string) => Buffer.byteLength(s, 'utf8')

/** Thrown while inspecting a value; caught by {@link inspectItem}. */
class ItemProblem extends Error {}

function problem(path: string, what: string): never {
  throw new ItemProblem(`${path}: ${what}`)
}

function checkString(s: string, path: string) {
  if (hasLoneSurrogate(s)) problem(path, 'the string is not valid Unicode (a lone surrogate)')
}

// The number as DynamoDB takes it (a leading '+' dropped), or the reason it would refuse it.
function checkNumber(n: string, path: string): string {
  const parsed = parseNumber(n)
  return parsed.ok ? parsed.n : problem(path, parsed.reason)
}

function noDuplicates(values: string[], path: string) {
  if (values.length === 0) problem(path, 'a set must not be empty')
  if (new Set(values).size !== values.length) problem(path, 'a set must not contain duplicates')
}

// Sizes follow DynamoDB's documented rules: names and strings in UTF-8 bytes, binary in bytes,
// 1 byte for BOOL and NULL, and 3 bytes plus 1 per element for lists and maps.
function valueBytes(v: AttributeValue, path: string, depth: number): number {
  if (v.S !== undefined) {
    checkString(v.S, path)
    return utf8(v.S)
  }
  if (v.N !== undefined) {
    v.N = checkNumber(v.N, path)
    return numberBytes(v.N)
  }
  if (v.B !== undefined) return v.B.byteLength
  if (v.BOOL !== undefined) return 1
  if (v.NULL !== undefined) {
    if (v.NULL !== true) problem(path, 'NULL must be true')
    return 1
  }
  if (v.M !== undefined || v.L !== undefined) {
    if (depth >= MAX_NESTING) problem(path, `lists and maps nest at most ${MAX_NESTING} levels deep`)
    if (v.L !== undefined) return v.L.reduce((sum, e, i) => sum + 1 + valueBytes(e, `${path}[${i}]`, depth + 1), 3)
    return 3 + mapBytes(v.M!, path, depth + 1)
  }
  if (v.SS !== undefined) {
    noDuplicates(v.SS, path)
    for (const [i, s] of v.SS.entries()) checkString(s, `${path}[${i}]`)
    return v.SS.reduce((sum, s) => sum + utf8(s), 0)
  }
  if (v.NS !== undefined) {
    v.NS = v.NS.map((n, i) => checkNumber(n, `${path}[${i}]`))
    noDuplicates(v.NS.map(canonicalNumber), path)
    return v.NS.reduce((sum, n) => sum + numberBytes(n), 0)
  }
  if (v.BS !== undefined) {
    noDuplicates(
      v.BS.map((b) => Buffer.from(b).toString('base64')),
      path,
    )
    return v.BS.reduce((sum, b) => sum + b.byteLength, 0)
  }
  return problem(path, 'unsupported attribute value')
}

function mapBytes(map: AttributeMap, path: string, depth: number): number {
  let size = 0
  for (const name of Object.keys(map)) {
    checkString(name, `${path}.${name}`)
    size += 1 + utf8(name) + valueBytes(map[name]!, `${path}.${name}`, depth)
  }
  return size
}

/**
 * DynamoDB's size of an item (attribute names plus values) and the first thing about it DynamoDB
 * would refuse: invalid numbers or Unicode, empty or duplicate sets, NULL false, empty attribute
 * names, nesting deeper than 32 levels. Drops a leading '+' from numbers in place (same value; dynalite
 * refuses the sign), so pass it an item of your own.
 */
export function inspectItem(item: AttributeMap): { bytes: number; problem?: string } {
  try {
    let bytes = 0
    for (const name of Object.keys(item)) {
      if (name === '') problem('$', 'an attribute name must not be empty')
      checkString(name, `$.${name}`)
      bytes += utf8(name) + valueBytes(item[name]!, `$.${name}`, 0)
    }
    return { bytes }
  } catch (err) {
    if (err instanceof ItemProblem) return { bytes: 0, problem: err.message }
    throw err
  }
}
