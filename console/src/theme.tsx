import { useLayoutEffect, useState } from 'preact/hooks'

type Theme = 'auto' | 'light' | 'dark'
const KEY = 'dynacache.theme'

const apply = (theme: Theme) => {
  if (theme === 'auto') document.documentElement.removeAttribute('data-theme')
  else document.documentElement.setAttribute('data-theme', theme)
}

/** Light, dark or the system's choice, remembered in localStorage (not a secret). */
export function ThemeToggle() {
  const [theme, setTheme] = useState<Theme>(() => (localStorage.getItem(KEY) as Theme | null) ?? 'auto')
  // Layout, not a plain effect: the page's colours change in the same frame as the button's label,
  // never a frame later (a plain effect runs after paint, later still on a busy machine).
  useLayoutEffect(() => {
    apply(theme)
    localStorage.setItem(KEY, theme)
    dispatchEvent(new Event('dynacache-theme'))
  }, [theme])
  const next: Record<Theme, Theme> = { auto: 'light', light: 'dark', dark: 'auto' }
  return (
    <button type="button" class="link" onClick={() => setTheme((current) => next[current])} title="Switch between light, dark and the system's theme">
      Theme: {theme}
    </button>
  )
}
