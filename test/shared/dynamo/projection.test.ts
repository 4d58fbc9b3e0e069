import t from 'tap'
import { fieldsParam, MAX_FIELDS, parseFields, projectionFor } from '../../../src/shared/dynamo/projection.ts'
import type { TableDescription } from '../../../src/shared/dynamo/table-description.ts'

const table = {
  name: 'orders',
  key: { partition: { name: 'PK', type: 'S' }, sort: { name: 'SK', type: 'S' } },
  indexes: [
    { name: 'byStatus', kind: 'GSI', key: { partition: { name: 'status', type: 'S' }, sort: { name: 'total', type: 'N' } }, projection: { type: 'ALL' } },
  ],
} as unknown as TableDescription

t.test('parseFields: names, nested paths and list indexes', async (t) => {
  const paths = parseFields('a, b.c ,tags[0],m.l[2][3].x')
  t.same(
    paths.map((p) => p.text),
    ['a', 'b.c', 'tags[0]', 'm.l[2][3].x'],
  )
  t.same(paths[3]!.steps, [{ name: 'm' }, { name: 'l' }, { index: 2 }, { index: 3 }, { name: 'x' }])
  t.equal(fieldsParam(paths), 'a,b.c,tags[0],m.l[2][3].x', 'canonical text: spaces gone')
})

t.test('parseFields refuses bad paths with DC_ERR_VALIDATION', async (t) => {
  for (const bad of ['', 'a,', 'a..b', '.a', 'a.', '[0]', 'a[x]', 'a[0', 'a]', 'a b', 'a,a', 'a,a.b', 'a.b,a', 'l[1],l[1].x', 'x'.repeat(256)]) {
    t.throws(() => parseFields(bad), { code: 'DC_ERR_VALIDATION' }, JSON.stringify(bad))
  }
  t.throws(() => parseFields(Array.from({ length: 33 }, () => 'a').join('.')), { code: 'DC_ERR_VALIDATION' }, 'deeper than 32')
  t.equal(parseFields(Array.from({ length: MAX_FIELDS }, (_, i) => `f${i}`).join(',')).length, MAX_FIELDS)
  t.throws(() => parseFields(Array.from({ length: 200 }, (_, i) => `f${i}`).join(',')), { code: 'DC_ERR_VALIDATION', message: /200 paths; at most 100/ })
  t.same(parseFields('l[1],l[2],a.b,a.c').length, 4, 'siblings do not overlap')
})

t.test('projectionFor: placeholders only, the key attributes always added', async (t) => {
  t.same(projectionFor(table, parseFields('a,b.c,tags[0]')), {
    ProjectionExpression: '#p0, #p1.#p2, #p3[0], #p4, #p5',
    ExpressionAttributeNames: { '#p0': 'a', '#p1': 'b', '#p2': 'c', '#p3': 'tags', '#p4': 'PK', '#p5': 'SK' },
  })
  t.same(
    projectionFor(table, parseFields('SK,a.a')).ExpressionAttributeNames,
    { '#p0': 'SK', '#p1': 'a', '#p2': 'PK' },
    'a named key is not repeated; a name repeated in a path shares its placeholder',
  )
  t.equal(projectionFor(table, parseFields('x'), 'byStatus').ProjectionExpression, '#p0, #p1, #p2, #p3, #p4', 'index keys too')
  t.throws(() => projectionFor(table, parseFields('x'), 'nope'), { code: 'DC_ERR_INDEX_NOT_FOUND' })
  t.throws(() => projectionFor(table, parseFields('PK.x')), { code: 'DC_ERR_VALIDATION' }, 'keys are scalars')
  t.throws(() => projectionFor(table, parseFields('total.x'), 'byStatus'), { code: 'DC_ERR_VALIDATION' })
})
