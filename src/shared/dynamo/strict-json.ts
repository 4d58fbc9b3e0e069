import { jsonNumberAt } from './numbers.ts'

// Hand-written: Node 20's JSON.parse gives revivers no source text, so a 38-digit number would be rounded.

/** A JSON number kept as its text (RFC 8259 syntax), so no digit is lost. */
export class JsonNumber {
  constructor(readonly text: string) {}
}

/** A JSON value with numbers as {@link JsonNumber} and objects as Maps (no prototype keys). */
export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | Map<string, JsonValue>

/** Why a text is not JSON; the message is `<problem> at position <n>`. */
export class JsonSyntaxError extends Error {
  constructor(
    readonly problem: string,
    readonly position: number,
  ) {
    super(`${problem} at position ${position}`)
  }
}

const JSON_WS = /[ \t\n\r]*/y
const JSON_LITERAL = /true|false|null/y

/**
 * Strict JSON (RFC 8259) with numbers kept as their text and objects as Maps; a duplicate property
 * name is refused, and so is nesting deeper than `maxDepth` arrays and objects.
 * Throws a {@link JsonSyntaxError} at the first problem.
 */
export function parseStrictJson(text: string, maxDepth: number): JsonValue {
  let pos = 0
  const fail = (problem: string): never => {
    throw new JsonSyntaxError(problem, pos)
  }
  const skip = () => {
    JSON_WS.lastIndex = pos
    JSON_WS.exec(text)
    pos = JSON_WS.lastIndex
  }
  const sticky = (re: RegExp): string | undefined => {
    re.lastIndex = pos
    const m = re.exec(text)
    if (m) pos = re.lastIndex
    return m?.[0]
  }
  const string = (): string => {
    // Find the closing quote by hand (linear), then let JSON.parse judge escapes and control characters.
    let end = pos + 1
    while (end < text.length && text.charCodeAt(end) !== 34) end += text.charCodeAt(end) === 92 ? 2 : 1
    if (end >= text.length) fail('unterminated string')
    try {
      const s = JSON.parse(text.slice(pos, end + 1)) as string
      pos = end + 1
      return s
    } catch {
      return fail('invalid string')
    }
  }
  const value = (depth: number): JsonValue => {
    skip()
    if (depth > maxDepth) fail(`nesting deeper than ${maxDepth} levels`)
    const c = text[pos]
    if (c === '"') return string()
    if (c === '[' || c === '{') {
      pos++
      skip()
      const close = c === '[' ? ']' : '}'
      const list: JsonValue[] = []
      const map = new Map<string, JsonValue>()
      if (text[pos] === close) {
        pos++
        return c === '[' ? list : map
      }
      for (;;) {
        if (c === '[') list.push(value(depth + 1))
        else {
          skip()
          if (text[pos] !== '"') fail('expected a property name')
          const key = string()
          if (map.has(key)) fail(`duplicate property ${JSON.stringify(key)}`)
          skip()
          if (text[pos] !== ':') fail("expected ':'")
          pos++
          map.set(key, value(depth + 1))
        }
        skip()
        if (text[pos] === ',') pos++
        else if (text[pos] === close) {
          pos++
          return c === '[' ? list : map
        } else fail(`expected ',' or '${close}'`)
      }
    }
    const number = jsonNumberAt(text, pos)
    if (number !== undefined) {
      pos += number.length
      return new JsonNumber(number)
    }
    const literal = sticky(JSON_LITERAL)
    if (literal !== undefined) return literal === 'null' ? null : literal === 'true'
    return fail(c === undefined ? 'unexpected end' : `unexpected ${JSON.stringify(c)}`)
  }
  const result = value(0)
  skip()
  if (pos < text.length) fail('unexpected text after the value')
  return result
}
