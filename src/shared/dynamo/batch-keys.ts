import { errors } from '../errors.ts'
import { compareKeyValues, decodeBase64Url, keyFromParams } from './key-values.ts'
import type { KeyAttribute, TableDescription } from './table-description.ts'

/** Most keys one batch-get may name (DynamoDB's BatchGetItem limit). */
export const MAX_BATCH_GET_KEYS = 100

/** A key as the single-item route takes it: `pk` and `sk` in path form (S as is, N as text, B as base64url). */
export interface KeyParams {
  pk: string
  sk?: string
}

const invalidKey = (message: string) => new errors.DC_ERR_INVALID_KEY(message)

// One key attribute's value from typed ({"N": "1"}) or document ("x", 1, "<base64>") JSON, in path form.
function pathForm(attr: KeyAttribute, value: unknown, at: string): string {
  let raw: unknown = value
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const entries = Object.entries(value)
    if (entries.length !== 1 || entries[0]![0] !== attr.type) {
      throw invalidKey(`${at} must be a ${attr.type} value: {"${attr.type}": ...} or its plain JSON form`)
    }
    raw = entries[0]![1]
  }
  if (attr.type === 'N' && typeof raw === 'number') {
    // A parsed JSON number has already lost digits beyond 2^53; the exact text must come as a string.
    if (!Number.isFinite(raw) || (Number.isInteger(raw) && !Number.isSafeInteger(raw))) {
      throw invalidKey(`${at} is a number too large to be exact once parsed; send it as a string or {"N": "<digits>"}`)
    }
    return String(raw)
  }
  if (typeof raw !== 'string') throw invalidKey(`${at} must be a ${attr.type === 'N' ? 'number' : attr.type === 'B' ? 'base64 string' : 'string'}`)
  if (attr.type === 'B') {
    try {
      return Buffer.from(decodeBase64Url(raw)).toString('base64url')
    } catch (err) {
      throw invalidKey(`${at} must be binary written as base64 or base64url: ${(err as Error).message}`)
    }
  }
  return raw
}

/**
 * The keys of a batch-get, each with exactly the table's key attributes, in the single-item route's path
 * form (so a batch and `GET /tables/:t/items/:pk?sk=` share their entries), validated by the key schema.
 * Throws DC_ERR_INVALID_KEY naming the first bad key, DC_ERR_VALIDATION for two keys naming one item.
 */
export function batchKeyParams(description: TableDescription, keys: readonly Record<string, unknown>[]): KeyParams[] {
  const { partition, sort } = description.key
  const wanted = sort ? [partition.name, sort.name] : [partition.name]
  const parsed = keys.map((key, i) => {
    const extra = Object.keys(key).filter((name) => !wanted.includes(name))
    const missing = wanted.filter((name) => !Object.hasOwn(key, name))
    if (extra.length > 0 || missing.length > 0) {
      throw invalidKey(`keys[${i}] must have exactly the key attributes ${wanted.join(', ')}${extra.length ? `; not ${extra.join(', ')}` : ''}`)
    }
    const params: KeyParams = { pk: pathForm(partition, key[partition.name], `keys[${i}].${partition.name}`) }
    if (sort) params.sk = pathForm(sort, key[sort.name], `keys[${i}].${sort.name}`)
    return { params, value: keyFromParams(description, params.pk, params.sk) }
  })
  // By value, so "1" and "1.0" are one item as DynamoDB sees them (it rejects a batch naming one twice).
  const names = wanted
  for (let i = 0; i < parsed.length; i++) {
    for (let j = 0; j < i; j++) {
      if (names.every((n) => compareKeyValues(parsed[i]!.value[n]!, parsed[j]!.value[n]!) === 0)) {
        throw new errors.DC_ERR_VALIDATION(`keys[${j}] and keys[${i}] name the same item: each key may appear once`)
      }
    }
  }
  return parsed.map((p) => p.params)
}
