import { useEffect, useRef, useState } from 'preact/hooks'
import { api, qs } from '../api.ts'
import { can, type Identity, storedKey } from '../session.ts'
import { followEvents } from '../sse.ts'
import { Empty, ErrorBox, formatBytes, formatTime, Loading, Progress, useLoad } from '../ui.tsx'

export interface ExportView {
  id: string
  table: string
  index: string | null
  format: 'csv' | 'jsonl'
  gzip: boolean
  filter: string | null
  notify: string | null
  status: 'queued' | 'processing' | 'completed' | 'failed' | 'cancelled'
  progress: number
  processedItems: number
  createdAt: string
  completedAt: string | null
  error: string | null
  bytes: number | null
  download: string | null
}

const TERMINAL = new Set(['completed', 'failed', 'cancelled'])
/** Files up to this size are fetched with the Authorization header into memory; larger ones stream to disk through the signed link. */
const BLOB_LIMIT = 256 * 1024 * 1024

function saveAs(url: string, name?: string) {
  const a = document.createElement('a')
  a.href = url
  if (name) a.download = name
  document.body.append(a)
  a.click()
  a.remove()
}

export function ExportsPage({ who }: { who: Identity; query: URLSearchParams }) {
  // Only a key that may read can list tables and indexes; an export-only key types the name.
  const readable = can(who, 'read')
  const tables = useLoad((signal) => (readable ? api<{ tables: string[] }>('/tables', { signal }) : Promise.resolve(null)), [readable])
  const list = useLoad((signal) => api<{ exports: ExportView[] }>(`/exports${qs({ limit: 25 })}`, { signal }), [])
  const [live, setLive] = useState<Record<string, Partial<ExportView>>>({})
  const following = useRef(new Map<string, AbortController>())

  // One event stream per unfinished export, fetch-based so the key stays in a header.
  useEffect(() => {
    const key = storedKey()
    if (!key || !list.data) return
    for (const x of list.data.data.exports) {
      if (TERMINAL.has(x.status) || following.current.has(x.id)) continue
      const ctl = new AbortController()
      following.current.set(x.id, ctl)
      void followEvents(`/exports/${encodeURIComponent(x.id)}/events`, {
        key,
        terminal: TERMINAL,
        signal: ctl.signal,
        onEvent: (e) => {
          const data = JSON.parse(e.data) as Partial<ExportView>
          setLive((all) => ({ ...all, [x.id]: { ...all[x.id], ...data } }))
        },
      }).finally(() => following.current.delete(x.id))
    }
  }, [list.data])
  useEffect(
    () => () => {
      for (const ctl of following.current.values()) ctl.abort()
    },
    [],
  )

  const exports = (list.data?.data.exports ?? []).map((x) => ({ ...x, ...live[x.id] }) as ExportView)
  return (
    <section>
      <h1>Exports</h1>
      <ErrorBox error={tables.error} />
      {tables.loading ? <Loading what="Loading tables" /> : <CreateExport tables={tables.data?.data.tables ?? null} onCreated={() => list.reload()} />}
      <h2>
        History{' '}
        <button type="button" class="link" onClick={() => list.reload()}>
          Refresh
        </button>
      </h2>
      <ErrorBox error={list.error} />
      {list.loading && !list.data ? <Loading what="Loading exports" /> : null}
      {list.data && exports.length === 0 ? <Empty>No exports yet. Create one above.</Empty> : null}
      {exports.length > 0 ? (
        <table class="grid" data-testid="exports">
          <thead>
            <tr>
              <th scope="col">Table</th>
              <th scope="col">Format</th>
              <th scope="col">Status</th>
              <th scope="col">Progress</th>
              <th scope="col" class="num">
                Items
              </th>
              <th scope="col">Created</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {exports.map((x) => (
              <ExportRow key={x.id} x={x} onChanged={() => list.reload()} />
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  )
}

function ExportRow({ x, onChanged }: { x: ExportView; onChanged: () => void }) {
  const [error, setError] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)
  const cancel = async () => {
    setBusy(true)
    try {
      await api(`/exports/${encodeURIComponent(x.id)}`, { method: 'DELETE' })
      onChanged()
    } catch (err) {
      setError(err)
    } finally {
      setBusy(false)
    }
  }
  // Through fetch with the Authorization header, handed to the browser as a blob: no key or token in a URL.
  // A very large file would not fit in memory that way: it goes through the API's signed, expiring link
  // (same origin, a token for this one file, never the key).
  const download = async () => {
    setError(null)
    try {
      if ((x.bytes ?? 0) > BLOB_LIMIT) {
        const fresh = await api<ExportView>(`/exports/${encodeURIComponent(x.id)}`)
        if (fresh.data.download?.startsWith('/')) return saveAs(fresh.data.download)
      }
      const res = await api<Blob>(`/exports/${encodeURIComponent(x.id)}/download`, { blob: true, headers: { accept: '*/*' } })
      const disposition = res.headers.get('content-disposition') ?? ''
      const name = /filename="?([^";]+)"?/.exec(disposition)?.[1] ?? `export-${x.id}.${x.format}${x.gzip ? '.gz' : ''}`
      const url = URL.createObjectURL(res.data)
      saveAs(url, name)
      setTimeout(() => URL.revokeObjectURL(url), 60_000)
    } catch (err) {
      setError(err)
    }
  }
  return (
    <tr data-testid="export" data-export-id={x.id} data-status={x.status}>
      <th scope="row">
        {x.table}
        {x.index ? <span class="muted"> · {x.index}</span> : null}
      </th>
      <td>
        {x.format}
        {x.gzip ? '.gz' : ''}
      </td>
      <td>
        <span class={`status status-${x.status}`} data-testid="export-status">
          {x.status}
        </span>
        {x.error ? <div class="muted">{x.error}</div> : null}
      </td>
      <td>
        <Progress value={x.progress} label={`Export of ${x.table}`} />
      </td>
      <td class="num">
        {x.processedItems}
        {x.bytes ? <div class="muted">{formatBytes(x.bytes)}</div> : null}
      </td>
      <td>{formatTime(x.createdAt)}</td>
      <td>
        {x.status === 'completed' ? (
          <button type="button" class="primary" onClick={download} data-testid="download">
            Download
          </button>
        ) : null}
        {x.status === 'queued' || x.status === 'processing' ? (
          <button type="button" onClick={cancel} disabled={busy}>
            Cancel
          </button>
        ) : null}
        <ErrorBox error={error} />
      </td>
    </tr>
  )
}

function CreateExport({ tables, onCreated }: { tables: string[] | null; onCreated: () => void }) {
  const [form, setForm] = useState({ table: tables?.[0] ?? '', index: '', format: 'csv', gzip: false, filter: '', notify: '' })
  const details = useLoad(
    (signal) =>
      form.table && tables?.includes(form.table)
        ? api<{ indexes: Array<{ name: string }> }>(`/tables/${encodeURIComponent(form.table)}`, { signal })
        : Promise.resolve(null),
    [form.table],
  )
  const [error, setError] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)
  const submit = async (e: Event) => {
    e.preventDefault()
    setBusy(true)
    setError(null)
    try {
      await api('/exports', {
        method: 'POST',
        body: {
          table: form.table,
          format: form.format,
          gzip: form.gzip,
          ...(form.index ? { index: form.index } : {}),
          // As text: the API reads it without losing a digit of a large number.
          ...(form.filter.trim() ? { filter: form.filter.trim() } : {}),
          ...(form.notify.trim() ? { notify: form.notify.trim() } : {}),
        },
      })
      onCreated()
    } catch (err) {
      setError(err)
    } finally {
      setBusy(false)
    }
  }
  const set = (k: keyof typeof form) => (e: Event) => {
    const el = e.target as HTMLInputElement
    setForm({ ...form, [k]: el.type === 'checkbox' ? el.checked : el.value, ...(k === 'table' ? { index: '' } : {}) })
  }
  return (
    <form class="inline-form" onSubmit={submit} aria-label="New export" data-testid="export-form">
      {tables ? (
        <>
          <label>
            Table{' '}
            <select value={form.table} onChange={set('table')} name="table">
              {tables.map((t) => (
                <option key={t} value={t}>
                  {t}
                </option>
              ))}
            </select>
          </label>
          <label>
            Index{' '}
            <select value={form.index} onChange={set('index')} name="index">
              <option value="">whole table</option>
              {details.data?.data.indexes.map((i) => (
                <option key={i.name} value={i.name}>
                  {i.name}
                </option>
              ))}
            </select>
          </label>
        </>
      ) : (
        <>
          <label>
            Table <input value={form.table} onInput={set('table')} name="table" required placeholder="table name" />
          </label>
          <label>
            Index <input value={form.index} onInput={set('index')} name="index" placeholder="optional" />
          </label>
        </>
      )}
      <label>
        Format{' '}
        <select value={form.format} onChange={set('format')} name="format">
          <option value="csv">CSV</option>
          <option value="jsonl">JSONL</option>
        </select>
      </label>
      <label class="check">
        <input type="checkbox" checked={form.gzip} onChange={set('gzip')} name="gzip" /> gzip
      </label>
      <label class="wide">
        Filter <input value={form.filter} onInput={set('filter')} name="filter" placeholder='[{"attr":"status","op":"eq","value":"paid"}]' />
      </label>
      <label>
        Email when done <input type="email" value={form.notify} onInput={set('notify')} name="notify" placeholder="optional" />
      </label>
      <button type="submit" class="primary" disabled={busy || !form.table}>
        {busy ? 'Starting…' : 'Start export'}
      </button>
      <ErrorBox error={error} />
    </form>
  )
}
