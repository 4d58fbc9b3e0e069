/** Scopes an API key can carry (docs/security.md, Security model). */
export const SCOPES = ['read', 'write', 'export', 'admin'] as const
export type Scope = (typeof SCOPES)[number]

/** Tenant of a key that names none (API_KEYS, or an API_KEYS_FILE entry without `tenant`). */
export const DEFAULT_TENANT = 'default'

/**
 * Who is calling, once a key is recognised: what it may do (scopes), whose objects it sees (tenant:
 * exports, batches, idempotency keys, download tokens) and which tables (its own globs, on top of
 * TABLES_ALLOW / TABLES_DENY). `tables` null means every table the deployment exposes.
 */
export interface Principal {
  /** A hash prefix of the key, safe to log. */
  readonly id: string
  readonly scopes: ReadonlySet<Scope>
  readonly tenant: string
  /** The key's table globs as configured, or null for all; part of the table list's cache identity. */
  readonly tables: readonly string[] | null
  /** True when this key may see the table (its globs only; the deployment policy is checked apart). */
  canSee(table: string): boolean
}

/** Parses `key:scope,scope;key2:scope` (already validated by the config schema). */
export function parseApiKeys(spec: string): Map<string, ReadonlySet<Scope>> {
  const keys = new Map<string, ReadonlySet<Scope>>()
  for (const entry of spec.split(';')) {
    if (!entry) continue
    const [key, scopes = ''] = entry.split(':')
    keys.set(key!, new Set(scopes.split(',') as Scope[]))
  }
  return keys
}

/** A tenant's name as API_KEYS_FILE may give it. */
export const TENANT_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/
/** A table glob as API_KEYS_FILE may give it: DynamoDB's name characters plus `*` and `?`. */
export const TABLE_GLOB_PATTERN = /^[A-Za-z0-9_.*?-]{1,255}$/

/** The caller's principal: `tables` null sees every table, otherwise only tables matching one glob. */
export function createPrincipal(init: { id: string; scopes: ReadonlySet<Scope>; tenant?: string; tables?: readonly string[] | null }): Principal {
  // Sorted and deduplicated: equal glob sets are one table-list cache entry, however they were written.
  const tables = init.tables ? [...new Set(init.tables)].sort() : null
  return Object.freeze({ id: init.id, scopes: init.scopes, tenant: init.tenant ?? DEFAULT_TENANT, tables, canSee: tableGlobs(tables) })
}

/** A predicate for a list of table globs (a key's `tables`); matches everything when the list is null. */
export function tableGlobs(globs: readonly string[] | null): (table: string) => boolean {
  if (!globs) return () => true
  const patterns = globs.map(globToRegExp)
  return (table) => patterns.some((re) => re.test(table))
}

/** DynamoDB's naming rule for tables and indexes, checked before anything else touches the name. */
export const TABLE_NAME_PATTERN = '^[A-Za-z0-9_.-]{3,255}$'
const tableNameRe = new RegExp(TABLE_NAME_PATTERN)
export const isValidTableName = (name: string) => tableNameRe.test(name)

function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.')
  return new RegExp(`^${body}$`)
}

/** TABLES_ALLOW / TABLES_DENY as one predicate: allowed by a glob and denied by none. */
export function createTablePolicy(allow: string, deny: string): (table: string) => boolean {
  const toList = (s: string) =>
    s
      .split(',')
      .map((g) => g.trim())
      .filter(Boolean)
      .map(globToRegExp)
  const allowed = toList(allow)
  const denied = toList(deny)
  return (table) => isValidTableName(table) && allowed.some((re) => re.test(table)) && !denied.some((re) => re.test(table))
}
