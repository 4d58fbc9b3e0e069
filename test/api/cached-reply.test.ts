import { gzipSync } from 'node:zlib'
import type { FastifyReply, FastifyRequest } from 'fastify'
import t from 'tap'
import { acceptsGzip, sendCached } from '../../src/api/cached-reply.ts'
import type { CacheResult } from '../../src/shared/cache/index.ts'
import { inflate } from '../../src/shared/cache/inflate.ts'

const config = { STALE_THRESHOLD: 0.8, STALE_IF_ERROR_TTL: 86_400, STALE_IF_ERROR_SHORT_TTL: 300 }

/** A reply that records what sendCached did with it. */
function recordingReply() {
  const sent = { headers: {} as Record<string, unknown>, status: 200, body: undefined as unknown }
  const reply = {
    header(name: string, value: unknown) {
      sent.headers[name] = value
      return reply
    },
    code(status: number) {
      sent.status = status
      return reply
    },
    type(value: string) {
      sent.headers['content-type'] = value
      return reply
    },
    send(body?: unknown) {
      sent.body = body
      return reply
    },
  }
  return { reply: reply as unknown as FastifyReply, sent }
}

const request = (headers: Record<string, string> = {}) => ({ headers }) as unknown as FastifyRequest

async function answer(result: CacheResult, headers?: Record<string, string>, kind?: 'items' | 'query') {
  const { reply, sent } = recordingReply()
  await sendCached(request(headers), reply, result, config, false, kind)
  return sent
}

const hit = (over: Partial<CacheResult>): CacheResult => ({
  outcome: 'hit',
  status: 200,
  etag: 'W/"same-body"',
  createdAt: Date.now(),
  ttl: 100,
  gzip: gzipSync('{"items":[]}'),
  collapsed: false,
  ...over,
})

t.test('entries sharing an ETag still get their own Age, Cache-Control and Cache-Status', async (t) => {
  const now = Date.now()
  const young = await answer(hit({ createdAt: now - 1_000 }))
  const old = await answer(hit({ createdAt: now - 50_000 }))
  const youngAgain = await answer(hit({ createdAt: now - 1_000 }))
  t.match(young.headers.age, /^[12]$/)
  t.match(young.headers['cache-control'], /^private, max-age=(78|79), stale-while-revalidate=20, stale-if-error=86400$/)
  t.match(young.headers['cache-status'], /^dynacache; hit; ttl=(78|79)$/)
  t.match(old.headers.age, /^(50|51)$/)
  t.match(old.headers['cache-control'], /^private, max-age=(29|30), /)
  t.match(old.headers['cache-status'], /^dynacache; hit; ttl=(29|30)$/)
  // The first entry answers as before, not with the headers kept for the other entry of its ETag (its
  // figures may have moved on by a second since: the ranges allow that, never the other entry's values).
  t.match(youngAgain.headers.age, /^[12]$/, 'the first entry answers as before: its own Age')
  t.match(youngAgain.headers['cache-control'], /^private, max-age=(78|79), stale-while-revalidate=20, stale-if-error=86400$/, 'its own Cache-Control')
  t.match(youngAgain.headers['cache-status'], /^dynacache; hit; ttl=(78|79)$/, 'its own Cache-Status')
  t.equal(young.headers.etag, 'W/"same-body"')
  t.equal(young.headers['x-cache'], 'HIT')
  t.equal(young.headers.vary, 'Accept-Encoding')
})

t.test('the same entry served stale, or for another kind, gets its own headers', async (t) => {
  const createdAt = Date.now() - 90_000
  const stale = await answer(hit({ outcome: 'stale', createdAt }), {}, 'items')
  t.match(stale.headers['cache-status'], /^dynacache; hit; ttl=-1\d; detail=stale-while-revalidate$/)
  t.match(stale.headers['cache-control'], /^private, max-age=0, stale-while-revalidate=20, stale-if-error=86400$/)
  t.equal(stale.headers['x-cache'], 'STALE')
  const query = await answer(hit({ outcome: 'stale', createdAt }), {}, 'query')
  t.match(query.headers['cache-control'], /stale-if-error=300$/, 'a query page keeps the short stale-if-error')
  const invalidated = await answer(hit({ outcome: 'stale', createdAt, invalidated: true }), {}, 'items')
  t.match(invalidated.headers['cache-status'], /; detail=invalidated$/, 'a soft invalidation says so, after a stale answer of the same entry')
  t.match((await answer(hit({ outcome: 'stale', createdAt }), {}, 'items')).headers['cache-status'], /detail=stale-while-revalidate$/)
  const fresh = await answer(hit({ createdAt }), {}, 'items')
  t.match(fresh.headers['cache-status'], /^dynacache; hit; ttl=-1\d$/)
  t.equal(fresh.headers['x-cache'], 'HIT')
})

t.test('a hit answers a gzip client with the stored bytes and a plain client with the inflated body', async (t) => {
  const body = '{"items":[{"id":1}]}'
  const result = hit({ etag: 'W/"one"', gzip: gzipSync(body) })
  const gz = await answer(result, { 'accept-encoding': 'gzip, deflate, br' })
  t.equal(gz.headers['content-encoding'], 'gzip')
  t.equal(gz.body, result.gzip)
  const plain = await answer(result, { 'accept-encoding': 'identity' })
  t.equal(plain.headers['content-encoding'], undefined)
  t.equal(String(plain.body), body)
  const notModified = await answer(result, { 'if-none-match': 'W/"one"' })
  t.equal(notModified.status, 304)
  t.equal(notModified.body, undefined)
})

t.test('acceptsGzip answers the same from memory as parsed', async (t) => {
  for (let round = 0; round < 2; round++) {
    t.equal(acceptsGzip('gzip'), true)
    t.equal(acceptsGzip('gzip;q=0'), false)
    t.equal(acceptsGzip('br, GZIP;q=0.5'), true)
    t.equal(acceptsGzip('identity'), false)
    t.equal(acceptsGzip('*;q=0'), false)
    t.equal(acceptsGzip(undefined), false)
    t.equal(acceptsGzip(`${'x'.repeat(300)}, gzip`), true)
  }
})

t.test('an inflated body is reused only for the very same gzip bytes, whatever the ETag says', async (t) => {
  const a = gzipSync('{"table":"a"}')
  const b = gzipSync('{"table":"b"}')
  const first = await inflate(a, 'W/"shared"')
  t.equal(first.toString(), '{"table":"a"}')
  t.equal(await inflate(Buffer.from(a), 'W/"shared"'), first, 'equal bytes read again: the kept body, not a new one')
  t.equal((await inflate(b, 'W/"shared"')).toString(), '{"table":"b"}', 'other bytes under the same ETag: their own body')
  t.equal((await inflate(a, 'W/"shared"')).toString(), '{"table":"a"}')
  t.equal((await inflate(b)).toString(), '{"table":"b"}', 'without an ETag: inflated as is')
})
