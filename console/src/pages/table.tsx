import { useState } from 'preact/hooks'
import { api } from '../api.ts'
import { href } from '../route.ts'
import { can, type Identity } from '../session.ts'
import { CacheBadge, ErrorBox, formatBytes, formatTime, Loading, useLoad } from '../ui.tsx'
import type { KeyDef } from '../values.ts'
import { ItemsBrowser } from './items.tsx'
import { QueryBuilder } from './query.tsx'

export interface TableDetails {
  name: string
  status: string
  key: KeyDef
  indexes: Array<{ name: string; kind: 'GSI' | 'LSI'; key: KeyDef; projection: { type: string }; status?: string }>
  billingMode: string
  provisionedThroughput?: { readCapacityUnits: number; writeCapacityUnits: number }
  stream: { enabled: boolean; viewType?: string }
  itemCount: number
  sizeBytes: number
  createdAt?: string
}

const keyText = (k: KeyDef) => `${k.partition.name} (${k.partition.type})${k.sort ? ` · ${k.sort.name} (${k.sort.type})` : ''}`

export function TablePage({ who, table, tab, query }: { who: Identity; table: string; tab: string; query: URLSearchParams }) {
  const details = useLoad((signal) => api<TableDetails>(`/tables/${encodeURIComponent(table)}`, { signal }), [table])
  const d = details.data?.data
  return (
    <section>
      <p class="crumbs">
        <a href={href(['tables'])}>Tables</a> / {table}
      </p>
      <h1>
        {table} <CacheBadge answer={details.data} />
      </h1>
      <ErrorBox error={details.error} />
      {details.loading && !d ? <Loading what="Loading the table" /> : null}
      {d ? (
        <>
          <dl class="facts" data-testid="table-details">
            <dt>Key</dt>
            <dd>{keyText(d.key)}</dd>
            <dt>Status</dt>
            <dd>{d.status}</dd>
            <dt>Billing</dt>
            <dd>
              {d.billingMode}
              {d.provisionedThroughput ? ` (${d.provisionedThroughput.readCapacityUnits} RCU / ${d.provisionedThroughput.writeCapacityUnits} WCU)` : ''}
            </dd>
            <dt>Stream</dt>
            <dd>{d.stream.enabled ? `on (${d.stream.viewType ?? '?'})` : 'off'}</dd>
            <dt>Items</dt>
            <dd>
              {d.itemCount} <span class="muted">as DynamoDB reports it</span>
            </dd>
            <dt>Size</dt>
            <dd>{formatBytes(d.sizeBytes)}</dd>
            {d.createdAt ? (
              <>
                <dt>Created</dt>
                <dd>{formatTime(d.createdAt)}</dd>
              </>
            ) : null}
            <dt>Indexes</dt>
            <dd>
              {d.indexes.length === 0 ? (
                'none'
              ) : (
                <ul class="plain">
                  {d.indexes.map((i) => (
                    <li key={i.name}>
                      <b>{i.name}</b> {i.kind}: {keyText(i.key)}, projection {i.projection.type}
                    </li>
                  ))}
                </ul>
              )}
            </dd>
          </dl>
          {can(who, 'admin') ? <TableAdmin table={table} /> : null}
          <nav class="tabs" aria-label="Table views">
            <a href={href(['tables', table, 'items'])} class={tab === 'items' ? 'tab active' : 'tab'} aria-current={tab === 'items' ? 'page' : undefined}>
              Items
            </a>
            <a href={href(['tables', table, 'query'])} class={tab === 'query' ? 'tab active' : 'tab'} aria-current={tab === 'query' ? 'page' : undefined}>
              Query
            </a>
          </nav>
          {tab === 'query' ? <QueryBuilder table={d} query={query} /> : <ItemsBrowser table={d} query={query} />}
        </>
      ) : null}
    </section>
  )
}

/** Admin only: invalidate this table's cache, or prefetch it now. */
export function TableAdmin({ table }: { table: string }) {
  const [note, setNote] = useState<string | null>(null)
  const [error, setError] = useState<unknown>(null)
  const run = async (what: 'invalidate' | 'warmup') => {
    setError(null)
    setNote(null)
    try {
      if (what === 'invalidate') {
        await api(`/tables/${encodeURIComponent(table)}/cache`, { method: 'DELETE' })
        setNote(`Everything cached for ${table} is now invalid.`)
      } else {
        const r = await api<{ jobId: string }>('/cache/warmup', { method: 'POST', body: { tables: [table] } })
        setNote(`Warm-up queued (job ${r.data.jobId}).`)
      }
    } catch (err) {
      setError(err)
    }
  }
  return (
    <div class="admin-bar" data-testid="admin-controls">
      <button type="button" class="danger" onClick={() => run('invalidate')}>
        Invalidate {table}
      </button>
      <button type="button" onClick={() => run('warmup')}>
        Warm up {table}
      </button>
      {note ? (
        <span class="note" role="status">
          {note}
        </span>
      ) : null}
      <ErrorBox error={error} />
    </div>
  )
}
