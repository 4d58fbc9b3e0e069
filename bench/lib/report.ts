import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'

/** pass/fail against a target, 'reported' for figures without one. */
export type Verdict = 'pass' | 'FAIL' | 'reported' | 'not built' | 'not measured' | 'skipped' | 'error'

/** One line of the table; `data` keeps the numbers behind it for the JSON file. */
export interface Row {
  scenario: string
  figure: string
  reference: string
  ratio: string
  target: string
  verdict: Verdict
  data?: Record<string, unknown>
}

const COLUMNS = ['scenario', 'figure', 'reference', 'ratio', 'target', 'pass/fail'] as const

const cells = (row: Row) => [row.scenario, row.figure, row.reference, row.ratio, row.target, row.verdict]

/** A plain-text table for the terminal. */
export function textTable(rows: readonly Row[]): string {
  const lines = [[...COLUMNS], ...rows.map(cells)]
  const widths = COLUMNS.map((_, i) => Math.max(...lines.map((l) => [...l[i]!].length)))
  const fmt = (l: readonly string[]) =>
    l
      .map((c, i) => c + ' '.repeat(widths[i]! - [...c].length))
      .join(' | ')
      .trimEnd()
  return [fmt(lines[0]!), widths.map((w) => '-'.repeat(w)).join('-|-'), ...lines.slice(1).map(fmt)].join('\n')
}

/** The same table in Markdown. */
export function markdownTable(rows: readonly Row[]): string {
  const esc = (c: string) => c.replaceAll('|', '\\|')
  return [`| ${COLUMNS.join(' | ')} |`, `|${COLUMNS.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${cells(r).map(esc).join(' | ')} |`)].join('\n')
}

export function writeJson(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`)
}

const START = '<!-- bench:results:start (written by npm run bench; edits inside are overwritten) -->'
const END = '<!-- bench:results:end -->'

const PREAMBLE = `# Benchmarks

Written by \`npm run bench\` (see bench/run.ts); the section below is rewritten by every full run.

`

/** Rewrites the results section of BENCHMARKS.md, creating the file (with its preamble) if needed. */
export function updateBenchmarksMd(path: string, section: string): void {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    text = `${PREAMBLE}${START}\n${END}\n`
  }
  const block = `${START}\n${section.trim()}\n${END}`
  const [from, to] = [text.indexOf(START), text.indexOf(END)]
  text = from >= 0 && to > from ? text.slice(0, from) + block + text.slice(to + END.length) : `${text.trimEnd()}\n\n${block}\n`
  writeFileSync(path, text)
}
