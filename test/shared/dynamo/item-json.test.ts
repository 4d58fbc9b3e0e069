import assert from 'node:assert/strict'
import { type AttributeValue, CreateTableCommand, GetItemCommand, PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb'
import fc from 'fast-check'
import t from 'tap'
import { createDynamoClients } from '../../../src/shared/dynamo/client.ts'
import {
  type AttributeMap,
  itemsToDocumentJson,
  itemsToTypedJson,
  itemToDocumentJson,
  itemToTypedJson,
  jsonNumberText,
  typedJsonToAttributeValues,
} from '../../../src/shared/dynamo/item-json.ts'
import { startServices } from '../../helpers/services.ts'

const BIG38 = '12345678901234567890123456789012345678'
const FRAC38 = '12345678901234567890.123456789012345678'
const BYTES = new Uint8Array([0, 1, 2, 253, 254, 255])
const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/

/** The exact decimal value of a number string as `<digits>e<exp>` with no redundant zeros, so forms compare. */
function decimal(n: string): string {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(n)
  if (!m) throw new Error(`not a number: ${n}`)
  let digits = `${m[2]}${m[3] ?? ''}`.replace(/^0+/, '')
  if (digits === '') return '0'
  let exp = Number(m[4] ?? 0) - (m[3] ?? '').length
  while (digits.endsWith('0')) {
    digits = digits.slice(0, -1)
    exp++
  }
  return `${m[1] === '-' ? '-' : ''}${digits}e${exp}`
}

const base64 = (b: Uint8Array) => Buffer.from(b).toString('base64')

/** What JSON.parse of the document view should give, for values that fit in a double. */
function documentOf(v: AttributeValue): unknown {
  if (v.S !== undefined) return v.S
  if (v.N !== undefined) return Number(v.N)
  if (v.B !== undefined) return base64(v.B)
  if (v.BOOL !== undefined) return v.BOOL
  if (v.NULL !== undefined) return null
  if (v.SS !== undefined) return [...v.SS]
  if (v.NS !== undefined) return v.NS.map(Number)
  if (v.BS !== undefined) return v.BS.map(base64)
  if (v.L !== undefined) return v.L.map(documentOf)
  if (v.M !== undefined) return documentOfMap(v.M)
  throw new Error('unknown attribute value')
}

function documentOfMap(m: AttributeMap): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(m)) {
    Object.defineProperty(out, k, {
      value: documentOf(v),
      enumerable: true,
      writable: true,
      configurable: true,
    })
  }
  return out
}

const roundTrip = (items: AttributeMap[]) => (JSON.parse(itemsToTypedJson(items)) as unknown[]).map((item) => typedJsonToAttributeValues(item))

const every: AttributeMap = {
  id: { S: 'a' },
  n: { N: '1.50' },
  big: { N: BIG38 },
  b: { B: BYTES },
  ok: { BOOL: true },
  no: { BOOL: false },
  nil: { NULL: true },
  ss: { SS: ['x', 'y'] },
  ns: { NS: ['1', '-0.5', '.5'] },
  bs: { BS: [BYTES, new Uint8Array()] },
  l: { L: [{ S: 'q' }, { N: '2' }, { NULL: true }] },
  m: { M: { inner: { M: { deep: { BOOL: false } } }, e: { L: [] } } },
  empty: { M: {} },
}

t.test('numbers become JSON number text with the same value and every digit', async (t) => {
  const cases: Array<[string, string]> = [
    ['0', '0'],
    ['-0', '-0'],
    ['1.50', '1.50'],
    ['-0.5', '-0.5'],
    ['+3', '3'],
    ['007', '7'],
    ['00', '0'],
    ['-007.50', '-7.50'],
    ['000.000', '0.000'],
    ['.5', '0.5'],
    ['-.5', '-0.5'],
    ['+.5e3', '0.5e3'],
    ['5.', '5'],
    ['5.E3', '5E3'],
    ['1E+2', '1E+2'],
    ['1e-130', '1e-130'],
    ['9.9999999999999999999999999999999999999E+125', '9.9999999999999999999999999999999999999E+125'],
    [BIG38, BIG38],
    [`-${FRAC38}`, `-${FRAC38}`],
    [`+0000${FRAC38}`, FRAC38],
  ]
  for (const [input, expected] of cases) {
    const text = jsonNumberText(input)
    t.equal(text, expected, input)
    t.equal(decimal(text), decimal(input), `${input} keeps its value`)
    t.equal(JSON.parse(text), Number(input), `${input} parses`)
  }
  for (const bad of ['', '.', '+', '-', 'abc', '1e', 'e5', '1.2.3', 'NaN', 'Infinity', ' 1', '0x10', '1_000', '--1']) {
    t.throws(() => jsonNumberText(bad), TypeError, JSON.stringify(bad))
  }
})

t.test('document view: every type', async (t) => {
  const text = itemToDocumentJson(every)
  t.equal(
    text,
    `{"id":"a","n":1.50,"big":${BIG38},"b":"AAEC/f7/","ok":true,"no":false,"nil":null,"ss":["x","y"],` +
      '"ns":[1,-0.5,0.5],"bs":["AAEC/f7/",""],"l":["q",2,null],"m":{"inner":{"deep":false},"e":[]},"empty":{}}',
  )
  t.same(JSON.parse(text), documentOfMap(every), 'parses to the values, the 38-digit one to its nearest double')
  t.equal(itemsToDocumentJson([]), '[]')
  t.equal(itemsToDocumentJson([every, { id: { S: 'b' } }]), `[${text},{"id":"b"}]`)
  t.equal(itemToDocumentJson({}), '{}')
})

t.test('typed view: every type, exactly as DynamoDB writes it, and back', async (t) => {
  const text = itemToTypedJson(every)
  t.equal(
    text,
    `{"id":{"S":"a"},"n":{"N":"1.50"},"big":{"N":"${BIG38}"},"b":{"B":"AAEC/f7/"},"ok":{"BOOL":true},` +
      '"no":{"BOOL":false},"nil":{"NULL":true},"ss":{"SS":["x","y"]},"ns":{"NS":["1","-0.5",".5"]},' +
      '"bs":{"BS":["AAEC/f7/",""]},"l":{"L":[{"S":"q"},{"N":"2"},{"NULL":true}]},' +
      '"m":{"M":{"inner":{"M":{"deep":{"BOOL":false}}},"e":{"L":[]}}},"empty":{"M":{}}}',
  )
  assert.deepStrictEqual(typedJsonToAttributeValues(JSON.parse(text)), every)
  assert.deepStrictEqual(roundTrip([every, every]), [every, every])
  t.equal(itemsToTypedJson([]), '[]')
})

t.test('big numbers keep every digit in the text', async (t) => {
  const numbers = [BIG38, `-${BIG38}`, FRAC38, '1e-130', '-1E-130', '9.9999999999999999999999999999999999999E+125']
  const item: AttributeMap = { ns: { NS: numbers }, l: { L: numbers.map((N) => ({ N })) } }
  const doc = itemToDocumentJson(item)
  t.equal(doc, `{"ns":[${numbers.join(',')}],"l":[${numbers.join(',')}]}`)
  t.same(JSON.parse(doc), documentOfMap(item), 'still parses, to the nearest doubles')
  assert.deepStrictEqual(roundTrip([item]), [item])
})

t.test('binary is the view, not the whole underlying buffer', async (t) => {
  const backing = new Uint8Array([9, 9, 1, 2, 3, 9])
  const view = backing.subarray(2, 5)
  t.equal(itemToDocumentJson({ b: { B: view }, bs: { BS: [view] } }), '{"b":"AQID","bs":["AQID"]}')
  t.equal(itemToTypedJson({ b: { B: view } }), '{"b":{"B":"AQID"}}')
  t.equal(itemToDocumentJson({ b: { B: Buffer.from('hi') } }), '{"b":"aGk="}', 'a Buffer works too')
})

t.test('strings are escaped as JSON.stringify escapes them, lone surrogates included', async (t) => {
  const strings = [
    '',
    'plain',
    'quote " backslash \\ slash /',
    'héllo wörld 日本語 🎉',
    Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join(''),
    '\u007f\u2028\u2029',
    '\ud800',
    'a\udc00b',
    '\udbff\udfff\ud83d',
  ]
  const item: AttributeMap = Object.fromEntries(strings.map((S, i) => [`k${i}${S}`, { S }]))
  item.ss = { SS: strings }
  for (const text of [itemToDocumentJson(item), itemToTypedJson(item)]) {
    t.equal(Buffer.from(text, 'utf8').toString('utf8'), text, 'well-formed UTF-16, so valid UTF-8 on the wire')
    t.notOk(
      [...text].some((c) => c < ' '),
      'no raw control characters',
    )
  }
  t.same(JSON.parse(itemToDocumentJson(item)), documentOfMap(item))
  assert.deepStrictEqual(roundTrip([item]), [item])
  // Plain strings skip JSON.stringify; every UTF-16 code unit, alone and in context, must come out the same.
  for (let c = 0; c <= 0xffff; c++) {
    const ch = String.fromCharCode(c)
    for (const s of [ch, `ab${ch}cd`]) {
      if (itemToDocumentJson({ [s]: { S: s } }) !== `{${JSON.stringify(s)}:${JSON.stringify(s)}}`) {
        t.fail(`code unit ${c.toString(16)} differs from JSON.stringify`)
      }
    }
  }
  t.equal(itemToDocumentJson({ s: { S: '😀"\ud83d' } }), `{"s":${JSON.stringify('😀"\ud83d')}}`)
})

t.test('keys keep the order of the item, odd keys included', async (t) => {
  const item: AttributeMap = {
    z: { S: '1' },
    a: { S: '2' },
    '': { S: '3' },
    'a"b': { S: '4' },
    'x.y': { S: '5' },
  }
  Object.defineProperty(item, '__proto__', {
    value: { S: '6' },
    enumerable: true,
    writable: true,
    configurable: true,
  })
  const doc = itemToDocumentJson(item)
  t.equal(doc, '{"z":"1","a":"2","":"3","a\\"b":"4","x.y":"5","__proto__":"6"}')
  t.same(Object.keys(JSON.parse(doc)), ['z', 'a', '', 'a"b', 'x.y', '__proto__'])
  const back = typedJsonToAttributeValues(JSON.parse(itemToTypedJson(item)))
  t.same(Object.keys(back), Object.keys(item))
  t.equal(Object.getPrototypeOf(back), Object.prototype, 'a "__proto__" attribute does not replace the prototype')
  assert.deepStrictEqual(back, item)
})

t.test('deep nesting of maps and lists', async (t) => {
  // DynamoDB allows 32 levels; go well past it to show nothing depends on the limit.
  for (const depth of [32, 500]) {
    let value: AttributeValue = { N: '.5' }
    let expected: unknown = 0.5
    for (let i = 0; i < depth; i++) {
      value = i % 2 ? { L: [value, { NULL: true }] } : { M: { k: value } }
      expected = i % 2 ? [expected, null] : { k: expected }
    }
    const item = { root: value }
    t.same(JSON.parse(itemToDocumentJson(item)), { root: expected }, `document, depth ${depth}`)
    assert.deepStrictEqual(roundTrip([item]), [item])
  }
})

t.test('an attribute value of no known type is an error, not bad JSON', async (t) => {
  const unknown = { $unknown: ['X', 1] } as AttributeValue
  t.throws(() => itemToDocumentJson({ a: unknown }), TypeError)
  t.throws(() => itemToTypedJson({ a: unknown }), TypeError)
  t.throws(() => itemToDocumentJson({ a: { N: 'NaN' } }), TypeError)
  t.equal(itemToTypedJson({ a: { N: 'x"y' } }), '{"a":{"N":"x\\"y"}}', 'typed N is escaped, never trusted')
})

t.test('typedJsonToAttributeValues rejects what is not a typed item, naming where', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [null, /at \$: expected an object/],
    [[], /at \$: expected an object/],
    [{ a: 'x' }, /at \$\.a: expected an attribute value/],
    [{ a: {} }, /at \$\.a: expected exactly one type, got 0/],
    [{ a: { S: 'x', N: '1' } }, /at \$\.a: expected exactly one type, got 2/],
    [{ a: { X: 1 } }, /at \$\.a: unknown type "X"/],
    [{ a: { S: 1 } }, /at \$\.a\.S: expected a string/],
    [{ a: { N: 1 } }, /at \$\.a\.N: expected a number as a string/],
    [{ a: { N: '1x' } }, /at \$\.a\.N: "1x" is not a number/],
    [{ a: { B: 'not base64!' } }, /at \$\.a\.B: expected standard, padded base64/],
    [{ a: { B: 'AAE' } }, /at \$\.a\.B: expected standard, padded base64/],
    [{ a: { BOOL: 'true' } }, /at \$\.a\.BOOL: expected true or false/],
    [{ a: { NULL: null } }, /at \$\.a\.NULL: expected true/],
    [{ a: { L: {} } }, /at \$\.a\.L: expected an array/],
    [{ a: { M: [] } }, /at \$\.a\.M: expected an object/],
    [{ a: { SS: ['x', 1] } }, /at \$\.a\.SS\[1\]: expected a string/],
    [{ a: { NS: ['1', '.'] } }, /at \$\.a\.NS\[1\]: "\." is not a number/],
    [{ a: { BS: ['AB=='] } }, /at \$\.a\.BS\[0\]: expected standard, padded base64/],
    [{ a: { L: [{ M: { b: { L: [{ Q: 1 }] } } }] } }, /at \$\.a\.L\[0\]\.M\.b\.L\[0\]: unknown type "Q"/],
  ]
  for (const [json, message] of cases) {
    t.throws(() => typedJsonToAttributeValues(json), { code: 'DC_ERR_VALIDATION', statusCode: 400, message }, JSON.stringify(json))
  }
})

const digits = (minLength: number, maxLength: number) => fc.string({ unit: fc.constantFrom(...'0123456789'), minLength, maxLength })

/** Any string DynamoDB would take as a number, odd forms included (range and precision unchecked). */
const dynamoNumber = fc
  .tuple(
    fc.constantFrom('', '-', '+'),
    digits(0, 22),
    fc.option(digits(0, 22)),
    fc.option(fc.tuple(fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), digits(1, 3))),
  )
  .filter(([, int, frac]) => int.length + (frac ?? '').length > 0)
  .map(([sign, int, frac, exp]) => `${sign}${int}${frac === null ? '' : `.${frac}`}${exp ? exp.join('') : ''}`)

const anyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }),
  // Single UTF-16 code units, so lone surrogates turn up too.
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 12 }),
)

const { value: attributeValue } = fc.letrec<{ value: AttributeValue }>((tie) => ({
  value: fc.oneof(
    { maxDepth: 4, depthSize: 'small' },
    anyString.map((S) => ({ S })),
    dynamoNumber.map((N) => ({ N })),
    fc.uint8Array({ maxLength: 16 }).map((B) => ({ B })),
    fc.boolean().map((BOOL) => ({ BOOL })),
    fc.constant({ NULL: true as const }),
    fc.array(anyString, { maxLength: 4 }).map((SS) => ({ SS })),
    fc.array(dynamoNumber, { maxLength: 4 }).map((NS) => ({ NS })),
    fc.array(fc.uint8Array({ maxLength: 8 }), { maxLength: 4 }).map((BS) => ({ BS })),
    fc.array(tie('value'), { maxLength: 4 }).map((L) => ({ L })),
    fc.dictionary(anyString, tie('value'), { maxKeys: 4, noNullPrototype: true }).map((M) => ({ M })),
  ),
}))
const item = fc.dictionary(anyString, attributeValue, { maxKeys: 6, noNullPrototype: true })

t.test('property: any number string becomes JSON number text of the same exact value', async (t) => {
  fc.assert(
    fc.property(dynamoNumber, (n) => {
      const text = jsonNumberText(n)
      assert.match(text, JSON_NUMBER)
      assert.equal(decimal(text), decimal(n))
      assert.ok(Object.is(JSON.parse(text), Number(n)))
    }),
    { numRuns: 2000 },
  )
  t.pass('held for 2000 numbers')
})

t.test('property: typed JSON round-trips exactly; document JSON parses to the same shape', async (t) => {
  fc.assert(
    fc.property(fc.array(item, { maxLength: 4 }), (items) => {
      assert.deepStrictEqual(roundTrip(items), items)
      assert.deepStrictEqual(JSON.parse(itemsToDocumentJson(items)), items.map(documentOfMap))
    }),
    { numRuns: 500 },
  )
  t.pass('held for 500 pages')
})

t.test('a page of 1,000 items of a few KB serializes to valid JSON (its time is reported, not judged: the benchmark judges speed)', async (t) => {
  const blob = new Uint8Array(512).map((_, i) => i)
  const items: AttributeMap[] = Array.from({ length: 1000 }, (_, i) => ({
    id: { S: `item-${i}` },
    n: { N: `${i}.25` },
    big: { N: BIG38 },
    text: { S: 'lorem ipsum "dolor" sit amet, ünïcode\n'.repeat(20) },
    blob: { B: blob },
    tags: { SS: ['a', 'b', 'c'] },
    scores: { NS: ['1', '2.5', '-3e10'] },
    rows: {
      L: Array.from({ length: 20 }, (_, j) => ({ M: { j: { N: String(j) }, on: { BOOL: j % 2 === 0 } } })),
    },
  }))
  const started = performance.now()
  const doc = itemsToDocumentJson(items)
  const typed = itemsToTypedJson(items)
  const ms = performance.now() - started
  t.comment(`1,000 items, ${Math.round((doc.length + typed.length) / 1024)} KB of JSON in ${ms.toFixed(1)} ms`)
  t.ok(doc.length / items.length > 2000, 'items are a few KB each')
  t.equal(JSON.parse(doc).length, 1000)
})

t.test('items read back from dynalite: typed round-trips, document keeps 38 digits', async (t) => {
  const services = await startServices(t)
  const dynamo = createDynamoClients({
    DYNAMODB_ENDPOINT: services.dynamoEndpoint,
    AWS_REGION: 'us-east-1',
    DYNAMO_TIMEOUT_MS: 5000,
  })
  t.teardown(() => dynamo.close())
  const TableName = `item_json_${process.pid}`
  await dynamo.raw.send(
    new CreateTableCommand({
      TableName,
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  )
  // No '+3' here: dynalite rejects a leading '+' ("cannot be converted to a numeric value").
  const numbers = [
    BIG38,
    `-${FRAC38}`,
    '1.50',
    '-0.5',
    '-0',
    '0.000',
    '1E+2',
    '5.e3',
    '1e-130',
    '9.9999999999999999999999999999999999999E+125',
    '.5',
    '5.',
    '007',
  ]
  const put: AttributeMap = {
    id: { S: 'every-type' },
    big: { N: BIG38 },
    nums: { L: numbers.map((N) => ({ N })) },
    ns: { NS: ['1', '2.50', BIG38] },
    s: { S: 'héllo "🎉"\n' },
    b: { B: BYTES },
    bs: { BS: [BYTES, new Uint8Array([42])] },
    ss: { SS: ['x', 'y'] },
    ok: { BOOL: true },
    nil: { NULL: true },
    m: { M: { inner: { L: [{ S: '' }, { M: {} }, { BOOL: false }] } } },
  }
  await dynamo.raw.send(new PutItemCommand({ TableName, Item: put }))
  const got = (await dynamo.raw.send(new GetItemCommand({ TableName, Key: { id: { S: 'every-type' } } }))).Item
  const scanned = (await dynamo.raw.send(new ScanCommand({ TableName }))).Items ?? []
  t.ok(got, 'GetItem found the item')
  t.equal(scanned.length, 1)

  for (const [what, items] of [
    ['GetItem', [got!]],
    ['Scan', scanned],
  ] as const) {
    assert.deepStrictEqual(roundTrip([...items]), items, `${what}: typed JSON round-trips`)
    const doc = itemsToDocumentJson([...items])
    t.ok(doc.includes(`"big":${BIG38}`), `${what}: document keeps the 38-digit number text`)
    const parsed = JSON.parse(doc)[0]
    t.equal(parsed.big, Number(BIG38), `${what}: document parses`)
    t.equal(parsed.s, put.s!.S)
    t.equal(parsed.b, 'AAEC/f7/')
  }

  // The store may rewrite number text (normalization), but never the value.
  const back = got!.nums!.L!.map((v) => v.N!)
  t.same(back.map(decimal), numbers.map(decimal), 'every number read back has the value that was written')
  const rewritten = numbers.map((n, i) => [n, back[i]]).filter(([n, b]) => n !== b)
  t.comment(`number text rewritten on the way back: ${rewritten.map(([n, b]) => `${n} -> ${b}`).join(', ') || 'none'}`)
  t.same(got!.ns!.NS!.map(decimal).sort(), ['1', '2.50', BIG38].map(decimal).sort(), 'the number set keeps its values')
  t.comment(`NS read back: ${JSON.stringify(got!.ns!.NS)}; BS read back: ${JSON.stringify(got!.bs!.BS!.map(base64))}`)
})
