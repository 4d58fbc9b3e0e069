import { createHash } from 'node:crypto'
import type { NearEntry } from './near-cache.ts'
import type { CachedResource } from './resources.ts'
import type { StoredEntry } from './store.ts'

/** What a loader read from DynamoDB: the exact response body (JSON) and its status. */
export interface LoadedValue {
  status: number
  body: Buffer
  /** Overrides the kind's TTL (negative entries live NEGATIVE_TTL). */
  ttl?: number
}

export type Loader = (resource: CachedResource) => Promise<LoadedValue>

/**
 * hit: fresh entry. stale: served at once, refresh queued. miss: loaded now (or collapsed onto another
 * caller's load). revalidated: an expired entry replaced now. stale-if-error: expired entry served
 * because DynamoDB failed. bypass: Redis unavailable, loaded straight from DynamoDB.
 */
export type CacheOutcome = 'hit' | 'stale' | 'miss' | 'revalidated' | 'stale-if-error' | 'bypass'

export interface CacheResult {
  outcome: CacheOutcome
  status: number
  etag: string
  /** ms since epoch the value was read from DynamoDB */
  createdAt: number
  ttl: number
  /** Stored gzip bytes; absent on a 304-capable hit (ETag matched) and on bypass. */
  gzip?: Buffer
  /** Plain body, when we have it without inflating (a fresh load). */
  body?: Buffer
  /** True when this request waited for another caller's DynamoDB read instead of making its own. */
  collapsed: boolean
  /** Why a stale entry was served instead of fresh data. */
  error?: Error
  /** A stale answer from an entry invalidated softly (served this once, refresh queued). */
  invalidated?: boolean
}

/** A weak ETag of a body: computed once when an entry is filled, stored with it, never per hit. */
export const etagOf = (body: Buffer) => `W/"${createHash('sha1').update(body).digest('base64url').slice(0, 20)}"`

/** The answer an entry read from Redis gives. */
export const fromEntry = (entry: StoredEntry, outcome: CacheOutcome, collapsed = false, error?: Error): CacheResult => ({
  outcome,
  status: entry.meta.status,
  etag: entry.meta.etag,
  createdAt: entry.meta.createdAt,
  ttl: entry.meta.ttl,
  ...(entry.gzip ? { gzip: entry.gzip } : {}),
  collapsed,
  ...(error ? { error } : {}),
})

/** The answer a near-cache copy gives: always a hit. */
export const fromNear = (held: NearEntry): CacheResult => ({
  outcome: 'hit',
  status: held.status,
  etag: held.etag,
  createdAt: held.createdAt,
  ttl: held.ttl,
  ...(held.gzip ? { gzip: held.gzip } : {}),
  ...(held.plain ? { body: held.plain } : {}),
  collapsed: false,
})
