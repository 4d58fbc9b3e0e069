import { useEffect, useMemo, useRef, useState } from 'preact/hooks'
import { type Answer, api, qs } from '../api.ts'
import { go, href } from '../route.ts'
import { CacheBadge, Empty, ErrorBox, Loading, useLoad, Value } from '../ui.tsx'
import { columnsOf, type Item, type KeyDef, keyParam } from '../values.ts'
import type { TableDetails } from './table.tsx'

export interface Page {
  items: Item[]
  count: number
  cursor: string | null
}

/** The link to an item's own view, from its key attributes. */
export function itemHref(table: TableDetails, item: Item): string {
  return href(['tables', table.name, 'item'], {
    pk: keyParam(item[table.key.partition.name]),
    sk: table.key.sort ? keyParam(item[table.key.sort.name]) : undefined,
  })
}

const columnsKey = (table: string) => `dynacache.columns.${table}`

/** Scan pages of a table or an index, as cards or a grid; previous pages through the cursors seen. */
export function ItemsBrowser({ table, query }: { table: TableDetails; query: URLSearchParams }) {
  const index = query.get('index') ?? ''
  const limit = Number(query.get('limit') ?? 25)
  const layout = query.get('layout') === 'cards' ? 'cards' : 'grid'
  const [cursors, setCursors] = useCursors(`${table.name}|${index}|${limit}`)
  const pageNo = cursors.length
  const cursor = cursors[cursors.length - 1]

  const page = useLoad(
    (signal) => api<Page>(`/tables/${encodeURIComponent(table.name)}/items${qs({ limit, cursor, index, view: 'typed' })}`, { signal }),
    [table.name, index, limit, cursor],
  )
  const set = (change: Record<string, string | number | undefined>) => go(href(['tables', table.name, 'items'], { index, limit, layout, ...change }))
  const keyDef = index ? (table.indexes.find((i) => i.name === index)?.key ?? table.key) : table.key

  const next = () => page.data?.data.cursor && setCursors([...cursors, page.data.data.cursor])
  const previous = () => cursors.length > 1 && setCursors(cursors.slice(0, -1))

  // n / p page through when focus is not in a field.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const el = e.target as HTMLElement
      if (e.ctrlKey || e.metaKey || e.altKey || ['INPUT', 'SELECT', 'TEXTAREA'].includes(el.tagName)) return
      if (e.key === 'n') next()
      if (e.key === 'p') previous()
    }
    addEventListener('keydown', onKey)
    return () => removeEventListener('keydown', onKey)
  })

  return (
    <div class="browser">
      <div class="toolbar">
        <label>
          Source{' '}
          <select value={index} onChange={(e) => set({ index: (e.target as HTMLSelectElement).value || undefined })}>
            <option value="">table</option>
            {table.indexes.map((i) => (
              <option key={i.name} value={i.name}>
                index {i.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Page size{' '}
          <select value={String(limit)} onChange={(e) => set({ limit: (e.target as HTMLSelectElement).value })}>
            {[10, 25, 50, 100, 250].map((n) => (
              <option key={n} value={String(n)}>
                {n}
              </option>
            ))}
          </select>
        </label>
        <fieldset class="segmented">
          <legend class="sr-only">Layout</legend>
          <button type="button" aria-pressed={layout === 'grid'} onClick={() => set({ layout: 'grid' })}>
            Grid
          </button>
          <button type="button" aria-pressed={layout === 'cards'} onClick={() => set({ layout: 'cards' })}>
            Cards
          </button>
        </fieldset>
        <Pager pageNo={pageNo} hasNext={Boolean(page.data?.data.cursor)} onPrevious={previous} onNext={next} busy={page.loading} />
        <CacheBadge answer={page.data} />
      </div>
      <ErrorBox error={page.error} />
      {page.loading && !page.data ? <Loading what="Scanning" /> : null}
      {page.data ? <Items table={table} keyDef={keyDef} answer={page.data} layout={layout} /> : null}
    </div>
  )
}

/**
 * The cursors seen so far: cursors[n] fetches page n+1 (undefined for the first page). A new scope (another
 * table, index, page size or query) starts again at page 1 in the same render, so a cursor is never sent
 * with a read it was not issued for.
 */
export function useCursors(scope: string): [Array<string | undefined>, (next: Array<string | undefined>) => void] {
  const paging = useRef<{ scope: string; cursors: Array<string | undefined> }>({ scope, cursors: [undefined] })
  const [, rerender] = useState(0)
  if (paging.current.scope !== scope) paging.current = { scope, cursors: [undefined] }
  return [
    paging.current.cursors,
    (next) => {
      paging.current = { scope, cursors: next }
      rerender((n) => n + 1)
    },
  ]
}

export function Pager(props: { pageNo: number; hasNext: boolean; onPrevious: () => void; onNext: () => void; busy: boolean }) {
  return (
    <fieldset class="pager">
      <legend class="sr-only">Pages</legend>
      <button type="button" onClick={props.onPrevious} disabled={props.pageNo <= 1 || props.busy} title="Previous page (p)">
        ‹ Previous
      </button>
      <span data-testid="page-number">Page {props.pageNo}</span>
      <button type="button" onClick={props.onNext} disabled={!props.hasNext || props.busy} title="Next page (n)">
        Next ›
      </button>
    </fieldset>
  )
}

/** Arrow keys move between the rows' Open links; Enter opens one. */
function moveFocus(e: KeyboardEvent) {
  if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return
  const links = [...(e.currentTarget as HTMLElement).querySelectorAll<HTMLAnchorElement>('a[data-open]')]
  const at = links.indexOf(document.activeElement as HTMLAnchorElement)
  if (at < 0) return
  e.preventDefault()
  links[Math.min(links.length - 1, Math.max(0, at + (e.key === 'ArrowDown' ? 1 : -1)))]?.focus()
}

/** A page of items, as a grid with chosen columns or as cards. */
export function Items({ table, keyDef, answer, layout }: { table: TableDetails; keyDef: KeyDef; answer: Answer<Page>; layout: 'grid' | 'cards' }) {
  const items = answer.data.items
  const all = useMemo(() => columnsOf(items, keyDef), [items, keyDef])
  const [hidden, setHidden] = useState<string[]>(() => JSON.parse(localStorage.getItem(columnsKey(table.name)) ?? '[]'))
  const shown = all.filter((c) => !hidden.includes(c))
  const toggle = (c: string) => {
    const next = hidden.includes(c) ? hidden.filter((h) => h !== c) : [...hidden, c]
    setHidden(next)
    localStorage.setItem(columnsKey(table.name), JSON.stringify(next))
  }
  if (items.length === 0) return <Empty>No items on this page.</Empty>
  const keys = [keyDef.partition.name, keyDef.sort?.name].filter(Boolean) as string[]

  if (layout === 'cards') {
    return (
      <div class="cards" data-testid="items">
        {items.map((item, n) => (
          <article class="card" key={n} data-testid="item">
            <h3>
              <a href={itemHref(table, item)}>{keys.map((k) => (item[k] ? <Value key={k} v={item[k]!} /> : null))}</a>
            </h3>
            <dl>
              {shown
                .filter((c) => !keys.includes(c) && item[c])
                .slice(0, 8)
                .map((c) => (
                  <div key={c}>
                    <dt>{c}</dt>
                    <dd>
                      <Value v={item[c]!} max={60} />
                    </dd>
                  </div>
                ))}
            </dl>
          </article>
        ))}
      </div>
    )
  }
  return (
    <>
      <details class="columns">
        <summary>
          Columns ({shown.length} of {all.length})
        </summary>
        <fieldset>
          <legend class="sr-only">Columns shown</legend>
          {all.map((c) => (
            <label key={c}>
              <input type="checkbox" checked={!hidden.includes(c)} onChange={() => toggle(c)} /> {c}
            </label>
          ))}
        </fieldset>
      </details>
      <div class="grid-wrap">
        <table class="grid items" data-testid="items">
          <thead>
            <tr>
              <th scope="col">
                <span class="sr-only">Open</span>
              </th>
              {shown.map((c) => (
                <th scope="col" key={c}>
                  {c}
                </th>
              ))}
            </tr>
          </thead>
          <tbody onKeyDown={moveFocus}>
            {items.map((item, n) => (
              <tr key={n} data-testid="item">
                <td>
                  <a href={itemHref(table, item)} aria-label={`Open item ${n + 1}`} data-open>
                    Open
                  </a>
                </td>
                {shown.map((c) => (
                  <td key={c}>{item[c] ? <Value v={item[c]!} /> : <span class="absent">—</span>}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  )
}
