import { useEffect, useState } from 'preact/hooks'
import { ApiError, api } from '../api.ts'
import { type ParsedBatch, parseBatchFile } from '../batch-file.ts'
import { can, type Identity } from '../session.ts'
import { Empty, ErrorBox, formatTime, Loading, Progress, useLoad } from '../ui.tsx'
import type { TableDetails } from './table.tsx'

interface BatchView {
  id: string
  table: string
  status: string
  total: number
  written: number
  failed: number
  attempts: number
  errors: Array<{ index: number; reason: string }>
  createdAt: string
  completedAt: string | null
}

const POLL_MS = 1000

/** Upload a file of puts and deletes, see its problems by line before anything is queued, then follow it. */
export function BatchesPage({ who }: { who: Identity; query: URLSearchParams }) {
  // A key that may read gets the table list and each key schema, so every operation is checked here;
  // a write-only key types the table's name and the API checks the keys when the batch is sent.
  const readable = can(who, 'read')
  const tables = useLoad((signal) => (readable ? api<{ tables: string[] }>('/tables', { signal }) : Promise.resolve(null)), [readable])
  const [table, setTable] = useState('')
  const name = table || tables.data?.data.tables[0] || ''
  const details = useLoad(
    (signal) => (name && readable ? api<TableDetails>(`/tables/${encodeURIComponent(name)}`, { signal }) : Promise.resolve(null)),
    [name, readable],
  )
  const [file, setFile] = useState<{ name: string; parsed: ParsedBatch } | null>(null)
  const [error, setError] = useState<unknown>(null)
  const [batchIds, setBatchIds] = useState<string[]>([])
  const [busy, setBusy] = useState(false)

  const pick = async (e: Event) => {
    const input = e.target as HTMLInputElement
    const f = input.files?.[0]
    if (!f || (readable && !details.data)) return
    setError(null)
    setFile({ name: f.name, parsed: parseBatchFile(f.name, await f.text(), details.data?.data.key ?? null) })
    // The same file may be picked again after a fix.
    input.value = ''
  }
  const send = async () => {
    if (!file || file.parsed.problems.length > 0) return
    setBusy(true)
    setError(null)
    try {
      const r = await api<{ id: string }>(`/tables/${encodeURIComponent(name)}/batches`, {
        method: 'POST',
        body: { operations: file.parsed.operations, format: file.parsed.format },
        // The same upload sent twice (a double click) is one batch.
        headers: { 'idempotency-key': `console-${crypto.randomUUID()}` },
      })
      setBatchIds([r.data.id, ...batchIds])
      setFile(null)
    } catch (err) {
      const invalid =
        err instanceof ApiError && err.code === 'DC_ERR_BATCH_INVALID'
          ? (err.body as { invalid?: Array<{ index: number; reason: string }> }).invalid
          : undefined
      if (invalid) {
        // The API's findings, by operation index, placed on the file's lines; nothing was queued.
        const problems = invalid.map((p) => ({ line: file.parsed.lines[p.index] ?? p.index + 1, message: p.reason }))
        setFile({ ...file, parsed: { ...file.parsed, problems } })
      } else setError(err)
    } finally {
      setBusy(false)
    }
  }

  if (tables.data && tables.data.data.tables.length === 0) return <Empty>No table is exposed to this key.</Empty>
  return (
    <section>
      <h1>Batches</h1>
      <ErrorBox error={tables.error ?? details.error} />
      <div class="inline-form" data-testid="batch-form">
        <label for="batch-table">Table</label>
        <span>
          {readable ? (
            <select
              id="batch-table"
              value={name}
              onChange={(e) => {
                setTable((e.target as HTMLSelectElement).value)
                setFile(null)
              }}
            >
              {tables.data?.data.tables.map((t) => (
                <option key={t} value={t}>
                  {t}
                </option>
              ))}
            </select>
          ) : (
            <input
              id="batch-table"
              value={table}
              onInput={(e) => {
                setTable((e.target as HTMLInputElement).value.trim())
                setFile(null)
              }}
              placeholder="table name"
            />
          )}
        </span>
        <label>
          File (JSON, JSONL or CSV of puts){' '}
          <input
            type="file"
            accept=".json,.jsonl,.ndjson,.csv,application/json,text/csv"
            onChange={pick}
            disabled={readable ? !details.data : !name}
            data-testid="batch-file"
          />
        </label>
      </div>
      <p class="muted">
        Each operation is {'{ "put": item }'} or {'{ "delete": key }'}; typed attribute values ({'{"N":"1.50"}'}) keep every digit, plain JSON is read as the
        AWS SDK does. A CSV is one put per row under a header of attribute names (name:N for numbers).
      </p>
      {file ? (
        file.parsed.problems.length > 0 ? (
          <div class="error" role="alert" data-testid="batch-problems">
            <strong>
              {file.parsed.problems.length} problem{file.parsed.problems.length === 1 ? '' : 's'} in {file.name}; nothing was queued.
            </strong>
            <ul>
              {file.parsed.problems.slice(0, 50).map((p, i) => (
                <li key={i}>
                  line {p.line}: {p.message}
                </li>
              ))}
            </ul>
          </div>
        ) : (
          <p class="ok" data-testid="batch-ready">
            {file.parsed.operations.length} operations ({file.parsed.format}) ready for {name}.{' '}
            <button type="button" class="primary" onClick={send} disabled={busy}>
              Queue the batch
            </button>
          </p>
        )
      ) : null}
      <ErrorBox error={error} />
      {batchIds.map((id) => (
        <BatchStatus key={id} id={id} />
      ))}
    </section>
  )
}

function BatchStatus({ id }: { id: string }) {
  const [view, setView] = useState<BatchView | null>(null)
  const [error, setError] = useState<unknown>(null)
  useEffect(() => {
    let stop = false
    let timer: ReturnType<typeof setTimeout> | undefined
    const poll = async () => {
      try {
        const r = await api<BatchView>(`/batches/${encodeURIComponent(id)}`)
        if (stop) return
        setView(r.data)
        if (r.data.status === 'completed' || r.data.status === 'failed') return
      } catch (err) {
        if (stop) return
        setError(err)
      }
      timer = setTimeout(poll, POLL_MS)
    }
    void poll()
    return () => {
      stop = true
      clearTimeout(timer)
    }
  }, [id])
  if (!view) return error ? <ErrorBox error={error} /> : <Loading what="Following the batch" />
  const done = view.written + view.failed
  return (
    <article class="card batch" data-testid="batch" data-status={view.status}>
      <h3>
        Batch on {view.table} <span class={`status status-${view.status}`}>{view.status}</span>
      </h3>
      <Progress value={view.total ? (done / view.total) * 100 : 0} label={`Batch ${id}`} />
      <p>
        {view.written} written, {view.failed} failed of {view.total}; {view.attempts} attempts. Started {formatTime(view.createdAt)}.
      </p>
      {view.errors.length > 0 ? (
        <ul>
          {view.errors.slice(0, 20).map((e) => (
            <li key={e.index}>
              operation {e.index + 1}: {e.reason}
            </li>
          ))}
        </ul>
      ) : null}
      <ErrorBox error={error} />
    </article>
  )
}
