import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import t from 'tap'
import { createHitLane, type HitLaneDeps } from '../../src/api/hit-lane.ts'
import { type BudgetAnswer, chargedAnswer } from '../../src/api/key-budget.ts'
import type { CacheResult } from '../../src/shared/cache/cache-result.ts'
import type { NearEntry } from '../../src/shared/cache/near-cache.ts'
import { type CachedResource, resourceId } from '../../src/shared/cache/resources.ts'

// The hit lane's rules, with every collaborator faked: what it learns, what it answers, what it leaves to
// Fastify, and its bounds. test/api/hit-lane.test.ts shows the same over real HTTP with the real app.

const GZIP = Buffer.from('gzip-bytes')
const PLAIN = Buffer.from('{"plain":true}')
const fresh = (over: Partial<NearEntry> = {}): NearEntry => ({ status: 200, etag: 'W/"e1"', createdAt: Date.now(), ttl: 300, gzip: GZIP, ...over })

function rig(options: { callers?: number; routesPerCaller?: number } = {}) {
  const near = new Map<string, NearEntry>()
  const fromRedis = new Map<string, CacheResult>()
  const counted = { hits: 0, http: [] as number[], reads: 0 }
  let tokens = Number.POSITIVE_INFINITY
  const deps: HitLaneDeps = {
    cache: {
      peekFresh: (_resource, id) => near.get(id),
      readFresh: async (_resource, id) => fromRedis.get(id),
      countHit: () => {
        counted.hits++
      },
    },
    budget: {
      spendHeld: (): BudgetAnswer | undefined => (tokens-- > 0 ? { allowed: true, limit: 10, remaining: 9, resetS: 42 } : undefined),
    },
    metrics: {
      httpObserver: (_method, _route, status) => () => {
        counted.http.push(status)
      },
      cacheReadCounter: () => () => {
        counted.reads++
      },
    },
    log: { isLevelEnabled: () => false } as unknown as FastifyBaseLogger,
    requestId: () => 'r1',
    config: { STALE_THRESHOLD: 0.8, STALE_IF_ERROR_TTL: 86_400, STALE_IF_ERROR_SHORT_TTL: 300 },
    ...options,
  }
  const lane = createHitLane(deps)
  const resource = (pk: string): CachedResource => ({ table: 'orders', kind: 'item', params: { pk } })
  function learn(url: string, headers: Record<string, string> = {}, authorization = 'Bearer k1') {
    const request = {
      method: 'GET',
      headers: { authorization, ...headers },
      raw: { url },
      routeOptions: { url: '/tables/:table/items/:pk' },
      apiKeyId: 'k1',
      principal: {},
    } as unknown as FastifyRequest
    const reply = { getHeaders: () => ({ 'x-content-type-options': 'nosniff', 'ratelimit-limit': '999', etag: 'W/"old"' }) } as unknown as FastifyReply
    const pk = url.split('/').pop()!
    lane.learn(request, reply, resource(pk))
    return resourceId(resource(pk))
  }
  function ask(url: string, headers: Record<string, string> = {}, method = 'GET') {
    const sent: { status?: number; headers?: string[]; body?: Buffer | undefined; ended: boolean } = { ended: false }
    const req = { method, url, headers: { authorization: 'Bearer k1', ...headers } } as unknown as IncomingMessage
    const res = {
      writeHead(status: number, list: string[]) {
        sent.status = status
        // Node reads the list before writeHead returns; the lane may reuse it for the next answer.
        sent.headers = [...list]
        return res
      },
      end(body?: Buffer) {
        sent.body = body
        sent.ended = true
      },
    } as unknown as ServerResponse
    let handedOn = 0
    const taken = lane.serve(req, res, () => {
      handedOn++
    })
    return { taken, sent, req, handedOn: () => handedOn }
  }
  const header = (list: string[] | undefined, name: string) => {
    const i = list?.indexOf(name) ?? -1
    return i >= 0 ? list![i + 1] : undefined
  }
  return {
    lane,
    near,
    fromRedis,
    counted,
    learn,
    ask,
    header,
    setTokens: (n: number) => {
      tokens = n
    },
  }
}

t.test('answers a learned read from a fresh copy, with the learned fixed headers and its own per-answer ones', async (t) => {
  const r = rig()
  t.equal(r.ask('/tables/orders/items/a').taken, false, 'nothing learned yet')
  const id = r.learn('/tables/orders/items/a')
  r.near.set(id, fresh())
  const { taken, sent } = r.ask('/tables/orders/items/a', { 'accept-encoding': 'gzip' })
  t.equal(taken, true)
  t.equal(sent.status, 200)
  t.equal(sent.body, GZIP, 'the stored gzip bytes as they are')
  t.equal(r.header(sent.headers, 'x-content-type-options'), 'nosniff', 'a fixed header replayed')
  t.equal(r.header(sent.headers, 'ratelimit-limit'), '10', "the rate-limit figures are this answer's, not the learned request's")
  t.equal(r.header(sent.headers, 'etag'), 'W/"e1"', "the entry's ETag, not the learned one")
  t.equal(r.header(sent.headers, 'content-encoding'), 'gzip')
  t.equal(r.header(sent.headers, 'content-length'), String(GZIP.length))
  t.equal(sent.headers?.filter((h) => h === 'etag').length, 1, 'each header once')
  t.same(r.counted, { hits: 1, http: [200], reads: 1 }, 'statistics and metrics counted once')
  t.equal(r.lane.answered, 1)
})

t.test('304, plain clients, and what only Fastify answers', async (t) => {
  const r = rig()
  const id = r.learn('/tables/orders/items/b')
  r.near.set(id, fresh())
  const notModified = r.ask('/tables/orders/items/b', { 'if-none-match': 'W/"e1"' })
  t.equal(notModified.sent.status, 304)
  t.equal(notModified.sent.body, undefined, 'a 304 has no body')
  t.equal(r.header(notModified.sent.headers, 'content-type'), undefined)
  t.equal(r.ask('/tables/orders/items/b').taken, false, 'a plain client while the copy has no inflated body: Fastify inflates and keeps it')
  r.near.set(id, fresh({ plain: PLAIN }))
  const plain = r.ask('/tables/orders/items/b')
  t.equal(plain.sent.body, PLAIN)
  t.equal(r.header(plain.sent.headers, 'content-encoding'), undefined)
  r.near.set(id, fresh({ status: 404 }))
  t.equal(r.ask('/tables/orders/items/b', { 'accept-encoding': 'gzip' }).taken, false, 'a cached 404')
  r.near.set(id, fresh())
  for (const [what, headers, method] of [
    ['Origin', { origin: 'https://x.example' }, 'GET'],
    ['Cache-Control', { 'cache-control': 'no-cache' }, 'GET'],
    ['HEAD', {}, 'HEAD'],
    ['another key', { authorization: 'Bearer k2' }, 'GET'],
  ] as const) {
    t.equal(r.ask('/tables/orders/items/b', { 'accept-encoding': 'gzip', ...headers }, method).taken, false, what)
  }
  t.equal(r.ask('/tables/orders/items/b?', { 'accept-encoding': 'gzip' }).taken, false, 'another spelling of the URL')
  r.setTokens(0)
  t.equal(r.ask('/tables/orders/items/b', { 'accept-encoding': 'gzip' }).taken, false, 'no token held')
  r.setTokens(Number.POSITIVE_INFINITY)
  const before = r.counted.hits
  r.lane.close()
  t.equal(r.ask('/tables/orders/items/b', { 'accept-encoding': 'gzip' }).taken, false, 'closed')
  t.equal(r.counted.hits, before, 'nothing counted for what it did not answer')
})

t.test('nothing is learned from a request with Origin or Cache-Control', async (t) => {
  const r = rig()
  r.near.set(r.learn('/tables/orders/items/c', { origin: 'https://x.example' }), fresh())
  r.near.set(r.learn('/tables/orders/items/d', { 'cache-control': 'max-age=0' }), fresh())
  t.equal(r.ask('/tables/orders/items/c', { 'accept-encoding': 'gzip' }).taken, false)
  t.equal(r.ask('/tables/orders/items/d', { 'accept-encoding': 'gzip' }).taken, false)
})

t.test('without a near copy: one Redis read, or handed to Fastify with the token already spent', async (t) => {
  const r = rig()
  const id = r.learn('/tables/orders/items/e')
  r.fromRedis.set(id, { outcome: 'hit', status: 200, etag: 'W/"e2"', createdAt: Date.now(), ttl: 300, gzip: GZIP, collapsed: false })
  const hit = r.ask('/tables/orders/items/e', { 'accept-encoding': 'gzip' })
  t.equal(hit.taken, true)
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(hit.sent.status, 200)
  t.equal(hit.handedOn(), 0)
  r.fromRedis.delete(id)
  const miss = r.ask('/tables/orders/items/e', { 'accept-encoding': 'gzip' })
  t.equal(miss.taken, true, 'taken before the read')
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(miss.sent.ended, false, 'not answered in the lane')
  t.equal(miss.handedOn(), 1, 'handed to Fastify once')
  t.same(chargedAnswer(miss.req), { allowed: true, limit: 10, remaining: 9, resetS: 42 }, 'with the token it spent, for the rate limit to reuse')
})

t.test('bounded: the oldest routes of a caller, and the oldest callers, are forgotten first', async (t) => {
  const r = rig({ routesPerCaller: 3, callers: 2 })
  const urls = ['f1', 'f2', 'f3', 'f4', 'f5'].map((pk) => `/tables/orders/items/${pk}`)
  for (const url of urls) r.near.set(r.learn(url), fresh())
  t.same(
    urls.map((url) => r.ask(url, { 'accept-encoding': 'gzip' }).taken),
    [false, false, true, true, true],
    'the last 3 of 5',
  )
  r.learn('/tables/orders/items/f5', {}, 'Bearer two')
  r.learn('/tables/orders/items/f5', {}, 'Bearer three')
  t.equal(r.ask('/tables/orders/items/f5', { 'accept-encoding': 'gzip' }).taken, false, 'the first caller went when a third came')
  t.equal(r.ask('/tables/orders/items/f5', { 'accept-encoding': 'gzip', authorization: 'Bearer three' }).taken, true)
})
