import { useEffect, useState } from 'preact/hooks'

/** The location inside the console: `#/path?query`. Hash routes need no server fallback and never reach the API. */
export interface Route {
  path: string[]
  query: URLSearchParams
}

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#/, '') || '/tables'
  const [path = '', query = ''] = raw.split('?')
  return { path: path.split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(query) }
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(location.hash))
  useEffect(() => {
    const update = () => setRoute(parseHash(location.hash))
    addEventListener('hashchange', update)
    return () => removeEventListener('hashchange', update)
  }, [])
  return route
}

/** A console link: path segments (encoded) and a query of defined values. */
export function href(path: Array<string>, query: Record<string, string | number | undefined | null> = {}): string {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v))
  const s = q.toString()
  return `#/${path.map(encodeURIComponent).join('/')}${s ? `?${s}` : ''}`
}

export const go = (to: string) => {
  location.hash = to
}
