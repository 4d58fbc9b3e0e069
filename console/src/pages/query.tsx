import { useEffect, useState } from 'preact/hooks'
import { api, qs } from '../api.ts'
import { go, href } from '../route.ts'
import { CacheBadge, ErrorBox, Loading, useLoad } from '../ui.tsx'
import { Items, type Page, Pager, useCursors } from './items.tsx'
import type { TableDetails } from './table.tsx'

const SK_OPS = [
  ['', 'any'],
  ['eq', '='],
  ['lt', '<'],
  ['le', '≤'],
  ['gt', '>'],
  ['ge', '≥'],
  ['between', 'between'],
  ['begins_with', 'begins with'],
] as const
const FILTER_OPS = ['eq', 'ne', 'lt', 'le', 'gt', 'ge', 'begins_with', 'contains', 'exists', 'not_exists'] as const

interface FilterRow {
  attr: string
  op: string
  /** As typed; sent as a number when `type` is N (its text kept), else as a string. */
  value: string
  type: 'S' | 'N' | 'BOOL'
}

/** The filter as the API takes it: JSON text, numbers written as their digits (never through a double). */
export function filterJson(rows: FilterRow[]): string | undefined {
  const used = rows.filter((r) => r.attr.trim())
  if (used.length === 0) return undefined
  const parts = used.map((r) => {
    const head = `{"attr":${JSON.stringify(r.attr.trim())},"op":${JSON.stringify(r.op)}`
    if (r.op === 'exists' || r.op === 'not_exists') return `${head}}`
    const value =
      r.type === 'N' && /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(r.value.trim())
        ? r.value.trim()
        : r.type === 'BOOL'
          ? String(r.value.trim() === 'true')
          : JSON.stringify(r.value)
    return `${head},"value":${value}}`
  })
  return `[${parts.join(',')}]`
}

function parseFilter(text: string | null): FilterRow[] {
  if (!text) return []
  try {
    // Only to show the rows again: numbers are re-read from the text so no digit is lost.
    const rows = JSON.parse(text.replace(/"value":(-?\d[\d.eE+-]*)/g, '"value":{"$n":"$1"}')) as Array<{ attr: string; op: string; value?: unknown }>
    return rows.map((r) => {
      const v = r.value as { $n?: string } | string | boolean | undefined
      if (v && typeof v === 'object' && '$n' in v) return { attr: r.attr, op: r.op, value: v.$n ?? '', type: 'N' as const }
      if (typeof v === 'boolean') return { attr: r.attr, op: r.op, value: String(v), type: 'BOOL' as const }
      return { attr: r.attr, op: r.op, value: v === undefined ? '' : String(v), type: 'S' as const }
    })
  } catch {
    return []
  }
}

/**
 * The query builder. Its whole state is the URL (#/tables/t/query?pk=..&skOp=..): a query can be shared
 * as a link, and the API key is never part of it.
 */
export function QueryBuilder({ table, query }: { table: TableDetails; query: URLSearchParams }) {
  const applied = Object.fromEntries(query.entries()) as Record<string, string>
  const [form, setForm] = useState(applied)
  const [filters, setFilters] = useState<FilterRow[]>(() => parseFilter(query.get('filter')))
  useEffect(() => {
    setForm(applied)
    setFilters(parseFilter(query.get('filter')))
  }, [query.toString()])
  const [cursors, setCursors] = useCursors(`${table.name}?${query.toString()}`)

  const index = form.index ?? ''
  const keyDef = index ? (table.indexes.find((i) => i.name === index)?.key ?? table.key) : table.key
  const field = (name: string) => ({
    value: form[name] ?? '',
    onInput: (e: Event) => setForm({ ...form, [name]: (e.target as HTMLInputElement).value }),
  })

  const run = (e: Event) => {
    e.preventDefault()
    const params: Record<string, string | undefined> = { ...form, filter: filterJson(filters) }
    if (!params.skOp) params.sk = undefined
    if (params.skOp !== 'between') params.sk2 = undefined
    go(href(['tables', table.name, 'query'], params))
  }

  const cursor = cursors[cursors.length - 1]
  const ready = Boolean(applied.pk)
  const result = useLoad(
    (signal) =>
      ready
        ? api<Page>(
            `/tables/${encodeURIComponent(table.name)}/query${qs({
              pk: applied.pk,
              skOp: applied.skOp,
              sk: applied.sk,
              sk2: applied.sk2,
              index: applied.index,
              filter: applied.filter,
              order: applied.order,
              limit: applied.limit,
              cursor,
              view: 'typed',
            })}`,
            { signal },
          )
        : Promise.resolve(null),
    [table.name, query.toString(), cursor],
  )

  const setRow = (i: number, change: Partial<FilterRow>) => setFilters(filters.map((r, n) => (n === i ? { ...r, ...change } : r)))

  return (
    <div class="browser">
      <form class="query-form" onSubmit={run} aria-label="Query">
        <label>
          Index
          <select value={index} onChange={(e) => setForm({ ...form, index: (e.target as HTMLSelectElement).value })}>
            <option value="">table</option>
            {table.indexes.map((i) => (
              <option key={i.name} value={i.name}>
                {i.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          {keyDef.partition.name} <span class="muted">({keyDef.partition.type}) =</span>
          <input name="pk" required {...field('pk')} />
        </label>
        {keyDef.sort ? (
          <>
            <label>
              {keyDef.sort.name} <span class="muted">({keyDef.sort.type})</span>
              <select name="skOp" value={form.skOp ?? ''} onChange={(e) => setForm({ ...form, skOp: (e.target as HTMLSelectElement).value })}>
                {SK_OPS.map(([op, label]) => (
                  <option key={op} value={op}>
                    {label}
                  </option>
                ))}
              </select>
            </label>
            {form.skOp ? (
              <label>
                value
                <input name="sk" required {...field('sk')} />
              </label>
            ) : null}
            {form.skOp === 'between' ? (
              <label>
                and
                <input name="sk2" required {...field('sk2')} />
              </label>
            ) : null}
          </>
        ) : null}
        <label>
          Order
          <select name="order" value={form.order ?? 'asc'} onChange={(e) => setForm({ ...form, order: (e.target as HTMLSelectElement).value })}>
            <option value="asc">ascending</option>
            <option value="desc">descending</option>
          </select>
        </label>
        <label>
          Limit
          <input name="limit" type="number" min={1} max={1000} placeholder="50" {...field('limit')} />
        </label>
        <fieldset class="filters">
          <legend>Filter (all must hold)</legend>
          {filters.map((r, i) => (
            <div class="filter-row" key={i} data-testid="filter-row">
              <input
                aria-label={`Filter ${i + 1} attribute`}
                placeholder="attribute"
                value={r.attr}
                onInput={(e) => setRow(i, { attr: (e.target as HTMLInputElement).value })}
              />
              <select aria-label={`Filter ${i + 1} operator`} value={r.op} onChange={(e) => setRow(i, { op: (e.target as HTMLSelectElement).value })}>
                {FILTER_OPS.map((op) => (
                  <option key={op} value={op}>
                    {op}
                  </option>
                ))}
              </select>
              {r.op === 'exists' || r.op === 'not_exists' ? null : (
                <>
                  <select
                    aria-label={`Filter ${i + 1} type`}
                    value={r.type}
                    onChange={(e) => setRow(i, { type: (e.target as HTMLSelectElement).value as FilterRow['type'] })}
                  >
                    <option value="S">string</option>
                    <option value="N">number</option>
                    <option value="BOOL">boolean</option>
                  </select>
                  <input
                    aria-label={`Filter ${i + 1} value`}
                    placeholder="value"
                    value={r.value}
                    onInput={(e) => setRow(i, { value: (e.target as HTMLInputElement).value })}
                  />
                </>
              )}
              <button type="button" class="link" onClick={() => setFilters(filters.filter((_, n) => n !== i))} aria-label={`Remove filter ${i + 1}`}>
                Remove
              </button>
            </div>
          ))}
          <button type="button" onClick={() => setFilters([...filters, { attr: '', op: 'eq', value: '', type: 'S' }])}>
            Add filter
          </button>
        </fieldset>
        <div class="actions">
          <button type="submit" class="primary">
            Run query
          </button>
          <span class="muted">The link in the address bar is this query; share it (it never holds the key).</span>
        </div>
      </form>
      <ErrorBox error={result.error} />
      {!ready ? <p class="muted">Enter a partition key value and run the query.</p> : null}
      {result.loading && ready ? <Loading what="Querying" /> : null}
      {result.data ? (
        <>
          <div class="toolbar">
            <span data-testid="result-count">{result.data.data.count} items</span>
            <Pager
              pageNo={cursors.length}
              hasNext={Boolean(result.data.data.cursor)}
              busy={result.loading}
              onPrevious={() => cursors.length > 1 && setCursors(cursors.slice(0, -1))}
              onNext={() => result.data?.data.cursor && setCursors([...cursors, result.data.data.cursor])}
            />
            <CacheBadge answer={result.data} />
          </div>
          <Items table={table} keyDef={keyDef} answer={result.data} layout="grid" />
        </>
      ) : null}
    </div>
  )
}
