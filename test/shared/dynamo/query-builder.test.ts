import { randomUUID } from 'node:crypto'
import {
  type AttributeValue,
  CreateTableCommand,
  DescribeTableCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
} from '@aws-sdk/client-dynamodb'
import fc from 'fast-check'
import t from 'tap'
import { createDynamoClients } from '../../../src/shared/dynamo/client.ts'
import { keyFromParams } from '../../../src/shared/dynamo/key-values.ts'
import {
  buildQuery,
  buildScanFilter,
  FILTER_OPS,
  type FilterCondition,
  parseFilter,
  type QueryParams,
  SORT_KEY_OPS,
} from '../../../src/shared/dynamo/query-builder.ts'
import { type TableDescription, toTableDescription } from '../../../src/shared/dynamo/table-description.ts'
import { isDcError } from '../../../src/shared/errors.ts'
import { startServices } from '../../helpers/services.ts'

/** The error code a call throws, or 'no error'. */
function codeOf(fn: () => unknown): string {
  try {
    fn()
    return 'no error'
  } catch (err) {
    return (err as { code?: string }).code ?? `not a DC error: ${err}`
  }
}

const all = { projection: { type: 'ALL' } }
const unit: TableDescription = {
  name: 'orders',
  status: 'ACTIVE',
  key: { partition: { name: 'PK', type: 'S' }, sort: { name: 'SK', type: 'S' } },
  attributeDefinitions: [],
  indexes: [
    {
      name: 'by_amount',
      kind: 'GSI',
      key: { partition: { name: 'GPK', type: 'S' }, sort: { name: 'amount', type: 'N' } },
      ...all,
    },
    { name: 'by_kind', kind: 'GSI', key: { partition: { name: 'kind', type: 'S' } }, ...all },
    {
      name: 'by_year',
      kind: 'GSI',
      key: { partition: { name: 'year', type: 'N' }, sort: { name: 'SK', type: 'S' } },
      ...all,
    },
    {
      name: 'by_bin',
      kind: 'LSI',
      key: { partition: { name: 'PK', type: 'S' }, sort: { name: 'bin', type: 'B' } },
      ...all,
    },
  ],
  billingMode: 'PAY_PER_REQUEST',
  stream: { enabled: false },
  itemCount: 0,
  sizeBytes: 0,
}
const hashOnly: TableDescription = {
  ...unit,
  name: 'tags',
  key: { partition: { name: 'id', type: 'S' } },
  indexes: [],
}

// ---- unit: key conditions -------------------------------------------------------------------------

t.test('a partition-key query: placeholders only, ascending by default', async (t) => {
  t.same(buildQuery(unit, { pk: 'CUST#1' }), {
    KeyConditionExpression: '#k0 = :v0',
    ExpressionAttributeNames: { '#k0': 'PK' },
    ExpressionAttributeValues: { ':v0': { S: 'CUST#1' } },
    ScanIndexForward: true,
  })
  t.equal(buildQuery(unit, { pk: 'a', order: 'desc' }).ScanIndexForward, false)
  t.equal(buildQuery(unit, { pk: 'a', order: 'asc' }).ScanIndexForward, true)
})

t.test('every sort-key operator', async (t) => {
  const expected: Record<string, string> = {
    eq: '#k0 = :v0 AND #k1 = :v1',
    lt: '#k0 = :v0 AND #k1 < :v1',
    le: '#k0 = :v0 AND #k1 <= :v1',
    gt: '#k0 = :v0 AND #k1 > :v1',
    ge: '#k0 = :v0 AND #k1 >= :v1',
    between: '#k0 = :v0 AND #k1 BETWEEN :v1 AND :v2',
    begins_with: '#k0 = :v0 AND begins_with(#k1, :v1)',
  }
  for (const skOp of SORT_KEY_OPS) {
    const q = buildQuery(unit, { pk: 'p', sk: 'a', skOp, ...(skOp === 'between' ? { sk2: 'b' } : {}) })
    t.equal(q.KeyConditionExpression, expected[skOp], skOp)
    t.same(q.ExpressionAttributeNames, { '#k0': 'PK', '#k1': 'SK' })
    t.same(q.ExpressionAttributeValues[':v1'], { S: 'a' })
  }
  t.equal(buildQuery(unit, { pk: 'p', sk: 'a' }).KeyConditionExpression, expected.eq, 'eq when sk comes without skOp')
  t.same(buildQuery(unit, { pk: 'p', sk: 'a', skOp: 'between', sk2: 'a' }).ExpressionAttributeValues, {
    ':v0': { S: 'p' },
    ':v1': { S: 'a' },
    ':v2': { S: 'a' },
  })
})

t.test('an index query uses the index key types and names it', async (t) => {
  const q = buildQuery(unit, {
    index: 'by_amount',
    pk: 'EVEN',
    sk: '-1.5',
    skOp: 'between',
    sk2: '12345678901234567890123456789012345678',
  })
  t.same(q, {
    IndexName: 'by_amount',
    KeyConditionExpression: '#k0 = :v0 AND #k1 BETWEEN :v1 AND :v2',
    ExpressionAttributeNames: { '#k0': 'GPK', '#k1': 'amount' },
    ExpressionAttributeValues: {
      ':v0': { S: 'EVEN' },
      ':v1': { N: '-1.5' },
      ':v2': { N: '12345678901234567890123456789012345678' },
    },
    ScanIndexForward: true,
  })
  t.same(buildQuery(unit, { index: 'by_year', pk: '2024' }).ExpressionAttributeValues, {
    ':v0': { N: '2024' },
  })
  t.same(buildQuery(unit, { index: 'by_bin', pk: 'p', sk: '_w', skOp: 'begins_with' }).ExpressionAttributeValues[':v1'], {
    B: Uint8Array.from([0xff]),
  })
  t.notOk('IndexName' in buildQuery(unit, { pk: 'p', index: '' }), 'an empty index means the table')
})

t.test('each bad query gets the right error code', async (t) => {
  const cases: Array<[string, QueryParams, string, RegExp?]> = [
    ['unknown index', { pk: 'p', index: 'nope' }, 'DC_ERR_INDEX_NOT_FOUND', /Index 'nope' not found on table orders/],
    ['pk of the wrong type for the index', { pk: 'abc', index: 'by_year' }, 'DC_ERR_INVALID_KEY', /Partition key 'year' must be a number \(N\)/],
    ['empty pk', { pk: '' }, 'DC_ERR_INVALID_KEY', /Partition key 'PK' must be a non-empty string/],
    ['sk of the wrong type', { pk: 'p', index: 'by_amount', sk: '12abc' }, 'DC_ERR_INVALID_KEY', /Sort key 'amount' must be a number/],
    ['sk2 of the wrong type', { pk: 'p', index: 'by_amount', sk: '1', skOp: 'between', sk2: 'x' }, 'DC_ERR_INVALID_KEY'],
    ['bad base64url sort key', { pk: 'p', index: 'by_bin', sk: '***' }, 'DC_ERR_INVALID_KEY', /Sort key 'bin' must be binary/],
    ['sk over 1024 bytes', { pk: 'p', sk: 'x'.repeat(1025) }, 'DC_ERR_INVALID_KEY', /at most 1024 bytes/],
    ['unknown skOp', { pk: 'p', sk: 'a', skOp: 'like' }, 'DC_ERR_INVALID_QUERY', /skOp must be one of eq, lt, le, gt, ge, between, begins_with/],
    ['skOp in another case', { pk: 'p', sk: 'a', skOp: 'EQ' }, 'DC_ERR_INVALID_QUERY', /one of/],
    ['empty skOp', { pk: 'p', sk: 'a', skOp: '' }, 'DC_ERR_INVALID_QUERY'],
    ['skOp without sk', { pk: 'p', skOp: 'gt' }, 'DC_ERR_INVALID_QUERY', /skOp=gt needs a sort-key value in sk/],
    ['between without sk2', { pk: 'p', sk: 'a', skOp: 'between' }, 'DC_ERR_INVALID_QUERY', /needs both bounds/],
    ['sk2 without between', { pk: 'p', sk: 'a', skOp: 'gt', sk2: 'b' }, 'DC_ERR_INVALID_QUERY', /sk2 is only allowed with skOp=between/],
    ['sk2 with the default eq', { pk: 'p', sk: 'a', sk2: 'b' }, 'DC_ERR_INVALID_QUERY', /sk2/],
    ['sk2 alone', { pk: 'p', sk2: 'b' }, 'DC_ERR_INVALID_QUERY', /sk2/],
    ['begins_with on an N sort key', { pk: 'p', index: 'by_amount', sk: '1', skOp: 'begins_with' }, 'DC_ERR_INVALID_QUERY', /'amount' is a number \(N\)/],
    ['sk on a table without a sort key', { pk: 'p', sk: 'a' }, 'DC_ERR_INVALID_QUERY', /Table 'tags' has no sort key/],
    ['sk on an index without a sort key', { pk: 'p', index: 'by_kind', sk: 'a' }, 'DC_ERR_INVALID_QUERY', /Index 'by_kind' has no sort key/],
    ['inverted S range', { pk: 'p', sk: 'b', skOp: 'between', sk2: 'a' }, 'DC_ERR_INVALID_QUERY', /sk to be less than or equal to sk2/],
    ['inverted N range', { pk: 'p', index: 'by_amount', sk: '10', skOp: 'between', sk2: '9.5' }, 'DC_ERR_INVALID_QUERY', /less than or equal/],
    ['bad order', { pk: 'p', order: 'up' as 'asc' }, 'DC_ERR_INVALID_QUERY', /order must be asc or desc/],
  ]
  for (const [label, params, code, message] of cases) {
    const table = label.startsWith('sk on a table') ? hashOnly : unit
    t.equal(
      codeOf(() => buildQuery(table, params)),
      code,
      label,
    )
    if (message) t.throws(() => buildQuery(table, params), { message }, `${label}: message`)
  }
})

t.test('user text never reaches an expression', async (t) => {
  const evil = '#k0 = :v0 OR attribute_exists(#k1)) -- '
  const q = buildQuery(unit, {
    pk: evil,
    sk: evil,
    skOp: 'begins_with',
    filter: JSON.stringify([
      { attr: evil, op: 'eq', value: evil },
      { attr: `${evil}.x`, op: 'exists' },
    ]),
  })
  const expressions = `${q.KeyConditionExpression} ${q.FilterExpression}`
  t.match(expressions, /^[#:\w\s(),.=<>]+$/, 'only placeholders, operators and function names')
  t.notMatch(expressions, /OR|--/)
  t.equal(q.FilterExpression, '#k2 = :v2 AND attribute_exists(#k2.#k3)', 'a repeated name shares its placeholder')
  t.same(Object.values(q.ExpressionAttributeNames), ['PK', 'SK', evil, 'x'])
})

// ---- unit: filters --------------------------------------------------------------------------------

t.test('every filter operator, as a scan filter', async (t) => {
  const expected: Record<string, string> = {
    eq: '#k0 = :v0',
    ne: '#k0 <> :v0',
    lt: '#k0 < :v0',
    le: '#k0 <= :v0',
    gt: '#k0 > :v0',
    ge: '#k0 >= :v0',
    begins_with: 'begins_with(#k0, :v0)',
    contains: 'contains(#k0, :v0)',
    exists: 'attribute_exists(#k0)',
    not_exists: 'attribute_not_exists(#k0)',
  }
  for (const op of FILTER_OPS) {
    const noValue = op === 'exists' || op === 'not_exists'
    const f = buildScanFilter(JSON.stringify([{ attr: 'status', op, ...(noValue ? {} : { value: 'x' }) }]))
    t.same(
      f,
      {
        FilterExpression: expected[op],
        ExpressionAttributeNames: { '#k0': 'status' },
        ...(noValue ? {} : { ExpressionAttributeValues: { ':v0': { S: 'x' } } }),
      },
      op,
    )
  }
  t.same(buildScanFilter('[]'), {}, 'an empty filter adds nothing (DynamoDB rejects empty maps)')
  t.same(buildScanFilter([]), {})
})

t.test('values keep their type, numbers keep every digit', async (t) => {
  const text = `[
    {"attr":"a","op":"eq","value":"s"}, {"attr":"b","op":"eq","value":true}, {"attr":"c","op":"ne","value":null},
    {"attr":"d","op":"gt","value":12345678901234567890123456789012345678e-1},
    {"attr":"e","op":"lt","value":-0.000000000000000000000000000000000000012345678901234567890123456789012345678},
    {"attr":"f","op":"ge","value":{"N":"+99999999999999999999999999999999999999"}},
    {"attr":"g","op":"begins_with","value":{"B":"_w"}}, {"attr":"h","op":"contains","value":7},
    {"attr":"i","op":"eq","value":"\\u00e9\\"\\\\ \\ud83d\\ude00"}, {"attr":"j","op":"eq","value":""}
  ]`
  const values = parseFilter(text).map((c) => c.value)
  t.same(values, [
    { S: 's' },
    { BOOL: true },
    { NULL: true },
    { N: '12345678901234567890123456789012345678e-1' },
    { N: '-0.000000000000000000000000000000000000012345678901234567890123456789012345678' },
    { N: '99999999999999999999999999999999999999' },
    { B: Uint8Array.from([0xff]) },
    { N: '7' },
    { S: 'é"\\ 😀' },
    { S: '' },
  ])
})

t.test('dotted attributes are nested paths, one placeholder per name', async (t) => {
  const conditions = parseFilter('[{"attr":"meta.level.n","op":"ge","value":5},{"attr":"meta.region","op":"exists"}]')
  t.same(conditions[0]!.path, ['meta', 'level', 'n'])
  const f = buildScanFilter('[{"attr":"meta.level.n","op":"ge","value":5},{"attr":"meta.region","op":"exists"}]')
  t.equal(f.FilterExpression, '#k0.#k1.#k2 >= :v0 AND attribute_exists(#k0.#k3)')
  t.same(f.ExpressionAttributeNames, { '#k0': 'meta', '#k1': 'level', '#k2': 'n', '#k3': 'region' })
})

t.test('a parsed array is accepted too, but not a number it cannot hold exactly', async (t) => {
  const parsed: FilterCondition[] = parseFilter([
    { attr: 'a', op: 'lt', value: 1.5 },
    { attr: 'b', op: 'eq', value: 12n },
  ])
  t.same(
    parsed.map((c) => c.value),
    [{ N: '1.5' }, { N: '12' }],
  )
  t.throws(() => parseFilter([{ attr: 'a', op: 'eq', value: 2 ** 60 }]), {
    code: 'DC_ERR_INVALID_FILTER',
    message: /filter\[0\]\.value is an integer too large.*\{"N": "<digits>"\}/,
  })
  t.throws(() => parseFilter([{ attr: 'a', op: 'eq', value: Number.NaN }]), { code: 'DC_ERR_INVALID_FILTER' })
  t.throws(() => parseFilter([{ attr: 'a', op: 'eq', value: new Date() }]), { code: 'DC_ERR_INVALID_FILTER' })
  t.throws(() => parseFilter([{ attr: 'a', op: 'eq', value: undefined }]), { code: 'DC_ERR_INVALID_FILTER' })
})

t.test('each bad filter gets DC_ERR_INVALID_FILTER naming the position', async (t) => {
  const ok = '{"attr":"a","op":"eq","value":1}'
  const cases: Array<[string, RegExp]> = [
    ['', /not valid JSON: unexpected end at position 0/],
    ['[', /not valid JSON/],
    ['[1,]', /not valid JSON: unexpected "\]"/],
    ["[{'attr':'a'}]", /not valid JSON: expected a property name/],
    ['[{"attr":"a" "op":"eq"}]', /not valid JSON: expected ',' or '}'/],
    ['[{"attr":"a"}] x', /unexpected text after the value/],
    ['[{"attr":"a","op":"eq","value":01}]', /not valid JSON/],
    ['[{"attr":"a","op":"eq","value":+1}]', /not valid JSON/],
    ['[{"attr":"a","op":"eq","value":NaN}]', /not valid JSON/],
    ['[{"attr":"a","op":"eq","value":"tab\there"}]', /not valid JSON: invalid string/],
    ['[{"attr":"a","op":"eq","value":"\\x"}]', /not valid JSON: invalid string/],
    ['["unterminated', /unterminated string/],
    ['[{"attr":"a","op":"eq","op":"ne","value":1}]', /duplicate property "op"/],
    [`${'['.repeat(20)}${']'.repeat(20)}`, /nesting deeper than 8 levels/],
    ['{"attr":"a","op":"eq","value":1}', /^filter must be a JSON array of \{ attr, op, value \} conditions, or one \{ "and" \| "or" \| "not": ... \} group$/],
    ['"[]"', /filter must be a JSON array/],
    ['null', /filter must be a JSON array/],
    [`[${Array(21).fill(ok).join(',')}]`, /filter has 21 conditions; at most 20 are allowed/],
    [`[${ok},${ok},"x"]`, /^filter\[2\] must be an object \{ attr, op, value \}$/],
    [`[${ok},[]]`, /^filter\[1\] must be an object/],
    [`[${ok},{"attr":"a","op":"eq","value":1,"extra":1}]`, /^filter\[1\] has the unknown property "extra"; allowed: attr, op, value, size$/],
    ['[{"attr":"a","op":"eq","value":1,"__proto__":{}}]', /unknown property "__proto__"/],
    ['[{"op":"eq","value":1}]', /^filter\[0\]\.attr must be a non-empty string/],
    ['[{"attr":"","op":"exists"}]', /filter\[0\]\.attr must be a non-empty string/],
    ['[{"attr":5,"op":"exists"}]', /filter\[0\]\.attr must be a non-empty string/],
    [`[{"attr":"${'a'.repeat(256)}","op":"exists"}]`, /filter\[0\]\.attr must be at most 255 characters; got 256/],
    ['[{"attr":"a..b","op":"exists"}]', /filter\[0\]\.attr "a\.\.b" has an empty name between dots/],
    ['[{"attr":".a","op":"exists"}]', /empty name between dots/],
    ['[{"attr":"a.","op":"exists"}]', /empty name between dots/],
    [`[{"attr":"${Array(33).fill('a').join('.')}","op":"exists"}]`, /nests deeper than 32 levels/],
    [`[${ok},${ok},{"attr":"a","op":"like","value":1}]`, /^filter\[2\]\.op must be one of eq, ne, lt, le, gt, ge, begins_with, contains, exists, not_exists/],
    ['[{"attr":"a","value":1}]', /filter\[0\]\.op must be one of/],
    ['[{"attr":"a","op":"EQ","value":1}]', /filter\[0\]\.op must be one of/],
    ['[{"attr":"a","op":"eq"}]', /^filter\[0\]\.value is required with op eq$/],
    ['[{"attr":"a","op":"exists","value":true}]', /^filter\[0\]\.value must not be given with op exists$/],
    ['[{"attr":"a","op":"not_exists","value":null}]', /value must not be given with op not_exists/],
    ['[{"attr":"a","op":"eq","value":[1]}]', /filter\[0\]\.value must be a string, number, boolean, null/],
    ['[{"attr":"a","op":"eq","value":{"S":"x"}}]', /filter\[0\]\.value must be a string, number/],
    ['[{"attr":"a","op":"eq","value":{"N":1}}]', /filter\[0\]\.value must be a string, number/],
    ['[{"attr":"a","op":"eq","value":{"N":"1","B":"AA"}}]', /filter\[0\]\.value must be/],
    ['[{"attr":"a","op":"eq","value":{"N":"abc"}}]', /filter\[0\]\.value is not a DynamoDB number: "abc" is not a decimal number/],
    ['[{"attr":"a","op":"eq","value":1234567890123456789012345678901234567891}]', /40 significant digits/],
    ['[{"attr":"a","op":"eq","value":1e200}]', /is not a DynamoDB number.*larger in magnitude/],
    ['[{"attr":"a","op":"eq","value":{"B":"@@"}}]', /filter\[0\]\.value\.B is not base64url/],
    ['[{"attr":"a","op":"lt","value":true}]', /^filter\[0\]\.value must be a string or a number for op lt$/],
    ['[{"attr":"a","op":"ge","value":null}]', /must be a string or a number for op ge/],
    ['[{"attr":"a","op":"begins_with","value":5}]', /^filter\[0\]\.value must be a string for op begins_with$/],
    ['[{"attr":"a","op":"contains","value":false}]', /must be a string or a number for op contains/],
  ]
  for (const [filter, message] of cases) {
    t.throws(() => parseFilter(filter), { code: 'DC_ERR_INVALID_FILTER', message }, filter.slice(0, 70))
    t.equal(
      codeOf(() => buildScanFilter(filter)),
      'DC_ERR_INVALID_FILTER',
      'buildScanFilter shares the validation',
    )
    t.equal(
      codeOf(() => buildQuery(unit, { pk: 'p', filter })),
      'DC_ERR_INVALID_FILTER',
      'and so does buildQuery',
    )
  }
  t.equal(parseFilter(`[${Array(20).fill(ok).join(',')}]`).length, 20, '20 conditions are fine')
  t.equal(parseFilter(` \n[ {"attr":"${'a'.repeat(255)}" , "op":"exists"} ]\t`).length, 1, 'whitespace and 255 chars')
})

t.test('a query filter may not touch the keys it queries by, nor look inside any key', async (t) => {
  const filter = (attr: string) =>
    JSON.stringify([
      { attr: 'ok', op: 'exists' },
      { attr, op: 'exists' },
    ])
  t.throws(() => buildQuery(unit, { pk: 'p', filter: filter('PK') }), {
    code: 'DC_ERR_INVALID_FILTER',
    message: /^filter\[1\]\.attr 'PK' is a key attribute of this query: use pk, sk and skOp for it$/,
  })
  t.throws(() => buildQuery(unit, { pk: 'p', filter: filter('SK') }), { code: 'DC_ERR_INVALID_FILTER' })
  t.throws(() => buildQuery(unit, { pk: 'p', index: 'by_amount', filter: filter('amount') }), {
    code: 'DC_ERR_INVALID_FILTER',
  })
  t.throws(() => buildQuery(unit, { pk: 'p', filter: filter('GPK.x') }), {
    code: 'DC_ERR_INVALID_FILTER',
    message: /key attribute 'GPK' is a scalar/,
  })
  t.equal(
    buildQuery(unit, { pk: 'p', index: 'by_amount', filter: filter('SK') }).FilterExpression,
    'attribute_exists(#k1) AND attribute_exists(#k2)',
    "a GSI query may filter on the table's keys",
  )
  t.ok(buildScanFilter(filter('PK')).FilterExpression, 'a scan may filter on keys')
})

t.test('any filter text is either accepted or DC_ERR_INVALID_FILTER, never a crash', async () => {
  const anyText = fc.oneof(fc.string(), fc.json(), fc.string({ unit: fc.constantFrom(...'[]{}",:0123456789.eE+-\\ truefalsenul') }))
  fc.assert(
    fc.property(anyText, (text) => {
      try {
        parseFilter(text)
      } catch (err) {
        if (!isDcError(err) || err.code !== 'DC_ERR_INVALID_FILTER') throw err
      }
    }),
    { numRuns: 2000 },
  )
})

t.test('filters serialized by JSON.stringify parse back to the same conditions', async () => {
  const name = fc.string({ minLength: 1, maxLength: 12 }).filter((s) => !s.includes('.'))
  const cond = fc.oneof(
    fc.record({
      attr: name,
      op: fc.constantFrom('eq', 'ne'),
      value: fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null)),
    }),
    fc.record({
      attr: name,
      op: fc.constantFrom('lt', 'ge', 'contains'),
      value: fc.oneof(
        fc.string(),
        // DynamoDB's smallest magnitude is 1E-130, so subnormal doubles are flushed to zero here.
        fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e100, max: 1e100 }).map((d) => (Math.abs(d) < 1e-100 ? 0 : d)),
      ),
    }),
    fc.record({
      attr: fc.array(name, { minLength: 1, maxLength: 4 }).map((p) => p.join('.')),
      op: fc.constantFrom('exists', 'not_exists'),
    }),
  )
  fc.assert(
    fc.property(fc.array(cond, { maxLength: 20 }), fc.constantFrom(undefined, 2, '\t'), (conditions, indent) => {
      const parsed = parseFilter(JSON.stringify(conditions, null, indent))
      const back = parsed.map((c) => {
        const v = c.value
        const value = v === undefined ? undefined : 'S' in v ? v.S : 'N' in v ? Number(v.N) : 'BOOL' in v ? v.BOOL : null
        return { attr: c.attr, op: c.op, ...(v === undefined ? {} : { value }) }
      })
      // -0 is written as 0 by JSON.stringify, so compare through the same serializer.
      if (JSON.stringify(back) !== JSON.stringify(conditions)) throw new Error(`${JSON.stringify(back)} != ${JSON.stringify(conditions)}`)
    }),
    { numRuns: 500 },
  )
})

t.test('random query parameters only ever produce DC errors', async () => {
  const text = fc.oneof(fc.string(), fc.constantFrom('1', '-2.5', 'AQ', '', 'between', 'begins_with', 'eq', 'by_amount', 'by_bin', 'desc'))
  fc.assert(
    fc.property(
      fc.record({
        pk: text,
        sk: fc.option(text, { nil: undefined }),
        skOp: fc.option(text, { nil: undefined }),
        sk2: fc.option(text, { nil: undefined }),
        index: fc.option(text, { nil: undefined }),
        filter: fc.option(fc.oneof(text, fc.json()), { nil: undefined }),
      }),
      (params) => {
        try {
          buildQuery(unit, params)
        } catch (err) {
          if (!isDcError(err)) throw err
        }
      },
    ),
    { numRuns: 2000 },
  )
})

// ---- integration: the built inputs against a real dynalite ---------------------------------------

const services = await startServices(t)
const dynamo = createDynamoClients({
  DYNAMODB_ENDPOINT: services.dynamoEndpoint,
  AWS_REGION: 'us-east-1',
  DYNAMO_TIMEOUT_MS: 5000,
})
t.teardown(() => dynamo.close())
const suffix = randomUUID().slice(0, 8)

async function createTable(input: ConstructorParameters<typeof CreateTableCommand>[0]): Promise<TableDescription> {
  await dynamo.raw.send(new CreateTableCommand({ BillingMode: 'PAY_PER_REQUEST', ...input }))
  const { Table } = await dynamo.raw.send(new DescribeTableCommand({ TableName: input.TableName }))
  return toTableDescription(Table!)
}

const BIG = '123456789012345678901234567890123456' // 36 digits; two more make a 38-digit number
const WEIRD = 'x-y:z #1) size'

interface Order {
  PK: string
  SK: string
  GPK: string
  amount: string
  status: string
  size: number
  note?: string
  tags: string[]
  scores: number[]
  region: string
  level: number
  big: string
  flag: boolean
  opt?: null | string
  weird: string
  bin: number[]
}

const orders: Order[] = Array.from({ length: 50 }, (_, i) => {
  const pad = String(i).padStart(3, '0')
  return {
    PK: i < 30 ? 'CUST#1' : 'CUST#2',
    SK: i % 5 === 0 ? `RETURN#${pad}` : `ORDER#${pad}`,
    GPK: i % 2 === 0 ? 'EVEN' : 'ODD',
    // Negative, fractional and two 38-digit amounts that a JS number cannot tell apart.
    amount: i === 46 ? `${BIG}77` : i === 48 ? `${BIG}78` : String((i - 20) * 1.5),
    status: ['open', 'closed', 'void'][i % 3]!,
    size: i,
    ...(i % 3 === 0 ? { note: `note ${i}` } : {}),
    tags: i % 4 === 0 ? ['red', 'blue'] : ['green'],
    scores: [1000, i],
    region: i % 2 === 1 ? 'eu' : 'us',
    level: i % 7,
    big: `${BIG}${String(i).padStart(2, '0')}`,
    flag: i % 2 === 0,
    ...(i % 10 === 0 ? { opt: null } : i % 10 === 1 ? { opt: 'x' } : {}),
    weird: `w${i % 3}`,
    bin: [i % 2 === 1 ? 0xff : 0x01, i],
  }
})

function toItem(o: Order): Record<string, AttributeValue> {
  return {
    PK: { S: o.PK },
    SK: { S: o.SK },
    GPK: { S: o.GPK },
    amount: { N: o.amount },
    status: { S: o.status },
    size: { N: String(o.size) },
    ...(o.note !== undefined ? { note: { S: o.note } } : {}),
    tags: { SS: o.tags },
    scores: { NS: o.scores.map(String) },
    meta: { M: { region: { S: o.region }, level: { M: { n: { N: String(o.level) } } } } },
    big: { N: o.big },
    flag: { BOOL: o.flag },
    ...(o.opt === null ? { opt: { NULL: true } } : o.opt !== undefined ? { opt: { S: o.opt } } : {}),
    [WEIRD]: { S: o.weird },
    bin: { B: Uint8Array.from(o.bin) },
  }
}

const ordersTable = await createTable({
  TableName: `qb_orders_${suffix}`,
  KeySchema: [
    { AttributeName: 'PK', KeyType: 'HASH' },
    { AttributeName: 'SK', KeyType: 'RANGE' },
  ],
  AttributeDefinitions: [
    { AttributeName: 'PK', AttributeType: 'S' },
    { AttributeName: 'SK', AttributeType: 'S' },
    { AttributeName: 'GPK', AttributeType: 'S' },
    { AttributeName: 'amount', AttributeType: 'N' },
  ],
  GlobalSecondaryIndexes: [
    {
      IndexName: 'by_amount',
      KeySchema: [
        { AttributeName: 'GPK', KeyType: 'HASH' },
        { AttributeName: 'amount', KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: 'ALL' },
    },
  ],
})
const blobsTable = await createTable({
  TableName: `qb_blobs_${suffix}`,
  KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
  AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'B' }],
})
const numbersTable = await createTable({
  TableName: `qb_numbers_${suffix}`,
  KeySchema: [{ AttributeName: 'n', KeyType: 'HASH' }],
  AttributeDefinitions: [{ AttributeName: 'n', AttributeType: 'N' }],
})

const blobs = [[0xfb, 0xff, 0xbf], [0x00], [0x01, 0x02, 0x03], [0xff]]
const numbers = [`${BIG}78`, `${BIG}79`, '-1.5', '0.001', '7', '1E+100']
await Promise.all([
  ...orders.map((o) => dynamo.raw.send(new PutItemCommand({ TableName: ordersTable.name, Item: toItem(o) }))),
  ...blobs.map((b, i) =>
    dynamo.raw.send(
      new PutItemCommand({
        TableName: blobsTable.name,
        Item: { id: { B: Uint8Array.from(b) }, label: { S: `blob${i}` } },
      }),
    ),
  ),
  ...numbers.map((n) => dynamo.raw.send(new PutItemCommand({ TableName: numbersTable.name, Item: { n: { N: n }, label: { S: n } } }))),
])

/** The orders a Query answers, by SK, in the order DynamoDB returned them. */
async function query(params: QueryParams): Promise<string[]> {
  const out = await dynamo.raw.send(new QueryCommand({ TableName: ordersTable.name, ...buildQuery(ordersTable, params) }))
  // Every expectation below assumes one page holds every match.
  if (out.LastEvaluatedKey) throw new Error('Query answered more than one page')
  return (out.Items ?? []).map((item) => item.SK!.S!)
}

/** Exact comparison of decimal amounts with at most one fractional digit, in tenths. */
const tenths = (n: string): bigint => {
  const [int, frac = ''] = n.split('.')
  return BigInt(int + frac.padEnd(1, '0'))
}
const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)
const byAmount = (a: Order, b: Order) => {
  const d = tenths(a.amount) - tenths(b.amount)
  return d < 0n ? -1 : d > 0n ? 1 : 0
}

t.test('the table read with every sort-key operator, in both orders', async (t) => {
  t.ok(ordersTable.indexes.find((i) => i.name === 'by_amount')?.key.sort?.type === 'N', 'the GSI has an N sort key')
  const cases: Array<[Omit<QueryParams, 'pk'>, (sk: string) => boolean]> = [
    [{}, () => true],
    [{ sk: 'ORDER#007' }, (sk) => sk === 'ORDER#007'],
    [{ sk: 'ORDER#007', skOp: 'eq' }, (sk) => sk === 'ORDER#007'],
    [{ sk: 'ORDER#011', skOp: 'lt' }, (sk) => sk < 'ORDER#011'],
    [{ sk: 'ORDER#011', skOp: 'le' }, (sk) => sk <= 'ORDER#011'],
    [{ sk: 'ORDER#011', skOp: 'gt' }, (sk) => sk > 'ORDER#011'],
    [{ sk: 'ORDER#011', skOp: 'ge' }, (sk) => sk >= 'ORDER#011'],
    [{ sk: 'ORDER#003', skOp: 'between', sk2: 'ORDER#017' }, (sk) => sk >= 'ORDER#003' && sk <= 'ORDER#017'],
    [{ sk: 'RETURN#', skOp: 'begins_with' }, (sk) => sk.startsWith('RETURN#')],
    [{ sk: 'ORDER#01', skOp: 'begins_with' }, (sk) => sk.startsWith('ORDER#01')],
  ]
  for (const [params, match] of cases) {
    const expected = orders
      .filter((o) => o.PK === 'CUST#1' && match(o.SK))
      .map((o) => o.SK)
      .sort(byString)
    t.ok(expected.length > 0, `${JSON.stringify(params)} matches something`)
    t.same(await query({ pk: 'CUST#1', ...params }), expected, `${JSON.stringify(params)} asc`)
    t.same(await query({ pk: 'CUST#1', ...params, order: 'desc' }), [...expected].reverse(), `${JSON.stringify(params)} desc`)
  }
  t.same(await query({ pk: 'CUST#3' }), [], 'an unknown partition is empty')
})

t.test('a GSI with an N sort key, with every operator it allows, in both orders', async (t) => {
  const big77 = `${BIG}77`
  const cases: Array<[Omit<QueryParams, 'pk'>, (o: Order) => boolean]> = [
    [{}, () => true],
    [{ sk: '-15' }, (o) => o.amount === '-15'],
    [{ sk: '-15.0', skOp: 'eq' }, (o) => o.amount === '-15'],
    [{ sk: '0', skOp: 'lt' }, (o) => tenths(o.amount) < 0n],
    [{ sk: '0', skOp: 'le' }, (o) => tenths(o.amount) <= 0n],
    [{ sk: '3', skOp: 'gt' }, (o) => tenths(o.amount) > 30n],
    [{ sk: '3e0', skOp: 'ge' }, (o) => tenths(o.amount) >= 30n],
    [{ sk: '-10.5', skOp: 'between', sk2: '12' }, (o) => tenths(o.amount) >= -105n && tenths(o.amount) <= 120n],
    [{ sk: big77, skOp: 'gt' }, (o) => o.amount === `${BIG}78`],
    [{ sk: big77, skOp: 'ge' }, (o) => o.amount.startsWith(BIG)],
    [{ sk: big77, skOp: 'eq' }, (o) => o.amount === big77],
  ]
  for (const [params, match] of cases) {
    const expected = orders
      .filter((o) => o.GPK === 'EVEN' && match(o))
      .sort(byAmount)
      .map((o) => o.SK)
    t.ok(expected.length > 0, `${JSON.stringify(params)} matches something`)
    t.same(await query({ pk: 'EVEN', index: 'by_amount', ...params }), expected, `${JSON.stringify(params)} asc`)
    t.same(await query({ pk: 'EVEN', index: 'by_amount', ...params, order: 'desc' }), [...expected].reverse(), 'desc')
  }
  const odd = await query({
    pk: 'ODD',
    index: 'by_amount',
    filter: '[{"attr":"SK","op":"begins_with","value":"RETURN#"}]',
  })
  t.same(
    odd,
    orders
      .filter((o) => o.GPK === 'ODD' && o.SK.startsWith('RETURN#'))
      .sort(byAmount)
      .map((o) => o.SK),
    "filtering a GSI query on the table's sort key",
  )
})

t.test('filters with every operator, through Query and Scan', async (t) => {
  const number38 = `${BIG}24`
  const cases: Array<[string, (o: Order) => boolean]> = [
    ['[{"attr":"status","op":"eq","value":"open"}]', (o) => o.status === 'open'],
    ['[{"attr":"status","op":"ne","value":"open"}]', (o) => o.status !== 'open'],
    ['[{"attr":"status","op":"lt","value":"open"}]', (o) => o.status < 'open'],
    ['[{"attr":"size","op":"lt","value":10}]', (o) => o.size < 10],
    ['[{"attr":"size","op":"le","value":10}]', (o) => o.size <= 10],
    ['[{"attr":"size","op":"gt","value":4.0e1}]', (o) => o.size > 40],
    ['[{"attr":"size","op":"ge","value":{"N":"40"}}]', (o) => o.size >= 40],
    ['[{"attr":"note","op":"begins_with","value":"note 1"}]', (o) => o.note?.startsWith('note 1') === true],
    ['[{"attr":"note","op":"contains","value":"2"}]', (o) => o.note?.includes('2') === true],
    ['[{"attr":"tags","op":"contains","value":"red"}]', (o) => o.tags.includes('red')],
    ['[{"attr":"scores","op":"contains","value":7}]', (o) => o.scores.includes(7)],
    ['[{"attr":"note","op":"exists"}]', (o) => o.note !== undefined],
    ['[{"attr":"note","op":"not_exists"}]', (o) => o.note === undefined],
    ['[{"attr":"opt","op":"eq","value":null}]', (o) => o.opt === null],
    ['[{"attr":"opt","op":"exists"}]', (o) => o.opt !== undefined],
    ['[{"attr":"flag","op":"eq","value":true}]', (o) => o.flag],
    ['[{"attr":"meta.region","op":"eq","value":"eu"}]', (o) => o.region === 'eu'],
    ['[{"attr":"meta.level.n","op":"ge","value":5}]', (o) => o.level >= 5],
    ['[{"attr":"meta.level.missing","op":"not_exists"}]', () => true],
    [`[{"attr":"big","op":"gt","value":${number38}}]`, (o) => BigInt(o.big) > BigInt(number38)],
    [`[{"attr":"big","op":"le","value":{"N":"${number38}"}}]`, (o) => BigInt(o.big) <= BigInt(number38)],
    [`[{"attr":"big","op":"eq","value":${number38}}]`, (o) => o.big === number38],
    [`[{"attr":${JSON.stringify(WEIRD)},"op":"eq","value":"w1"}]`, (o) => o.weird === 'w1'],
    ['[{"attr":"bin","op":"begins_with","value":{"B":"_w"}}]', (o) => o.bin[0] === 0xff],
    [
      '[{"attr":"status","op":"eq","value":"open"},{"attr":"meta.region","op":"eq","value":"eu"},{"attr":"note","op":"exists"}]',
      (o) => o.status === 'open' && o.region === 'eu' && o.note !== undefined,
    ],
  ]
  for (const [filter, match] of cases) {
    const scanExpected = orders
      .filter(match)
      .map((o) => o.SK)
      .sort(byString)
    t.ok((scanExpected.length > 0 && scanExpected.length < orders.length) || filter.includes('missing'), `${filter} is selective`)
    const queryExpected = orders
      .filter((o) => o.PK === 'CUST#1' && match(o))
      .map((o) => o.SK)
      .sort(byString)
    t.same(await query({ pk: 'CUST#1', filter }), queryExpected, `query ${filter}`)

    const scan = await dynamo.raw.send(new ScanCommand({ TableName: ordersTable.name, ...buildScanFilter(filter) }))
    t.notOk(scan.LastEvaluatedKey)
    t.same((scan.Items ?? []).map((item) => item.SK!.S!).sort(byString), scanExpected, `scan ${filter}`)
  }
})

t.test('GetItem with keys built from path and query strings', async (t) => {
  const get = async (table: TableDescription, pk: string, sk?: string) => {
    const out = await dynamo.raw.send(new GetItemCommand({ TableName: table.name, Key: keyFromParams(table, pk, sk) }))
    return out.Item
  }
  t.equal((await get(ordersTable, 'CUST#1', 'ORDER#007'))?.size?.N, '7', 'S partition and sort key')
  t.equal(await get(ordersTable, 'CUST#1', 'ORDER#999'), undefined, 'absent')

  t.equal((await get(numbersTable, `${BIG}78`))?.label?.S, `${BIG}78`, 'a 38-digit N key finds exactly its item')
  t.equal((await get(numbersTable, `${BIG}79`))?.label?.S, `${BIG}79`, 'and its neighbour its own')
  t.equal((await get(numbersTable, `${BIG}7.8e1`))?.label?.S, `${BIG}78`, 'the same number in another form')
  t.equal((await get(numbersTable, '-1.50'))?.label?.S, '-1.5')
  t.equal((await get(numbersTable, '1e-3'))?.label?.S, '0.001')
  t.equal((await get(numbersTable, '+7'))?.label?.S, '7', 'a leading + works')
  t.equal((await get(numbersTable, '1e100'))?.label?.S, '1E+100')
  t.equal(await get(numbersTable, `${BIG}80`), undefined)

  for (const [i, b] of blobs.entries()) {
    const buf = Buffer.from(b)
    t.equal((await get(blobsTable, buf.toString('base64url')))?.label?.S, `blob${i}`, `base64url ${buf.toString('base64url')}`)
    t.equal((await get(blobsTable, buf.toString('base64')))?.label?.S, `blob${i}`, `base64 ${buf.toString('base64')}`)
  }
  t.equal(await get(blobsTable, 'AAA'), undefined, 'other bytes find nothing')
})

t.test('a B partition key query finds exactly its item', async (t) => {
  for (const [i, b] of blobs.entries()) {
    const out = await dynamo.raw.send(
      new QueryCommand({
        TableName: blobsTable.name,
        ...buildQuery(blobsTable, { pk: Buffer.from(b).toString('base64url') }),
      }),
    )
    t.same(
      out.Items?.map((item) => item.label?.S),
      [`blob${i}`],
    )
  }
})
