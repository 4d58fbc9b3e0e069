import fc from 'fast-check'
import t from 'tap'
import { checkDynamoNumber, compareKeyValues, decodeBase64Url, keyFromParams, toKeyAttributeValue } from '../../../src/shared/dynamo/key-values.ts'
import type { KeyAttribute, TableDescription } from '../../../src/shared/dynamo/table-description.ts'

const S: KeyAttribute = { name: 'PK', type: 'S' }
const N: KeyAttribute = { name: 'amount', type: 'N' }
const B: KeyAttribute = { name: 'blob', type: 'B' }

/** The error code a call throws, or 'no error'. */
function codeOf(fn: () => unknown): string {
  try {
    fn()
    return 'no error'
  } catch (err) {
    return (err as { code?: string }).code ?? `not a DC error: ${err}`
  }
}

function table(key: TableDescription['key']): TableDescription {
  return {
    name: 't1',
    status: 'ACTIVE',
    key,
    attributeDefinitions: [],
    indexes: [],
    billingMode: 'PAY_PER_REQUEST',
    stream: { enabled: false },
    itemCount: 0,
    sizeBytes: 0,
  }
}

t.test('S keys are taken as they are, within DynamoDB size limits', async (t) => {
  t.same(toKeyAttributeValue(S, 'ORDER#1'), { S: 'ORDER#1' })
  t.same(toKeyAttributeValue(S, ' spaces and ünïcode 😀 '), { S: ' spaces and ünïcode 😀 ' })
  t.same(toKeyAttributeValue(S, 'x'.repeat(2048)), { S: 'x'.repeat(2048) }, '2048 bytes fit a partition key')
  t.same(toKeyAttributeValue(S, 'x'.repeat(1024), 'sort'), { S: 'x'.repeat(1024) }, '1024 bytes fit a sort key')
  const bad: Array<[string, 'partition' | 'sort', RegExp]> = [
    ['', 'partition', /Partition key 'PK' must be a non-empty string \(S\)/],
    ['', 'sort', /Sort key 'PK' must be a non-empty string/],
    ['x'.repeat(2049), 'partition', /at most 2048 bytes in UTF-8; got 2049/],
    ['x'.repeat(1025), 'sort', /at most 1024 bytes/],
    ['é'.repeat(1025), 'partition', /at most 2048 bytes in UTF-8; got 2050/],
    ['a\uD800b', 'partition', /valid Unicode/],
  ]
  for (const [raw, role, message] of bad) {
    t.throws(() => toKeyAttributeValue(S, raw, role), { code: 'DC_ERR_INVALID_KEY', message }, `${role} ${raw.slice(0, 9)}`)
  }
})

t.test('N keys must be DynamoDB numbers and keep their exact text', async (t) => {
  const good = [
    '0',
    '-0',
    '7',
    '-1',
    '1.5',
    '.5',
    '5.',
    '-.25',
    '007',
    '1e10',
    '1E+10',
    '2.5e-3',
    '1E-130',
    '-1e-130',
    '9.9999999999999999999999999999999999999E+125',
    '12345678901234567890123456789012345678',
    '-0.12345678901234567890123456789012345678',
    '1000000000000000000000000000000000000000000000',
    '0.000000000000000000000000000000000000000000001',
    '1.000000000000000000000000000000000000000000000',
    '0e500',
  ]
  for (const raw of good) t.same(toKeyAttributeValue(N, raw), { N: raw }, raw)
  t.same(toKeyAttributeValue(N, '+7'), { N: '7' }, 'a leading + is dropped (dynalite rejects it), nothing else changes')
  t.same(toKeyAttributeValue(N, '+1.50e2', 'sort'), { N: '1.50e2' })

  const bad = [
    '',
    ' 1',
    '1 ',
    '1\n',
    'NaN',
    'Infinity',
    '-Infinity',
    '0x10',
    '0b1',
    '1e',
    'e5',
    '.',
    '-',
    '+',
    '1.2.3',
    '1,5',
    '1_000',
    '--1',
    '١٢',
    '123456789012345678901234567890123456789',
    '1.23456789012345678901234567890123456789',
    '1e126',
    '10E125',
    '1E-131',
    '0.1e-130',
    '1e9999999999',
    '0e9999999999',
  ]
  for (const raw of bad) {
    t.throws(
      () => toKeyAttributeValue(N, raw, 'sort'),
      { code: 'DC_ERR_INVALID_KEY', message: /^Sort key 'amount' must be a number \(N\): / },
      JSON.stringify(raw),
    )
  }
  t.throws(() => toKeyAttributeValue(N, '1'.repeat(39)), {
    message: /39 significant digits; DynamoDB keeps at most 38/,
  })
  t.throws(() => toKeyAttributeValue(N, 'x'.repeat(500)), { message: /"x{45}\.\.\." is not a decimal number/ }, 'long input is clipped')
})

t.test('B keys are base64url (or base64) and decode to the same bytes', async (t) => {
  const bytes = Uint8Array.from([0xfb, 0xff, 0xbf, 0x00, 0x3e, 0x3f, 0x7f])
  const buf = Buffer.from(bytes)
  for (const text of [buf.toString('base64url'), buf.toString('base64'), buf.toString('base64').replace(/=+$/, ''), `${buf.toString('base64url')}==`]) {
    const value = toKeyAttributeValue(B, text)
    t.same(value.B, bytes, text)
    t.ok(value.B instanceof Uint8Array && !Buffer.isBuffer(value.B), 'a plain Uint8Array')
  }
  t.same(toKeyAttributeValue(B, 'QQ').B, Uint8Array.from([0x41]))
  t.same(toKeyAttributeValue(B, 'QQ==').B, Uint8Array.from([0x41]))
  t.same(toKeyAttributeValue(B, 'x'.repeat(1024), 'sort').B?.byteLength, 768)

  const bad: Array<[string, RegExp]> = [
    ['', /at least one byte/],
    ['!!!!', /outside the base64url alphabet/],
    ['QQ=A', /outside the base64url alphabet/],
    ['QQ===', /outside the base64url alphabet/],
    ['a b=', /outside the base64url alphabet/],
    ['ab-+', /outside the base64url alphabet/],
    ['Q', /length/],
    ['QUJDR', /length/],
    ['QQ=', /length/],
    ['-_-_AD4_fw=', /length/],
    ['QR', /stray bits/],
    ['QUI=x', /alphabet/],
    [Buffer.alloc(2049).toString('base64url'), /at most 2048 bytes; got 2049/],
  ]
  for (const [raw, message] of bad) {
    t.throws(
      () => toKeyAttributeValue(B, raw),
      {
        code: 'DC_ERR_INVALID_KEY',
        message: new RegExp(`^Partition key 'blob' must be binary \\(B\\).*${message.source}`),
      },
      raw.slice(0, 12),
    )
  }
  t.throws(() => toKeyAttributeValue(B, Buffer.alloc(1025).toString('base64url'), 'sort'), {
    message: /at most 1024 bytes/,
  })
})

t.test('every base64url text of any bytes decodes back to them', async () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 64 }), (bytes) => {
      const buf = Buffer.from(bytes)
      for (const text of [buf.toString('base64url'), buf.toString('base64')]) {
        if (Buffer.compare(decodeBase64Url(text), bytes) !== 0) throw new Error(`mismatch for ${text}`)
      }
    }),
  )
})

t.test('an unknown key type is refused, not guessed', async (t) => {
  t.equal(
    codeOf(() => toKeyAttributeValue({ name: 'x', type: 'BOOL' as 'S' }, 'true')),
    'DC_ERR_INVALID_KEY',
  )
})

t.test('keyFromParams requires sk exactly when the table has a sort key', async (t) => {
  const hashOnly = table({ partition: { name: 'id', type: 'N' } })
  const composite = table({ partition: S, sort: { name: 'SK', type: 'B' } })
  t.same(keyFromParams(hashOnly, '42'), { id: { N: '42' } })
  t.throws(() => keyFromParams(hashOnly, '42', 'x'), {
    code: 'DC_ERR_INVALID_KEY',
    message: /Table 't1' has no sort key/,
  })
  t.throws(() => keyFromParams(hashOnly, '42', ''), { code: 'DC_ERR_INVALID_KEY' }, 'an empty sk is still an sk')
  t.throws(() => keyFromParams(hashOnly, 'forty-two'), {
    code: 'DC_ERR_INVALID_KEY',
    message: /Partition key 'id' must be a number/,
  })
  t.same(keyFromParams(composite, 'a', 'AQI').SK, { B: Uint8Array.from([1, 2]) })
  t.throws(() => keyFromParams(composite, 'a'), {
    code: 'DC_ERR_INVALID_KEY',
    message: "Table 't1' has the sort key 'SK' (B): pass its value as sk",
  })
  t.throws(() => keyFromParams(composite, 'a', '***'), {
    code: 'DC_ERR_INVALID_KEY',
    message: /^Sort key 'SK' must be binary/,
  })
  t.throws(() => keyFromParams(composite, '', 'AQI'), {
    code: 'DC_ERR_INVALID_KEY',
    message: /^Partition key 'PK'/,
  })

  const proto = keyFromParams(table({ partition: { name: '__proto__', type: 'S' } }), 'x')
  t.same(Object.keys(proto), ['__proto__'], 'an attribute named __proto__ is an own property')
  t.equal(Object.getPrototypeOf(proto), Object.prototype)
})

t.test('compareKeyValues orders values as DynamoDB sorts them', async (t) => {
  const numbers = [
    '-1e5',
    '-1',
    '-0.5',
    '-0.000001',
    '0',
    '1E-130',
    '0.001',
    '1',
    '1.5',
    '10',
    '1e2',
    '12345678901234567890123456789012345678',
    '12345678901234567890123456789012345679',
    '9e125',
  ]
  for (let i = 0; i < numbers.length - 1; i++) {
    t.equal(compareKeyValues({ N: numbers[i]! }, { N: numbers[i + 1]! }), -1, `${numbers[i]} < ${numbers[i + 1]}`)
    t.equal(compareKeyValues({ N: numbers[i + 1]! }, { N: numbers[i]! }), 1)
  }
  for (const [a, b] of [
    ['0', '-0'],
    ['1', '1.000'],
    ['100', '1e2'],
    ['.5', '5e-1'],
    ['-1.50', '-15E-1'],
  ]) {
    t.equal(compareKeyValues({ N: a! }, { N: b! }), 0, `${a} = ${b}`)
  }
  // UTF-16 order would put the emoji (a surrogate pair) first; DynamoDB compares UTF-8 bytes.
  t.equal(compareKeyValues({ S: '\uFF61' }, { S: '😀' }), -1)
  t.equal(compareKeyValues({ S: 'a' }, { S: 'ab' }), -1)
  t.equal(compareKeyValues({ S: 'b' }, { S: 'ab' }), 1)
  t.equal(compareKeyValues({ B: Uint8Array.from([0x7f]) }, { B: Uint8Array.from([0x80]) }), -1, 'bytes are unsigned')
  t.throws(() => compareKeyValues({ S: '1' }, { N: '1' }), TypeError)
})

t.test('number comparison agrees with exact BigInt arithmetic', async () => {
  // Renders m x 10^e in one of several textual forms DynamoDB accepts.
  const render = (m: bigint, e: number, form: number): string => {
    const sign = m < 0n ? '-' : ''
    const digits = (m < 0n ? -m : m).toString()
    if (form === 0) return `${sign}${digits}e${e}`
    if (form === 1) return `${sign}${digits}${'0'.repeat(3)}E${e - 3}`
    // Plain decimal with a point: shift the point e places.
    if (e >= 0) return `${sign}${digits}${'0'.repeat(e)}`
    const padded = digits.padStart(-e + 1, '0')
    return `${sign}${padded.slice(0, e)}.${padded.slice(e)}`
  }
  const num = fc.record({
    m: fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }),
    e: fc.integer({ min: -40, max: 40 }),
    form: fc.integer({ min: 0, max: 2 }),
  })
  fc.assert(
    fc.property(num, num, (a, b) => {
      const low = Math.min(a.e, b.e)
      const va = a.m * 10n ** BigInt(a.e - low)
      const vb = b.m * 10n ** BigInt(b.e - low)
      const expected = va < vb ? -1 : va > vb ? 1 : 0
      const ta = render(a.m, a.e, a.form)
      const tb = render(b.m, b.e, b.form)
      if (checkDynamoNumber(ta) !== ta) throw new Error(`changed ${ta}`)
      const got = compareKeyValues({ N: ta }, { N: tb })
      if (got !== expected) throw new Error(`${ta} vs ${tb}: got ${got}, expected ${expected}`)
    }),
  )
})

t.test('any string is either a number or a TypeError, never a crash', async () => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.stringMatching(/^[+-]?\d{0,45}(\.\d{0,45})?([eE][+-]?\d{1,4})?$/)), (text) => {
      try {
        checkDynamoNumber(text)
      } catch (err) {
        if (!(err instanceof TypeError)) throw err
      }
      try {
        decodeBase64Url(text)
      } catch (err) {
        if (!(err instanceof TypeError)) throw err
      }
    }),
  )
})
