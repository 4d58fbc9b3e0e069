import type { Counter, Histogram } from 'prom-client'

/*
 * Hot-path updates of prom-client metrics. Label sets are made once and reused: prom-client otherwise
 * hashes and validates a labels object on every call. Each series' cell is found once in prom-client's
 * internals and then updated in place; if those internals change, the plain prom-client call is used.
 */

type CounterCell = { value: number; labels: Record<string, string> }
type HistogramCell = { sum: number; count: number; bucketValues: Record<number, number> }

/**
 * inc() of the cache reads counter by (table, outcome). The first inc of a label set goes through
 * prom-client (creating the series), later ones add to its cell in place.
 */
export function readCells(counter: Counter<'table' | 'outcome'>): (table: string, outcome: string) => void {
  const internals = counter as unknown as { hashMap?: Record<string, CounterCell> }
  const cells = new Map<string, CounterCell | null>()
  return (table, outcome) => {
    const key = `${outcome} ${table}`
    const cell = cells.get(key)
    if (cell) {
      cell.value += 1
      return
    }
    counter.inc({ table, outcome })
    if (cell === null) return
    const found = Object.values(internals.hashMap ?? {}).find((c) => c.labels?.table === table && c.labels?.outcome === outcome)
    cells.set(key, found && typeof found.value === 'number' ? found : null)
  }
}

/**
 * observe() of the HTTP duration histogram. Bounded: routes are the app's patterns (plus 'unmatched'),
 * methods and status codes few. Each label set's cell is created once (zero()) and then updated in place.
 */
export function httpCells(
  histogram: Histogram<'method' | 'route' | 'status_code'>,
  buckets: readonly number[],
): (method: string, route: string, statusCode: number, seconds: number) => void {
  const internals = histogram as unknown as {
    hashMap?: Record<string, HistogramCell & { labels: Record<string, string> }>
  }
  const cells = new Map<string, HistogramCell | ((seconds: number) => void)>()
  const cellOf = (labels: Record<'method' | 'route' | 'status_code', string>) => {
    histogram.zero(labels)
    const found = Object.values(internals.hashMap ?? {}).find(
      (c) => c.labels?.method === labels.method && c.labels?.route === labels.route && c.labels?.status_code === labels.status_code,
    )
    return found && typeof found.bucketValues === 'object' ? found : (seconds: number) => histogram.observe(labels, seconds)
  }
  return (method, route, statusCode, seconds) => {
    const key = `${statusCode} ${method} ${route}`
    let cell = cells.get(key)
    if (!cell) {
      cell = cellOf({ method, route, status_code: String(statusCode) })
      cells.set(key, cell)
    }
    if (typeof cell === 'function') return cell(seconds)
    cell.sum += seconds
    cell.count += 1
    // prom-client counts each value in its first bucket (cumulated when rendered); beyond the last, only +Inf.
    for (const bound of buckets) {
      if (seconds <= bound) {
        cell.bucketValues[bound] = (cell.bucketValues[bound] ?? 0) + 1
        break
      }
    }
  }
}
