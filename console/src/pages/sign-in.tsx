import { useState } from 'preact/hooks'
import { ApiError } from '../api.ts'
import { type Identity, storeKey, whoami } from '../session.ts'

export function SignIn({ onSignedIn, expired }: { onSignedIn: (key: string, who: Identity) => void; expired: boolean }) {
  const [key, setKey] = useState('')
  const [error, setError] = useState<string | null>(expired ? 'The saved API key is no longer accepted. Sign in again.' : null)
  const [busy, setBusy] = useState(false)

  const submit = async (e: Event) => {
    e.preventDefault()
    const trimmed = key.trim()
    if (!trimmed) return setError('Enter an API key.')
    setBusy(true)
    setError(null)
    try {
      const who = await whoami(trimmed)
      storeKey(trimmed)
      onSignedIn(trimmed, who)
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 401
          ? 'That API key was not accepted (DC_ERR_UNAUTHORIZED). Check it, or ask for a key with the scopes you need.'
          : err instanceof ApiError
            ? `${err.code}: ${err.message}`
            : String(err),
      )
    } finally {
      setBusy(false)
    }
  }

  return (
    <main class="sign-in">
      <form onSubmit={submit} aria-labelledby="sign-in-title">
        <h1 id="sign-in-title">dynacache console</h1>
        <p class="muted">Tables, items, cache statistics, exports and batches of this dynacache API.</p>
        <label for="api-key">API key</label>
        <input
          id="api-key"
          name="api-key"
          type="password"
          autocomplete="off"
          spellcheck={false}
          value={key}
          onInput={(e) => setKey((e.target as HTMLInputElement).value)}
          autofocus
        />
        <p class="hint">Kept in this tab's session storage only, sent as an Authorization header to this API.</p>
        {error ? (
          <div class="error" role="alert" data-testid="sign-in-error">
            {error}
          </div>
        ) : null}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  )
}
