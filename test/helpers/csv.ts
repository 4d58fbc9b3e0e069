/**
 * A strict RFC 4180 reader for tests: CRLF (or LF) between records, fields with a comma, quote, CR or
 * LF quoted, quotes doubled inside quotes. Throws on anything else, so a writer bug cannot hide.
 */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = []
  let row: string[] = []
  let i = 0
  const n = text.length
  const plainEnd = /[,\r\n"]/g
  while (i < n) {
    let field: string
    if (text.charCodeAt(i) === 34) {
      field = ''
      i++
      for (;;) {
        const quote = text.indexOf('"', i)
        if (quote < 0) throw new Error('unterminated quoted field')
        field += text.slice(i, quote)
        if (text.charCodeAt(quote + 1) === 34) {
          field += '"'
          i = quote + 2
          continue
        }
        i = quote + 1
        break
      }
    } else {
      plainEnd.lastIndex = i
      const m = plainEnd.exec(text)
      const end = m ? m.index : n
      if (m && m[0] === '"') throw new Error(`quote inside an unquoted field at ${end}`)
      field = text.slice(i, end)
      i = end
    }
    row.push(field)
    const c = text[i]
    if (c === ',') {
      i++
      if (i === n) row.push('')
      continue
    }
    if (c === '\r' && text[i + 1] === '\n') i += 2
    else if (c === '\n') i++
    else if (i < n) throw new Error(`unexpected ${JSON.stringify(c)} after a field at ${i}`)
    rows.push(row)
    row = []
  }
  if (row.length > 0) rows.push(row)
  return rows
}
