/** What bench/server.ts prints on one stdout line once it listens, after READY_MARK. */
export interface BenchServerReady {
  pid: number
  /** Where the reference routes are: on the app itself, or on a second instance in the same process. */
  refMode: 'same-instance' | 'second-instance'
  refPort: number
  stats: boolean
  page: PageInfo
  /** The 1,000-item page of the same table (cached too), for the naive route's second size. */
  largePage: PageInfo
  /** Routes of later issues, probed without side effects (401 means the route exists). */
  features: Features
}

export interface PageInfo {
  url: string
  items: number
  bytes: number
  gzipBytes: number
  etag: string
}

export interface Features {
  /** POST /exports (issue 5) */
  exports: boolean
  /** POST /tables/:table/batches (issue 6) */
  batches: boolean
}

export const READY_MARK = 'BENCH_READY '
