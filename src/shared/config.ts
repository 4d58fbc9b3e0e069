import { type Static, Type } from 'typebox'
import { Value } from 'typebox/value'
import { ConfigError, exitOnConfigError } from './config-error.ts'
import { type ProcessRole, REQUIRED_FOR, type RoleConfig } from './config-roles.ts'
import { refuseDevSecrets } from './well-known-secrets.ts'

// Moved out by concept, re-exported so every importer keeps importing from config.ts.
export { ConfigError, exitOnConfigError } from './config-error.ts'
export { type ApiConfig, type LocalConfig, type ProcessRole, REQUIRED_FOR, type RoleConfig, type WorkerConfig } from './config-roles.ts'
export { isWellKnown, WELL_KNOWN_SECRETS } from './well-known-secrets.ts'

/**
 * Every environment variable dynacache reads. The schema is the single source: the type comes from
 * it, docs/configuration.md is generated from it, and nothing else in the code reads process.env.
 */
const Int = (def: number, min: number, description: string, max?: number) =>
  Type.Integer({ default: def, minimum: min, ...(max === undefined ? {} : { maximum: max }), description })
const Ratio = (def: number, description: string) => Type.Number({ default: def, minimum: 0, maximum: 1, description })

export const ConfigSchema = Type.Object({
  NODE_ENV: Type.String({ default: 'production', description: 'development enables pretty logs' }),
  PORT: Int(3000, 0, 'API listen port', 65535),
  HOST: Type.String({ default: '0.0.0.0', description: 'API listen address' }),
  REDIS_URL: Type.Optional(
    Type.String({
      pattern: '^rediss?://',
      description: 'e.g. redis://127.0.0.1:6379/0 (required); with REDIS_CLUSTER, comma-separated seed nodes: redis://10.0.0.1:6379,redis://10.0.0.2:6379',
    }),
  ),
  REDIS_CLUSTER: Type.Boolean({
    default: false,
    description: 'true: REDIS_URL names seed nodes of a Redis Cluster (every node is found from them; credentials and rediss:// of the first apply to all)',
  }),
  REDIS_PREFIX: Type.String({
    default: 'dc',
    pattern: '^[A-Za-z0-9_.:-]{1,32}$',
    description: 'prefix of every Redis key and queue, so several deployments can share one Redis',
  }),
  DYNAMODB_ENDPOINT: Type.Optional(Type.String({ pattern: '^https?://', description: 'DynamoDB endpoint URL' })),
  AWS_REGION: Type.String({ default: 'us-east-1', minLength: 1, description: 'AWS region' }),
  SES_ENDPOINT: Type.Optional(Type.String({ pattern: '^https?://', description: 'SES endpoint URL' })),
  SES_FROM_EMAIL: Type.String({ default: 'noreply@localhost', minLength: 3, description: 'sender address' }),
  API_KEYS: Type.Optional(
    Type.String({
      pattern:
        '^[^:;,\\s]{16,}:(read|write|export|admin)(,(read|write|export|admin))*(;[^:;,\\s]{16,}:(read|write|export|admin)(,(read|write|export|admin))*)*;?$',
      description:
        '`key:scope,scope;key2:scope`, keys of 16+ characters, scopes read, write, export, admin: keys of the default tenant that see every table (the API needs this or API_KEYS_FILE)',
    }),
  ),
  API_KEYS_FILE: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        'path to a JSON list of keys with their tenant and tables: `{ "key" or "sha256", "scopes", "tenant"?, "tables"? }` (docs/security.md, Security model); with API_KEYS or instead of it',
    }),
  ),
  TABLES_ALLOW: Type.String({ default: '*', description: 'comma-separated table-name globs the API may expose' }),
  TABLES_DENY: Type.String({ default: '', description: 'comma-separated table-name globs the API must hide' }),
  TABLE_LIST_TTL: Int(1800, 1, 'seconds the table list is cached'),
  TABLE_DETAILS_TTL: Int(3600, 1, 'seconds table details are cached'),
  TABLE_ITEMS_TTL: Int(1800, 1, 'seconds scan pages and single items are cached'),
  QUERY_RESULTS_TTL: Int(900, 1, 'seconds query pages are cached'),
  NEGATIVE_TTL: Int(30, 1, 'seconds a missing item or table is remembered as missing'),
  STATS_TTL: Int(86400, 60, 'seconds statistics counters live'),
  STALE_THRESHOLD: Ratio(0.75, 'an entry older than ttl x this is stale: served at once, refreshed in the background'),
  STALE_IF_ERROR_TTL: Int(86400, 0, 'seconds past its ttl an entry is kept to be served when DynamoDB fails'),
  STALE_IF_ERROR_SHORT_TTL: Int(
    300,
    0,
    'seconds past its ttl a negative (404) entry or a query page is kept for stale-if-error (instead of STALE_IF_ERROR_TTL)',
  ),
  CACHE_CHUNK_BYTES: Int(524288, 1024, 'cached values larger than this are stored in chunks of this size'),
  INVALIDATION_MODE: Type.Union([Type.Literal('hard'), Type.Literal('soft')], {
    default: 'hard',
    description:
      'how an invalidation treats the entries it hits when the caller says nothing (mode=): hard = the next read misses and waits for DynamoDB; soft = served once more as STALE (Cache-Status detail=invalidated) while one refresh is queued',
  }),
  METRICS_SCRAPE_TIMEOUT_MS: Int(
    500,
    1,
    "ms a /metrics scrape waits on Redis for queue depths, export outcomes and Streams follower state before it answers without them (keep it under the scraper's own timeout)",
  ),
  NEAR_CACHE_TTL_MS: Int(1000, 0, 'ms an API process answers a hot hit from memory before asking Redis again (0 = off); invalidations reach it at once'),
  NEAR_CACHE_MAX_MB: Int(64, 1, 'MB of bodies (gzip, and inflated for clients without gzip) each API process keeps in its near cache'),
  OTEL_EXPORTER_OTLP_ENDPOINT: Type.Optional(
    Type.String({
      pattern: '^https?://',
      description: 'OTLP/HTTP base URL (e.g. http://otel-collector:4318): when set, every process exports OpenTelemetry traces there; off otherwise',
    }),
  ),
  CURSOR_SECRET: Type.Optional(
    Type.String({
      minLength: 16,
      description: 'HMAC key for cursors and download tokens, 16+ characters (required for the API and the workers, the same value)',
    }),
  ),
  PREFETCH_INTERVAL_S: Int(300, 5, 'seconds between popular-table prefetch runs'),
  PREFETCH_TOP: Int(5, 0, 'how many popular tables each prefetch run refreshes'),
  EXPORT_STORAGE: Type.Union([Type.Literal('local'), Type.Literal('s3')], {
    default: 'local',
    description: 'where export files go: local or s3',
  }),
  EXPORT_DIR: Type.String({ default: './.data/exports', description: 'directory for local export files' }),
  EXPORT_S3_BUCKET: Type.Optional(Type.String({ minLength: 3, description: 'bucket for exports when EXPORT_STORAGE=s3' })),
  EXPORT_SEGMENTS: Int(4, 1, 'parallel scan segments per export', 64),
  EXPORT_PAGE_LIMIT: Int(
    1000,
    0,
    "items per Scan page of an export: its checkpoint, progress and cancel step and a worker's memory per segment; 0 = DynamoDB's pages of up to 1 MB",
    100000,
  ),
  S3_ENDPOINT: Type.Optional(
    Type.String({ pattern: '^https?://', description: 'endpoint of an S3-compatible store (path-style requests); AWS S3 when unset' }),
  ),
  DOWNLOAD_LINK_TTL: Int(86400, 60, 'seconds a signed export download link stays valid'),
  PUBLIC_URL: Type.String({
    default: 'http://localhost:3000',
    pattern: '^https?://[^\\s]+$',
    description: 'base URL the API is reached at, for the links in emails',
  }),
  SSE_KEEPALIVE_MS: Int(30000, 100, 'milliseconds between keep-alive comments on Server-Sent Events streams'),
  JOB_RETENTION_DAYS: Int(30, 1, 'finished exports and batches (and their files) are removed after this'),
  WORKER_QUEUES: Type.String({ default: 'all', description: 'comma-separated queue names a worker serves, or all' }),
  WORKER_CONCURRENCY: Int(4, 1, 'jobs a worker process runs at once per queue', 256),
  JOB_STALL_MS: Int(30000, 500, 'a job whose worker stopped renewing its lock this long ago is handed to another worker'),
  STREAMS_FOLLOW: Type.String({
    default: 'off',
    pattern: '^(off|auto|[A-Za-z0-9_.*?-]+(\\s*,\\s*[A-Za-z0-9_.*?-]+)*)$',
    description:
      'DynamoDB Streams the workers follow so the cache sees writes from any client: off, auto (every allowed table whose stream is enabled) or comma-separated table globs (those of them); off by default because it reads every stream record',
  }),
  DYNAMODB_STREAMS_ENDPOINT: Type.Optional(Type.String({ pattern: '^https?://', description: "DynamoDB Streams endpoint URL (the region's when unset)" })),
  STREAMS_POLL_MS: Int(250, 20, 'ms between reads of a shard that had no new records (the floor of how late a write becomes visible)'),
  STREAMS_LEASE_MS: Int(10000, 500, 'a shard lease its worker stopped renewing this long ago is taken over by another worker'),
  STREAMS_PASS_MS: Int(5000, 500, 'ms one streams-follow job follows its table before the next scheduled job takes over'),
  STREAMS_DISCOVER_S: Int(60, 1, 'seconds between looks for streams enabled or disabled since'),
  STREAMS_AUDIT: Type.Boolean({
    default: false,
    description: 'true: keep the sequence numbers applied per shard in Redis lists (the last 10,000), for audits and tests',
  }),
  SHUTDOWN_TIMEOUT_MS: Int(30000, 100, 'bound on graceful shutdown'),
  DYNAMO_TIMEOUT_MS: Int(3000, 50, 'per-call DynamoDB timeout'),
  SLOW_CALL_MS: Int(100, 1, 'DynamoDB calls slower than this are logged as slow'),
  BREAKER_FAILURES: Int(5, 1, 'consecutive DynamoDB failures that open the circuit breaker'),
  BREAKER_RECOVERY_MS: Int(60000, 100, 'how long the breaker stays open before it tries again'),
  DYNAMO_READ_BUDGET: Int(0, 0, 'read units per second per table shared by API and workers; 0 = unlimited'),
  USER_RESERVED_SHARE: Ratio(0.5, 'share of the read budget background jobs may never take'),
  DYNAMO_WRITE_BUDGET: Int(
    0,
    0,
    "write units per second per table shared by every batch-writing worker and the API's single-item writes (a unit each at least); 0 = unlimited",
  ),
  RATE_LIMIT_PER_MIN: Int(600, 1, 'requests per minute per API key'),
  FILTER_MAX_BYTES: Int(16384, 64, 'bytes a `filter` (of a query or an export) may have'),
  TENANT_EXPORTS_MAX: Int(10, 1, 'exports a tenant may have queued or processing at once'),
  TENANT_BATCHES_MAX: Int(50, 1, 'batches a tenant may have unfinished (queued, processing or retrying) at once'),
  TENANT_BATCHES_MB: Int(256, 1, 'MB of operations (as stored, gzip) the unfinished batches of a tenant may hold'),
  KEY_STREAMS_MAX: Int(100, 1, 'Server-Sent Events streams one API key may have open at once, fleet-wide'),
  REQUEST_TIMEOUT_MS: Int(
    60000,
    100,
    'ms a client has to send a whole request (headers and body, a 16 MB batch included); 408 and the connection closed after',
  ),
  CONNECTION_TIMEOUT_MS: Int(120000, 100, 'ms a connection may stay idle (no bytes either way) before it is closed; event streams are exempt'),
  MAX_CONNECTIONS: Int(4096, 1, 'open connections an API process accepts; further ones are closed at once'),
  CORS_ORIGINS: Type.String({
    default: '',
    pattern: '^(\\*|https?://[^,\\s/]+/?(\\s*,\\s*https?://[^,\\s/]+/?)*)?$',
    description: 'comma-separated origins (https://dash.example.com) allowed to call the API from a browser, * for any; empty = no CORS',
  }),
  // Spelled out: a union of a mapped array would type LOG_LEVEL as never.
  LOG_LEVEL: Type.Union(
    [
      Type.Literal('fatal'),
      Type.Literal('error'),
      Type.Literal('warn'),
      Type.Literal('info'),
      Type.Literal('debug'),
      Type.Literal('trace'),
      Type.Literal('silent'),
    ],
    { default: 'info', description: 'pino log level' },
  ),
})

export type Config = Readonly<Static<typeof ConfigSchema>>
export type ConfigKey = keyof Config

/**
 * Validates the environment once and returns a frozen Config. Throws ConfigError whose message is
 * one line naming the first bad variable and what it expects.
 */
export function loadConfig<R extends ProcessRole = 'any'>(env: Record<string, string | undefined>, role: R = 'any' as R): RoleConfig<R> {
  const known = Object.keys(ConfigSchema.properties) as ConfigKey[]
  const input: Record<string, unknown> = {}
  for (const key of known) {
    const raw = env[key]
    if (raw !== undefined && raw !== '') input[key] = raw
  }
  for (const key of REQUIRED_FOR[role] as readonly ConfigKey[]) {
    if (input[key] === undefined) {
      throw new ConfigError(`${key} is required: ${describe(key)}`)
    }
  }
  if (role === 'api' && input.API_KEYS === undefined && input.API_KEYS_FILE === undefined) {
    throw new ConfigError(`API_KEYS is required (or API_KEYS_FILE): ${describe('API_KEYS')}`)
  }
  const value = Value.Convert(ConfigSchema, Value.Default(ConfigSchema, input)) as Static<typeof ConfigSchema>
  const [first] = Value.Errors(ConfigSchema, value)
  if (first) {
    const key = first.instancePath.replace(/^\//, '').split('/')[0] as ConfigKey
    // The value is never echoed: it may be a secret (API_KEYS, CURSOR_SECRET, credentials in REDIS_URL).
    throw new ConfigError(`${key} is invalid: expected ${describe(key)}`)
  }
  if (value.REDIS_CLUSTER && value.REDIS_URL?.split(',').some((seed) => !/^rediss?:\/\/[^\s/,]+/.test(seed.trim()))) {
    throw new ConfigError('REDIS_URL is invalid: expected comma-separated redis:// seed URLs (REDIS_CLUSTER=true)')
  }
  if (value.EXPORT_STORAGE === 's3' && !value.EXPORT_S3_BUCKET) {
    throw new ConfigError('EXPORT_S3_BUCKET is required when EXPORT_STORAGE=s3')
  }
  if (value.NODE_ENV === 'production') refuseDevSecrets(value)
  // The required variables were checked above, so the role's narrower type holds.
  return Object.freeze(value) as RoleConfig<R>
}

function describe(key: ConfigKey): string {
  const schema = ConfigSchema.properties[key] as { description?: string; type?: string }
  const kind = schema.type === 'integer' ? 'an integer, ' : schema.type === 'number' ? 'a number, ' : schema.type === 'boolean' ? 'true or false, ' : ''
  return `${kind}${schema.description ?? ''}`
}

/** Loads config for an entry point; on a bad value prints one line and exits 1 (no stack trace). */
export function loadConfigOrExit<R extends ProcessRole>(role: R, env: Record<string, string | undefined> = process.env): RoleConfig<R> {
  try {
    return loadConfig(env, role)
  } catch (err) {
    return exitOnConfigError(err)
  }
}

/** The schema's variables with default and description, for docs/configuration.md and its drift test. */
export function configReference(): Array<{ name: string; default: string; description: string }> {
  return Object.entries(ConfigSchema.properties).map(([name, s]) => {
    const schema = s as { default?: unknown; description?: string }
    return {
      name,
      default: schema.default === undefined ? '' : String(schema.default),
      description: schema.description ?? '',
    }
  })
}
