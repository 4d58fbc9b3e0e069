import type { JSX } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { setKey } from './api.ts'
import { BatchesPage } from './pages/batches.tsx'
import { CachePage } from './pages/cache.tsx'
import { ExportsPage } from './pages/exports.tsx'
import { ItemPage } from './pages/item.tsx'
import { SignIn } from './pages/sign-in.tsx'
import { TablePage } from './pages/table.tsx'
import { TablesPage } from './pages/tables.tsx'
import { href, useRoute } from './route.ts'
import { can, forgetKey, type Identity, storedKey, whoami } from './session.ts'
import { ThemeToggle } from './theme.tsx'
import { Empty, Loading } from './ui.tsx'

export function App() {
  const route = useRoute()
  const [who, setWho] = useState<Identity | null>(null)
  const [checking, setChecking] = useState(() => storedKey() !== null)
  const [expired, setExpired] = useState(false)

  const signOut = (why?: 'expired') => {
    forgetKey()
    setKey(null)
    setWho(null)
    setExpired(why === 'expired')
  }
  const signedIn = (key: string, identity: Identity) => {
    setKey(key, () => signOut('expired'))
    setWho(identity)
    setExpired(false)
  }

  // A reload in the same tab keeps the session: the key is still in sessionStorage.
  useEffect(() => {
    const key = storedKey()
    if (!key) return
    whoami(key)
      .then(
        (identity) => signedIn(key, identity),
        () => signOut('expired'),
      )
      .finally(() => setChecking(false))
  }, [])

  if (checking) return <Loading what="Checking the saved API key" />
  if (!who) return <SignIn onSignedIn={signedIn} expired={expired} />

  const [section = 'tables', table, sub] = route.path
  const nav = [
    { id: 'tables', label: 'Tables', show: can(who, 'read') },
    { id: 'cache', label: 'Cache', show: can(who, 'read') },
    { id: 'exports', label: 'Exports', show: can(who, 'export') },
    { id: 'batches', label: 'Batches', show: can(who, 'write') },
  ].filter((n) => n.show)

  let page: JSX.Element
  if (section === 'tables' && !can(who, 'read')) page = <Empty>This key has no read scope: it cannot browse tables.</Empty>
  else if (section === 'tables' && table && sub === 'item') page = <ItemPage who={who} table={table} query={route.query} />
  else if (section === 'tables' && table) page = <TablePage who={who} table={table} tab={sub ?? 'items'} query={route.query} />
  else if (section === 'tables') page = <TablesPage who={who} />
  else if (section === 'cache') page = <CachePage who={who} />
  else if (section === 'exports' && can(who, 'export')) page = <ExportsPage who={who} query={route.query} />
  else if (section === 'batches' && can(who, 'write')) page = <BatchesPage who={who} query={route.query} />
  else page = <Empty>Nothing here for this key. Pick a section above.</Empty>

  return (
    <div class="shell">
      <button type="button" class="skip" onClick={() => document.getElementById('main')?.focus()}>
        Skip to content
      </button>
      <header class="top">
        <a class="brand" href={href(['tables'])}>
          dynacache
        </a>
        <nav aria-label="Sections">
          {nav.map((n) => (
            <a
              key={n.id}
              href={href([n.id])}
              class={section === n.id ? 'section-link active' : 'section-link'}
              aria-current={section === n.id ? 'page' : undefined}
            >
              {n.label}
            </a>
          ))}
        </nav>
        <div class="who" data-testid="who">
          <span title="tenant">
            tenant <b data-testid="tenant">{who.tenant}</b>
          </span>
          <span class="scopes" data-testid="scopes">
            {who.scopes.map((s) => (
              <span key={s} class="scope">
                {s}
              </span>
            ))}
          </span>
          {who.tables ? <span title="tables this key may see">tables: {who.tables.join(', ')}</span> : null}
          <ThemeToggle />
          <button type="button" class="link" onClick={() => signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {page}
      </main>
    </div>
  )
}
