import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { SCOPES, type Scope } from '../shared/access.ts'

/** The local stack's secrets: one API key per scope and the cursor HMAC key. */
export interface DevKeys {
  keys: Record<Scope, string>
  cursorSecret: string
}

/** What each dev key may do: the admin key can do everything. */
export const DEV_KEY_SCOPES: Record<Scope, readonly Scope[]> = {
  read: ['read'],
  write: ['write'],
  export: ['export'],
  admin: SCOPES,
}

// Same rule as API_KEYS in config.ts: 16+ characters, none of `:;,` or whitespace.
const VALID_KEY = /^[^:;,\s]{16,}$/

const generateKey = (scope: Scope) => `dc-${scope}-${randomBytes(18).toString('base64url')}`

/**
 * Reads the keys saved by an earlier start, or generates and saves them, so a second start (and the
 * user's curl commands) keep working. A missing or malformed entry is regenerated; good ones are kept.
 */
export async function loadOrCreateDevKeys(file: string): Promise<{ devKeys: DevKeys; generated: boolean }> {
  const saved = await readSaved(file)
  let generated = false
  const keys = {} as Record<Scope, string>
  for (const scope of SCOPES) {
    const key = saved?.keys?.[scope]
    const valid = typeof key === 'string' && VALID_KEY.test(key)
    keys[scope] = valid ? key : generateKey(scope)
    generated ||= !valid
  }
  const secret = saved?.cursorSecret
  const validSecret = typeof secret === 'string' && secret.length >= 16
  const cursorSecret = validSecret ? secret : randomBytes(32).toString('base64url')
  generated ||= !validSecret
  const devKeys: DevKeys = { keys, cursorSecret }
  if (generated) {
    await mkdir(dirname(file), { recursive: true })
    // Owner-only: these keys open the local API and its admin pages.
    await writeFile(file, `${JSON.stringify(devKeys, null, 2)}\n`, { mode: 0o600 })
  }
  return { devKeys, generated }
}

async function readSaved(file: string): Promise<Partial<DevKeys> | undefined> {
  try {
    const parsed: unknown = JSON.parse(await readFile(file, 'utf8'))
    return parsed && typeof parsed === 'object' ? (parsed as Partial<DevKeys>) : undefined
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || err instanceof SyntaxError) return undefined
    throw err
  }
}

/** The keys in API_KEYS format: `key:scope,scope;key2:scope`. */
export function apiKeysSpec(devKeys: DevKeys): string {
  return SCOPES.map((scope) => `${devKeys.keys[scope]}:${DEV_KEY_SCOPES[scope].join(',')}`).join(';')
}
