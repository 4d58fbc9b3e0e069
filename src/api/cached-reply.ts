import type { FastifyReply, FastifyRequest } from 'fastify'
import { LRUCache } from 'lru-cache'
import { type Dated, type FreshnessPolicy, freshSecondsLeft, staleWindowSeconds } from '../shared/cache/freshness.ts'
import type { CacheResult } from '../shared/cache/index.ts'
import { inflate } from '../shared/cache/inflate.ts'
import { type ResourceKind, staleIfErrorFor } from '../shared/cache/resources.ts'
import type { Config } from '../shared/config.ts'

export const JSON_TYPE = 'application/json; charset=utf-8'

/** The X-Cache word of each outcome (batch-get uses it per item). */
export const X_CACHE: Record<CacheResult['outcome'], string> = {
  hit: 'HIT',
  stale: 'STALE',
  'stale-if-error': 'STALE',
  miss: 'MISS',
  revalidated: 'MISS',
  bypass: 'BYPASS',
}

/** Accept-Encoding values seen recently and whether they take gzip: clients send a handful of distinct values. */
const gzipAnswers = new LRUCache<string, boolean>({ max: 256 })

/** The last Accept-Encoding value asked about and its answer: a benchmark or a browser repeats one. */
let lastEncoding = ''
let lastAnswer = false

/** True when the client accepts gzip (and did not refuse it with q=0). */
export function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false
  if (header === lastEncoding) return lastAnswer
  // Long values are parsed each time rather than kept.
  if (header.length > 256) return parseAcceptsGzip(header)
  let answer = gzipAnswers.get(header)
  if (answer === undefined) {
    answer = parseAcceptsGzip(header)
    gzipAnswers.set(header, answer)
  }
  lastEncoding = header
  lastAnswer = answer
  return answer
}

function parseAcceptsGzip(header: string): boolean {
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
  // A client revalidating sends back exactly the ETag it was given: no parsing then.
  if (ifNoneMatch === etag) return true
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
      // An entry invalidated softly (INVALIDATION_MODE, mode=soft) is served this once: docs/coherence.md.
      return `dynacache; hit; ttl=${ttlLeft}; detail=${result.invalidated ? 'invalidated' : 'stale-while-revalidate'}`
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

type StaleIfErrorConfig = Pick<Config, 'STALE_IF_ERROR_TTL' | 'STALE_IF_ERROR_SHORT_TTL'>

/**
 * The cache headers of one entry as served fresh or stale, built once: only Age, `max-age` and
 * Cache-Status's `ttl` change with time, and those are rebuilt only when their whole seconds change.
 */
export interface EntryHeaders {
  outcome: 'hit' | 'stale'
  createdAt: number
  ttl: number
  staleThreshold: number
  staleIfError: number
  /** The seconds the strings below were built for. */
  ttlLeft: number
  ageS: number
  cacheStatus: string
  cacheControl: string
  age: string
}

/** Header sets of the entries served most recently, by ETag; a set is used only if every input matches. */
const entryHeaders = new LRUCache<string, EntryHeaders>({ max: 4096 })

function cacheControl(freshLeft: number, swr: number, staleIfError: number) {
  return `private, max-age=${freshLeft}, stale-while-revalidate=${swr}, stale-if-error=${staleIfError}`
}

/**
 * Cache-Status, Cache-Control and Age of a fresh or stale hit, reusing the strings of the last hit of the
 * same entry. The hit lane (hit-lane.ts) takes its headers from here too, so both answer alike.
 */
export function hitHeaders(
  result: Dated & { etag: string },
  outcome: 'hit' | 'stale',
  now: number,
  policy: FreshnessPolicy,
  staleIfError: number,
): EntryHeaders {
  const ttlLeft = freshSecondsLeft(result, now, policy)
  const ageS = Math.max(0, Math.floor((now - result.createdAt) / 1000))
  let held = entryHeaders.get(result.etag)
  if (
    held !== undefined &&
    held.outcome === outcome &&
    held.createdAt === result.createdAt &&
    held.ttl === result.ttl &&
    held.staleThreshold === policy.staleThreshold &&
    held.staleIfError === staleIfError
  ) {
    if (held.ttlLeft === ttlLeft && held.ageS === ageS) return held
  } else {
    held = undefined
  }
  const swr = staleWindowSeconds(result.ttl, policy)
  const fresh: EntryHeaders = {
    outcome,
    createdAt: result.createdAt,
    ttl: result.ttl,
    staleThreshold: policy.staleThreshold,
    staleIfError,
    ttlLeft,
    ageS,
    cacheStatus: outcome === 'hit' ? `dynacache; hit; ttl=${ttlLeft}` : `dynacache; hit; ttl=${ttlLeft}; detail=stale-while-revalidate`,
    // Unchanged while the whole seconds left are: the string of the last hit is kept then.
    cacheControl: held?.ttlLeft === ttlLeft ? held.cacheControl : cacheControl(Math.max(0, ttlLeft), swr, staleIfError),
    age: held?.ageS === ageS ? held.age : String(ageS),
  }
  entryHeaders.set(result.etag, fresh)
  return fresh
}

/**
 * Answers a cached read. On a hit, a gzip client gets the stored bytes as they are: no inflate, no
 * parse, no serialize. Sets ETag, Cache-Control, Age, Cache-Status, X-Cache and Vary (docs/caching.md, Headers);
 * on a fresh or stale hit these strings are built once per entry (and per second), not per request.
 */
export async function sendCached(
  request: FastifyRequest,
  reply: FastifyReply,
  result: CacheResult,
  config: Pick<Config, 'STALE_THRESHOLD'> & StaleIfErrorConfig,
  noCache = false,
  kind?: ResourceKind,
) {
  const now = Date.now()
  const policy = { staleThreshold: config.STALE_THRESHOLD }
  reply.header('vary', 'Accept-Encoding')
  reply.header('etag', result.etag)
  reply.header('x-cache', X_CACHE[result.outcome])
  const staleIfError = kind ? staleIfErrorFor(kind, result.status, config) : config.STALE_IF_ERROR_TTL
  // A softly invalidated entry is served once (detail=invalidated): its headers are built for that once.
  if ((result.outcome === 'hit' || result.outcome === 'stale') && !result.invalidated) {
    const headers = hitHeaders(result, result.outcome, now, policy, staleIfError)
    reply.header('cache-status', headers.cacheStatus)
    reply.header('cache-control', headers.cacheControl)
    reply.header('age', headers.age)
  } else {
    reply.header('cache-status', cacheStatus(result, now, policy, noCache))
    if (result.outcome === 'bypass') {
      reply.header('cache-control', 'private, no-cache')
    } else {
      const freshLeft = Math.max(0, freshSecondsLeft(result, now, policy))
      reply.header('cache-control', cacheControl(freshLeft, staleWindowSeconds(result.ttl, policy), staleIfError))
      reply.header('age', Math.max(0, Math.floor((now - result.createdAt) / 1000)))
    }
  }

  if (etagMatches(request.headers['if-none-match'], result.etag)) {
    return reply.code(304).send()
  }
  reply.code(result.status).type(JSON_TYPE)
  if (result.gzip && acceptsGzip(request.headers['accept-encoding'])) {
    return reply.header('content-encoding', 'gzip').send(result.gzip)
  }
  // Without the near cache every hit brings fresh gzip bytes: the body inflated from the same bytes is reused.
  return reply.send(result.body ?? (await inflate(result.gzip!, result.etag)))
}
