import { createHash } from 'node:crypto'
import type { Config } from '../config.ts'

/** What the read API caches; each kind has its own TTL (product.md, Configuration). */
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

/**
 * The entry id: a digest of everything that changes the answer (table, kind and every parameter,
 * index included), so equal requests share one entry and different ones never do. It keys the
 * in-process single-flight, the near cache, the Redis entry and lock, and refresh dedup ids; a read of
 * one table must never collapse onto another's (issue 12). Parameters are encoded as JSON pairs, so no
 * value can forge a separator (`pk=a&sk=b` is not `pk=a`, `sk=b`).
 */
export function resourceId(resource: CachedResource): string {
  const params = Object.keys(resource.params)
    .sort()
    .map((k) => [k, resource.params[k]])
  const identity = JSON.stringify([resource.table, resource.kind, params])
  return createHash('sha1').update(identity).digest('base64url').slice(0, 22)
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
