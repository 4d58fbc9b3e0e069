import type { AttributeValue } from '@aws-sdk/client-dynamodb'
import { errors } from '../errors.ts'
import { isNumberText, jsonNumberText } from './numbers.ts'

/** One DynamoDB item as the low-level client returns it (B and BS as Uint8Array). */
export type AttributeMap = Record<string, AttributeValue>

// Hand-written: unmarshall() would turn each N into a JS number (losing digits) or a wrapper object per
// value, then JSON.stringify walks the tree again; this writes the JSON text in one pass with neither.

// Numbers have their own home; jsonNumberText stays importable from here for existing callers.
export { jsonNumberText } from './numbers.ts'

// What JSON.stringify would escape; every lone surrogate is among these, so pairs take the slow path too.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what JSON escapes
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/

// Same output as JSON.stringify(s); skipping the native call for plain strings is ~15% of a page's time.
function jsonString(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
}

function unsupported(value: AttributeValue): TypeError {
  return new TypeError(`Unsupported attribute value with members: ${Object.keys(value).join(', ') || 'none'}`)
}

// ---- view=document --------------------------------------------------------------------------------

function documentMap(map: AttributeMap): string {
  let out = '{'
  const keys = Object.keys(map)
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!
    out += `${i === 0 ? '' : ','}${jsonString(key)}:${documentValue(map[key]!)}`
  }
  return `${out}}`
}

function documentValue(v: AttributeValue): string {
  // Checked roughly in order of how often each type occurs.
  if (v.S !== undefined) return jsonString(v.S)
  if (v.N !== undefined) return jsonNumberText(v.N)
  if (v.M !== undefined) return documentMap(v.M)
  if (v.L !== undefined) {
    let out = '['
    for (let i = 0; i < v.L.length; i++) out += (i === 0 ? '' : ',') + documentValue(v.L[i]!)
    return `${out}]`
  }
  if (v.BOOL !== undefined) return v.BOOL ? 'true' : 'false'
  if (v.NULL !== undefined) return 'null'
  if (v.B !== undefined) return `"${base64(v.B)}"`
  if (v.SS !== undefined) {
    let out = '['
    for (let i = 0; i < v.SS.length; i++) out += (i === 0 ? '' : ',') + jsonString(v.SS[i]!)
    return `${out}]`
  }
  if (v.NS !== undefined) {
    let out = '['
    for (let i = 0; i < v.NS.length; i++) out += (i === 0 ? '' : ',') + jsonNumberText(v.NS[i]!)
    return `${out}]`
  }
  if (v.BS !== undefined) {
    let out = '['
    for (let i = 0; i < v.BS.length; i++) out += `${i === 0 ? '' : ','}"${base64(v.BS[i]!)}"`
    return `${out}]`
  }
  throw unsupported(v)
}

/**
 * One item as `view=document` JSON text: plain JSON where numbers keep every digit (never a JS number),
 * sets become arrays, binary becomes standard base64 and keys keep the item's order.
 */
export function itemToDocumentJson(item: AttributeMap): string {
  return documentMap(item)
}

/** A page of items as a `view=document` JSON array; see {@link itemToDocumentJson}. */
export function itemsToDocumentJson(items: readonly AttributeMap[]): string {
  let out = '['
  for (let i = 0; i < items.length; i++) out += (i === 0 ? '' : ',') + documentMap(items[i]!)
  return `${out}]`
}

// ---- view=typed -----------------------------------------------------------------------------------

function typedMap(map: AttributeMap): string {
  let out = '{'
  const keys = Object.keys(map)
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!
    out += `${i === 0 ? '' : ','}${jsonString(key)}:${typedValue(map[key]!)}`
  }
  return `${out}}`
}

function typedValue(v: AttributeValue): string {
  if (v.S !== undefined) return `{"S":${jsonString(v.S)}}`
  // N is stringified rather than trusted, so even a malformed number cannot break the JSON text.
  if (v.N !== undefined) return `{"N":${jsonString(v.N)}}`
  if (v.M !== undefined) return `{"M":${typedMap(v.M)}}`
  if (v.L !== undefined) {
    let out = '{"L":['
    for (let i = 0; i < v.L.length; i++) out += (i === 0 ? '' : ',') + typedValue(v.L[i]!)
    return `${out}]}`
  }
  if (v.BOOL !== undefined) return v.BOOL ? '{"BOOL":true}' : '{"BOOL":false}'
  if (v.NULL !== undefined) return v.NULL ? '{"NULL":true}' : '{"NULL":false}'
  if (v.B !== undefined) return `{"B":"${base64(v.B)}"}`
  if (v.SS !== undefined) {
    let out = '{"SS":['
    for (let i = 0; i < v.SS.length; i++) out += (i === 0 ? '' : ',') + jsonString(v.SS[i]!)
    return `${out}]}`
  }
  if (v.NS !== undefined) {
    let out = '{"NS":['
    for (let i = 0; i < v.NS.length; i++) out += (i === 0 ? '' : ',') + jsonString(v.NS[i]!)
    return `${out}]}`
  }
  if (v.BS !== undefined) {
    let out = '{"BS":['
    for (let i = 0; i < v.BS.length; i++) out += `${i === 0 ? '' : ','}"${base64(v.BS[i]!)}"`
    return `${out}]}`
  }
  throw unsupported(v)
}

/**
 * One item as `view=typed` JSON text: DynamoDB's own attribute-value JSON (`{"N":"1.50"}`,
 * `{"SS":[...]}`, binary as base64), which {@link typedJsonToAttributeValues} turns back exactly.
 */
export function itemToTypedJson(item: AttributeMap): string {
  return typedMap(item)
}

/** A page of items as a `view=typed` JSON array; see {@link itemToTypedJson}. */
export function itemsToTypedJson(items: readonly AttributeMap[]): string {
  let out = '['
  for (let i = 0; i < items.length; i++) out += (i === 0 ? '' : ',') + typedMap(items[i]!)
  return `${out}]`
}

// ---- typed JSON back to attribute values ----------------------------------------------------------

function invalid(path: string, problem: string): Error {
  return new errors.DC_ERR_VALIDATION(`Invalid typed item at ${path}: ${problem}`)
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
}

function stringArray(x: unknown, path: string): string[] {
  if (!Array.isArray(x)) throw invalid(path, 'expected an array')
  const bad = x.findIndex((s) => typeof s !== 'string')
  if (bad >= 0) throw invalid(`${path}[${bad}]`, 'expected a string')
  return x as string[]
}

function number(x: unknown, path: string): string {
  if (typeof x !== 'string') throw invalid(path, 'expected a number as a string')
  if (!isNumberText(x)) throw invalid(path, `${JSON.stringify(x)} is not a number`)
  return x
}

function bytes(x: unknown, path: string): Uint8Array {
  if (typeof x !== 'string') throw invalid(path, 'expected a base64 string')
  const buf = Buffer.from(x, 'base64')
  // Buffer skips characters it cannot decode; re-encoding shows whether anything was skipped or altered.
  if (buf.toString('base64') !== x) throw invalid(path, 'expected standard, padded base64')
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
}

const OWN_PROPERTY = { enumerable: true, writable: true, configurable: true } as const

function attributeMap(json: unknown, path: string): AttributeMap {
  if (!isRecord(json)) throw invalid(path, 'expected an object of attribute values')
  const out: AttributeMap = {}
  for (const key of Object.keys(json)) {
    const value = attributeValue(json[key], `${path}.${key}`)
    // A plain assignment to '__proto__' would replace the prototype instead of adding an attribute.
    if (key === '__proto__') Object.defineProperty(out, key, { value, ...OWN_PROPERTY })
    else out[key] = value
  }
  return out
}

function attributeValue(json: unknown, path: string): AttributeValue {
  if (!isRecord(json)) throw invalid(path, 'expected an attribute value such as {"S":"..."}')
  const types = Object.keys(json)
  if (types.length !== 1) throw invalid(path, `expected exactly one type, got ${types.length}`)
  const type = types[0]!
  const x = json[type]
  const at = `${path}.${type}`
  switch (type) {
    case 'S':
      if (typeof x !== 'string') throw invalid(at, 'expected a string')
      return { S: x }
    case 'N':
      return { N: number(x, at) }
    case 'B':
      return { B: bytes(x, at) }
    case 'BOOL':
      if (typeof x !== 'boolean') throw invalid(at, 'expected true or false')
      return { BOOL: x }
    case 'NULL':
      if (typeof x !== 'boolean') throw invalid(at, 'expected true')
      return { NULL: x }
    case 'M':
      return { M: attributeMap(x, at) }
    case 'L':
      if (!Array.isArray(x)) throw invalid(at, 'expected an array')
      return { L: x.map((e, i) => attributeValue(e, `${at}[${i}]`)) }
    case 'SS':
      return { SS: stringArray(x, at).slice() }
    case 'NS':
      return { NS: stringArray(x, at).map((n, i) => number(n, `${at}[${i}]`)) }
    case 'BS':
      if (!Array.isArray(x)) throw invalid(at, 'expected an array')
      return { BS: x.map((b, i) => bytes(b, `${at}[${i}]`)) }
    default:
      throw invalid(path, `unknown type ${JSON.stringify(type)}`)
  }
}

/**
 * Parsed `view=typed` JSON of one item back to the attribute values the low-level client takes, binary
 * as Uint8Array. Throws DC_ERR_VALIDATION (400), naming the path, for anything that is not a typed item.
 */
export function typedJsonToAttributeValues(json: unknown): AttributeMap {
  return attributeMap(json, '$')
}
