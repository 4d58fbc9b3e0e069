import fc from 'fast-check'
import t from 'tap'
import {
  canonicalNumber,
  checkDynamoNumber,
  compareNumbers,
  isJsonNumber,
  isNumberText,
  jsonNumberAt,
  jsonNumberText,
  MAX_NUMBER_DIGITS,
  MAX_NUMBER_EXPONENT,
  MIN_NUMBER_EXPONENT,
  numberBytes,
  parseNumber,
} from '../../../src/shared/dynamo/numbers.ts'
import { quoteForMessage } from '../../../src/shared/dynamo/strings.ts'

/** The reason parseNumber gives, or 'ok'. */
function reasonOf(text: string): string {
  const parsed = parseNumber(text)
  return parsed.ok ? 'ok' : parsed.reason
}

t.test('38 significant digits pass, 39 do not; leading and trailing zeros do not count', async (t) => {
  const d38 = '12345678901234567890123456789012345678'
  const d39 = `${d38}9`
  const tooMany = (x: string, n = 39) => `${quoteForMessage(x)} has ${n} significant digits; DynamoDB keeps at most 38`
  t.equal(MAX_NUMBER_DIGITS, 38)
  const fine = [d38, `-${d38}`, `0.${d38}`, `${d38.slice(0, 20)}.${d38.slice(20)}`, `000${d38}000`, `0.000${d38}`]
  for (const text of [...fine, `1${'0'.repeat(100)}`]) t.equal(reasonOf(text), 'ok', text)
  for (const text of [d39, `${d39.slice(0, 20)}.${d39.slice(20)}`, `1${'0'.repeat(37)}1`, `-0.00${d39}0`]) {
    t.equal(reasonOf(text), tooMany(text), `${text}: inner zeros count, outer ones do not`)
  }
  const long = '9'.repeat(60)
  t.equal(reasonOf(long), `"${'9'.repeat(45)}..." has 60 significant digits; DynamoDB keeps at most 38`)
})

t.test('the magnitude runs from 1E-130 to below 1E+126, on either sign', async (t) => {
  t.equal(MAX_NUMBER_EXPONENT, 125)
  t.equal(MIN_NUMBER_EXPONENT, -130)
  const larger = (x: string) => `${quoteForMessage(x)} is larger in magnitude than DynamoDB's maximum (about 1E+126)`
  const smaller = (x: string) => `${quoteForMessage(x)} is smaller in magnitude than DynamoDB's minimum (1E-130)`
  const fine = '1E125 9.9999999999999999999999999999999999999E+125 -9.9E125 0.1E126 1E-130 -1E-130 0.1E-129 10E-131'
  for (const ok of fine.split(' ')) t.equal(reasonOf(ok), 'ok', ok)
  for (const big of ['1E126', '-1E126', '10E125', `1${'0'.repeat(126)}`]) t.equal(reasonOf(big), larger(big), big)
  for (const tiny of ['1E-131', '-1E-131', '0.1E-130', `0.${'0'.repeat(130)}1`]) {
    t.equal(reasonOf(tiny), smaller(tiny), tiny)
  }
  t.equal(reasonOf('0E999999999'), 'ok', 'zero has no magnitude, whatever its exponent')
  t.equal(reasonOf('0E1000000000'), '"0E1000000000" has an exponent out of range', 'but an exponent must fit 32 bits')
  t.equal(reasonOf('1e-999999999999999999999'), '"1e-999999999999999999999" has an exponent out of range')
})

t.test('the text forms DynamoDB accepts, and nothing else', async (t) => {
  const accepted: Array<[string, string]> = [
    ['5', '5'],
    ['+5', '5'],
    ['-5', '-5'],
    ['007', '007'],
    ['+007.50', '007.50'],
    ['.5', '.5'],
    ['5.', '5.'],
    ['-.5e-3', '-.5e-3'],
    ['1e5', '1e5'],
    ['1E+5', '1E+5'],
    ['1e-05', '1e-05'],
    ['1.50', '1.50'],
  ]
  for (const [text, n] of accepted) {
    const parsed = parseNumber(text)
    t.same(parsed.ok && parsed.n, n, `${text} is sent as ${n}: only a leading '+' goes`)
    t.equal(checkDynamoNumber(text), n)
    t.ok(isNumberText(text))
  }
  // Separated by '|': the empty string and texts with spaces are among them.
  const refused = '|.|+|-|+-1|e5|.e5|1e|1e+|1.2.3| 1|1 |0x10|Infinity|NaN|1_000|1,5|١'.split('|')
  for (const text of refused) {
    t.equal(reasonOf(text), `${JSON.stringify(text)} is not a decimal number`, JSON.stringify(text))
    t.notOk(isNumberText(text))
    t.throws(() => checkDynamoNumber(text), TypeError)
  }
  t.ok(isNumberText('9'.repeat(50)), 'isNumberText checks the syntax only')
  t.ok(isNumberText('1e999'))
})

t.test('negative zero, zeros and leading zeros have one canonical form each', async (t) => {
  for (const zero of ['0', '-0', '+0', '0.000', '-0E5', '.0', '0.', '000']) {
    const parsed = parseNumber(zero)
    t.ok(parsed.ok, zero)
    if (!parsed.ok) continue
    t.equal(parsed.canonical, '0', `${zero} is 0`)
    t.same(parsed.parts, { negative: false, digits: '', exponent: 0 }, 'zero is never negative')
    t.equal(compareNumbers(zero, '0'), 0)
    t.equal(numberBytes(zero), 1)
  }
  t.equal(checkDynamoNumber('-0'), '-0', 'the text itself is kept as written')
  const same = ['1', '1.0', '+10E-1', '0.1e1', '001', '1.000e0', '100e-2']
  for (const text of same) t.equal(canonicalNumber(text), '1e0', text)
  t.equal(canonicalNumber('-00.0500'), '-5e-2')
  t.equal(canonicalNumber('15'), '15e1')
  t.equal(canonicalNumber('1.5'), '15e0', 'one digit string, two powers of ten: different values stay apart')
  t.equal(canonicalNumber('-15'), '-15e1')
  t.same(parseNumber('00123.4500').ok && parseNumber('00123.4500'), {
    ok: true,
    n: '00123.4500',
    canonical: '12345e2',
    parts: { negative: false, digits: '12345', exponent: 2 },
  })
  t.throws(() => canonicalNumber('1e126'), TypeError)
  t.throws(() => canonicalNumber('abc'), { message: '"abc" is not a decimal number' })
})

t.test('equal values give one canonical text, and compare as 0, however they are written', async (t) => {
  // A value m x 10^e written three ways: plain digits with a point, scientific, or with padding zeros.
  const render = (m: bigint, e: number, form: number): string => {
    const sign = m < 0n ? '-' : ''
    const digits = (m < 0n ? -m : m).toString()
    if (form === 0) return `${sign}${digits}E${e}`
    if (form === 1) return `${sign}00${digits}.000E${e}`
    if (e >= 0) return `${sign}${digits}${'0'.repeat(e)}`
    const padded = digits.padStart(-e + 1, '0')
    return `${sign}${padded.slice(0, padded.length + e)}.${padded.slice(padded.length + e)}`
  }
  const value = fc.record({
    m: fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }),
    e: fc.integer({ min: -40, max: 40 }),
  })
  t.doesNotThrow(
    () =>
      fc.assert(
        fc.property(value, fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 }), ({ m, e }, f1, f2) => {
          const a = render(m, e, f1)
          const b = render(m, e, f2)
          if (canonicalNumber(a) !== canonicalNumber(b)) throw new Error(`${a} and ${b} differ`)
          if (compareNumbers(a, b) !== 0) throw new Error(`${a} vs ${b} is not 0`)
        }),
      ),
    'three ways of writing one value agree',
  )
  t.doesNotThrow(
    () =>
      fc.assert(
        fc.property(value, value, (a, b) => {
          const low = Math.min(a.e, b.e)
          const va = a.m * 10n ** BigInt(a.e - low)
          const vb = b.m * 10n ** BigInt(b.e - low)
          const expected = va < vb ? -1 : va > vb ? 1 : 0
          const ta = render(a.m, a.e, 0)
          const tb = render(b.m, b.e, 2)
          if (compareNumbers(ta, tb) !== expected) throw new Error(`${ta} vs ${tb}: expected ${expected}`)
          if ((canonicalNumber(ta) === canonicalNumber(tb)) !== (expected === 0)) throw new Error(`${ta} / ${tb}`)
        }),
      ),
    'order and identity agree with exact BigInt arithmetic',
  )
})

t.test('compareNumbers orders by value and refuses what is not a number', async (t) => {
  t.equal(compareNumbers('-1', '1'), -1)
  t.equal(compareNumbers('2', '10'), -1, 'by value, not as text')
  t.equal(compareNumbers('-2', '-10'), 1)
  t.equal(compareNumbers('0.1', '1E-1'), 0)
  t.equal(compareNumbers('12345678901234567890123456789012345678', '12345678901234567890123456789012345679'), -1)
  t.equal(compareNumbers('1E-130', '0'), 1)
  t.throws(() => compareNumbers('1', 'x'), { name: 'TypeError', message: '"x" is not a decimal number' })
  t.throws(() => compareNumbers('1E200', '1'), TypeError)
})

t.test('numberBytes: a byte per two significant digits, plus one, plus one if negative', async (t) => {
  const cases: Array<[string, number]> = [
    ['0', 1],
    ['1', 2],
    ['10', 2],
    ['12', 2],
    ['1.2', 3],
    ['-1', 3],
    ['123', 3],
    ['1234', 3],
    ['12.34', 3],
    ['1'.repeat(38), 20],
    [`0.${'1'.repeat(38)}`, 20],
    [`1.${'1'.repeat(37)}`, 21],
    [`-${'1'.repeat(38)}`, 21],
    ['1E125', 2],
    ['+5', 2],
  ]
  for (const [text, bytes] of cases) t.equal(numberBytes(text), bytes, text)
  t.equal(numberBytes('1.0'), numberBytes('1'), 'trailing zeros are not stored')
  t.throws(() => numberBytes('1'.repeat(39)), TypeError)
})

t.test('JSON number text: its grammar, and DynamoDB numbers rewritten into it, every digit kept', async (t) => {
  for (const json of '0 -0 1 -1.5 1e5 1E+5 1.0e-5 12345678901234567890123456789012345678'.split(' ')) {
    t.ok(isJsonNumber(json), json)
    t.equal(jsonNumberText(json), json, `${json} is already JSON`)
  }
  for (const notJson of ['+1', '01', '.5', '5.', '1e', '-', '', ' 1']) t.notOk(isJsonNumber(notJson), notJson)
  const rewritten: Array<[string, string]> = [
    ['+5', '5'],
    ['007', '7'],
    ['-007.50', '-7.50'],
    ['.5', '0.5'],
    ['-.5e-3', '-0.5e-3'],
    ['5.', '5'],
    ['00', '0'],
    ['-00', '-0'],
    ['+1.E+7', '1E+7'],
    [`000${'9'.repeat(50)}`, '9'.repeat(50)],
  ]
  for (const [text, json] of rewritten) {
    t.equal(jsonNumberText(text), json, text)
    t.ok(isJsonNumber(jsonNumberText(text)))
  }
  t.throws(() => jsonNumberText('abc'), { name: 'TypeError', message: 'Not a DynamoDB number: "abc"' })
  t.equal(jsonNumberAt('[1.5e3,2]', 1), '1.5e3')
  t.equal(jsonNumberAt('01', 0), '0', 'the longest JSON number: the caller refuses what follows')
  t.equal(jsonNumberAt('-x', 0), undefined)
  t.equal(jsonNumberAt('+1', 0), undefined)
  t.equal(jsonNumberAt('x 42', 1), undefined, 'only at the position given')
  t.equal(jsonNumberAt('x 42', 2), '42')
  t.doesNotThrow(
    () =>
      fc.assert(
        fc.property(fc.stringMatching(/^[+-]?\d{0,20}(\.\d{0,20})?([eE][+-]?\d{1,3})?$/), (text) => {
          if (!isNumberText(text)) return
          const json = jsonNumberText(text)
          if (!isJsonNumber(json)) throw new Error(`${text} -> ${json} is not JSON`)
          if (Number(json) !== Number(text)) throw new Error(`${text} -> ${json} changed value`)
        }),
      ),
    'the rewrite is JSON with the same value',
  )
})

t.test('any string is a number or a reason, never a crash', async (t) => {
  t.doesNotThrow(
    () =>
      fc.assert(
        fc.property(fc.oneof(fc.string(), fc.stringMatching(/^[+-]?\d{0,45}(\.\d{0,45})?([eE][+-]?\d{1,12})?$/)), (text) => {
          const parsed = parseNumber(text)
          if (parsed.ok) {
            if (parsed.parts.digits.length > MAX_NUMBER_DIGITS) throw new Error(`${text} passed with too many digits`)
            if (canonicalNumber(text) !== parsed.canonical) throw new Error(`${text}: two canonical forms`)
          } else if (typeof parsed.reason !== 'string' || parsed.reason.length === 0) {
            throw new Error(`${text}: no reason`)
          }
        }),
      ),
    'every string is a number with a canonical form or a reason',
  )
})
