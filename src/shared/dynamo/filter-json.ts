import { errors } from '../errors.ts'
import { JsonNumber, JsonSyntaxError, type JsonValue, parseStrictJson } from './strict-json.ts'

/**
 * A filter as JSON text (numbers keep every digit) or as an already parsed array (numbers there are JS
 * numbers, so integers beyond 2^53 are refused: send them as JSON text or as {"N": "..."}).
 */
export type FilterInput = string | readonly unknown[]

// A filter is an array of objects whose values may be {"N": ...}: anything deeper is a mistake.
const MAX_JSON_DEPTH = 8

const invalidFilter = (message: string) => new errors.DC_ERR_INVALID_FILTER(message)

function parseText(text: string): JsonValue {
  try {
    return parseStrictJson(text, MAX_JSON_DEPTH)
  } catch (err) {
    if (err instanceof JsonSyntaxError) throw invalidFilter(`filter is not valid JSON: ${err.message}`)
    throw err
  }
}

/** An already parsed value in the same shape the text parser produces. */
function fromParsed(v: unknown, at: string, depth: number): JsonValue {
  if (depth > MAX_JSON_DEPTH) throw invalidFilter(`${at} is nested deeper than ${MAX_JSON_DEPTH} levels`)
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v
  if (typeof v === 'bigint') return new JsonNumber(String(v))
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw invalidFilter(`${at} must be a finite number`)
    if (Number.isInteger(v) && !Number.isSafeInteger(v)) {
      throw invalidFilter(`${at} is an integer too large to be exact once parsed; send it as {"N": "<digits>"}`)
    }
    return new JsonNumber(String(v))
  }
  if (Array.isArray(v)) return v.map((item, i) => fromParsed(item, `${at}[${i}]`, depth + 1))
  if (typeof v === 'object' && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null)) {
    return new Map(Object.entries(v).map(([k, item]) => [k, fromParsed(item, `${at}.${k}`, depth + 1)]))
  }
  throw invalidFilter(`${at} is not a JSON value`)
}

/**
 * A filter's JSON as exact values (numbers as their text, objects as Maps), from either input form.
 * Throws DC_ERR_INVALID_FILTER for text that is not strict JSON, nesting deeper than 8 levels, or a
 * parsed value JSON cannot hold exactly (NaN, an integer beyond 2^53, a class instance).
 */
export function filterJson(filter: FilterInput): JsonValue {
  return typeof filter === 'string' ? parseText(filter) : fromParsed(filter, 'filter', 0)
}
