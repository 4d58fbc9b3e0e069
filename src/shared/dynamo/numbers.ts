import { quoteForMessage } from './strings.ts'

// DynamoDB numbers, in one place: the text forms it accepts, its limits, one canonical text per value,
// exact ordering and its size rule. Never through a JS number, so no digit is ever lost.

/** The most significant digits a DynamoDB number may carry. */
export const MAX_NUMBER_DIGITS = 38

/** The largest power of ten a number's first significant digit may have (magnitude below 1E+126). */
export const MAX_NUMBER_EXPONENT = 125

/** The smallest power of ten a number's first significant digit may have (magnitude at least 1E-130). */
export const MIN_NUMBER_EXPONENT = -130

// Every form DynamoDB accepts: optional sign, digits with an optional point on either side, exponent.
// Groups: 1 sign, 2 integer digits, 3 fraction digits, 4 exponent with its 'e', 5 exponent value.
const NUMBER = /^([+-]?)(\d*)(?:\.(\d*))?([eE]([+-]?\d+))?$/
// JSON's number (RFC 8259): no '+', no redundant leading zero, digits on both sides of a point.
const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/
const JSON_NUMBER_AT = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y
// BigDecimal (behind DynamoDB) rejects exponents beyond a 32-bit int, even on a zero.
const MAX_WRITTEN_EXPONENT = 1e9

/**
 * A number taken apart so that values compare exactly: its sign, its significant digits without
 * leading or trailing zeros ('' for zero, which is never negative), and the power of ten of its first digit.
 */
export interface DecimalParts {
  negative: boolean
  digits: string
  exponent: number
}

/**
 * What {@link parseNumber} found. `n` is the text to send to DynamoDB (the input with a leading '+'
 * dropped, which dynalite rejects; every digit kept as written), `canonical` one text per value.
 */
export type ParsedNumber = { ok: true; n: string; canonical: string; parts: DecimalParts } | { ok: false; reason: string }

// The syntax alone: a match with at least one digit, or undefined.
function match(text: string): RegExpExecArray | undefined {
  const m = NUMBER.exec(text)
  if (!m || m[2]!.length + (m[3]?.length ?? 0) === 0) return undefined
  return m
}

function partsOf(m: RegExpExecArray, exp: number): DecimalParts {
  const int = m[2]!
  const all = int + (m[3] ?? '')
  let first = 0
  while (first < all.length && all.charCodeAt(first) === 48) first++
  if (first === all.length) return { negative: false, digits: '', exponent: 0 }
  let last = all.length
  while (last > first && all.charCodeAt(last - 1) === 48) last--
  return { negative: m[1] === '-', digits: all.slice(first, last), exponent: int.length - 1 - first + exp }
}

function canonicalOf({ negative, digits, exponent }: DecimalParts): string {
  return digits === '' ? '0' : `${negative ? '-' : ''}${digits}e${exponent}`
}

/**
 * Parses and validates a DynamoDB number: optional sign, digits with an optional point on either side
 * ('007', '.5', '5.' are fine), optional exponent ('1E+3', '2e-7'); at most 38 significant digits
 * (leading and trailing zeros do not count); magnitude from 1E-130 to below 1E+126, or zero.
 * Returns the number (see {@link ParsedNumber}) or the reason DynamoDB would refuse it, naming the text.
 */
export function parseNumber(text: string): ParsedNumber {
  const q = () => quoteForMessage(text)
  const m = match(text)
  if (!m) return { ok: false, reason: `${q()} is not a decimal number` }
  const exp = Number(m[5] ?? '0')
  if (!(Math.abs(exp) < MAX_WRITTEN_EXPONENT)) return { ok: false, reason: `${q()} has an exponent out of range` }
  const parts = partsOf(m, exp)
  if (parts.digits.length > MAX_NUMBER_DIGITS) {
    const reason = `${q()} has ${parts.digits.length} significant digits; DynamoDB keeps at most ${MAX_NUMBER_DIGITS}`
    return { ok: false, reason }
  }
  if (parts.digits !== '' && parts.exponent > MAX_NUMBER_EXPONENT) {
    return { ok: false, reason: `${q()} is larger in magnitude than DynamoDB's maximum (about 1E+126)` }
  }
  if (parts.digits !== '' && parts.exponent < MIN_NUMBER_EXPONENT) {
    return { ok: false, reason: `${q()} is smaller in magnitude than DynamoDB's minimum (1E-130)` }
  }
  return { ok: true, n: m[1] === '+' ? text.slice(1) : text, canonical: canonicalOf(parts), parts }
}

/**
 * {@link parseNumber} for callers that throw: returns the text to send to DynamoDB (a leading '+'
 * dropped) or throws a TypeError whose message is the reason.
 */
export function checkDynamoNumber(text: string): string {
  return valid(text).n
}

function valid(text: string): Extract<ParsedNumber, { ok: true }> {
  const parsed = parseNumber(text)
  if (!parsed.ok) throw new TypeError(parsed.reason)
  return parsed
}

/** Whether `text` has the syntax of a DynamoDB number; the digit and magnitude limits are not checked. */
export function isNumberText(text: string): boolean {
  return match(text) !== undefined
}

/**
 * One text per numeric value, for identities that must agree however a number was written: '-' when
 * negative, the significant digits, 'e' and the power of ten of the first digit ('1', '1.0' and '+10E-1'
 * all give '1e0'); '0' for zero, '-0' included. Throws a TypeError as {@link checkDynamoNumber} does.
 */
export function canonicalNumber(text: string): string {
  return valid(text).canonical
}

/**
 * Orders two numbers by value (-1, 0 or 1), exactly, whatever their digits. Throws a TypeError
 * (the {@link parseNumber} reason) when either is not a valid DynamoDB number.
 */
export function compareNumbers(a: string, b: string): number {
  return compareParts(valid(a).parts, valid(b).parts)
}

function compareParts(a: DecimalParts, b: DecimalParts): number {
  const sign = (d: DecimalParts) => (d.digits === '' ? 0 : d.negative ? -1 : 1)
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
 * DynamoDB's stored size of a number in bytes, for the 400 KB item limit: about one byte per two
 * significant digits, plus one, plus one when negative (dynalite's formula); zero takes 1 byte.
 * Throws a TypeError as {@link checkDynamoNumber} does.
 */
export function numberBytes(text: string): number {
  const { negative, digits, exponent } = valid(text).parts
  if (digits === '') return 1
  const d = digits.length
  return 1 + Math.ceil(d / 2) + (d % 2 || exponent % 2 ? 0 : 1) + (negative ? 1 : 0)
}

/** Whether `text` is exactly one JSON number (RFC 8259), which is also a DynamoDB number's syntax. */
export function isJsonNumber(text: string): boolean {
  return JSON_NUMBER.test(text)
}

/**
 * The JSON number (RFC 8259) that starts at `pos` in `text`, as its text, or undefined if none does.
 * It is the longest match, so `01` gives `0` and leaves `1` for the caller to refuse.
 */
export function jsonNumberAt(text: string, pos: number): string | undefined {
  JSON_NUMBER_AT.lastIndex = pos
  return JSON_NUMBER_AT.exec(text)?.[0]
}

/**
 * A DynamoDB number as JSON number text with the same value and every digit kept: a leading '+' and
 * redundant leading zeros are dropped, a bare '.5' gains its 0, a trailing '5.' loses its point; the
 * exponent stays as written. Limits are not checked. Throws a TypeError for a text that is not a number.
 */
export function jsonNumberText(n: string): string {
  if (JSON_NUMBER.test(n)) return n
  const m = match(n)
  if (!m) throw new TypeError(`Not a DynamoDB number: ${JSON.stringify(n)}`)
  const int = m[2]!
  const frac = m[3] ?? ''
  let i = 0
  while (i < int.length - 1 && int.charCodeAt(i) === 48) i++
  const digits = int.length === 0 ? '0' : int.slice(i)
  return (m[1] === '-' ? '-' : '') + digits + (frac ? `.${frac}` : '') + (m[4] ?? '')
}
