import type { AttributeValue } from '@aws-sdk/client-dynamodb'
import { errors } from '../errors.ts'
import { compareNumbers, parseNumber } from './numbers.ts'
import { hasLoneSurrogate, quoteForMessage as quoted } from './strings.ts'
import type { KeyAttribute, TableDescription } from './table-description.ts'

/** Which part of a key a value is for; DynamoDB sizes them differently. */
export type KeyRole = 'partition' | 'sort'

/** DynamoDB's size limits for one key value (UTF-8 bytes for S, bytes for B). */
export const KEY_MAX_BYTES: Readonly<Record<KeyRole, number>> = { partition: 2048, sort: 1024 }

// Numbers have their own home; these stay importable from here for existing callers.
export { canonicalNumber, checkDynamoNumber } from './numbers.ts'

const BASE64URL = /^[A-Za-z0-9_-]*$/
const BASE64 = /^[A-Za-z0-9+/]*$/

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
  if (a.N !== undefined && b.N !== undefined) return compareNumbers(a.N, b.N)
  if (a.S !== undefined && b.S !== undefined) return Buffer.compare(Buffer.from(a.S, 'utf8'), Buffer.from(b.S, 'utf8'))
  if (a.B !== undefined && b.B !== undefined) return Buffer.compare(a.B, b.B)
  throw new TypeError('Only two key values of the same type (S, N or B) can be compared')
}

function keyError(attr: KeyAttribute, role: KeyRole, problem: string) {
  return new errors.DC_ERR_INVALID_KEY(`${role === 'partition' ? 'Partition' : 'Sort'} key '${attr.name}' ${problem}`)
}

/**
 * Converts a path or query-string value to the attribute value of a key attribute, by its type:
 * S as is, N as the same number text, B from base64url. `role` picks the size limit (2048 bytes for a
 * partition key, 1024 for a sort key). Throws DC_ERR_INVALID_KEY naming the attribute and its type.
 */
export function toKeyAttributeValue(attr: KeyAttribute, raw: string, role: KeyRole = 'partition'): AttributeValue {
  const max = KEY_MAX_BYTES[role]
  switch (attr.type) {
    case 'S': {
      if (raw.length === 0) throw keyError(attr, role, 'must be a non-empty string (S)')
      if (hasLoneSurrogate(raw)) throw keyError(attr, role, 'must be a string (S) of valid Unicode')
      const bytes = Buffer.byteLength(raw, 'utf8')
      if (bytes > max) throw keyError(attr, role, `must be a string (S) of at most ${max} bytes in UTF-8; got ${bytes}`)
      return { S: raw }
    }
    case 'N': {
      const parsed = parseNumber(raw)
      if (!parsed.ok) throw keyError(attr, role, `must be a number (N): ${parsed.reason}`)
      return { N: parsed.n }
    }
    case 'B': {
      let bytes: Uint8Array
      try {
        bytes = decodeBase64Url(raw)
      } catch (err) {
        throw keyError(attr, role, `must be binary (B) written as base64url: ${(err as Error).message}`)
      }
      if (bytes.byteLength === 0) throw keyError(attr, role, 'must be binary (B) of at least one byte, written as base64url')
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
export function keyFromParams(table: TableDescription, pk: string, sk?: string): Record<string, AttributeValue> {
  const { partition, sort } = table.key
  const pkValue = toKeyAttributeValue(partition, pk, 'partition')
  if (!sort) {
    if (sk !== undefined) throw new errors.DC_ERR_INVALID_KEY(`Table '${table.name}' has no sort key, so sk must not be given`)
    return { [partition.name]: pkValue }
  }
  if (sk === undefined) {
    throw new errors.DC_ERR_INVALID_KEY(`Table '${table.name}' has the sort key '${sort.name}' (${sort.type}): pass its value as sk`)
  }
  // Computed keys in a literal define own properties, so even an attribute named __proto__ is safe.
  return { [partition.name]: pkValue, [sort.name]: toKeyAttributeValue(sort, sk, 'sort') }
}
