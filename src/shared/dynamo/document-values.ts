import type { AttributeValue } from '@aws-sdk/client-dynamodb'
import { isLosslessNumber, type LosslessNumber } from 'lossless-json'
import type { AttributeMap } from './item-json.ts'
import { parseNumber } from './numbers.ts'

// The shape `view=document` reads, turned back into attribute values: what a dashboard read it writes
// back. Bodies are parsed by src/api/lossless-body.ts: a number a double cannot hold exactly arrives as a
// LosslessNumber of its JSON text, the others as JS numbers (exact), so no digit is ever lost.

/** A problem with a document value; `path` names where (`$.a.b[2]`). */
export class DocumentProblem extends Error {}

const OWN_PROPERTY = { enumerable: true, writable: true, configurable: true } as const

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && !isLosslessNumber(x)
}

/** A JSON number's text as a DynamoDB N, every digit kept; refused beyond 38 digits or the magnitude limits. */
function numberOf(text: string, path: string): string {
  const parsed = parseNumber(text)
  if (!parsed.ok) throw new DocumentProblem(`${path}: ${parsed.reason}`)
  return parsed.n
}

/**
 * One document value as an attribute value: string S, number N (its exact text), boolean BOOL, null
 * NULL, array L, object M. Binary and sets cannot be written as documents: use format "typed".
 */
export function documentValue(json: unknown, path: string): AttributeValue {
  if (typeof json === 'string') return { S: json }
  if (isLosslessNumber(json)) return { N: numberOf((json as LosslessNumber).value, path) }
  if (typeof json === 'number') {
    // The body parser leaves a JS number only where it is exact (at most 15 significant digits).
    if (!Number.isFinite(json)) throw new DocumentProblem(`${path}: the number is beyond DynamoDB's range`)
    return { N: numberOf(String(json), path) }
  }
  if (typeof json === 'boolean') return { BOOL: json }
  if (json === null) return { NULL: true }
  if (Array.isArray(json)) return { L: json.map((v, i) => documentValue(v, `${path}[${i}]`)) }
  if (isRecord(json)) return { M: documentMap(json, path) }
  throw new DocumentProblem(`${path}: not a JSON value`)
}

/** A document object as an attribute map (see {@link documentValue}); `__proto__` stays an attribute. */
export function documentMap(json: unknown, path = '$'): AttributeMap {
  if (!isRecord(json)) throw new DocumentProblem(`${path}: expected an object of attributes`)
  const out: AttributeMap = {}
  for (const key of Object.keys(json)) {
    const value = documentValue(json[key], `${path}.${key}`)
    if (key === '__proto__') Object.defineProperty(out, key, { value, ...OWN_PROPERTY })
    else out[key] = value
  }
  return out
}

/**
 * A document array as a set for ADD and DELETE in a PATCH: all strings give SS, all numbers NS.
 * Binary sets need format "typed".
 */
export function documentSet(json: unknown, path: string): AttributeValue {
  if (!Array.isArray(json) || json.length === 0) throw new DocumentProblem(`${path}: expected a non-empty array (a set)`)
  if (json.every((v) => typeof v === 'string')) return { SS: json as string[] }
  if (json.every((v) => isLosslessNumber(v) || typeof v === 'number')) return { NS: json.map((v, i) => documentValue(v, `${path}[${i}]`).N!) }
  throw new DocumentProblem(`${path}: a set is all strings or all numbers (binary sets need format "typed")`)
}

/**
 * A number as DynamoDB hands it back after storing it: plain decimal, no exponent, no redundant zeros
 * or sign ('1.50' → '1.5', '1E+3' → '1000', '-0.0' → '0'), so a write-through entry renders the same
 * bytes a later read of the item does.
 */
export function storedNumberText(text: string): string {
  const parsed = parseNumber(text)
  if (!parsed.ok) return text
  const { negative, digits, exponent } = parsed.parts
  if (digits === '') return '0'
  const sign = negative ? '-' : ''
  if (exponent < 0) return `${sign}0.${'0'.repeat(-exponent - 1)}${digits}`
  if (digits.length <= exponent + 1) return `${sign}${digits}${'0'.repeat(exponent + 1 - digits.length)}`
  return `${sign}${digits.slice(0, exponent + 1)}.${digits.slice(exponent + 1)}`
}

/** An item with every number as DynamoDB stores it (see {@link storedNumberText}); a new object. */
export function asStored(item: AttributeMap): AttributeMap {
  const value = (v: AttributeValue): AttributeValue => {
    if (v.N !== undefined) return { N: storedNumberText(v.N) }
    if (v.NS !== undefined) return { NS: v.NS.map(storedNumberText) }
    if (v.M !== undefined) return { M: asStored(v.M) }
    if (v.L !== undefined) return { L: v.L.map(value) }
    return v
  }
  const out: AttributeMap = {}
  for (const key of Object.keys(item)) {
    if (key === '__proto__') Object.defineProperty(out, key, { value: value(item[key]!), ...OWN_PROPERTY })
    else out[key] = value(item[key]!)
  }
  return out
}
