import type { ComponentChildren } from 'preact'
import { useCallback, useEffect, useRef, useState } from 'preact/hooks'
import { type Answer, describeError } from './api.ts'
import { type AttributeValue, shortText, TYPE_NAMES, typeOf } from './values.ts'

export function Loading({ what = 'Loading' }: { what?: string }) {
  return (
    <p class="loading" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" /> {what}…
    </p>
  )
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="empty">{children}</p>
}

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null
  const { code, message } = describeError(error)
  return (
    <div class="error" role="alert">
      <strong>{code}</strong> {message}
    </div>
  )
}

/** The cache outcome of an answer: X-Cache and Age, as the API sent them. */
export function CacheBadge({ answer }: { answer: Pick<Answer<unknown>, 'xCache' | 'age'> | null | undefined }) {
  if (!answer?.xCache) return null
  const kind = answer.xCache.toLowerCase()
  return (
    <span class={`cache-badge cache-${kind}`} data-testid="x-cache" title="X-Cache and Age headers of this answer">
      X-Cache: <b>{answer.xCache}</b>
      {answer.age !== null ? (
        <>
          {' '}
          · Age: <b data-testid="age">{answer.age}</b> s
        </>
      ) : null}
    </span>
  )
}

/** A value with its DynamoDB type: sets and binary say so. */
export function Value({ v, max }: { v: AttributeValue; max?: number }) {
  const t = typeOf(v)
  const marked = ['B', 'SS', 'NS', 'BS', 'NULL', 'BOOL', 'L', 'M'].includes(t)
  return (
    <span class={`value type-${t}`} title={`${TYPE_NAMES[t]}: ${shortText(v, 500)}`}>
      {marked ? (
        <abbr class="type-tag" title={TYPE_NAMES[t]}>
          {t}
        </abbr>
      ) : null}
      {shortText(v, max)}
    </span>
  )
}

export function Progress({ value, label }: { value: number; label: string }) {
  const pct = Math.max(0, Math.min(100, Math.round(value)))
  return (
    <div class="progress" role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={pct}>
      <div class="progress-fill" style={{ width: `${pct}%` }} />
      <span class="progress-text">{pct}%</span>
    </div>
  )
}

/** Loads something, with loading and error states; `reload` asks again. */
export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]) {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true })
  const [tick, setTick] = useState(0)
  const latest = useRef(load)
  latest.current = load
  useEffect(() => {
    const ctl = new AbortController()
    setState((s) => ({ ...s, loading: true, error: undefined }))
    latest.current(ctl.signal).then(
      (data) => !ctl.signal.aborted && setState({ data, loading: false }),
      (error) => !ctl.signal.aborted && setState({ error, loading: false }),
    )
    return () => ctl.abort()
  }, [...deps, tick])
  const reload = useCallback(() => setTick((n) => n + 1), [])
  return { ...state, reload }
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '—'
  const d = new Date(iso)
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString()
}

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—'
  const units = ['B', 'KB', 'MB', 'GB', 'TB']
  let v = n
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`
}

export const percent = (rate: number) => `${(rate * 100).toFixed(1)}%`
