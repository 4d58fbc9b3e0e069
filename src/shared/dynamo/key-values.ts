import type { AttributeValue } from '@aws-sdk/client-dynamodb'
import { errors } from '../errors.ts'
import type { KeyAttribute, TableDescription } from './table-description.ts'

/** Which part of a key a value is for; DynamoDB sizes them differently. */
export type KeyRole = 'partition' | 'sort'

/** DynamoDB's size limits for one key value (UTF-8 bytes for S, bytes for B). */
export const KEY_MAX_BYTES: Readonly<Record<KeyRole, number>> = { partition: 2048, sort: 1024 }

/** The most significant digits a DynamoDB number may carry. */
export const MAX_NUMBER_DIGITS = 38

// Every form DynamoDB accepts: optional sign, digits with an optional point on either side, exponent.
const NUMBER = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/
const BASE64URL = /^[A-Za-z0-9_-]*$/
const BASE64 = /^[A-Za-z0-9+/]*$/
// A lone surrogate cannot be encoded as UTF-8; the SDK would silently replace it with U+FFFD.
const LONE_SURROGATE = /\p{Cs}/u

/** A decimal as three parts that compare exactly: sign, significant digits ('' for zero), power of ten of the first digit. */
interface Decimal {
  negative: boolean
  digits: string
  exponent: number
}

function quoted(text: string): string {
  return JSON.stringify(text.length > 48 ? `${text.slice(0, 45)}...` : text)
}

function decimal(text: string): Decimal {
  const m = NUMBER.exec(text)
  const int = m?.[2] ?? ''
  const frac = m?.[3] ?? ''
  if (!m || int.length + frac.length === 0) throw new TypeError(`${quoted(text)} is not a decimal number`)
  const exp = Number(m[4] ?? '0')
  // BigDecimal (behind DynamoDB) rejects exponents beyond a 32-bit int, even on a zero.
  if (!(Math.abs(exp) < 1e9)) throw new TypeError(`${quoted(text)} has an exponent out of range`)
  const all = int + frac
  let first = 0
  while (first < all.length && all.charCodeAt(first) === 48) first++
  if (first === all.length) return { negative: false, digits: '', exponent: 0 }
  let last = all.length
  while (last > first && all.charCodeAt(last - 1) === 48) last--
  const digits = all.slice(first, last)
  const exponent = int.length - 1 - first + exp
  // DynamoDB trims leading and trailing zeros before it counts digits, so 1.000...0 is fine.
  if (digits.length > MAX_NUMBER_DIGITS) {
    throw new TypeError(
      `${quoted(text)} has ${digits.length} significant digits; DynamoDB keeps at most ${MAX_NUMBER_DIGITS}`,
    )
  }
  if (exponent > 125)
    throw new TypeError(`${quoted(text)} is larger in magnitude than DynamoDB's maximum (about 1E+126)`)
  if (exponent < -130)
    throw new TypeError(`${quoted(text)} is smaller in magnitude than DynamoDB's minimum (1E-130)`)
  return { negative: m[1] === '-', digits, exponent }
}

function compareDecimals(a: Decimal, b: Decimal): number {
  const sign = (d: Decimal) => (d.digits === '' ? 0 : d.negative ? -1 : 1)
  const sa = sign(a)
  const sb = sign(b)
  if (sa !== sb) return sa < sb ? -1 : 1
  if (sa === 0) return 0
  let magnitude: number
  if (a.exponent !== b.exponent) magnitude = a.exponent < b.exponent ? -1 : 1
  else {
    const width = Math.max(a.digits.length, b.digits.length)
    const da = a.digits.padEnd(width, '0')
    const db = b.digits.padEnd(width, '0')
    magnitude = da === db ? 0 : da < db ? -1 : 1
  }
  return sa * magnitude
}

/**
 * Checks that `text` is a number DynamoDB accepts (decimal with optional sign and exponent, at most 38
 * significant digits, magnitude 1E-130 to 1E+126) and returns it unchanged but for a leading '+',
 * which is dropped because dynalite rejects it. Never goes through a JS number, so no digit is lost.
 * Throws a TypeError saying what is wrong.
 */
export function checkDynamoNumber(text: string): string {
  decimal(text)
  return text.startsWith('+') ? text.slice(1) : text
}

/**
 * Decodes base64url (unpadded or padded; standard base64 with + and / is accepted too).
 * Throws a TypeError for characters outside the alphabet, an impossible length, or stray bits in the last
 * character, so every accepted text names exactly one byte string.
 */
export function decodeBase64Url(text: string): Uint8Array {
  const body = text.replace(/={1,2}$/, '')
  if (!BASE64URL.test(body) && !BASE64.test(body)) {
    throw new TypeError(`${quoted(text)} has characters outside the base64url alphabet (A-Z a-z 0-9 - _)`)
  }
  if (body.length % 4 === 1 || (body.length !== text.length && text.length % 4 !== 0)) {
    throw new TypeError(`${quoted(text)} has a length no base64url text can have`)
  }
  const bytes = Buffer.from(body, 'base64')
  // Node's decoder ignores stray bits; re-encoding catches them (e.g. "QR" would decode like "QQ").
  if (bytes.toString('base64url') !== body.replaceAll('+', '-').replaceAll('/', '_')) {
    throw new TypeError(`${quoted(text)} is not canonical base64url (its last character has stray bits)`)
  }
  return new Uint8Array(bytes)
}

/**
 * Orders two key values of the same type as DynamoDB sorts them: N by numeric value, S by UTF-8 bytes,
 * B by unsigned bytes. Throws a TypeError for values of different or non-key types.
 */
export function compareKeyValues(a: AttributeValue, b: AttributeValue): number {
  if (a.N !== undefined && b.N !== undefined) return compareDecimals(decimal(a.N), decimal(b.N))
  if (a.S !== undefined && b.S !== undefined)
    return Buffer.compare(Buffer.from(a.S, 'utf8'), Buffer.from(b.S, 'utf8'))
  if (a.B !== undefined && b.B !== undefined) return Buffer.compare(a.B, b.B)
  throw new TypeError('Only two key values of the same type (S, N or B) can be compared')
}

function keyError(attr: KeyAttribute, role: KeyRole, problem: string) {
  return errors.DC_ERR_INVALID_KEY(
    `${role === 'partition' ? 'Partition' : 'Sort'} key '${attr.name}' ${problem}`,
  )
}

/**
 * Converts a path or query-string value to the attribute value of a key attribute, by its type:
 * S as is, N as the same number text, B from base64url. `role` picks the size limit (2048 bytes for a
 * partition key, 1024 for a sort key). Throws DC_ERR_INVALID_KEY naming the attribute and its type.
 */
export function toKeyAttributeValue(
  attr: KeyAttribute,
  raw: string,
  role: KeyRole = 'partition',
): AttributeValue {
  const max = KEY_MAX_BYTES[role]
  switch (attr.type) {
    case 'S': {
      if (raw.length === 0) throw keyError(attr, role, 'must be a non-empty string (S)')
      if (LONE_SURROGATE.test(raw)) throw keyError(attr, role, 'must be a string (S) of valid Unicode')
      const bytes = Buffer.byteLength(raw, 'utf8')
      if (bytes > max)
        throw keyError(attr, role, `must be a string (S) of at most ${max} bytes in UTF-8; got ${bytes}`)
      return { S: raw }
    }
    case 'N':
      try {
        return { N: checkDynamoNumber(raw) }
      } catch (err) {
        throw keyError(attr, role, `must be a number (N): ${(err as Error).message}`)
      }
    case 'B': {
      let bytes: Uint8Array
      try {
        bytes = decodeBase64Url(raw)
      } catch (err) {
        throw keyError(attr, role, `must be binary (B) written as base64url: ${(err as Error).message}`)
      }
      if (bytes.byteLength === 0)
        throw keyError(attr, role, 'must be binary (B) of at least one byte, written as base64url')
      if (bytes.byteLength > max) {
        throw keyError(attr, role, `must be binary (B) of at most ${max} bytes; got ${bytes.byteLength}`)
      }
      return { B: bytes }
    }
    default:
      throw keyError(attr, role, `has the unsupported key type ${JSON.stringify(attr.type)}`)
  }
}

/**
 * The GetItem key for `pk` (and `sk`), converted by the table's key schema. `sk` is required exactly
 * when the table has a sort key; otherwise DC_ERR_INVALID_KEY.
 */
export function keyFromParams(
  table: TableDescription,
  pk: string,
  sk?: string,
): Record<string, AttributeValue> {
  const { partition, sort } = table.key
  const pkValue = toKeyAttributeValue(partition, pk, 'partition')
  if (!sort) {
    if (sk !== undefined)
      throw errors.DC_ERR_INVALID_KEY(`Table '${table.name}' has no sort key, so sk must not be given`)
    return { [partition.name]: pkValue }
  }
  if (sk === undefined) {
    throw errors.DC_ERR_INVALID_KEY(
      `Table '${table.name}' has the sort key '${sort.name}' (${sort.type}): pass its value as sk`,
    )
  }
  // Computed keys in a literal define own properties, so even an attribute named __proto__ is safe.
  return { [partition.name]: pkValue, [sort.name]: toKeyAttributeValue(sort, sk, 'sort') }
}
