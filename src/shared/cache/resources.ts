import { hash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import type { Config } from '../config.ts'

/** What the read API caches; each kind has its own TTL (docs/configuration.md, docs/caching.md). */
export type ResourceKind = 'tables' | 'details' | 'items' | 'item' | 'query'

/**
 * A cacheable read, described by reference: enough to identify the entry and to load it again from
 * DynamoDB (a refresh job carries exactly this). `params` holds the request's canonical parameters.
 */
export interface CachedResource {
  table: string | null
  kind: ResourceKind
  params: Readonly<Record<string, string>>
}

/** Ids remembered per read: hot reads skip the JSON and the digest (sha1 was a tenth of a hit's CPU). */
const ID_MEMO_ENTRIES = 10_000
/** Characters of keys the memo may hold; a 16 KB filter must not pin megabytes per key. */
const ID_MEMO_CHARS = 4 * 1024 * 1024
const ids = new LRUCache<string, string>({ max: ID_MEMO_ENTRIES, maxSize: ID_MEMO_CHARS, sizeCalculation: (id, key) => key.length + id.length })

/**
 * The canonical identity of a read: table, kind and every parameter (sorted by name) as one JSON
 * array, so no value can forge a separator (`pk=a&sk=b` is not `pk=a`, `sk=b`) and no two reads share it.
 */
export function resourceIdentity(resource: CachedResource): string {
  const names = Object.keys(resource.params).sort()
  return JSON.stringify([resource.table, resource.kind, names.map((name) => [name, resource.params[name]])])
}

/**
 * The memo's key: the same facts as resourceIdentity, length-prefixed instead of JSON-escaped (cheaper
 * to build), so it is just as unambiguous: a value's length says where it ends, whatever it holds.
 */
function memoKey(resource: CachedResource): string {
  const names = Object.keys(resource.params)
  if (names.length > 1) names.sort()
  let key = resource.table === null ? `-${resource.kind}` : `${resource.table.length}:${resource.table}${resource.kind}`
  for (const name of names) {
    const value = resource.params[name]!
    key += `|${name.length}:${name}${value.length}:${value}`
  }
  return key
}

/**
 * The entry id: a digest of everything that changes the answer (table, kind and every parameter,
 * index included), so equal requests share one entry and different ones never do. It keys the
 * in-process single-flight, the near cache, the Redis entry and lock, and refresh dedup ids; a read of
 * one table must never collapse onto another's (issue 12). Always 22 base64url characters (the sha1
 * of resourceIdentity): it is part of Redis key names. The id of a read seen recently is remembered
 * (a bounded LRU keyed by the whole read, so a remembered id is exactly the one computed).
 */
export function resourceId(resource: CachedResource): string {
  const key = memoKey(resource)
  let id = ids.get(key)
  if (id === undefined) {
    id = hash('sha1', resourceIdentity(resource), 'base64url').slice(0, 22)
    ids.set(key, id)
  }
  return id
}

export function ttlFor(kind: ResourceKind, config: Config): number {
  switch (kind) {
    case 'tables':
      return config.TABLE_LIST_TTL
    case 'details':
      return config.TABLE_DETAILS_TTL
    case 'items':
    case 'item':
      return config.TABLE_ITEMS_TTL
    case 'query':
      return config.QUERY_RESULTS_TTL
  }
}

/**
 * Seconds past its ttl an entry is kept to be served when DynamoDB fails. Negative entries and query
 * pages get the short retention: any key can create unboundedly many of them (random names, keys and
 * filters), and a day of each would let one key fill Redis.
 */
export function staleIfErrorFor(kind: ResourceKind, status: number, config: Pick<Config, 'STALE_IF_ERROR_TTL' | 'STALE_IF_ERROR_SHORT_TTL'>): number {
  const short = status !== 200 || kind === 'query'
  return short ? Math.min(config.STALE_IF_ERROR_SHORT_TTL, config.STALE_IF_ERROR_TTL) : config.STALE_IF_ERROR_TTL
}

/** Short human label for logs and metrics. */
export const describeResource = (r: CachedResource) => `${r.kind}:${r.table ?? '*'}`
