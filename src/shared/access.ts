/** Scopes an API key can carry (product.md, Auth). */
export const SCOPES = ['read', 'write', 'export', 'admin'] as const
export type Scope = (typeof SCOPES)[number]

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

/** DynamoDB's naming rule for tables and indexes, checked before anything else touches the name. */
export const TABLE_NAME_PATTERN = '^[A-Za-z0-9_.-]{3,255}$'
const tableNameRe = new RegExp(TABLE_NAME_PATTERN)
export const isValidTableName = (name: string) => tableNameRe.test(name)

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')
  return new RegExp(`^${body}$`)
}

/** TABLES_ALLOW / TABLES_DENY as one predicate: allowed by a glob and denied by none. */
export function createTablePolicy(allow: string, deny: string): (table: string) => boolean {
  const toList = (s: string) =>
    s.split(',').map((g) => g.trim()).filter(Boolean).map(globToRegExp)
  const allowed = toList(allow)
  const denied = toList(deny)
  return (table) =>
    isValidTableName(table) && allowed.some((re) => re.test(table)) && !denied.some((re) => re.test(table))
}
