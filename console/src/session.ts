import { api } from './api.ts'

export type Scope = 'read' | 'write' | 'export' | 'admin'

export interface Identity {
  scopes: Scope[]
  tenant: string
  tables: string[] | null
}

const STORAGE_KEY = 'dynacache.apiKey'

/** The key lives in sessionStorage only: gone when the tab closes, never in a URL or a cookie. */
export const storedKey = (): string | null => sessionStorage.getItem(STORAGE_KEY)
export const storeKey = (key: string) => sessionStorage.setItem(STORAGE_KEY, key)
export const forgetKey = () => sessionStorage.removeItem(STORAGE_KEY)

export async function whoami(key: string): Promise<Identity> {
  return (await api<Identity>('/auth/whoami', { key })).data
}

/** What the API lets a key do: a scope, or admin, which may do everything. */
export const can = (who: Identity | null, scope: Scope) => Boolean(who && (who.scopes.includes(scope) || who.scopes.includes('admin')))
