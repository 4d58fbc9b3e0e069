import { useEffect, useMemo, useState } from 'preact/hooks'
import { api, qs } from '../api.ts'
import { Chart } from '../chart.tsx'
import { can, type Identity } from '../session.ts'
import { Empty, ErrorBox, formatTime, Loading, percent, useLoad } from '../ui.tsx'
import { hitRate, type Stats } from './tables.tsx'

type Counter = 'hits' | 'misses' | 'stale' | 'errors'
type Series = Record<Counter, number[]>
export interface History {
  step: number
  times: number[]
  totals: Series
  tables: Record<string, Series>
}

const RANGES = [
  [60, 'last hour'],
  [360, 'last 6 hours'],
  [1440, 'last 24 hours'],
] as const

const REFRESH_MS = 15_000

/** Cache statistics over time (GET /cache/stats/history) and now (GET /cache/stats); admin controls. */
export function CachePage({ who }: { who: Identity }) {
  const [minutes, setMinutes] = useState(60)
  const [table, setTable] = useState('')
  const [tick, setTick] = useState(0)
  useEffect(() => {
    // Only while someone can see it.
    const timer = setInterval(() => !document.hidden && setTick((n) => n + 1), REFRESH_MS)
    return () => clearInterval(timer)
  }, [])
  const load = useLoad(
    async (signal) => {
      const history = await api<History>(`/cache/stats/history${qs({ minutes })}`, { signal })
      const stats = await api<Stats>('/cache/stats', { signal })
      return { history: history.data, stats: stats.data }
    },
    [minutes, tick],
  )

  const data = load.data
  const series = data ? (table ? data.history.tables[table] : data.history.totals) : undefined
  const counts = useMemo(() => {
    if (!data || !series) return null
    return [
      { label: 'hits', values: series.hits, color: '--c-hits' },
      { label: 'misses', values: series.misses, color: '--c-misses' },
      { label: 'stale', values: series.stale, color: '--c-stale' },
      { label: 'errors', values: series.errors, color: '--c-errors' },
    ]
  }, [data, series])
  const rate = useMemo(() => {
    if (!series) return null
    const values = series.hits.map((h, i) => {
      const r = hitRate({ hits: h, misses: series.misses[i]!, stale: series.stale[i]! })
      return r === null ? null : Math.round(r * 1000) / 10
    })
    return [{ label: 'hit rate %', values, color: '--c-hits' }]
  }, [series])
  const names = data ? Object.keys(data.stats.tables).sort() : []
  const shown = data ? (table ? data.stats.tables[table] : data.stats.totals) : undefined

  return (
    <section>
      <h1>Cache</h1>
      <div class="toolbar">
        <label>
          Range{' '}
          <select value={String(minutes)} onChange={(e) => setMinutes(Number((e.target as HTMLSelectElement).value))}>
            {RANGES.map(([m, label]) => (
              <option key={m} value={String(m)}>
                {label}
              </option>
            ))}
          </select>
        </label>
        <label>
          Table{' '}
          <select value={table} onChange={(e) => setTable((e.target as HTMLSelectElement).value)} data-testid="chart-table">
            <option value="">all tables</option>
            {names.map((n) => (
              <option key={n} value={n}>
                {n === '*' ? '* (table list)' : n}
              </option>
            ))}
          </select>
        </label>
        <button type="button" onClick={() => load.reload()}>
          Refresh
        </button>
        {load.loading ? <span class="muted">updating…</span> : null}
      </div>
      <ErrorBox error={load.error} />
      {!data && load.loading ? <Loading what="Loading statistics" /> : null}
      {data && counts && rate ? (
        <div class="charts">
          <Chart title={`Answers per minute, ${table || 'all tables'}`} times={data.history.times} series={counts} yLabel="answers" testId="chart-counts" />
          <Chart title="Hit rate" times={data.history.times} series={rate} yLabel="%" max={100} testId="chart-rate" points />
        </div>
      ) : null}
      {data && !series ? <Empty>No reads of {table} in this range.</Empty> : null}
      {data && shown ? (
        <dl class="totals" data-testid="totals">
          <div class="total">
            <dt>Hits</dt>
            <dd data-testid="total-hits">{shown.hits}</dd>
          </div>
          <div class="total">
            <dt>Misses</dt>
            <dd data-testid="total-misses">{shown.misses}</dd>
          </div>
          <div class="total">
            <dt>Stale</dt>
            <dd data-testid="total-stale">{shown.stale}</dd>
          </div>
          <div class="total">
            <dt>Errors</dt>
            <dd data-testid="total-errors">{shown.errors}</dd>
          </div>
          <div class="total">
            <dt>Hit rate</dt>
            <dd data-testid="total-hit-rate">{table ? (hitRate(shown) === null ? '—' : percent(hitRate(shown)!)) : percent(data.stats.totals.hitRate)}</dd>
          </div>
          <p class="muted">Since the counters started (STATS_TTL), over every API process: GET /cache/stats.</p>
        </dl>
      ) : null}
      {can(who, 'admin') ? <CacheAdmin names={names.filter((n) => n !== '*')} onDone={() => load.reload()} /> : null}
      {data ? (
        <table class="grid" data-testid="stats-tables">
          <thead>
            <tr>
              <th scope="col">Table</th>
              <th scope="col" class="num">
                Hits
              </th>
              <th scope="col" class="num">
                Misses
              </th>
              <th scope="col" class="num">
                Stale
              </th>
              <th scope="col" class="num">
                Errors
              </th>
              <th scope="col" class="num">
                Hit rate
              </th>
              <th scope="col">Last access</th>
            </tr>
          </thead>
          <tbody>
            {names.map((n) => {
              const c = data.stats.tables[n]!
              const r = hitRate(c)
              return (
                <tr key={n}>
                  <th scope="row">{n}</th>
                  <td class="num">{c.hits}</td>
                  <td class="num">{c.misses}</td>
                  <td class="num">{c.stale}</td>
                  <td class="num">{c.errors}</td>
                  <td class="num">{r === null ? '—' : percent(r)}</td>
                  <td>{formatTime(c.lastAccess)}</td>
                </tr>
              )
            })}
          </tbody>
        </table>
      ) : null}
    </section>
  )
}

function CacheAdmin({ names, onDone }: { names: string[]; onDone: () => void }) {
  const [table, setTable] = useState('')
  const [note, setNote] = useState<string | null>(null)
  const [error, setError] = useState<unknown>(null)
  const act = async (what: 'invalidate' | 'warmup') => {
    setNote(null)
    setError(null)
    try {
      if (what === 'invalidate') {
        if (!table && !confirm('Invalidate everything cached, for every table?')) return
        const r = await api<{ invalidated: string[] }>(table ? `/tables/${encodeURIComponent(table)}/cache` : '/cache', { method: 'DELETE' })
        setNote(`Invalidated: ${r.data.invalidated.join(', ') || 'nothing was cached'}.`)
      } else {
        const r = await api<{ jobId: string }>('/cache/warmup', { method: 'POST', body: table ? { tables: [table] } : {} })
        setNote(`Warm-up queued (job ${r.data.jobId}).`)
      }
      onDone()
    } catch (err) {
      setError(err)
    }
  }
  return (
    <div class="admin-bar" data-testid="admin-controls">
      <label>
        Admin: table{' '}
        <select value={table} onChange={(e) => setTable((e.target as HTMLSelectElement).value)} data-testid="admin-table">
          <option value="">all tables</option>
          {names.map((n) => (
            <option key={n} value={n}>
              {n}
            </option>
          ))}
        </select>
      </label>
      <button type="button" class="danger" onClick={() => act('invalidate')}>
        Invalidate
      </button>
      <button type="button" onClick={() => act('warmup')}>
        Warm up
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
