import t from 'tap'
import { buildQuery, buildScanFilter, parseFilter, parseFilterTree } from '../../../src/shared/dynamo/query-builder.ts'
import type { TableDescription } from '../../../src/shared/dynamo/table-description.ts'

const unit = {
  name: 'unit',
  key: { partition: { name: 'PK', type: 'S' }, sort: { name: 'SK', type: 'N' } },
  indexes: [],
} as unknown as TableDescription

t.test('or, and, not, in, size and attribute_type become one expression, placeholders only', async (t) => {
  const f = buildScanFilter(
    JSON.stringify({
      or: [
        { attr: 'status', op: 'in', value: ['open', 'held', 'BIG'] },
        { and: [{ attr: 'tags', op: 'gt', size: true, value: 2 }, { not: { attr: 'n', op: 'attribute_type', value: 'S' } }] },
      ],
    }).replace('"BIG"', '12345678901234567890123456789012345678'),
  )
  t.same(f, {
    FilterExpression: '#k0 IN (:v0, :v1, :v2) OR (size(#k1) > :v3 AND (NOT attribute_type(#k2, :v4)))',
    ExpressionAttributeNames: { '#k0': 'status', '#k1': 'tags', '#k2': 'n' },
    ExpressionAttributeValues: {
      ':v0': { S: 'open' },
      ':v1': { S: 'held' },
      ':v2': { N: '12345678901234567890123456789012345678' },
      ':v3': { N: '2' },
      ':v4': { S: 'S' },
    },
  })
  t.equal(
    buildScanFilter('[{"attr":"a","op":"exists"},{"or":[{"attr":"b","op":"eq","value":1},{"attr":"c","op":"eq","value":2}]}]').FilterExpression,
    'attribute_exists(#k0) AND (#k1 = :v0 OR #k2 = :v1)',
    'the old array form: an AND list, groups inside it',
  )
  t.equal(buildScanFilter('{"not":{"attr":"a","op":"exists"}}').FilterExpression, '(NOT attribute_exists(#k0))')
  t.equal(buildScanFilter('{"and":[{"attr":"a","op":"exists"}]}').FilterExpression, 'attribute_exists(#k0)')
  t.equal(parseFilter('{"or":[{"attr":"a","op":"exists"},{"not":{"attr":"b","op":"exists"}}]}').length, 2, 'conditions in order')
  t.same(parseFilterTree([{ attr: 'a', op: 'in', value: [1, 'x'] }]).conditions[0]!.condition.values, [{ N: '1' }, { S: 'x' }])
})

t.test('caps and mistakes are DC_ERR_INVALID_FILTER naming the place', async (t) => {
  const cond = '{"attr":"a","op":"exists"}'
  const cases: Array<[string, RegExp]> = [
    [`[{"attr":"a","op":"in","value":[${Array.from({ length: 101 }, (_, i) => i).join(',')}]}]`, /^filter\[0\]\.value lists 101 values; at most 100/],
    ['[{"attr":"a","op":"in","value":[]}]', /non-empty array/],
    ['[{"attr":"a","op":"in","value":1}]', /non-empty array/],
    ['[{"attr":"a","op":"in","value":[[1]]}]', /filter\[0\]\.value\[0\] must be/],
    ['{"or":[{"attr":"a","op":"gt","size":true,"value":"x"}]}', /^filter\.or\[0\]\.value must be a number with size$/],
    ['[{"attr":"a","op":"begins_with","size":true,"value":1}]', /op must be one of eq, ne, lt, le, gt, ge with size/],
    ['[{"attr":"a","op":"eq","size":false,"value":1}]', /size must be true/],
    ['[{"attr":"a","op":"attribute_type","value":"X"}]', /must be one of S, SS, N, NS, B, BS, BOOL, NULL, L, M/],
    ['{"or":[]}', /^filter\.or must be a non-empty array/],
    ['{"or":[1]}', /^filter\.or\[0\] must be an object/],
    ['{"or":[{"attr":"a","op":"exists"}],"and":[]}', /filter must be a JSON array/],
    ['[{"or":[{"attr":"a","op":"exists"}],"attr":"b"}]', /^filter\[0\] must have only the property "or"/],
    ['{"not":[{"attr":"a","op":"exists"}]}', /^filter\.not must be an object/],
    ['{"attr":"a","op":"exists"}', /filter must be a JSON array/],
    [`{"or":[${Array(11).fill(cond).join(',')},{"and":[${Array(10).fill(cond).join(',')}]}]}`, /filter has 21 conditions; at most 20/],
    ['{"or":[{"or":[{"or":[{"or":[{"attr":"a","op":"exists"}]}]}]}]}', /nesting deeper than 8 levels/],
  ]
  for (const [filter, message] of cases) t.throws(() => buildScanFilter(filter), { code: 'DC_ERR_INVALID_FILTER', message }, filter.slice(0, 80))
  t.equal(parseFilter(`{"or":[${Array(20).fill(cond).join(',')}]}`).length, 20, '20 across groups are fine')
  t.equal(
    parseFilterTree(`[{"attr":"a","op":"in","value":[${Array.from({ length: 100 }, (_, i) => i).join(',')}]}]`).conditions[0]!.condition.values!.length,
    100,
  )
  t.throws(() => buildQuery(unit, { pk: 'p', filter: '{"or":[{"attr":"a","op":"exists"},{"attr":"SK","op":"in","value":[1]}]}' }), {
    code: 'DC_ERR_INVALID_FILTER',
    message: /^filter\.or\[1\]\.attr 'SK' is a key attribute of this query/,
  })
})
