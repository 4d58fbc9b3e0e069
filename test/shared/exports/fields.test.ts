import t from 'tap'
import { exportProjection, MAX_EXPORT_FIELDS, parseExportFields, projectItem, valueAt } from '../../../src/shared/exports/fields.ts'
import { renderPage } from '../../../src/shared/exports/formats.ts'

const item = {
  PK: { S: 'c1' },
  SK: { N: '12345678901234567890123456789012345678' },
  b: { M: { c: { S: 'deep' }, 'x[0]': { S: 'odd name' } } },
  tags: { L: [{ S: 'first' }, { M: { k: { BOOL: true } } }] },
  ['__proto__']: { S: 'named __proto__' },
}

t.test('parseExportFields takes an array or comma-separated text and keeps the order', async (t) => {
  t.same(parseExportFields(['b.c', 'PK', 'tags[1].k']), ['b.c', 'PK', 'tags[1].k'])
  t.same(parseExportFields(' SK , PK,tags[0]'), ['SK', 'PK', 'tags[0]'])
  t.same(parseExportFields(Array.from({ length: MAX_EXPORT_FIELDS }, (_, i) => `a${i}`)).length, MAX_EXPORT_FIELDS, 'exactly the maximum is fine')
})

t.test('parseExportFields refuses with DC_ERR_VALIDATION', async (t) => {
  const bad: unknown[] = [
    Array.from({ length: MAX_EXPORT_FIELDS + 1 }, (_, i) => `a${i}`),
    [],
    '',
    'a,,b',
    ['a..b'],
    ['.a'],
    ['a['],
    ['a[x]'],
    ['a', 'a'],
    [1],
    { a: 1 },
    ['x'.repeat(256)],
  ]
  for (const input of bad) t.throws(() => parseExportFields(input), { code: 'DC_ERR_VALIDATION' }, JSON.stringify(input).slice(0, 60))
})

t.test('valueAt follows names and list indexes; projectItem keeps the paths in order and leaves absent ones out', async (t) => {
  t.same(valueAt(item, 'b.c'), { S: 'deep' })
  t.same(valueAt(item, 'tags[1].k'), { BOOL: true })
  t.equal(valueAt(item, 'tags[5]'), undefined)
  t.equal(valueAt(item, 'PK.x'), undefined, 'a scalar has no nested attributes')
  t.equal(valueAt(item, 'toString'), undefined, 'inherited properties are not attributes')
  const projected = projectItem(item, ['SK', 'missing', 'b.c', '__proto__', 'PK'])
  t.same(Object.keys(projected), ['SK', 'b.c', '__proto__', 'PK'])
  t.same(projected.SK, item.SK)
})

t.test('renderPage with fields: CSV cells and JSONL keys are exactly the chosen paths, in order', async (t) => {
  const jsonl = renderPage('jsonl', [item], undefined, ['tags[0]', 'SK', 'nope']).toString()
  t.equal(jsonl, '{"tags[0]":"first","SK":12345678901234567890123456789012345678}\n', 'every digit kept')
  const names = new Set<string>()
  const csv = renderPage('csv', [item], names, ['b.c', 'PK']).toString()
  t.equal(csv, '{"b.c":"deep","PK":"c1"}\n')
  t.equal(names.size, 0, 'the header is the fields: no names are collected')
})

t.test('exportProjection reads only the chosen paths and the keys; list elements through their whole list', async (t) => {
  const table = {
    name: 't',
    status: 'ACTIVE',
    key: { partition: { name: 'PK', type: 'S' as const }, sort: { name: 'SK', type: 'N' as const } },
    attributeDefinitions: [],
    indexes: [{ name: 'byStatus', kind: 'GSI' as const, key: { partition: { name: 'status', type: 'S' as const } }, projection: { type: 'ALL' } }],
    billingMode: 'PAY_PER_REQUEST',
    stream: { enabled: false },
    itemCount: 0,
    sizeBytes: 0,
  }
  const p = exportProjection(table, ['note', 'tags[1].k', 'tags[0]', 'b.c'], 'byStatus')
  const resolved = p.ProjectionExpression.split(', ').map((part) => part.replace(/#p\d+/g, (id) => p.ExpressionAttributeNames[id]!))
  t.same(resolved, ['note', 'tags', 'b.c', 'PK', 'SK', 'status'], 'lists read whole, keys of the table and the index added')
  t.ok(
    Object.keys(p.ExpressionAttributeNames).every((id) => id.startsWith('#p')),
    'placeholders apart from the query builder ones',
  )
  t.same(exportProjection(table, ['a.b[0]', 'a.b.c']).ProjectionExpression.split(', ').length, 3, 'a.b covers a.b.c: one path, then the keys')
  t.throws(() => exportProjection(table, ['b', 'b.c']), { code: 'DC_ERR_VALIDATION' }, 'overlapping paths')
  t.throws(() => exportProjection(table, ['PK.x']), { code: 'DC_ERR_VALIDATION' }, 'a path into a key attribute')
  t.throws(() => parseExportFields(['a b']), { code: 'DC_ERR_VALIDATION' }, 'no spaces in names')
  t.throws(() => parseExportFields(['a,b']), { code: 'DC_ERR_VALIDATION' }, 'no commas in names')
})
