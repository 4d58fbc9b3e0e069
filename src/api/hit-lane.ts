import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import { LRUCache } from 'lru-cache'
import type { CacheResult } from '../shared/cache/cache-result.ts'
import type { CacheService } from '../shared/cache/cache-service.ts'
import { inflate } from '../shared/cache/inflate.ts'
import type { NearEntry } from '../shared/cache/near-cache.ts'
import { type CachedResource, resourceId, staleIfErrorFor } from '../shared/cache/resources.ts'
import type { Config } from '../shared/config.ts'
import type { Metrics } from '../shared/metrics.ts'
import { acceptsGzip, etagMatches, hitHeaders, singleEtag } from './cached-reply.ts'
import { type BudgetAnswer, chargeRequest, type KeyBudget } from './key-budget.ts'
import { createLaneHeaders, type LaneHeaders } from './lane-headers.ts'
import { requestLine } from './plugins/request-log.ts'

/**
 * A read Fastify answered as a fresh hit, remembered by the exact Authorization header and URL that asked
 * for it. Everything Fastify decided for that request (the key and its scope, the table's visibility,
 * the route, the validated and canonical parameters, the cursor's signature) follows from those two
 * strings alone, because keys, table policies and secrets are fixed for the life of a process: the same
 * two strings always name the same entry for the same caller.
 */
interface LaneRoute {
  resource: CachedResource
  id: string
  table: string
  /** The route's pattern, as metrics and the log name it. */
  route: string
  /** What the rate limit counts the request against (rate-limit.ts: rateLimitKey). */
  client: string
  apiKeyId: string
  staleIfError: number
  /** The answers' header lists, prebuilt from the headers that do not depend on the entry (security, CORS). */
  headers: LaneHeaders
  /** The route's series of the cache-read counter and the HTTP histogram, bound once (by status, as used). */
  countRead: () => void
  observe: Map<number, (seconds: number) => void>
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void

/** One caller's learned routes by URL, and the characters of those URLs. */
interface CallerRoutes {
  byUrl: Map<string, LaneRoute>
  chars: number
}

/** What an answer needs of an entry: a near-cache copy or a fresh hit read from Redis. */
type Hit = Pick<NearEntry, 'status' | 'etag' | 'createdAt' | 'ttl'>

export interface HitLaneDeps {
  cache: Pick<CacheService, 'peekFresh' | 'readFresh' | 'countHit'>
  budget: Pick<KeyBudget, 'spendHeld'>
  metrics: Pick<Metrics, 'httpObserver' | 'cacheReadCounter'>
  log: FastifyBaseLogger
  /** The app's request-id generator (an incoming X-Request-Id wins, as in Fastify). */
  requestId(): string
  config: Pick<Config, 'STALE_THRESHOLD' | 'STALE_IF_ERROR_TTL' | 'STALE_IF_ERROR_SHORT_TTL'>
  /** Callers (distinct Authorization values) remembered; each with up to `routesPerCaller` URLs. */
  callers?: number
  routesPerCaller?: number
}

export interface HitLane {
  /** Called where a cached read was answered as a fresh hit: the next identical request may take the lane. */
  learn(request: FastifyRequest, reply: FastifyReply, resource: CachedResource): void
  /**
   * Takes the request if it is a learned read and a rate-limit token is held: answers it at once from a
   * fresh near-cache copy, or after one Redis read, handing it to `fastify` if that read is not a fresh
   * hit. False when it did not take the request (the caller hands it to Fastify).
   */
  serve(req: IncomingMessage, res: ServerResponse, fastify: Handler): boolean
  /** Stops answering (shutdown): every request then goes through Fastify, which refuses with 503. */
  close(): void
  /** Requests this lane has answered since the process started. */
  readonly answered: number
}

/** Headers the lane sets itself for each answer; everything else Fastify had set by the handler is replayed. */
const PER_ANSWER = new Set([
  'ratelimit-limit',
  'ratelimit-remaining',
  'ratelimit-reset',
  'retry-after',
  'vary',
  'etag',
  'x-cache',
  'cache-status',
  'cache-control',
  'age',
  'content-type',
  'content-encoding',
  'content-length',
])

/** Characters of URLs one caller's routes may hold (a filter can be 16 KB). */
const ROUTE_CHARS_PER_CALLER = 1024 * 1024

/**
 * The hit lane: the API's fast path for the requests that dominate a dashboard's traffic, a repeated
 * read whose entry is fresh in this process's near cache. It runs in the HTTP server's request handler,
 * in front of Fastify, and answers with the bytes and headers Fastify would have sent (the same
 * functions build them; test/api/hit-lane.test.ts compares the two), spending the same rate-limit
 * budget, and counting the same metrics, statistics and log line. Anything else (an unknown URL, a
 * stale or missing entry, no token held, an Origin or Cache-Control header, any method but GET) goes to
 * Fastify unchanged. Why it exists and what it checks: docs/caching.md, "The hit lane".
 */
export function createHitLane(deps: HitLaneDeps): HitLane {
  const { cache, budget, metrics, log, config } = deps
  const policy = { staleThreshold: config.STALE_THRESHOLD }
  const routesPerCaller = deps.routesPerCaller ?? 2048
  const maxCallers = deps.callers ?? 1024
  // Plain maps, bounded by forgetting the oldest: an lru-cache get (recency, ttl) cost a hit more than the map.
  const callers = new Map<string, CallerRoutes>()
  // Routes of one shape share one array of fixed headers.
  const fixedSets = new LRUCache<string, readonly string[]>({ max: 64 })
  let open = true
  let answered = 0

  function fixedHeaders(reply: FastifyReply): readonly string[] {
    const pairs: string[] = []
    const headers = reply.getHeaders()
    for (const name in headers) {
      const value = headers[name]
      if (PER_ANSWER.has(name) || value === undefined) continue
      pairs.push(name, Array.isArray(value) ? value.join(', ') : String(value))
    }
    const shape = pairs.join('\n')
    const known = fixedSets.get(shape)
    if (known) return known
    fixedSets.set(shape, pairs)
    return pairs
  }

  /** Writes a fresh hit (`body` undefined: a 304) and counts it as Fastify would. */
  function answer(
    route: LaneRoute,
    rate: BudgetAnswer,
    hit: Hit,
    req: IncomingMessage,
    res: ServerResponse,
    started: number,
    body: Buffer | undefined,
    gzip: boolean,
  ) {
    const entry = hitHeaders(hit, 'hit', Date.now(), policy, route.staleIfError)
    const headers = route.headers(rate, hit, entry, body, gzip)
    const status = body === undefined ? 304 : hit.status
    res.writeHead(status, headers)
    res.end(body)
    answered++
    cache.countHit(route.resource, hit.status)
    const seconds = (performance.now() - started) / 1000
    let observe = route.observe.get(status)
    if (observe === undefined) {
      observe = metrics.httpObserver('GET', route.route, status)
      route.observe.set(status, observe)
    }
    observe(seconds)
    route.countRead()
    if ((log as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled?.('info') !== false) {
      const header = req.headers['x-request-id']
      const reqId = typeof header === 'string' && header !== '' ? header : deps.requestId()
      log.info({ reqId, ...requestLine('GET', route.route, req.url ?? '', status, seconds * 1000, 'HIT', route.table, route.apiKeyId) })
    }
  }

  /**
   * The second chance, when the near cache has no copy (it is off, or its copy aged out): one Redis
   * read, as Fastify's hit would make. Anything but a fresh hit goes on to Fastify with the token
   * already spent, so the rate limit does not count the request twice.
   */
  async function fromRedis(route: LaneRoute, rate: BudgetAnswer, req: IncomingMessage, res: ServerResponse, started: number, fastify: Handler) {
    let hit: CacheResult | undefined
    let body: Buffer | undefined
    const ifNoneMatch = req.headers['if-none-match']
    const notModified = (etag: string) => etagMatches(ifNoneMatch, etag)
    const gzip = acceptsGzip(req.headers['accept-encoding'])
    try {
      hit = await cache.readFresh(route.resource, route.id, singleEtag(ifNoneMatch))
      if (hit?.status === 200 && !notModified(hit.etag)) body = gzip ? hit.gzip : (hit.body ?? (hit.gzip && (await inflate(hit.gzip, hit.etag))))
    } catch {
      hit = undefined
    }
    if (!open || hit === undefined || hit.status !== 200 || (body === undefined && !notModified(hit.etag))) {
      chargeRequest(req, rate)
      fastify(req, res)
      return
    }
    answer(route, rate, hit, req, res, started, body, gzip)
  }

  return {
    learn(request, reply, resource) {
      const authorization = request.headers.authorization
      const url = request.raw.url
      const route = request.routeOptions.url
      if (!open || request.method !== 'GET' || resource.table === null || !request.apiKeyId || !request.principal) return
      if (typeof authorization !== 'string' || url === undefined || route === undefined) return
      // The lane never sees these two headers (they change the answer): nothing to learn from a request with them.
      if (request.headers.origin !== undefined || request.headers['cache-control'] !== undefined) return
      let routes = callers.get(authorization)
      if (routes?.byUrl.has(url)) return
      if (routes === undefined) {
        if (callers.size >= maxCallers) callers.delete(callers.keys().next().value!)
        routes = { byUrl: new Map(), chars: 0 }
        callers.set(authorization, routes)
      }
      // The oldest routes go first, by count and by the characters of their URLs (a filter can be 16 KB).
      while (routes.byUrl.size > 0 && (routes.byUrl.size >= routesPerCaller || routes.chars + url.length > ROUTE_CHARS_PER_CALLER)) {
        const oldest = routes.byUrl.keys().next().value!
        routes.byUrl.delete(oldest)
        routes.chars -= oldest.length
      }
      routes.chars += url.length
      routes.byUrl.set(url, {
        resource,
        id: resourceId(resource),
        table: resource.table,
        route,
        client: `key:${request.apiKeyId}`,
        apiKeyId: request.apiKeyId,
        staleIfError: staleIfErrorFor(resource.kind, 200, config),
        headers: createLaneHeaders(fixedHeaders(reply)),
        countRead: metrics.cacheReadCounter(resource.table, 'hit'),
        observe: new Map(),
      })
    },

    serve(req, res, fastify) {
      if (!open || req.method !== 'GET') return false
      const { authorization, origin } = req.headers
      if (authorization === undefined || origin !== undefined || req.headers['cache-control'] !== undefined) return false
      const route = callers.get(authorization)?.byUrl.get(req.url ?? '')
      if (route === undefined) return false
      const started = performance.now()
      const held = cache.peekFresh(route.resource, route.id)
      // A cached 404 or other status answers through Fastify, as every non-hit does.
      if (held !== undefined && held.status !== 200) return false
      let body: Buffer | undefined
      let gzip = false
      const notModified = held !== undefined && etagMatches(req.headers['if-none-match'], held.etag)
      if (held !== undefined && !notModified) {
        gzip = acceptsGzip(req.headers['accept-encoding'])
        body = gzip ? held.gzip : held.plain
        // A plain client's first hit of a copy: Fastify's path inflates it and keeps the body near.
        if (body === undefined) return false
      }
      const rate = budget.spendHeld(route.client)
      if (rate === undefined) return false
      if (held === undefined) void fromRedis(route, rate, req, res, started, fastify)
      else answer(route, rate, held, req, res, started, body, gzip)
      return true
    },

    close() {
      open = false
    },

    get answered() {
      return answered
    },
  }
}
