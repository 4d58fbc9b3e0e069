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

/** The entry id: a digest of kind and sorted params, so equal requests share one entry. */
export function resourceId(resource: CachedResource): string {
  const params = Object.keys(resource.params)
    .sort()
    .map((k) => `${k}=${resource.params[k]}`)
    .join('&')
  return createHash('sha1').update(`${resource.kind}\n${params}`).digest('base64url').slice(0, 22)
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

/** Short human label for logs and metrics. */
export const describeResource = (r: CachedResource) => `${r.kind}:${r.table ?? '*'}`
