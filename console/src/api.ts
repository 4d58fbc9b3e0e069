/** The API client: same origin only, the key in the Authorization header and nowhere else. */

export interface Answer<T> {
  status: number
  data: T
  /** X-Cache of a cached read (HIT, STALE, MISS, BYPASS), when the route is cached. */
  xCache: string | null
  /** Age in seconds of a cached answer. */
  age: string | null
  headers: Headers
}

/** An error answer: the API's `DC_ERR_*` code and message, or a network failure. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body?: unknown,
  ) {
    super(message)
  }
}

let currentKey: string | null = null
let onUnauthorized: (() => void) | null = null

export function setKey(key: string | null, unauthorized?: () => void) {
  currentKey = key
  onUnauthorized = unauthorized ?? null
}

export interface RequestOptions {
  method?: string
  body?: unknown
  headers?: Record<string, string>
  /** Answer from DynamoDB and refresh the cache (Cache-Control: no-cache). */
  refresh?: boolean
  signal?: AbortSignal
  /** Use this key instead of the signed-in one (sign-in itself). */
  key?: string
  /** Return the body as a Blob (downloads). */
  blob?: boolean
}

/** Query string from defined, non-empty values. */
export function qs(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v))
  const s = q.toString()
  return s ? `?${s}` : ''
}

export async function api<T = unknown>(path: string, opts: RequestOptions = {}): Promise<Answer<T>> {
  if (!path.startsWith('/') || path.startsWith('//')) throw new Error(`not an API path: ${path}`)
  const key = opts.key ?? currentKey
  const headers: Record<string, string> = { accept: 'application/json', ...opts.headers }
  if (key) headers.authorization = `Bearer ${key}`
  // The browser's HTTP cache would hide the API's own cache outcome: always ask, but never force a
  // refresh unless asked (a no-store fetch would add Cache-Control: no-cache by itself).
  headers['cache-control'] = opts.refresh ? 'no-cache' : 'max-age=0'
  let body: string | undefined
  if (opts.body !== undefined) {
    headers['content-type'] = 'application/json'
    body = JSON.stringify(opts.body)
  }
  let res: Response
  try {
    res = await fetch(path, {
      method: opts.method ?? 'GET',
      headers,
      body,
      cache: 'no-store',
      credentials: 'omit',
      referrerPolicy: 'no-referrer',
      ...(opts.signal ? { signal: opts.signal } : {}),
    })
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err
    throw new ApiError(0, 'NETWORK', 'The API could not be reached. Is it running?')
  }
  const meta = { status: res.status, xCache: res.headers.get('x-cache'), age: res.headers.get('age'), headers: res.headers }
  if (!res.ok) {
    const text = await res.text()
    let parsed: { code?: string; message?: string } | undefined
    try {
      parsed = JSON.parse(text)
    } catch {}
    if (res.status === 401 && !opts.key) onUnauthorized?.()
    throw new ApiError(res.status, parsed?.code ?? `HTTP_${res.status}`, parsed?.message ?? (text || res.statusText), parsed)
  }
  if (opts.blob) return { ...meta, data: (await res.blob()) as T }
  const text = await res.text()
  return { ...meta, data: (text ? JSON.parse(text) : null) as T }
}

/** A message for people, from an ApiError or anything else thrown. */
export function describeError(err: unknown): { code: string; message: string } {
  if (err instanceof ApiError) {
    if (err.status === 401) return { code: err.code, message: 'This API key was not accepted. Check it and sign in again.' }
    if (err.status === 403) return { code: err.code, message: `This API key may not do that: ${err.message}` }
    if (err.status === 429) return { code: err.code, message: `Too many requests for this key; try again shortly. ${err.message}` }
    return { code: err.code, message: err.message }
  }
  return { code: 'ERROR', message: (err as Error)?.message ?? String(err) }
}
