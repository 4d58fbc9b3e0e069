import type { Config } from './config.ts'
import { ConfigError } from './config-error.ts'

/** Secrets published in docker-compose.yml and the docs: anyone can read them, so production refuses them. */
export const WELL_KNOWN_SECRETS: ReadonlySet<string> = new Set([
  'dev-admin-key-change-me',
  'dev-read-key-change-me',
  'dev-only-cursor-secret-change-me',
  'a-long-random-admin-key',
  'a-long-random-read-key',
])

export const isWellKnown = (secret: string) => WELL_KNOWN_SECRETS.has(secret) || /change-?me/i.test(secret)

/** Throws a ConfigError when API_KEYS or CURSOR_SECRET holds a well-known value (loadConfig, NODE_ENV=production). */
export function refuseDevSecrets(value: Pick<Config, 'API_KEYS' | 'CURSOR_SECRET'>): void {
  const keys = (value.API_KEYS ?? '').split(';').map((entry) => entry.split(':')[0] ?? '')
  if (keys.some(isWellKnown)) {
    throw new ConfigError('API_KEYS holds a well-known development key: set your own keys (NODE_ENV=production)')
  }
  if (value.CURSOR_SECRET !== undefined && isWellKnown(value.CURSOR_SECRET)) {
    throw new ConfigError('CURSOR_SECRET is a well-known development value: set your own secret (NODE_ENV=production)')
  }
}
