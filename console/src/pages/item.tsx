import { useState } from 'preact/hooks'
import { api, qs } from '../api.ts'
import { href } from '../route.ts'
import type { Identity } from '../session.ts'
import { CacheBadge, ErrorBox, Loading, useLoad } from '../ui.tsx'
import { documentText, type Item } from '../values.ts'

/** One item: the document view and the typed view side by side, both lossless. */
export function ItemPage({ table, query }: { who: Identity; table: string; query: URLSearchParams }) {
  const pk = query.get('pk') ?? ''
  const sk = query.get('sk') ?? undefined
  const [refresh, setRefresh] = useState(0)
  const item = useLoad(
    (signal) => api<Item>(`/tables/${encodeURIComponent(table)}/items/${encodeURIComponent(pk)}${qs({ sk, view: 'typed' })}`, { signal, refresh: refresh > 0 }),
    [table, pk, sk, refresh],
  )
  return (
    <section>
      <p class="crumbs">
        <a href={href(['tables'])}>Tables</a> / <a href={href(['tables', table])}>{table}</a> / item
      </p>
      <h1>
        {pk}
        {sk !== undefined ? <span class="muted"> · {sk}</span> : null} <CacheBadge answer={item.data} />
      </h1>
      <div class="toolbar">
        <button type="button" onClick={() => setRefresh((n) => n + 1)} title="Read from DynamoDB and refresh the cache (Cache-Control: no-cache)">
          Refresh from DynamoDB
        </button>
      </div>
      <ErrorBox error={item.error} />
      {item.loading && !item.data ? <Loading what="Loading the item" /> : null}
      {item.data ? (
        <div class="side-by-side">
          <figure>
            <figcaption>Document (plain JSON, every digit kept)</figcaption>
            <pre class="doc" data-testid="document-view">
              {documentText(item.data.data)}
            </pre>
          </figure>
          <figure>
            <figcaption>Typed (DynamoDB attribute values)</figcaption>
            <pre class="doc" data-testid="typed-view">
              {JSON.stringify(item.data.data, null, 2)}
            </pre>
          </figure>
        </div>
      ) : null}
    </section>
  )
}
