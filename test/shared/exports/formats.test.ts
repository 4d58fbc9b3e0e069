import { Readable } from 'node:stream'
import { text } from 'node:stream/consumers'
import { isDeepStrictEqual } from 'node:util'
import fc from 'fast-check'
import t from 'tap'
import { itemToDocumentJson } from '../../../src/shared/dynamo/item-json.ts'
import { cellOf, cellRows, cellsOf, csvColumns, csvWriter, neutralise, renderPage } from '../../../src/shared/exports/formats.ts'
import { parseCsv } from '../../helpers/csv.ts'
import { everyTypeItem } from '../../helpers/tables.ts'

const toCsv = async (columns: string[], lines: string[]) => text(Readable.from(cellRows(Readable.from(lines), columns)).pipe(csvWriter(columns)))

t.test('cells that begin with = + - @ (or tab, CR) are neutralised with a single quote', async (t) => {
  for (const cell of ['=1+2', '+1', '-1', '@SUM(A1)', '\tx', '\r=x', '=HYPERLINK("http://x")']) t.equal(neutralise(cell), `'${cell}`, JSON.stringify(cell))
  for (const cell of ['a=b', '', 'plain', "'already", ' =x']) t.equal(neutralise(cell), cell, JSON.stringify(cell))
  t.equal(cellOf({ S: '=cmd' }), "'=cmd", 'strings are neutralised')
  t.equal(cellOf({ N: '-5' }), '-5', 'a negative number is a number, not a formula: kept as is')
  t.equal(cellOf({ B: new Uint8Array([0xfb, 0xff]) }), "'+/8=", 'base64 that starts with + is neutralised')
})

t.test('every DynamoDB type becomes one cell: scalars as text, nested values and sets as JSON text', async (t) => {
  const cells = cellsOf(everyTypeItem({ PK: { S: 'p' }, SK: { N: '1' } }))
  t.same(cells, {
    PK: 'p',
    SK: '1',
    s: 'héllo "world" \n\u0001',
    n: '12345678901234567890.123456789012345678',
    neg: '-0.000000000000000000000000000000000001',
    b: 'AAEC/f7/',
    ss: '["a","b"]',
    ns: '[1,99999999999999999999999999999999999999]',
    bs: '["AQ==","AgM="]',
    l: '["x",1.5,null,{"deep":[false]}]',
    m: '{"a":"b","nested":{"n":7}}',
    t: 'true',
    nul: '',
  })
  t.equal(cellOf({ N: '+007.50' }), '7.50', 'numbers are exact JSON number text, every digit kept')
})

t.test('JSONL pages are the lossless document view, one line per item', async (t) => {
  const items = [everyTypeItem({ PK: { S: 'a' } }), { PK: { S: 'b' }, v: { N: '1' } }]
  t.equal(renderPage('jsonl', items).toString(), `${items.map((i) => itemToDocumentJson(i)).join('\n')}\n`)
  t.equal(renderPage('jsonl', []).length, 0, 'an empty page writes nothing')
  const names = new Set<string>()
  const lines = renderPage('csv', items, names).toString().trimEnd().split('\n')
  t.equal(lines.length, 2)
  t.same(JSON.parse(lines[1]!), { PK: 'b', v: '1' }, 'CSV parts hold one cell object per item')
  t.same([...names].sort(), [...Object.keys(items[0]!), 'v'].sort(), 'and the page adds the names it saw')
})

t.test('the header is the key attributes first, then every other name in code-point order', async (t) => {
  const table = { partition: { name: 'PK', type: 'S' as const }, sort: { name: 'SK', type: 'N' as const } }
  const index = { partition: { name: 'status', type: 'S' as const }, sort: { name: 'SK', type: 'N' as const } }
  t.same(csvColumns(['z', 'SK', 'a', 'PK', 'B', 'status', 'a'], [table]), ['PK', 'SK', 'B', 'a', 'status', 'z'])
  t.same(csvColumns(['z', 'SK', 'PK', 'status'], [table, index]), ['PK', 'SK', 'status', 'z'], 'then the index keys')
  t.same(csvColumns([], [table]), ['PK', 'SK'], 'an empty export still has the key columns')
})

t.test('CSV is RFC 4180: CRLF, quoting of comma, quote, CR and LF, doubled quotes, absent cells empty', async (t) => {
  const lines = [
    JSON.stringify({ PK: 'a,b', SK: 'say "hi"', x: 'line\nbreak' }),
    JSON.stringify({ PK: 'cr\ronly', SK: 'é ü 漢字 🎉' }),
    '{"PK":"plain","__proto__":"proto cell"}',
  ]
  const csv = await toCsv(['PK', 'SK', 'x', '__proto__', '=evil'], lines)
  t.equal(csv.split('\r\n')[0], "PK,SK,x,__proto__,'=evil", 'header names are neutralised too')
  t.ok(csv.endsWith('\r\n'))
  t.match(csv, /"a,b","say ""hi""","line\nbreak"/)
  t.match(csv, /"cr\ronly"/)
  t.same(parseCsv(csv), [
    ['PK', 'SK', 'x', '__proto__', "'=evil"],
    ['a,b', 'say "hi"', 'line\nbreak', '', ''],
    ['cr\ronly', 'é ü 漢字 🎉', '', '', ''],
    ['plain', '', '', 'proto cell', ''],
  ])
})

t.test('any cells survive the CSV round trip (fast-check)', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.array(fc.string({ unit: 'binary' }), { minLength: 3, maxLength: 3 }), { maxLength: 20 }), async (rows) => {
      const columns = ['a', 'b', 'c']
      const lines = rows.map((r) => JSON.stringify({ a: r[0], b: r[1], c: r[2] }))
      return isDeepStrictEqual(parseCsv(await toCsv(columns, lines)), [columns, ...rows])
    }),
    { numRuns: 200 },
  )
  t.pass('200 random tables of any UTF-16 text parse back to the same cells')
})
