import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createPrincipal, type Principal, parseApiKeys, SCOPES, type Scope, TABLE_GLOB_PATTERN, TENANT_PATTERN } from './access.ts'
import { type Config, ConfigError, isWellKnown, WELL_KNOWN_SECRETS } from './config.ts'

/** One configured key: the SHA-256 of its value (what is compared) and who it makes the caller. */
export interface ApiKeyEntry {
  readonly digest: Buffer
  readonly principal: Principal
}

const sha256 = (value: string) => createHash('sha256').update(value).digest()
const ENTRY_FIELDS = new Set(['key', 'sha256', 'scopes', 'tenant', 'tables'])
const KEY_PATTERN = /^\S{16,}$/
const SHA256_PATTERN = /^[0-9a-f]{64}$/i

const entryFrom = (digest: Buffer, scopes: ReadonlySet<Scope>, tenant?: string, tables?: readonly string[]): ApiKeyEntry => ({
  digest,
  // The id is a prefix of the key's SHA-256, so it is the same whether the file gives the key or its hash.
  principal: createPrincipal({ id: digest.toString('hex').slice(0, 12), scopes, ...(tenant ? { tenant } : {}), tables: tables ?? null }),
})

/**
 * Parses the content of API_KEYS_FILE: a JSON list of `{ key | sha256, scopes, tenant?, tables? }`.
 * Throws ConfigError naming API_KEYS_FILE and the entry's index; no message ever contains a key.
 */
export function parseApiKeysFile(text: string): ApiKeyEntry[] {
  const fail = (why: string): never => {
    throw new ConfigError(`API_KEYS_FILE is invalid: ${why}`)
  }
  let list: unknown
  try {
    list = JSON.parse(text)
  } catch {
    // JSON.parse's own message quotes the text around the error, which may be a key.
    fail('expected a JSON list of { "key" or "sha256", "scopes", "tenant"?, "tables"? }, the file is not valid JSON')
  }
  if (!Array.isArray(list) || list.length === 0) fail('expected a non-empty JSON list of { "key" or "sha256", "scopes", "tenant"?, "tables"? }')
  return (list as unknown[]).map((raw, index) => {
    const at = (why: string) => fail(`entry ${index}: ${why}`)
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return at('expected an object')
    const entry = raw as Record<string, unknown>
    const unknown = Object.keys(entry).find((k) => !ENTRY_FIELDS.has(k))
    // A name of 16+ characters could be a key pasted in the wrong place: only shorter ones are quoted.
    const named = unknown !== undefined && unknown.length < 16 ? ` ${JSON.stringify(unknown)}` : ''
    if (unknown !== undefined) at(`unknown field${named} (expected key or sha256, scopes, tenant, tables)`)
    if ((entry.key === undefined) === (entry.sha256 === undefined)) at('expected exactly one of "key" and "sha256"')
    if (entry.key !== undefined && (typeof entry.key !== 'string' || !KEY_PATTERN.test(entry.key))) {
      at('"key" must be a string of 16+ characters without whitespace')
    }
    if (entry.sha256 !== undefined && (typeof entry.sha256 !== 'string' || !SHA256_PATTERN.test(entry.sha256))) {
      at('"sha256" must be the 64 hex digits of the SHA-256 of the key')
    }
    const scopes = entry.scopes
    if (!Array.isArray(scopes) || scopes.length === 0 || !scopes.every((s) => (SCOPES as readonly unknown[]).includes(s))) {
      at(`"scopes" must be a non-empty list of ${SCOPES.join(', ')}`)
    }
    if (entry.tenant !== undefined && (typeof entry.tenant !== 'string' || !TENANT_PATTERN.test(entry.tenant))) {
      at('"tenant" must be 1-64 characters of A-Z, a-z, 0-9, _ . -')
    }
    const tables = entry.tables
    if (tables !== undefined && (!Array.isArray(tables) || tables.length === 0 || !tables.every((g) => typeof g === 'string' && TABLE_GLOB_PATTERN.test(g)))) {
      at('"tables" must be a non-empty list of table names or globs (* and ?)')
    }
    const digest = entry.key !== undefined ? sha256(entry.key as string) : Buffer.from(entry.sha256 as string, 'hex')
    return entryFrom(digest, new Set(scopes as Scope[]), entry.tenant as string | undefined, tables as string[] | undefined)
  })
}

/**
 * Every key the API accepts: API_KEYS (default tenant, every table) and the entries of API_KEYS_FILE.
 * A key given twice is refused, since it could not be told which tenant or tables it means.
 */
export function loadApiKeys(
  config: Pick<Config, 'API_KEYS' | 'API_KEYS_FILE'> & Partial<Pick<Config, 'NODE_ENV'>>,
  read: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): ApiKeyEntry[] {
  const entries = [...parseApiKeys(config.API_KEYS ?? '')].map(([key, scopes]) => entryFrom(sha256(key), scopes))
  if (config.API_KEYS_FILE) {
    let text: string
    try {
      text = read(config.API_KEYS_FILE)
    } catch (err) {
      throw new ConfigError(`API_KEYS_FILE is invalid: cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
    }
    const fromFile = parseApiKeysFile(text)
    if (config.NODE_ENV === 'production') refuseWellKnownKeys(text, fromFile)
    for (const [index, entry] of fromFile.entries()) {
      const first = [...entries, ...fromFile].findIndex((e) => e.digest.equals(entry.digest))
      if (first < entries.length) throw new ConfigError(`API_KEYS_FILE is invalid: entry ${index}: the key is also in API_KEYS`)
      if (first - entries.length < index) {
        throw new ConfigError(`API_KEYS_FILE is invalid: entry ${index}: the same key as entry ${first - entries.length}`)
      }
    }
    entries.push(...fromFile)
  }
  if (entries.length === 0) throw new ConfigError('API_KEYS is required (or API_KEYS_FILE): no API key is configured')
  return entries
}

/** The published dev keys, as their SHA-256 too: a file giving one by its hash is refused as well. */
const WELL_KNOWN_DIGESTS = [...WELL_KNOWN_SECRETS].map(sha256)

/** NODE_ENV=production: the keys anyone can read in docker-compose.yml and the docs are refused, by value or by hash. */
function refuseWellKnownKeys(text: string, entries: ApiKeyEntry[]) {
  const values = (JSON.parse(text) as Array<{ key?: unknown }>).map((e) => (typeof e.key === 'string' ? e.key : ''))
  for (const [index, entry] of entries.entries()) {
    if (isWellKnown(values[index]!) || WELL_KNOWN_DIGESTS.some((d) => d.equals(entry.digest))) {
      throw new ConfigError(`API_KEYS_FILE is invalid: entry ${index} is a well-known development key: set your own keys (NODE_ENV=production)`)
    }
  }
}
