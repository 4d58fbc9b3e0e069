import type { Config, ConfigKey } from './config.ts'

/** Variables a process role cannot start without. */
export const REQUIRED_FOR = {
  // And API_KEYS or API_KEYS_FILE (checked in loadConfig: either one will do).
  api: ['REDIS_URL', 'CURSOR_SECRET'],
  // Workers sign download links in export emails and decode the cursors of paged entries they refresh.
  worker: ['REDIS_URL', 'CURSOR_SECRET'],
  // The local all-in-one stack starts what it is not given (Redis, DynamoDB, SES) and makes dev keys.
  local: [],
  any: [],
} as const satisfies Record<string, readonly ConfigKey[]>

export type ProcessRole = keyof typeof REQUIRED_FOR

/**
 * Config as a process role has it: the variables the role requires are plain values, never undefined.
 * Distributes over a union of roles (a role known only at run time gets a union of their configs).
 */
export type RoleConfig<R extends ProcessRole> = R extends ProcessRole
  ? Config & { readonly [K in (typeof REQUIRED_FOR)[R][number]]-?: NonNullable<Config[K]> }
  : never
/** The API's config (src/api/server.ts). */
export type ApiConfig = RoleConfig<'api'>
/** A worker's config (src/workers/main.ts). */
export type WorkerConfig = RoleConfig<'worker'>
/** The local all-in-one stack's config (src/local/main.ts), before it starts the API and a worker. */
export type LocalConfig = RoleConfig<'local'>
