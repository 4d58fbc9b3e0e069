import t, { type Test } from 'tap'
import {
  checkQueryFilter,
  type FilterInput,
  MAX_FILTER_ATTR_LENGTH,
  MAX_FILTER_CONDITIONS,
  MAX_IN_VALUES,
  parseFilter,
  parseFilterTree,
} from '../../../src/shared/dynamo/filter.ts'
import type { TableDescription } from '../../../src/shared/dynamo/table-description.ts'

const D38 = '12345678901234567890123456789012345678'

/** The value of the only condition of a one-condition `eq` filter whose value is the JSON text given. */
function eqValue(valueJson: string) {
  return parseFilter(`[{"attr":"a","op":"eq","value":${valueJson}}]`)[0]!.value
}

/** Asserts a filter is refused with DC_ERR_INVALID_FILTER and exactly this message. */
function refused(t: Test, filter: FilterInput, message: string | RegExp) {
  t.throws(() => parseFilterTree(filter), { code: 'DC_ERR_INVALID_FILTER', statusCode: 400, message }, String(filter).slice(0, 90))
}

t.test('number values keep every digit and follow the DynamoDB number rules', async (t) => {
  t.same(eqValue(D38), { N: D38 }, 'a JSON number with 38 digits, exactly')
  t.same(eqValue(`-0.${D38}e-5`), { N: `-0.${D38}e-5` }, 'kept as written')
  t.same(eqValue(`{"N":"+${D38}"}`), { N: D38 }, '{"N"} takes DynamoDB forms; the + goes')
  t.same(eqValue('{"N":"007.50"}'), { N: '007.50' })
  t.same(eqValue('-0'), { N: '-0' })
  t.same(eqValue('1E125'), { N: '1E125' })
  t.same(eqValue('1E-130'), { N: '1E-130' })
  refused(
    t,
    `[{"attr":"a","op":"eq","value":${D38}9}]`,
    `filter[0].value is not a DynamoDB number: "${D38}9" has 39 significant digits; DynamoDB keeps at most 38`,
  )
  refused(
    t,
    '[{"attr":"a","op":"eq","value":1E126}]',
    `filter[0].value is not a DynamoDB number: "1E126" is larger in magnitude than DynamoDB's maximum (about 1E+126)`,
  )
  refused(
    t,
    '[{"attr":"a","op":"lt","value":{"N":"1E-131"}}]',
    `filter[0].value is not a DynamoDB number: "1E-131" is smaller in magnitude than DynamoDB's minimum (1E-130)`,
  )
  refused(t, '[{"attr":"a","op":"eq","value":{"N":"1.2.3"}}]', 'filter[0].value is not a DynamoDB number: "1.2.3" is not a decimal number')
  refused(t, '[{"attr":"a","op":"eq","value":{"N":5}}]', /^filter\[0\]\.value must be a string, number, boolean, null/)
})

t.test('other values: strings, booleans, null, binary', async (t) => {
  t.same(eqValue('"x"'), { S: 'x' })
  t.same(eqValue('true'), { BOOL: true })
  t.same(eqValue('null'), { NULL: true })
  t.same(eqValue('{"B":"AQID"}'), { B: new Uint8Array([1, 2, 3]) })
  refused(t, '[{"attr":"a","op":"eq","value":{"B":"A"}}]', /^filter\[0\]\.value\.B is not base64url: "A" has a length/)
  refused(t, '[{"attr":"a","op":"eq","value":{"S":"x"}}]', /^filter\[0\]\.value must be a string, number/)
  refused(t, '[{"attr":"a","op":"eq","value":[1]}]', /^filter\[0\]\.value must be/)
})

t.test('each operator takes the value types DynamoDB allows with it', async (t) => {
  for (const op of ['lt', 'le', 'gt', 'ge']) {
    refused(t, `[{"attr":"a","op":"${op}","value":true}]`, `filter[0].value must be a string or a number for op ${op}`)
  }
  refused(t, '[{"attr":"a","op":"begins_with","value":5}]', 'filter[0].value must be a string for op begins_with')
  refused(t, '[{"attr":"a","op":"contains","value":null}]', 'filter[0].value must be a string or a number for op contains')
  refused(t, '[{"attr":"a","op":"eq"}]', 'filter[0].value is required with op eq')
  refused(t, '[{"attr":"a","op":"exists","value":1}]', 'filter[0].value must not be given with op exists')
  refused(
    t,
    '[{"attr":"a","op":"like","value":1}]',
    /^filter\[0\]\.op must be one of eq, ne, lt, le, gt, ge, begins_with, contains, exists, not_exists, in, attribute_type$/,
  )
  refused(t, '[{"attr":"a","op":"eq","value":1,"extra":2}]', 'filter[0] has the unknown property "extra"; allowed: attr, op, value, size')
  t.same(parseFilter('[{"attr":"a","op":"begins_with","value":{"B":"AQ"}}]')[0]!.value, {
    B: new Uint8Array([1]),
  })
  t.same(parseFilter('[{"attr":"a","op":"attribute_type","value":"NS"}]')[0], {
    attr: 'a',
    path: ['a'],
    op: 'attribute_type',
    value: { S: 'NS' },
  })
  t.same(parseFilter('[{"attr":"a","op":"ne","size":true,"value":3}]')[0], {
    attr: 'a',
    path: ['a'],
    op: 'ne',
    value: { N: '3' },
    size: true,
  })
  t.same(parseFilter('[{"attr":"a","op":"not_exists"}]')[0], { attr: 'a', path: ['a'], op: 'not_exists' })
})

t.test('limits: attr length and depth, values in `in`, conditions in all', async (t) => {
  const long = 'a'.repeat(MAX_FILTER_ATTR_LENGTH)
  t.equal(parseFilter(`[{"attr":"${long}","op":"exists"}]`)[0]!.attr, long, '255 characters are fine')
  refused(t, `[{"attr":"${long}b","op":"exists"}]`, 'filter[0].attr must be at most 255 characters; got 256')
  const deep = Array(32).fill('x').join('.')
  t.equal(parseFilter(`[{"attr":"${deep}","op":"exists"}]`)[0]!.path.length, 32, '32 levels are fine')
  refused(t, `[{"attr":"${deep}.x","op":"exists"}]`, 'filter[0].attr nests deeper than 32 levels')
  refused(t, '[{"attr":"a..b","op":"exists"}]', 'filter[0].attr "a..b" has an empty name between dots')
  refused(t, '[{"attr":"","op":"exists"}]', /^filter\[0\]\.attr must be a non-empty string/)
  refused(t, '[{"attr":7,"op":"exists"}]', /^filter\[0\]\.attr must be a non-empty string/)
  const values = (n: number) => Array.from({ length: n }, (_, i) => i).join(',')
  t.equal(parseFilter(`[{"attr":"a","op":"in","value":[${values(MAX_IN_VALUES)}]}]`)[0]!.values!.length, 100)
  refused(t, `[{"attr":"a","op":"in","value":[${values(101)}]}]`, 'filter[0].value lists 101 values; at most 100 are allowed with op in')
  const cond = { attr: 'a', op: 'exists' }
  t.equal(parseFilter(Array(MAX_FILTER_CONDITIONS).fill(cond)).length, 20, '20 conditions are fine')
  refused(t, Array(21).fill(cond), 'filter has 21 conditions; at most 20 are allowed')
  refused(t, [{ or: Array(11).fill(cond) }, { not: { and: Array(10).fill(cond) } }], 'filter has 21 conditions; at most 20 are allowed')
})

t.test('the tree keeps groups, and conditions in order with their positions', async (t) => {
  const tree = parseFilterTree('{"or":[{"attr":"a","op":"exists"},{"not":{"and":[{"attr":"b.c","op":"eq","value":1},{"attr":"d","op":"exists"}]}}]}')
  const a = { attr: 'a', path: ['a'], op: 'exists' }
  const bc = { attr: 'b.c', path: ['b', 'c'], op: 'eq', value: { N: '1' } }
  const d = { attr: 'd', path: ['d'], op: 'exists' }
  t.same(tree.root, { or: [a, { not: { and: [bc, d] } }] })
  t.same(
    tree.conditions.map((c) => c.at),
    ['filter.or[0]', 'filter.or[1].not.and[0]', 'filter.or[1].not.and[1]'],
  )
  t.same(parseFilterTree('[]'), { root: { and: [] }, conditions: [] }, 'an empty array is an empty AND')
  t.same(parseFilterTree([{ attr: 'a', op: 'exists' }]).root, { and: [a] }, 'a top-level array is an AND')
  refused(t, '{"attr":"a","op":"exists"}', /^filter must be a JSON array of \{ attr, op, value \} conditions, or one/)
  refused(t, '{"or":[],"and":[]}', /^filter must be a JSON array/)
})

t.test('JSON text is strict, and parsed input must be exact', async (t) => {
  refused(t, '[{"attr":"a","op":"eq","value":1,"value":2}]', 'filter is not valid JSON: duplicate property "value" at position 40')
  refused(t, '[{"attr":"a","op":"eq","value":01}]', "filter is not valid JSON: expected ',' or '}' at position 32")
  refused(t, '[{"attr":"a","op":"eq","value":+1}]', 'filter is not valid JSON: unexpected "+" at position 31')
  refused(t, "[{'attr':'a'}]", 'filter is not valid JSON: expected a property name at position 2')
  refused(t, '[] []', 'filter is not valid JSON: unexpected text after the value at position 3')
  refused(t, '[[[[[[[[[1]]]]]]]]]', 'filter is not valid JSON: nesting deeper than 8 levels at position 9')
  refused(t, [{ attr: 'a', op: 'eq', value: 2 ** 53 }], 'filter[0].value is an integer too large to be exact once parsed; send it as {"N": "<digits>"}')
  refused(t, [{ attr: 'a', op: 'eq', value: Number.NaN }], 'filter[0].value must be a finite number')
  refused(t, [{ attr: 'a', op: 'eq', value: new Date(0) }], 'filter[0].value is not a JSON value')
  t.same(parseFilter([{ attr: 'a', op: 'eq', value: 2 ** 53 - 1 }])[0]!.value, { N: '9007199254740991' })
  t.same(parseFilter([{ attr: 'a', op: 'eq', value: 10n ** 37n }])[0]!.value, { N: `1${'0'.repeat(37)}` }, 'a bigint is exact')
  t.same(parseFilter([{ attr: 'a', op: 'eq', value: { N: D38 } }])[0]!.value, { N: D38 })
  const proto = parseFilter('[{"attr":"__proto__","op":"eq","value":"x"}]')[0]!
  t.equal(proto.attr, '__proto__', 'a property named __proto__ is a plain attribute name')
})

t.test('checkQueryFilter: no condition on the queried key, no nested path under any key', async (t) => {
  const table = {
    name: 'orders',
    key: { partition: { name: 'PK', type: 'S' }, sort: { name: 'SK', type: 'N' } },
    indexes: [{ name: 'byStatus', key: { partition: { name: 'status', type: 'S' } } }],
  } as unknown as TableDescription
  const check =
    (filter: string, key = table.key) =>
    () =>
      checkQueryFilter(parseFilterTree(filter), table, key)
  t.throws(check('[{"attr":"SK","op":"gt","value":1}]'), {
    code: 'DC_ERR_INVALID_FILTER',
    message: "filter[0].attr 'SK' is a key attribute of this query: use pk, sk and skOp for it",
  })
  t.throws(check('{"or":[{"attr":"a","op":"exists"},{"attr":"PK","op":"exists"}]}'), {
    message: /^filter\.or\[1\]\.attr 'PK' is a key/,
  })
  t.throws(check('[{"attr":"status.x","op":"exists"}]'), {
    code: 'DC_ERR_INVALID_FILTER',
    message: "filter[0].attr 'status.x': key attribute 'status' is a scalar and has no nested attributes",
  })
  t.doesNotThrow(check('[{"attr":"status","op":"eq","value":"open"}]'), 'an index key may be filtered in a base-table query')
  t.doesNotThrow(check('[{"attr":"SK","op":"gt","value":1}]', table.indexes[0]!.key), 'and a table key in an index query')
  t.throws(check('[{"attr":"status","op":"eq","value":"open"}]', table.indexes[0]!.key), {
    message: /'status' is a key attribute of this query/,
  })
})
