import type { Transform } from 'node:stream'
import type { AttributeValue } from '@aws-sdk/client-dynamodb'
import { stringify } from 'csv-stringify'
import { type AttributeMap, itemToDocumentJson, jsonNumberText } from '../dynamo/item-json.ts'
import type { KeyDefinition } from '../dynamo/table-description.ts'
import { projectItem } from './fields.ts'
import type { ExportFormat } from './model.ts'

/*
 * What segments write, per format:
 * - jsonl: the final lines, one `view=document` JSON text per item; the file is the parts joined.
 * - csv: "cell lines", one JSON object per item mapping each attribute name to its finished CSV cell
 *   text. CSV rows cannot be written before the header, and the header is the union of every item's
 *   attribute names, known only once every segment is done. So segments do the per-item work (types to
 *   cell text, neutralising) in parallel and remember the names they saw in their checkpoints; the
 *   assembler then writes the header and streams the cell lines through csv-stringify in one pass.
 */

// Characters that make a spreadsheet read a cell as a formula (OWASP "CSV injection"): = + - @, tab, CR.
const FORMULA_START = /^[=+\-@\t\r]/

/** A cell that a spreadsheet would take for a formula, prefixed with a single quote. */
export function neutralise(cell: string): string {
  return FORMULA_START.test(cell) ? `'${cell}` : cell
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
}

/** One value as `view=document` JSON text (item-json renders maps, so wrap it in one and unwrap). */
function documentJson(value: AttributeValue): string {
  const wrapped = itemToDocumentJson({ v: value })
  return wrapped.slice(5, -1) // `{"v":` ... `}`
}

/**
 * One attribute's CSV cell: strings and binary (base64) as text, neutralised; numbers as their exact
 * text (a number is never a formula, so a negative one keeps its sign); booleans true / false; NULL as
 * an empty cell, like an absent attribute; maps, lists and sets as `view=document` JSON text.
 */
export function cellOf(value: AttributeValue): string {
  if (value.S !== undefined) return neutralise(value.S)
  if (value.N !== undefined) return jsonNumberText(value.N)
  if (value.BOOL !== undefined) return value.BOOL ? 'true' : 'false'
  if (value.NULL !== undefined) return ''
  if (value.B !== undefined) return neutralise(base64(value.B))
  return documentJson(value)
}

/** One item as a cell line's object: attribute name to cell text. */
export function cellsOf(item: AttributeMap): Record<string, string> {
  const cells: Record<string, string> = {}
  for (const name of Object.keys(item)) {
    // defineProperty: an attribute named __proto__ must become a key, not the prototype.
    Object.defineProperty(cells, name, { value: cellOf(item[name]!), enumerable: true, writable: true, configurable: true })
  }
  return cells
}

/**
 * What a segment writes for one page of items, in the format's part encoding (see above). For CSV
 * the attribute names are added to `names`.
 */
export function renderPage(format: ExportFormat, items: readonly AttributeMap[], names?: Set<string>, fields?: readonly string[]): Buffer {
  let out = ''
  // Chosen columns: each item becomes its paths' values, in the paths' order (the CSV header is the paths).
  if (fields) items = items.map((item) => projectItem(item, fields))
  if (format === 'jsonl') {
    for (const item of items) out += `${itemToDocumentJson(item)}\n`
  } else {
    for (const item of items) {
      if (names && !fields) for (const name of Object.keys(item)) names.add(name)
      out += `${JSON.stringify(cellsOf(item))}\n`
    }
  }
  return Buffer.from(out)
}

/**
 * The CSV header: the key attributes first (the table's partition and sort key, then the index's),
 * then every other attribute name seen, in code-point order, so the same data always gives the same
 * header whatever the segment count or scan order.
 */
export function csvColumns(names: Iterable<string>, keys: KeyDefinition[]): string[] {
  const first: string[] = []
  for (const key of keys) {
    for (const attr of [key.partition.name, key.sort?.name]) if (attr !== undefined && !first.includes(attr)) first.push(attr)
  }
  const rest = [...new Set(names)].filter((n) => !first.includes(n)).sort()
  return [...first, ...rest]
}

/**
 * The CSV writer: RFC 4180 through csv-stringify (header first, CRLF line ends, a field with a comma,
 * quote, CR or LF quoted, quotes doubled). Takes rows from {@link cellRows}.
 */
export function csvWriter(columns: readonly string[]): Transform {
  return stringify({
    header: true,
    // Rows are arrays, so names with dots or brackets are never read as property paths.
    columns: columns.map(neutralise),
    record_delimiter: 'windows',
    // csv-stringify quotes for the record delimiter (CRLF) only; RFC 4180 readers need a lone CR or LF quoted too.
    quoted_match: /[\r\n]/,
  })
}

/** Cell lines (one JSON object per line) as CSV rows in the header's column order; absent cells empty. */
export async function* cellRows(lines: AsyncIterable<string>, columns: readonly string[]): AsyncGenerator<string[]> {
  for await (const line of lines) {
    if (!line) continue
    const cells = JSON.parse(line) as Record<string, string>
    yield columns.map((c) => (Object.hasOwn(cells, c) ? cells[c]! : ''))
  }
}
