import type { FastifyReply, FastifyRequest } from 'fastify'
import type { CacheResult } from '../shared/cache/index.ts'
import { type FreshnessPolicy, freshSecondsLeft, staleWindowSeconds } from '../shared/cache/freshness.ts'
import { inflate } from '../shared/cache/inflate.ts'
import { type ResourceKind, staleIfErrorFor } from '../shared/cache/resources.ts'
import type { Config } from '../shared/config.ts'

/** The X-Cache word of each outcome (batch-get uses it per item). */
export const X_CACHE: Record<CacheResult['outcome'], string> = {
  hit: 'HIT',
  stale: 'STALE',
  'stale-if-error': 'STALE',
  miss: 'MISS',
  revalidated: 'MISS',
  bypass: 'BYPASS',
}

/** True when the client accepts gzip (and did not refuse it with q=0). */
export function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false
  for (const part of header.split(',')) {
    const [coding, ...params] = part.trim().toLowerCase().split(';')
    if (coding !== 'gzip' && coding !== '*') continue
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='))
    return q === undefined || Number(q.slice(2)) > 0
  }
  return false
}

const opaque = (tag: string) => tag.trim().replace(/^W\//, '')

/** Weak comparison of If-None-Match against our ETag (RFC 9110 13.1.2). */
export function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false
  if (ifNoneMatch.trim() === '*') return true
  const ours = opaque(etag)
  return ifNoneMatch.split(',').some((tag) => opaque(tag) === ours)
}

/** The single ETag a client sent, for the store to compare without reading the body; '' otherwise. */
export function singleEtag(ifNoneMatch: string | undefined): string {
  return ifNoneMatch && !ifNoneMatch.includes(',') && ifNoneMatch.trim() !== '*' ? ifNoneMatch.trim() : ''
}

/** Cache-Control on the request asks us to go to DynamoDB and refresh the entry. */
export function wantsRefresh(request: FastifyRequest): boolean {
  const header = request.headers['cache-control']
  return typeof header === 'string' && /(^|,)\s*no-cache\s*(,|$)/i.test(header)
}

function cacheStatus(result: CacheResult, now: number, policy: FreshnessPolicy, noCache: boolean): string {
  const ttlLeft = freshSecondsLeft(result, now, policy)
  switch (result.outcome) {
    case 'hit':
      return `dynacache; hit; ttl=${ttlLeft}`
    case 'stale':
      return `dynacache; hit; ttl=${ttlLeft}; detail=stale-while-revalidate`
    case 'stale-if-error':
      return `dynacache; fwd=stale; fwd-status=${(result.error as { statusCode?: number })?.statusCode ?? 503}; detail=stale-if-error`
    case 'miss':
      return `dynacache; fwd=${noCache ? 'request' : 'uri-miss'}; fwd-status=${result.status}; stored${result.collapsed ? '; collapsed' : ''}`
    case 'revalidated':
      return `dynacache; fwd=stale; fwd-status=${result.status}; stored${result.collapsed ? '; collapsed' : ''}`
    case 'bypass':
      return 'dynacache; fwd=bypass; detail=redis-unavailable'
  }
}

/**
 * Answers a cached read. On a hit, a gzip client gets the stored bytes as they are: no inflate, no
 * parse, no serialize. Sets ETag, Cache-Control, Age, Cache-Status, X-Cache and Vary (product.md).
 */
export async function sendCached(
  request: FastifyRequest,
  reply: FastifyReply,
  result: CacheResult,
  config: Pick<Config, 'STALE_THRESHOLD' | 'STALE_IF_ERROR_TTL' | 'STALE_IF_ERROR_SHORT_TTL'>,
  noCache = false,
  kind?: ResourceKind,
) {
  const now = Date.now()
  const policy = { staleThreshold: config.STALE_THRESHOLD }
  const ageS = Math.max(0, Math.floor((now - result.createdAt) / 1000))
  reply.header('vary', 'Accept-Encoding')
  reply.header('etag', result.etag)
  reply.header('x-cache', X_CACHE[result.outcome])
  reply.header('cache-status', cacheStatus(result, now, policy, noCache))
  if (result.outcome === 'bypass') {
    reply.header('cache-control', 'private, no-cache')
  } else {
    const freshLeft = Math.max(0, freshSecondsLeft(result, now, policy))
    const swr = staleWindowSeconds(result.ttl, policy)
    reply.header('cache-control', `private, max-age=${freshLeft}, stale-while-revalidate=${swr}, stale-if-error=${kind ? staleIfErrorFor(kind, result.status, config) : config.STALE_IF_ERROR_TTL}`)
    reply.header('age', ageS)
  }

  if (etagMatches(request.headers['if-none-match'], result.etag)) {
    return reply.code(304).send()
  }
  reply.code(result.status).type('application/json; charset=utf-8')
  if (result.gzip && acceptsGzip(request.headers['accept-encoding'])) {
    return reply.header('content-encoding', 'gzip').send(result.gzip)
  }
  return reply.send(result.body ?? (await inflate(result.gzip!)))
}
