import { api } from '../api.ts'
import { href } from '../route.ts'
import type { Identity } from '../session.ts'
import { CacheBadge, Empty, ErrorBox, formatTime, Loading, percent, useLoad } from '../ui.tsx'

export interface TableCounters {
  hits: number
  misses: number
  stale: number
  errors: number
  lastAccess: string | null
}
export interface Stats {
  totals: { hits: number; misses: number; stale: number; errors: number; hitRate: number }
  tables: Record<string, TableCounters>
  popular: Array<{ table: string; score: number }>
}

/** Hit rate as /cache/stats computes its total: hits and stale over every answer. */
export const hitRate = (c: Pick<TableCounters, 'hits' | 'misses' | 'stale'>) => {
  const answered = c.hits + c.stale + c.misses
  return answered === 0 ? null : (c.hits + c.stale) / answered
}

export function TablesPage(_: { who: Identity }) {
  const { data, error, loading } = useLoad(async (signal) => {
    const list = await api<{ tables: string[] }>('/tables', { signal })
    const stats = await api<Stats>('/cache/stats', { signal })
    return { list, stats: stats.data }
  }, [])

  return (
    <section>
      <h1>
        Tables <CacheBadge answer={data?.list} />
      </h1>
      <ErrorBox error={error} />
      {loading && !data ? <Loading what="Loading tables" /> : null}
      {data && data.list.data.tables.length === 0 ? <Empty>No table is exposed to this key.</Empty> : null}
      {data && data.list.data.tables.length > 0 ? (
        <table class="grid" data-testid="tables">
          <thead>
            <tr>
              <th scope="col">Table</th>
              <th scope="col" class="num">
                Hit rate
              </th>
              <th scope="col" class="num">
                Hits
              </th>
              <th scope="col" class="num">
                Misses
              </th>
              <th scope="col" class="num">
                Popularity
              </th>
              <th scope="col">Last access</th>
            </tr>
          </thead>
          <tbody>
            {data.list.data.tables.map((name) => {
              const c = data.stats.tables[name]
              const rate = c ? hitRate(c) : null
              const popular = data.stats.popular.find((p) => p.table === name)
              return (
                <tr key={name}>
                  <th scope="row">
                    <a href={href(['tables', name])}>{name}</a>
                  </th>
                  <td class="num">{rate === null ? '—' : percent(rate)}</td>
                  <td class="num">{c?.hits ?? 0}</td>
                  <td class="num">{c?.misses ?? 0}</td>
                  <td class="num">{popular ? popular.score : '—'}</td>
                  <td>{formatTime(c?.lastAccess)}</td>
                </tr>
              )
            })}
          </tbody>
        </table>
      ) : null}
    </section>
  )
}
