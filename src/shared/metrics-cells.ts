import type { Counter, Histogram } from 'prom-client'

/*
 * Hot-path updates of prom-client metrics. Label sets are made once and reused: prom-client otherwise
 * hashes and validates a labels object on every call. Each series' cell is found once in prom-client's
 * internals and then updated in place; if those internals change, the plain prom-client call is used.
 */

type CounterCell = { value: number; labels: Record<string, string> }
type HistogramCell = { sum: number; count: number; bucketValues: Record<number, number> }

/** inc() of the cache reads counter by (table, outcome), and the same bound to one label set. */
export interface ReadCells {
  inc(table: string, outcome: string): void
  /** The updater of one label set, for a caller that counts it often (the hit lane, per learned route). */
  bind(table: string, outcome: string): () => void
}

/**
 * The first inc of a label set goes through prom-client (creating the series), later ones add to its
 * cell in place.
 */
export function readCells(counter: Counter<'table' | 'outcome'>): ReadCells {
  const internals = counter as unknown as { hashMap?: Record<string, CounterCell> }
  const bound = new Map<string, () => void>()
  const bind = (table: string, outcome: string) => {
    const key = `${outcome} ${table}`
    let inc = bound.get(key)
    if (inc) return inc
    // undefined: not looked up yet; null: not found (prom-client changed), so the plain call is used.
    let cell: CounterCell | null | undefined
    inc = () => {
      if (cell) {
        cell.value += 1
        return
      }
      counter.inc({ table, outcome })
      if (cell === null) return
      const found = Object.values(internals.hashMap ?? {}).find((c) => c.labels?.table === table && c.labels?.outcome === outcome)
      cell = found && typeof found.value === 'number' ? found : null
    }
    bound.set(key, inc)
    return inc
  }
  return { inc: (table, outcome) => bind(table, outcome)(), bind }
}

/** observe() of the HTTP duration histogram, and the same bound to one label set. */
export interface HttpCells {
  observe(method: string, route: string, statusCode: number, seconds: number): void
  /** The observer of one label set, for a caller that observes it often (the hit lane, per learned route). */
  bind(method: string, route: string, statusCode: number): (seconds: number) => void
}

/**
 * Bounded: routes are the app's patterns (plus 'unmatched'), methods and status codes few. Each label
 * set's cell is created once (zero()) and then updated in place.
 */
export function httpCells(histogram: Histogram<'method' | 'route' | 'status_code'>, buckets: readonly number[]): HttpCells {
  const internals = histogram as unknown as {
    hashMap?: Record<string, HistogramCell & { labels: Record<string, string> }>
  }
  const bound = new Map<string, (seconds: number) => void>()
  const observerOf = (labels: Record<'method' | 'route' | 'status_code', string>): ((seconds: number) => void) => {
    histogram.zero(labels)
    const cell = Object.values(internals.hashMap ?? {}).find(
      (c) => c.labels?.method === labels.method && c.labels?.route === labels.route && c.labels?.status_code === labels.status_code,
    )
    if (!cell || typeof cell.bucketValues !== 'object') return (seconds) => histogram.observe(labels, seconds)
    return (seconds) => {
      cell.sum += seconds
      cell.count += 1
      // prom-client counts each value in its first bucket (cumulated when rendered); beyond the last, only +Inf.
      for (const upper of buckets) {
        if (seconds <= upper) {
          cell.bucketValues[upper] = (cell.bucketValues[upper] ?? 0) + 1
          break
        }
      }
    }
  }
  const bind = (method: string, route: string, statusCode: number) => {
    const key = `${statusCode} ${method} ${route}`
    let observe = bound.get(key)
    if (!observe) {
      observe = observerOf({ method, route, status_code: String(statusCode) })
      bound.set(key, observe)
    }
    return observe
  }
  return { observe: (method, route, statusCode, seconds) => bind(method, route, statusCode)(seconds), bind }
}
