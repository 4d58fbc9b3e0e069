import type { KeyDef } from './values.ts'

/** One operation as POST /tables/:table/batches takes it. */
export type Operation = { put: Record<string, unknown> } | { delete: Record<string, unknown> }
export interface Problem {
  /** 1-based line of the file (JSONL, CSV) or position in the array (JSON). */
  line: number
  message: string
}
export interface ParsedBatch {
  operations: Operation[]
  /** The file line of each operation, to place the API's own findings (by index) on lines. */
  lines: number[]
  format: 'typed' | 'document'
  problems: Problem[]
}

export const MAX_OPERATIONS = 10_000
const TYPED_KEYS = new Set(['S', 'N', 'B', 'BOOL', 'NULL', 'SS', 'NS', 'BS', 'L', 'M'])

/** True when every attribute is a DynamoDB attribute value ({"S": "x"}), so the file is in the typed format. */
function looksTyped(attrs: Record<string, unknown>): boolean {
  const values = Object.values(attrs)
  return (
    values.length > 0 &&
    values.every((v) => v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 1 && TYPED_KEYS.has(Object.keys(v)[0]!))
  )
}

/** Typed files carry numbers as strings ({"N": "1.50"}), so plain JSON.parse loses no digit of them. */
const parseJson = (text: string): unknown => JSON.parse(text)

function checkKey(attrs: Record<string, unknown>, key: KeyDef, typed: boolean, exact: boolean): string | null {
  const names = [key.partition, key.sort].filter(Boolean) as Array<{ name: string; type: string }>
  for (const k of names) {
    const v = attrs[k.name]
    if (v === undefined) return `missing key attribute ${k.name}`
    if (typed) {
      const t = v && typeof v === 'object' ? Object.keys(v)[0] : undefined
      if (t !== k.type) return `key attribute ${k.name} must be of type ${k.type}, got ${t ?? typeof v}`
    } else {
      const ok = k.type === 'N' ? typeof v === 'number' : k.type === 'S' ? typeof v === 'string' : false
      if (!ok)
        return k.type === 'B'
          ? `key attribute ${k.name} is binary: use the typed format`
          : `key attribute ${k.name} must be a ${k.type === 'N' ? 'number' : 'string'}`
    }
  }
  if (exact) {
    const extra = Object.keys(attrs).filter((a) => !names.some((k) => k.name === a))
    if (extra.length > 0) return `a delete names only the key; remove ${extra.join(', ')}`
  }
  return null
}

function checkOperation(op: unknown, key: KeyDef | null, typed: boolean): string | null {
  if (!op || typeof op !== 'object' || Array.isArray(op)) return 'an operation must be an object { "put": item } or { "delete": key }'
  const kinds = Object.keys(op)
  if (kinds.length !== 1 || (kinds[0] !== 'put' && kinds[0] !== 'delete')) return 'an operation has exactly one of "put" or "delete"'
  const attrs = (op as Record<string, unknown>)[kinds[0]!]
  if (!attrs || typeof attrs !== 'object' || Array.isArray(attrs)) return `"${kinds[0]}" must be an object of attributes`
  // Without the key schema (a key that may not read the table) the API checks the keys on submit.
  return key ? checkKey(attrs as Record<string, unknown>, key, typed, kinds[0] === 'delete') : null
}

/** CSV of puts: a header row of attribute names (`name:N` marks a number), one item per row. */
function csvOperations(text: string, key: KeyDef | null): { ops: Array<{ line: number; op: unknown }>; problems: Problem[] } {
  const rows = parseCsv(text)
  const problems: Problem[] = []
  const [header, ...body] = rows
  if (!header) return { ops: [], problems: [{ line: 1, message: 'the CSV has no header row' }] }
  const columns = header.cells.map((h) => {
    const [name = '', type] = h.split(':')
    const keyType = name === key?.partition.name ? key.partition.type : name === key?.sort?.name ? key.sort.type : undefined
    return { name, type: (type ?? keyType ?? 'S').toUpperCase() }
  })
  const ops: Array<{ line: number; op: unknown }> = []
  for (const row of body) {
    if (row.cells.length === 1 && row.cells[0] === '') continue
    if (row.cells.length !== columns.length) {
      problems.push({ line: row.line, message: `${row.cells.length} cells, the header has ${columns.length}` })
      continue
    }
    const item: Record<string, unknown> = {}
    columns.forEach((c, i) => {
      const cell = row.cells[i]!
      if (cell === '') return
      if (c.type === 'N' && !/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(cell)) problems.push({ line: row.line, message: `${c.name}: "${cell}" is not a number` })
      item[c.name] = { [c.type === 'N' ? 'N' : c.type === 'B' ? 'B' : 'S']: cell }
    })
    ops.push({ line: row.line, op: { put: item } })
  }
  return { ops, problems }
}

function parseCsv(text: string): Array<{ line: number; cells: string[] }> {
  const rows: Array<{ line: number; cells: string[] }> = []
  let cells: string[] = []
  let cell = ''
  let quoted = false
  let line = 1
  let rowLine = 1
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"'
        i++
      } else if (c === '"') quoted = false
      else {
        if (c === '\n') line++
        cell += c
      }
    } else if (c === '"') quoted = true
    else if (c === ',') {
      cells.push(cell)
      cell = ''
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++
      cells.push(cell)
      rows.push({ line: rowLine, cells })
      cells = []
      cell = ''
      line++
      rowLine = line
    } else cell += c
  }
  if (cell !== '' || cells.length > 0) rows.push({ line: rowLine, cells: [...cells, cell] })
  return rows
}

/**
 * Reads a file of operations (a JSON array or { "operations": [...] }, JSONL one per line, or a CSV of
 * puts) and checks each against the table's key before anything is sent.
 */
export function parseBatchFile(name: string, text: string, key: KeyDef | null): ParsedBatch {
  const problems: Problem[] = []
  let entries: Array<{ line: number; op: unknown }> = []
  let forcedTyped = false
  if (/\.csv$/i.test(name)) {
    const csv = csvOperations(text, key)
    entries = csv.ops
    problems.push(...csv.problems)
    forcedTyped = true
  } else if (/^\s*[[{]/.test(text) && !/\.jsonl$/i.test(name)) {
    try {
      const doc = parseJson(text) as unknown
      const list = Array.isArray(doc) ? doc : (doc as { operations?: unknown })?.operations
      if (!Array.isArray(list)) problems.push({ line: 1, message: 'expected an array of operations or { "operations": [...] }' })
      else entries = list.map((op, i) => ({ line: i + 1, op }))
    } catch (err) {
      problems.push({ line: 1, message: `not JSON: ${(err as Error).message}` })
    }
  } else {
    text.split(/\r?\n/).forEach((raw, i) => {
      if (!raw.trim()) return
      try {
        entries.push({ line: i + 1, op: parseJson(raw) })
      } catch (err) {
        problems.push({ line: i + 1, message: `not JSON: ${(err as Error).message}` })
      }
    })
  }
  const first = entries[0]?.op as Record<string, Record<string, unknown>> | undefined
  const typed = forcedTyped || (first ? looksTyped(first.put ?? first.delete ?? {}) : true)
  for (const { line, op } of entries) {
    const problem = checkOperation(op, key, typed)
    if (problem) problems.push({ line, message: problem })
  }
  if (entries.length === 0 && problems.length === 0) problems.push({ line: 1, message: 'the file has no operations' })
  if (entries.length > MAX_OPERATIONS) problems.push({ line: MAX_OPERATIONS + 1, message: `at most ${MAX_OPERATIONS} operations per batch` })
  problems.sort((a, b) => a.line - b.line)
  return { operations: entries.map((e) => e.op as Operation), lines: entries.map((e) => e.line), format: typed ? 'typed' : 'document', problems }
}
