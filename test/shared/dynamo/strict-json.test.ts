import t from 'tap'
import { JsonNumber, JsonSyntaxError, parseStrictJson } from '../../../src/shared/dynamo/strict-json.ts'

const D38 = '12345678901234567890123456789012345678'

t.test('numbers stay their text, objects become Maps, the rest is plain JSON', async (t) => {
  const doc = parseStrictJson(` { "a" : [ ${D38}, -0.5e-3, 0, "x\\u0041\\n", true, false, null ], "__proto__": {} } `, 8)
  t.ok(doc instanceof Map)
  const map = doc as Map<string, unknown>
  t.same([...map.keys()], ['a', '__proto__'], '__proto__ is an ordinary key')
  const list = map.get('a') as unknown[]
  t.same(
    list.slice(0, 3).map((n) => (n as JsonNumber).text),
    [D38, '-0.5e-3', '0'],
    'every digit kept',
  )
  t.ok(list[0] instanceof JsonNumber)
  t.same(list.slice(3), ['xA\n', true, false, null])
  t.same(parseStrictJson('[]', 0), [], 'an empty array at depth 0')
  t.equal(parseStrictJson('"only"', 0), 'only')
})

t.test('anything but strict JSON is a JsonSyntaxError with the problem and its position', async (t) => {
  const cases: Array<[string, string, number]> = [
    ['', 'unexpected end', 0],
    ['[1,]', 'unexpected "]"', 3],
    ['{"a":1,"a":2}', 'duplicate property "a"', 10],
    ['{"a" 1}', "expected ':'", 5],
    ['{a:1}', 'expected a property name', 1],
    ['[1 2]', "expected ',' or ']'", 3],
    ['01', 'unexpected text after the value', 1],
    ['+1', 'unexpected "+"', 0],
    ['.5', 'unexpected "."', 0],
    ['NaN', 'unexpected "N"', 0],
    ['"abc', 'unterminated string', 0],
    ['"a\\x"', 'invalid string', 0],
    ['"a\tb"', 'invalid string', 0],
    ["'a'", 'unexpected "\'"', 0],
    ['[[[1]]]', 'nesting deeper than 2 levels', 3],
  ]
  for (const [text, problem, position] of cases) {
    const err = t.throws(() => parseStrictJson(text, 2), { problem, position, message: `${problem} at position ${position}` }, JSON.stringify(text))
    t.ok(err instanceof JsonSyntaxError, 'a JsonSyntaxError')
  }
  t.same(parseStrictJson('[[1]]', 2), [[new JsonNumber('1')]], 'exactly the depth allowed is fine')
})
